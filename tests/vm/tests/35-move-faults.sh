#!/bin/sh
# Live chunk moves, 2: faults in the middle of a move, while fio writes
# and verifies (crc32c) /dev/rswap0 pass after pass.  The copy is slowed
# down (debugfs move_window_delay_ms) so that each fault lands mid-copy.
#  - Target dies: a poold added after the client loaded (so it holds none
#    of its chunks) is the target of a drain's first move and is killed
#    with -9 mid-copy.  The move aborts, the chunk stays where it was, no
#    I/O error.
#  - Coordinator dies: rswap-coord is killed with -9 mid-move; swap I/O
#    goes on while it is down and the client finishes the move on its
#    own.  The restarted coordinator learns from the client which copy is
#    in use, frees the other, and agrees with the client on every chunk.
#  - Client dies: the module is unloaded mid-move; the move aborts and
#    the release frees both copies.  Then 20 load/unload cycles: no
#    kernel memory or chunk leaks.
# fio verifies every block throughout.
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
	mod_loaded && rmmod rswap_client
	stop_all
}
trap cleanup EXIT
modprobe rdma_cm || fail "modprobe rdma_cm"

start_coord 9400 16M
for n in 1 2 3; do start_poold "$n" 64M; done
for n in 1 2 3; do wait_registered "$n"; done
P1=$(poold_addr 1)

rswap_insmod coord="$RSWAP_IP:9400" size=64M name=faulty timeout_ms=2000 \
	fail_io_tmo=30 || fail "insmod: $(cat $RSWAP_INSMOD_OUT)"
[ -n "$(slots_on "$P1")" ] || fail "no chunk on poold 1: $(rsysfs chunk_map | tr '\n' ' ')"
# An empty poold: the least used, so the drain's moves go there first.
start_poold 4 64M
wait_registered 4
P4=$(poold_addr 4)
# 8 windows of 2 MiB per chunk at 600 ms: about 5 s per move.
move_delay 600
fio_loop_start faults 64M

# ---- the target dies ---------------------------------------------------------
before=$(slots_on "$P1" | tr '\n' ' ')
failed0=$(move_field failed)
admin drain "$P1" > /dev/null || fail "drain $P1"
wait_moving 30 || fail "no move started: $(rsysfs moves)"
T=$(move_field to)
slot=$(move_field moving)
[ "$T" = "$P4" ] || fail "the first move goes to $T, not to the empty poold $P4"
kill -9 "$(poold_pid 4)"
note "target $T of slot $slot killed mid-copy: $(rsysfs moves)"
wait_moves_idle 60 || fail "the move did not end after its target died: $(rsysfs moves)"
[ "$(move_field failed)" -gt "$failed0" ] || fail "the move did not abort: $(rsysfs moves)"
rsysfs chunk_map | grep -q "^$slot $P1 " || fail "slot $slot left poold 1 though its move aborted"
admin undrain "$P1" > /dev/null || fail "undrain $P1"
# Let any move the coordinator still had queued end before the next case.
sleep 2
wait_moves_idle 60 || fail "moves did not settle: $(rsysfs moves)"
[ "$(slots_on "$P1" | tr '\n' ' ')" = "$before" ] ||
	note "slots on poold 1 now: $(slots_on "$P1" | tr '\n' ' ') (were: $before)"
sess_line "$P4" | grep -q "state=idle" || fail "the dead target's session is not idle: $(sess_line "$P4")"
note "target dies: move aborted, slot $slot stayed on $P1"

# ---- the coordinator dies ------------------------------------------------------
done0=$(move_field done)
src=$(rsysfs chunk_map | awk '{ print $2 }' | sort | uniq -c | sort -rn | awk 'NR == 1 { print $2 }')
[ "$src" != "$P4" ] || fail "slots on the dead poold: $(rsysfs chunk_map | tr '\n' ' ')"
admin drain "$src" > /dev/null || fail "drain $src"
wait_moving 30 || fail "no move started: $(rsysfs moves)"
slot=$(move_field moving)
kill_coord
note "coordinator killed while slot $slot moves: $(rsysfs moves)"
p0=$(cat /tmp/work.passes)
wait_moves_idle 60 || fail "the move did not end without the coordinator: $(rsysfs moves)"
[ "$(move_field done)" -gt "$done0" ] || fail "the client did not finish the move: $(rsysfs moves)"
# Swap I/O goes on while the coordinator is away.
i=0
while [ "$(cat /tmp/work.passes)" -le "$p0" ]; do
	i=$((i + 1))
	[ $i -gt 120 ] && fail "no fio pass completed while the coordinator was down"
	alive "$WORK_PID" || { work_stop; fail "fio failed while the coordinator was down"; }
	sleep 0.5
done
COORD_GRACE_MS=3000 start_coord 9400 16M
i=0
while [ "$(rsysfs coord_state)" != live ]; do
	i=$((i + 1))
	[ $i -gt 120 ] && fail "the client did not reconnect to the restarted coordinator"
	sleep 0.5
done
i=0
until maps_agree faulty; do
	i=$((i + 1))
	[ $i -gt 60 ] && fail "the restarted coordinator disagrees with the client"
	sleep 0.5
done
# The old copy is freed: the poolds hold the client's 4 chunks, no more.
i=0
while [ "$(json_used_total)" != $((4 * 16777216)) ]; do
	i=$((i + 1))
	[ $i -gt 60 ] && { admin list; fail "the poolds hold $(json_used_total) bytes, not the 4 chunks in use"; }
	sleep 0.5
done
note "coordinator dies: the client finished the move, the restarted coordinator agrees"
work_stop || fail "fio failed across the faults"

# ---- the client dies ------------------------------------------------------------
src=$(rsysfs chunk_map | awk 'NR == 1 { print $2 }')
admin drain "$src" > /dev/null || fail "drain $src"
wait_moving 30 || fail "no move started: $(rsysfs moves)"
note "unloading while slot $(move_field moving) moves"
no_io_errors "after the faults"
rswap_rmmod || fail "rmmod mid-move"
i=0
while [ "$(json_used_total)" != 0 ]; do
	i=$((i + 1))
	[ $i -gt 60 ] && { admin list; fail "copies left after the client released mid-move"; }
	sleep 0.5
done
dmesg | grep -E "rswap_client: .*(mov|abort)" | tail -n 8

# ---- after all of this: 20 load/unload cycles, nothing leaks ---------------------
load_cycles 20 coord="$RSWAP_IP:9400" size=64M name=cycle timeout_ms=2000
[ "$(json_used_total)" = 0 ] || fail "chunks held after the cycles: $(json_used_total) bytes"
assert_clean_logs
echo "35-move-faults: target killed, coordinator killed and client unloaded mid-move; every fio pass verified, nothing leaked"
