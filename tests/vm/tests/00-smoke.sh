#!/bin/sh
# Smoke: Soft-RoCE is up, 4 KiB RDMA WRITE and READ work between two
# processes on it, and rswap-client.ko loads and unloads cleanly.
set -u
fail() { echo "FAIL: $*"; exit 1; }

[ "$RSWAP_RXE" = up ] || fail "Soft-RoCE setup failed at boot"
ibv_devices | grep -q "$RSWAP_RDMADEV" || fail "ibv_devices does not list $RSWAP_RDMADEV"
rdma link show | grep -q "$RSWAP_RDMADEV.*ACTIVE" || fail "$RSWAP_RDMADEV is not ACTIVE"

# perftest over rdma_cm between two processes.
. "$RSWAP_TESTLIB/perftest.sh"
for tool in ib_write_bw ib_read_lat; do
	if ! perftest_pair $tool /tmp/$tool -s 4096 -n 200; then
		cat /tmp/$tool.server /tmp/$tool
		fail "$tool 4 KiB between two processes failed"
	fi
	echo "$tool: $(perftest_4k_line /tmp/$tool)"
done

# The module loads and unloads and leaves nothing behind.
[ -r "$RSWAP_KO" ] || fail "module missing at $RSWAP_KO"
insmod "$RSWAP_KO" backend=dram size=16M || fail "insmod rswap-client.ko backend=dram size=16M failed"
[ -d /sys/module/rswap_client ] || fail "module not listed in /sys/module after insmod"
rmmod rswap_client || fail "rmmod rswap_client failed"
[ ! -d /sys/module/rswap_client ] || fail "module still present after rmmod"
echo "smoke: rxe up, RDMA WRITE/READ 4 KiB ok, module load/unload ok"
