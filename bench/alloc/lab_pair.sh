#!/bin/sh
# The pair fast path with two real tiers, which a one-node host cannot show:
# run inside the lab's guest (far preset, 2 vCPUs for the 2-thread rows),
# from the repository's root:
#   tools/lab/lab run --preset far --smp 2 -- bench/alloc/lab_pair.sh [BUILD_DIR] [REPEATS]
# TCG runs everything 15-30x slower than the host and hides the nodes' speed
# difference: compare the allocators with each other, within one run only.
# Prints the raw lines (allocator, size, threads, alloc_bench's own line),
# then the medians over the round-robin repeats with the ratios issue 5 sets
# targets for (tierd-2 / mimalloc, memtier-2 / tierd-2) and their geomeans.
build=${1:-build-alloc}
repeats=${2:-3}
bench=$build/bench/alloc/alloc_bench
shim=$build/libtier/preload/libtier-preload.so
lib=/usr/lib/x86_64-linux-gnu
fsdax=$(mktemp -d)
raw=$(mktemp)
memtier2="KIND:DRAM,RATIO:1;KIND:FS_DAX,PATH:$fsdax,PMEM_SIZE_LIMIT:1G,RATIO:3;POLICY:STATIC_RATIO"
repeat=1
while [ "$repeat" -le "$repeats" ]; do
  for threads in 1 2; do
    for size in 16 64 256 1024 4096 16384 65536; do
      echo "mimalloc $size $threads $(LD_PRELOAD=$lib/libmimalloc.so.2 "$bench" pair $size $threads)"
      echo "tierd-1 $size $threads $(LD_PRELOAD=$shim "$bench" pair $size $threads)"
      echo "tierd-2 $size $threads $(LD_PRELOAD=$shim LIBTIER_RATIO=fast:1,far:3 "$bench" pair $size $threads)"
      echo "memtier-2 $size $threads $(LD_PRELOAD=$lib/libmemtier.so.0 MEMKIND_MEM_TIERS=$memtier2 "$bench" pair $size $threads)"
    done
  done
  repeat=$((repeat + 1))
done | tee "$raw"
echo
echo "medians, ns per pair over $repeats repeats:"
rows=$(awk '
  { for (i = 4; i <= NF; i++) if ($i ~ /^ns=/) { key = $2 " " $3; vals[$1, key] = vals[$1, key] " " substr($i, 4); keys[key] = 1 } }
  function median(s,   n, a, i, j, t) {
    n = split(s, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  END {
    for (key in keys) {
      mi = median(vals["mimalloc", key]); t1 = median(vals["tierd-1", key])
      t2 = median(vals["tierd-2", key]); mt = median(vals["memtier-2", key])
      split(key, k, " ")
      printf "%s %s %.1f %.1f %.1f %.1f %.2f %.2f\n", k[1], k[2], mi, t1, t2, mt, t2 / mi, mt / t2
    }
  }' "$raw" | sort -n -k1,1 -k2,2)
printf "%6s %7s %9s %9s %9s %10s %8s %8s\n" size threads mimalloc tierd-1 tierd-2 memtier-2 t2/mi mt2/t2
echo "$rows" | awk '{ printf "%6s %7s %9s %9s %9s %10s %8s %8s\n", $1, $2, $3, $4, $5, $6, $7, $8 }'
echo "$rows" | awk '{ n++; a += log($7); b += log($8); if (!m || $8 < m) m = $8 }
  END { if (n) printf "geomean over %d rows: tierd-2 / mimalloc %.2fx; memtier-2 / tierd-2 %.2fx (least %.2fx)\n", n, exp(a / n), exp(b / n), m }'
# Where tierd-2's blocks went (the debug line at exit).
LD_PRELOAD=$shim LIBTIER_RATIO=fast:1,far:3 LIBTIER_DEBUG=1 "$bench" pair 64 1 >/dev/null
rm -rf "$fsdax" "$raw"
