#!/bin/sh
# The measuring half of the Remoteswap benchmark (POSIX sh; busybox ash in
# the VM).  tests/bench/run boots the VM and runs this once for all the
# systems; on a real RDMA host run it directly as root (see
# docs/BENCHMARKS.md).
#
#   BENCH_SYSTEMS="raw rswap-rdma rswap-sync rswap-r2 rswap-dram nvmeof brd" bench-vm.sh
#
# It sets every system up once, then in every repetition runs each
# workload on each system in turn, in an order that rotates from one
# repetition to the next (printed as an "order" record), making that
# system the only swap device with swapon/swapoff: drift in the host's
# load then reaches all systems alike, and the report pairs the systems'
# figures within a repetition.  One line per measurement:
#   @@BENCH {"system":S,"workload":W,"rep":N,"data":{...}}
# It never fails on a time; it exits 1 only when something is broken (a
# result differs from the unlimited run, data read back is wrong, a system
# cannot be set up), after measuring the rest.
#
# Environment (defaults in brackets):
#   BENCH_SYSTEMS   systems to measure [every system and rswap variant]
#   BENCH_REPS      repetitions of every measurement [7]
#   BENCH_SWAP_MIB  size of each swap device [192]
#   BENCH_FL_MIB    region of the fault-latency test [32]
#   BENCH_TP_MIB    region of the throughput test [64]
#   BENCH_SORT_LINES, BENCH_AWK_KEYS  application sizes [40000, 20000]
#   BENCH_APP_LIMITS  memory.max as % of the measured peak [100 50 25]
#   RSWAP_IP        address of the RDMA device [10.99.0.1 in the VM]
#   RSWAP_RDMADEV   RDMA device for perftest [rxe0]
#   RSWAP_KO        rswap-client.ko
#   RSWAP_TESTLIB   tests/vm/lib (cluster.sh) [next to this script]
#   BENCH_COORD     HOST:PORT of a running coordinator: rswap-rdma then
#                   uses its poolds instead of starting a local cluster
#   BENCH_NVMF_TRADDR  address of a remote NVMe-oF target (subsystem
#                   BENCH_NVMF_NQN): connect to it instead of a local one
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
RSWAP_TESTLIB=${RSWAP_TESTLIB:-$HERE/../vm/lib}
. "$RSWAP_TESTLIB/cluster.sh"
. "$RSWAP_TESTLIB/move.sh"	# move_field
. "$RSWAP_TESTLIB/replicas.sh"	# repl_field, wait_healthy

BENCH_SYSTEMS=${BENCH_SYSTEMS:-raw rswap-rdma rswap-sync rswap-sync-poll rswap-128k rswap-r2 rswap-move rswap-dram rswap-dram-sync nvmeof brd zram}
REPS=${BENCH_REPS:-7}
SWAP_MIB=${BENCH_SWAP_MIB:-192}
FL_MIB=${BENCH_FL_MIB:-32}
TP_MIB=${BENCH_TP_MIB:-64}
SORT_LINES=${BENCH_SORT_LINES:-40000}
AWK_KEYS=${BENCH_AWK_KEYS:-20000}
APP_LIMITS=${BENCH_APP_LIMITS:-100 50 25}
RDMADEV=${RSWAP_RDMADEV:-rxe0}
NVMF_NQN=${BENCH_NVMF_NQN:-nqn.2026-11.io.remoteswap:bench}
NVMF_PORT=4420
CG=/sys/fs/cgroup
BAD=0
SYS=
SWAPDEV=

say() { echo "@@BENCH {\"system\":\"$SYS\",\"workload\":\"$1\",\"rep\":$2,\"data\":$3}"; }
note() { echo "-- [$SYS] $*"; }
broken() { echo "BROKEN: [$SYS] $*"; BAD=1; }
vmstat_get() { awk -v k="$1" '$1 == k { print $2 }' /proc/vmstat; }
now_ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }

# ---- raw transport: perftest at 4 KiB on the RDMA device ---------------------

# perf TOOL ITERS PORT: server and client of TOOL on $RDMADEV over rdma_cm;
# prints the client's 4096-byte result line.  perftest itself crashes now
# and then under emulation (a fault in librdmacm): up to three attempts.
perf() {
	_a=1
	while [ $_a -le 3 ]; do
		perf_once "$1" "$2" $(($3 + 100 * _a)) && return 0
		echo "-- [$SYS] $1 attempt $_a failed" >&2
		_a=$((_a + 1))
	done
	return 1
}

perf_once() {
	_tool=$1 _n=$2 _port=$3
	$_tool -d "$RDMADEV" -R -s 4096 -n "$_n" -F -p "$_port" > /tmp/bench.srv 2>&1 &
	_srv=$!
	sleep 1
	if ! timeout 120 $_tool -d "$RDMADEV" -R -s 4096 -n "$_n" -F -p "$_port" "$RSWAP_IP" > /tmp/bench.cli 2>&1; then
		cat /tmp/bench.srv /tmp/bench.cli >&2
		kill "$_srv" 2> /dev/null
		wait "$_srv" 2> /dev/null
		return 1
	fi
	wait "$_srv"
	grep -E '^ *4096 ' /tmp/bench.cli | head -n 1 | grep .
}

# Latency columns: bytes iters t_min t_max t_typical t_avg t_stdev p99 p99.9
lat_json() {
	echo "$1" | awk '{ printf "{\"iters\":%d,\"min_us\":%s,\"max_us\":%s,\"typical_us\":%s,\"avg_us\":%s,\"stdev_us\":%s,\"p99_us\":%s,\"p999_us\":%s}", $2, $3, $4, $5, $6, $7, $8, $9 }'
}

# Bandwidth columns: bytes iters bw_peak[MB/s] bw_avg[MB/s] msg_rate[Mpps]
bw_json() {
	echo "$1" | awk '{ printf "{\"iters\":%d,\"bw_peak_MBps\":%s,\"bw_avg_MBps\":%s,\"msg_rate_Mpps\":%s}", $2, $3, $4, $5 }'
}

# raw_rep REP: the four perftest figures of one repetition.
raw_rep() {
	[ -n "${RSWAP_IP:-}" ] || { broken "RSWAP_IP is not set"; return; }
	for t in ib_read_lat ib_write_lat; do
		line=$(perf $t 2000 $((18515 + $1))) || { broken "$t failed"; continue; }
		say "$t" "$1" "$(lat_json "$line")"
	done
	for t in ib_write_bw ib_read_bw; do
		line=$(perf $t 5000 $((18525 + $1))) || { broken "$t failed"; continue; }
		say "$t" "$1" "$(bw_json "$line")"
	done
}

# ---- swap systems: set up, tear down -------------------------------------------

modprobe_brd() {
	# Two ramdisks: ram0 backs the NVMe-oF target, ram1 is the brd baseline.
	[ -e /dev/ram1 ] && return 0
	modprobe brd rd_nr=2 rd_size=$((SWAP_MIB * 1024)) || return 1
	[ -e /dev/ram1 ]
}

# The rswap variants, one line each: name, port of its own coordinator
# ("-": none), number of poolds, module parameters beyond coord= and size=
# (comma-separated, "-": none).  Every variant gets its own coordinator and poolds, set up
# once; the module (one device per load) is reloaded only when the next
# measurement is on another variant.  A new variant is one more line.
RSWAP_VARIANTS='
rswap-rdma 9460 1 -
rswap-move 9461 2 -
rswap-r2 9462 2 replicas=2
rswap-dram - 0 backend=dram
rswap-sync 9463 1 synchronous=1
rswap-sync-poll 9465 1 synchronous=1,poll_us=200
rswap-dram-sync - 0 backend=dram,synchronous=1
rswap-128k 9464 1 max_io_kb=128
'

# rswap_variant NAME: its line of RSWAP_VARIANTS, or nothing.
rswap_variant() { echo "$RSWAP_VARIANTS" | awk -v s="$1" '$1 == s'; }

# Per-system settings (device, block counters, ...) in variables named
# after the system: sys_set SYS KEY VALUE, sys_get SYS KEY.
sys_var() { echo "SYSV_$(echo "$1_$2" | tr -c 'A-Za-z0-9\n' _)"; }
sys_set() { eval "$(sys_var "$1" "$2")=\$3"; }
sys_get() { eval "echo \"\${$(sys_var "$1" "$2"):-}\""; }

# setup_rswap SYS: the variant's coordinator and poolds (each big enough
# for the whole device); the module is loaded by load_rswap.
NEXT_POOLD=0
setup_rswap() {
	set -- $(rswap_variant "$1")
	[ $# -eq 4 ] || { echo "no line for it in RSWAP_VARIANTS"; return 1; }
	# cluster.sh's helpers use _i, _n, _p...: these names are this one's.
	sr_sys=$1 sr_port=$2 sr_n=$3 sr_args=$4
	sr_coord=- sr_poolds=
	if [ "$sr_sys" = rswap-rdma ] && [ -n "${BENCH_COORD:-}" ]; then
		sr_coord=$BENCH_COORD
	elif [ "$sr_port" != - ]; then
		start_coord "$sr_port" 16M || return 1
		sr_i=0
		while [ $sr_i -lt "$sr_n" ]; do
			NEXT_POOLD=$((NEXT_POOLD + 1))
			start_poold $NEXT_POOLD $((SWAP_MIB + 32))M || return 1
			wait_registered $NEXT_POOLD || return 1
			sr_poolds="$sr_poolds $(poold_addr $NEXT_POOLD)"
			sr_i=$((sr_i + 1))
		done
		sr_coord=$RSWAP_IP:$sr_port
	fi
	[ "$sr_coord" = - ] || modprobe rdma_cm || return 1
	sys_set "$sr_sys" coord "$sr_coord"
	sys_set "$sr_sys" port "$sr_port"
	sys_set "$sr_sys" poolds "${sr_poolds# }"
	sys_set "$sr_sys" args "$([ "$sr_args" = - ] || echo "$sr_args" | tr , ' ')"
	sys_set "$sr_sys" dev /dev/rswap0
}

# load_rswap SYS: rswap-client.ko loaded as SYS's variant, /dev/rswap0
# made a swap area; nothing to do if it already is.  Swap must be off.
RSWAP_LOADED=
load_rswap() {
	[ "$RSWAP_LOADED" = "$1" ] && return 0
	if grep -q '^rswap_client ' /proc/modules; then
		rmmod rswap_client || { echo "rmmod rswap_client failed"; return 1; }
	fi
	RSWAP_LOADED=
	_coord=$(sys_get "$1" coord)
	if [ "$_coord" = - ]; then
		# shellcheck disable=SC2046 # the variant's parameters, one word each
		insmod "$RSWAP_KO" size="${SWAP_MIB}M" $(sys_get "$1" args) > /tmp/bench.insmod 2>&1
	else
		# shellcheck disable=SC2046
		${RSWAP_INSMOD:-insmod} "$RSWAP_KO" coord="$_coord" size="${SWAP_MIB}M" name=bench \
			$(sys_get "$1" args) > /tmp/bench.insmod 2>&1
	fi || { cat /tmp/bench.insmod; dmesg | grep rswap | tail -n 5; return 1; }
	# admin (cluster.sh) talks to the loaded variant's coordinator.
	[ "$(sys_get "$1" port)" = - ] || COORD_PORT=$(sys_get "$1" port)
	mkswap /dev/rswap0 > /dev/null || { echo "mkswap /dev/rswap0 failed"; return 1; }
	RSWAP_LOADED=$1
}

NVMF_CFG=/sys/kernel/config/nvmet
setup_nvmeof() {
	modprobe nvme_rdma || return 1
	_addr=${BENCH_NVMF_TRADDR:-}
	if [ -z "$_addr" ]; then
		modprobe_brd || return 1
		modprobe nvmet_rdma || return 1
		_s=$NVMF_CFG/subsystems/$NVMF_NQN
		mkdir "$_s" && echo 1 > "$_s/attr_allow_any_host" &&
			mkdir "$_s/namespaces/1" &&
			echo /dev/ram0 > "$_s/namespaces/1/device_path" &&
			echo 1 > "$_s/namespaces/1/enable" || return 1
		_p=$NVMF_CFG/ports/1
		mkdir "$_p" && echo rdma > "$_p/addr_trtype" && echo ipv4 > "$_p/addr_adrfam" &&
			echo "$RSWAP_IP" > "$_p/addr_traddr" && echo $NVMF_PORT > "$_p/addr_trsvcid" &&
			ln -s "$_s" "$_p/subsystems/$NVMF_NQN" || return 1
		_addr=$RSWAP_IP
	fi
	# What nvme-cli's "connect" does: one option string to the fabrics device.
	echo "transport=rdma,traddr=$_addr,trsvcid=$NVMF_PORT,nqn=$NVMF_NQN" > /dev/nvme-fabrics ||
		return 1
	_i=0
	while [ $_i -lt 100 ]; do
		for b in /sys/block/nvme*n*; do
			[ -r "$b/device/subsysnqn" ] || continue
			if [ "$(cat "$b/device/subsysnqn")" = "$NVMF_NQN" ]; then
				SWAPDEV=/dev/$(basename "$b")
				[ -b "$SWAPDEV" ] && { nvmf_statdev; return 0; }
			fi
		done
		sleep 0.1
		_i=$((_i + 1))
	done
	echo "no block device of $NVMF_NQN appeared"
	return 1
}

# With native multipath the head (nvmeXnY) keeps no I/O counters on 6.1;
# the path device (nvmeXcZnY) does.
nvmf_statdev() {
	for b in /sys/block/nvme*c*n*; do
		[ "$(cat "$b/device/subsysnqn" 2> /dev/null)" = "$NVMF_NQN" ] || continue
		STATDEV=$(basename "$b")
		return
	done
}

teardown_nvmeof() {
	for c in /sys/class/nvme/nvme*; do
		[ "$(cat "$c/subsysnqn" 2> /dev/null)" = "$NVMF_NQN" ] && echo 1 > "$c/delete_controller"
	done
	[ -n "${BENCH_NVMF_TRADDR:-}" ] && return 0
	rm -f "$NVMF_CFG/ports/1/subsystems/$NVMF_NQN"
	rmdir "$NVMF_CFG/ports/1" 2> /dev/null
	echo 0 > "$NVMF_CFG/subsystems/$NVMF_NQN/namespaces/1/enable" 2> /dev/null
	rmdir "$NVMF_CFG/subsystems/$NVMF_NQN/namespaces/1" "$NVMF_CFG/subsystems/$NVMF_NQN" 2> /dev/null
	true
}

setup_brd() {
	modprobe_brd || return 1
	SWAPDEV=/dev/ram1
}

setup_zram() {
	modprobe zram num_devices=1 || return 1
	echo "${SWAP_MIB}M" > /sys/block/zram0/disksize || return 1
	SWAPDEV=/dev/zram0
}

teardown_zram() { echo 1 > /sys/block/zram0/reset; }

# ---- workloads -------------------------------------------------------------------

# in_cgroup NAME CMD...: CMD in cgroup NAME (created by the caller).
in_cgroup() {
	_cg=$1
	shift
	sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$CG/$_cg" "$@"
}

# diskstat_delta BEFORE AFTER: the swap device's block-layer counters
# (/sys/block/X/stat) over a measurement: request counts, sizes, times.
diskstat_delta() {
	echo "$1 $2" | awk '{ n = NF / 2; for (i = 1; i <= n; i++) d[i] = $(i + n) - $i
		printf "{\"read_ios\":%d,\"read_merges\":%d,\"read_sectors\":%d,\"read_ms\":%d,\"write_ios\":%d,\"write_merges\":%d,\"write_sectors\":%d,\"write_ms\":%d}", d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8] }'
}

# cpu_snap: the guest's CPU time (all CPUs, in USER_HZ ticks) busy and in
# all (busy = user nice system irq softirq steal; the rest is idle and
# iowait), then pswpin and pswpout.  Busy time counts every CPU cycle the
# swap costs in this guest: the faulting task, the block layer, the RDMA
# stack (Soft-RoCE runs in the guest's softirqs and work queues) and the
# server side (poold, nvmet), which lives in the same guest here.
cpu_snap() {
	awk '$1 == "cpu" { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6 }' /proc/stat
	vmstat_get pswpin
	vmstat_get pswpout
}

# cpu_json BEFORE AFTER: cpu_snap's deltas as JSON.
cpu_json() {
	echo $1 $2 | awk -v hz="$USER_HZ" '{ printf "{\"busy_ticks\":%d,\"total_ticks\":%d,\"user_hz\":%d,\"pswpin\":%d,\"pswpout\":%d}", $5 - $1, $6 - $2, hz, $7 - $3, $8 - $4 }'
}
USER_HZ=$(getconf CLK_TCK 2> /dev/null || echo 100)

# faultlat_run MODE MIB PAGE_CLUSTER REP [WORKLOAD]: WORKLOAD names the
# record [faultlat-MODE].
faultlat_run() {
	mkdir -p "$CG/bench-fl"
	echo "$3" > /proc/sys/vm/page-cluster
	_st=/sys/block/${STATDEV:-$(basename "$SWAPDEV")}/stat
	_s0=$(cut -c1-200 "$_st" | awk '{ print $1, $2, $3, $4, $5, $6, $7, $8 }')
	_c0=$(cpu_snap)
	_out=$(in_cgroup bench-fl faultlat "$1" "$2" "$4" 2> /tmp/bench.fl.err)
	_rc=$?
	_c1=$(cpu_snap)
	_s1=$(cut -c1-200 "$_st" | awk '{ print $1, $2, $3, $4, $5, $6, $7, $8 }')
	rmdir "$CG/bench-fl"
	echo "$PAGE_CLUSTER0" > /proc/sys/vm/page-cluster
	[ $_rc -eq 0 ] || { cat /tmp/bench.fl.err; broken "faultlat $1 $2 MiB failed (exit $_rc)"; }
	case "$_out" in
	"{"*"}") say "${5:-faultlat-$1}" "$4" "{\"page_cluster\":$3,\"diskstat\":$(diskstat_delta "$_s0" "$_s1"),\"cpu\":$(cpu_json "$_c0" "$_c1"),\"result\":$_out}" ;;
	*) broken "faultlat $1 printed no result" ;;
	esac
}

gen_inputs() {
	[ -s /tmp/bench-sort.in ] && return
	awk -v n="$SORT_LINES" 'BEGIN { x = 12345; for (i = 0; i < n; i++) { x = (x * 69069 + 1) % 4294967296; print x } }' > /tmp/bench-sort.in
}

# The applications: each prints a result that is checked against the
# unlimited run.  sort: busybox sort -n of SORT_LINES numbers (sequential
# scans of a growing array).  awk: a hash table of AWK_KEYS keys filled,
# looked up in the same pseudo-random order and walked (random access).
APP_SORT="sort -n /tmp/bench-sort.in"
APP_AWK="awk -v n=$AWK_KEYS 'BEGIN { x = 12345; for (i = 0; i < n; i++) { x = (x * 69069 + 1) % 4294967296; a[x] = i }
	x = 12345; s = 0; for (i = 0; i < n; i++) { x = (x * 69069 + 1) % 4294967296; s += a[x] }
	c = 0; for (k in a) c++; print s, c }'"

# app_once APP LIMIT_BYTES|max: run APP in a fresh cgroup; sets RUN_MS,
# RUN_SUM (md5 of the output), RUN_PEAK, RUN_OUT, RUN_IN,
# RUN_EVENTS (oom kills), RUN_CPU (cpu_json).
app_once() {
	rmdir "$CG/bench-app" 2> /dev/null
	mkdir "$CG/bench-app" || {
		RUN_SUM=none RUN_MS=0 RUN_PEAK=0 RUN_OUT=0 RUN_IN=0 RUN_EVENTS=0 RUN_CPU=null
		return
	}
	echo "$2" > "$CG/bench-app/memory.max"
	case "$1" in
	sort) _cmd=$APP_SORT ;;
	awk) _cmd=$APP_AWK ;;
	esac
	_c0=$(cpu_snap) _t0=$(now_ms)
	RUN_SUM=$(in_cgroup bench-app sh -c "$_cmd" | md5sum | cut -d' ' -f1)
	RUN_MS=$(($(now_ms) - _t0))
	_c1=$(cpu_snap)
	RUN_CPU=$(cpu_json "$_c0" "$_c1")
	RUN_IN=$(echo $_c0 $_c1 | awk '{ print $7 - $3 }') RUN_OUT=$(echo $_c0 $_c1 | awk '{ print $8 - $4 }')
	RUN_PEAK=$(cat "$CG/bench-app/memory.peak" 2> /dev/null || echo 0)
	RUN_EVENTS=$(awk '$1 == "oom_kill" { print $2 }' "$CG/bench-app/memory.events")
	rmdir "$CG/bench-app"
}

# app_reference APP: APP without a limit, once for all systems (it does
# not swap): its peak, which sets the limits, and its output's md5, which
# every limited run must match.  Sets APP_PEAK_<app>, APP_REF_<app>.
app_reference() {
	app_once "$1" max
	[ "$RUN_PEAK" -gt 0 ] || { broken "$1: no memory.peak"; return 1; }
	eval "APP_PEAK_$1=\$RUN_PEAK APP_REF_$1=\$RUN_SUM"
	say "app-$1-unlimited" 0 "{\"ms\":$RUN_MS,\"peak_bytes\":$RUN_PEAK,\"md5\":\"$RUN_SUM\",\"pswpout\":$RUN_OUT,\"pswpin\":$RUN_IN}"
}

# app_rep APP REP: APP at each of APP_LIMITS on the active swap device.
app_rep() {
	eval "_peak=\${APP_PEAK_$1:-} _ref=\${APP_REF_$1:-}"
	[ -n "$_peak" ] || return 0	# app_reference said why
	for pct in $APP_LIMITS; do
		_lim=$((_peak * pct / 100))
		app_once "$1" "$_lim"
		_ok=true
		if [ "$RUN_SUM" != "$_ref" ]; then
			_ok=false
			broken "$1 at $pct% of its peak: result $RUN_SUM differs from the unlimited run's $_ref (oom_kill $RUN_EVENTS)"
		fi
		say "app-$1" "$2" "{\"limit_pct\":$pct,\"limit_bytes\":$_lim,\"peak_bytes\":$_peak,\"ms\":$RUN_MS,\"pswpout\":$RUN_OUT,\"pswpin\":$RUN_IN,\"oom_kill\":${RUN_EVENTS:-0},\"cpu\":$RUN_CPU,\"result_ok\":$_ok}"
	done
}

# ---- live chunk migration (rswap-move) -----------------------------------------

# move_loop_start: keep chunks moving until move_loop_stop: drain A --wait,
# undrain A, drain B --wait, undrain B, ...  Each drain moves every chunk
# on that poold to the other one.
MOVE_A= MOVE_B= MOVE_PID=
move_loop_start() {
	rm -f /tmp/bench.move.stop
	echo 0 > /tmp/bench.move.drains
	(
		_d=0
		while :; do
			for _p in "$MOVE_A" "$MOVE_B"; do
				[ -e /tmp/bench.move.stop ] && exit 0
				admin drain "$_p" --wait > /tmp/bench.move.out 2>&1 ||
					{ echo "drain $_p --wait failed: $(cat /tmp/bench.move.out)"; admin undrain "$_p" > /dev/null 2>&1; exit 1; }
				admin undrain "$_p" > /tmp/bench.move.out 2>&1 ||
					{ echo "undrain $_p failed: $(cat /tmp/bench.move.out)"; exit 1; }
				_d=$((_d + 1))
				echo $_d > /tmp/bench.move.drains
			done
		done
	) &
	MOVE_PID=$!
}

# move_loop_stop: the loop ends after the drain under way; fails if a drain
# or undrain failed.
move_loop_stop() {
	[ -n "$MOVE_PID" ] || return 0
	touch /tmp/bench.move.stop
	wait "$MOVE_PID"
	_rc=$?
	MOVE_PID=
	return $_rc
}

# wait_move_busy SEC: a move is under way (the loop has started copying).
wait_move_busy() {
	_i=0
	while [ -z "$(move_field moving)" ]; do
		_i=$((_i + 1))
		[ $_i -gt $(($1 * 10)) ] && return 1
		sleep 0.1
	done
}

# kmark TEXT: a marker in the kernel log, on the clock of its move lines.
kmark() { echo "rswap-bench: $*" > /dev/kmsg; }

# moves_json TAG: the moves the kernel logged ("slot N moved to poold ADDR
# in MS ms (copy C ms, epoch E)") after the marker "TAG loop", and the share of the
# time between the markers "TAG run start" and "TAG run end" that some
# move was under way (a move ends at its line, began MS ms before), and
# which moves overlapped that run (the loop's last drain ends after it).
moves_json() {
	dmesg | awk -v tag="rswap-bench: $1" '
		{ t = $0; sub(/^\[ */, "", t); sub(/\].*/, "", t); t = t * 1000 }
		index($0, tag " loop") { on = 1; n = 0; next }
		!on { next }
		index($0, tag " run start") { w0 = t; next }
		index($0, tag " run end") { w1 = t; next }
		/ slot [0-9]+ moved to poold .* in [0-9]+ ms / {
			m = $0; sub(/.* in /, "", m); sub(/ ms.*/, "", m)
			c = $0; if (sub(/.*\(copy /, "", c)) sub(/ ms.*/, "", c); else c = 0
			n++; d[n] = m + 0; cp[n] = c + 0; e[n] = t }
		END {
			busy = 0; ms = 0
			for (i = 1; i <= n; i++) {
				ms += d[i]; s0 = e[i] - d[i]; s1 = e[i]
				if (s0 < w0) s0 = w0
				if (s1 > w1) s1 = w1
				in_run[i] = s1 > s0
				if (s1 > s0) busy += s1 - s0
			}
			printf "\"logged_moves\":%d,\"move_ms_sum\":%d,\"per_move_ms\":[", n, ms
			for (i = 1; i <= n; i++) printf "%s%d", (i > 1 ? "," : ""), d[i]
			printf "],\"per_copy_ms\":["
			for (i = 1; i <= n; i++) printf "%s%d", (i > 1 ? "," : ""), cp[i]
			printf "],\"per_move_in_run\":["
			for (i = 1; i <= n; i++) printf "%s%d", (i > 1 ? "," : ""), in_run[i]
			printf "],\"run_ms\":%d,\"busy_share\":%.3f", w1 - w0, (w1 > w0 ? busy / (w1 - w0) : 0) }'
}

# live_run MODE MIB PAGE_CLUSTER REP: faultlat MODE while the loop moves
# chunks; records move-live-MODE (faultlat's result) and move-copy (the
# moves of this run: count, bytes, copy rate, share of the workload's time
# a move was under way).
live_run() {
	_tag="$1 rep $4"
	_d0=$(move_field "done") _f0=$(move_field failed) _b0=$(move_field bytes)
	kmark "$_tag loop"
	move_loop_start
	wait_move_busy 30 || { move_loop_stop; broken "no move started: $(cat /sys/block/rswap0/rswap/moves)"; return; }
	_wd0=$(move_field "done")
	kmark "$_tag run start"
	faultlat_run "$1" "$2" "$3" "$4" "move-live-$1"
	kmark "$_tag run end"
	_wd1=$(move_field "done")
	move_loop_stop || broken "the move loop failed (during faultlat $1): $(cat /sys/block/rswap0/rswap/moves)"
	_d1=$(move_field "done") _f1=$(move_field failed) _b1=$(move_field bytes)
	[ "$_f1" = "$_f0" ] || broken "$((_f1 - _f0)) move(s) failed during faultlat $1: $(cat /sys/block/rswap0/rswap/moves); $(dmesg | grep 'rswap_client: .*abort' | tail -n 3)"
	_n=$((_d1 - _d0)) _bytes=$((_b1 - _b0))
	[ "$_n" -gt 0 ] || { broken "no move finished during faultlat $1"; return; }
	_j=$(moves_json "$_tag")
	_ms=$(echo "$_j" | sed -n 's/.*"move_ms_sum":\([0-9]*\).*/\1/p')
	# Copy rate: the bytes moved over the summed time of the moves.
	_rate=$(awk -v b="$_bytes" -v ms="${_ms:-0}" 'BEGIN { printf "%.1f", (ms > 0 ? b / 1048576 / (ms / 1000) : -1) }')
	say move-copy "$4" "{\"during\":\"$1\",\"moves\":$_n,\"bytes\":$_bytes,\"chunk_bytes\":$((_bytes / _n)),\"copy_MiBps\":$_rate,$_j,\"moves_done_during_run\":$((_wd1 - _wd0)),\"drains\":$(cat /tmp/bench.move.drains),\"failed\":$((_f1 - _f0))}"
}

# move_rep REP: the same workload with no move and while chunks move,
# paired within the repetition: baseline, then during-move, for throughput
# and for latency.
# ---- a copy that fails (rswap-r2) ----------------------------------------------

# failover_hist: the client's failover_latency file as "LE_US:COUNT ...".
failover_hist() {
	tr ' ' ':' < /sys/block/rswap0/rswap/failover_latency | tr '\n' ' '
}

# failover_rep REP: the fault-latency run during which the first poold of
# rswap-r2 is killed (-9) once pages fault in: reads in flight on it are
# re-issued on the other copy.  Records the faults' latencies and the
# failover reads' own (the client's histogram, first dispatch to end).
# Then the poold starts again (a new incarnation, its copies lost), the
# coordinator re-replicates onto it, and the time from the kill until
# every slot has two copies in sync again is recorded.
failover_rep() {
	# cluster.sh's helpers use _p, _n, _i...: these names are this one's.
	fo_addr=$(sys_get rswap-r2 poolds | awk '{ print $1 }')
	fo_n=
	for fo_k in $(seq 1 "$NEXT_POOLD"); do
		[ "$(poold_addr "$fo_k")" = "$fo_addr" ] && fo_n=$fo_k
	done
	[ -n "$fo_n" ] || { broken "no poold listens at $fo_addr"; return; }
	fo_regs=$(grep -c "registered with coordinator" "$(poold_log "$fo_n")")
	fo_h0=$(failover_hist)
	fo_r0=$(repl_field failover_reads)
	rm -f /tmp/bench.killed
	# Killed once the run faults pages in (reads in flight), not while
	# it is still swapping them out.
	(
		fo_in0=$(vmstat_get pswpin)
		while [ $(($(vmstat_get pswpin) - fo_in0)) -lt 1024 ]; do sleep 0.05; done
		now_ms > /tmp/bench.killed
		kill -9 "$(poold_pid "$fo_n")"
	) &
	fo_kpid=$!
	faultlat_run lat "$FL_MIB" 0 "$1" failover-lat
	wait $fo_kpid
	[ -s /tmp/bench.killed ] || { broken "poold $fo_n was not killed during the run"; return; }
	fo_reads=$(($(repl_field failover_reads) - fo_r0))
	fo_h1=$(failover_hist)
	start_poold "$fo_n" $((SWAP_MIB + 32))M > /tmp/bench.setup 2>&1 &&
		wait_registered "$fo_n" $((fo_regs + 1)) > /tmp/bench.setup 2>&1 ||
		{ cat /tmp/bench.setup; broken "poold $fo_n did not start again"; return; }
	# Healthy as the coordinator sees it too: until the client reconnects
	# to the restarted poold it does not know its copies there are gone.
	wait_healthy bench 300 ||
		{ broken "not healthy 300 s after poold $fo_n died: $(cat /sys/block/rswap0/rswap/replicas)"; return; }
	fo_t=$(($(now_ms) - $(cat /tmp/bench.killed)))
	say failover "$1" "{\"poold\":\"$fo_addr\",\"reads\":$fo_reads,\"hist_before\":\"$fo_h0\",\"hist_after\":\"$fo_h1\",\"kill_to_healthy_ms\":$fo_t}"
	note "failover rep $1: $fo_reads reads served by the other copy; every slot healthy again $fo_t ms after the kill; $(cat /sys/block/rswap0/rswap/replicas)"
}

move_rep() {
	set -- "$1" $(sys_get rswap-move poolds)
	[ $# -eq 3 ] || { broken "rswap-move needs two poolds, has: $(sys_get rswap-move poolds)"; return; }
	MOVE_A=$2 MOVE_B=$3
	faultlat_run tput "$TP_MIB" "$PAGE_CLUSTER0" "$1" move-base-tput
	live_run tput "$TP_MIB" "$PAGE_CLUSTER0" "$1"
	note "throughput rep $1 done: $(cat /sys/block/rswap0/rswap/moves)"
	faultlat_run lat "$FL_MIB" 0 "$1" move-base-lat
	live_run lat "$FL_MIB" 0 "$1"
	note "fault latency rep $1 done: $(cat /sys/block/rswap0/rswap/moves)"
	[ "$(move_field failed)" = 0 ] || broken "moves failed: $(cat /sys/block/rswap0/rswap/moves)"
}

# ---- the systems, set up once and measured in turn --------------------------------

# The workloads, in the order a repetition runs them; each system runs
# those that apply to it (sys_runs).
WORKLOADS="raw lat tput sort awk move failover"

sys_runs() {
	case "$1:$2" in
	raw:raw|rswap-move:move|rswap-r2:failover) return 0 ;;
	raw:*|rswap-move:*|*:raw|*:move|*:failover) return 1 ;;
	*) return 0 ;;
	esac
}

# setup_system SYS: whatever SYS needs for the whole run; a swap device
# other than rswap's gets its swap area here (rswap's in load_rswap).
SETUP_DONE=
setup_system() {
	SWAPDEV= STATDEV=
	case "$1" in
	raw) [ -n "${RSWAP_IP:-}" ] || { echo "RSWAP_IP is not set"; return 1; } ;;
	rswap-*) setup_rswap "$1" || return 1 ;;
	nvmeof|brd|zram) "setup_$1" || return 1 ;;
	*) echo "unknown system (raw nvmeof brd zram and the rswap variants:$(echo "$RSWAP_VARIANTS" | awk 'NF { printf " %s", $1 }'))"; return 1 ;;
	esac
	SETUP_DONE="$SETUP_DONE $1"
	case "$1" in raw|rswap-*) return 0 ;; esac
	sys_set "$1" dev "$SWAPDEV"
	sys_set "$1" statdev "$STATDEV"
	mkswap "$SWAPDEV" > /dev/null || { echo "mkswap $SWAPDEV failed"; return 1; }
}

# activate SYS: SYS's device the only active swap; SWAPDEV and STATDEV
# name it.  The first activation records the device's limits.
activate() {
	case "$1" in
	rswap-*) load_rswap "$1" > /tmp/bench.setup 2>&1 || { cat /tmp/bench.setup; return 1; } ;;
	esac
	SWAPDEV=$(sys_get "$1" dev) STATDEV=$(sys_get "$1" statdev)
	swapon "$SWAPDEV" || { echo "swapon $SWAPDEV failed"; return 1; }
	[ "$(awk 'NR > 1' /proc/swaps | wc -l)" = 1 ] || { echo "more than one swap device active: $(awk 'NR > 1 { print $1 }' /proc/swaps | tr '\n' ' ')"; return 1; }
	[ -n "$(sys_get "$1" described)" ] && return 0
	sys_set "$1" described 1
	_q=/sys/block/$(basename "$SWAPDEV")/queue
	_extra=
	case "$1" in
	rswap-*) _extra=",\"module_args\":\"$(sys_get "$1" args)\",\"poolds\":\"$(sys_get "$1" poolds)\"" ;;
	esac
	say device 0 "{\"dev\":\"$SWAPDEV\",\"stat_dev\":\"${STATDEV:-$(basename "$SWAPDEV")}\",\"size_mib\":$SWAP_MIB,\"rotational\":$(cat "$_q/rotational"),\"nr_requests\":$(cat "$_q/nr_requests"),\"max_sectors_kb\":$(cat "$_q/max_sectors_kb"),\"max_segments\":$(cat "$_q/max_segments")$_extra}"
	note "swap on $SWAPDEV"
}

deactivate() { swapoff "$SWAPDEV" || broken "swapoff $SWAPDEV"; }

run_workload() {
	case "$1" in
	raw) raw_rep "$2" ;;
	lat) faultlat_run lat "$FL_MIB" 0 "$2" ;;
	tput) faultlat_run tput "$TP_MIB" "$PAGE_CLUSTER0" "$2" ;;
	sort|awk) app_rep "$1" "$2" ;;
	move) move_rep "$2" ;;
	failover) failover_rep "$2" ;;
	esac
}

# rotate N LIST: LIST started at its Nth word (1-based, wrapping), so
# that over as many repetitions as systems each runs in every position.
rotate() {
	_k=$1
	shift
	_k=$(((_k - 1) % $# ))
	_i=0 _head= _tail=
	for _w; do
		if [ $_i -lt $_k ]; then _tail="$_tail $_w"; else _head="$_head $_w"; fi
		_i=$((_i + 1))
	done
	echo $_head $_tail
}

teardown_all() {
	move_loop_stop
	swapoff -a 2> /dev/null
	grep -q '^rswap_client ' /proc/modules && rmmod rswap_client
	case "$SETUP_DONE " in *" nvmeof "*) teardown_nvmeof ;; esac
	case "$SETUP_DONE " in *" zram "*) teardown_zram ;; esac
	true
}

# cluster.sh's fail exits; here a cluster that does not start is one
# system that cannot be set up, not the end of the others' measurements.
fail() {
	echo "$*"
	dump_logs
	return 1
}

cluster_init
CLUSTER_ON_EXIT='echo $PAGE_CLUSTER0 > /proc/sys/vm/page-cluster; teardown_all'
PAGE_CLUSTER0=$(cat /proc/sys/vm/page-cluster)
swapoff -a 2> /dev/null
command -v faultlat > /dev/null || { echo "faultlat is not on PATH (build tests/bench)"; exit 1; }

SYS=env
say host 0 "{\"kernel\":\"$(uname -r)\",\"cpus\":$(grep -c ^processor /proc/cpuinfo),\"mem_kib\":$(awk '$1 == "MemTotal:" { print $2 }' /proc/meminfo),\"cpu_model\":\"$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)\",\"rdma_dev\":\"$RDMADEV\",\"clocksource\":\"$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2> /dev/null)\",\"page_cluster\":$PAGE_CLUSTER0,\"reps\":$REPS,\"fl_mib\":$FL_MIB,\"tp_mib\":$TP_MIB,\"sort_lines\":$SORT_LINES,\"awk_keys\":$AWK_KEYS,\"systems\":\"$BENCH_SYSTEMS\"}"

SYSTEMS=
for SYS in $BENCH_SYSTEMS; do
	if setup_system "$SYS" > /tmp/bench.setup 2>&1; then
		SYSTEMS="$SYSTEMS $SYS"
	else
		cat /tmp/bench.setup
		broken "cannot set up $SYS"
	fi
done

SYS=env
if [ -n "$SYSTEMS" ]; then
	gen_inputs
	app_reference sort
	app_reference awk
fi

REP=1
while [ $REP -le "$REPS" ] && [ -n "$SYSTEMS" ]; do
	rep_t0=$(now_ms)
	order=$(rotate $REP $SYSTEMS)
	SYS=env
	say order $REP "{\"order\":\"$order\"}"
	note "repetition $REP of $REPS, order: $order"
	for W in $WORKLOADS; do
		for SYS in $order; do
			sys_runs "$SYS" "$W" || continue
			case " $SYSTEMS " in *" $SYS "*) ;; *) continue ;; esac
			if [ "$W" = raw ]; then
				run_workload "$W" $REP
				continue
			fi
			if ! activate "$SYS"; then
				broken "cannot make $SYS the only swap device; it is left out from here on"
				swapoff -a 2> /dev/null
				SYSTEMS=$(echo " $SYSTEMS " | sed "s/ $SYS / /")
				continue
			fi
			run_workload "$W" $REP
			deactivate
		done
	done
	SYS=env
	note "repetition $REP done in $((($(now_ms) - rep_t0) / 1000)) s"
	REP=$((REP + 1))
done
exit $BAD
