#!/bin/sh
# frontend=frontswap over RDMA (coordinator + three poolds on Soft-RoCE),
# compared with frontend=blk in the same boot.  On 5.10: the same memhog
# run (cgroup memory.max at 50% then 25% of its working set, data
# verified) first on swap over /dev/rswap0, then with the module as a
# frontswap backend (default writethrough=1) in front of a brd swap
# device, then in front of a loop device (same registration); pages must
# go through frontswap to more than one poold, and the page rates of all
# three runs are printed.  Remote reads failed on purpose must
# fall back to the write-through copy with no data lost.  rmmod is refused
# (the registration pins the module).  Kernels without frontswap for
# modules: the load fails cleanly, then skip.  Registers frontswap, so it
# runs last in its boot.
set -u
. "$RSWAP_TESTLIB/swap.sh"
. "$RSWAP_TESTLIB/cluster.sh"	# its fail() also dumps the daemons' logs
. "$RSWAP_TESTLIB/frontswap.sh"

[ "${RSWAP_RXE:-}" = up ] || fail "Soft-RoCE is not up in this VM"
[ -r "$RSWAP_KO" ] || fail "no module at $RSWAP_KO"
command -v memhog > /dev/null || fail "memhog helper is not installed"
fs_pinned_skip tests/vm/tests/90-frontswap.sh
cluster_init
CLUSTER_ON_EXIT='swapoff -a 2> /dev/null; loop_swapoff; mod_loaded && [ ! -d "$FS_SYS" ] && rmmod rswap_client; rmmod brd 2> /dev/null'
modprobe rdma_cm || fail "modprobe rdma_cm"

COORD="$RSWAP_IP:9400"
start_coord 9400 16M
for n in 1 2 3; do start_poold "$n" 48M; done
for n in 1 2 3; do wait_registered "$n"; done
chunks_used() { v=$(json_used_total); echo "${v:-0}"; }

expect_insmod_fails "Invalid argument" coord="$COORD" size=64M frontend=frontswap2
# Exported symbols have a __ksymtab_ entry: without one, check the
# refusal now (and skip) rather than after the block device run.
if ! grep -q ' __ksymtab_frontswap_register_ops$' /proc/kallsyms; then
	fs_load_or_skip coord="$COORD" size=64M name=fs-none
	fail "frontend=frontswap loaded although frontswap_register_ops is not exported"
fi

# ---- the block device, for comparison ---------------------------------------
MIB=32
rswap_insmod coord="$COORD" size=96M name=blk frontend=blk || fail "insmod blk: $(cat $RSWAP_INSMOD_OUT)"
blk_round "blk rdma" $MIB
rswap_rmmod || fail "rmmod blk"
sleep 0.5
[ "$(chunks_used)" = 0 ] || fail "chunks held after rmmod: $(chunks_used) bytes"

# ---- frontswap ------------------------------------------------------------------
# One registration serves every swap device swapped on after it (one at a
# time): brd first, then a loop device, whose swap-in path (swap cache,
# readahead) is the one /dev/rswap0 gets, for a like-for-like comparison.
brd_swapon 96
fs_load_or_skip coord="$COORD" size=96M name=fs
[ "$(fs_stat backend)" = rdma ] || fail "backend $(fs_stat backend)"
[ "$(fs_stat writethrough)" = 1 ] || fail "writethrough $(fs_stat writethrough)"
[ "$(fs_stat swap_type)" = 0 ] || fail "the active swap device was not taken (swap type $(fs_stat swap_type))"
[ -e /dev/rswap0 ] && fail "/dev/rswap0 exists with frontend=frontswap"
[ "$(chunks_used)" = $((96 * 1048576)) ] || fail "coordinator shows $(chunks_used) bytes used, expected 96M"
fs_rmmod_refused

fs_round "frontswap rdma, brd behind" $MIB
fs_stat poolds
busy=$(fs_stat poolds | grep -vc "writes=0 ")
[ "$busy" -ge 2 ] || fail "only $busy poold(s) got frontswap pages"
swapoff /dev/ram0 || fail "swapoff /dev/ram0"
[ "$(fs_stat swap_type)" = -1 ] || fail "swap type $(fs_stat swap_type) after swapoff"
[ "$(fs_stat stored_pages)" = 0 ] || fail "$(fs_stat stored_pages) pages still stored after swapoff"
rmmod brd

loop_swapon 96
[ "$(fs_stat swap_type)" = 0 ] || fail "swap type $(fs_stat swap_type) after swapon of the loop device"
fs_round "frontswap rdma, loop behind" $MIB
fs_stat errors | grep -v " 0$" | grep -v "^busy" && fail "I/O errors counted"
[ "$(fs_stat load_fails)" = 0 ] || fail "load failures: $(fs_stat load_fails)"
note "store failures: $(fs_stat store_fails | tr '\n' ' ')"

# Remote reads failing: the write-through copy on the device must be read.
echo 1000000 > "$FS_SYS/fail_reads"
f0=$(fs_stat load_fails)
memhog_under_limit 16 25 31
echo 0 > "$FS_SYS/fail_reads"
f1=$(fs_stat load_fails)
note "with remote reads failing: $((f1 - f0)) loads fell back to the backing device, data intact; lost $(fs_stat load_lost)"
[ "$f1" -gt "$f0" ] || fail "no load failed while reads were failing"
[ "$(fs_stat load_lost)" = 0 ] || fail "pages lost despite writethrough"

loop_swapoff
[ "$(fs_stat swap_type)" = -1 ] || fail "swap type $(fs_stat swap_type) after swapoff"
[ "$(fs_stat stored_pages)" = 0 ] || fail "$(fs_stat stored_pages) pages still stored after swapoff"
fs_rmmod_refused
assert_clean_logs
echo "page rates on $(uname -r), the same memhog run (whole run, memhog CPU included):$FS_SUMMARY"
exit 0
