#!/bin/sh
# rswap-client.ko with backend=dram: load/unload without leaks, parameter
# validation, block device geometry, zero-fill/round-trip/discard, and
# swap under cgroup memory pressure with data verification.
. "$RSWAP_TESTLIB/swap.sh"

[ -r "$RSWAP_KO" ] || fail "no module at $RSWAP_KO"
command -v memhog > /dev/null || fail "memhog helper is not installed"

# ---- parameters -----------------------------------------------------------
expect_insmod_fails "Invalid argument" backend=dram
expect_insmod_fails "Invalid argument" backend=dram size=0
expect_insmod_fails "Invalid argument" backend=dram size=lots
expect_insmod_fails "Invalid argument" backend=dram size=64Mx
expect_insmod_fails "Invalid argument" backend=dram size=1000
expect_insmod_fails "Invalid argument" backend=floppy size=64M
expect_insmod_fails "Invalid argument" backend=dram size=64M queue_depth=1
expect_insmod_fails "Invalid argument" backend=dram size=64M max_io_kb=100
expect_insmod_fails "Invalid argument" backend=dram size=64M max_io_kb=4096
expect_insmod_fails "Invalid argument" backend=dram size=64M poll_us=20000
expect_insmod_fails "Invalid argument" backend=dram size=64M name=0123456789abcdef0123456789abcdef
expect_insmod_fails "Invalid argument" size=64M

# ---- load/unload 20x ------------------------------------------------------
sync
echo 3 > /proc/sys/vm/drop_caches
slab0=$(meminfo_kb SUnreclaim)
cpus=$(grep -c ^processor /proc/cpuinfo)
i=0
while [ $i -lt 20 ]; do
	rswap_insmod backend=dram size=64M || fail "insmod #$i: $(cat $RSWAP_INSMOD_OUT)"
	[ -b /dev/rswap0 ] || fail "no /dev/rswap0 after insmod"
	refs=$(awk '$1 == "rswap_client" { print $3 }' /proc/modules)
	[ "$refs" = 0 ] || fail "module refcount $refs with the device closed"
	dd if=/dev/rswap0 of=/dev/null bs=64k count=4 2> /dev/null || fail "read #$i"
	rswap_rmmod > /dev/null || fail "rmmod #$i"
	i=$((i + 1))
done
mod_loaded && fail "module still loaded"
sync
echo 3 > /proc/sys/vm/drop_caches
slab1=$(meminfo_kb SUnreclaim)
note "SUnreclaim ${slab0} kB -> ${slab1} kB after 20 load/unload cycles"
[ $((slab1 - slab0)) -lt 1024 ] || fail "unreclaimable slab grew by $((slab1 - slab0)) kB"

# ---- geometry --------------------------------------------------------------
rswap_insmod backend=dram size=64M || fail "insmod: $(cat $RSWAP_INSMOD_OUT)"
q=/sys/block/rswap0/queue
[ "$(cat /sys/block/rswap0/size)" = 131072 ] || fail "size $(cat /sys/block/rswap0/size) sectors, expected 131072"
[ "$(cat $q/logical_block_size)" = 4096 ] || fail "logical block $(cat $q/logical_block_size)"
[ "$(cat $q/physical_block_size)" = 4096 ] || fail "physical block $(cat $q/physical_block_size)"
[ "$(cat $q/chunk_sectors)" = 32768 ] || fail "chunk_sectors $(cat $q/chunk_sectors)"
[ "$(cat $q/discard_max_bytes)" -gt 0 ] || fail "discard not supported"
[ "$(cat $q/max_segments)" = 256 ] || fail "max_segments $(cat $q/max_segments), expected 256"
[ "$(cat $q/max_hw_sectors_kb)" = 1024 ] || fail "max_hw_sectors_kb $(cat $q/max_hw_sectors_kb), expected 1024"
nq=$(ls /sys/block/rswap0/mq | wc -l)
[ "$nq" = "$cpus" ] || fail "$nq hardware queues for $cpus CPUs"
[ "$(rsysfs backend)" = dram ] || fail "backend $(rsysfs backend)"
for f in reads writes bytes_read bytes_written inflight errors chunk_map poolds; do
	[ -r /sys/block/rswap0/rswap/$f ] || fail "no sysfs file rswap/$f"
done

rswap_rmmod > /dev/null || fail "rmmod after the geometry"
rswap_insmod backend=dram size=64M max_io_kb=128 || fail "insmod max_io_kb=128: $(cat $RSWAP_INSMOD_OUT)"
[ "$(cat $q/max_segments)" = 32 ] || fail "max_io_kb=128: max_segments $(cat $q/max_segments), expected 32"
[ "$(cat $q/max_hw_sectors_kb)" = 128 ] || fail "max_io_kb=128: max_hw_sectors_kb $(cat $q/max_hw_sectors_kb)"
rswap_rmmod > /dev/null || fail "rmmod max_io_kb=128"
rswap_insmod backend=dram size=64M || fail "insmod: $(cat $RSWAP_INSMOD_OUT)"

# ---- data ------------------------------------------------------------------
nz=$(dd if=/dev/rswap0 bs=4096 count=64 skip=1000 2> /dev/null | tr -d '\000' | wc -c)
[ "$nz" = 0 ] || fail "never-written blocks read $nz non-zero bytes"
dd if=/dev/urandom of=/tmp/pat bs=4096 count=300 2> /dev/null
dd if=/tmp/pat of=/dev/rswap0 bs=4096 seek=4090 conv=fsync 2> /dev/null || fail "write"
echo 3 > /proc/sys/vm/drop_caches
dd if=/dev/rswap0 of=/tmp/back bs=4096 skip=4090 count=300 2> /dev/null || fail "read back"
cmp /tmp/pat /tmp/back || fail "data read back differs (across the 16 MiB chunk boundary)"
[ "$(rsysfs writes)" -gt 0 ] || fail "writes counter did not move"
note "$(rsysfs poolds)"
blkdiscard /dev/rswap0 || fail "blkdiscard"
echo 3 > /proc/sys/vm/drop_caches
nz=$(dd if=/dev/rswap0 bs=4096 skip=4090 count=300 2> /dev/null | tr -d '\000' | wc -c)
[ "$nz" = 0 ] || fail "discarded blocks read $nz non-zero bytes"
rsysfs poolds | grep -q "pages=0" || fail "pages not freed by discard: $(rsysfs poolds)"
rm -f /tmp/pat /tmp/back

# ---- swap ------------------------------------------------------------------
swap_round_trip /dev/rswap0 48
rsysfs errors | grep -v " 0$" | grep -v "^busy" && fail "errors counted"
read_error_check 48
note "rswap0: $(rsysfs writes) writes, $(rsysfs reads) reads; $(rsysfs errors | tr '\n' ' ')"
rswap_rmmod > /tmp/.rmmod 2>&1 && fail "rmmod succeeded while swapon'd"
mod_loaded || fail "module gone while swapon'd"
note "rmmod while swapon'd refused: $(cat /tmp/.rmmod)"
swapoff /dev/rswap0 || fail "swapoff"
pages=$(rsysfs poolds | sed 's/.*pages=//')
note "after swapoff: $pages pages held (slot-free notify frees the rest)"
[ "$pages" -lt 16 ] || fail "$pages pages still held after swapoff"
rswap_rmmod || fail "rmmod after swapoff"
mod_loaded && fail "module still loaded"
exit 0
