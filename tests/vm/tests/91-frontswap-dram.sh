#!/bin/sh
# frontend=frontswap with backend=dram and writethrough=0, in front of a
# brd swap device: pages swapped out under cgroup memory pressure go to
# the module's DRAM store, not to the device, and come back intact;
# never-stored offsets and a second swap device are refused softly;
# swapoff releases everything; rmmod is refused (the registration pins
# the module).  Kernels without frontswap for modules: the load must fail
# cleanly, then skip.  Registers frontswap, so it runs last in its boot.
set -u
. "$RSWAP_TESTLIB/swap.sh"
. "$RSWAP_TESTLIB/frontswap.sh"

[ -r "$RSWAP_KO" ] || fail "no module at $RSWAP_KO"
command -v memhog > /dev/null || fail "memhog helper is not installed"
fs_pinned_skip tests/vm/tests/91-frontswap-dram.sh
cleanup() { swapoff -a 2> /dev/null; rmmod zram brd 2> /dev/null; }
trap cleanup EXIT

expect_insmod_fails "Invalid argument" backend=dram size=64M frontend=floppy
expect_insmod_fails "Invalid argument" backend=dram size=64M frontend=
fs_load_or_skip backend=dram size=64M writethrough=0

[ "$(fs_stat backend)" = dram ] || fail "backend $(fs_stat backend)"
[ "$(fs_stat writethrough)" = 0 ] || fail "writethrough $(fs_stat writethrough)"
[ "$(fs_stat swap_type)" = -1 ] || fail "swap type $(fs_stat swap_type) before swapon"
[ -e /dev/rswap0 ] && fail "/dev/rswap0 exists with frontend=frontswap"
fs_rmmod_refused

brd_swapon 64
[ "$(fs_stat swap_type)" = 0 ] || fail "swap type $(fs_stat swap_type) after swapon"
fs_round "frontswap dram" 32
[ "$(fs_stat load_fails)" = 0 ] || fail "load failures: $(fs_stat load_fails)"
note "store failures: $(fs_stat store_fails | tr '\n' ' ')"
note "$(fs_stat poolds); $(fs_stat stored_pages) pages stored"

# A second swap device is not served (busybox swapon has no priorities:
# the one swapped on last is used last, so take the first one away).
modprobe zram num_devices=1 || fail "modprobe zram"
echo 16M > /sys/block/zram0/disksize || fail "zram disksize"
mkswap /dev/zram0 > /dev/null || fail "mkswap zram0"
swapon /dev/zram0 || fail "swapon zram0"

swapoff /dev/ram0 || fail "swapoff /dev/ram0"
[ "$(fs_stat swap_type)" = -1 ] || fail "swap type $(fs_stat swap_type) after swapoff"
[ "$(fs_stat stored_pages)" = 0 ] || fail "$(fs_stat stored_pages) pages still stored after swapoff"
fs_stat poolds | grep -q "pages=0" || fail "DRAM pages held after swapoff: $(fs_stat poolds)"
[ "$(fs_stat invalidate_areas)" -ge 1 ] || fail "no invalidate_area counted"
note "invalidates $(fs_stat invalidates), invalidate_areas $(fs_stat invalidate_areas), loads $(fs_stat loads), load_misses $(fs_stat load_misses)"

t0=$(fs_stat store_fails | awk '$1 == "type" { print $2 }')
memhog_under_limit 16 50 21
t1=$(fs_stat store_fails | awk '$1 == "type" { print $2 }')
note "second swap device: $((t1 - t0)) stores refused (type)"
[ "$t1" -gt "$t0" ] || fail "stores for a swap type not served were not refused"
swapoff /dev/zram0 || fail "swapoff zram0"
rmmod zram
rmmod brd
fs_rmmod_refused
echo "page rates on $(uname -r) (whole run, memhog CPU included):$FS_SUMMARY"
exit 0
