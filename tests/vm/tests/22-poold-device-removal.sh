#!/bin/sh
# The RDMA device under a running poold goes away (rdma link del) and comes
# back (rdma link add), first with a client connected, then with none.
# poold must not crash: it logs one line, closes every session on the
# device (so that the kernel can finish the removal), leaves the
# coordinator, and once the device is back listens and registers again with
# the chunks it held; the data written before the removal verifies and a
# new client is served.
set -u
. "$RSWAP_TESTLIB/cluster.sh"
cluster_init

[ "${RSWAP_RXE:-}" = up ] || { echo "skip: Soft-RoCE is not up"; exit 77; }
dev=$RSWAP_RDMADEV
# A second device, as a memory server with two ports has: librdmacm only
# notices a removal while some device is left (with none left, rxe's
# removal waits for poold to stop; poold says so in its log).
dev2=rxe_spare net2=rxenet_spare
ip link add "$net2" type dummy && ip addr add 10.99.7.1/24 dev "$net2" &&
	ip link set "$net2" up && rdma link add "$dev2" type rxe netdev "$net2" ||
	fail "cannot add a second Soft-RoCE device"
# Whatever happens, stop the daemons first (they may hold a device), then
# leave the boot with its device and without the spare.
CLUSTER_ON_EXIT='for _p in $CLUSTER_PIDS; do kill -9 "$_p" 2>/dev/null; wait "$_p" 2>/dev/null; done
	has_link "$dev" || rdma link add "$dev" type rxe netdev "$RSWAP_NETDEV"
	rdma link del "$dev2" 2>/dev/null; ip link del "$net2" 2>/dev/null'

has_link() { rdma link show | grep -q "^link $1/"; }

# link_del: the kernel finishes a removal only once every process has let
# go of the device (rxe cannot take it from them): a poold that holds on
# hangs it, so after 60 s poold is killed to unblock it, and the test fails.
link_del() {
	rdma link del "$dev" &
	_d=$!
	_i=0
	while kill -0 "$_d" 2>/dev/null; do
		_i=$((_i + 1))
		if [ $_i -gt 600 ]; then
			ls -l "/proc/$(poold_pid 1)/fd"
			kill -9 "$(poold_pid 1)"
			wait "$_d"
			fail "rdma link del $dev did not finish within 60 s: poold still held the device"
		fi
		sleep 0.1
	done
	wait "$_d" || fail "rdma link del $dev failed"
	has_link "$dev" && fail "$dev is still there after rdma link del"
	echo "$dev removed"
}

link_add() {
	rdma link add "$dev" type rxe netdev "$RSWAP_NETDEV" || fail "rdma link add $dev failed"
	has_link "$dev" || fail "$dev is not listed after rdma link add"
	echo "$dev added again"
}

poold_alive() {
	_pid=$(poold_pid 1)
	alive "$_pid" && return 0
	wait "$_pid"
	fail "poold exited with status $? after the device removal ($1)"
}

start_coord 9400 16M
start_poold 1 64M
wait_registered 1
testclient --id h1 --size 32M write > "$CLUSTER_LOG/write.log" 2>&1 ||
	{ cat "$CLUSTER_LOG/write.log"; fail "testclient write failed"; }

# 1. With a client connected: its session ends, poold stays up.
testclient --id h1 --size 32M --hold 120 --expect-revoked verify \
	> "$CLUSTER_LOG/hold.log" 2>&1 &
holdpid=$!
wait_log "$CLUSTER_LOG/hold.log" "holding the connections" 1 60 ||
	fail "the holding client did not connect and verify"
link_del
sleep 1
poold_alive "client connected"
wait "$holdpid" || { cat "$CLUSTER_LOG/hold.log"; fail "the connected client did not see its session end"; }
wait_log "$(poold_log 1)" "RDMA device under .* was removed" 1 10 ||
	fail "poold did not log the removal of its device"
# The session ends by the client's disconnect or by the removal itself.
wait_log "$(poold_log 1)" "session .* closed" 2 10 ||
	fail "poold did not close the connected client's session"
[ "$(grep -c "was removed" "$(poold_log 1)")" = 1 ] ||
	fail "poold logged the removal more than once"
# It left the coordinator: nothing new may be placed on it.
wait_log "$CLUSTER_LOG/coord.log" "poold $(poold_addr 1) is down" 1 10 ||
	fail "poold did not leave the coordinator while it had no device"

link_add
wait_log "$(poold_log 1)" "listening for RDMA clients on .* again" 1 30 ||
	fail "poold did not listen again once the device was back"
wait_registered 1 2
grep -q "registered with coordinator .* 2 chunks held" "$(poold_log 1)" ||
	fail "poold did not report its chunks when it registered again"
testclient --id h1 --size 32M verify > "$CLUSTER_LOG/verify1.log" 2>&1 ||
	{ cat "$CLUSTER_LOG/verify1.log"; fail "h1's data did not verify after the device came back"; }
cat "$CLUSTER_LOG/verify1.log"
echo "with a client connected: poold survived, serves again, data intact"

# 2. Idle (no client connected): the same, and a new client is served.
link_del
sleep 1
poold_alive "idle"
wait_log "$(poold_log 1)" "was removed" 2 10 ||
	fail "poold did not log the second removal"
link_add
wait_log "$(poold_log 1)" "listening for RDMA clients on .* again" 2 30 ||
	fail "poold did not listen again after the second removal"
wait_registered 1 3
testclient --id h2 --size 16M write > "$CLUSTER_LOG/write2.log" 2>&1 ||
	{ cat "$CLUSTER_LOG/write2.log"; fail "a new client was not served after the device came back"; }
testclient --id h1 --size 32M verify > "$CLUSTER_LOG/verify2.log" 2>&1 ||
	{ cat "$CLUSTER_LOG/verify2.log"; fail "h1's data did not verify after the second removal"; }
echo "idle: poold survived, serves a new client, old data intact"

testclient --id h1 release || fail "release of h1 failed"
testclient --id h2 release || fail "release of h2 failed"
stop_poold 1
grep -q "stopped" "$(poold_log 1)" || fail "poold did not log a clean stop"
assert_clean_logs
cat "$(poold_log 1)"
echo "22-poold-device-removal: two removals survived, data intact, served again"
