# shellcheck shell=bash
# Read the results channel (second serial port) of a VM run and print one
# line per script, with the output of failed ones (all with -v).  Sets
# RESULTS_PASSED, RESULTS_FAILED, RESULTS_SKIPPED.

results_report() {
	local work=$1 list=$2 verbose=$3 log name line status secs reason
	log="$work/results.clean"
	tr -d '\r' < "$work/results.log" > "$log" 2>/dev/null || : > "$log"
	RESULTS_PASSED=0 RESULTS_FAILED=0 RESULTS_SKIPPED=0
	if ! grep -q '^@@RSWAP-BOOT' "$log"; then
		echo "vm/run: the VM never reached the test runner; console tail:" >&2
		tail -n 40 "$work/console.log" >&2 || true
	fi
	while read -r name; do
		line=$(grep -m1 "^@@RSWAP-END $name " "$log" || true)
		if [ -z "$line" ]; then
			status=fail secs=? reason="no result (the VM died or hung during it: see console.log)"
		else
			read -r _ _ status secs reason <<< "$line"
		fi
		case "$status" in
		pass) RESULTS_PASSED=$((RESULTS_PASSED + 1)) ;;
		skip) RESULTS_SKIPPED=$((RESULTS_SKIPPED + 1)) ;;
		*) RESULTS_FAILED=$((RESULTS_FAILED + 1)) ;;
		esac
		if [ "$status" = fail ] || [ "$verbose" -eq 1 ]; then
			echo "---- ${name#??-} output ----"
			awk -v b="@@RSWAP-BEGIN $name" -v e="@@RSWAP-END $name " \
				'index($0, e) == 1 { exit } /^@@RSWAP-DMESG/ { print "  ---- kernel log after the marker ----"; next } on { print "  | " $0 } $0 == b { on = 1 }' "$log"
			if [ -z "$line" ]; then
				tail -n 40 "$work/console.log" | sed 's/^/  console| /'
			fi
		fi
		printf '%-5s %s (%ss)%s\n' "$(echo "$status" | tr a-z A-Z)" "${name#??-}" "$secs" "${reason:+: $reason}"
	done < "$list"
}
