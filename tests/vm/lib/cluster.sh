# Shared helpers for cluster tests (busybox ash): start a coordinator and
# poolds on the Soft-RoCE address, wait for them, stop them, show logs.
#
#   . "$RSWAP_TESTLIB/cluster.sh"
#   cluster_init            # logs under /tmp/cluster.<pid>, trap stop_all,
#                           # a cluster key for daemons, admin and insmod
#   use_cluster_key         # daemons started after it use a fresh key
#   insmod_with_key FILE    # rswap_insmod gives rswap-client.ko that key
#   start_coord PORT CHUNK  # rswap-coord on $RSWAP_IP:PORT
#   start_poold N CAPACITY [ARGS]  # poold N on $RSWAP_IP:$((POOLD_BASE_PORT + N))
#   poold_args N ARGS...    # extra arguments poold N gets at every start
#                           # from now on, e.g. poold_args 2 --zone rackB
#   wait_registered N [COUNT]
#   fail "what went wrong"  # prints every log, exits 1
#   assert_clean_logs       # no ASan/UBSan/LSan report in any log
#
# Every started process is remembered and stopped by stop_all (EXIT trap),
# which also evals $CLUSTER_ON_EXIT for a test's own clean-up.

POOLD_BASE_PORT=${POOLD_BASE_PORT:-9500}
# How the daemons started here authenticate: with a fresh cluster key that
# cluster_init makes (use_cluster_key), unless the test sets
# CLUSTER_INSECURE=1 before it; a test may also set CLUSTER_AUTH itself
# for the daemons it starts next.
CLUSTER_AUTH=--insecure
CLUSTER_KEY=
CLUSTER_TIMEOUT=${CLUSTER_TIMEOUT:-30}	# seconds to wait for a daemon
COORD_PORT=
COORD_PID=
CLUSTER_PIDS=

cluster_init() {
	CLUSTER_LOG=/tmp/cluster.$$
	mkdir -p "$CLUSTER_LOG"
	trap 'stop_all' EXIT
	trap 'exit 1' INT TERM
	if [ "${CLUSTER_INSECURE:-0}" != 1 ]; then
		use_cluster_key
		insmod_with_key "$CLUSTER_KEY"
	fi
}

# use_cluster_key: a fresh cluster key; daemons and admin started from now
# on use it.
use_cluster_key() {
	CLUSTER_KEY=$CLUSTER_LOG/cluster.key
	rswap-admin keygen > "$CLUSTER_KEY" || fail "rswap-admin keygen failed"
	CLUSTER_AUTH="--key-file $CLUSTER_KEY"
}

# insmod_with_key FILE: rswap_insmod (swap.sh) from now on loads the module
# with FILE's key in a session keyring of its own, as rswapctl does;
# insmod_with_key "" goes back to a plain insmod.
insmod_with_key() {
	if [ -z "$1" ]; then
		unset RSWAP_INSMOD
		return
	fi
	# keyctl announces the keyring it joined on stderr: insmod's own
	# errors go to the caller's stderr through fd 3, that line nowhere.
	cat > "$CLUSTER_LOG/keyed-insmod" <<-EOF
	#!/bin/sh
	exec 3>&2
	exec keyctl session - sh -c 'keyctl padd user rswap:cluster @s < "$1" > /dev/null ||
		{ echo "keyctl padd user rswap:cluster failed" >&3; exit 1; }
		exec insmod "\$@" 2>&3' sh "\$@" 2> /dev/null
	EOF
	chmod +x "$CLUSTER_LOG/keyed-insmod"
	RSWAP_INSMOD="$CLUSTER_LOG/keyed-insmod"
}

dump_logs() {
	for f in "$CLUSTER_LOG"/*.log; do
		[ -f "$f" ] || continue
		echo "---- $f (last 60 lines)"
		tail -n 60 "$f"
	done
}

fail() {
	echo "FAIL: $*"
	dump_logs
	exit 1
}

# wait_until SEC CMD [ARG...]: until CMD succeeds, tried every 0.1 s;
# fails after SEC seconds.  The wait helpers of every library use it.
wait_until() {
	_wu=$(($1 * 10))
	shift
	while ! "$@"; do
		_wu=$((_wu - 1))
		[ $_wu -lt 0 ] && return 1
		sleep 0.1
	done
	return 0
}

# wait_log FILE PATTERN [COUNT] [TIMEOUT]: until PATTERN (grep -E) shows up
# COUNT times in FILE.
log_has() {
	_c=$(grep -cE "$2" "$1" 2>/dev/null)
	[ "${_c:-0}" -ge "$3" ]
}
wait_log() { wait_until "${4:-$CLUSTER_TIMEOUT}" log_has "$1" "$2" "${3:-1}"; }

# wait_listen PORT: a TCP socket listens on PORT (hex in /proc/net/tcp).
wait_listen() {
	wait_until "$CLUSTER_TIMEOUT" grep -qsE \
		"^ *[0-9]+: [0-9A-F]+:$(printf '%04X' "$1") [0-9A-F]+:0000 0A" \
		/proc/net/tcp /proc/net/tcp6
}

# alive PID: the process exists and is not a zombie.
alive() {
	[ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat"
}

# A test's cluster is new: no client to re-learn, so no restart grace
# (rswap-coord waits 10 s by default); COORD_GRACE_MS=N to test it.
# Poolds beat every COORD_HEARTBEAT_MS (200: dead after 2 s silent);
# COORD_ARGS adds options.
start_coord() {
	COORD_PORT=$1
	# shellcheck disable=SC2086 # CLUSTER_AUTH is one or two words
	rswap-coord --listen "$RSWAP_IP:$1" --chunk-size "$2" \
		--heartbeat-ms "${COORD_HEARTBEAT_MS:-200}" ${COORD_ARGS:-} \
		--restart-grace-ms "${COORD_GRACE_MS:-0}" $CLUSTER_AUTH >> "$CLUSTER_LOG/coord.log" 2>&1 &
	COORD_PID=$!
	CLUSTER_PIDS="$CLUSTER_PIDS $COORD_PID"
	wait_listen "$1" || fail "rswap-coord did not listen on port $1"
}

# kill_coord: SIGKILL, as a crash would.
kill_coord() {
	kill -9 "$COORD_PID" 2>/dev/null
	wait "$COORD_PID" 2>/dev/null
	COORD_PID=
}

poold_port() { echo $((POOLD_BASE_PORT + $1)); }
poold_addr() { echo "$RSWAP_IP:$(poold_port "$1")"; }
poold_log() { echo "$CLUSTER_LOG/poold$1.log"; }
poold_pid() { eval echo "\${POOLD_PID_$1:-}"; }

# poold_args N ARGS...: poold N starts with ARGS from now on (a restart
# keeps its zone); without ARGS it gets none again.  Words, no quoting.
poold_args() {
	_n=$1
	shift
	eval "POOLD_ARGS_$_n=\$*"
}

# start_poold N CAPACITY [EXTRA ARGS]: returns once it listens for RDMA.
# poold N's poold_args come first, then EXTRA ARGS.
start_poold() {
	_n=$1 _cap=$2
	shift 2
	_extra=$(eval echo "\${POOLD_ARGS_$_n:-}")
	# shellcheck disable=SC2086
	poold --coord "$RSWAP_IP:$COORD_PORT" --listen "$(poold_addr "$_n")" \
		--capacity "$_cap" $CLUSTER_AUTH $_extra "$@" >> "$(poold_log "$_n")" 2>&1 &
	eval POOLD_PID_$_n=$!
	CLUSTER_PIDS="$CLUSTER_PIDS $!"
	wait_log "$(poold_log "$_n")" "listening for RDMA clients" ||
		fail "poold $_n did not start listening"
}

# wait_registered N [COUNT]: poold N registered COUNT times in all.
wait_registered() {
	wait_log "$(poold_log "$1")" "registered with coordinator" "${2:-1}" ||
		fail "poold $1 did not register (${2:-1} times) with the coordinator"
}

# stop_poold N: SIGTERM, must exit 0 (clean shutdown).
stop_poold() {
	_pid=$(poold_pid "$1")
	[ -n "$_pid" ] || return 0
	kill -TERM "$_pid" 2>/dev/null
	wait "$_pid"
	_rc=$?
	eval POOLD_PID_$1=
	[ $_rc -eq 0 ] || fail "poold $1 exited with status $_rc on SIGTERM"
}

stop_all() {
	# A test's own clean-up (e.g. sysctls it changed), run once.
	if [ -n "${CLUSTER_ON_EXIT:-}" ]; then
		eval "$CLUSTER_ON_EXIT"
		CLUSTER_ON_EXIT=
	fi
	for _p in $CLUSTER_PIDS; do
		kill -TERM "$_p" 2>/dev/null
	done
	for _p in $CLUSTER_PIDS; do
		wait "$_p" 2>/dev/null
	done
	CLUSTER_PIDS=
}

# assert_clean_logs: no sanitizer report in any daemon or client log.
assert_clean_logs() {
	if grep -lE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$CLUSTER_LOG"/*.log 2>/dev/null; then
		fail "a sanitizer reported an error (see the logs above)"
	fi
}

admin() { rswap-admin --coord "$RSWAP_IP:$COORD_PORT" ${CLUSTER_KEY:+--key-file "$CLUSTER_KEY"} "$@"; }

# A function: run it in the background only if $! need not be the client.
testclient() { rswap-testclient --coord "$RSWAP_IP:$COORD_PORT" ${CLUSTER_KEY:+--key-file "$CLUSTER_KEY"} "$@"; }

# json_poold ADDR FIELD: a numeric field of one poold in `rswap-admin --json list`.
json_poold() {
	admin --json list | tr '{' '\n' | grep "\"listen_addr\":\"$1\"" |
		sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"
}

json_poold_used() { json_poold "$1" chunks_used; }

# json_poold_zone ADDR: the zone the coordinator shows for one poold.
json_poold_zone() {
	admin --json list | tr '{' '\n' | grep "\"listen_addr\":\"$1\"" |
		sed -n 's/.*"zone":"\([^"]*\)".*/\1/p'
}

json_used_total() {
	admin --json list | sed -n 's/.*"used_total":\([0-9]*\).*/\1/p'
}
