#!/bin/sh
# A client id belongs to one live session, so two hosts with the same id
# never write the same remote pages:
# - rswap-testclient holds the id "other" (its coordinator session open,
#   with heartbeats): insmod name=other fails with EBUSY and one line,
#   leaves nothing behind, sends no ClientRelease, and the test client's
#   chunks still verify;
# - the module holds "same" with a known pattern on /dev/rswap0: a second
#   "host" (rswap-testclient) with that id is refused at the coordinator,
#   its release too, and the module's data still verifies;
# - the coordinator is killed (-9) while swap runs: swap goes on, the
#   module's link goes to reconnecting; restarted before the poolds that
#   hold the chunks re-register, it answers the module's reconnect with
#   EAGAIN (no new pool); once they have, the module says hello again
#   (sysfs coord_reconnects >= 1), gets the same map, and rswap-admin shows
#   its session; rmmod then releases on the live session.
set -u
. "$RSWAP_TESTLIB/swap.sh"
. "$RSWAP_TESTLIB/cluster.sh"	# its fail() also dumps the daemons' logs

[ "${RSWAP_RXE:-}" = up ] || fail "Soft-RoCE is not up in this VM"
[ -r "$RSWAP_KO" ] || fail "no module at $RSWAP_KO"
cluster_init
cleanup() {
	swapoff /dev/rswap0 2> /dev/null
	mod_loaded && rmmod rswap_client
	stop_all
}
trap cleanup EXIT
modprobe rdma_cm || fail "modprobe rdma_cm"

COORD="$RSWAP_IP:9400"
LOG=$CLUSTER_LOG
start_coord 9400 16M
for n in 1 2; do start_poold "$n" 96M; done
for n in 1 2; do wait_registered "$n"; done

chunks_used() { v=$(json_used_total); echo "${v:-0}"; }
# session_of ID: "ADDR:PORT" of the live session owning ID, or nothing.
session_of() { admin status "$1" | sed -n 's/^  session: live, from //p'; }
# wait_sysfs FILE VALUE SECS
wait_sysfs() {
	_i=0
	while [ "$(rsysfs "$1")" != "$2" ]; do
		_i=$((_i + 1))
		[ $_i -gt $(($3 * 10)) ] && return 1
		sleep 0.1
	done
	return 0
}

# heartbeat_ms must be 100..60000 and below timeout_ms.
expect_insmod_fails "Invalid argument" coord="$COORD" size=32M name=hb heartbeat_ms=3000 timeout_ms=2000
expect_insmod_fails "Invalid argument" coord="$COORD" size=32M name=hb heartbeat_ms=50
[ "$(chunks_used)" = 0 ] || fail "chunks held after bad heartbeat_ms"

# ---- the test client holds "other": insmod with that id is refused --------
rswap-testclient --coord "$COORD" --key-file "$CLUSTER_KEY" --id other --size 32M --hold-coord 300 write \
	> "$LOG/hold.log" 2>&1 &
holdpid=$!
wait_log "$LOG/hold.log" "holding client id other" 1 60 ||
	{ cat "$LOG/hold.log"; fail "the test client did not write and hold its id"; }
used0=$(chunks_used)
[ "$used0" = $((32 * 1048576)) ] || fail "coordinator shows $used0 bytes used, expected 32M"
holder=$(session_of other)
[ -n "$holder" ] || { admin status other; fail "rswap-admin shows no live session for other"; }
echo 'client-id-test: insmod name=other' > /dev/kmsg
expect_insmod_fails "Device or resource busy" coord="$COORD" size=32M name=other
line=$(dmesg | sed -n '/client-id-test: insmod name=other/,$p' | grep 'rswap_client: coordinator .* refused client id "other"' | tail -n 1)
echo "$line"
case $line in
*"in use by a live session from $holder"*"set name= to an id no other host uses"*) ;;
*) fail "no clear EBUSY line naming the live session $holder: '$line'" ;;
esac
grep -q "client other: released" "$LOG/coord.log" && fail "the refused module released the test client's chunks"
[ "$(chunks_used)" = "$used0" ] || fail "chunks changed after the refused insmod: $(chunks_used)"
[ "$(session_of other)" = "$holder" ] || fail "the test client's session was disturbed"
kill "$holdpid"
wait "$holdpid" 2> /dev/null
testclient --id other --size 32M verify > "$LOG/verify-other.log" 2>&1 ||
	{ cat "$LOG/verify-other.log"; fail "the test client's data did not survive the refused insmod"; }
grep "data intact" "$LOG/verify-other.log"

# ---- the module holds "same": a second host with it is refused ------------
rswap_insmod coord="$COORD" size=64M name=same heartbeat_ms=300 timeout_ms=3000 ||
	fail "insmod: $(cat "$RSWAP_INSMOD_OUT")"
[ "$(rsysfs coord_state)" = live ] || fail "coord_state $(rsysfs coord_state), expected live"
[ "$(rsysfs coord_reconnects)" = 0 ] || fail "coord_reconnects $(rsysfs coord_reconnects) at load"
dd if=/dev/urandom of=/tmp/pattern bs=1M count=64 2> /dev/null
sum0=$(md5sum < /tmp/pattern | cut -d' ' -f1)
dd if=/tmp/pattern of=/dev/rswap0 bs=1M oflag=direct 2> /dev/null || fail "writing the pattern"
rm -f /tmp/pattern
dev_sum() { dd if=/dev/rswap0 bs=1M iflag=direct 2> /dev/null | md5sum | cut -d' ' -f1; }
[ "$(dev_sum)" = "$sum0" ] || fail "the pattern did not read back"
admin --json status same > "$LOG/map0.json" || fail "rswap-admin status same"
mine=$(session_of same)
[ -n "$mine" ] || fail "rswap-admin shows no live session for the module"
hb0=$(rsysfs coord_heartbeats)
sleep 2
hb1=$(rsysfs coord_heartbeats)
[ "$hb1" -gt "$hb0" ] || fail "no heartbeat echoes in 2 s ($hb0 -> $hb1)"
note "module session from $mine, $((hb1 - hb0)) heartbeats echoed in 2 s"

testclient --id same --size 64M --expect-coord-error write > "$LOG/dup.log" 2>&1 ||
	{ cat "$LOG/dup.log"; fail "a second host with the module's id was not refused"; }
grep -q "in use by a live session from $mine" "$LOG/dup.log" ||
	{ cat "$LOG/dup.log"; fail "the refusal does not name the module's session"; }
testclient --id same release > "$LOG/dup-release.log" 2>&1 &&
	fail "a second host released the module's chunks"
grep -q "in use by a live session" "$LOG/dup-release.log" ||
	{ cat "$LOG/dup-release.log"; fail "release refused for another reason"; }
admin --json status same | cmp -s - "$LOG/map0.json" ||
	{ admin --json status same; fail "the module's map or session changed"; }
[ "$(dev_sum)" = "$sum0" ] || fail "the module's data changed after a second host was refused"
[ "$(rsysfs coord_state)" = live ] || fail "the module's session was disturbed: $(rsysfs coord_state)"
note "a second host with id same was refused; the module's 64M still verify"

# ---- the coordinator dies under swap and comes back -----------------------
mkswap /dev/rswap0 > /dev/null || fail "mkswap"
swapon /dev/rswap0 || fail "swapon"
out0=$(vmstat pswpout)
(memhog_under_limit 64 40 5) > "$LOG/hog.log" 2>&1 &
hogpid=$!
sleep 3
kill_coord
i=0
while [ "$(rsysfs coord_state)" = live ]; do
	i=$((i + 1))
	[ $i -gt 50 ] && fail "coord_state still live 5 s after the coordinator died"
	sleep 0.1
done
note "coordinator killed: coord_state $(rsysfs coord_state), last error: $(rsysfs coord_last_error)"
wait "$hogpid" || { cat "$LOG/hog.log"; fail "swap failed while the coordinator was down"; }
out1=$(vmstat pswpout)
[ "$out1" -gt "$out0" ] || fail "nothing was swapped out ($out0 -> $out1)"
note "swap went on with the coordinator down: $((out1 - out0)) pages out"
rsysfs errors | grep -v " 0$" | grep -v "^busy" && fail "I/O errors counted"

# Restart with the poolds that hold the chunks stopped (the kernel's rxe
# serves their one-sided RDMA meanwhile) and an empty poold 3 up: the
# module's reconnect hello must get EAGAIN, never a new pool on poold 3
# that would clash with its real chunks.  Then the poolds re-register the
# chunks and the module's session comes back on the same map.
for n in 1 2; do kill -STOP "$(poold_pid "$n")"; done
CLUSTER_ON_EXIT='for n in 1 2; do kill -CONT "$(poold_pid "$n")" 2> /dev/null; done'
start_poold 3 96M
t0=$(date +%s)
# shellcheck disable=SC2086 # CLUSTER_AUTH is one or two words
rswap-coord --listen "$COORD" --chunk-size 16M --heartbeat-ms 200 --restart-grace-ms "${COORD_GRACE_MS:-0}" \
	$CLUSTER_AUTH >> "$LOG/coord.log" 2>&1 &
COORD_PID=$!
CLUSTER_PIDS="$CLUSTER_PIDS $COORD_PID"
wait_listen 9400 || fail "rswap-coord did not restart"
wait_registered 3
i=0
until rsysfs coord_last_error | grep -q "is not known (yet)"; do
	i=$((i + 1))
	[ $i -gt 600 ] && fail "the module's reconnect was not answered EAGAIN: $(rsysfs coord_last_error)"
	sleep 0.1
done
note "reconnect before the poolds returned: $(rsysfs coord_last_error)"
[ "$(chunks_used)" = 0 ] || { admin list; fail "the coordinator allocated for a reconnecting module"; }
for n in 1 2; do kill -CONT "$(poold_pid "$n")"; done
for n in 1 2; do wait_registered "$n" 2; done
wait_sysfs coord_state live 60 ||
	fail "the module's session did not come back: $(rsysfs coord_state), $(rsysfs coord_last_error)"
[ "$(rsysfs coord_reconnects)" -ge 1 ] || fail "coord_reconnects $(rsysfs coord_reconnects)"
[ -n "$(session_of same)" ] || { admin list; fail "rswap-admin does not show the module's session again"; }
admin status same
dmesg | grep "rswap_client: coordinator" | tail -n 4
dmesg | grep -q "another chunk map" && fail "the restarted coordinator gave the module another map"
note "module session back $(($(date +%s) - t0)) s after the restart, $(rsysfs coord_reconnects) reconnect(s)"
memhog_under_limit 48 50 6

swapoff /dev/rswap0 || fail "swapoff"
t0=$(date +%s)
coordlines=$(($(wc -l < "$LOG/coord.log") + 1))
rswap_rmmod || fail "rmmod"
note "rmmod (session thread stopped, chunks released) took $(($(date +%s) - t0)) s"
mod_loaded && fail "module still loaded"
sleep 0.5
[ "$(chunks_used)" = $((32 * 1048576)) ] ||
	fail "after rmmod the coordinator counts $(chunks_used) bytes, expected only other's 32M"
dmesg | grep -q "released 4 chunks of client same" || fail "no release of client same logged"
# On the live session: unloading must not drop it first.
dmesg | grep -q "session lost: interrupted" && fail "rmmod dropped the session before releasing"
tail -n +"$coordlines" "$LOG/coord.log" | grep -q 'refused: client id "same"' &&
	fail "the module's release of same was refused"
assert_clean_logs
echo "23-client-id: same id refused both ways with data intact; coordinator restart survived"
