#!/bin/sh
# Sessions that fail and come back, 1: a poold out of reach for about 5 s
# under load.  fio writes /dev/rswap0 with crc32c verification headers and
# reads it back; meanwhile poold 1 is stopped (SIGSTOP) and its session
# fails as on a transport error (debugfs inject_fault), so the client must
# reconnect to a poold that does not answer.  Requests to it wait, then
# succeed once it is back: fio verifies every block, no I/O error is
# counted, and the poolds file counts the reconnect.  Once for writes in
# flight, once for reads.
#
# Why not take rxenet0 down: that breaks the session too (the module then
# waits for the port to come back), but on 6.1's rxe an rdma_cm listener
# that had connections through the port never answers a connect request
# again afterwards (poold's, and a userspace test client's request to it,
# alike), so nothing could reconnect in this VM.
set -u
. "$RSWAP_TESTLIB/swap.sh"
. "$RSWAP_TESTLIB/cluster.sh"
. "$RSWAP_TESTLIB/session.sh"

[ "${RSWAP_RXE:-}" = up ] || fail "Soft-RoCE is not up in this VM"
command -v fio > /dev/null || skip "fio not in the VM (--extra-bin /usr/bin/fio)"
cluster_init
cleanup() {
	for n in 1 2; do
		p=$(poold_pid $n)
		[ -n "$p" ] && kill -CONT "$p" 2> /dev/null
	done
	mod_loaded && rmmod rswap_client
	stop_all
}
trap cleanup EXIT
modprobe rdma_cm || fail "modprobe rdma_cm"

start_coord 9400 16M
for n in 1 2; do start_poold "$n" 48M; done
for n in 1 2; do wait_registered "$n"; done
P1=$(poold_addr 1)

rswap_insmod coord="$RSWAP_IP:9400" size=64M name=outage timeout_ms=2000 \
	fail_io_tmo=30 || fail "insmod: $(cat $RSWAP_INSMOD_OUT)"
[ -w "$RSWAP_INJECT" ] || fail "no $RSWAP_INJECT"
[ -n "$(slots_on "$P1")" ] || fail "no slot on poold 1: $(rsysfs chunk_map)"

# outage_under_fio NAME FIO-ARGS...: fio in the background, poold 1 out
# of reach for 5 s two seconds in; fio must pass.
outage_under_fio() {
	name=$1
	shift
	r0=$(sess_field "$P1" reconnects)
	fio --name="$name" --filename=/dev/rswap0 --bs=64k --size=64M \
		--ioengine=psync --direct=1 --verify=crc32c --verify_fatal=1 \
		"$@" > "/tmp/fio-$name.log" 2>&1 &
	fpid=$!
	sleep 2
	alive $fpid || { cat "/tmp/fio-$name.log"; fail "fio $name ended before the outage"; }
	kill -STOP "$(poold_pid 1)"
	t0=$(date +%s)
	inject_fault "$P1"
	sleep 5
	[ "$(sess_field "$P1" state)" = reconnecting ] ||
		fail "session to poold 1 is '$(sess_field "$P1" state)' while it is stopped, expected reconnecting"
	kill -CONT "$(poold_pid 1)"
	wait_sess "$P1" state live 60 || fail "session to poold 1 did not come back: $(sess_line "$P1")"
	note "$name: poold 1 reachable again after $(($(date +%s) - t0)) s"
	wait $fpid || { cat "/tmp/fio-$name.log"; fail "fio $name failed across the outage"; }
	grep -E "err=|IOPS" "/tmp/fio-$name.log"
	r1=$(sess_field "$P1" reconnects)
	[ "$r1" -gt "$r0" ] || fail "reconnects of poold 1 did not grow ($r0 -> $r1)"
	note "$name: $(sess_line "$P1")"
}

# Writes in flight during the outage (fio verifies after writing).
outage_under_fio write --rw=randwrite
# Reads in flight during it: verify what was written above.
outage_under_fio read --rw=randwrite --verify_only

rsysfs poolds
for k in io lost down post; do
	[ "$(err_count $k)" = 0 ] || fail "$(err_count $k) '$k' errors counted: $(rsysfs errors | tr '\n' ' ')"
done
[ "$(sess_field "$P1" requeued)" -gt 0 ] || fail "no request waited for poold 1"
[ "$(sess_field "$P1" lost_chunks)" = 0 ] || fail "chunks lost on a poold that only paused"

nrec=$(sess_field "$P1" reconnects)
rswap_rmmod || fail "rmmod after the outages"
assert_clean_logs
echo "31-sess-outage: two 5 s outages under fio, every block verified, $nrec reconnects counted"
