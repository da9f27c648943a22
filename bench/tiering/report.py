#!/usr/bin/python3
"""The tiering evaluation's report: reads the run folders bench/tiering/run.sh
filled (one per workload and policy: samples.jsonl, run.json, setup.txt),
prints the table and the acceptance checks, and optionally writes the
markdown page and the plot (ratio to the oracle over time, one line per
policy, one panel per workload).

  report.py OUT_DIR [--markdown FILE] [--png FILE] [--started UTC] [--command CMD]
"""
import argparse
import json
import os
import platform
import sys

WORKLOADS = ["zipf", "gups", "shift"]
POLICIES = ["none", "nb", "damos", "tierd"]
POLICY_NAMES = {
    "none": "none (first touch, far)",
    "nb": "kernel NUMA balancing (mode 2)",
    "damos": "kernel DAMOS migrate_hot/cold",
    "tierd": "tierd",
}
COLORS = {"none": "tab:gray", "nb": "tab:blue", "damos": "tab:orange", "tierd": "tab:green"}
WORKLOAD_NAMES = {
    "zipf": "Zipf(0.99) lookups, scattered rows",
    "gups": "GUPS: 90% of updates to 1/8 of the table",
    "shift": "hot window (1/8) that jumps at mid-run",
}


def load_run(folder):
    """One run's samples, config, summary and costs; None when it did not finish."""
    samples, config, summary = [], None, None
    try:
        with open(os.path.join(folder, "samples.jsonl")) as lines:
            for line in lines:
                record = json.loads(line)
                if "config" in record:
                    config = record["config"]
                elif "summary" in record:
                    summary = record["summary"]
                else:
                    samples.append(record)
        with open(os.path.join(folder, "run.json")) as costs:
            run = json.load(costs)
    except (OSError, json.JSONDecodeError) as error:
        print(f"report: {folder}: {error}", file=sys.stderr)
        return None
    if config is None or summary is None:
        print(f"report: {folder}: the workload did not finish", file=sys.stderr)
        return None
    setup = ""
    try:
        with open(os.path.join(folder, "setup.txt")) as text:
            setup = text.read()
    except OSError:
        pass
    return {"samples": samples, "config": config, "summary": summary, "run": run, "setup": setup}


def seconds(value):
    return "never" if value is None else f"{value:.0f}"


def row(workload, policy, r):
    s, run = r["summary"], r["run"]
    moves = s["moves"]
    trips = f"{100.0 * s['round_trips'] / moves:.2f}" if moves else "-"
    cpu = run["mover_cpu_s"]
    cpu_text = "-" if policy in ("none", "nb") else f"{cpu:.1f} ({100.0 * cpu / run['wall_s']:.1f}%)"
    vm = run["vmstat"]
    if policy == "nb":
        note = f"hint faults {vm['numa_hint_faults']}, promoted {vm['pgpromote_success']}, " \
               f"demoted {vm['pgdemote_kswapd'] + vm['pgdemote_direct']}"
    elif policy == "damos" and run.get("damos_stats"):
        st = run["damos_stats"]
        note = "applied MiB: hot {:.0f}, cold {:.0f}".format(
            st["migrate_hot"]["sz_applied"] / 2**20, st["migrate_cold"]["sz_applied"] / 2**20)
    elif policy == "tierd" and run.get("tierd_policy_section") is False:
        note = "no [policy] section (tierd rejected it)"
    else:
        note = ""
    return [workload, POLICY_NAMES[policy], f"{s['steady_ratio']:.3f}", seconds(s["seconds_to_90"]),
            seconds(s["recovery_s"]) if workload == "shift" else "-", str(vm["pgmigrate_success"]),
            str(moves), trips, cpu_text, note]


HEADER = ["workload", "policy", "steady ratio", "s to 90%", "recovery s", "pages migrated",
          "moves seen", "round trips %", "mover CPU s (% core)", "kernel counters"]


def text_table(rows):
    widths = [max(len(r[i]) for r in [HEADER] + rows) for i in range(len(HEADER))]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(HEADER), line(["-" * w for w in widths])] + [line(r) for r in rows])


def markdown_table(rows):
    out = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def acceptance(runs):
    """The issue's acceptance criteria, each with its verdict."""
    checks = []
    def get(workload, policy):
        return runs.get((workload, policy))
    zipf = get("zipf", "tierd")
    if zipf:
        ratio = zipf["summary"]["steady_ratio"]
        checks.append((f"tierd steady ratio on zipf >= 0.9 (is {ratio:.3f})", ratio >= 0.9))
    for workload, key, what in [("zipf", "seconds_to_90", "time to 90%"),
                                ("gups", "seconds_to_90", "time to 90%"),
                                ("shift", "recovery_s", "recovery after the shift")]:
        ours = get(workload, "tierd")
        if not ours:
            continue
        mine = ours["summary"][key]
        for kernel in ("nb", "damos"):
            theirs = get(workload, kernel)
            if not theirs:
                continue
            other = theirs["summary"][key]
            ok = mine is not None and (other is None or mine < other)
            checks.append((f"{workload}: tierd {what} {seconds(mine)} s < {kernel}'s {seconds(other)} s", ok))
    for workload in WORKLOADS:
        ours = get(workload, "tierd")
        if not ours:
            continue
        run = ours["run"]
        share = 100.0 * run["mover_cpu_s"] / run["wall_s"]
        checks.append((f"{workload}: tierd CPU {share:.2f}% of one core <= 3%", share <= 3.0))
        moves, trips = ours["summary"]["moves"], ours["summary"]["round_trips"]
        pct = 100.0 * trips / moves if moves else 0.0
        checks.append((f"{workload}: tierd round trips {pct:.2f}% of its moves < 1% ({moves} moves)",
                       moves > 0 and pct < 1.0))
    return checks


def plot(runs, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    present = [w for w in WORKLOADS if any((w, p) in runs for p in POLICIES)]
    fig, axes = plt.subplots(len(present), 1, figsize=(9, 3.2 * len(present)), squeeze=False)
    for ax, workload in zip(axes[:, 0], present):
        for policy in POLICIES:
            r = runs.get((workload, policy))
            if not r:
                continue
            ax.plot([s["t"] for s in r["samples"]], [s["ratio"] for s in r["samples"]],
                    label=POLICY_NAMES[policy], color=COLORS[policy], linewidth=1.4)
            shift = r["config"].get("shift_at")
        if workload == "shift" and shift is not None:
            ax.axvline(shift, color="grey", linestyle="--", linewidth=1)
            ax.text(shift, 1.05, " hot set moves", color="grey", fontsize=8, va="center")
        ax.axhline(0.9, color="grey", linestyle=":", linewidth=0.8)
        ax.set_ylim(0, 1.12)
        ax.set_ylabel("fast-tier share / oracle")
        ax.set_title(WORKLOAD_NAMES[workload], fontsize=10)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("seconds")
    axes[0, 0].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def markdown(runs, rows, checks, args):
    any_run = next(iter(runs.values()))
    cfg = any_run["config"]
    pages = cfg["table_pages"]
    lines = [
        "# Tiering evaluation",
        "",
        "Made by `bench/tiering/run.sh` (issue 4, item 4); the numbers below are one run's, "
        "regenerate them with the command.",
        "",
        f"- **Date:** {args.started or 'unknown'} (UTC)",
        f"- **Command:** `{args.command}` (on a fresh clone, `bench/tiering/run.sh` alone: it builds "
        f"into `build/` first); source tree `{args.revision}`",
        f"- **Machine:** the lab's `far` preset (QEMU TCG, 2 vCPUs without ERMS/FSRM (docs/lab.md), Debian 6.12 guest kernel; node 0 "
        f"DRAM with the CPUs, node {any_run['run']['far_node']} CPU-less far memory) on a "
        f"{os.cpu_count()}-core {platform.machine()} host shared with other work. Both tiers run at the "
        "same speed in the lab, so the measure is placement, not throughput.",
        f"- **Table:** {pages} pages of 4 KiB ({pages * 4 // 1024} MiB, THP off), first touched on the "
        f"far node; the fast node holds about {cfg['capacity_pages']} more pages "
        f"({cfg['capacity_pages'] * 4 // 1024} MiB) above its min watermark; {cfg['seconds']:.0f} s per "
        f"run; every mover gets {any_run['run']['rate_mbps']} MiB/s. The oracle's share (the top-K "
        "pages' mass) is " + ", ".join(
            f"{w} {r['config']['oracle']:.3f}" for w in WORKLOADS
            for r in [next((runs[(w, p)] for p in POLICIES if (w, p) in runs), None)] if r) + ".",
        "",
        "![fast-tier share over time](tiering-eval.png)",
        "",
        "## Results",
        "",
        markdown_table(rows),
        "",
        "- **steady ratio:** the fast-tier access share divided by the oracle's, mean of the last third "
        "of the run (for `shift`, of the last third after the shift).",
        "- **s to 90%:** the first second from which the ratio stays at or above 0.9 for 5 s; "
        "**recovery:** the same, counted from the shift.",
        "- **pages migrated:** `pgmigrate_success` in `/proc/vmstat` over the run (every mover, same "
        "source); **moves seen:** pages whose tier changed between two read-backs; **round trips:** "
        "moves that undid the page's previous move within 60 s.",
        "- **mover CPU:** utime + stime from `/proc/PID/stat` of tierd or of the two kdamonds, over the "
        "run, and as a share of one core. NUMA balancing works in the workload's own page faults "
        "and kswapd, so it has no process to measure: see its counters.",
        "",
        "## Acceptance (issue 4)",
        "",
    ]
    lines += [f"- [{'x' if ok else ' '}] {text}" for text, ok in checks]
    lines += [
        "",
        "## Method",
        "",
        "- **Workload** (`bench/tiering/workload.cpp`): one 4 KiB row per page; each lookup reads one "
        "cache line of a row (`gups` adds to it). `zipf`: rank to page through a seeded random "
        "permutation, so hot rows are scattered. `gups`: 90% of updates uniform over a contiguous "
        "1/8 of the table, 10% uniform over all of it. `shift`: all lookups uniform over a 1/8 "
        "window that jumps to a disjoint place at mid-run.",
        "- **Measure:** a thread of the workload reads every table page's node with "
        "`move_pages(pid 0, nodes NULL)` once a second. Share = sum of p(page) over pages on a node "
        "with CPUs; oracle = the sum of the K largest p, K = the fast node's free pages less its "
        "zones' min watermarks (where migrations into it start failing with ENOMEM), measured "
        "before the table exists. tierd stops halfway between the low and high watermarks instead "
        "(below low kswapd reclaims, and below min every move reclaims in the mover's own time), "
        "which here leaves it about 3300 pages (13 MiB) fewer than K; `fast_free.txt` in each "
        "run's folder logs the fast node's free memory beside its watermarks, and "
        "`agent.own_memory_on_slower_tier` keeps tierd's own 20 MiB off the fast node.",
        "- **Constrained fast tier:** a hugetlb pool on the fast node (2 MiB pages in "
        "`nodeN/hugepages/hugepages-2048kB/nr_hugepages`) leaves it table/4 free above the min "
        "watermark. Unlike locked anonymous memory the pool is on no LRU list, so no mover "
        "(DAMOS migrate_cold and NUMA balancing included) can demote it to make room.",
        "- **One guest boot per run**, page cache dropped before the ballast.",
        "- **Kernel modes as documented for this kernel (6.12):** NUMA balancing mode 2 promotes on "
        "hint faults up to `numa_balancing_promote_rate_limit_MBps` and demotes through reclaim "
        "(`demotion_enabled`). DAMOS runs one paddr kdamond per node as a user of damo would "
        "(the HMSDK layout): `migrate_cold` on the fast node, `migrate_hot` on the far node, each with a "
        "byte quota equal to the others' budget and a `young` page filter. The quota goals that let "
        "damo's `mem_tier.sh` aim at a fast-node fill level (`node_mem_used_bp`, `node_mem_free_bp`) "
        "arrived in 6.16, and DAMOS watermarks measure free memory system-wide, not per node, so "
        "here the cold scheme demotes whatever stays idle for 1 s and the watermarks are off.",
        "",
        "## Policy setups (exactly what the harness wrote)",
        "",
    ]
    for policy in POLICIES:
        r = next((runs[(w, policy)] for w in WORKLOADS if (w, policy) in runs), None)
        if not r:
            continue
        lines += [f"### {POLICY_NAMES[policy]}", "", "```", r["setup"].rstrip(), "```", ""]
    return "\n".join(lines) + "\n"


def git_revision():
    import subprocess
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                              text=True, check=True, cwd=os.path.dirname(os.path.abspath(__file__))
                              ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--markdown")
    parser.add_argument("--png")
    parser.add_argument("--started", default="")
    parser.add_argument("--command", default="bench/tiering/run.sh")
    parser.add_argument("--revision", default="",
                        help="the source tree the binaries came from (default: git describe now)")
    args = parser.parse_args()
    if not args.revision:
        args.revision = git_revision()

    runs = {}
    for workload in WORKLOADS:
        for policy in POLICIES:
            folder = os.path.join(args.out, f"{workload}-{policy}")
            if os.path.isdir(folder):
                r = load_run(folder)
                if r:
                    runs[(workload, policy)] = r
    if not runs:
        print(f"report: no finished run under {args.out}", file=sys.stderr)
        return 1
    rows = [row(w, p, runs[(w, p)]) for w in WORKLOADS for p in POLICIES if (w, p) in runs]
    checks = acceptance(runs)
    print(text_table(rows))
    print()
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    if args.png:
        plot(runs, args.png)
        print(f"plot: {args.png}", file=sys.stderr)
    if args.markdown:
        with open(args.markdown, "w") as page:
            page.write(markdown(runs, rows, checks, args))
        print(f"report: {args.markdown}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
