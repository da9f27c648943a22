// Number formatting shared by tierctl's views: raw integers for scripts,
// ndctl's "-u" strings for people.
#pragma once

#include <cstdint>
#include <string>

namespace tierctl {

// "256.00 MiB (268.44 MB)", as `cxl list -u` prints sizes.
std::string humanSize(uint64_t bytes);
// "1.00 GiB" alone, for tables.
std::string shortSize(uint64_t bytes);
std::string hex(uint64_t value);

}  // namespace tierctl
