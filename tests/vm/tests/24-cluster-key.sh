#!/bin/sh
# The cluster key between poolds, the coordinator, rswap-admin and the
# module: a poold with the key registers; one with a wrong key, without
# one, or with an open key file does not, each with one clear line; a poold
# with a key does not trust a coordinator without one.  The module takes
# the key from the keyring: without it, or with a wrong one, insmod fails
# with EACCES and one line; with it the device works.  Nothing retries in
# a storm, and the key never shows in sysfs or the kernel log.
set -u
. "$RSWAP_TESTLIB/swap.sh"
. "$RSWAP_TESTLIB/cluster.sh"
cluster_init
cleanup() {
	mod_loaded && rmmod rswap_client
	stop_all
}
trap cleanup EXIT
modprobe rdma_cm || fail "modprobe rdma_cm"
use_cluster_key

start_coord 9420 16M
start_poold 1 48M
wait_registered 1
admin list > "$CLUSTER_LOG/list.txt" 2>&1 || fail "rswap-admin list with the key failed"
grep -q "$(poold_addr 1) *alive" "$CLUSTER_LOG/list.txt" ||
	fail "the keyed poold is not listed alive"
echo "poold with the key: registered"

# A wrong key: the poold says so once, backs off, and is never listed.
rswap-admin keygen > "$CLUSTER_LOG/wrong.key"
CLUSTER_AUTH="--key-file $CLUSTER_LOG/wrong.key"
start_poold 2 48M
wait_log "$(poold_log 2)" "authentication failed \(wrong cluster key\?\)" 1 15 ||
	fail "poold with a wrong key did not say so"
sleep 3
n=$(grep -c "authentication failed" "$(poold_log 2)")
[ "$n" -eq 1 ] || fail "poold with a wrong key logged its failure $n times in 3 s (want one line)"
grep -qE "poold $(poold_addr 2) from [^ ]+: authentication failed" "$CLUSTER_LOG/coord.log" ||
	fail "the coordinator did not name the poold that failed"
admin list | grep -q "$(poold_addr 2)" && fail "a poold with a wrong key was registered"
echo "poold with a wrong key: refused, one line on each side"

# No key at all: the coordinator refuses its registration.
CLUSTER_AUTH=--insecure
start_poold 3 48M
wait_log "$(poold_log 3)" "refused registration: PooldRegister before authenticating" 1 15 ||
	fail "a poold without the key was not refused clearly"
admin list | grep -q "$(poold_addr 3)" && fail "a poold without the key was registered"
echo "poold without a key: refused"

# A key file others can read is refused at start, exit 2, one line.
cp "$CLUSTER_KEY" "$CLUSTER_LOG/open.key"
chmod 644 "$CLUSTER_LOG/open.key"
poold --coord "$RSWAP_IP:9420" --listen "$(poold_addr 4)" --capacity 48M \
	--key-file "$CLUSTER_LOG/open.key" > "$CLUSTER_LOG/open.log" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "chmod 600" "$CLUSTER_LOG/open.log" ||
	fail "poold with a world-readable key file: exit $rc, $(cat "$CLUSTER_LOG/open.log")"
echo "open key file: refused at start"

# A keyed poold does not trust a coordinator that has no key.
stop_poold 2
stop_poold 3
CLUSTER_AUTH=--insecure
start_coord 9421 16M
CLUSTER_AUTH="--key-file $CLUSTER_KEY"
start_poold 5 48M
wait_log "$(poold_log 5)" "runs without a cluster key \(--insecure\) but this poold has one" 1 15 ||
	fail "a keyed poold registered with a coordinator that has no key"
echo "keyed poold against an --insecure coordinator: refused"

# The module, against the keyed coordinator (port 9420, poold 1 member).
COORD_PORT=9420
COORD="$RSWAP_IP:9420"
insmod_with_key ""
expect_insmod_fails "Permission denied" coord="$COORD" size=32M name=nokey
dmesg | tail -n 5 | grep -q "requires the cluster key" ||
	fail "no key: the module did not say it needs the key"
insmod_with_key "$CLUSTER_LOG/wrong.key"
expect_insmod_fails "Permission denied" coord="$COORD" size=32M name=wrongkey
dmesg | tail -n 5 | grep -q "authentication failed (wrong cluster key?)" ||
	fail "wrong key: the module did not say so"
insmod_with_key "$CLUSTER_KEY"
rswap_insmod coord="$COORD" size=32M name=keyed || fail "insmod with the key: $(cat "$RSWAP_INSMOD_OUT")"
keyctl search @s user rswap:cluster > /dev/null 2>&1 && fail "the key stayed in this shell's keyrings"
dd if=/dev/urandom of="$CLUSTER_LOG/data" bs=1M count=8 2> /dev/null
dd if="$CLUSTER_LOG/data" of=/dev/rswap0 bs=1M oflag=direct 2> /dev/null || fail "write to /dev/rswap0"
dd if=/dev/rswap0 of="$CLUSTER_LOG/back" bs=1M count=8 iflag=direct 2> /dev/null || fail "read from /dev/rswap0"
cmp -s "$CLUSTER_LOG/data" "$CLUSTER_LOG/back" || fail "data read back differs"
admin list | grep -q "client keyed" || fail "rswap-admin does not list the keyed client"
hex=$(head -c 16 "$CLUSTER_KEY")
if grep -rqs "$hex" /sys/module/rswap_client /sys/block/rswap0/rswap 2> /dev/null ||
	dmesg | grep -q "$hex"; then
	fail "the cluster key shows in sysfs or the kernel log"
fi
rmmod rswap_client || fail "rmmod"
echo "module: no key and a wrong key refused (EACCES), the right key from the keyring works; key not in sysfs or dmesg"

alive "$(poold_pid 1)" || fail "the member poold died"
assert_clean_logs
