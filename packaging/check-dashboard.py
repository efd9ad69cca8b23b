#!/usr/bin/env python3
# ctest "grafana_dashboard": packaging/grafana-remoteswap.json is valid
# JSON, every panel query parses as PromQL (promtool check rules on the
# queries as recording rules, template variables replaced), and every
# rswap_* metric it uses is exported: it is a family in one of the pages
# the other tests wrote (coordinator, poold, rswapctl --prometheus).
#
#   check-dashboard.py DASHBOARD.json PAGE.prom...
#
# Exit 0 pass, 1 fail, 77 skip (promtool missing; names still checked).
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile


def main():
    if len(sys.argv) < 3:
        print("usage: check-dashboard.py DASHBOARD.json PAGE.prom...")
        return 2
    with open(sys.argv[1]) as f:
        dash = json.load(f)
    exported = set()
    for page in sys.argv[2:]:
        with open(page) as f:
            for line in f:
                m = re.match(r"# TYPE (\S+) ", line)
                if m:
                    exported.add(m.group(1))
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    failed = False
    for e in exprs:
        for name in re.findall(r"\brswap_[a-z_]+", e):
            if name not in exported:
                print(f"FAIL: the dashboard uses {name}, which no daemon exports: {e}")
                failed = True
    if not exprs:
        print("FAIL: no queries in the dashboard")
        failed = True
    if failed:
        return 1
    if not shutil.which("promtool"):
        print("SKIP: promtool not found: run scripts/install-deps (Debian package prometheus)")
        return 77
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query{i}", "expr": re.sub(r"\$\w+", ".*", e)}
        for i, e in enumerate(exprs)]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        json.dump(rules, f)    # JSON is YAML
        path = f.name
    try:
        r = subprocess.run(["promtool", "check", "rules", path],
                           capture_output=True, text=True)
    finally:
        os.unlink(path)
    if r.returncode:
        print("FAIL: promtool check rules on the dashboard's queries:")
        print(r.stdout + r.stderr)
        return 1
    print(f"grafana_dashboard: {len(exprs)} queries parse, every metric is exported")
    return 0


if __name__ == "__main__":
    sys.exit(main())
