#!/bin/sh
# Sessions that fail and come back, 1: a network blip under load.  fio
# writes /dev/rswap0 with crc32c verification headers and reads it back;
# meanwhile the netdev under rxe goes down for 5 s.  The queue pairs with
# requests in flight fail (their work requests cannot be sent), the
# sessions reconnect once the port is back, and the requests that waited
# succeed: fio verifies every block, no I/O error is counted, and the
# poolds file counts the reconnects.  Once for writes in flight, once for
# reads.
set -u
. "$RSWAP_TESTLIB/swap.sh"
. "$RSWAP_TESTLIB/cluster.sh"
. "$RSWAP_TESTLIB/session.sh"

[ "${RSWAP_RXE:-}" = up ] || fail "Soft-RoCE is not up in this VM"
command -v fio > /dev/null || skip "fio not in the VM (--extra-bin /usr/bin/fio)"
cluster_init
cleanup() {
	ip link set "$RSWAP_NETDEV" up
	mod_loaded && rmmod rswap_client
	stop_all
}
trap cleanup EXIT
modprobe rdma_cm || fail "modprobe rdma_cm"

start_coord 9400 16M
for n in 1 2; do start_poold "$n" 48M; done
for n in 1 2; do wait_registered "$n"; done
P1=$(poold_addr 1)
P2=$(poold_addr 2)

rswap_insmod coord="$RSWAP_IP:9400" size=64M name=blip timeout_ms=2000 \
	fail_io_tmo=30 || fail "insmod: $(cat $RSWAP_INSMOD_OUT)"

reconnects() { rsysfs poolds | tr ' ' '\n' | sed -n 's/^reconnects=//p' | awk '{ n += $1 } END { print n + 0 }'; }

# blip_under_fio NAME FIO-ARGS...: fio in the background, the netdev down
# for 5 s two seconds in; fio must pass.
blip_under_fio() {
	name=$1
	shift
	r0=$(reconnects)
	fio --name="$name" --filename=/dev/rswap0 --bs=64k --size=64M \
		--ioengine=psync --direct=1 --verify=crc32c --verify_fatal=1 \
		"$@" > "/tmp/fio-$name.log" 2>&1 &
	fpid=$!
	sleep 2
	alive $fpid || { cat "/tmp/fio-$name.log"; fail "fio $name ended before the blip"; }
	ip link set "$RSWAP_NETDEV" down || fail "cannot take $RSWAP_NETDEV down"
	t0=$(date +%s)
	sleep 5
	rsysfs poolds | grep -q "state=reconnecting" ||
		fail "no session noticed the blip: $(rsysfs poolds | tr '\n' ' ')"
	ip link set "$RSWAP_NETDEV" up || fail "cannot bring $RSWAP_NETDEV up"
	for p in "$P1" "$P2"; do
		wait_sess "$p" state live 60 || fail "session to $p did not come back: $(sess_line "$p")"
	done
	note "$name: every session live again $(($(date +%s) - t0)) s after the netdev went down"
	wait $fpid || { cat "/tmp/fio-$name.log"; fail "fio $name failed across the blip"; }
	grep -E "err=|IOPS" "/tmp/fio-$name.log"
	r1=$(reconnects)
	[ "$r1" -gt "$r0" ] || fail "reconnects did not grow ($r0 -> $r1)"
	rsysfs poolds
}

# Writes in flight during the blip (fio verifies after writing).  Several
# passes, so that a fast machine is still writing when the link goes down.
blip_under_fio write --rw=randwrite --loops=4
# Reads in flight during it: verify what was written above, many times
# (one pass takes under 2 s on a quiet machine).
blip_under_fio read --rw=randwrite --verify_only --loops=12

no_io_errors "after the blips"
rsysfs poolds | grep -v "lost_chunks=0$" && fail "chunks lost in a network blip"
nrec=$(reconnects)

rswap_rmmod || fail "rmmod after the blips"
assert_clean_logs
echo "31-sess-blip: two 5 s network blips under fio, every block verified, $nrec reconnects counted"
