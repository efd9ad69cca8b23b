#!/bin/sh
# Cluster basics: one coordinator and three poolds on Soft-RoCE; a client
# whose pool is larger than any one poold gets chunks on all three, writes
# and verifies every chunk over RDMA; the coordinator is killed (-9) while a
# client keeps reading, restarted, relearns the same map from the poolds' registrations, and the
# data is still intact; release frees every chunk and revokes the access of
# a client that is still connected.
set -u
. "$RSWAP_TESTLIB/cluster.sh"
cluster_init

# Huge pages for one chunk (8 x 2M): one poold gets them, the rest fall back.
hp=/proc/sys/vm/nr_hugepages
hp_old=$(cat "$hp" 2>/dev/null || echo 0)
echo 8 > "$hp" 2>/dev/null
CLUSTER_ON_EXIT='echo "$hp_old" > "$hp" 2>/dev/null'

# poold 3 starts before the coordinator exists: it must keep retrying.
COORD_PORT=9400
start_poold 3 48M
sleep 1
start_coord 9400 16M
for n in 1 2; do start_poold "$n" 48M; done
for n in 1 2 3; do wait_registered "$n"; done
grep -q "retrying in" "$(poold_log 3)" || fail "poold 3 did not log its retries"
grep -q "per-session queue pair limit" "$(poold_log 1)" ||
	fail "poold does not log its per-session queue pair limit"

# 96M = 6 chunks of 16M; one poold holds at most 3.
testclient --id h1 --size 96M --qps 2 write > "$CLUSTER_LOG/write.log" 2>&1 ||
	{ cat "$CLUSTER_LOG/write.log"; fail "testclient write failed"; }
cat "$CLUSTER_LOG/write.log"
if [ "$(cat "$hp")" -ge 8 ]; then
	cat "$CLUSTER_LOG"/poold*.log | grep -q "huge pages)" ||
		fail "no poold used the reserved huge pages"
	cat "$CLUSTER_LOG"/poold*.log | grep -q "normal pages)" ||
		fail "no poold fell back to normal pages"
fi

admin list > "$CLUSTER_LOG/list1.txt" 2>&1 || fail "rswap-admin list failed"
cat "$CLUSTER_LOG/list1.txt"
for n in 1 2 3; do
	used=$(json_poold_used "$(poold_addr "$n")")
	[ "${used:-0}" -ge 1 ] || fail "poold $n holds no chunk of h1 (chunks_used '${used}')"
	grep -q "$(poold_addr "$n")" "$CLUSTER_LOG/list1.txt" ||
		fail "rswap-admin list does not show poold $n"
done
[ "$(json_used_total)" = $((96 * 1024 * 1024)) ] || fail "used_total is not 96M"
admin --json status h1 > "$CLUSTER_LOG/map-before.json" || fail "rswap-admin status h1 failed"

# Crash the coordinator under a connected client: the data path goes on.
testclient --id h1 --size 96M --hold 4 verify > "$CLUSTER_LOG/hold0.log" 2>&1 &
holdpid=$!
wait_log "$CLUSTER_LOG/hold0.log" "holding the connections" 1 60 ||
	fail "the holding client did not connect and verify"
kill_coord
wait "$holdpid" || { cat "$CLUSTER_LOG/hold0.log"; fail "RDMA I/O failed while the coordinator was down"; }
grep -q "still connected after 4 s: data intact" "$CLUSTER_LOG/hold0.log" ||
	fail "the holding client did not re-read its data with the coordinator down"
echo "coordinator down: a connected client still reads its data"

# Restart it; the poolds re-register with the chunks they hold.
start_coord 9400 16M
for n in 1 2 3; do wait_registered "$n" 2; done
grep -qE "[123] chunks held" "$(poold_log 1)" ||
	fail "poold 1 did not report its chunks on re-registration"
admin --json status h1 > "$CLUSTER_LOG/map-after.json" || fail "rswap-admin status h1 failed after restart"
cmp -s "$CLUSTER_LOG/map-before.json" "$CLUSTER_LOG/map-after.json" || {
	cat "$CLUSTER_LOG/map-before.json" "$CLUSTER_LOG/map-after.json"
	fail "chunk map of h1 differs after the coordinator restart"
}
testclient --id h1 --size 96M verify > "$CLUSTER_LOG/verify.log" 2>&1 ||
	{ cat "$CLUSTER_LOG/verify.log"; fail "data did not survive the coordinator restart"; }
cat "$CLUSTER_LOG/verify.log"

# Heartbeats carry the poold's counts: wait until the coordinator has one.
sleep 1
admin list

# Release while a client is connected: the poolds must revoke its access.
testclient --id h1 --size 96M --hold 60 --expect-revoked verify \
	> "$CLUSTER_LOG/hold.log" 2>&1 &
holdpid=$!
wait_log "$CLUSTER_LOG/hold.log" "holding the connections" 1 60 ||
	fail "the holding client did not connect and verify"
# The poolds' heartbeats report the connected client (period 200 ms).
sleep 1
for n in 1 2 3; do
	[ "$(json_poold "$(poold_addr "$n")" clients_connected)" = 1 ] ||
		{ admin list; fail "poold $n heartbeat does not report 1 connected client"; }
done
testclient --id h1 release || fail "release of h1 failed"
wait "$holdpid" || { cat "$CLUSTER_LOG/hold.log"; fail "a connected client kept access to released chunks"; }
cat "$CLUSTER_LOG/hold.log"
grep -q "freed while connected" "$(poold_log 1)" ||
	fail "poold 1 did not revoke a connected client's chunk"
[ "$(json_used_total)" = 0 ] || { admin list; fail "chunks still used after release"; }
for n in 1 2 3; do
	[ "$(json_poold_used "$(poold_addr "$n")")" = 0 ] || fail "poold $n still holds chunks"
done
grep -q "freed" "$(poold_log 1)" || fail "poold 1 did not log freeing chunks"
# With its chunks gone, the client is refused by every poold that held them.
rswap-testclient --poold "$(poold_addr 1)" --id h1 --expect-refusal NO_CHUNKS connect ||
	fail "a released client was not refused with NO_CHUNKS"

for n in 1 2 3; do stop_poold "$n"; done
grep -q "stopped" "$(poold_log 1)" || fail "poold 1 did not log a clean stop"
assert_clean_logs
echo "20-cluster-basic: 6 chunks on 3 poolds written, verified across a coordinator restart, released"
