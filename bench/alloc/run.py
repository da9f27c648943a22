#!/usr/bin/env python3
"""Runs alloc_bench under every allocator, round-robin, and prints the tables.

Every workload runs once per allocator per repeat, the allocators in a rotated
order each repeat, so the noise of a shared machine hits all of them alike.
Each cell is the median over the repeats (each run is itself the best of
several timed rounds after a warm-up). See bench/alloc/README.md.
"""
import argparse
import datetime
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

LIBDIR = "/usr/lib/x86_64-linux-gnu"
PAIR_SIZES = [16, 64, 256, 1024, 4096, 16384, 65536]

# The shim's policy grammar is docs/libtier.md's; both can be overridden.
TIERD_ONE_TIER = os.environ.get("ALLOC_BENCH_TIERD1", "")
TIERD_TWO_TIERS = os.environ.get("ALLOC_BENCH_TIERD2", "LIBTIER_RATIO=fast:1,far:3")


def parse_env(text):
    """'A=1 B=2' -> {'A': '1', 'B': '2'}."""
    env = {}
    for item in text.split():
        key, _, value = item.partition("=")
        env[key] = value
    return env


def allocators(shim, fsdax_dir):
    """(name, environment) of every allocator available on this host."""
    found = [("glibc", {})]
    for name, lib in [("jemalloc", "libjemalloc.so.2"), ("mimalloc", "libmimalloc.so.2")]:
        if os.path.exists(f"{LIBDIR}/{lib}"):
            found.append((name, {"LD_PRELOAD": f"{LIBDIR}/{lib}"}))
    memtier = f"{LIBDIR}/libmemtier.so.0"
    if os.path.exists(memtier):
        found.append(("memtier-1", {"LD_PRELOAD": memtier,
                                    "MEMKIND_MEM_TIERS": "KIND:DRAM,RATIO:1;POLICY:STATIC_RATIO"}))
        # No KMEM_DAX node on a one-node host: the far tier is FS_DAX on
        # tmpfs, as memkind's own tests do. ALLOC_BENCH_MEMTIER2 overrides.
        two = os.environ.get(
            "ALLOC_BENCH_MEMTIER2",
            f"KIND:DRAM,RATIO:1;KIND:FS_DAX,PATH:{fsdax_dir},PMEM_SIZE_LIMIT:4G,RATIO:3;"
            "POLICY:STATIC_RATIO")
        found.append(("memtier-2", {"LD_PRELOAD": memtier, "MEMKIND_MEM_TIERS": two}))
    if shim:
        found.append(("tierd-1", {"LD_PRELOAD": shim, **parse_env(TIERD_ONE_TIER)}))
        found.append(("tierd-2", {"LD_PRELOAD": shim, **parse_env(TIERD_TWO_TIERS)}))
    return found


def workloads(quick):
    rows = []
    for threads in (1, 2):
        for size in PAIR_SIZES:
            rows.append(("pair", f"pair {size} B, {threads}T", ["pair", str(size), str(threads)]))
    for name, threads in [("larson", 1), ("larson", 2), ("xmalloc", 2), ("cache-scratch", 1),
                          ("cache-scratch", 2), ("churn", 1), ("churn", 2)]:
        rows.append(("mt", f"{name} {threads}T", [name, str(threads)]))
    if quick:
        rows = [r for r in rows if r[2][0] != "pair" or r[2][1] in ("64", "4096")]
    return rows


LINE = re.compile(r"bench=\S+ ns=([0-9.]+) hwm_kib=(-?\d+)")


def run_once(binary, args, env):
    """(ns, hwm_kib) or an error string."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("LD_PRELOAD", "LIBTIER_",
                                                                          "MEMKIND_"))}
    full_env.update(env)
    try:
        done = subprocess.run([binary, *args], env=full_env, capture_output=True, text=True,
                              timeout=120)
    except subprocess.TimeoutExpired:
        return "timeout"
    match = LINE.search(done.stdout)
    if done.returncode != 0 or not match:
        if done.returncode < 0:
            return f"signal {-done.returncode}"
        return f"exit {done.returncode}" if done.returncode else "no output"
    return float(match.group(1)), int(match.group(2))


def cell(value, mimalloc, glibc, fmt):
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    ratios = []
    for base in (mimalloc, glibc):
        ratios.append(f"{value / base:.2f}" if isinstance(base, float) and base > 0 else "-")
    return f"{fmt(value)} ({ratios[0]}/{ratios[1]})"


def median_or_error(samples, index):
    good = [s[index] for s in samples if not isinstance(s, str)]
    if len(good) * 2 > len(samples):
        return float(statistics.median(good))
    errors = sorted({s for s in samples if isinstance(s, str)})
    return "FAIL " + ",".join(errors)


def table(title, rows, names, results, index, fmt):
    out = [f"### {title}", "",
           "| workload | " + " | ".join(names) + " |",
           "|---|" + "---|" * len(names)]
    for label in rows:
        values = {n: median_or_error(results[(label, n)], index) for n in names}
        mi, gl = values.get("mimalloc"), values.get("glibc")
        out.append(f"| {label} | " + " | ".join(cell(values[n], mi, gl, fmt) for n in names) + " |")
    return out


def geomean(values):
    values = [v for v in values if isinstance(v, float) and v > 0]
    return statistics.geometric_mean(values) if values else None


def targets(rows, names, results, base):
    """The issue's three targets, checked on the medians."""
    def med(label, name, index=0):
        return median_or_error(results.get((label, name), ["missing"]), index)

    out = ["### Targets", ""]
    pair_rows = [label for label, kind in rows if kind == "pair"]
    for shim in ("tierd-1", "tierd-2"):
        if shim not in names:
            continue
        ratios = [med(l, shim) / med(l, "mimalloc") for l in pair_rows
                  if isinstance(med(l, shim), float) and isinstance(med(l, "mimalloc"), float)]
        if ratios:
            worst = max(ratios)
            out.append(f"- fast path, {shim} / mimalloc over the pair rows: geomean "
                       f"{geomean(ratios):.2f}x, worst {worst:.2f}x (target <= 1.2x): "
                       f"{'met' if worst <= 1.2 else 'NOT met'}")
    if "tierd-2" in names and "memtier-2" in names:
        speedups = [med(l, "memtier-2") / med(l, "tierd-2") for l in pair_rows
                    if isinstance(med(l, "memtier-2"), float) and isinstance(med(l, "tierd-2"), float)]
        if speedups:
            out.append(f"- two tiers, memtier-2 / tierd-2 over the pair rows: geomean "
                       f"{geomean(speedups):.1f}x, least {min(speedups):.1f}x (target >= 4x): "
                       f"{'met' if min(speedups) >= 4 else 'NOT met'}")
    for shim in ("tierd-1", "tierd-2"):
        if shim not in names:
            continue
        threaded = [l for l, kind in rows if kind == "mt"]
        peaks = [med(l, shim, 1) / med(l, base, 1) for l in threaded
                 if isinstance(med(l, shim, 1), float) and isinstance(med(l, base, 1), float)]
        failed = len(threaded) - len(peaks)
        if peaks:
            out.append(f"- peak memory, {shim} / {base} (the base allocator) over the threaded "
                       f"workloads: worst {max(peaks):.2f}x (target <= 1.15x): "
                       f"{'met' if max(peaks) <= 1.15 else 'NOT met'}"
                       + (f"; {failed} of {len(threaded)} workloads failed and are not counted"
                          if failed else ""))
    if len(out) == 2:
        out.append("- the tierd shim was not found: build it (target tier-preload) for its columns")
    return out


def find_shim(build_dir):
    explicit = os.environ.get("ALLOC_BENCH_SHIM")
    if explicit:
        return explicit if os.path.exists(explicit) else None
    for root, _, files in os.walk(os.path.join(build_dir, "libtier")):
        if "libtier-preload.so" in files:
            return os.path.join(root, "libtier-preload.so")
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default="build")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 pair sizes, 3 repeats")
    parser.add_argument("--only", help="comma-separated allocator names")
    parser.add_argument("--base", default="jemalloc",
                        help="the allocator the shim is built on, for the peak-memory target")
    parser.add_argument("--results", help="also write the tables to this Markdown file")
    parser.add_argument("--command", default=" ".join(sys.argv), help=argparse.SUPPRESS)
    options = parser.parse_args()
    repeats = 3 if options.quick else options.repeats

    binary = os.path.join(options.build_dir, "bench/alloc/alloc_bench")
    if not os.access(binary, os.X_OK):
        sys.exit(f"run.py: {binary} not built (ninja -C {options.build_dir} alloc_bench)")
    shim = find_shim(options.build_dir)
    fsdax_dir = tempfile.mkdtemp(prefix="alloc-bench-fsdax-", dir="/dev/shm"
                                 if os.path.isdir("/dev/shm") else None)
    try:
        chosen = allocators(shim, fsdax_dir)
        if options.only:
            wanted = options.only.split(",")
            chosen = [a for a in chosen if a[0] in wanted]
        names = [name for name, _ in chosen]
        rows = workloads(options.quick)
        results = {}
        total = len(rows) * len(chosen) * repeats
        done = 0
        for repeat in range(repeats):
            for kind, label, args in rows:
                # Rotate the order each repeat: no allocator always runs first.
                shift = (repeat + len(results)) % len(chosen)
                for name, env in chosen[shift:] + chosen[:shift]:
                    results.setdefault((label, name), []).append(run_once(binary, args, env))
                    done += 1
                print(f"\r{done}/{total} runs", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
    finally:
        shutil.rmtree(fsdax_dir, ignore_errors=True)

    labels = [label for _, label, _ in rows]
    kinds = [(label, kind) for kind, label, _ in rows]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"Command: `{options.command}`, {now}; {os.cpu_count()} CPUs, "
             f"Linux {platform.release()}, load average {os.getloadavg()[0]:.1f} at the end; "
             f"median of {repeats} round-robin repeats.",
             "",
             "Allocators: " + "; ".join(
                 f"**{n}** " + (" ".join(f"`{k}={v}`" for k, v in e.items()) or "(no preload)")
                 for n, e in chosen),
             "",
             "Each cell: value (ratio to mimalloc / ratio to glibc); lower is better.",
             ""]
    lines += table("ns per operation (pair: malloc+touch+free; larson: replacement; xmalloc: "
                   "block; cache-scratch: object write; churn: replacement)",
                   labels, names, results, 0, lambda v: f"{v:.1f}")
    lines.append("")
    lines += table("peak resident set (VmHWM, MiB)", labels, names, results, 1,
                   lambda v: f"{v / 1024:.1f}")
    lines.append("")
    lines += targets(kinds, names, results, options.base)
    text = "\n".join(lines) + "\n"
    print(text)
    if options.results:
        with open(options.results, "w") as out:
            out.write("# Allocator bench results\n\n"
                      "Produced by `bench/alloc/run.sh`; see README.md for what each workload "
                      "does. Compare only within one run: the machine is shared and noisy.\n\n")
            out.write(text)


if __name__ == "__main__":
    main()
