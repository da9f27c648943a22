// DAMON's sysfs text formats. Text in, values out: no filesystem access, so
// everything here is unit-tested on strings.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "sampling/sample.h"

namespace tierd::sampling::damon {

// contexts/<N>/avail_operations: "vaddr fvaddr paddr\n" (space separated).
struct AvailableOperations {
  bool vaddr = false, fvaddr = false, paddr = false;
  std::vector<std::string> names;  // as listed, unknown ones included
};
tier::Result<AvailableOperations> parseAvailableOperations(std::string_view text);

// kdamonds/<N>/state reads "on" or "off".
tier::Result<bool> parseKdamondState(std::string_view text);

// The four files of one schemes/<N>/tried_regions/<I>/ directory, as read.
struct TriedRegionText {
  uint64_t index = 0;  // the directory's number
  std::string start, end, nr_accesses, age;
};

// One region; pid and max_accesses are the caller's (the files carry neither).
tier::Result<RegionSample> parseTriedRegion(const TriedRegionText& text, pid_t pid,
                                            uint32_t max_accesses);

// The region directories in a tried_regions/ listing, in numeric order. Other
// entries (total_bytes, and whatever newer kernels add) are skipped. The kernel
// numbers regions across all schemes of a context, so a scheme's list need not
// start at 0.
std::vector<uint64_t> triedRegionIndices(std::span<const std::string> listing);

// With one scheme for several vaddr targets (kernels without the DAMOS
// "target" filter), the tried regions of all targets come one target after
// the other, each target's in ascending address order. Splits them where the
// address goes back and gives the i-th run to pids[i]. Fails (EPROTO) when the
// number of runs differs from the number of pids: then the attribution would
// be a guess (a target without regions, or runs that happen to ascend).
tier::Result<void> attributeByAddressOrder(std::span<RegionSample> regions,
                                           std::span<const pid_t> pids);

// An address range [start, end).
struct AddressRange {
  uint64_t start = 0, end = 0;
  bool operator==(const AddressRange&) const = default;
};

// devices/system/memory/block_size_bytes is hex without "0x" ("8000000").
tier::Result<uint64_t> parseBlockSize(std::string_view text);

// "memory12" -> 12; anything else (block_size_bytes, auto_online_blocks...) fails.
tier::Result<uint64_t> parseMemoryBlockName(std::string_view name);

// Online memory blocks (their numbers, any order) -> merged physical ranges.
std::vector<AddressRange> memoryBlockRanges(std::vector<uint64_t> blocks, uint64_t block_size);

}  // namespace tierd::sampling::damon
