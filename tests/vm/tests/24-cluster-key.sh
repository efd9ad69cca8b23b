#!/bin/sh
# The cluster key between poolds, the coordinator and rswap-admin: a poold
# with the key registers; one with a wrong key, without one, or with an
# open key file does not, each with one clear line; a poold with a key does
# not trust a coordinator without one.  Nothing retries in a storm.
set -u
. "$RSWAP_TESTLIB/cluster.sh"
cluster_init
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

alive "$(poold_pid 1)" || fail "the member poold died"
assert_clean_logs
