#!/bin/sh
# promtool-check.sh FILE...: each file must pass `promtool check metrics`
# (format and Prometheus' naming lint).  Exit 77 (ctest: skipped) when
# promtool is missing: scripts/install-deps installs it (Debian: prometheus).
command -v promtool > /dev/null 2>&1 || {
	echo "promtool not found: run scripts/install-deps (Debian package prometheus)"
	exit 77
}
rc=0
for f in "$@"; do
	if [ ! -s "$f" ]; then
		echo "FAIL: $f is missing or empty"
		rc=1
		continue
	fi
	if out=$(promtool check metrics < "$f" 2>&1); then
		echo "ok: $f"
	else
		echo "FAIL: promtool check metrics < $f:"
		printf '%s\n' "$out" | sed 's/^/    /'
		rc=1
	fi
done
exit $rc
