# Helpers for the frontswap VM tests (busybox ash), on top of swap.sh.
#
# frontend=frontswap can be registered once per boot: 5.10 has no way to
# unregister frontswap ops, so the module pins itself and stays loaded.
# A frontswap test therefore runs last in its boot (90-*, 91-*), and the
# second one skips when the first already pinned the module.

FS_SYS=/sys/module/rswap_client/frontswap
FS_DBG=/sys/kernel/debug/frontswap
FS_SUMMARY=		# one line per timed run, printed at the end

fs_stat() { cat "$FS_SYS/$1"; }
fs_dbg() { cat "$FS_DBG/$1" 2> /dev/null || echo 0; }
uptime_cs() { awk '{ split($1, t, "."); print t[1] * 100 + t[2] }' /proc/uptime; }

# fs_load_or_skip ARGS...: on a kernel without frontswap for modules,
# frontend=frontswap must fail with EOPNOTSUPP and the clear line, leaving
# nothing loaded.  Returns 0 when frontswap is available (module loaded
# with ARGS, pinned), and exits 77 when it is not.
fs_load_or_skip() {
	if rswap_insmod "$@" frontend=frontswap; then
		[ -d "$FS_SYS" ] || fail "frontend=frontswap loaded but $FS_SYS is missing"
		return 0
	fi
	grep -q "Operation not supported" "$RSWAP_INSMOD_OUT" ||
		fail "frontend=frontswap failed with: $(cat "$RSWAP_INSMOD_OUT"); expected 'Operation not supported'"
	msg=$(dmesg | grep 'rswap_client: frontswap is not available' | tail -n 1)
	[ -n "$msg" ] || fail "frontend=frontswap failed without the clear message: $(dmesg | grep rswap_client | tail -n 2)"
	mod_loaded && fail "module loaded after frontend=frontswap failed"
	[ -e /dev/rswap0 ] && fail "/dev/rswap0 exists after frontend=frontswap failed"
	note "$msg"
	skip "frontswap is not available to modules on $(uname -r) (5.17 removed the exports): refused cleanly, nothing loaded"
}

# fs_pinned_skip: an earlier script of this boot registered frontswap.
fs_pinned_skip() {
	if [ -d "$FS_SYS" ]; then
		skip "rswap_client is pinned by an earlier frontswap registration in this boot (5.10 cannot unregister); run this script alone: tests/vm/run --kernel 5.10 --script $1"
	fi
	mod_loaded && fail "rswap_client is loaded at the start of the test"
	return 0
}

# brd_swapon MIB: a RAM disk of MIB MiB as the backing swap device.
brd_swapon() {
	modprobe brd rd_nr=1 rd_size=$(($1 * 1024)) || fail "modprobe brd"
	mkswap /dev/ram0 > /dev/null || fail "mkswap /dev/ram0"
	swapon /dev/ram0 || fail "swapon /dev/ram0"
}

# loop_swapon MIB: a loop device over a tmpfs file as the backing swap
# device.  Unlike brd it is not SWP_SYNCHRONOUS_IO, so swap-in goes through
# the swap cache with readahead, as on /dev/rswap0 or a disk: the page
# counts of a frontswap run then match those of a block device run.
loop_swapon() {
	modprobe loop 2> /dev/null
	dd if=/dev/zero of=/tmp/fs-backing bs=1M count="$1" 2> /dev/null || fail "cannot make /tmp/fs-backing"
	losetup /dev/loop0 /tmp/fs-backing || fail "losetup /dev/loop0"
	mkswap /dev/loop0 > /dev/null || fail "mkswap /dev/loop0"
	swapon /dev/loop0 || fail "swapon /dev/loop0"
}

loop_swapoff() {
	swapoff /dev/loop0 2> /dev/null
	losetup -d /dev/loop0 2> /dev/null
	rm -f /tmp/fs-backing
}

brd_swapoff() {
	swapoff /dev/ram0 2> /dev/null
	rmmod brd 2> /dev/null
	true
}

# hog_timed LABEL MIB: memhog MIB at 50% then 25% of its working set;
# sets HOG_CS (centiseconds) and prints the elapsed time.
hog_timed() {
	t0=$(uptime_cs)
	memhog_under_limit "$2" 50 11
	memhog_under_limit "$2" 25 12
	HOG_CS=$(($(uptime_cs) - t0))
	[ "$HOG_CS" -gt 0 ] || HOG_CS=1
}

# rate PAGES CS: pages per second.
rate() { echo $(($1 * 100 / $2)); }

# fs_round LABEL MIB: hog_timed with frontswap counters around it; checks
# that pages went through frontswap (ours and the kernel's debugfs).
fs_round() {
	s0=$(fs_stat stores) l0=$(fs_stat loads) d0=$(fs_dbg succ_stores)
	o0=$(vmstat pswpout) i0=$(vmstat pswpin)
	hog_timed "$1" "$2"
	FS_STORES=$(($(fs_stat stores) - s0))
	FS_LOADS=$(($(fs_stat loads) - l0))
	dbg=$(($(fs_dbg succ_stores) - d0))
	note "$1: frontswap stores +$FS_STORES loads +$FS_LOADS (debugfs succ_stores +$dbg), pswpout +$(($(vmstat pswpout) - o0)) pswpin +$(($(vmstat pswpin) - i0)) in $((HOG_CS / 100)).$((HOG_CS % 100)) s"
	FS_SUMMARY="$FS_SUMMARY
-- $1: $((HOG_CS / 100)).$((HOG_CS % 100)) s, swap-out $(rate "$FS_STORES" "$HOG_CS") pages/s, swap-in $(rate "$FS_LOADS" "$HOG_CS") pages/s through frontswap"
	[ "$FS_STORES" -gt 0 ] || fail "$1: no page was stored through frontswap"
	[ "$FS_LOADS" -gt 0 ] || fail "$1: no page was loaded through frontswap"
	[ "$dbg" -gt 0 ] || [ ! -d "$FS_DBG" ] || fail "$1: debugfs frontswap/succ_stores did not grow"
}

# blk_round LABEL MIB: the same run on swap over /dev/rswap0.
blk_round() {
	mkswap /dev/rswap0 > /dev/null || fail "mkswap /dev/rswap0"
	swapon /dev/rswap0 || fail "swapon /dev/rswap0"
	o0=$(vmstat pswpout) i0=$(vmstat pswpin)
	hog_timed "$1" "$2"
	BLK_OUT=$(($(vmstat pswpout) - o0))
	BLK_IN=$(($(vmstat pswpin) - i0))
	swapoff /dev/rswap0 || fail "swapoff /dev/rswap0"
	note "$1: pswpout +$BLK_OUT pswpin +$BLK_IN in $((HOG_CS / 100)).$((HOG_CS % 100)) s"
	FS_SUMMARY="$FS_SUMMARY
-- $1: $((HOG_CS / 100)).$((HOG_CS % 100)) s, swap-out $(rate "$BLK_OUT" "$HOG_CS") pages/s, swap-in $(rate "$BLK_IN" "$HOG_CS") pages/s through /dev/rswap0"
	[ "$BLK_OUT" -gt 0 ] || fail "$1: nothing swapped out"
}

# fs_rmmod_refused: the pinned module refuses rmmod and stays usable.
fs_rmmod_refused() {
	rmmod rswap_client > /tmp/.rmmod 2>&1 && fail "rmmod succeeded after frontswap registration"
	mod_loaded || fail "module gone after a refused rmmod"
	grep -q "in use\\|Resource temporarily unavailable" /tmp/.rmmod || fail "rmmod refused for another reason: $(cat /tmp/.rmmod)"
	note "rmmod refused as documented: $(cat /tmp/.rmmod)"
}
