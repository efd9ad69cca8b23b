# Helpers of the replica VM tests (busybox ash).  Source after cluster.sh
# (admin), swap.sh (rsysfs) and move.sh (move_field).
#
#   repl_field KEY          a field of the client's replicas file
#   copies_on ADDR          the slots with a copy on that poold
#   coord_health CLIENT     "DEGRADED LOST STALE " as rswap-admin status says
#   wait_healthy CLIENT SEC every copy in sync, no move running, and the
#                           coordinator shows nothing degraded or stale
#   kill_poold N            kill -9 poold N, as a crash would
#   crash_poold N           poold N dies under load (see there)

# The block device's replicas file; frontswap tests point it elsewhere.
REPL_FILE=${REPL_FILE:-/sys/block/rswap0/rswap/replicas}

repl_field() { tr ' ' '\n' < "$REPL_FILE" | sed -n "s/^$1=//p"; }

copies_on() {
	rsysfs chunk_map | awk -v p="$1" '{
		for (i = 2; i + 2 <= NF && $i != "moving" && $i != "resync"; i += 3)
			if ($i == p) { print $1; break }
	}'
}

coord_health() {
	admin --json status "$1" > /tmp/status.json || { echo "? ? ?"; return; }
	for _k in degraded_chunks lost_chunks stale_copies; do
		_v=$(sed -n "s/.*\"$_k\":\([0-9]*\).*/\1/p" /tmp/status.json)
		printf '%s ' "${_v:-0}"
	done
	echo
}

# A move or resync runs (block device only: frontswap has no moves file).
moving_now() { [ -e /sys/block/rswap0/rswap/moves ] && [ -n "$(move_field moving)" ]; }

all_healthy() {
	[ "$(repl_field degraded)" = 0 ] && [ "$(repl_field stale_copies)" = 0 ] &&
		! moving_now && [ "$(coord_health "$1")" = "0 0 0 " ]
}
wait_healthy() { wait_until "$2" all_healthy "$1"; }

kill_poold() {
	kill -9 "$(poold_pid "$1")"
	wait "$(poold_pid "$1")" 2> /dev/null
	eval POOLD_PID_$1=
}

# crash_poold N: poold N dies while the client has I/O in flight to it.
# Debian 11's 5.10 rxe can hit a tasklet BUG (kernel/softirq.c:556) when
# a killed process's queue pairs are destroyed with requests arriving on
# them (seen once in three runs of test 92): there the client's link to
# it fails first (inject_fault, the poold stopped so that it cannot come
# back), then it is killed.  Elsewhere it is killed outright.
crash_poold() {
	case "$(uname -r)" in
	5.10.*)
		kill -STOP "$(poold_pid "$1")"
		inject_fault "$(poold_addr "$1")"
		sleep 1
		note "5.10: the link to poold $1 failed first (rxe tasklet BUG otherwise)"
		;;
	esac
	kill_poold "$1"
}
