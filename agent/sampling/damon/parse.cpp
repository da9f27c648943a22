#include "sampling/damon/parse.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <limits>

#include "parse/parsers.h"

namespace tierd::sampling::damon {
namespace {

tier::Result<uint64_t> decimal(std::string_view text, std::string_view what) {
  std::string_view t = tier::trim(text);
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), value, 10);
  if (t.empty() || ec != std::errc() || ptr != t.data() + t.size())
    return tier::fail(EINVAL, std::string(what) + ": not a number: '" + std::string(t) + "'");
  return value;
}

tier::Result<uint32_t> decimal32(std::string_view text, std::string_view what) {
  auto value = decimal(text, what);
  if (!value) return std::unexpected(value.error());
  if (*value > std::numeric_limits<uint32_t>::max())
    return tier::fail(ERANGE, std::string(what) + ": too large: " + std::to_string(*value));
  return static_cast<uint32_t>(*value);
}

}  // namespace

tier::Result<AvailableOperations> parseAvailableOperations(std::string_view text) {
  AvailableOperations ops;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t begin = text.find_first_not_of(" \t\n", pos);
    if (begin == std::string_view::npos) break;
    size_t end = text.find_first_of(" \t\n", begin);
    if (end == std::string_view::npos) end = text.size();
    std::string_view name = text.substr(begin, end - begin);
    ops.names.emplace_back(name);
    if (name == "vaddr") ops.vaddr = true;
    if (name == "fvaddr") ops.fvaddr = true;
    if (name == "paddr") ops.paddr = true;
    pos = end;
  }
  if (ops.names.empty()) return tier::fail(EINVAL, "avail_operations: empty");
  return ops;
}

tier::Result<bool> parseKdamondState(std::string_view text) {
  std::string_view t = tier::trim(text);
  if (t == "on") return true;
  if (t == "off") return false;
  return tier::fail(EINVAL, "kdamond state: expected on or off, got '" + std::string(t) + "'");
}

tier::Result<RegionSample> parseTriedRegion(const TriedRegionText& text, pid_t pid,
                                            uint32_t max_accesses) {
  auto where = [&](std::string_view file) {
    return "tried region " + std::to_string(text.index) + " " + std::string(file);
  };
  RegionSample region;
  region.pid = pid;
  region.max_accesses = max_accesses;
  auto start = decimal(text.start, where("start"));
  if (!start) return std::unexpected(start.error());
  auto end = decimal(text.end, where("end"));
  if (!end) return std::unexpected(end.error());
  auto accesses = decimal32(text.nr_accesses, where("nr_accesses"));
  if (!accesses) return std::unexpected(accesses.error());
  auto age = decimal32(text.age, where("age"));
  if (!age) return std::unexpected(age.error());
  if (*end <= *start)
    return tier::fail(EINVAL, where("range") + ": end " + std::to_string(*end) +
                                  " is not above start " + std::to_string(*start));
  region.start = *start;
  region.end = *end;
  region.nr_accesses = *accesses;
  region.age = *age;
  return region;
}

std::vector<uint64_t> triedRegionIndices(std::span<const std::string> listing) {
  std::vector<uint64_t> indices;
  for (const auto& name : listing) {
    uint64_t value = 0;
    auto [ptr, ec] = std::from_chars(name.data(), name.data() + name.size(), value, 10);
    if (!name.empty() && ec == std::errc() && ptr == name.data() + name.size())
      indices.push_back(value);
  }
  std::sort(indices.begin(), indices.end());
  return indices;
}

tier::Result<void> attributeByAddressOrder(std::span<RegionSample> regions,
                                           std::span<const pid_t> pids) {
  std::vector<size_t> run_of(regions.size());
  size_t runs = regions.empty() ? 0 : 1;
  for (size_t i = 0; i < regions.size(); ++i) {
    if (i > 0 && regions[i].start < regions[i - 1].end) ++runs;
    run_of[i] = runs - 1;
  }
  if (runs != pids.size())
    return tier::fail(EPROTO, "tried regions form " + std::to_string(runs) +
                                  " ascending runs for " + std::to_string(pids.size()) +
                                  " targets: cannot tell which region is whose");
  for (size_t i = 0; i < regions.size(); ++i)
    regions[i].pid = pids[run_of[i]];
  return {};
}

tier::Result<uint64_t> parseBlockSize(std::string_view text) {
  std::string_view t = tier::trim(text);
  if (t.starts_with("0x") || t.starts_with("0X")) t.remove_prefix(2);
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), value, 16);
  if (t.empty() || ec != std::errc() || ptr != t.data() + t.size() || value == 0)
    return tier::fail(EINVAL, "block_size_bytes: not a hex size: '" + std::string(t) + "'");
  return value;
}

tier::Result<uint64_t> parseMemoryBlockName(std::string_view name) {
  if (!name.starts_with("memory"))
    return tier::fail(EINVAL, "not a memory block: " + std::string(name));
  std::string_view digits = name.substr(6);
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, 10);
  if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size())
    return tier::fail(EINVAL, "not a memory block: " + std::string(name));
  return value;
}

std::vector<AddressRange> memoryBlockRanges(std::vector<uint64_t> blocks, uint64_t block_size) {
  std::sort(blocks.begin(), blocks.end());
  blocks.erase(std::unique(blocks.begin(), blocks.end()), blocks.end());
  std::vector<AddressRange> ranges;
  for (uint64_t block : blocks) {
    uint64_t start = block * block_size;
    if (!ranges.empty() && ranges.back().end == start)
      ranges.back().end += block_size;
    else
      ranges.push_back({start, start + block_size});
  }
  return ranges;
}

}  // namespace tierd::sampling::damon
