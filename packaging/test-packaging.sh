#!/bin/bash
# ctest "packaging": the systemd units pass systemd-analyze verify, dkms.conf
# names what DKMS needs and matches the project version, and the module
# builds from the DKMS source layout (a real "dkms build" into a private
# tree when dkms is installed, else dkms.conf's MAKE[0] run by hand) for the
# kernel the VM boots.
#
#   test-packaging.sh SOURCE_DIR WORK_DIR PROJECT_VERSION
#
# Exit 0 pass, 1 fail, 77 skip (neither systemd-analyze nor kernel headers).
set -uo pipefail
SRC=${1:?source dir}
WORK=${2:?work dir}
PROJECT_VERSION=${3:?project version}
PKG=$SRC/packaging
failed=0
checked=0

fail() { echo "FAIL: $*"; failed=1; }
note() { echo "-- $*"; }

rm -rf "$WORK"
mkdir -p "$WORK"

# ---- systemd units --------------------------------------------------------------
# ExecStart must name existing executables: stand-ins in a private bin dir.
if command -v systemd-analyze > /dev/null; then
	mkdir -p "$WORK/bin" "$WORK/sbin" "$WORK/units"
	for p in rswap-coord poold; do
		printf '#!/bin/sh\nexit 0\n' > "$WORK/bin/$p"
		chmod +x "$WORK/bin/$p"
	done
	install -m 0755 "$SRC/tools/rswapctl" "$WORK/sbin/rswapctl"
	for in in "$PKG"/*.service.in; do
		unit=$(basename "$in" .in)
		sed -e "s|@BINDIR@|$WORK/bin|g" -e "s|@SBINDIR@|$WORK/sbin|g" \
			-e "s|@DOCDIR@|$SRC/docs|g" "$in" > "$WORK/units/$unit"
		grep -n '@[A-Z]*@' "$WORK/units/$unit" && fail "$unit: unsubstituted placeholder"
	done
	# A template is verified through an instance.
	mv "$WORK/units/poold@.service" "$WORK/units/poold@test.service"
	for u in "$WORK"/units/*.service; do
		out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$u" 2>&1)
		# verify also reports problems of unrelated units on this machine;
		# only lines naming our unit count.
		mine=$(grep -F "$(basename "$u")" <<< "$out")
		if [ -n "$mine" ]; then
			echo "$out"
			fail "systemd-analyze verify $(basename "$u")"
		else
			note "systemd-analyze verify $(basename "$u"): clean"
		fi
	done
	# What the units must keep for RDMA and for poold's pinned memory.
	grep -q '^LimitMEMLOCK=infinity' "$PKG/poold.service.in" || fail "poold.service: no LimitMEMLOCK=infinity"
	grep -q '^RestrictAddressFamilies=.*AF_NETLINK' "$PKG/poold.service.in" || fail "poold.service: AF_NETLINK (rdma netlink) not allowed"
	grep -q '^DeviceAllow=char-infiniband_verbs' "$PKG/poold.service.in" || fail "poold.service: /dev/infiniband/uverbs* not allowed"
	grep -q '^DeviceAllow=/dev/infiniband/rdma_cm' "$PKG/poold.service.in" || fail "poold.service: rdma_cm not allowed"
	cmp -s <(sed -e '/^#/d' -e '/^Description=/d' -e '/^EnvironmentFile=/d' "$PKG/poold.service.in") \
		<(sed -e '/^#/d' -e '/^Description=/d' -e '/^EnvironmentFile=/d' "$PKG/poold@.service.in") ||
		fail "poold.service and poold@.service differ in more than the description and the config file"
	checked=1
else
	note "systemd-analyze not found: unit checks skipped"
fi

# ---- dkms.conf -------------------------------------------------------------------
# DKMS sources it with bash; so do we, in a subshell.
# The variables DKMS provides while it sources the file.
conf=$(kernel_source_dir=/KSRC dkms_tree=/DKMS kernelver=KVER arch=x86_64 bash -c 'set -u
	. "$1"
	printf "%s\n" "$PACKAGE_NAME" "$PACKAGE_VERSION" "${BUILT_MODULE_NAME[0]}" \
		"${DEST_MODULE_LOCATION[0]}" "${MAKE[0]}"' _ "$PKG/dkms.conf" 2>&1) ||
	{ echo "$conf"; fail "dkms.conf does not source cleanly"; exit 1; }
mapfile -t v <<< "$conf"
[ "${v[0]:-}" = rswap-client ] || fail "PACKAGE_NAME is '${v[0]:-}', expected rswap-client"
[ "${v[1]:-}" = "$PROJECT_VERSION" ] ||
	fail "PACKAGE_VERSION ${v[1]:-} differs from the project version $PROJECT_VERSION (CMakeLists.txt)"
[ "${v[2]:-}" = rswap-client ] || fail "BUILT_MODULE_NAME[0] is '${v[2]:-}', expected rswap-client (the Kbuild obj-m)"
grep -q '^obj-m := rswap-client.o' "$SRC/client-kmod/Kbuild" || fail "client-kmod/Kbuild no longer builds rswap-client.o"
case ${v[3]:-} in
/updates/dkms | /extra | /updates) ;;
*) fail "DEST_MODULE_LOCATION[0] '${v[3]:-}' is not /updates/dkms, /extra or /updates" ;;
esac
[ -n "${v[4]:-}" ] || fail "MAKE[0] is empty"
note "dkms.conf: ${v[0]:-} ${v[1]:-}, module ${v[2]:-} -> ${v[3]:-}"

# ---- the module from the DKMS source layout ---------------------------------------
krel=$("$SRC/scripts/vm-kernel-release" 2> /dev/null)
if [ -n "$krel" ] && [ -f "/lib/modules/$krel/build/Makefile" ]; then
	sh "$PKG/rswap-dkms" --srcroot "$WORK/src" --source-only > /dev/null ||
		fail "rswap-dkms --source-only failed"
	tree=$WORK/src/rswap-client-${v[1]:-}
	[ -f "$tree/dkms.conf" ] || fail "rswap-dkms laid out no $tree/dkms.conf"
	if command -v dkms > /dev/null; then
		mkdir -p "$WORK/dkms"
		# A private DKMS tree: nothing under /var/lib/dkms or /lib/modules
		# changes (dkms may sign with its own key in /var/lib/dkms).
		out=$(dkms build -m rswap-client -v "${v[1]}" -k "$krel" \
			--kernelsourcedir "/lib/modules/$krel/build" \
			--dkmstree "$WORK/dkms" --sourcetree "$WORK/src" 2>&1) ||
			{ echo "$out"; tail -n 30 "$WORK/dkms/rswap-client/${v[1]}/build/make.log" 2> /dev/null; fail "dkms build"; }
		ko=$(find "$WORK/dkms/rswap-client/${v[1]}/$krel" -name 'rswap-client.ko*' 2> /dev/null | head -n 1)
		how="dkms build"
	else
		# What DKMS would do: copy the source to its build dir, run MAKE[0].
		bdir=$WORK/dkms/rswap-client/${v[1]}/build
		mkdir -p "$bdir"
		cp -r "$tree"/. "$bdir"/
		out=$(cd "$bdir" && bash -c 'kernel_source_dir=$1 dkms_tree=$2 kernelver=$3
			. ./dkms.conf && eval "${MAKE[0]}"' _ "/lib/modules/$krel/build" "$WORK/dkms" "$krel" 2>&1) ||
			{ echo "$out" | tail -n 30; fail "MAKE[0] of dkms.conf"; }
		ko=$bdir/rswap-client.ko
		how="dkms.conf MAKE[0] (dkms not installed)"
	fi
	if [ -n "$ko" ] && [ -f "$ko" ]; then
		vm=$(/sbin/modinfo -F vermagic "$ko" 2> /dev/null)
		case $vm in
		"$krel "*) note "$how: $(basename "$ko") for $krel" ;;
		*) fail "$ko has vermagic '$vm', expected $krel" ;;
		esac
		for p in backend size coord name queue_depth timeout_ms; do
			/sbin/modinfo -F parm "$ko" | grep -q "^$p:" || fail "$ko lacks the parameter $p"
		done
	else
		fail "$how produced no rswap-client.ko"
	fi
	checked=1
else
	note "no kernel headers for the VM kernel (${krel:-unknown}): module build skipped"
fi

[ $failed = 0 ] || exit 1
if [ $checked = 0 ]; then
	echo "SKIP: neither systemd-analyze nor the VM kernel's headers are available"
	exit 77
fi
echo "packaging: all checks passed"
