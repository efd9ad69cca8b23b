#!/bin/sh
# ctest "rswapctl_prometheus": rswapctl status --prometheus against a fake
# sysfs (RSWAPCTL_ROOT), under every shell rswapctl must run in: exact
# values, escaping, unknown poolds keys ignored, the same page from every
# shell, promtool check metrics on it; the frontswap front-end's page; and
# the not-loaded page.  The page stays in WORKDIR/rswapctl.prom for the
# grafana_dashboard test.
#
#   test-rswapctl-prometheus.sh PATH/TO/rswapctl WORKDIR
#
# Exit 0 pass, 1 fail, 77 skip (only promtool is missing).
CTL=${1:?rswapctl}
WORK=${2:?work dir}
failed=0
R=$WORK/root
E=$WORK/empty-root
F=$WORK/frontswap-root

fail() { echo "FAIL: $*"; failed=1; }

rm -rf "$R" "$E" "$F"
mkdir -p "$R/sys/block/rswap0/rswap" "$R/sys/module/rswap_client" "$R/proc" "$E/proc" || exit 1
S=$R/sys/block/rswap0/rswap
echo 131072 > "$R/sys/block/rswap0/size"		# 64M in sectors
printf '%s\n' 'ho"st\x' > "$S/client_id"
echo rdma > "$S/backend"
echo 16777216 > "$S/chunk_size"
echo 2 > "$S/nr_queues"
printf '0 10.0.0.1:9401 11\n1 10.0.0.2:9401 12\n2 10.0.0.1:9401 13\n3 10.0.0.2:9401 14\n' > "$S/chunk_map"
echo 10 > "$S/reads"
echo 20 > "$S/writes"
echo 0 > "$S/discards"
echo 12345678901234567 > "$S/bytes_read"
echo 81920 > "$S/bytes_written"
echo 3 > "$S/inflight"
printf 'io 1\nnomem 0\nbusy 5\nBad-Kind 9\nrange 0\npost 0\n' > "$S/errors"
printf '%s\n' \
	'10.0.0.1:9401 chunks=2 qps=2/2 reads=6 writes=11 bytes_read=24576 bytes_written=45056 errors=1 state=LIVE' \
	'[fd00::2]:9401 chunks=2 qps=1/2 reads=4 writes=9 bytes_read=16384 bytes_written=36864 errors=0' > "$S/poolds"
printf 'Filename\tType\tSize\tUsed\tPriority\n/dev/rswap0 partition\t65532\t1024\t-2\n' > "$R/proc/swaps"
printf 'Filename\tType\tSize\tUsed\tPriority\n' > "$E/proc/swaps"

# frontend=frontswap: no /dev/rswap0, counters under /sys/module/.
FS=$F/sys/module/rswap_client/frontswap
mkdir -p "$FS" "$F/proc" || exit 1
cp "$E/proc/swaps" "$F/proc/swaps"
for kv in stores=100 loads=40 load_misses=2 load_fails=1 load_lost=0 invalidates=7 \
	invalidate_areas=1 stored_pages=93 swap_type=0 writethrough=1; do
	echo "${kv#*=}" > "$FS/${kv%%=*}"
done
echo rdma > "$FS/backend"
printf 'type 0\nrange 3\nhuge 0\ndown 0\nbusy 1\nnomem 0\nio 0\n' > "$FS/store_fails"
printf 'io 1\nnomem 0\nbusy 0\nrange 0\npost 0\n' > "$FS/errors"
echo '10.0.0.1:9401 chunks=1 qps=1/1 reads=40 writes=100 bytes_read=163840 bytes_written=409600 errors=1' > "$FS/poolds"

# has FILE LINE: FILE has exactly this line.
has() { grep -qxF -e "$2" "$1" || fail "$1: no line '$2'"; }

shells=""
for s in dash bash "busybox ash"; do
	# shellcheck disable=SC2086
	if command -v ${s%% *} > /dev/null 2>&1; then shells="$shells|$s"; fi
done

first=
IFS='|'
for sh in ${shells#|}; do
	unset IFS
	out=$WORK/rswap-$(printf '%s' "$sh" | tr ' ' _).prom
	RSWAPCTL_ROOT=$R $sh "$CTL" status --prometheus > "$out" 2> "$out.err" ||
		fail "($sh) status --prometheus: exit $?: $(cat "$out.err")"
	[ -s "$out.err" ] && fail "($sh) status --prometheus wrote to stderr: $(cat "$out.err")"
	has "$out" 'rswap_client_loaded 1'
	has "$out" 'rswap_client_info{client_id="ho\"st\\x",backend="rdma"} 1'
	has "$out" 'rswap_client_size_bytes 67108864'
	has "$out" 'rswap_client_chunks 4'
	has "$out" 'rswap_client_read_bytes_total 12345678901234567'
	has "$out" 'rswap_client_inflight_requests 3'
	has "$out" 'rswap_client_errors_total{kind="busy"} 5'
	has "$out" 'rswap_client_poold_queue_pairs_live{addr="[fd00::2]:9401"} 1'
	has "$out" 'rswap_client_poold_queue_pairs{addr="[fd00::2]:9401"} 2'
	has "$out" 'rswap_client_poold_errors_total{addr="10.0.0.1:9401"} 1'
	has "$out" 'rswap_client_swap_active 1'
	has "$out" 'rswap_client_swap_used_bytes 1048576'
	grep -q -e 'Bad-Kind' -e '_state' "$out" && fail "($sh) an unknown errors kind or poolds key was exported"
	[ "$(grep -c '^# TYPE rswap_client_errors_total ' "$out")" = 1 ] ||
		fail "($sh) rswap_client_errors_total has not exactly one TYPE line"
	if [ -z "$first" ]; then
		first=$out
	elif ! cmp -s "$first" "$out"; then
		fail "($sh) page differs from the first shell's: $(diff "$first" "$out" | head -5)"
	fi

	# frontswap: its own counters, the shared errors and poolds tables.
	fsout=$WORK/frontswap.prom
	RSWAPCTL_ROOT=$F $sh "$CTL" status --prometheus > "$fsout" 2>&1 ||
		fail "($sh) frontswap: exit $?"
	has "$fsout" 'rswap_client_loaded 1'
	has "$fsout" 'rswap_client_frontswap_stores_total 100'
	has "$fsout" 'rswap_client_frontswap_stored_pages 93'
	has "$fsout" 'rswap_client_frontswap_store_fails_total{reason="range"} 3'
	has "$fsout" 'rswap_client_errors_total{kind="io"} 1'
	has "$fsout" 'rswap_client_poold_writes_total{addr="10.0.0.1:9401"} 100'
	has "$fsout" 'rswap_client_swap_active 0'
	grep -q 'rswap_client_info' "$fsout" && fail "($sh) frontswap: block device metrics without a block device"

	# Not loaded: a complete page that says so, exit 0 (timer jobs).
	RSWAPCTL_ROOT=$E $sh "$CTL" status --prometheus > "$WORK/empty.prom" 2>&1 ||
		fail "($sh) not loaded: exit $?"
	has "$WORK/empty.prom" 'rswap_client_loaded 0'
	[ "$(grep -vc '^#' "$WORK/empty.prom")" = 1 ] || fail "($sh) not loaded: more than one sample"

	# Usage
	o=$($sh "$CTL" status --prometheus --coord 10.0.0.1 2>&1)
	rc=$?
	if [ $rc != 2 ] || ! printf '%s' "$o" | grep -q "scrape rswap-coord --metrics"; then
		fail "($sh) status --prometheus --coord: exit $rc: $o"
	fi
	o=$(RSWAPCTL_ROOT=$R $sh "$CTL" uninstall 2>&1)
	rc=$?
	if [ $rc != 2 ] || ! printf '%s' "$o" | grep -q "test hook for status only"; then
		fail "($sh) RSWAPCTL_ROOT with uninstall: exit $rc: $o"
	fi
	IFS='|'
done
unset IFS
[ $failed = 0 ] || exit 1

command -v promtool > /dev/null 2>&1 || {
	echo "SKIP: promtool not found: run scripts/install-deps (Debian package prometheus)"
	exit 77
}
cp "$first" "$WORK/rswapctl.prom" || exit 1
for f in "$first" "$WORK/frontswap.prom" "$WORK/empty.prom"; do
	o=$(promtool check metrics < "$f" 2>&1) || { echo "FAIL: promtool check metrics < $f: $o"; exit 1; }
done
echo "rswapctl_prometheus: passed under: ${shells#|}" | tr '|' ','
