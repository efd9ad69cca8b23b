#!/bin/sh
# Sessions that fail and come back, 2: a poold restarts (a new
# incarnation: its memory is gone).  The device is filled with a known
# pattern; poold 1 is stopped cleanly and started again on the same
# address.  The client reconnects, learns that poold 1 no longer holds its
# chunks, and marks exactly those slots lost: every read and write of them
# fails with an I/O error and returns no data, never zeroes or the old
# bytes; every other slot still reads back the pattern.  The chunk map and
# the poolds file show the lost chunks, and so does the coordinator
# (rswap-admin status); rmmod is clean afterwards.
set -u
. "$RSWAP_TESTLIB/swap.sh"
. "$RSWAP_TESTLIB/cluster.sh"
. "$RSWAP_TESTLIB/session.sh"

[ "${RSWAP_RXE:-}" = up ] || fail "Soft-RoCE is not up in this VM"
cluster_init
cleanup() {
	mod_loaded && rmmod rswap_client
	stop_all
}
trap cleanup EXIT
modprobe rdma_cm || fail "modprobe rdma_cm"

start_coord 9400 16M
for n in 1 2; do start_poold "$n" 48M; done
for n in 1 2; do wait_registered "$n"; done
P1=$(poold_addr 1)
P2=$(poold_addr 2)

rswap_insmod coord="$RSWAP_IP:9400" size=64M name=restart timeout_ms=2000 \
	fail_io_tmo=30 || fail "insmod: $(cat $RSWAP_INSMOD_OUT)"
lost_slots=$(slots_on "$P1")
kept_slots=$(slots_on "$P2")
[ -n "$lost_slots" ] && [ -n "$kept_slots" ] || fail "expected slots on both poolds: $(rsysfs chunk_map)"
inc0=$(grep -o "incarnation 0x[0-9a-f]*" "$(poold_log 1)" | tail -n 1)

head -c $((64 * 1048576)) /dev/urandom > /tmp/pattern
dd if=/tmp/pattern of=/dev/rswap0 bs=1M oflag=direct 2> /dev/null || fail "writing the pattern"
for s in $lost_slots $kept_slots; do slot_expect "$s" /tmp/pattern; done
note "pattern written and read back; slots on poold 1: $(echo $lost_slots), on poold 2: $(echo $kept_slots)"

# Restart poold 1: SIGTERM disconnects the client and frees its memory.
stop_poold 1
start_poold 1 48M
wait_registered 1 2
inc1=$(grep -o "incarnation 0x[0-9a-f]*" "$(poold_log 1)" | tail -n 1)
[ "$inc0" != "$inc1" ] || fail "poold 1 kept its $inc0 across a restart"
note "poold 1 restarted: $inc0 -> $inc1"

# The client finds out on its next attempt (a read drives it there).
i=0
while [ "$(sess_field "$P1" lost_chunks)" != "$(echo $lost_slots | wc -w)" ]; do
	slot_read "$(echo $lost_slots | cut -d' ' -f1)" /tmp/.probe > /dev/null 2>&1
	i=$((i + 1))
	[ $i -gt 120 ] && fail "poold 1's chunks not marked lost: $(sess_line "$P1")"
	sleep 0.5
done
rsysfs chunk_map
rsysfs poolds

for s in $lost_slots; do
	rsysfs chunk_map | grep -q "^$s $P1 [0-9]* lost$" || fail "chunk_map does not show slot $s lost"
	slot_expect_error "$s"
	m=$(slot_mib)
	dd if=/tmp/pattern of=/dev/rswap0 bs=1M seek=$((s * m)) skip=$((s * m)) count=1 \
		oflag=direct 2> /dev/null && fail "a write to lost slot $s succeeded"
done
for s in $kept_slots; do
	rsysfs chunk_map | grep -q "^$s $P2 [0-9]* ok$" || fail "chunk_map does not show slot $s ok"
	slot_expect "$s" /tmp/pattern
done
[ "$(err_count lost)" -gt 0 ] || fail "no 'lost' errors counted: $(rsysfs errors | tr '\n' ' ')"
[ "$(err_count io)" = 0 ] || fail "$(err_count io) 'io' errors counted"
[ "$(sess_field "$P2" reconnects)" = 0 ] || fail "poold 2's session reconnected though nothing happened to it"
# The coordinator shows exactly those slots lost (the restarted poold's
# registration and the client's heartbeat both say so).
i=0
while :; do
	admin --json status restart > /tmp/status.json || fail "rswap-admin status failed"
	n=0
	for s in $lost_slots; do
		grep -q "{\"index\":$s,[^}]*\"lost\":true" /tmp/status.json && n=$((n + 1))
	done
	[ $n = "$(echo $lost_slots | wc -w)" ] && break
	i=$((i + 1))
	[ $i -gt 40 ] && fail "the coordinator does not show slots $(echo $lost_slots) lost: $(cat /tmp/status.json)"
	sleep 0.5
done
for s in $kept_slots; do
	grep -q "{\"index\":$s,[^}]*\"lost\":false" /tmp/status.json ||
		fail "the coordinator shows kept slot $s lost: $(cat /tmp/status.json)"
done
admin status restart
dmesg | grep "rswap_client: poold $P1" | grep -i "lost" | head -n 3

rswap_rmmod || fail "rmmod after the restart"
assert_clean_logs
echo "32-sess-poold-restart: slots $(echo $lost_slots) lost and failing with EIO, slots $(echo $kept_slots) intact"
