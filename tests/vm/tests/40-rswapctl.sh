#!/bin/sh
# rswapctl, the host's install helper, against a real cluster on Soft-RoCE:
# install (module, mkswap, swapon with priority), status (map, counters,
# the coordinator's view), a little swapping, uninstall (swap off, module
# gone, chunks back); failures leave the host as it was: coordinator
# unreachable (the module's reason is shown), a step after the module
# loaded failing (undone), bad usage (exit 2); config file defaults; the
# default client id from the machine id; an id another live host holds
# (EBUSY) refused with a hint and nothing left.  The cluster has a key:
# rswapctl hands it to the module from /etc/rswap/cluster.key; a wrong key
# is refused (EACCES) with a hint, an open key file is a usage error.
set -u
. "$RSWAP_TESTLIB/swap.sh"
. "$RSWAP_TESTLIB/cluster.sh"	# its fail() also dumps the daemons' logs

[ "${RSWAP_RXE:-}" = up ] || fail "Soft-RoCE is not up in this VM"
[ -r "$RSWAP_KO" ] || fail "no module at $RSWAP_KO"
command -v rswapctl > /dev/null || fail "rswapctl is not on PATH (cmake --install)"
cluster_init
cleanup() {
	swapoff /dev/rswap0 2> /dev/null
	mod_loaded && rmmod rswap_client
	rm -f /tmp/rswapctl.conf
	rm -rf /etc/rswap
	stop_all
}
trap cleanup EXIT
use_cluster_key
mkdir -p /etc/rswap
cp "$CLUSTER_KEY" /etc/rswap/cluster.key
chmod 600 /etc/rswap/cluster.key

COORD="$RSWAP_IP:9410"
start_coord 9410 16M
for n in 1 2; do start_poold "$n" 48M; done
for n in 1 2; do wait_registered "$n"; done

OUT=/tmp/rswapctl.out
# This VM has no /etc/machine-id; the default client id comes from this one.
echo 0123456789abcdef0123456789abcdef > /tmp/machine-id
export RSWAP_MACHINE_ID_FILE=/tmp/machine-id
chunks_used() { v=$(json_used_total); echo "${v:-0}"; }
# untouched: no module, no device, no swap, no chunks held.
untouched() {
	mod_loaded && fail "$1: the module stayed loaded"
	[ -e /dev/rswap0 ] && fail "$1: /dev/rswap0 exists"
	grep -q rswap /proc/swaps && fail "$1: swap left on"
	[ "$(chunks_used)" = 0 ] || fail "$1: $(chunks_used) bytes of chunks still held"
	true
}

# util-linux swapon sets priorities; busybox's cannot (rswapctl says so).
PRIO=""
# By full path: busybox ash prefers its applet to PATH.
if /usr/sbin/swapon --help 2>&1 | grep -q -e '-p[ ,]'; then
	PRIO=7
else
	note "this swapon has no -p (busybox): priority checks skipped (vm/run --extra-bin /usr/sbin/swapon)"
fi

# ---- usage errors: exit 2, nothing touched ------------------------------------
for args in "--coord $COORD --size 12Q" "--coord $COORD --size 1000" \
	"--coord $COORD" "--size 32M" "--coord $RSWAP_IP:0 --size 32M" \
	"--coord $COORD --size 32M --priority -4" "--coord $COORD --size 32M --name" \
	"--coord $COORD --size 32M --bogus"; do
	# shellcheck disable=SC2086
	rswapctl install $args --module "$RSWAP_KO" > $OUT 2>&1
	rc=$?
	[ $rc = 2 ] || { cat $OUT; fail "rswapctl install $args: exit $rc, expected 2"; }
	note "install $args -> 2: $(head -n 1 $OUT)"
done
untouched "usage errors"

# ---- the key: an open key file is a usage error, a wrong key refused --------------
cp "$CLUSTER_KEY" /tmp/open.key
chmod 644 /tmp/open.key
rswapctl install --coord "$COORD" --size 32M --module "$RSWAP_KO" --key-file /tmp/open.key > $OUT 2>&1
[ $? = 2 ] && grep -q "chmod 600" $OUT || { cat $OUT; fail "an open key file was not a usage error"; }
rswap-admin keygen > /tmp/wrong.key
rswapctl install --coord "$COORD" --size 32M --module "$RSWAP_KO" --key-file /tmp/wrong.key > $OUT 2>&1 &&
	{ cat $OUT; fail "install with a wrong key succeeded"; }
grep -q "do not share the cluster key" $OUT || { cat $OUT; fail "no hint for a wrong key"; }
grep -q "authentication failed (wrong cluster key?)" $OUT || { cat $OUT; fail "the module's reason for a wrong key was not shown"; }
untouched "wrong key"
note "wrong key: $(grep 'do not share' $OUT)"

# ---- coordinator unreachable: the module's reason, nothing left -------------------
rswapctl install --coord "$RSWAP_IP:1" --size 32M --module "$RSWAP_KO" > $OUT 2>&1 &&
	{ cat $OUT; fail "install with an unreachable coordinator succeeded"; }
cat $OUT
grep -q "Connection refused" $OUT || fail "no reason (Connection refused) in rswapctl's output"
grep -q "the module says:" $OUT || fail "the module's own dmesg line was not shown"
grep -q "rswap_client:" $OUT || fail "the module's own dmesg line was not shown"
untouched "unreachable coordinator"

# ---- a step after the module loaded fails: undone -------------------------------
RSWAPCTL_FAIL_AT=swapon rswapctl install --coord "$COORD" --size 32M --name undo \
	--module "$RSWAP_KO" > $OUT 2>&1 && { cat $OUT; fail "injected swapon failure: exit 0"; }
cat $OUT
grep -q "undone" $OUT || fail "no 'undone' after the injected failure"
sleep 0.5
untouched "injected swapon failure"

# ---- the default client id: m- and 24 hex digits of the machine id -------------
rswapctl install --coord "$COORD" --size 32M --module "$RSWAP_KO" > $OUT 2>&1 ||
	{ cat $OUT; fail "install with the default id: exit $?"; }
[ "$(rsysfs client_id)" = m-0123456789abcdef01234567 ] ||
	fail "default client id $(rsysfs client_id), expected m-0123456789abcdef01234567"
rswapctl uninstall > $OUT 2>&1 || { cat $OUT; fail "uninstall: exit $?"; }
echo nothex > /tmp/machine-id.bad
RSWAP_MACHINE_ID_FILE=/tmp/machine-id.bad rswapctl install --coord "$COORD" --size 32M \
	--module "$RSWAP_KO" > $OUT 2>&1
[ $? = 2 ] || { cat $OUT; fail "install with a bad machine id: expected exit 2"; }
grep -q "not 32 hex digits" $OUT || { cat $OUT; fail "no reason for the bad machine id"; }
sleep 0.5
untouched "default client id"

# ---- an id another live host holds: refused, with a hint, nothing left ----------
rswap-testclient --coord "$COORD" --key-file "$CLUSTER_KEY" --id busy-id --size 16M --hold-coord 120 map \
	> /tmp/holder.log 2>&1 &
holder=$!
wait_log /tmp/holder.log "holding client id busy-id" 1 60 ||
	{ cat /tmp/holder.log; fail "the test client did not hold busy-id"; }
rswapctl install --coord "$COORD" --size 16M --name busy-id --module "$RSWAP_KO" > $OUT 2>&1 &&
	{ cat $OUT; fail "install with an id another live host holds succeeded"; }
cat $OUT
grep -q "another live host uses client id 'busy-id'" $OUT || fail "no hint for EBUSY"
grep -q 'in use by a live session' $OUT || fail "the module's EBUSY line was not shown"
kill "$holder"
wait "$holder" 2> /dev/null
mod_loaded && fail "EBUSY install: the module stayed loaded"
[ "$(chunks_used)" = $((16 * 1048576)) ] || fail "the holder's chunks changed: $(chunks_used)"
testclient --id busy-id release > /dev/null 2>&1 || fail "release of busy-id"
untouched "EBUSY install"

# ---- install --------------------------------------------------------------------
PRIO_OPT=""
[ -n "$PRIO" ] && PRIO_OPT="--priority $PRIO"
# shellcheck disable=SC2086
rswapctl install --coord "$COORD" --size 64M --name ctl1 $PRIO_OPT \
	--module "$RSWAP_KO" > $OUT 2>&1 || { cat $OUT; fail "rswapctl install: exit $?"; }
cat $OUT
grep -q "^/dev/rswap0 " /proc/swaps || fail "/dev/rswap0 not in /proc/swaps"
cat /proc/swaps
if [ -n "$PRIO" ]; then
	[ "$(awk '$1 == "/dev/rswap0" { print $5 }' /proc/swaps)" = "$PRIO" ] ||
		fail "swap priority is not $PRIO"
fi
[ "$(chunks_used)" = $((64 * 1048576)) ] || fail "coordinator shows $(chunks_used) bytes used, expected 64M"

rswapctl install --coord "$COORD" --size 64M --module "$RSWAP_KO" > $OUT 2>&1 &&
	fail "a second install succeeded"
grep -q "already installed" $OUT || { cat $OUT; fail "second install: no 'already installed'"; }

# ---- status ------------------------------------------------------------------------
rswapctl status > $OUT 2>&1 || { cat $OUT; fail "rswapctl status: exit $?"; }
cat $OUT
grep -q "^device: /dev/rswap0, 64.0M" $OUT || fail "status: no device line"
grep -q "^swap: active" $OUT || fail "status: swap not shown active"
grep -q "^pool: 4 chunk(s) of 16.0M" $OUT || fail "status: no pool line"
[ "$(grep -c "^  [0-3] $RSWAP_IP:95" $OUT)" -ge 4 ] || fail "status: chunk map incomplete"
grep -q "chunks=" $OUT || fail "status: no per-poold line"
grep -q "^  writes " $OUT || fail "status: no counters"
grep -q "client ctl1: 64M in 4 chunks" $OUT || fail "status: no coordinator view"
grep -q "^coordinator link: live, 0 reconnect(s)$" $OUT || fail "status: no coordinator link line"
grep -q "session: live, from $RSWAP_IP:" $OUT || fail "status: the coordinator shows no live session"
grep -q "chunks per poold: $RSWAP_IP:9501 2, $RSWAP_IP:9502 2" $OUT ||
	fail "status: rswap-admin shows no chunks per poold"

# ---- a little swapping ---------------------------------------------------------------
out0=$(vmstat pswpout)
in0=$(vmstat pswpin)
memhog_under_limit 24 50 1
note "pswpout +$(($(vmstat pswpout) - out0)) pswpin +$(($(vmstat pswpin) - in0))"
[ $(($(vmstat pswpout) - out0)) -gt 0 ] || fail "nothing was swapped out"
rswapctl status | grep -A 3 "^counters"

# ---- uninstall ---------------------------------------------------------------------------
# Leave pages on the device so that swapoff has work: a hog stopped while
# its cgroup holds it at 8M, then allowed all memory back.
cg_make rswapctl-keep $((8 * 1048576))
cg_run rswapctl-keep memhog 40 5 > /dev/null 2>&1 &
hold=$!
i=0
while [ "$(awk '$1 == "/dev/rswap0" { print $4 }' /proc/swaps)" -lt 16384 ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
kill -STOP "$hold" 2> /dev/null || fail "the hog ended before 16M were on swap"
echo max > "$RSWAP_CG/rswapctl-keep/memory.max"
CLUSTER_ON_EXIT="kill -9 $hold 2> /dev/null; rmdir $RSWAP_CG/rswapctl-keep 2> /dev/null"
note "before uninstall: $(grep rswap0 /proc/swaps)"
rswapctl uninstall > $OUT 2>&1 || { cat $OUT; fail "rswapctl uninstall: exit $?"; }
cat $OUT
kill -9 "$hold" 2> /dev/null
wait "$hold" 2> /dev/null
cg_remove rswapctl-keep
grep -q "uninstalled" $OUT || fail "uninstall: no final line"
sleep 0.5
untouched "uninstall"
rswapctl uninstall > $OUT 2>&1 || fail "second uninstall: exit $?, expected 0 (nothing to do)"
rswapctl status > $OUT 2>&1
[ $? = 3 ] || { cat $OUT; fail "status without the module: expected exit 3"; }

# ---- defaults from a config file ------------------------------------------------------------
cat > /tmp/rswapctl.conf <<EOF
# test config
COORD=$COORD
SIZE=32M
NAME="ctlconf"
MODULE=$RSWAP_KO
REPLICAS=2
EOF
[ -n "$PRIO" ] && echo "PRIORITY=$PRIO" >> /tmp/rswapctl.conf
RSWAP_CONF=/tmp/rswapctl.conf rswapctl install > $OUT 2>&1 || { cat $OUT; fail "install from the config file: exit $?"; }
cat $OUT
[ "$(rsysfs client_id)" = ctlconf ] || fail "NAME from the config was not used"
[ "$(($(cat /sys/block/rswap0/size) * 512))" = $((32 * 1048576)) ] || fail "SIZE from the config was not used"
rsysfs replicas | grep -q "^replicas=2 healthy=2 " || fail "REPLICAS=2 from the config was not used: $(rsysfs replicas)"
# An option beats the config: status --coord given, install --size given.
RSWAP_CONF=/tmp/rswapctl.conf rswapctl uninstall > $OUT 2>&1 || { cat $OUT; fail "uninstall: exit $?"; }
RSWAP_CONF=/tmp/rswapctl.conf rswapctl install --size 48M --name ctlopt --replicas 1 > $OUT 2>&1 ||
	{ cat $OUT; fail "install with the config and options: exit $?"; }
[ "$(rsysfs client_id)" = ctlopt ] || fail "--name did not override NAME="
rsysfs replicas | grep -q "^replicas=1 " || fail "--replicas 1 did not override REPLICAS=: $(rsysfs replicas)"
[ "$(($(cat /sys/block/rswap0/size) * 512))" = $((48 * 1048576)) ] || fail "--size did not override SIZE="
rswapctl uninstall > $OUT 2>&1 || { cat $OUT; fail "uninstall: exit $?"; }
echo "BOGUS=1" >> /tmp/rswapctl.conf
RSWAP_CONF=/tmp/rswapctl.conf rswapctl install > $OUT 2>&1
[ $? = 2 ] || { cat $OUT; fail "a config with an unknown key: expected exit 2"; }
sleep 0.5
untouched "config tests"

# ---- no --module: the installed module, loaded with modprobe (as after DKMS) ----
rel=$(uname -r)
rswapctl install --coord "$COORD" --size 32M > $OUT 2>&1 &&
	{ cat $OUT; fail "install with no module anywhere succeeded"; }
grep -q "install it with DKMS" $OUT || { cat $OUT; fail "no hint to install the module"; }
mkdir -p "/lib/modules/$rel/updates/dkms"
cp "$RSWAP_KO" "/lib/modules/$rel/updates/dkms/rswap-client.ko"
CLUSTER_ON_EXIT="${CLUSTER_ON_EXIT:-}; rm -f /lib/modules/$rel/updates/dkms/rswap-client.ko; depmod -a $rel"
if depmod -a "$rel" 2> /dev/null; then
	rswapctl install --coord "$COORD" --size 32M --name ctlmp > $OUT 2>&1 ||
		{ cat $OUT; fail "install of the depmod-known module: exit $?"; }
	cat $OUT
	grep -q "with modprobe" $OUT || fail "the installed module was not loaded with modprobe"
	rswapctl uninstall > $OUT 2>&1 || { cat $OUT; fail "uninstall: exit $?"; }
else
	note "depmod failed in this VM: modprobe path not tested"
fi
rm -f "/lib/modules/$rel/updates/dkms/rswap-client.ko"
depmod -a "$rel" 2> /dev/null
sleep 0.5
untouched "modprobe path"
exit 0
