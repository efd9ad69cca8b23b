#!/bin/sh
# The demo, inside the VM: a coordinator and three poolds on Soft-RoCE,
# rswap-client.ko swapping to them through /dev/rswap0, and a real
# memory-hungry program (busybox sort of a few million numbers) run first
# without a limit, then in a cgroup limited to half of its peak memory.
set -u
. "$RSWAP_TESTLIB/cluster.sh"

COORD=9400
CHUNK=16M
POOLD_CAP=64M
POOL=160M
LINES=${DEMO_LINES:-300000}

step() { echo; echo "==> $*"; }
vmstat_get() { awk -v k="$1" '$1 == k { print $2 }' /proc/vmstat; }
now_ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }

# progress LABEL PID: one line every 3 s while PID runs.
progress() {
	while alive "$2"; do
		sleep 3
		alive "$2" || break
		echo "    ... $1: $(( ($(now_ms) - T0) / 1000 ))s, swap used $(awk 'NR == 2 { print $4 }' /proc/swaps) KiB, pages out $(( $(vmstat_get pswpout) - OUT0 )), in $(( $(vmstat_get pswpin) - IN0 ))"
	done
}

# run_sort CGROUP OUT: sort the input in CGROUP, record time in ms.
run_sort() {
	T0=$(now_ms) OUT0=$(vmstat_get pswpout) IN0=$(vmstat_get pswpin)
	sh -c 'echo $$ > "$0/cgroup.procs" && exec sort -n /tmp/demo.in' "/sys/fs/cgroup/$1" > "$2" &
	_pid=$!
	progress "sort" $_pid
	wait $_pid || fail "sort failed in cgroup $1"
	RUN_MS=$(( $(now_ms) - T0 ))
	RUN_OUT=$(( $(vmstat_get pswpout) - OUT0 )) RUN_IN=$(( $(vmstat_get pswpin) - IN0 ))
}

cleanup_demo() {
	swapoff /dev/rswap0 2>/dev/null
	grep -q '^rswap_client ' /proc/modules && rmmod rswap_client
	rmdir /sys/fs/cgroup/demo-free /sys/fs/cgroup/demo-half 2>/dev/null
}
cluster_init
CLUSTER_ON_EXIT=cleanup_demo

step "Soft-RoCE: $(rdma link show | head -n 1)"
step "a cluster key (rswap-admin keygen): the coordinator, every poold, rswap-admin and the module prove it"
step "starting rswap-coord on $RSWAP_IP:$COORD (chunks of $CHUNK) and three poolds of $POOLD_CAP each"
start_coord $COORD $CHUNK
for n in 1 2 3; do
	start_poold $n $POOLD_CAP
	wait_registered $n
	echo "    poold $n on $(poold_addr $n) registered"
done

step "loading rswap-client.ko coord=$RSWAP_IP:$COORD size=$POOL (bigger than any one poold)"
# The module takes the cluster key from a session keyring of insmod's own.
${RSWAP_INSMOD:-insmod} "$RSWAP_KO" coord="$RSWAP_IP:$COORD" size=$POOL name=demo-host ||
	fail "insmod failed: $(dmesg | grep rswap | tail -n 3)"
dmesg | grep rswap_client | tail -n 3 | sed 's/^/    kernel: /'
mkswap /dev/rswap0 > /dev/null || fail "mkswap /dev/rswap0 failed"
swapon /dev/rswap0 || fail "swapon /dev/rswap0 failed"
echo "    /dev/rswap0 is the only swap: $(awk 'NR == 2 { print $1, $3 " KiB" }' /proc/swaps)"

step "the pool, as the operator sees it (rswap-admin list)"
admin list

step "generating the input: $LINES pseudo-random numbers"
awk -v n="$LINES" 'BEGIN { x = 12345; for (i = 0; i < n; i++) { x = (x * 1103515245 + 12345) % 2147483648; print x } }' > /tmp/demo.in
echo "    $(wc -c < /tmp/demo.in) bytes in /tmp/demo.in"

step "run 1: sort -n without a memory limit"
mkdir -p /sys/fs/cgroup/demo-free
run_sort demo-free /tmp/demo.out1
PEAK=$(cat /sys/fs/cgroup/demo-free/memory.peak 2>/dev/null || echo 0)
[ "$PEAK" -gt 0 ] || fail "no memory.peak for the unlimited run"
FREE_MS=$RUN_MS
echo "    done in ${FREE_MS} ms, peak memory $((PEAK / 1048576)) MiB, pages swapped out $RUN_OUT"

LIMIT=$((PEAK / 2))
step "run 2: sort -n in a cgroup with memory.max = $((LIMIT / 1048576)) MiB (50% of its peak)"
mkdir -p /sys/fs/cgroup/demo-half
echo "$LIMIT" > /sys/fs/cgroup/demo-half/memory.max
run_sort demo-half /tmp/demo.out2
HALF_MS=$RUN_MS HALF_OUT=$RUN_OUT HALF_IN=$RUN_IN
echo "    done in ${HALF_MS} ms"

step "checking the result"
sum1=$(md5sum < /tmp/demo.out1 | cut -d' ' -f1)
sum2=$(md5sum < /tmp/demo.out2 | cut -d' ' -f1)
sorted_ok=yes
sort -n -c /tmp/demo.out2 2>/dev/null || sorted_ok=no
lines2=$(wc -l < /tmp/demo.out2)

step "where the pages went"
admin list
echo
echo "    per-poold counters of /dev/rswap0:"
for f in /sys/block/rswap0/rswap/*; do
	case "$(basename "$f")" in
	*poold*|*map*) sed 's/^/      /' "$f" ;;
	esac
done

echo
echo "================ Remoteswap demo report ================"
echo "pool:              $POOL in chunks of $CHUNK on 3 poolds (see rswap-admin list above)"
echo "program:           busybox sort -n of $LINES numbers, peak memory $((PEAK / 1048576)) MiB"
echo "time, no limit:    ${FREE_MS} ms"
echo "time, 50% limit:   ${HALF_MS} ms ($(awk -v a="$HALF_MS" -v b="$FREE_MS" 'BEGIN { printf "%.1fx", a / (b ? b : 1) }') of unlimited)"
echo "pages swapped:     out $HALF_OUT, in $HALF_IN (4 KiB each, /proc/vmstat pswpout/pswpin)"
if [ "$sum1" = "$sum2" ] && [ "$sorted_ok" = yes ] && [ "$lines2" -eq "$LINES" ]; then
	echo "result:            correct ($lines2 lines, sorted, identical to the unlimited run: md5 $sum2)"
else
	echo "result:            WRONG (md5 $sum2 vs $sum1, sorted=$sorted_ok, lines=$lines2)"
	exit 1
fi
[ "$HALF_OUT" -gt 0 ] || { echo "note: nothing was swapped out; the limit did not bite"; exit 1; }
echo "========================================================="
