#!/bin/sh
# frontend=frontswap with replicas=2 and writethrough=0, the fast setting
# it makes safe: pages stored through frontswap go to two poolds and not
# to the swap device.  A poold is killed (-9) while memhog swaps under a
# cgroup limit and checks every page it reads back: the loads of its
# pages fail over to the other copy (no load is lost, no I/O error), the
# coordinator re-replicates its chunks and every slot is healthy again.
# Kernels without frontswap for modules: the load must fail cleanly, then
# skip.  Registers frontswap, so it runs last in its boot.
set -u
. "$RSWAP_TESTLIB/swap.sh"
. "$RSWAP_TESTLIB/cluster.sh"
. "$RSWAP_TESTLIB/frontswap.sh"
. "$RSWAP_TESTLIB/session.sh"
. "$RSWAP_TESTLIB/move.sh"
REPL_FILE=$FS_SYS/replicas
. "$RSWAP_TESTLIB/replicas.sh"

[ "${RSWAP_RXE:-}" = up ] || fail "Soft-RoCE is not up in this VM"
command -v memhog > /dev/null || fail "memhog helper is not installed"
fs_pinned_skip tests/vm/tests/92-frontswap-replicas.sh
cluster_init
CLUSTER_ON_EXIT='work_stop 2> /dev/null; swapoff -a 2> /dev/null; rmmod brd 2> /dev/null'
modprobe rdma_cm || fail "modprobe rdma_cm"

# 96M twice is 12 chunks of 16M; two poolds of 7 take them all again.
start_coord 9400 16M
for n in 1 2 3; do start_poold "$n" 112M; done
for n in 1 2 3; do wait_registered "$n"; done
P1=$(poold_addr 1)

brd_swapon 96
fs_load_or_skip coord="$RSWAP_IP:9400" size=96M name=fsrep replicas=2 \
	writethrough=0 timeout_ms=2000 fail_io_tmo=15
[ "$(fs_stat writethrough)" = 0 ] || fail "writethrough $(fs_stat writethrough)"
[ "$(repl_field replicas)" = 2 ] || fail "replicas: $(fs_stat replicas)"
[ "$(repl_field healthy)" = 6 ] || fail "not every slot healthy at load: $(fs_stat replicas)"

hog_loop_start 64
sleep 4
[ "$(fs_stat stores)" -gt 0 ] || fail "no page stored through frontswap before the kill"
s0=$(fs_stat stores) l0=$(fs_stat loads)
t0=$(date +%s)
crash_poold 1
note "poold 1 killed after $s0 stores and $l0 loads"
i=0
until fs_stat poolds | grep "^$P1 " | grep -q "state=idle"; do
	i=$((i + 1))
	[ $i -gt 900 ] && fail "poold 1's copies were not replaced: $(fs_stat poolds | tr '\n' ' '); $(fs_stat replicas)"
	sleep 0.2
done
wait_healthy fsrep 120 || fail "not healthy after poold 1 died: $(fs_stat replicas); coordinator: $(coord_health fsrep)"
t1=$(date +%s)
sleep 2
work_stop || fail "memhog lost data after poold 1 died"
[ "$(fs_stat loads)" -gt "$l0" ] || fail "no load through frontswap after the kill"
[ "$(fs_stat load_lost)" = 0 ] || fail "$(fs_stat load_lost) pages lost with writethrough=0"
[ "$(fs_stat load_fails)" = 0 ] || fail "$(fs_stat load_fails) loads failed"
fs_stat errors | grep -v " 0$" | grep -vE "^(busy|down) " && fail "I/O errors counted: $(fs_stat errors | tr '\n' ' ')"
note "healthy again $((t1 - t0)) s after the kill; stores $(fs_stat stores) loads $(fs_stat loads); $(fs_stat replicas)"
note "store failures: $(fs_stat store_fails | tr '\n' ' ')"
swapoff /dev/ram0 || fail "swapoff /dev/ram0"
[ "$(fs_stat stored_pages)" = 0 ] || fail "$(fs_stat stored_pages) pages still stored after swapoff"
fs_rmmod_refused
assert_clean_logs
echo "92-frontswap-replicas: writethrough=0 replicas=2, poold 1 killed under memhog: nothing lost, healthy again in $((t1 - t0)) s"
