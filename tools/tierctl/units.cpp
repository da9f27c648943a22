#include "units.h"

#include <fmt/format.h>

#include <array>

namespace tierctl {
namespace {

std::string scaled(uint64_t bytes, double base, const std::array<const char*, 5>& names) {
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= base && unit + 1 < names.size())
    value /= base, ++unit;
  return fmt::format("{:.2f} {}", value, names[unit]);
}

}  // namespace

std::string shortSize(uint64_t bytes) {
  return scaled(bytes, 1024.0, {"B", "KiB", "MiB", "GiB", "TiB"});
}

std::string humanSize(uint64_t bytes) {
  return fmt::format("{} ({})", shortSize(bytes),
                     scaled(bytes, 1000.0, {"B", "kB", "MB", "GB", "TB"}));
}

std::string hex(uint64_t value) {
  return fmt::format("{:#x}", value);
}

}  // namespace tierctl
