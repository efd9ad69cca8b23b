#!/bin/bash
# Check the Debian packages that scripts/package built: each .deb holds
# exactly the files it should, its conffiles, dependencies, units and man
# pages are right, no maintainer script enables or restarts a service it
# must not, the programs run from the package, and the module builds from
# rswap-client-dkms's source with a real "dkms build" (a private DKMS tree,
# for the kernel the VM boots).  lintian is scripts/lint's job
# (packaging/lintian-debs).
#
#   packaging/test-debs.sh [DIR]      (default DIR: build/packages)
#
# Exit 0 pass, 1 fail (one line per finding), 2 bad usage or no packages.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$REPO/build/packages}
failed=0

fail() { echo "FAIL: $*"; failed=1; }
note() { echo "-- $*"; }

[ -d "$dir" ] || { echo "test-debs: no directory $dir: run scripts/package first" >&2; exit 2; }
work=$(mktemp -d) || { echo "test-debs: mktemp failed" >&2; exit 1; }
trap 'rm -rf "$work"' EXIT

# deb_of PACKAGE: the one .deb of PACKAGE in $dir.
deb_of() {
	local debs=("$dir/$1"_*.deb)
	if [ ${#debs[@]} -ne 1 ] || [ ! -f "${debs[0]}" ]; then
		echo "test-debs: expected one $dir/$1_*.deb, found ${#debs[@]}: run scripts/package" >&2
		exit 2
	fi
	echo "${debs[0]}"
}

# files_of DEB: the paths of its non-directory entries, sorted.
files_of() {
	dpkg-deb --fsys-tarfile "$1" | tar -t | grep -v '/$' | sed 's|^\./|/|' | sort
}

# check_files PACKAGE EXPECTED-LIST: the package holds exactly these files.
check_files() {
	local got diff
	got=$(files_of "$(deb_of "$1")")
	diff=$(diff <(sort <<< "$2") <(echo "$got")) ||
		fail "$1: contents differ from what is expected ('<' missing, '>' unexpected):"$'\n'"$diff"
}

# control_field PACKAGE FIELD
control_field() { dpkg-deb -f "$(deb_of "$1")" "$2"; }

# control_file PACKAGE FILE: a control-area file (postinst, conffiles, ...), or nothing.
control_file() { dpkg-deb --ctrl-tarfile "$(deb_of "$1")" | tar -xO "./$2" 2> /dev/null; }

# ---- contents ---------------------------------------------------------------------
man() { printf '/usr/share/man/man%s/%s.%s.gz\n' "$2" "$1" "$2"; }
doc() { printf '/usr/share/doc/%s/changelog.gz\n/usr/share/doc/%s/copyright\n' "$1" "$1"; }
overrides() { printf '/usr/share/lintian/overrides/%s\n' "$1"; }

check_files rswap-coord "/etc/rswap/rswap-coord.conf
/lib/systemd/system/rswap-coord.service
/usr/bin/rswap-coord
$(man rswap-coord 8)
$(doc rswap-coord)
$(overrides rswap-coord)"
check_files rswap-poold "/etc/rswap/poold.conf
/lib/systemd/system/poold.service
/lib/systemd/system/poold@.service
/usr/bin/poold
$(man poold 8)
$(doc rswap-poold)
$(overrides rswap-poold)"
check_files rswap-tools "/etc/rswap/rswap.conf
/lib/systemd/system/rswap-client.service
/usr/bin/rswap-admin
/usr/sbin/rswapctl
/usr/share/doc/rswap-tools/DEPLOY.md.gz
/usr/share/doc/rswap-tools/grafana-remoteswap.json.gz
$(man rswap-admin 1)
$(man rswapctl 8)
$(doc rswap-tools)
$(overrides rswap-tools)"
# The module source: whatever client-kmod/ holds today, and the three
# proto/ headers it includes.
dkms_version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$REPO/packaging/dkms.conf")
usrsrc=/usr/src/rswap-client-$dkms_version
check_files rswap-client-dkms "$(cd "$REPO/client-kmod" && ls Kbuild ./*.c ./*.h | sed "s|^\(\./\)\{0,1\}|$usrsrc/|")
$usrsrc/rswap_wire.h
$usrsrc/rswap_frame.h
$usrsrc/rswap_auth.h
$usrsrc/dkms.conf
$(doc rswap-client-dkms)"
note "contents: checked"

# ---- conffiles: the examples, byte for byte ----------------------------------------
check_conffile() {
	local pkg=$1 path=$2 example=$3
	[ "$(control_file "$pkg" conffiles)" = "$path" ] ||
		fail "$pkg: conffiles is '$(control_file "$pkg" conffiles | tr '\n' ' ')', expected $path"
	cmp -s <(dpkg-deb --fsys-tarfile "$(deb_of "$pkg")" | tar -xO ".$path") "$REPO/$example" ||
		fail "$pkg: $path differs from $example"
}
check_conffile rswap-coord /etc/rswap/rswap-coord.conf packaging/rswap-coord.conf.example
check_conffile rswap-poold /etc/rswap/poold.conf packaging/poold.conf.example
check_conffile rswap-tools /etc/rswap/rswap.conf tools/rswap.conf.example
note "conffiles: checked"

# ---- dependencies -------------------------------------------------------------------
# depends_on PACKAGE DEP...: each DEP (a package name) is in Depends.
depends_on() {
	local pkg=$1 d deps
	shift
	deps=$(control_field "$pkg" Depends | tr ',|' '\n\n' | sed 's/(.*//; s/ //g')
	for d in "$@"; do
		grep -qx "$d" <<< "$deps" || fail "$pkg: Depends lacks $d (has: $(control_field "$pkg" Depends))"
	done
}
depends_on rswap-coord libc6 libevent-core-2.1-7 libprotobuf-c1 libssl3 adduser
depends_on rswap-poold libc6 libevent-core-2.1-7 libprotobuf-c1 libibverbs1 librdmacm1 rdma-core ibverbs-providers adduser
depends_on rswap-tools libc6 libprotobuf-c1 keyutils kmod mount
depends_on rswap-client-dkms dkms
[ "$(control_field rswap-client-dkms Architecture)" = all ] || fail "rswap-client-dkms is not Architecture: all"
note "dependencies: checked"

# ---- maintainer scripts: nothing starts unconfigured, upgrades spare swap --------------
# Each postinst runs for a fresh install into a private root (DPKG_ROOT, which
# deb-systemd-helper honours; it runs only with DPKG_MAINTSCRIPT_PACKAGE
# set, as under dpkg); systemctl, deb-systemd-invoke and adduser (the build
# machine gets no user) are stubs
# that only log.  No unit may end up enabled: an enabled unit would start at
# the next boot with the example settings.
root=$work/root
mkdir -p "$root" "$work/stub"
for pkg in rswap-coord rswap-poold rswap-tools rswap-client-dkms; do
	dpkg-deb -x "$(deb_of "$pkg")" "$root" || fail "dpkg-deb -x $pkg"
done
for stub in systemctl deb-systemd-invoke adduser; do
	printf '#!/bin/sh\necho "%s $*" >> "%s/stub.log"\n' "$stub" "$work" > "$work/stub/$stub"
	chmod +x "$work/stub/$stub"
done
for pkg in rswap-coord rswap-poold rswap-tools; do
	control_file "$pkg" postinst > "$work/postinst.$pkg"
	[ -s "$work/postinst.$pkg" ] || { fail "$pkg: no postinst (dh_installsystemd's state tracking is missing)"; continue; }
	out=$(DPKG_MAINTSCRIPT_PACKAGE=$pkg DPKG_ROOT=$root PATH=$work/stub:$PATH sh -e "$work/postinst.$pkg" configure 2>&1) ||
		{ echo "$out"; fail "$pkg: postinst configure failed"; }
	# The daemons' system user (User=rswap in their units).
	case $pkg in
	rswap-coord | rswap-poold)
		grep -q '^User=rswap$' "$root/lib/systemd/system/$([ "$pkg" = rswap-coord ] && echo rswap-coord || echo poold).service" ||
			fail "$pkg: its unit does not run as User=rswap"
		grep -q 'adduser .*--system .*rswap' "$work/postinst.$pkg" || fail "$pkg: postinst does not create the rswap system user"
		;;
	esac
	# A stop on removal: the binary goes away.
	control_file "$pkg" prerm | grep -q 'deb-systemd-invoke stop' || fail "$pkg: prerm does not stop its service on removal"
done
enabled=$(find "$root/etc/systemd/system" -name '*.service' 2> /dev/null)
[ -z "$enabled" ] || fail "a fresh install enables units: ${enabled//$root/}"
[ -n "$(ls "$root/var/lib/systemd/deb-systemd-helper-enabled" 2> /dev/null)" ] ||
	fail "the postinsts recorded no unit state (deb-systemd-helper update-state did not run)"
# Purge forgets every unit's state (dpkg itself removes the conffiles).
for pkg in rswap-coord rswap-poold rswap-tools; do
	control_file "$pkg" postrm > "$work/postrm.$pkg"
	out=$(DPKG_MAINTSCRIPT_PACKAGE=$pkg DPKG_ROOT=$root PATH=$work/stub:$PATH sh -e "$work/postrm.$pkg" purge 2>&1) ||
		{ echo "$out"; fail "$pkg: postrm purge failed"; }
done
left=$(find "$root/var/lib/systemd/deb-systemd-helper-enabled" "$root/etc/systemd" -name '*.service*' 2> /dev/null)
[ -z "$left" ] || fail "purge leaves unit state behind: ${left//$root/}"
for pkg in rswap-poold rswap-tools; do
	all="$(control_file "$pkg" preinst)$(control_file "$pkg" postinst)$(control_file "$pkg" prerm)"
	grep -v '^[[:space:]]*#' <<< "$all" | grep -qE 'invoke restart|_dh_action=restart|systemctl .*restart' && fail "$pkg: a maintainer script restarts its service (drops or swaps off hosts' pages)"
	grep -q '"$1" = remove' <<< "$(control_file "$pkg" prerm)" || fail "$pkg: prerm stops on more than removal"
done
control_file rswap-poold prerm | grep -q "poold@\*.service" || fail "rswap-poold: prerm does not stop poold@ instances"
control_file rswap-client-dkms postinst | grep -q common.postinst || fail "rswap-client-dkms: postinst does not hand the module to DKMS"
control_file rswap-client-dkms prerm | grep -q 'dkms remove' || fail "rswap-client-dkms: prerm does not remove it from DKMS"
note "maintainer scripts: checked"

# ---- unpacked (above): units point at the packaged files, programs and man pages work ---------
for unit in "$root"/lib/systemd/system/*.service; do
	u=$(basename "$unit")
	grep -n '@[A-Z]*@' "$unit" && fail "$u: unsubstituted placeholder"
	exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")
	[ -x "$root$exe" ] || fail "$u: ExecStart=$exe is not in the packages"
	for docfile in $(sed -n 's/^Documentation=//p' "$unit"); do
		case $docfile in
		file:*) [ -f "$root${docfile#file:}" ] || [ -f "$root${docfile#file:}.gz" ] ||
			fail "$u: Documentation=$docfile is not in the packages" ;;
		man:*) page=${docfile#man:}; name=${page%(*}; sec=${page#*(}; sec=${sec%)}
			[ -f "$root/usr/share/man/man$sec/$name.$sec.gz" ] ||
				fail "$u: Documentation=$docfile is not in the packages" ;;
		esac
	done
done
# The programs run from the package (libraries resolve) and their man pages
# are their --help.
for p in usr/bin/rswap-coord:--listen usr/bin/poold:--capacity usr/bin/rswap-admin:drain usr/sbin/rswapctl:uninstall; do
	exe=$root/${p%%:*} word=${p#*:}
	name=$(basename "$exe")
	"$exe" --help > "$work/help" 2>&1 || fail "$name --help exits $? from the package"
	grep -q -- "$word" "$work/help" || fail "$name --help does not mention $word"
	page=$(ls "$root"/usr/share/man/man?/"$name".?.gz 2> /dev/null)
	zcat "$page" 2> /dev/null | grep -q -- "$(sed 's/-/\\\\-/g' <<< "$word")" ||
		fail "$name: man page ${page:-missing} lacks $word"
done
note "units, programs, man pages: checked"

# ---- the module from the packaged DKMS source ------------------------------------------
krel=$("$REPO/scripts/vm-kernel-release" 2> /dev/null)
if [ -z "$krel" ] || [ ! -f "/lib/modules/$krel/build/Makefile" ]; then
	fail "no headers for the VM kernel '${krel:-unknown}': run scripts/install-deps"
elif ! command -v dkms > /dev/null; then
	fail "dkms is not installed: run scripts/install-deps"
else
	# A private DKMS tree: nothing under /var/lib/dkms or /lib/modules changes.
	mkdir -p "$work/dkms"
	if out=$(dkms build -m rswap-client -v "$dkms_version" -k "$krel" \
		--kernelsourcedir "/lib/modules/$krel/build" \
		--dkmstree "$work/dkms" --sourcetree "$root/usr/src" 2>&1); then
		ko=$(find "$work/dkms/rswap-client/$dkms_version/$krel" -name 'rswap-client.ko*' | head -n 1)
		vm=$(/sbin/modinfo -F vermagic "$ko" 2> /dev/null)
		case $vm in
		"$krel "*) note "dkms build from rswap-client-dkms: $(basename "$ko") for $krel" ;;
		*) fail "dkms build made '${ko:-no module}' with vermagic '$vm', expected $krel" ;;
		esac
	else
		echo "$out" | tail -n 20
		tail -n 30 "$work/dkms/rswap-client/$dkms_version/build/make.log" 2> /dev/null
		fail "dkms build of rswap-client-dkms's source for $krel"
	fi
fi

if [ $failed = 0 ]; then
	echo "test-debs: all checks passed"
	exit 0
fi
echo "test-debs: FAILED (the lines starting FAIL above)"
exit 1
