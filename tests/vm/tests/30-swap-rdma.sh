#!/bin/sh
# rswap-client.ko over RDMA: a coordinator with 16M chunks and three
# poolds on Soft-RoCE; the client's pool spreads over all of them.  Load
# errors fail insmod with the right errno and leave nothing behind (no
# module, no device, no chunks held); swap under cgroup memory pressure
# keeps data intact and reaches more than one poold; fio verifies the raw
# device when present, with requests of 1 MiB; synchronous=1 swaps in
# without readahead; rmmod is refused while swapon'd; 20 load/unload
# cycles leak neither kernel memory nor chunks.
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
start_coord 9400 16M
for n in 1 2 3; do start_poold "$n" 48M; done
for n in 1 2 3; do wait_registered "$n"; done

chunks_used() { v=$(json_used_total); echo "${v:-0}"; }

# ---- load errors ------------------------------------------------------------
expect_insmod_fails "Invalid argument" coord="$COORD"
expect_insmod_fails "Invalid argument" coord=nohost:9400 size=64M
expect_insmod_fails "Invalid argument" coord="$RSWAP_IP" size=64M
expect_insmod_fails "Invalid argument" coord="$COORD" size=64M name=0123456789abcdef0123456789abcdefXX
expect_insmod_fails "Connection refused" coord="$RSWAP_IP:9399" size=64M
expect_insmod_fails "No route to host\|Connection timed out\|Network is unreachable" \
	coord=10.99.0.77:9400 size=64M timeout_ms=2000
expect_insmod_fails "No space left on device" coord="$COORD" size=1G name=too-big
[ "$(chunks_used)" = 0 ] || fail "chunks held after failed loads: $(chunks_used) bytes"

# A fake coordinator (busybox nc) answering every connection with one
# canned frame: another protocol version, an oversized frame length, a
# ChunkMap with one slot for a 64M pool of 16M chunks.  Each must fail
# insmod with EPROTO ("Protocol error") and a line that says why.  kmod's
# insmod loads once: busybox's would retry and could find the one-shot
# listener between two connections.
fake_coord() {
	# Its own process group, so that stopping it also stops the nc that
	# is listening at that moment (else that nc answers the next case).
	setsid sh -c 'while :; do { printf "$0"; sleep 1; } | nc -l -p 9411 > /dev/null 2>&1 || sleep 0.1; done' "$1" &
	FAKE_PID=$!
	wait_listen 9411 || fail "fake coordinator did not listen"
}
fake_coord_stop() {
	kill -9 -- "-$FAKE_PID" 2> /dev/null
	wait "$FAKE_PID" 2> /dev/null
	_i=0
	while grep -qE "^ *[0-9]+: [0-9A-F]+:24C3 [0-9A-F]+:0000 0A" /proc/net/tcp; do
		_i=$((_i + 1))
		[ $_i -gt 50 ] && fail "fake coordinator still listening on 9411"
		sleep 0.1
	done
}
if command -v nc > /dev/null; then
	for reply in '\000\000\000\004\010\002\020\001' '\177\377\377\377' \
		'\000\000\000\032\010\001\020\001\252\001\023\010\200\200\200\010\020\200\200\200\040\032\007\022\003\141\072\061\030\001'; do
		fake_coord "$reply"
		RSWAP_INSMOD=/usr/sbin/insmod expect_insmod_fails "Protocol error" \
			coord="$RSWAP_IP:9411" size=64M name=fake
		fake_coord_stop
	done
	# A map naming 257 distinct poolds (a client connects to at most 256):
	# refused at once with one line, not 257 connect attempts.
	fake_coord "$(awk -v n=257 -v chunk=16777216 -v prefix="$RSWAP_IP:" -v base=20000 \
		-f "$RSWAP_TESTLIB/fake-map.awk")"
	RSWAP_INSMOD=/usr/sbin/insmod expect_insmod_fails "Protocol error" \
		coord="$RSWAP_IP:9411" size=4112M name=fake
	dmesg | tail -n 3 | grep -q "names more than 256 poolds in one map" ||
		fail "a map naming 257 poolds was not refused for that"
	fake_coord_stop
	# A prefix assignment to a function may persist: back to the keyed insmod.
	insmod_with_key "$CLUSTER_KEY"
else
	note "no nc in the VM: fake-coordinator cases skipped"
fi

# ---- swap over RDMA -----------------------------------------------------------
rswap_insmod coord="$COORD" size=96M name=vm1 || fail "insmod: $(cat $RSWAP_INSMOD_OUT)"
[ -b /dev/rswap0 ] || fail "no /dev/rswap0"
[ "$(rsysfs backend)" = rdma ] || fail "backend $(rsysfs backend)"
[ "$(cat /sys/block/rswap0/queue/chunk_sectors)" = 32768 ] || fail "chunk_sectors"
[ "$(chunks_used)" = $((96 * 1048576)) ] || fail "coordinator shows $(chunks_used) bytes used, expected 96M"
rsysfs poolds
[ "$(rsysfs poolds | wc -l)" = 3 ] || fail "expected sessions to 3 poolds"

swap_round_trip /dev/rswap0 48
note "swap-out $((RSWAP_SWPOUT / (RSWAP_SWAP_SECS + 1)))+ pages/s, swap-in $((RSWAP_SWPIN / (RSWAP_SWAP_SECS + 1)))+ pages/s (whole run, memhog CPU included)"

# The raw transport in the same boot, for scale: 4 KiB messages per second
# of perftest's WRITE and READ bandwidth tests on the same rxe device.
# Informative only: perftest's own failures do not fail this test.
. "$RSWAP_TESTLIB/perftest.sh"
for tool in ib_write_bw ib_read_bw; do
	perftest_pair $tool /tmp/$tool -s 4096 -n 2000 || cat /tmp/$tool
	rate=$(perftest_4k_line /tmp/$tool | awk 'NF >= 5 { printf "%d", $5 * 1000000 }')
	note "$tool 4 KiB on $RSWAP_RDMADEV: ${rate:-?} messages/s"
done
rsysfs poolds
busy=$(rsysfs poolds | grep -vc "writes=0 ")
[ "$busy" -ge 2 ] || fail "only $busy poold(s) got pages"
rsysfs errors | grep -v " 0$" | grep -v "^busy" && fail "I/O errors counted"
read_error_check 48

rswap_rmmod > /tmp/.rmmod 2>&1 && fail "rmmod succeeded while swapon'd"
mod_loaded || fail "module gone while swapon'd"
swapoff /dev/rswap0 || fail "swapoff"

# ---- fio on the raw device ------------------------------------------------------
if command -v fio > /dev/null; then
	fio --name=rand4k --filename=/dev/rswap0 --rw=randwrite --bs=4k \
		--size=24M --ioengine=psync --direct=1 --verify=crc32c \
		--verify_fatal=1 --numjobs=1 > /tmp/fio1.log 2>&1 ||
		{ cat /tmp/fio1.log; fail "fio random 4k verify failed"; }
	grep -E "IOPS|err=" /tmp/fio1.log
	fio --name=seq64k --filename=/dev/rswap0 --rw=write --bs=64k \
		--size=48M --ioengine=psync --direct=1 --verify=crc32c \
		--verify_fatal=1 --numjobs=1 > /tmp/fio2.log 2>&1 ||
		{ cat /tmp/fio2.log; fail "fio sequential 64k verify failed"; }
	grep -E "IOPS|err=" /tmp/fio2.log
	# Requests of 1 MiB, 256 segments: a chain of RDMA operations each.
	[ "$(cat /sys/block/rswap0/queue/max_sectors_kb)" = 1024 ] ||
		fail "max_sectors_kb $(cat /sys/block/rswap0/queue/max_sectors_kb), expected 1024"
	[ "$(cat /sys/block/rswap0/queue/max_segments)" = 256 ] ||
		fail "max_segments $(cat /sys/block/rswap0/queue/max_segments), expected 256"
	set -- $(cat /sys/block/rswap0/stat)
	w0=$5 s0=$7
	fio --name=seq1m --filename=/dev/rswap0 --rw=write --bs=1M \
		--size=48M --ioengine=psync --direct=1 --verify=crc32c \
		--verify_fatal=1 --numjobs=1 > /tmp/fio3.log 2>&1 ||
		{ cat /tmp/fio3.log; fail "fio sequential 1M verify failed"; }
	set -- $(cat /sys/block/rswap0/stat)
	kib=$((($7 - s0) / 2 / ($5 - w0)))
	note "fio 1M writes: $(($5 - w0)) requests of $kib KiB on average"
	[ "$kib" -ge 512 ] || fail "fio 1M writes went out as requests of $kib KiB"
else
	note "fio not in the VM (--extra-bin /usr/bin/fio): raw-device fio part skipped"
fi

rswap_rmmod || fail "rmmod after swapoff"
mod_loaded && fail "module still loaded"
sleep 0.5
[ "$(chunks_used)" = 0 ] || fail "chunks still held after rmmod: $(chunks_used) bytes"

# ---- synchronous=1 -------------------------------------------------------------
# The device says it is synchronous (.rw_page before 6.3, a queue flag or
# feature after): a page mapped once is swapped in without the swap cache,
# so without readahead; with poll_us=200 a page read on its own (before
# 6.3) polls for its completion first.  Data still verifies; injected
# read errors still reach the reader, never as wrong data.
rswap_insmod coord="$COORD" size=96M name=vm-sync synchronous=1 poll_us=200 ||
	fail "insmod synchronous=1: $(cat $RSWAP_INSMOD_OUT)"
ra0=$(vmstat swap_ra)
swap_round_trip /dev/rswap0 48
ra=$(($(vmstat swap_ra) - ra0))
note "synchronous=1: $RSWAP_SWPIN pages swapped in, $ra read ahead"
[ $((ra * 10)) -lt "$RSWAP_SWPIN" ] ||
	fail "synchronous=1: $ra of $RSWAP_SWPIN swapped-in pages were read ahead"
rsysfs errors | grep -v " 0$" | grep -v "^busy" && fail "I/O errors counted with synchronous=1"
read_error_check 48
swapoff /dev/rswap0 || fail "swapoff (synchronous=1)"
rswap_rmmod || fail "rmmod (synchronous=1)"

# ---- load/unload 20x ---------------------------------------------------------------
load_cycles 20 coord="$COORD" size=64M name=cycle
sleep 0.5
[ "$(chunks_used)" = 0 ] || fail "chunks held after the cycles: $(chunks_used) bytes"

# ---- a poold dies under a loaded module ---------------------------------------
# Its queue pairs disconnect: I/O to its chunks fails fast with EIO (no
# hang, no stale data), and rmmod still drains and frees everything.
# fail_io_tmo=5: reads wait that long for the dead poold to come back.
rswap_insmod coord="$COORD" size=96M name=victim fail_io_tmo=5 ||
	fail "insmod victim: $(cat $RSWAP_INSMOD_OUT)"
dd if=/dev/urandom of=/dev/rswap0 bs=1M count=96 oflag=direct 2> /dev/null || fail "filling victim"
kill -9 "$(poold_pid 3)"
wait "$(poold_pid 3)" 2> /dev/null
eval POOLD_PID_3=
sleep 1
t0=$(date +%s)
dd if=/dev/rswap0 of=/dev/null bs=1M iflag=direct 2> /tmp/.dd && fail "reading a dead poold's chunks succeeded"
note "read with poold 3 dead failed after $(($(date +%s) - t0)) s: $(grep -o 'I/O error\|Input/output error' /tmp/.dd | head -n 1)"
rsysfs poolds
# A dead poold's requests fail as "down" (fail_io_tmo passed).
[ "$(awk '$1 == "io" || $1 == "down" { n += $2 } END { print n + 0 }' \
	/sys/block/rswap0/rswap/errors)" -gt 0 ] || fail "no I/O error counted"
rsysfs poolds | grep "^$(poold_addr 3) " | grep -q "errors=0" && fail "no error counted for poold 3"
rswap_rmmod || fail "rmmod with a dead poold"
mod_loaded && fail "module still loaded"

# ---- a poold refuses the connection ------------------------------------------
# A poold allowing one queue pair per session refuses our second one
# (RSWAP_REJ_TOO_MANY_QPS -> EUSERS) when the VM has more than one CPU;
# the chunks the map gave us must go back to the coordinator.
if [ "$(grep -c ^processor /proc/cpuinfo)" -gt 1 ]; then
	start_poold 4 48M --max-qps 1
	wait_registered 4
	expect_insmod_fails "Too many users" coord="$COORD" size=64M name=qp-limit
	dmesg | grep "rswap_client: poold" | tail -n 2
	sleep 0.5
	[ "$(chunks_used)" = 0 ] || fail "chunks held after a refused session: $(chunks_used) bytes"
fi

# ---- a poold in the map is unreachable --------------------------------------------
# SIGSTOP keeps its coordinator registration until heartbeats time out, but
# its RDMA CM stops answering: insmod must time out, not hang.
kill -STOP "$(poold_pid 1)"
if rswap_insmod coord="$COORD" size=64M name=poold-stopped timeout_ms=2000; then
	rswap_rmmod > /dev/null
	note "insmod with a stopped poold succeeded (the coordinator placed around it)"
else
	note "insmod with a stopped poold failed: $(cat $RSWAP_INSMOD_OUT); $(dmesg | grep rswap_client | tail -n 1)"
fi
mod_loaded && fail "module loaded after the stopped-poold case"
kill -CONT "$(poold_pid 1)"
exit 0
