# Shared helpers for the swap and module VM tests (busybox ash).
# Source with: . "$RSWAP_TESTLIB/swap.sh"

RSWAP_CG=/sys/fs/cgroup

fail() { echo "FAIL: $*"; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
note() { echo "-- $*"; }

mod_loaded() { grep -q '^rswap_client ' /proc/modules; }

# rswap_insmod ARGS...: load the module; the output of insmod goes to
# $RSWAP_INSMOD_OUT so that callers can check the error text.
RSWAP_INSMOD_OUT=/tmp/.insmod.out
# ash runs busybox's insmod applet, which retries a failed load once with
# init_module(); RSWAP_INSMOD=/usr/sbin/insmod (kmod) loads exactly once
# but words EINVAL as "Invalid parameters".
rswap_insmod() {
	${RSWAP_INSMOD:-insmod} "$RSWAP_KO" "$@" > "$RSWAP_INSMOD_OUT" 2>&1
}

rswap_rmmod() { rmmod rswap_client 2>&1; }

# expect_insmod_fails ERRTEXT ARGS...: insmod must fail with the strerror
# text (e.g. "Invalid argument"), print one pr_err line, leave nothing.
expect_insmod_fails() {
	local want=$1
	shift
	if rswap_insmod "$@"; then
		rswap_rmmod
		fail "insmod $* succeeded, expected '$want'"
	fi
	grep -q "$want" "$RSWAP_INSMOD_OUT" ||
		fail "insmod $*: expected '$want', got: $(cat $RSWAP_INSMOD_OUT)"
	mod_loaded && fail "insmod $* failed but the module stayed loaded"
	[ -e /dev/rswap0 ] && fail "insmod $* failed but /dev/rswap0 exists"
	note "insmod $*: failed as expected ($want): $(dmesg | grep rswap_client | tail -n 1)"
}

vmstat() { awk -v k="$1" '$1 == k { print $2 }' /proc/vmstat; }
meminfo_kb() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }
rsysfs() { cat "/sys/block/rswap0/rswap/$1"; }

# cg_make NAME BYTES: a cgroup with memory.max = BYTES (swap unlimited).
cg_make() {
	mkdir -p "$RSWAP_CG/$1" || fail "cannot create cgroup $1"
	echo "$2" > "$RSWAP_CG/$1/memory.max" || fail "cannot set memory.max of $1"
	# memory.high a tenth below: reclaim throttles the task before the
	# hard limit.  At memory.max alone the memcg OOM-kills it while its
	# pages are still under writeback to an asynchronous swap device
	# (cgroup v2 reclaim does not wait for writeback), seen on 5.10.
	echo $(($2 / 10 * 9)) > "$RSWAP_CG/$1/memory.high" || fail "cannot set memory.high of $1"
}

# cg_run NAME CMD...: run CMD inside cgroup NAME, in the foreground.
cg_run() {
	local cg=$1
	shift
	sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$RSWAP_CG/$cg" "$@"
}

cg_remove() { rmdir "$RSWAP_CG/$1" 2>/dev/null; true; }

# memhog_under_limit MIB PERCENT [SEED]: memhog MIB in a cgroup whose
# memory.max is PERCENT of MIB; fails the test on a data mismatch.
memhog_under_limit() {
	local mib=$1 pct=$2 seed=${3:-1} cg="rswap-hog-$$-$2-${3:-1}"
	cg_make "$cg" $((mib * 1048576 * pct / 100))
	cg_run "$cg" memhog "$mib" "$seed" || { cg_remove "$cg"; fail "memhog $mib MiB at $pct% lost data"; }
	cg_remove "$cg"
}

# swap_round_trip DEV MIB: swapon DEV, memhog MIB at 50% then 25% of its
# working set (and two at 50% at once), check pswpout/pswpin grew, swapoff.
swap_round_trip() {
	local dev=$1 mib=$2 out0 in0 out1 in1 t0 t1 p1 p2 rc
	mkswap "$dev" > /dev/null || fail "mkswap $dev"
	swapon "$dev" || fail "swapon $dev"
	out0=$(vmstat pswpout)
	in0=$(vmstat pswpin)
	t0=$(date +%s)
	memhog_under_limit "$mib" 50 1
	memhog_under_limit "$mib" 25 2
	cg_make rswap-duo-a $((mib * 1048576 / 2))
	cg_make rswap-duo-b $((mib * 1048576 / 2))
	cg_run rswap-duo-a memhog "$mib" 3 & p1=$!
	cg_run rswap-duo-b memhog "$mib" 4 & p2=$!
	rc=0
	wait $p1 || rc=1
	wait $p2 || rc=1
	cg_remove rswap-duo-a
	cg_remove rswap-duo-b
	[ $rc -eq 0 ] || fail "two memhogs at once lost data"
	t1=$(date +%s)
	out1=$(vmstat pswpout)
	in1=$(vmstat pswpin)
	note "pswpout +$((out1 - out0)) pswpin +$((in1 - in0)) pages in $((t1 - t0)) s"
	[ $((out1 - out0)) -gt 0 ] || fail "pswpout did not grow: nothing was swapped out"
	[ $((in1 - in0)) -gt 0 ] || fail "pswpin did not grow: nothing was swapped in"
	RSWAP_SWPOUT=$((out1 - out0))
	RSWAP_SWPIN=$((in1 - in0))
	RSWAP_SWAP_SECS=$((t1 - t0))
}

# read_error_check MIB: with swap on /dev/rswap0, reads failed on purpose
# (sysfs fail_reads) reach the reader as errors -- a direct read fails, a
# swap-in kills the process with SIGBUS -- never as wrong data.
read_error_check() {
	local mib=$1 f=/sys/block/rswap0/rswap/fail_reads rc sig
	echo 1 > $f || fail "cannot write $f"
	dd if=/dev/rswap0 of=/dev/null bs=4096 count=1 iflag=direct 2> /dev/null &&
		fail "a direct read succeeded despite an injected read error"
	[ "$(cat $f)" = 0 ] || fail "fail_reads did not count down: $(cat $f)"
	echo 1000000 > $f
	cg_make rswap-ioerr $((mib * 1048576 / 4))
	cg_run rswap-ioerr memhog "$mib" 9
	rc=$?
	echo 0 > $f
	cg_remove rswap-ioerr
	# SIGBUS from the failed fault; SIGSEGV when the signal frame cannot
	# be written either (its stack page's swap-in fails too).
	# Newer kernels may OOM-kill first: the unreadable pages stay charged.
	case $rc in
	135) sig=SIGBUS ;;
	139) sig="SIGSEGV (SIGBUS frame not deliverable)" ;;
	137) sig="SIGKILL (memcg OOM: unreadable pages stay charged)" ;;
	*) fail "memhog exited $rc while swap-in reads failed; expected death by SIGBUS (135), never bad data (1)" ;;
	esac
	note "failed swap-in reads: memhog got $sig; $(grep '^io ' /sys/block/rswap0/rswap/errors) I/O errors counted"
}

# load_cycles N INSMOD-ARGS...: N times load the module, write 1 MiB to
# /dev/rswap0, unload; unreclaimable slab must not grow by 2 MiB or more.
load_cycles() {
	local n=$1 i=0 slab0 slab1
	shift
	sync
	echo 3 > /proc/sys/vm/drop_caches
	slab0=$(meminfo_kb SUnreclaim)
	while [ $i -lt "$n" ]; do
		rswap_insmod "$@" || fail "insmod #$i: $(cat $RSWAP_INSMOD_OUT)"
		dd if=/dev/zero of=/dev/rswap0 bs=64k count=16 oflag=direct 2> /dev/null ||
			dd if=/dev/zero of=/dev/rswap0 bs=64k count=16 conv=fsync 2> /dev/null ||
			fail "write #$i"
		rswap_rmmod > /dev/null || fail "rmmod #$i"
		i=$((i + 1))
	done
	sync
	echo 3 > /proc/sys/vm/drop_caches
	slab1=$(meminfo_kb SUnreclaim)
	note "SUnreclaim ${slab0} kB -> ${slab1} kB after $n load/unload cycles"
	[ $((slab1 - slab0)) -lt 2048 ] || fail "unreclaimable slab grew by $((slab1 - slab0)) kB"
}
