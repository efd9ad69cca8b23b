#!/bin/sh
# Smoke: Soft-RoCE is up, 4 KiB RDMA WRITE and READ work between two
# processes on it, and rswap-client.ko loads and unloads cleanly.
set -u
fail() { echo "FAIL: $*"; exit 1; }

[ "$RSWAP_RXE" = up ] || fail "Soft-RoCE setup failed at boot"
ibv_devices | grep -q "$RSWAP_RDMADEV" || fail "ibv_devices does not list $RSWAP_RDMADEV"
rdma link show | grep -q "$RSWAP_RDMADEV.*ACTIVE" || fail "$RSWAP_RDMADEV is not ACTIVE"

# perftest over rdma_cm (-R): server in the background, client against it.
perf_pair() {
	tool=$1
	$tool -d "$RSWAP_RDMADEV" -R -s 4096 -n 200 -F > /tmp/srv.$tool 2>&1 &
	srv=$!
	sleep 1
	if ! timeout 60 $tool -d "$RSWAP_RDMADEV" -R -s 4096 -n 200 -F "$RSWAP_IP" > /tmp/cli.$tool 2>&1; then
		cat /tmp/srv.$tool /tmp/cli.$tool
		kill $srv 2>/dev/null
		fail "$tool 4 KiB between two processes failed"
	fi
	wait $srv || { cat /tmp/srv.$tool; fail "$tool server side failed"; }
	grep -E '^ *4096 ' /tmp/cli.$tool | head -n1 | sed "s/^/$tool: /"
}
perf_pair ib_write_bw
perf_pair ib_read_lat

# The module loads and unloads and leaves nothing behind.
[ -r "$RSWAP_KO" ] || fail "module missing at $RSWAP_KO"
insmod "$RSWAP_KO" backend=dram size=16M || fail "insmod rswap-client.ko backend=dram size=16M failed"
[ -d /sys/module/rswap_client ] || fail "module not listed in /sys/module after insmod"
rmmod rswap_client || fail "rmmod rswap_client failed"
[ ! -d /sys/module/rswap_client ] || fail "module still present after rmmod"
echo "smoke: rxe up, RDMA WRITE/READ 4 KiB ok, module load/unload ok"
