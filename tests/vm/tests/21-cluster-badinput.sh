#!/bin/sh
# Cluster bad input: every malformed request is refused with the right
# reason, nothing is allocated or disturbed by it, and the daemons keep
# serving.  Covers the coordinator (over-size pool, duplicate poold address),
# the poold's connect-request checks, the poold command line, and a fake
# coordinator that sends garbage.
set -u
. "$RSWAP_TESTLIB/cluster.sh"
cluster_init

# ---- poold command line: exit 2 with exactly one line -----------------------
bad_cli() {
	out=$(poold "$@" 2>&1)
	rc=$?
	lines=$(printf '%s\n' "$out" | wc -l)
	[ $rc -eq 2 ] && [ "$lines" -eq 1 ] ||
		fail "poold $* exited $rc with $lines lines (want 2 and 1): $out"
	echo "refused as expected: poold $* -> $out"
}
C="--coord $RSWAP_IP:9400"
L="--listen $RSWAP_IP:9501"
bad_cli $C $L
bad_cli $L --capacity 48M
bad_cli $C --capacity 48M
bad_cli $C $L --capacity 0
bad_cli $C $L --capacity 12Q
bad_cli $C $L --capacity -5M
bad_cli $C $L --capacity 99999999999999T
bad_cli $C $L --capacity 1M
bad_cli $C --listen "$RSWAP_IP:0" --capacity 48M
bad_cli $C --listen "$RSWAP_IP:70000" --capacity 48M
bad_cli $C --listen "$RSWAP_IP:port" --capacity 48M
bad_cli $C --listen 0.0.0.0:9501 --capacity 48M
bad_cli $C --listen 999.1.1.1:9501 --capacity 48M
bad_cli --coord "$RSWAP_IP:abc" $L --capacity 48M
bad_cli --coord "[::1" $L --capacity 48M
bad_cli $C $L --capacity 48M --max-qps 0
bad_cli $C $L --capacity 48M --max-qps 257
bad_cli $C $L --capacity 48M --max-qps 4x
bad_cli $C $L --capacity 48M --bogus
bad_cli $C $L --capacity 48M extra-arg
bad_cli $C $L --capacity

# ---- a running cluster -------------------------------------------------------
start_coord 9400 16M
start_poold 1 48M --max-qps 4
start_poold 2 48M --max-qps 4
wait_registered 1
wait_registered 2

# A pool larger than the cluster is refused and allocates nothing.
testclient --id huge --size 1G --expect-coord-error map ||
	fail "a 1G pool on a 96M cluster was not refused"
[ "$(json_used_total)" = 0 ] || { admin list; fail "a refused pool left chunks allocated"; }

# A good client whose data must survive everything below.
testclient --id good --size 64M write || fail "testclient write of 'good' failed"

# Connect requests the poolds must refuse, each with its reason.
refuse() {
	reason=$1
	shift
	testclient --size 64M --expect-refusal "$reason" "$@" connect ||
		fail "connect $* was not refused with $reason"
}
refuse BAD_REQUEST --id good --bad-magic
refuse VERSION --id good --bad-version
refuse BAD_REQUEST --id good --bad-flags
refuse BAD_REQUEST --id good --qp-count 0
refuse TOO_MANY_QPS --id good --qp-count 1000
refuse TOO_MANY_QPS --id good --qps 5
refuse SESSION --id good --session-mismatch
# Straight to a poold: an id it holds nothing for, and an unprintable id.
rswap-testclient --poold "$(poold_addr 1)" --id nobody --expect-refusal NO_CHUNKS connect ||
	fail "unknown client id was not refused with NO_CHUNKS"
rswap-testclient --poold "$(poold_addr 1)" --id "bad id" --expect-refusal BAD_REQUEST connect ||
	fail "client id with a space was not refused with BAD_REQUEST"
for n in 1 2; do
	grep -q "refused: " "$(poold_log "$n")" || fail "poold $n logged no refusal"
done
grep -q "client nobody $RSWAP_IP: refused: " "$(poold_log 1)" ||
	fail "poold 1 did not name the client and peer in its refusal line"

# A newer client is served at our version; the right qp count is accepted.
testclient --id good --size 64M --version 9 --qps 4 connect ||
	fail "a client speaking version 9 with 4 queue pairs was refused"

# Sessions per client id are capped (4 at once): the fifth is refused, and
# killed clients' sessions are torn down.
# One after the other: a hello for an id another live coordinator session
# is using is refused (EBUSY), and each holder's hello session ends once it
# has its map.
hpids=
for i in 1 2 3 4; do
	# Not the testclient function: $! must be the client itself, to kill it.
	rswap-testclient --coord "$RSWAP_IP:$COORD_PORT" --key-file "$CLUSTER_KEY" --id good --size 64M \
		--hold 60 verify > "$CLUSTER_LOG/sess$i.log" 2>&1 &
	hpids="$hpids $!"
	wait_log "$CLUSTER_LOG/sess$i.log" "holding the connections" 1 120 ||
		fail "holding client $i did not connect"
done
refuse NO_RESOURCES --id good
closed1=$(grep -c "session .* closed" "$(poold_log 1)")
for p in $hpids; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
wait_log "$(poold_log 1)" "session .* closed" $((closed1 + 4)) ||
	fail "poold 1 did not tear down the sessions of killed clients"

# A second poold claiming a registered listen address is refused.
testclient --as "$(poold_addr 1)" --size 48M --expect-coord-error register ||
	fail "coordinator accepted a second poold at $(poold_addr 1)"
# A second poold on the same RDMA address cannot even listen: exit 1, one line.
poold --coord "$RSWAP_IP:9400" --listen "$(poold_addr 1)" --capacity 48M --insecure \
	> "$CLUSTER_LOG/dup.log" 2>&1
[ $? -eq 1 ] && grep -q "already in use" "$CLUSTER_LOG/dup.log" ||
	{ cat "$CLUSTER_LOG/dup.log"; fail "a second poold on a used address did not exit 1"; }

# Nothing above disturbed the good client's data or the daemons.
testclient --id good --size 64M verify || fail "data of 'good' did not survive the bad input"
for n in 1 2; do alive "$(poold_pid "$n")" || fail "poold $n died"; done
alive "$COORD_PID" || fail "rswap-coord died"

# ---- a fake coordinator that sends garbage ----------------------------------
if nc --help 2>&1 | grep -q -- '-l'; then
	# 'garb' as a length prefix is far above the frame limit.
	(printf 'garbage, not a frame' | nc -l -p 9600 > /dev/null 2>&1) &
	ncpid=$!
	sleep 0.5
	poold --coord "$RSWAP_IP:9600" --listen "$(poold_addr 3)" --capacity 48M --insecure \
		> "$(poold_log 3)" 2>&1 &
	POOLD_PID_3=$!
	CLUSTER_PIDS="$CLUSTER_PIDS $POOLD_PID_3 $ncpid"
	wait_log "$(poold_log 3)" "bad frame" 1 15 || fail "poold did not reject a garbage frame"
	sleep 1
	alive "$POOLD_PID_3" || fail "poold crashed on a garbage frame"
	grep -q "retrying in" "$(poold_log 3)" || fail "poold does not retry after a bad frame"
	stop_poold 3
	kill "$ncpid" 2>/dev/null
	echo "fake coordinator: poold logged the bad frame, kept running and retried"

	# A coordinator that accepts and never answers: poold gives up after 10 s.
	(sleep 30 | nc -l -p 9602 > /dev/null 2>&1) &
	ncpid=$!
	CLUSTER_PIDS="$CLUSTER_PIDS $ncpid"
	sleep 0.5
	poold --coord "$RSWAP_IP:9602" --listen "$(poold_addr 3)" --capacity 48M --insecure \
		> "$(poold_log 5)" 2>&1 &
	POOLD_PID_5=$!
	CLUSTER_PIDS="$CLUSTER_PIDS $POOLD_PID_5"
	wait_log "$(poold_log 5)" "not registered within" 1 20 ||
		fail "poold waited forever on a silent coordinator"
	stop_poold 5
	kill "$ncpid" 2>/dev/null
	echo "silent coordinator: poold timed out the registration and retried"
else
	echo "busybox nc has no -l: fake-coordinator check skipped"
fi

# ---- a fake coordinator that speaks the protocol but pushes the limits ------
# Capacity filled (ENOSPC), duplicate slot (EEXIST), unknown and double
# frees (ENOENT), a malformed command (hang up, reconnect), a chunk size
# different from the chunks held (refused, reconnect); every re-registration
# lists the chunks held.
rswap-testclient --as "$RSWAP_IP:9601" fake-coord > "$CLUSTER_LOG/fake.log" 2>&1 &
fakepid=$!
CLUSTER_PIDS="$CLUSTER_PIDS $fakepid"
wait_listen 9601 || fail "fake coordinator did not listen"
poold --coord "$RSWAP_IP:9601" --listen "$(poold_addr 4)" --capacity 48M --insecure \
	> "$(poold_log 4)" 2>&1 &
POOLD_PID_4=$!
CLUSTER_PIDS="$CLUSTER_PIDS $POOLD_PID_4"
wait "$fakepid" || { cat "$CLUSTER_LOG/fake.log"; fail "poold misbehaved towards the fake coordinator"; }
cat "$CLUSTER_LOG/fake.log"
alive "$POOLD_PID_4" || fail "poold died under the fake coordinator"
stop_poold 4

testclient --id good release || fail "release of 'good' failed"
[ "$(json_used_total)" = 0 ] || fail "chunks still used after release"

# SIGTERM with a client connected: poold disconnects it and exits 0.
testclient --id last --size 32M --hold 60 --expect-revoked write \
	> "$CLUSTER_LOG/hold.log" 2>&1 &
holdpid=$!
wait_log "$CLUSTER_LOG/hold.log" "holding the connections" 1 60 ||
	fail "the holding client did not connect"
stop_poold 1
stop_poold 2
wait "$holdpid" || { cat "$CLUSTER_LOG/hold.log"; fail "client not disconnected by a stopping poold"; }
assert_clean_logs
echo "21-cluster-badinput: every bad request refused with its reason; data intact"
