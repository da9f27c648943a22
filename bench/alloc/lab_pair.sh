#!/bin/sh
# The pair fast path with two real tiers, which a one-node host cannot show:
# run inside the lab's guest (far preset), from the repository's root:
#   tools/lab/lab run --preset far -- bench/alloc/lab_pair.sh [BUILD_DIR]
# TCG runs everything 15-30x slower than the host and hides the nodes' speed
# difference: compare the allocators with each other, within one run only.
# Each line: allocator, size, then alloc_bench's own line; 3 round-robin repeats.
build=${1:-build-alloc}
bench=$build/bench/alloc/alloc_bench
shim=$build/libtier/preload/libtier-preload.so
lib=/usr/lib/x86_64-linux-gnu
fsdax=$(mktemp -d)
memtier2="KIND:DRAM,RATIO:1;KIND:FS_DAX,PATH:$fsdax,PMEM_SIZE_LIMIT:1G,RATIO:3;POLICY:STATIC_RATIO"
for repeat in 1 2 3; do
  for size in 64 1024 4096; do
    echo "mimalloc $size $(LD_PRELOAD=$lib/libmimalloc.so.2 "$bench" pair $size 1)"
    echo "tierd-1 $size $(LD_PRELOAD=$shim "$bench" pair $size 1)"
    echo "tierd-2 $size $(LD_PRELOAD=$shim LIBTIER_RATIO=fast:1,far:3 "$bench" pair $size 1)"
    echo "memtier-2 $size $(LD_PRELOAD=$lib/libmemtier.so.0 MEMKIND_MEM_TIERS=$memtier2 "$bench" pair $size 1)"
  done
done
# Where tierd-2's blocks went (the debug line at exit).
LD_PRELOAD=$shim LIBTIER_RATIO=fast:1,far:3 LIBTIER_DEBUG=1 "$bench" pair 64 1 >/dev/null
rm -rf "$fsdax"
