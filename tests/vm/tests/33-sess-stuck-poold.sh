#!/bin/sh
# Sessions that fail and come back, 3: a stuck poold, then the RDMA
# device going away.
#
# Stuck: with fail_io_tmo=5, poold 1 is stopped (SIGSTOP) for longer than
# that and its session fails (debugfs inject_fault; a stopped poold still
# serves one-sided RDMA, so stopping it alone breaks nothing until the
# client must reconnect).  A read of one of its slots waits, then fails
# with an I/O error after about fail_io_tmo (no hang, no hung-task
# report) and returns no data; poold 2's slots read fine meanwhile.  After
# SIGCONT the session comes back as the same incarnation and every slot
# reads back the pattern: nothing was lost.
#
# Device removal: `rdma link del`, then `rmmod rdma_rxe`, under a loaded
# module return (an ib_client tears the sessions down), I/O fails after
# fail_io_tmo, rmmod works.  The device is added back for the scripts
# after this one.
#
# Then: unreclaimable slab back where it was before the first load.
set -u
. "$RSWAP_TESTLIB/swap.sh"
. "$RSWAP_TESTLIB/cluster.sh"
. "$RSWAP_TESTLIB/session.sh"

[ "${RSWAP_RXE:-}" = up ] || fail "Soft-RoCE is not up in this VM"
cluster_init
cleanup() {
	for n in 1 2; do
		p=$(poold_pid $n)
		[ -n "$p" ] && kill -CONT "$p" 2> /dev/null
	done
	mod_loaded && rmmod rswap_client
	stop_all
	rdma link del rxe_spare 2> /dev/null
	ip link del rxenet_spare 2> /dev/null
	modprobe rdma_rxe
	rdma link show | grep -q "^link $RSWAP_RDMADEV/" ||
		rdma link add "$RSWAP_RDMADEV" type rxe netdev "$RSWAP_NETDEV"
}
trap cleanup EXIT
modprobe rdma_cm || fail "modprobe rdma_cm"

sync
echo 3 > /proc/sys/vm/drop_caches
slab0=$(meminfo_kb SUnreclaim)

start_coord 9400 16M
for n in 1 2; do start_poold "$n" 48M; done
for n in 1 2; do wait_registered "$n"; done
P1=$(poold_addr 1)
P2=$(poold_addr 2)

rswap_insmod coord="$RSWAP_IP:9400" size=64M name=stuck timeout_ms=2000 \
	fail_io_tmo=5 || fail "insmod: $(cat $RSWAP_INSMOD_OUT)"
s1=$(slots_on "$P1" | head -n 1)
s2=$(slots_on "$P2" | head -n 1)
[ -n "$s1" ] && [ -n "$s2" ] || fail "expected slots on both poolds: $(rsysfs chunk_map)"
head -c $((64 * 1048576)) /dev/urandom > /tmp/pattern
dd if=/tmp/pattern of=/dev/rswap0 bs=1M oflag=direct 2> /dev/null || fail "writing the pattern"

# ---- stuck poold ----------------------------------------------------------------
kill -STOP "$(poold_pid 1)"
inject_fault "$P1"
t0=$(date +%s)
slot_expect_error "$s1"
t1=$(date +%s)
note "read of slot $s1 on the stopped poold failed after $((t1 - t0)) s: $(cat /tmp/.slot.err | head -n 1)"
[ $((t1 - t0)) -ge 3 ] || fail "the read failed after $((t1 - t0)) s, before fail_io_tmo (5 s): it did not wait"
[ $((t1 - t0)) -le 30 ] || fail "the read took $((t1 - t0)) s to fail with fail_io_tmo=5"
[ "$(sess_field "$P1" state)" = dead ] || fail "session to poold 1 is '$(sess_field "$P1" state)', expected dead"
slot_expect "$s2" /tmp/pattern
[ "$(err_count down)" -gt 0 ] || fail "no 'down' errors counted: $(rsysfs errors | tr '\n' ' ')"
sleep 3
kill -CONT "$(poold_pid 1)"
wait_sess "$P1" state live 60 || fail "session to poold 1 did not come back: $(sess_line "$P1")"
for s in $(slots_on "$P1") $(slots_on "$P2"); do slot_expect "$s" /tmp/pattern; done
[ "$(sess_field "$P1" lost_chunks)" = 0 ] || fail "chunks lost on a poold that only stopped"
note "after SIGCONT: $(sess_line "$P1")"
rswap_rmmod || fail "rmmod after the stuck poold"

# ---- RDMA device removal --------------------------------------------------------
# A second device, as a memory server with two ports has: librdmacm (in
# poold) only notices a removal while some device is left; with none
# left, the kernel's removal waits for poold to stop (poold/README.md).
ip link add rxenet_spare type dummy && ip addr add 10.99.8.1/24 dev rxenet_spare &&
	ip link set rxenet_spare up && rdma link add rxe_spare type rxe netdev rxenet_spare ||
	fail "cannot add a second Soft-RoCE device"
rswap_insmod coord="$RSWAP_IP:9400" size=64M name=stuck timeout_ms=2000 \
	fail_io_tmo=5 || fail "insmod #2: $(cat $RSWAP_INSMOD_OUT)"
dd if=/tmp/pattern of=/dev/rswap0 bs=1M count=16 oflag=direct 2> /dev/null || fail "write before removal"
t0=$(date +%s)
timeout 60 rdma link del "$RSWAP_RDMADEV" || fail "rdma link del $RSWAP_RDMADEV failed or hung"
note "rdma link del took $(($(date +%s) - t0)) s"
rsysfs poolds
for p in "$P1" "$P2"; do
	case $(sess_field "$p" state) in
	reconnecting|dead) ;;
	*) fail "session to $p is '$(sess_field "$p" state)' after its device went away" ;;
	esac
done
slot_expect_error "$s1"
rswap_rmmod || fail "rmmod with the device gone"
rdma link add "$RSWAP_RDMADEV" type rxe netdev "$RSWAP_NETDEV" || fail "cannot add $RSWAP_RDMADEV back"
stop_all
timeout 60 rdma link del rxe_spare || fail "rdma link del rxe_spare failed or hung"
ip link del rxenet_spare

# The driver unloaded under a loaded module: rmmod rdma_rxe.  The poolds'
# open verbs files pin rdma_rxe, so they die first (-9); the module is
# then reconnecting to them, with connect attempts on the device.
start_coord 9401 16M
for n in 1 2; do start_poold "$n" 48M; done
for n in 1 2; do wait_registered "$n" 2; done
rswap_insmod coord="$RSWAP_IP:9401" size=64M name=stuck timeout_ms=2000 \
	fail_io_tmo=5 || fail "insmod #3: $(cat $RSWAP_INSMOD_OUT)"
dd if=/tmp/pattern of=/dev/rswap0 bs=1M count=16 oflag=direct 2> /dev/null || fail "write before rmmod rdma_rxe"
for n in 1 2; do
	kill -9 "$(poold_pid $n)"
	wait "$(poold_pid $n)" 2> /dev/null
	eval POOLD_PID_$n=
done
t0=$(date +%s)
i=0
until timeout 60 rmmod rdma_rxe 2> /tmp/.rmmod; do
	# EAGAIN while the dead poolds' verbs files are still being released.
	grep -q "temporarily unavailable" /tmp/.rmmod || fail "rmmod rdma_rxe: $(cat /tmp/.rmmod)"
	i=$((i + 1))
	[ $i -gt 100 ] && fail "rdma_rxe still in use: $(cat /tmp/.rmmod)"
	sleep 0.2
done
note "rmmod rdma_rxe took $(($(date +%s) - t0)) s: $(rsysfs poolds | sed 's/ chunks=.* state=/ /' | tr '\n' ' ')"
slot_expect_error "$(slots_on "$P1" | head -n 1)"
rswap_rmmod || fail "rmmod with rdma_rxe gone"
modprobe rdma_rxe || fail "modprobe rdma_rxe"
rdma link add "$RSWAP_RDMADEV" type rxe netdev "$RSWAP_NETDEV" || fail "cannot add $RSWAP_RDMADEV back"
stop_all

sync
echo 3 > /proc/sys/vm/drop_caches
slab1=$(meminfo_kb SUnreclaim)
note "SUnreclaim $slab0 kB -> $slab1 kB"
[ $((slab1 - slab0)) -lt 2048 ] || fail "unreclaimable slab grew by $((slab1 - slab0)) kB"
assert_clean_logs
echo "33-sess-stuck-poold: I/O failed after fail_io_tmo and recovered after SIGCONT; device removal did not hang"
