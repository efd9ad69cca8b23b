#!/bin/sh
# Exits 0, but the module it loads raises a kernel WARNING: the harness
# must report this script as failed.
insmod "$RSWAP_KODIR/rswap-selftest-warn.ko" || exit 1
rmmod rswap_selftest_warn
exit 0
