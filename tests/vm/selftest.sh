#!/bin/bash
# Self-test of the VM harness: in one boot, a passing, a skipping, a failing,
# a hanging script and one that exits 0 but makes the kernel WARN.  The run
# must exit non-zero and report each exactly as expected.
# usage: tests/vm/selftest.sh [BUILD_DIR] [KERNEL]
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
build=${1:-$HERE/../../build}
kernel=${2:-default}	# any --kernel of tests/vm/run (tests/vm/kernels for others than 6.1)
out=$(mktemp)
trap 'rm -f "$out"' EXIT

"$HERE/run" --kernel "$kernel" --build "$build" --timeout 15 \
	"$HERE/selftest/pass.sh" "$HERE/selftest/skip.sh" "$HERE/selftest/fail.sh" \
	"$HERE/selftest/warn.sh" "$HERE/selftest/hang.sh" > "$out" 2>&1
rc=$?

bad=0
expect() {
	if ! grep -qE "$1" "$out"; then
		echo "harness self-test: expected a line matching '$1'"
		bad=1
	fi
}
expect '^PASS  pass\.sh'
expect '^SKIP  skip\.sh .*not applicable here'
expect '^FAIL  fail\.sh .*exit status 3'
expect '^FAIL  warn\.sh .*kernel log: .*WARNING'
expect '^FAIL  hang\.sh .*timed out after 15s'
expect '^vm: 1 passed, 3 failed, 1 skipped'
[ $rc -ne 0 ] || { echo "harness self-test: run exited 0 although scripts failed"; bad=1; }
if [ $bad -ne 0 ]; then
	sed 's/^/  | /' "$out"
	echo "harness self-test: FAILED"
	exit 1
fi
echo "harness self-test: pass, skip, fail, WARNING and timeout all reported correctly"
