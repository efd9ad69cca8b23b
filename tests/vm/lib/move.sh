# Helpers of the chunk-move VM tests and the rswap-move benchmark (busybox
# ash).  Source after cluster.sh (and swap.sh and session.sh for the
# workloads and maps_agree).

# move_field KEY: a field of the client's moves file (epoch, done, failed,
# bytes, moving, to, copied); empty if absent.
move_field() { tr ' ' '\n' < /sys/block/rswap0/rswap/moves | sed -n "s/^$1=//p"; }

# wait_moves_idle SEC: no move under way on the client.
moves_idle() { [ -z "$(move_field moving)" ]; }
wait_moves_idle() { wait_until "$1" moves_idle; }

# wait_moving SEC: a move is copying (and has copied something).
copying() { [ -n "$(move_field moving)" ] && [ "$(move_field copied)" != 0 ]; }
wait_moving() { wait_until "$1" copying; }

move_delay() { echo "$1" > /sys/kernel/debug/rswap_client/move_window_delay_ms; }

# A background workload that verifies what it reads, in passes until
# work_stop; work_stop fails if any pass failed.  /tmp/work.passes counts.
WORK_PID=
work_loop() {
	rm -f /tmp/work.stop
	echo 0 > /tmp/work.passes
	(
		n=0
		while [ ! -e /tmp/work.stop ]; do
			"$@" || exit 1
			n=$((n + 1))
			echo $n > /tmp/work.passes
		done
	) &
	WORK_PID=$!
}

work_stop() {
	[ -n "$WORK_PID" ] || return 0
	touch /tmp/work.stop
	wait "$WORK_PID"
	_rc=$?
	WORK_PID=
	[ $_rc -eq 0 ] || return 1
	[ "$(cat /tmp/work.passes)" -gt 0 ] || { note "no pass of the workload completed"; return 1; }
	return 0
}

# fio_loop_start NAME SIZE: fio writes the device with crc32c headers and
# verifies it, pass after pass.
fio_pass() {
	fio --name="$1" --filename=/dev/rswap0 --bs=64k --size="$2" \
		--ioengine=psync --direct=1 --rw=randwrite --verify=crc32c \
		--verify_fatal=1 > "/tmp/fio-$1.log" 2>&1 ||
		{ cat "/tmp/fio-$1.log"; return 1; }
}
fio_loop_start() { work_loop fio_pass "$1" "$2"; }

# hog_loop_start MIB: memhog MIB under a cgroup at half of it (swap), pass
# after pass; memhog checks every page it reads back.
hog_pass() {
	_cg=rswap-move-hog
	cg_make "$_cg" $(($1 * 1048576 / 2))
	cg_run "$_cg" memhog "$1" "$(($(cat /tmp/work.passes) + 1))"
	_rc=$?
	cg_remove "$_cg"
	return $_rc
}
hog_loop_start() { work_loop hog_pass "$1"; }

# maps_agree CLIENT: the coordinator's map of CLIENT (rswap-admin --json
# status) names, for every slot, the poold and handle the client uses.
maps_agree() {
	admin --json status "$1" > /tmp/status.json || { note "status $1 failed"; return 1; }
	rsysfs chunk_map | while read -r _s _p _h _rest; do
		grep -q "{\"index\":$_s,\"poold\":\"$_p\",\"handle\":$_h," /tmp/status.json ||
			{ note "slot $_s: the client uses $_p handle $_h; coordinator: $(cat /tmp/status.json)"; return 1; }
	done
}
