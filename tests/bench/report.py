#!/usr/bin/env python3
"""Turn the @@BENCH lines of a benchmark run into results.json, results.md
and results.png (the last only when matplotlib is installed).

    report.py --lines bench-lines.txt [--host host.json] --out DIR

The input holds one measurement per line (see tests/bench/bench-vm.sh):
    @@BENCH {"system": S, "workload": W, "rep": N, "data": {...}}
Standard library only, except for the optional plot.
"""
import argparse
import json
import os
import statistics
import sys

import verdict

SYSTEM_ORDER = ["rswap-rdma", "rswap-r2", "rswap-move", "nvmeof", "rswap-dram", "brd", "zram"]
SYSTEM_LABEL = {
    "rswap-rdma": "rswap (RDMA)",
    "rswap-r2": "rswap (RDMA, replicas=2, 2 poolds)",
    "rswap-move": "rswap (RDMA, 2 poolds, chunks moving)",
    "nvmeof": "NVMe-oF (RDMA)",
    "rswap-dram": "rswap (DRAM backend)",
    "brd": "brd (local)",
    "zram": "zram (local)",
}


def stats(values):
    """Median and spread of the repetitions (None values left out)."""
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals),
            "max": max(vals), "n": len(vals), "values": vals}


def med(s):
    return s["median"] if s else None


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def load_lines(path):
    recs = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line.startswith("@@BENCH "):
                continue
            try:
                recs.append(json.loads(line[len("@@BENCH "):]))
            except json.JSONDecodeError as e:
                print(f"report: line {n} is not JSON ({e}); skipped",
                      file=sys.stderr)
    return recs


def valid_us(v):
    return v if v is not None and v >= 0 else None


def summarize_faultlat(reps):
    out = {}
    for mode in ("seq", "rand"):
        m = {}
        for key in ("p50_us", "p90_us", "p99_us", "p999_us", "mean_us",
                    "swapcache_hit_ratio", "device_reads", "majflt",
                    "pswpin", "left_cached_before"):
            conv = valid_us if key.endswith("_us") else (lambda v: v)
            m[key] = stats([conv(r["result"][mode].get(key)) for r in reps])
        out[mode] = m
    out["block"] = diskstat_avgs(reps)
    return out


def diskstat_avgs(reps):
    """Average request size (KiB) and block-layer time per request (µs)
    from the device's /sys/block/X/stat deltas, when it keeps them."""
    out = {}
    for d in ("read", "write"):
        kib, us = [], []
        for r in reps:
            ds = r.get("diskstat") or {}
            ios = ds.get(f"{d}_ios", 0)
            kib.append(ds[f"{d}_sectors"] * 512 / 1024 / ios if ios > 0 else None)
            us.append(ds[f"{d}_ms"] * 1000 / ios if ios > 0 and ds.get(f"{d}_ms", 0) > 0 else None)
        out[f"{d}_req_kib"] = stats(kib)
        out[f"{d}_req_us"] = stats(us)
    return out


def summarize_tput(reps):
    out_rate, in_rate, in_dev_rate, hit = [], [], [], []
    for r in reps:
        res = r["result"]
        po, si = res["pageout"], res["swapin"]
        out_rate.append(po["pages_per_s"] if po["pswpout"] > 0 else None)
        secs = si["secs"]
        in_rate.append(si["pages"] / secs if secs > 0 else None)
        in_dev_rate.append(si["pswpin"] / secs if secs > 0 else None)
        hit.append(si["swapcache_hit_ratio"])
    return {"swapout_pages_per_s": stats(out_rate),
            "swapin_pages_per_s": stats(in_rate),
            "swapin_device_pages_per_s": stats(in_dev_rate),
            "swapin_swapcache_hit_ratio": stats(hit),
            "block": diskstat_avgs(reps)}


def summarize_app(unlimited, reps):
    by_rep = {}
    for r in reps:
        by_rep.setdefault(r["rep"], {})[r["data"]["limit_pct"]] = r["data"]
    limits = sorted({p for d in by_rep.values() for p in d}, reverse=True)
    base = max(limits) if limits else None
    by_limit = {}
    for pct in limits:
        ms, slow, pin, pout, ok = [], [], [], [], True
        for rep, d in by_rep.items():
            if pct not in d:
                continue
            ms.append(d[pct]["ms"])
            pin.append(d[pct]["pswpin"])
            pout.append(d[pct]["pswpout"])
            ok = ok and d[pct]["result_ok"]
            b = d.get(base)
            slow.append(ratio(d[pct]["ms"], b["ms"]) if b else None)
        by_limit[str(pct)] = {"ms": stats(ms), "slowdown_vs_%d" % base: stats(slow),
                              "slowdown": stats(slow), "pswpin": stats(pin),
                              "pswpout": stats(pout), "result_ok": ok}
    return {"unlimited": unlimited, "base_pct": base, "by_limit": by_limit}


# Targets of the live-migration work (issue "A live cluster"), shown next
# to the figures; the benchmark never fails on them.
MOVE_TPUT_TARGET = 0.70   # workload keeps >= 70% of its throughput
MOVE_COPY_TARGET = 0.50   # copy at >= 50% of ib_write_bw


def tput_rates(res):
    po, si = res["pageout"], res["swapin"]
    return {"swapout_pages_per_s": po["pages_per_s"] if po["pswpout"] > 0 else None,
            "swapin_pages_per_s": si["pages"] / si["secs"] if si["secs"] > 0 else None}


def lat_values(res):
    return {f"fault_{m}_{k}": valid_us(res[m].get(k))
            for m in ("rand", "seq") for k in ("p50_us", "p99_us")}


def split_rate(c, in_run):
    """MiB/s of the moves of one live run that did (1) or did not (0)
    overlap the workload's run."""
    flags = c.get("per_move_in_run")
    if not flags or not c.get("chunk_bytes"):
        return None
    ms = [m for m, f in zip(c["per_move_ms"], flags) if f == in_run]
    return ratio(len(ms) * c["chunk_bytes"] / 1048576, sum(ms) / 1000) if ms else None


def summarize_move(ws):
    """rswap-move: the same faultlat workload with no move (move-base-*)
    and while chunks move (move-live-*), paired by repetition; each
    repetition's own during/baseline ratio, then the median of those."""
    out = {"metrics": {}, "ok": True}
    for mode, fn in (("tput", tput_rates), ("lat", lat_values)):
        base = {r["rep"]: r["data"] for r in ws.get(f"move-base-{mode}", [])}
        live = {r["rep"]: r["data"] for r in ws.get(f"move-live-{mode}", [])}
        for d in list(base.values()) + list(live.values()):
            out["ok"] = out["ok"] and bool(d["result"].get("ok"))
        reps = sorted(set(base) & set(live))
        keys = list(fn(base[reps[0]]["result"])) if reps else []
        for k in keys:
            b = [fn(base[r]["result"])[k] for r in reps]
            v = [fn(live[r]["result"])[k] for r in reps]
            out["metrics"][k] = {"baseline": stats(b), "during_move": stats(v),
                                 "ratio": stats([ratio(y, x) for x, y in zip(b, v)]),
                                 "reps": reps}
    copies = [r["data"] for r in ws.get("move-copy", [])]
    out["copy"] = {
        "copy_MiBps": stats([c["copy_MiBps"] if c.get("copy_MiBps", -1) > 0 else None for c in copies]),
        "per_move_MiBps": stats([c["chunk_bytes"] / 1048576 / (ms / 1000)
                                 for c in copies for ms in c.get("per_move_ms", []) if ms > 0]),
        # The copy phase alone (windows copied, switch), without reaching
        # the target (a session connect or reconnect) before it.
        "copy_phase_MiBps": stats([c["chunk_bytes"] / 1048576 / (ms / 1000)
                                   for c in copies for ms in c.get("per_copy_ms", []) if ms > 0]),
        # Moves that overlapped the workload's run, and those that did
        # not (the loop finishing its drain after the run: no workload).
        "in_run_MiBps": stats([split_rate(c, 1) for c in copies]),
        "idle_MiBps": stats([split_rate(c, 0) for c in copies]),
        "moves": stats([c["moves"] for c in copies]),
        "busy_share": stats([c.get("busy_share") for c in copies]),
        "chunk_bytes": copies[0]["chunk_bytes"] if copies else None,
        "failed": sum(c.get("failed", 0) for c in copies),
        "by_run": copies,
    }
    out["ok"] = out["ok"] and out["copy"]["failed"] == 0
    return out


def hist_delta(before, after):
    """{upper bound µs: count} of a failover_latency histogram's growth."""
    def parse(txt):
        out = {}
        for tok in (txt or "").split():
            le, _, n = tok.partition(":")
            if le.isdigit() and n.isdigit():
                out[int(le)] = int(n)
        return out
    b, a = parse(before), parse(after)
    return {le: a[le] - b.get(le, 0) for le in sorted(a) if a[le] > b.get(le, 0)}


def hist_quantile(h, q):
    """The bucket bound (µs, a power of two) below which a fraction q lies."""
    total = sum(h.values())
    if not total:
        return None
    seen = 0
    for le in sorted(h):
        seen += h[le]
        if seen >= q * total:
            return le
    return max(h)


def summarize_failover(ws):
    """rswap-r2 with a copy's session failing every half second: the faults'
    latency, and the failover reads' own from the client's histogram."""
    reps = []
    lat = {r["rep"]: r["data"]["result"] for r in ws.get("failover-lat", [])}
    for r in ws.get("failover", []):
        d = r["data"]
        h = hist_delta(d.get("hist_before"), d.get("hist_after"))
        f = lat.get(r["rep"], {}).get("rand", {})
        reps.append({"rep": r["rep"], "reads": d.get("reads", 0), "hist": h,
                     "kill_to_healthy_ms": d.get("kill_to_healthy_ms"),
                     "failover_p50_le_us": hist_quantile(h, 0.5),
                     "failover_p99_le_us": hist_quantile(h, 0.99),
                     "fault_p50_us": f.get("p50_us"), "fault_p99_us": f.get("p99_us")})
    merged = {}
    for x in reps:
        for le, n in x["hist"].items():
            merged[le] = merged.get(le, 0) + n
    return {"reps": reps, "reads": sum(x["reads"] for x in reps), "hist": merged,
            "failover_p50_le_us": hist_quantile(merged, 0.5),
            "failover_p99_le_us": hist_quantile(merged, 0.99),
            "kill_to_healthy_ms": stats([x["kill_to_healthy_ms"] for x in reps]),
            "fault_p50_us": stats([x["fault_p50_us"] for x in reps]),
            "fault_p99_us": stats([x["fault_p99_us"] for x in reps])}


def markdown_failover(res):
    f = res["systems"].get("rswap-r2", {}).get("failover")
    if not f:
        return []
    L = ["## A poold killed under rswap-r2: failover reads, and back to two copies\n",
         "The fault-latency run on `replicas=2` during which one of its two poolds is "
         "killed (-9) once 1,024 pages have faulted in: reads in flight on it are re-issued on the other "
         "copy.  The client times each failover read from its first dispatch to its end "
         "(sysfs `failover_latency`, power-of-two buckets: a bound, not an exact figure).  "
         "Then the poold starts again, empty (a new incarnation), the coordinator "
         "re-replicates every chunk onto it from the surviving copies, and the last "
         "column is the time from the kill until every slot has two copies in sync.\n",
         "| rep | failover reads | their p50 ≤ µs | their p99 ≤ µs | all faults p50 µs | all faults p99 µs | kill → healthy ms |",
         "|---|---|---|---|---|---|---|"]
    for x in f["reps"]:
        L.append(f"| {x['rep']} | {x['reads']} | {fmt(x['failover_p50_le_us'])} | "
                 f"{fmt(x['failover_p99_le_us'])} | {fmt(x['fault_p50_us'])} | {fmt(x['fault_p99_us'])} | "
                 f"{fmt(x['kill_to_healthy_ms'])} |")
    L.append(f"| all | {f['reads']} | {fmt(f['failover_p50_le_us'])} | {fmt(f['failover_p99_le_us'])} | "
             f"{fmt_stats(f['fault_p50_us'])} | {fmt_stats(f['fault_p99_us'])} | "
             f"{fmt_stats(f['kill_to_healthy_ms'])} |\n")
    return L


def build(recs, host):
    res = {"host": host, "vm": {}, "raw": {}, "systems": {}, "orders": {}, "records": recs}
    raw_reps = {}
    sysrecs = {}
    # Apps' unlimited runs: once for all systems (older runs: per system).
    unlimited = {}
    for r in recs:
        s, w = r["system"], r["workload"]
        if s == "env" and w == "host":
            res["vm"] = r["data"]
        elif s == "env" and w == "order":
            res["orders"][str(r["rep"])] = r["data"]["order"]
        elif s == "env" and w.startswith("app-"):
            unlimited[w] = r["data"]
        elif s == "raw":
            raw_reps.setdefault(w, []).append(r["data"])
        else:
            sysrecs.setdefault(s, {}).setdefault(w, []).append(r)
    for tool, reps in raw_reps.items():
        keys = [k for k in reps[0] if k != "iters"]
        res["raw"][tool] = {"reps": reps,
                            "summary": {k: stats([x.get(k) for x in reps]) for k in keys}}
    for s, ws in sysrecs.items():
        e = {}
        if "device" in ws:
            e["device"] = ws["device"][0]["data"]
        if "faultlat-lat" in ws:
            e["fault_latency"] = summarize_faultlat([r["data"] for r in ws["faultlat-lat"]])
            e["fault_latency"]["page_cluster"] = ws["faultlat-lat"][0]["data"]["page_cluster"]
            e["fault_latency"]["ok"] = all(r["data"]["result"]["ok"] for r in ws["faultlat-lat"])
        if "faultlat-tput" in ws:
            e["throughput"] = summarize_tput([r["data"] for r in ws["faultlat-tput"]])
            e["throughput"]["page_cluster"] = ws["faultlat-tput"][0]["data"]["page_cluster"]
            e["throughput"]["ok"] = all(r["data"]["result"]["ok"] for r in ws["faultlat-tput"])
        apps = {}
        for w, rs in ws.items():
            if w.startswith("app-") and not w.endswith("-unlimited"):
                app = w[4:]
                unl = ws.get(f"app-{app}-unlimited", [{}])[0].get("data") or \
                    unlimited.get(f"app-{app}-unlimited")
                apps[app] = summarize_app(unl, rs)
        if apps:
            e["apps"] = apps
        if any(w.startswith("move-") for w in ws):
            e["migration"] = summarize_move(ws)
        if "failover" in ws:
            e["failover"] = summarize_failover(ws)
        res["systems"][s] = e
    res["ratios"] = ratios(res)
    res["verdicts"] = verdict.build(recs)
    res["raw_distance"] = verdict.raw_distance(recs)
    return res


def g(res, system, *path):
    """Median at PATH under a system's entry, or None."""
    cur = res["systems"].get(system)
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return med(cur) if isinstance(cur, dict) and "median" in cur else cur


def raw(res, tool, key):
    t = res["raw"].get(tool)
    return med(t["summary"].get(key)) if t else None


def ratios(res):
    out = {}

    def pair(a, b):
        r = {}
        for mode in ("rand", "seq"):
            for k in ("p50_us", "p99_us", "p999_us"):
                r[f"fault_{mode}_{k}"] = ratio(g(res, a, "fault_latency", mode, k),
                                               g(res, b, "fault_latency", mode, k))
        for k in ("swapout_pages_per_s", "swapin_pages_per_s"):
            r[k] = ratio(g(res, a, "throughput", k), g(res, b, "throughput", k))
        for app in sorted(set(res["systems"].get(a, {}).get("apps", {})) &
                          set(res["systems"].get(b, {}).get("apps", {}))):
            base = res["systems"][a]["apps"][app]["base_pct"]
            for pct in res["systems"][a]["apps"][app]["by_limit"]:
                if int(pct) == base:
                    continue
                r[f"{app}_ms_at_{pct}pct"] = ratio(
                    g(res, a, "apps", app, "by_limit", pct, "ms"),
                    g(res, b, "apps", app, "by_limit", pct, "ms"))
                r[f"{app}_slowdown_at_{pct}pct"] = ratio(
                    g(res, a, "apps", app, "by_limit", pct, "slowdown"),
                    g(res, b, "apps", app, "by_limit", pct, "slowdown"))
        return r

    def to_raw(s):
        read_lat = raw(res, "ib_read_lat", "typical_us")
        wr = raw(res, "ib_write_bw", "msg_rate_Mpps")
        rd = raw(res, "ib_read_bw", "msg_rate_Mpps")
        return {
            "fault_rand_p50_over_ib_read_lat_typical": ratio(g(res, s, "fault_latency", "rand", "p50_us"), read_lat),
            "fault_rand_p99_over_ib_read_lat_p99": ratio(g(res, s, "fault_latency", "rand", "p99_us"),
                                                         raw(res, "ib_read_lat", "p99_us")),
            "swapout_rate_over_ib_write_bw_msg_rate": ratio(g(res, s, "throughput", "swapout_pages_per_s"),
                                                            wr * 1e6 if wr else None),
            "swapin_rate_over_ib_read_bw_msg_rate": ratio(g(res, s, "throughput", "swapin_pages_per_s"),
                                                          rd * 1e6 if rd else None),
        }

    out["rswap-rdma/nvmeof"] = pair("rswap-rdma", "nvmeof")
    out["rswap-dram/brd"] = pair("rswap-dram", "brd")
    out["rswap-rdma/rswap-dram"] = pair("rswap-rdma", "rswap-dram")
    out["rswap-rdma/raw"] = to_raw("rswap-rdma")
    mig = res["systems"].get("rswap-move", {}).get("migration")
    if mig:
        # perftest's MB are 2^20 bytes, the same unit as the copy's MiB.
        out["rswap-move/raw"] = {
            "copy_MiBps_over_ib_write_bw": ratio(med(mig["copy"]["copy_MiBps"]),
                                                 raw(res, "ib_write_bw", "bw_avg_MBps"))}
    out["nvmeof/raw"] = to_raw("nvmeof")
    return out


# ---- Markdown ---------------------------------------------------------------

def fmt(v, digits=None):
    if v is None:
        return "–"
    if digits is None:
        digits = 0 if abs(v) >= 100 else (1 if abs(v) >= 10 else 2)
    return f"{v:,.{digits}f}"


def fmt_stats(s, digits=None):
    if not s:
        return "–"
    if s["n"] == 1 or s["min"] == s["max"]:
        return fmt(s["median"], digits)
    return f"{fmt(s['median'], digits)} ({fmt(s['min'], digits)}–{fmt(s['max'], digits)})"


def fmt_ratio(v):
    return "–" if v is None else f"{v:.2f}×"


def systems_present(res):
    return [s for s in SYSTEM_ORDER if s in res["systems"]] + \
        sorted(s for s in res["systems"] if s not in SYSTEM_ORDER)


def markdown_move(res):
    mig = res["systems"].get("rswap-move", {}).get("migration")
    if not mig:
        return []
    L = ["## Live migration (rswap-move)\n",
         "The same faultlat workload on `/dev/rswap0` (one coordinator, two poolds "
         "each big enough for the whole device) with no move, then while a loop "
         "drains one poold and then the other (`rswap-admin drain --wait`, `undrain`) "
         "so chunks keep moving; interleaved per repetition. Ratio: during / "
         "no move, computed per repetition, median over repetitions (below 1 "
         "for a rate, above 1 for a latency, means slower while moving).\n"]
    m = mig["metrics"]
    L.append("| metric | no move | during moves | ratio (during / no move) | target |")
    L.append("|---|---|---|---|---|")
    rows = [("swapout_pages_per_s", "swap-out pages/s", True),
            ("swapin_pages_per_s", "swap-in pages/s (sequential)", True),
            ("fault_rand_p50_us", "random fault p50 µs", False),
            ("fault_rand_p99_us", "random fault p99 µs", False),
            ("fault_seq_p50_us", "sequential fault p50 µs", False),
            ("fault_seq_p99_us", "sequential fault p99 µs", False)]
    for k, title, is_rate in rows:
        if k not in m:
            continue
        r = med(m[k]["ratio"])
        tgt = ""
        if is_rate:
            tgt = f"≥ {MOVE_TPUT_TARGET:.2f}×" + ("" if r is None else
                                                  (" (met)" if r >= MOVE_TPUT_TARGET else " (**not met**)"))
        L.append(f"| {title} | {fmt_stats(m[k]['baseline'])} | {fmt_stats(m[k]['during_move'])} | "
                 f"{fmt_stats(m[k]['ratio'], 2)}× | {tgt} |")
    L.append("")
    c = mig["copy"]
    wbw = raw(res, "ib_write_bw", "bw_avg_MBps")
    cr = res["ratios"].get("rswap-move/raw", {}).get("copy_MiBps_over_ib_write_bw")
    tgt = f"≥ {MOVE_COPY_TARGET:.2f}×" + ("" if cr is None else
                                          (" (met)" if cr >= MOVE_COPY_TARGET else " (**not met**)"))
    L.append("Copy rate: bytes moved over the summed time of the moves (the kernel's "
             "per-move time, from the move command to the switch) of each live run's loop, "
             "split into the moves that overlapped the workload and those after it (the "
             "loop finishing its drain, no workload); against `ib_write_bw` 4 KiB average "
             "bandwidth on the same device (the `raw` system; perftest's MB are 2^20 bytes).\n")
    cp = c.get("copy_phase_MiBps") or {}
    cpr = ratio(cp.get("median"), wbw) if cp.get("median") and wbw else None
    L.append("| copy MiB/s (all moves) | with the workload | without | per-move MiB/s | copy phase MiB/s | "
             "ib_write_bw MiB/s | copy / ib_write_bw | copy phase / ib_write_bw | target | moves per live "
             "run (whole loop) | share of the workload's time a move ran | failed moves | data |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    L.append(f"| {fmt_stats(c['copy_MiBps'])} | {fmt_stats(c['in_run_MiBps'])} | {fmt_stats(c['idle_MiBps'])} | "
             f"{fmt_stats(c['per_move_MiBps'])} | {fmt_stats(cp) if cp else 'n/a'} | {fmt(wbw)} | "
             f"{fmt_ratio(cr)} | {fmt_ratio(cpr)} | {tgt} | {fmt_stats(c['moves'], 0)} | "
             f"{fmt_stats(c['busy_share'], 2)} | {c['failed']} | {'verified' if mig['ok'] else '**BROKEN**'} |")
    L.append("\nThe copy phase is a move's time from publishing {old, new} to the switch: the "
             "windows copied, without reaching the target before it (connecting, or "
             "reconnecting so that the poold registers the new chunk).\n")
    L.append("")
    return L


def markdown(res):
    L = []
    h, vm = res.get("host") or {}, res.get("vm") or {}
    L.append("# Remoteswap benchmark results\n")
    L.append(f"- date: {h.get('date_utc', '?')}, commit {h.get('git_commit', '?')}"
             f"{' (--quick)' if h.get('quick') else ''}")
    L.append(f"- host: {h.get('host_cpu', '?')}, {h.get('host_cpus', '?')} CPUs, kernel {h.get('host_kernel', '?')}")
    L.append(f"- guest: kernel {vm.get('kernel', '?')}, {vm.get('cpus', '?')} vCPUs, "
             f"{(vm.get('mem_kib') or 0) // 1024} MiB, QEMU TCG (no KVM), Soft-RoCE `{vm.get('rdma_dev', '?')}`, "
             f"clock source {vm.get('clocksource', '?')}")
    ovh = [r["data"]["result"].get("clock_overhead_ns") for r in res["records"]
           if r["workload"].startswith("faultlat-")]
    ovh = [v for v in ovh if v is not None]
    if ovh:
        L.append(f"- timer cost per latency sample (two clock_gettime calls, included in every fault "
                 f"latency): median {statistics.median(ovh) / 1000:.2f} µs")
    if h.get("guest_over_host_clock"):
        L.append(f"- guest clock check: scripts took {h['guest_s']} s by the guest's clock, the whole VM "
                 f"{h['host_s']} s by the host's (ratio {h['guest_over_host_clock']}; above 1 the guest clock ran fast)")
    L.append(f"- repetitions: {vm.get('reps', '?')}; figures are the median, the range (min–max) in brackets")
    if res["orders"]:
        L.append("- order of the systems in each repetition (every workload runs on each system "
                 "in this order): " + "; ".join(f"{k}: {v}" for k, v in sorted(res["orders"].items(), key=lambda x: int(x[0]))))
    if h.get("host_s"):
        L.append(f"- wall time of the VM (boot, set-up, every measurement): {h['host_s']} s")
    L.append(f"- sizes: fault latency {vm.get('fl_mib')} MiB, throughput {vm.get('tp_mib')} MiB, "
             f"sort {vm.get('sort_lines')} lines, awk {vm.get('awk_keys')} keys\n")
    label = lambda s: SYSTEM_LABEL.get(s, s)  # noqa: E731
    L += verdict.markdown(res["verdicts"], label)
    L += verdict.markdown_raw(res["raw_distance"], label)
    L += markdown_failover(res)

    if res["raw"]:
        L.append("## Raw transport (perftest, 4 KiB, same RDMA device)\n")
        L.append("| tool | typical / avg µs | p99 µs | p99.9 µs | msg rate (k/s) | MB/s |")
        L.append("|---|---|---|---|---|---|")
        for t in ("ib_read_lat", "ib_write_lat"):
            if t in res["raw"]:
                s = res["raw"][t]["summary"]
                L.append(f"| {t} | {fmt_stats(s.get('typical_us'))} / {fmt_stats(s.get('avg_us'))} | "
                         f"{fmt_stats(s.get('p99_us'))} | {fmt_stats(s.get('p999_us'))} | | |")
        for t in ("ib_write_bw", "ib_read_bw"):
            if t in res["raw"]:
                s = res["raw"][t]["summary"]
                rate = s.get("msg_rate_Mpps")
                k = {"median": rate["median"] * 1e3, "min": rate["min"] * 1e3,
                     "max": rate["max"] * 1e3, "n": rate["n"]} if rate else None
                L.append(f"| {t} | | | | {fmt_stats(k)} | {fmt_stats(s.get('bw_avg_MBps'))} |")
        L.append("")

    syss = systems_present(res)
    L.append("## Swap devices\n")
    L.append("| system | device | size MiB | rotational | max_sectors_kb | max_segments | nr_requests |")
    L.append("|---|---|---|---|---|---|---|")
    for s in syss:
        d = res["systems"][s].get("device") or {}
        L.append(f"| {SYSTEM_LABEL.get(s, s)} | `{d.get('dev', '?')}` | {d.get('size_mib', '–')} | "
                 f"{d.get('rotational', '–')} | {d.get('max_sectors_kb', '–')} | {d.get('max_segments', '–')} | "
                 f"{d.get('nr_requests', '–')} |")
    L.append("")
    L.append("## Swap-in fault latency (µs, one 4 KiB page, vm.page-cluster=0)\n")
    L.append("Only faults that really read the device count (pages not in the swap cache "
             "just before the touch, checked with mincore); the hit ratio is the share of "
             "touches that found the page still in the swap cache.\n")
    L.append("| system | random p50 | random p99 | random p99.9 | sequential p50 | sequential p99 | swap-cache hits (rand/seq) | majflt / device reads (rand) |")
    L.append("|---|---|---|---|---|---|---|---|")
    for s in syss:
        fl = res["systems"][s].get("fault_latency")
        if not fl:
            continue
        r, q = fl["rand"], fl["seq"]
        L.append(f"| {SYSTEM_LABEL.get(s, s)} | {fmt_stats(r['p50_us'])} | {fmt_stats(r['p99_us'])} | "
                 f"{fmt_stats(r['p999_us'])} | {fmt_stats(q['p50_us'])} | {fmt_stats(q['p99_us'])} | "
                 f"{fmt(med(r['swapcache_hit_ratio']), 3)} / {fmt(med(q['swapcache_hit_ratio']), 3)} | "
                 f"{fmt(med(r['majflt']), 0)} / {fmt(med(r['device_reads']), 0)} |")
    L.append("")

    L.append("## Throughput (pages/s)\n")
    L.append("Swap-out: MADV_PAGEOUT of the whole region until pswpout and nr_writeback settle. "
             "Swap-in: sequential first touch of every page with the default vm.page-cluster "
             "(readahead on), after the region was pushed out of the swap cache.\n")
    L.append("| system | swap-out pages/s | swap-in pages/s | swap-in device pages/s | swap-in swap-cache hits |")
    L.append("|---|---|---|---|---|")
    for s in syss:
        tp = res["systems"][s].get("throughput")
        if not tp:
            continue
        L.append(f"| {SYSTEM_LABEL.get(s, s)} | {fmt_stats(tp['swapout_pages_per_s'])} | "
                 f"{fmt_stats(tp['swapin_pages_per_s'])} | {fmt_stats(tp['swapin_device_pages_per_s'])} | "
                 f"{fmt(med(tp['swapin_swapcache_hit_ratio']), 3)} |")
    L.append("")

    L.append("Block layer (`/sys/block/X/stat` deltas over the throughput run; bio-based "
             "devices such as brd and zram may keep no times): average request size and "
             "average time per request, which shows how the page rate splits into requests.\n")
    L.append("| system | write req KiB | write µs/req | read req KiB | read µs/req | read µs/req at page-cluster 0 |")
    L.append("|---|---|---|---|---|---|")
    for s in syss:
        tp = res["systems"][s].get("throughput")
        fl = res["systems"][s].get("fault_latency") or {}
        if not tp or "block" not in tp:
            continue
        b, fb = tp["block"], fl.get("block", {})
        L.append(f"| {SYSTEM_LABEL.get(s, s)} | {fmt_stats(b['write_req_kib'], 1)} | {fmt_stats(b['write_req_us'], 0)} | "
                 f"{fmt_stats(b['read_req_kib'], 1)} | {fmt_stats(b['read_req_us'], 0)} | {fmt_stats(fb.get('read_req_us'), 0)} |")
    L.append("")

    L.append("## Application slowdown (time at the limit / time at 100% of peak)\n")
    L.append("memory.max of the program's cgroup is set to a share of its peak (memory.peak of "
             "an unlimited run); the output is checked against the unlimited run's md5.\n")
    apps = sorted({a for s in syss for a in res["systems"][s].get("apps", {})})
    for app in apps:
        pcts = []
        for s in syss:
            for p in res["systems"][s].get("apps", {}).get(app, {}).get("by_limit", {}):
                if p not in pcts:
                    pcts.append(p)
        pcts.sort(key=int, reverse=True)
        unl = next((res["systems"][s]["apps"][app]["unlimited"] for s in syss
                    if app in res["systems"][s].get("apps", {})), None) or {}
        L.append(f"**{app}** (peak {fmt((unl.get('peak_bytes') or 0) / 1048576, 1)} MiB, "
                 f"unlimited {fmt(unl.get('ms'), 0)} ms)\n")
        L.append("| system | " + " | ".join(f"{p}%: ms" for p in pcts) + " | " +
                 " | ".join(f"{p}%: slowdown" for p in pcts if p != pcts[0]) + " | pages in/out at " + pcts[-1] + "% | result |")
        L.append("|---" * (1 + 2 * len(pcts) + 1) + "|")
        for s in syss:
            a = res["systems"][s].get("apps", {}).get(app)
            if not a:
                continue
            bl = a["by_limit"]
            ok = all(v["result_ok"] for v in bl.values())
            row = [SYSTEM_LABEL.get(s, s)]
            row += [fmt_stats(bl[p]["ms"], 0) if p in bl else "–" for p in pcts]
            row += [fmt_stats(bl[p]["slowdown"], 2) if p in bl else "–" for p in pcts if p != pcts[0]]
            last = bl.get(pcts[-1])
            row.append(f"{fmt(med(last['pswpin']), 0)} / {fmt(med(last['pswpout']), 0)}" if last else "–")
            row.append("correct" if ok else "**WRONG**")
            L.append("| " + " | ".join(row) + " |")
        L.append("")

    L += markdown_move(res)

    L.append("## Ratios of medians\n")
    L.append("Each column divides the first system's median by the second's (not paired by "
             "repetition: the verdicts above are). Latency and "
             "time ratios above 1, and rate ratios below 1, mean the first system is slower. "
             "Against the raw transport: fault latency / `ib_read_lat` (typical for p50, p99 "
             "for p99), swap-out pages/s / `ib_write_bw` 4 KiB messages/s, swap-in pages/s / "
             "`ib_read_bw` 4 KiB messages/s.\n")
    R = res["ratios"]
    cols = [("rswap-rdma/nvmeof", "rswap / NVMe-oF"),
            ("rswap-rdma/raw", "rswap / raw RDMA"),
            ("nvmeof/raw", "NVMe-oF / raw RDMA"),
            ("rswap-dram/brd", "rswap DRAM / brd"),
            ("rswap-rdma/rswap-dram", "rswap RDMA / rswap DRAM")]
    raw_keys = {"fault_rand_p50_us": "fault_rand_p50_over_ib_read_lat_typical",
                "fault_rand_p99_us": "fault_rand_p99_over_ib_read_lat_p99",
                "swapout_pages_per_s": "swapout_rate_over_ib_write_bw_msg_rate",
                "swapin_pages_per_s": "swapin_rate_over_ib_read_bw_msg_rate"}
    rows = [("fault_rand_p50_us", "random fault p50"), ("fault_rand_p99_us", "random fault p99"),
            ("fault_rand_p999_us", "random fault p99.9"), ("fault_seq_p50_us", "sequential fault p50"),
            ("swapout_pages_per_s", "swap-out pages/s"), ("swapin_pages_per_s", "swap-in pages/s")]
    extra = []
    for k in R.get("rswap-rdma/nvmeof", {}) or R.get("rswap-dram/brd", {}):
        if "_ms_at_" in k:
            app, pct = k.split("_ms_at_")
            extra.append((k, f"{app} time at {pct.replace('pct', '%')}"))
    for k in (R.get("rswap-dram/brd", {})):
        if "_ms_at_" in k and k not in [e[0] for e in extra]:
            app, pct = k.split("_ms_at_")
            extra.append((k, f"{app} time at {pct.replace('pct', '%')}"))
    L.append("| metric | " + " | ".join(t for _, t in cols) + " |")
    L.append("|---" * (len(cols) + 1) + "|")
    for key, title in rows + extra:
        cells = []
        for c, _ in cols:
            if c.endswith("/raw"):
                v = R.get(c, {}).get(raw_keys.get(key, ""), None)
            else:
                v = R.get(c, {}).get(key)
            cells.append(fmt_ratio(v))
        if any(x != "–" for x in cells):
            L.append(f"| {title} | " + " | ".join(cells) + " |")
    L.append("")
    return "\n".join(L)


# ---- plot ---------------------------------------------------------------------

def plot(res, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report: matplotlib not installed (apt-get install python3-matplotlib): no plot",
              file=sys.stderr)
        return False
    syss = systems_present(res)
    fig, ax = plt.subplots(2, 2, figsize=(13, 9))
    for i, mode in enumerate(("rand", "seq")):
        a = ax[0][i]
        for s in syss:
            recs = [r for r in res["records"] if r["system"] == s and r["workload"] == "faultlat-lat"]
            if not recs:
                continue
            # The repetition whose p50 is the median one.
            recs.sort(key=lambda r: r["data"]["result"][mode]["p50_us"])
            d = recs[len(recs) // 2]["data"]["result"][mode]
            pts = [(u, p) for u, p in zip(d["cdf_us"], d["cdf_pct"]) if u is not None and u > 0]
            if pts:
                a.plot([u for u, _ in pts], [p for _, p in pts], marker=".", label=SYSTEM_LABEL.get(s, s))
        rl = raw(res, "ib_read_lat", "typical_us")
        if rl:
            a.axvline(rl, color="grey", linestyle="--", label=f"ib_read_lat 4K typical ({rl:.0f} µs)")
        a.set_xscale("log")
        a.set_xlabel("fault latency (µs, log)")
        a.set_ylabel("percentile")
        a.set_title(f"{'Random' if mode == 'rand' else 'Sequential'} swap-in faults (device reads only)")
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=8)
    # Application slowdowns.
    a = ax[1][0]
    groups = []
    for s in syss:
        for app, v in res["systems"][s].get("apps", {}).items():
            for p in v["by_limit"]:
                if int(p) != v["base_pct"] and (app, p) not in groups:
                    groups.append((app, p))
    groups.sort(key=lambda x: (x[0], -int(x[1])))
    w = 0.8 / max(1, len(syss))
    for j, s in enumerate(syss):
        ys = [g(res, s, "apps", app, "by_limit", p, "slowdown") or 0 for app, p in groups]
        a.bar([x + j * w for x in range(len(groups))], ys, w, label=SYSTEM_LABEL.get(s, s))
    a.set_xticks([x + w * (len(syss) - 1) / 2 for x in range(len(groups))])
    a.set_xticklabels([f"{app} @ {p}%" for app, p in groups])
    a.set_ylabel("time / time at 100% of peak")
    a.set_title("Application slowdown under a memory limit")
    a.grid(True, axis="y", alpha=0.3)
    a.legend(fontsize=8)
    # Throughput.
    a = ax[1][1]
    keys = [("swapout_pages_per_s", "swap-out"), ("swapin_pages_per_s", "swap-in (seq)")]
    for j, s in enumerate(syss):
        ys = [g(res, s, "throughput", k) or 0 for k, _ in keys]
        a.bar([x + j * w for x in range(len(keys))], ys, w, label=SYSTEM_LABEL.get(s, s))
    for tool, x, lab in (("ib_write_bw", 0, "ib_write_bw"), ("ib_read_bw", 1, "ib_read_bw")):
        r = raw(res, tool, "msg_rate_Mpps")
        if r:
            a.hlines(r * 1e6, x - w / 2, x + 0.8 - w / 2, colors="black", linestyles="--")
            a.text(x, r * 1e6, f"{lab} 4K msg/s", fontsize=7, va="bottom")
    a.set_xticks([x + w * (len(syss) - 1) / 2 for x in range(len(keys))])
    a.set_xticklabels([lab for _, lab in keys])
    a.set_yscale("log")
    a.set_ylabel("pages/s (log)")
    a.set_title("Swap throughput")
    a.grid(True, axis="y", which="both", alpha=0.3)
    a.legend(fontsize=8)
    h = res.get("host") or {}
    fig.suptitle(f"Remoteswap benchmark, {h.get('date_utc', '')} (QEMU TCG + Soft-RoCE: compare ratios, not absolutes)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", required=True, help="file with the @@BENCH lines")
    ap.add_argument("--host", help="host.json written by tests/bench/run")
    ap.add_argument("--out", required=True, help="output directory")
    args = ap.parse_args()
    recs = load_lines(args.lines)
    if not recs:
        print(f"report: no @@BENCH line in {args.lines}", file=sys.stderr)
        return 1
    host = {}
    if args.host and os.path.exists(args.host):
        with open(args.host, encoding="utf-8") as f:
            host = json.load(f)
    res = build(recs, host)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(args.out, "results.md"), "w", encoding="utf-8") as f:
        f.write(markdown(res))
    plot(res, os.path.join(args.out, "results.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
