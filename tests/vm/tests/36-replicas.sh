#!/bin/sh
# Replicas: no page lost when a memory server dies.  replicas=2 on poolds
# that die, blip and come back, under verifying workloads.
#  - Zones: with poolds in two zones, replicas=3 is refused at insmod
#    (ENOSPC, nothing left allocated); replicas=2 puts one copy of every
#    slot in each zone.
#  - Blip: the poold of slot 3's first copy stops answering for a few
#    seconds (its session fails and cannot reconnect) while 2 MiB of slot
#    3 are written; its copies go stale, and once it is back only the
#    pages written meanwhile are copied to it (sysfs replicas:
#    resync_pages at least those 512, far from every page).
#  - One poold killed (-9), the one with slot 3's other copy, under fio
#    --verify on slots 0-2: no I/O error, slot 3 reads back right from
#    the copy the blip left stale, the coordinator re-replicates onto the
#    others and every slot is healthy again (client and coordinator);
#    the time is printed.
#  - A second poold killed, under swap with memhog checking every page:
#    the same, onto a poold added meanwhile.
#  - Both copies of a slot killed at once: that slot reads as I/O errors,
#    never data; the slots with a surviving copy read back right.
#  - A poold of a two-poold cluster killed and started again, empty (a
#    new incarnation), under fio --verify: the new copies of its lost
#    ones can only go back to it, and do.
#  - rmmod after all of it.
set -u
. "$RSWAP_TESTLIB/swap.sh"
. "$RSWAP_TESTLIB/cluster.sh"
. "$RSWAP_TESTLIB/session.sh"
. "$RSWAP_TESTLIB/move.sh"
. "$RSWAP_TESTLIB/replicas.sh"

[ "${RSWAP_RXE:-}" = up ] || fail "Soft-RoCE is not up in this VM"
command -v fio > /dev/null || skip "fio not in the VM (--extra-bin /usr/bin/fio)"
cluster_init
cleanup() {
	work_stop 2> /dev/null
	swapoff /dev/rswap0 2> /dev/null
	for n in 1 2 3 4 5; do
		pid=$(poold_pid $n)
		[ -n "$pid" ] && kill -CONT "$pid" 2> /dev/null
	done
	mod_loaded && rmmod rswap_client
	stop_all
}
trap cleanup EXIT
modprobe rdma_cm || fail "modprobe rdma_cm"

# wait_replaced ADDR SEC: no copy left on that (dead) poold, all healthy.
wait_replaced() {
	_i=0
	while [ -n "$(copies_on "$1")" ]; do
		_i=$((_i + 1))
		[ $_i -gt $(($2 * 5)) ] && return 1
		sleep 0.2
	done
	wait_healthy repl "$2"
}

# ---- zones -----------------------------------------------------------------
COORD_HEARTBEAT_MS=1000
start_coord 9400 16M
start_poold 1 80M --zone rack-a
start_poold 2 80M --zone rack-a
start_poold 3 80M --zone rack-b
for n in 1 2 3; do wait_registered "$n"; done
P1=$(poold_addr 1)
P2=$(poold_addr 2)
P3=$(poold_addr 3)
expect_insmod_fails "No space left on device" coord="$RSWAP_IP:9400" size=64M \
	name=zoned replicas=3 timeout_ms=2000
dmesg | grep rswap_client | tail -n 3 | grep -q "replicas=3" ||
	fail "the refusal does not say how many copies were asked for: $(dmesg | tail -n 3)"
[ "$(json_used_total)" = 0 ] || fail "a refused replicas=3 left $(json_used_total) bytes allocated"
rswap_insmod coord="$RSWAP_IP:9400" size=64M name=zoned replicas=2 timeout_ms=2000 ||
	fail "insmod replicas=2 with two zones: $(cat $RSWAP_INSMOD_OUT)"
[ "$(copies_on "$P3" | wc -l)" = 4 ] ||
	fail "not every slot has a copy in zone rack-b: $(rsysfs chunk_map | tr '\n' ' ')"
rsysfs chunk_map
rswap_rmmod || fail "rmmod of the zoned client"
for n in 1 2 3; do stop_poold "$n"; done
kill_coord
note "zones: replicas=3 refused with two zones, replicas=2 placed across them"

# ---- blip: a copy goes stale, then only its dirty pages come back --------
# Poolds beat every second: dead after 10 s silent, so a 4 s stop is a
# blip to the coordinator too, and no copy is replaced.
POOLD_BASE_PORT=9600
start_coord 9401 16M
for n in 1 2 3; do start_poold "$n" 80M; done
for n in 1 2 3; do wait_registered "$n" 1; done
rswap_insmod coord="$RSWAP_IP:9401" size=64M name=repl replicas=2 \
	timeout_ms=2000 fail_io_tmo=15 || fail "insmod replicas=2: $(cat $RSWAP_INSMOD_OUT)"
rsysfs chunk_map
[ "$(repl_field replicas)" = 2 ] || fail "replicas file: $(rsysfs replicas)"
[ "$(repl_field healthy)" = 4 ] || fail "not every slot healthy at load: $(rsysfs replicas)"
# poold_num ADDR: which of the poolds listens there.
poold_num() {
	for _n in 1 2 3 4 5; do
		[ "$(poold_addr $_n)" = "$1" ] && { echo $_n; return; }
	done
}
# Slot 3's first copy blips; later its other copy dies, so that slot 3 is
# read from the copy brought back.
set -- $(rsysfs chunk_map | awk '$1 == 3 { print $2, $5 }')
NB=$(poold_num "$1")
NO=$(poold_num "$2")
[ -n "$NB" ] && [ -n "$NO" ] && [ "$NB" != "$NO" ] ||
	fail "slot 3's copies: $(rsysfs chunk_map | tr '\n' ' ')"
PB=$(poold_addr "$NB")
nblip=$(copies_on "$PB" | wc -l)
dd if=/dev/urandom of=/tmp/pattern bs=1M count=64 2> /dev/null
dd if=/tmp/pattern of=/dev/rswap0 bs=1M oflag=direct 2> /dev/null || fail "writing the pattern"
# 2 MiB of new data into slot 3 (at 52 MiB) while poold NB is away.
dd if=/dev/urandom of=/tmp/blip bs=1M count=2 2> /dev/null
kill -STOP "$(poold_pid "$NB")"
inject_fault "$PB"
sleep 1
dd if=/tmp/blip of=/dev/rswap0 bs=1M seek=52 oflag=direct 2> /dev/null ||
	fail "a write failed while one copy was away"
dd if=/tmp/blip of=/tmp/pattern bs=1M seek=52 conv=notrunc 2> /dev/null
sleep 3
[ "$(repl_field stale_copies)" -gt 0 ] || fail "no copy went stale while poold $NB was away: $(rsysfs replicas)"
note "while poold $NB was away: $(rsysfs replicas); $(rsysfs chunk_map | tr '\n' ' ')"
kill -CONT "$(poold_pid "$NB")"
wait_sess "$PB" state live 60 || fail "the session to poold $NB did not come back: $(sess_line "$PB")"
wait_healthy repl 60 || fail "not healthy after the blip: $(rsysfs replicas); coordinator: $(coord_health repl)"
no_io_errors "blip"
pages=$(repl_field resync_pages)
all=$((nblip * 16 * 256))
[ "$(repl_field resyncs)" -gt 0 ] || fail "no resync after the blip: $(rsysfs replicas)"
[ "$pages" -ge 512 ] || fail "the resync took $pages dirty pages; 512 were written: $(rsysfs replicas)"
[ "$pages" -lt "$all" ] || fail "the resync copied $pages pages, all $all of the stale copies"
note "blip: $(repl_field resyncs) copies resynced with $pages dirty pages of $all; $(rsysfs replicas)"

# ---- one poold killed under fio -------------------------------------------
# fio writes and verifies slots 0-2; slot 3 is read back from the copy the
# blip left stale, its other copy being on the poold that dies.
fio_loop_start kill1 48M
sleep 2
t0=$(date +%s)
crash_poold "$NO"
note "poold $NO killed"
slot_expect 3 /tmp/pattern
wait_replaced "$(poold_addr "$NO")" 180 || fail "not healthy again after poold $NO died: $(rsysfs replicas); coordinator: $(coord_health repl); $(rsysfs chunk_map | tr '\n' ' ')"
t1=$(date +%s)
work_stop || fail "fio failed across the death of poold $NO"
no_io_errors "poold $NO killed"
[ "$(repl_field failover_reads)" -gt 0 ] || note "no read had to fail over (none was in flight on poold $NO)"
note "poold $NO killed: every slot healthy again $((t1 - t0)) s later; fio verified $(cat /tmp/work.passes) passes; $(rsysfs replicas)"
rsysfs chunk_map

# ---- a second poold killed under swap, after re-replication ---------------
start_poold 4 80M
wait_registered 4
mkswap /dev/rswap0 > /dev/null || fail "mkswap"
swapon /dev/rswap0 || fail "swapon"
hog_loop_start 64
sleep 3
t0=$(date +%s)
crash_poold "$NB"
note "poold $NB killed"
wait_replaced "$PB" 180 || fail "not healthy again after poold $NB died: $(rsysfs replicas); coordinator: $(coord_health repl); $(rsysfs chunk_map | tr '\n' ' ')"
t1=$(date +%s)
work_stop || fail "memhog lost data across the death of poold $NB"
swapoff /dev/rswap0 || fail "swapoff"
no_io_errors "poold $NB killed"
note "poold $NB killed under swap: healthy again $((t1 - t0)) s later; $(rsysfs replicas)"

# ---- both copies of a slot killed at once ---------------------------------
start_poold 5 80M
wait_registered 5
admin rebalance --wait > /dev/null || fail "rebalance onto poold 5: $(rsysfs moves)"
wait_healthy repl 60 || fail "not healthy after the rebalance: $(rsysfs replicas)"
dd if=/dev/urandom of=/tmp/pattern bs=1M count=64 2> /dev/null
dd if=/tmp/pattern of=/dev/rswap0 bs=1M oflag=direct 2> /dev/null || fail "writing the pattern"
rsysfs chunk_map
# The two poolds of slot 0's copies die; a slot with a copy elsewhere lives.
set -- $(rsysfs chunk_map | awk '$1 == 0 { print $2, $5 }')
dead_a=$1 dead_b=$2
dead=""
for n in 1 2 3 4 5; do
	case "$(poold_addr $n)" in "$dead_a"|"$dead_b") dead="$dead $n" ;; esac
done
gone=$(rsysfs chunk_map | awk -v a="$dead_a" -v b="$dead_b" '($2 == a || $2 == b) && ($5 == a || $5 == b) { print $1 }')
kept=$(rsysfs chunk_map | awk -v a="$dead_a" -v b="$dead_b" '!(($2 == a || $2 == b) && ($5 == a || $5 == b)) { print $1 }')
[ -n "$kept" ] || fail "every slot has both copies on $dead_a and $dead_b"
for n in $dead; do kill_poold "$n"; done
note "poold$dead killed at once: slots $(echo $gone) lose both copies, $(echo $kept) keep one"
sleep 3
for s in $gone; do slot_expect_error "$s"; done
for s in $kept; do slot_expect "$s" /tmp/pattern; done
[ "$(err_count io)" = 0 ] || fail "$(err_count io) 'io' errors: reads should have failed over"
rsysfs replicas
rsysfs chunk_map

rswap_rmmod || fail "rmmod after the poolds died"

# ---- a poold that comes back empty takes its copies again ------------------
# Two poolds only: the new copies of a restarted poold's lost ones have
# nowhere else to go.
kill_coord
POOLD_BASE_PORT=9700
start_coord 9402 16M
for n in 6 7; do start_poold "$n" 48M; done
for n in 6 7; do wait_registered "$n"; done
rswap_insmod coord="$RSWAP_IP:9402" size=32M name=back replicas=2 \
	timeout_ms=2000 fail_io_tmo=15 || fail "insmod back: $(cat $RSWAP_INSMOD_OUT)"
fio_loop_start back 32M
sleep 2
t0=$(date +%s)
crash_poold 6
start_poold 6 48M
wait_registered 6 2
wait_healthy back 180 || fail "not healthy after poold 6 came back empty: $(rsysfs replicas); coordinator: $(coord_health back); $(rsysfs chunk_map | tr '\n' ' ')"
t1=$(date +%s)
work_stop || fail "fio failed across poold 6's restart"
no_io_errors "poold 6 restarted"
[ "$(copies_on "$(poold_addr 6)" | wc -l)" = 2 ] || fail "poold 6 does not hold a copy of every slot again: $(rsysfs chunk_map | tr '\n' ' ')"
note "poold 6 restarted empty: both slots have two copies again $((t1 - t0)) s after the kill; $(rsysfs replicas)"
rswap_rmmod || fail "rmmod after poold 6 came back"
assert_clean_logs
echo "36-replicas: zones, a blip resynced with $pages dirty pages, two poolds killed under fio and swap with nothing lost, a slot with both copies gone reads as errors, a poold back empty re-filled"

