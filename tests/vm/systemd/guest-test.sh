#!/bin/bash
# Runs inside the systemd VM (tests/vm/systemd/run), as rswap-vmtest.service
# once the system is up, from the read-only test disk mounted at $T.  Every
# check prints "ok: ..." or "FAIL: ...", and the last line is
# "@@RESULT PASS" or "@@RESULT FAIL N".  In order:
#
#  1. apt installs the four .debs offline; DKMS builds the module for the
#     running kernel; no unit is enabled or running afterwards.
#  2. Soft-RoCE (a oneshot unit: rdma_rxe on a dummy interface), then
#     /etc/rswap/ written, and rswap-coord, poold and rswap-client enabled
#     and started with systemctl: swapon --show has /dev/rswap0,
#     rswap-admin list shows the poold and this host's chunks.
#  3. memhog swaps in a cgroup smaller than its data and verifies it.
#  4. systemctl stop rswap-client: swap off, module unloaded, chunks back.
#  5. systemctl restart poold: re-registers; rswap-client starts again and
#     a second workload passes.
#  6. The journal: each daemon's start and stop lines, no failed unit, no
#     kernel WARNING/BUG/Oops since the test began.
#  7. apt purge: the services stop (a poold@ instance too), the packages'
#     files in /etc/rswap and the DKMS module go, the admin's own file stays.
set -uo pipefail
export SYSTEMD_COLORS=0
T=/mnt/rswap-test
IP=10.77.0.1
COORD=$IP:9400
failed=0

ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
# check WHAT CMD...: run CMD, ok when it succeeds; its output on failure.
check() {
	local what=$1 out
	shift
	if out=$("$@" 2>&1); then ok "$what"; else bad "$what"; echo "$out" | tail -n 20 | sed 's/^/    /'; fi
}
# wait_for SECS CMD...: until CMD succeeds.
wait_for() {
	local n=$(($1 * 2))
	shift
	while [ $n -gt 0 ]; do
		"$@" > /dev/null 2>&1 && return 0
		sleep 0.5
		n=$((n - 1))
	done
	return 1
}
finish() {
	echo "---- systemctl --failed"
	systemctl --failed --no-legend --no-pager
	if [ $failed -ne 0 ]; then
		echo "---- journal (rswap units, last 80 lines)"
		journalctl --no-pager -o short-monotonic -n 80 -u rswap-coord -u poold -u rswap-client -u rswap-softroce
		echo "---- kernel log (last 40 lines)"
		journalctl --no-pager -k -n 40 -o short-monotonic
		echo "@@RESULT FAIL $failed"
	else
		echo "@@RESULT PASS"
	fi
	exit 0
}
secs() { echo $(($(date +%s) - $1)); }

echo "rswap-vmtest: kernel $(uname -r), systemd $(systemctl --version | head -n1 | cut -d' ' -f2), $(nproc) CPUs, $(($(sed -n 's/^MemTotal: *\([0-9]*\).*/\1/p' /proc/meminfo) / 1024)) MiB"
echo "rswap-vmtest: started $(cut -d' ' -f1 /proc/uptime) s after the kernel"
[ "$(cat /proc/1/comm)" = systemd ] && ok "PID 1 is systemd" || bad "PID 1 is $(cat /proc/1/comm), not systemd"
echo "rswap-vmtest: start" > /dev/kmsg
t0=$(date +%s)

# ---- 1. install ------------------------------------------------------------------------
# As the README says, from the directory holding the .debs.  The VM has no
# network interface: everything the packages depend on is in the root.
t=$(date +%s)
if out=$(cd "$T/debs" && apt install -y ./rswap-*.deb 2>&1); then
	ok "apt install ./rswap-*.deb ($(secs "$t") s, offline)"
else
	bad "apt install ./rswap-*.deb"
	echo "$out" | tail -n 30 | sed 's/^/    /'
	finish
fi
check "DKMS built and installed rswap-client for $(uname -r)" \
	sh -c 'dkms status rswap-client | grep -q "$(uname -r).*installed"'
check "modinfo rswap_client (from DKMS)" sh -c 'modinfo -n rswap_client | grep -q /updates/dkms/'
for u in rswap-coord poold rswap-client; do
	st=$(systemctl is-enabled "$u" 2>&1)
	[ "$st" = disabled ] && ok "$u installed disabled" || bad "$u is '$st' after install, expected disabled"
	systemctl -q is-active "$u" && bad "$u runs right after install (unconfigured)" || ok "$u not started by the install"
done

check "the packages created the system user rswap" getent passwd rswap

# ---- 2. configure and start through systemd ------------------------------------------------
cat > /etc/systemd/system/rswap-softroce.service << EOF
# Test stand-in for an RDMA NIC: Soft-RoCE rxe0 on a dummy interface.
[Unit]
Description=Soft-RoCE rxe0 on rxenet0 (test)
Before=rdma-hw.target poold.service rswap-client.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=modprobe crc32_generic
ExecStart=modprobe -a rdma_rxe ib_uverbs rdma_ucm
ExecStart=ip link add rxenet0 type dummy
ExecStart=ip addr add $IP/24 dev rxenet0
ExecStart=ip link set rxenet0 up
ExecStart=rdma link add rxe0 type rxe netdev rxenet0

[Install]
WantedBy=multi-user.target
EOF
systemctl daemon-reload
check "systemctl enable --now rswap-softroce" systemctl enable --now rswap-softroce
check "ibv_devices lists rxe0" sh -c 'ibv_devices | grep -q rxe0'

# The cluster key as DEPLOY.md says: 0600, owned by the daemons' user.
check "rswap-admin keygen > /etc/rswap/cluster.key" sh -c 'rswap-admin keygen > /etc/rswap/cluster.key'
chown rswap:rswap /etc/rswap/cluster.key && chmod 0600 /etc/rswap/cluster.key
cat > /etc/rswap/rswap-coord.conf << EOF
LISTEN=$COORD
OPTIONS=--chunk-size 32M --key-file /etc/rswap/cluster.key
EOF
cat > /etc/rswap/poold.conf << EOF
COORD=$COORD
LISTEN=$IP:9401
CAPACITY=256M
OPTIONS=--key-file /etc/rswap/cluster.key
EOF
# NAME: the default id comes from /etc/machine-id, which this image leaves
# to systemd's first boot.
cat > /etc/rswap/rswap.conf << EOF
COORD=$COORD
SIZE=160M
PRIORITY=10
NAME=rswap-vm
EOF
check "systemctl enable --now rswap-coord" systemctl enable --now rswap-coord
check "rswap-coord listens" wait_for 20 rswap-admin --coord "$COORD" list
check "systemctl enable --now poold" systemctl enable --now poold
check "poold registered (journal)" wait_for 30 sh -c 'journalctl -u poold -o cat | grep -q "registered with coordinator"'
check "poold in rswap-admin list" wait_for 10 sh -c "rswap-admin --coord $COORD list | grep -q $IP:9401"
check "rswap-coord and poold run as rswap, not root" \
	sh -c '[ "$(ps -o user= -C rswap-coord)" = rswap ] && [ "$(ps -o user= -C poold)" = rswap ]'
t=$(date +%s)
check "systemctl enable --now rswap-client" systemctl enable --now rswap-client
echo "rswap-vmtest: rswap-client started in $(secs "$t") s"
check "swapon --show has /dev/rswap0" sh -c 'swapon --show=NAME --noheadings | grep -qx /dev/rswap0'
swapon --show
check "rswap-admin list shows this host's chunks" sh -c "rswap-admin --coord $COORD list | grep -q rswap-vm"
rswap-admin --coord "$COORD" list

# ---- 3. a workload that swaps, data verified ----------------------------------------------
# workload TAG SEED: memhog 192 MiB in a unit limited to 64 MiB (a unit,
# not systemd-run: the root has no D-Bus); pages must go out and come back
# through /dev/rswap0.
workload() {
	local out1 in1 out2 in2 t
	printf '[Service]\nType=oneshot\nMemoryMax=64M\nMemorySwapMax=infinity\nExecStart=%s/memhog 192 %s\n' \
		"$T" "$2" > "/run/systemd/system/memhog-$1.service"
	systemctl daemon-reload
	out1=$(awk '/^pswpout/ {print $2}' /proc/vmstat)
	in1=$(awk '/^pswpin/ {print $2}' /proc/vmstat)
	t=$(date +%s)
	if systemctl start "memhog-$1.service"; then
		ok "$1: memhog 192 MiB in a 64 MiB cgroup, data verified"
	else
		bad "$1: memhog 192 MiB in a 64 MiB cgroup"
		journalctl --no-pager -o cat -u "memhog-$1" | tail -n 20 | sed 's/^/    /'
	fi
	out2=$(awk '/^pswpout/ {print $2}' /proc/vmstat)
	in2=$(awk '/^pswpin/ {print $2}' /proc/vmstat)
	echo "rswap-vmtest: $1: $(secs "$t") s, pswpout +$((out2 - out1)), pswpin +$((in2 - in1)) pages"
	[ $((out2 - out1)) -ge 16384 ] && [ $((in2 - in1)) -ge 8192 ] &&
		ok "$1: at least 64 MiB out and 32 MiB in through swap" ||
		bad "$1: too little swapping (pswpout +$((out2 - out1)), pswpin +$((in2 - in1)))"
}
workload first 11

# ---- 4. stop the client through systemd ----------------------------------------------------
t=$(date +%s)
check "systemctl stop rswap-client" systemctl stop rswap-client
echo "rswap-vmtest: rswap-client stopped in $(secs "$t") s"
check "no swap left" sh -c '[ -z "$(swapon --show --noheadings)" ]'
check "rswap_client unloaded" sh -c '! grep -q "^rswap_client " /proc/modules'
check "chunks returned (rswap-admin list has no rswap-vm)" \
	wait_for 10 sh -c "! rswap-admin --coord $COORD list | grep -q rswap-vm"

# ---- 5. restart poold through systemd, the client comes back ---------------------------------
t=$(date +%s)
check "systemctl restart poold" systemctl restart poold
check "poold registered again" wait_for 30 sh -c '[ "$(journalctl -u poold -o cat | grep -c "registered with coordinator")" -ge 2 ]'
echo "rswap-vmtest: poold restarted and registered in $(secs "$t") s"
check "systemctl start rswap-client (after the poold restart)" systemctl start rswap-client
check "swapon --show has /dev/rswap0 again" sh -c 'swapon --show=NAME --noheadings | grep -qx /dev/rswap0'
workload second 12
check "systemctl stop rswap-client (again)" systemctl stop rswap-client
check "systemctl stop poold" systemctl stop poold
check "systemctl stop rswap-coord" systemctl stop rswap-coord

# ---- 6. the journal -------------------------------------------------------------------------
j() { journalctl --no-pager -o cat -u "$1"; }
check "journal: rswap-coord listened and shut down on SIGTERM" \
	sh -c "journalctl --no-pager -o cat -u rswap-coord | grep -q 'listening on $COORD' &&
		journalctl --no-pager -o cat -u rswap-coord | grep -q 'Terminated received, shutting down'"
check "journal: poold started, registered and stopped twice" \
	sh -c '[ "$(journalctl --no-pager -o cat -u poold | grep -c "^stopped$\|: stopped$")" -ge 2 ] &&
		[ "$(journalctl --no-pager -o cat -u poold | grep -c "starting: capacity")" -ge 2 ]'
for u in rswap-coord poold rswap-client; do
	# A clean stop: systemd says "Deactivated successfully", never a
	# failure result, a kill or a core dump.
	if j "$u" | grep -qE 'Failed with result|status=[1-9][0-9]*/|code=killed|code=dumped|Main process exited, code=exited, status=[1-9]'; then
		bad "journal: $u did not always stop cleanly"
		j "$u" | grep -E 'Failed with result|status=|code=' | sed 's/^/    /'
	else
		ok "journal: $u never failed"
	fi
	[ "$(j "$u" | grep -c 'Deactivated successfully')" -ge 1 ] && ok "journal: $u deactivated successfully" ||
		bad "journal: no 'Deactivated successfully' for $u"
done
check "journal: rswapctl installed and uninstalled twice" \
	sh -c '[ "$(journalctl --no-pager -o cat -u rswap-client | grep -c "^installed: /dev/rswap0")" -ge 2 ] &&
		[ "$(journalctl --no-pager -o cat -u rswap-client | grep -c "^uninstalled: module unloaded")" -ge 2 ]'
kwarn=$(journalctl --no-pager -k -o cat | sed -n '/rswap-vmtest: start/,$p' |
	grep -E 'WARNING:|BUG:|Oops|general protection|soft lockup|blocked for more than|KASAN|UBSAN')
[ -z "$kwarn" ] && ok "kernel log: no WARNING, BUG or Oops" || { bad "kernel log:"; echo "$kwarn" | sed 's/^/    /'; }
check "no failed units" sh -c '[ -z "$(systemctl --failed --no-legend --plain)" ]'

# ---- 7. purge -------------------------------------------------------------------------------
# A second poold as a template instance, with the admin's own config file:
# purge must stop it too, and leave that file alone (it is not the
# packages').
systemctl start rswap-coord poold > /dev/null 2>&1
printf 'COORD=%s\nLISTEN=%s:9402\nCAPACITY=64M\nOPTIONS=--key-file /etc/rswap/cluster.key\n' "$COORD" "$IP" > /etc/rswap/poold-b.conf
check "systemctl start poold@b" systemctl start poold@b
check "poold@b registered" wait_for 30 sh -c "rswap-admin --coord $COORD list | grep -q $IP:9402"
if out=$(apt-get purge -y rswap-client-dkms rswap-tools rswap-poold rswap-coord 2>&1); then
	ok "apt-get purge of the four packages"
else
	bad "apt-get purge"
	echo "$out" | tail -n 20 | sed 's/^/    /'
fi
check "purge stopped the services (poold@b too)" \
	sh -c '! systemctl -q is-active rswap-coord && ! systemctl -q is-active poold && ! systemctl -q is-active poold@b'
check "purge removed the packages' files from /etc/rswap, kept the admin's (key, poold-b.conf)" \
	sh -c '[ "$(ls -A /etc/rswap | tr "\n" " ")" = "cluster.key poold-b.conf " ]'
check "purge removed the DKMS module" sh -c '[ -z "$(dkms status rswap-client)" ] && ! modinfo rswap_client'
check "purge left no unit links" sh -c '! ls /etc/systemd/system/*/rswap-* /etc/systemd/system/*/poold* 2>/dev/null | grep -v -e softroce -e vmtest'
echo "rswap-vmtest: all steps in $(secs "$t0") s"
finish
