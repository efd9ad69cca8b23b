#!/bin/sh
# poold's file descriptors do not grow with its queue pairs: the CQs of a
# device share one completion channel.  poold raises its soft
# RLIMIT_NOFILE to the hard limit at start, and a limit too low for it is
# refused at start with one clear line.
set -u
. "$RSWAP_TESTLIB/cluster.sh"
cluster_init

QPS=200		# more queue pairs than poold may open files

# start_limited SOFT HARD: poold 1 under those open-file limits.
start_limited() {
	(ulimit -S -n "$1" && ulimit -H -n "$2" &&
		exec poold --coord "$RSWAP_IP:$COORD_PORT" --listen "$(poold_addr 1)" \
			--capacity 64M $CLUSTER_AUTH) >> "$(poold_log 1)" 2>&1 &
	POOLD_PID_1=$!
	CLUSTER_PIDS="$CLUSTER_PIDS $!"
}

start_coord 9400 16M

# Too low even at the hard limit: exit 1 with one line that says so.
out=$( (ulimit -n 20 && exec timeout 10 poold --coord "$RSWAP_IP:9400" \
	--listen "$(poold_addr 1)" --capacity 64M $CLUSTER_AUTH) 2>&1)
rc=$?
lines=$(printf '%s\n' "$out" | wc -l)
[ $rc -eq 1 ] && [ "$lines" -eq 1 ] ||
	fail "poold with 20 open files exited $rc with $lines lines (want 1 and 1): $out"
echo "$out" | grep -q "open file limit is 20 .* needs [0-9]* file descriptors" ||
	fail "poold did not name the open file limit: $out"
echo "refused as expected: $out"

# Soft 64, hard 128: raised to 128, and 200 queue pairs work.
start_limited 64 128
wait_log "$(poold_log 1)" "listening for RDMA clients" || fail "poold did not start"
wait_registered 1
limits=$(grep "Max open files" "/proc/$(poold_pid 1)/limits")
echo "poold: $limits"
echo "$limits" | grep -qE "Max open files +128 +128 " ||
	fail "poold did not raise its soft open-file limit to the hard one: $limits"

testclient --id h1 --size 32M --qps $QPS --hold 5 write > "$CLUSTER_LOG/write.log" 2>&1 &
clientpid=$!
wait_log "$CLUSTER_LOG/write.log" "holding the connections" 1 120 ||
	{ cat "$CLUSTER_LOG/write.log"; fail "a client with $QPS queue pairs was not served"; }
grep -q "$QPS queue pairs up" "$CLUSTER_LOG/write.log" ||
	fail "the client did not get $QPS queue pairs"
nfd=$(ls "/proc/$(poold_pid 1)/fd" | wc -l)
echo "poold holds $nfd file descriptors with $QPS queue pairs open"
[ "$nfd" -le 32 ] || { ls -l "/proc/$(poold_pid 1)/fd"; fail "poold holds $nfd file descriptors"; }
wait "$clientpid" || { cat "$CLUSTER_LOG/write.log"; fail "the client's data did not verify"; }
alive "$(poold_pid 1)" || fail "poold died"

testclient --id h1 release || fail "release failed"
stop_poold 1
assert_clean_logs
echo "23-poold-fds: $QPS queue pairs in $nfd file descriptors, limits raised and checked"
