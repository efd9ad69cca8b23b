"""Paired verdicts: is rswap faster, slower, or not distinguishable from its
peer, in a way that holds from run to run?

bench-vm.sh measures every system in every repetition, in an order that
rotates, so the host's drift reaches both systems of a repetition alike.
For each row this divides the two systems' figures within each repetition
(a paired ratio), takes the median of those ratios, and puts a bootstrap
95% confidence interval around it (seeded: the same input gives the same
interval).  The verdict says which side of 1.0 the interval lies on, if it
excludes 1.0.  Standard library only.
"""
import random
import statistics

BOOTSTRAP_SEED = 15
BOOTSTRAP_RESAMPLES = 10000
CONFIDENCE = 0.95
# Below this many paired repetitions no verdict is given: with five, the
# interval of the median is about the range of the ratios, so a verdict
# needs every repetition on the same side of 1.0.
MIN_REPS = 5

# Each pair compares the first system with the second.  Further rswap
# variants (a new line in bench-vm.sh's RSWAP_VARIANTS) are compared with
# NVMe-oF without being named here: see pairs().
BASE_PAIRS = [("rswap-rdma", "nvmeof"), ("rswap-dram", "brd"),
              # What a second copy of every chunk costs (replicas=2 over 1).
              ("rswap-r2", "rswap-rdma"),
              # The block path without readahead and the swap cache.
              ("rswap-dram-sync", "brd"), ("rswap-sync", "rswap-rdma"),
              ("rswap-sync-poll", "rswap-sync"), ("rswap-sync-poll", "rswap-rdma"),
              # What requests of 1 MiB give over those of 128 KiB.
              ("rswap-rdma", "rswap-128k")]
# Variants that are not a plain swap device over the fabric.
NOT_COMPARED = {"rswap-dram", "rswap-dram-sync", "rswap-move"}

# Better when lower: latencies, times, CPU.  Rates are better when higher.
WORDS = {"time": ("faster", "slower"), "rate": ("faster", "slower"),
         "cpu": ("less CPU", "more CPU"), "size": ("larger", "smaller")}
# Kinds whose figures are better when higher.
HIGHER_BETTER = {"rate", "size"}
UNDECIDED = "not distinguishable"


def pairs(systems):
    """The (a, b) pairs to judge among the systems measured."""
    out = [p for p in BASE_PAIRS if p[0] in systems and p[1] in systems]
    if "nvmeof" in systems:
        out += [(s, "nvmeof") for s in sorted(systems)
                if s.startswith("rswap-") and s not in NOT_COMPARED and
                (s, "nvmeof") not in out]
    return out


def cpu_us_per_page(cpu):
    """Busy CPU time of the guest (all CPUs) per page swapped in or out."""
    if not cpu:
        return None
    pages = cpu.get("pswpin", 0) + cpu.get("pswpout", 0)
    if pages <= 0 or not cpu.get("user_hz"):
        return None
    return cpu["busy_ticks"] * 1e6 / cpu["user_hz"] / pages


def _pos(v):
    return v if v is not None and v > 0 else None


def per_rep(records, system):
    """{rep: {row key: value}} for one system, from its @@BENCH records."""
    out = {}
    for r in records:
        if r["system"] != system:
            continue
        w, d, rep = r["workload"], r["data"], r["rep"]
        row = out.setdefault(rep, {})
        if w == "faultlat-lat":
            res = d["result"]
            for mode in ("rand", "seq"):
                for k in ("p50_us", "p99_us", "p999_us"):
                    row[f"fault_{mode}_{k}"] = _pos(res[mode].get(k))
            row["cpu_us_per_page_lat"] = cpu_us_per_page(d.get("cpu"))
        elif w == "faultlat-tput":
            po, si = d["result"]["pageout"], d["result"]["swapin"]
            row["swapout_pages_per_s"] = po["pages_per_s"] if po["pswpout"] > 0 else None
            row["swapin_pages_per_s"] = si["pages"] / si["secs"] if si["secs"] > 0 else None
            row["cpu_us_per_page_tput"] = cpu_us_per_page(d.get("cpu"))
            ds = d.get("diskstat") or {}
            if ds.get("write_ios"):
                row["write_req_kib"] = ds["write_sectors"] / 2 / ds["write_ios"]
        elif w.startswith("app-") and not w.endswith("-unlimited"):
            app, pct = w[4:], d["limit_pct"]
            row[f"{app}_ms_at_{pct}pct"] = _pos(d["ms"])
    return {k: v for k, v in out.items() if v}


def rows(reps_a):
    """(key, title, kind) of every row the records allow, in report order."""
    keys = {k for v in reps_a.values() for k in v}
    out = []
    for k, t in (("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9")):
        out.append((f"fault_rand_{k}", f"random fault {t}", "time"))
    out.append(("fault_seq_p50_us", "sequential fault p50", "time"))
    out += [("swapout_pages_per_s", "swap-out pages/s", "rate"),
            ("swapin_pages_per_s", "swap-in pages/s (sequential)", "rate"),
            ("write_req_kib", "average write request KiB (throughput run)", "size")]
    apps = sorted({k.split("_ms_at_")[0] for k in keys if "_ms_at_" in k})
    for app in apps:
        pcts = sorted({int(k.split("_ms_at_")[1][:-3]) for k in keys
                       if k.startswith(f"{app}_ms_at_")}, reverse=True)
        # The 100% run barely swaps: it says nothing about the device.
        for p in pcts[1:]:
            out.append((f"{app}_ms_at_{p}pct", f"{app} time at {p}% of its peak", "time"))
    out += [("cpu_us_per_page_tput", "CPU µs per swapped page (throughput run)", "cpu"),
            ("cpu_us_per_page_lat", "CPU µs per swapped page (fault-latency run)", "cpu")]
    return [r for r in out if r[0] in keys]


def bootstrap_ci(values, seed=BOOTSTRAP_SEED, resamples=BOOTSTRAP_RESAMPLES,
                 level=CONFIDENCE):
    """Percentile bootstrap interval of the median of VALUES."""
    rng = random.Random(seed)
    n = len(values)
    meds = sorted(statistics.median(rng.choices(values, k=n)) for _ in range(resamples))
    tail = (1 - level) / 2
    return meds[int(tail * resamples)], meds[min(resamples - 1, int((1 - tail) * resamples))]


def verdict(lo, hi, kind, n):
    if n < MIN_REPS:
        return f"too few repetitions ({n} < {MIN_REPS})"
    good, bad = WORDS[kind]
    lower_better = kind not in HIGHER_BETTER
    if hi < 1:
        return good if lower_better else bad
    if lo > 1:
        return bad if lower_better else good
    return UNDECIDED


def judge(records, a, b):
    """Every row's paired ratios a/b, their median, interval and verdict."""
    ra, rb = per_rep(records, a), per_rep(records, b)
    out = []
    for key, title, kind in rows(ra):
        reps = sorted(r for r in set(ra) & set(rb)
                      if ra[r].get(key) is not None and rb[r].get(key))
        ratios = [ra[r][key] / rb[r][key] for r in reps]
        if not ratios and not any(v.get(key) for v in rb.values()):
            continue  # b never has it (brd keeps no block counters)
        e = {"key": key, "title": title, "kind": kind,
             "better": "higher" if kind in HIGHER_BETTER else "lower",
             "reps": reps, "ratios": ratios, "n": len(ratios),
             "a_values": [ra[r][key] for r in reps], "b_values": [rb[r][key] for r in reps],
             "median": None, "ci95": None, "verdict": "no paired repetition"}
        if ratios:
            lo, hi = bootstrap_ci(ratios)
            e.update(median=statistics.median(ratios), ci95=[lo, hi],
                     verdict=verdict(lo, hi, kind, len(ratios)))
        out.append(e)
    return out


def build(records):
    systems = {r["system"] for r in records} - {"env", "raw"}
    return {"method": {"paired": "ratio of the two systems' figures within each repetition",
                       "statistic": "median of the paired ratios",
                       "interval": f"percentile bootstrap, {BOOTSTRAP_RESAMPLES} resamples, "
                                   f"seed {BOOTSTRAP_SEED}, {int(CONFIDENCE * 100)}%",
                       "min_reps": MIN_REPS},
            "pairs": {f"{a}/{b}": judge(records, a, b) for a, b in pairs(systems)}}


def raw_distance(records):
    """Per repetition, each swap system's random fault p50 over the same
    repetition's ib_read_lat typical: how far a swap-in fault is from one
    4 KiB READ on the same device."""
    read = {r["rep"]: r["data"].get("typical_us") for r in records
            if r["system"] == "raw" and r["workload"] == "ib_read_lat"}
    if not read:
        return {}
    out = {}
    fabric = {r["system"] for r in records if r["system"] == "nvmeof" or
              (r["system"].startswith("rswap-") and r["system"] not in NOT_COMPARED)}
    for s in sorted(fabric):
        p50 = {rep: v.get("fault_rand_p50_us") for rep, v in per_rep(records, s).items()}
        ratios = [p50[r] / read[r] for r in sorted(set(p50) & set(read)) if p50[r] and read[r]]
        if ratios:
            out[s] = {"ratios": ratios, "median": statistics.median(ratios),
                      "ci95": list(bootstrap_ci(ratios))}
    return out


# ---- Markdown ---------------------------------------------------------------

def _num(v):
    return "–" if v is None else (f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}")


def markdown(verdicts, label):
    L = []
    for pair, rs in verdicts.get("pairs", {}).items():
        a, b = pair.split("/")
        L.append(f"## Verdict: {label(a)} against {label(b)}\n")
        L.append(f"Ratio {a} / {b} within each repetition (both measured in the same "
                 f"repetition, in turn); the median of those ratios with a bootstrap 95% "
                 f"interval ({verdicts['method']['interval']}). A row is **faster** or **slower** "
                 f"only when the interval excludes 1.0, and only with ≥ {MIN_REPS} repetitions. "
                 f"Lower is better for latencies, times and CPU; higher for rates and request sizes.\n")
        L.append(f"| row | {a} median | {b} median | paired ratio (95% CI) | verdict | ratios by repetition |")
        L.append("|---|---|---|---|---|---|")
        for e in rs:
            ci = "–" if not e["ci95"] else f"{e['median']:.2f}× ({e['ci95'][0]:.2f}–{e['ci95'][1]:.2f})"
            am = statistics.median(e["a_values"]) if e["a_values"] else None
            bm = statistics.median(e["b_values"]) if e["b_values"] else None
            v = e["verdict"]
            v = f"**{v}**" if v in ("faster", "slower", "less CPU", "more CPU") else v
            L.append(f"| {e['title']} | {_num(am)} | {_num(bm)} | {ci} | {v} | "
                     + " ".join(f"{x:.2f}" for x in e["ratios"]) + " |")
        L.append("")
    return L


def markdown_raw(dist, label):
    if not dist:
        return []
    L = ["## Distance from the raw READ\n",
         "Random fault p50 over `ib_read_lat` typical (4 KiB) of the same repetition; median "
         "of the per-repetition ratios with a bootstrap 95% interval.\n",
         "| system | fault p50 / ib_read_lat (95% CI) |", "|---|---|"]
    for s, d in dist.items():
        L.append(f"| {label(s)} | {d['median']:.2f}× ({d['ci95'][0]:.2f}–{d['ci95'][1]:.2f}) |")
    L.append("")
    return L
