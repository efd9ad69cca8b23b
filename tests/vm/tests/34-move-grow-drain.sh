#!/bin/sh
# Live chunk moves, 1: the pool grows and a memory node is drained, while
# verifying workloads run on /dev/rswap0.
#  - Grow: two poolds hold the client's chunks; a third is added and
#    `rswap-admin rebalance --wait` moves chunks onto it while fio writes
#    and verifies (crc32c) the device in a loop.  Chunks end up on all
#    three, the client's map epoch grew, fio verified every pass.
#  - Drain, then kill: with swap on the device and memhog checking every
#    page it reads back under a cgroup limit, `rswap-admin drain --wait`
#    empties poold 1; then poold 1 is killed with -9.  No I/O error,
#    nothing lost; the coordinator and the client agree on every chunk.
set -u
. "$RSWAP_TESTLIB/swap.sh"
. "$RSWAP_TESTLIB/cluster.sh"
. "$RSWAP_TESTLIB/session.sh"
. "$RSWAP_TESTLIB/move.sh"

[ "${RSWAP_RXE:-}" = up ] || fail "Soft-RoCE is not up in this VM"
command -v fio > /dev/null || skip "fio not in the VM (--extra-bin /usr/bin/fio)"
cluster_init
cleanup() {
	work_stop 2> /dev/null
	swapoff /dev/rswap0 2> /dev/null
	mod_loaded && rmmod rswap_client
	stop_all
}
trap cleanup EXIT
modprobe rdma_cm || fail "modprobe rdma_cm"

start_coord 9400 16M
for n in 1 2; do start_poold "$n" 64M; done
for n in 1 2; do wait_registered "$n"; done
P1=$(poold_addr 1)
P2=$(poold_addr 2)
P3=$(poold_addr 3)

rswap_insmod coord="$RSWAP_IP:9400" size=96M name=mover timeout_ms=2000 \
	fail_io_tmo=30 || fail "insmod: $(cat $RSWAP_INSMOD_OUT)"
epoch0=$(move_field epoch)

# ---- grow -----------------------------------------------------------------
fio_loop_start grow 96M
start_poold 3 64M
wait_registered 3
[ -z "$(slots_on "$P3")" ] || fail "poold 3 holds chunks before any rebalance"
admin rebalance --wait || fail "rebalance --wait failed: $(rsysfs moves)"
work_stop || fail "fio failed while chunks moved"
[ -n "$(slots_on "$P3")" ] || fail "no chunk on poold 3 after rebalance: $(rsysfs chunk_map | tr '\n' ' ')"
for p in "$P1" "$P2" "$P3"; do
	[ -n "$(slots_on "$p")" ] || fail "no chunk left on $p after rebalance"
done
[ "$(move_field epoch)" -gt "$epoch0" ] || fail "the map epoch did not grow: $(rsysfs moves)"
[ "$(move_field failed)" = 0 ] || fail "moves failed: $(rsysfs moves)"
maps_agree mover || fail "coordinator and client disagree after the rebalance"
note "grow: $(move_field done) moves, fio verified $(cat /tmp/work.passes) passes; $(rsysfs moves)"

# ---- drain, then kill ------------------------------------------------------
mkswap /dev/rswap0 > /dev/null || fail "mkswap"
swapon /dev/rswap0 || fail "swapon"
hog_loop_start 64
sleep 2
done0=$(move_field done)
admin drain "$P1" --wait || fail "drain --wait failed: $(rsysfs moves)"
[ -z "$(slots_on "$P1")" ] || fail "chunks left on the drained poold: $(rsysfs chunk_map | tr '\n' ' ')"
[ "$(json_poold_used "$P1")" = 0 ] || fail "the coordinator still counts chunks on $P1"
[ "$(move_field done)" -gt "$done0" ] || fail "drain moved nothing: $(rsysfs moves)"
kill -9 "$(poold_pid 1)"
note "poold 1 drained and killed; the workload goes on"
sleep 5
work_stop || fail "memhog lost data across the drain and the kill"
maps_agree mover || fail "coordinator and client disagree after the drain"
swapoff /dev/rswap0 || fail "swapoff"
no_io_errors "after the drain"
rsysfs chunk_map
rsysfs moves

rswap_rmmod || fail "rmmod after the moves"
assert_clean_logs
echo "34-move-grow-drain: grew onto a third poold and drained one under fio and swap, $(move_field done) moves, nothing lost"
