// For lab tests and benchmarks: the first CPU-less node with memory (the
// lab's far node), found through libnuma rather than hard-coded. -1 when
// there is none (this host, CI outside the guest).
#pragma once

#include <numa.h>

namespace tier::test {

inline int farNode() {
  if (numa_available() != 0) return -1;
  for (int node = 0; node <= numa_max_node(); ++node) {
    bitmask* cpus = numa_allocate_cpumask();
    numa_node_to_cpus(node, cpus);
    bool cpu_less = numa_bitmask_weight(cpus) == 0 && numa_node_size64(node, nullptr) > 0;
    numa_free_cpumask(cpus);
    if (cpu_less) return node;
  }
  return -1;
}

}  // namespace tier::test
