#include "metrics/process_metrics.h"

#include <array>
#include <cerrno>
#include <charconv>

#include "parse/parsers.h"

namespace tierd::metrics {

namespace {

// The next space-separated word of `text` from `pos`, or empty at the end.
std::string_view nextWord(std::string_view text, size_t& pos) {
  while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\n'))
    ++pos;
  size_t start = pos;
  while (pos < text.size() && text[pos] != ' ' && text[pos] != '\n')
    ++pos;
  return text.substr(start, pos - start);
}

tier::Result<uint64_t> parseTicks(std::string_view word, const char* field) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), value);
  if (ec != std::errc() || end != word.data() + word.size() || word.empty()) {
    return tier::fail(EINVAL, std::string("parse /proc/self/stat: bad ") + field + " \"" +
                                  std::string(word) + "\"");
  }
  return value;
}

bool isTieringCounter(std::string_view name) {
  static constexpr std::array<std::string_view, 5> kExact = {
      "pgmigrate_success", "pgmigrate_fail", "numa_pages_migrated", "numa_hint_faults",
      "numa_hint_faults_local"};
  if (name.starts_with("pgpromote_") || name.starts_with("pgdemote_")) return true;
  for (std::string_view exact : kExact) {
    if (name == exact) return true;
  }
  return false;
}

}  // namespace

tier::Result<AgentCpu> parseSelfStatCpu(std::string_view text, long clock_ticks_per_second) {
  if (clock_ticks_per_second <= 0) {
    return tier::fail(EINVAL, "parse /proc/self/stat: clock ticks per second is " +
                                  std::to_string(clock_ticks_per_second));
  }
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return tier::fail(EINVAL, "parse /proc/self/stat: no \"(comm)\" field");
  }
  // Field 3 (state) is the first word after the comm; utime and stime are
  // fields 14 and 15.
  size_t pos = close + 1;
  std::string_view utime, stime;
  for (int field = 3; field <= 15; ++field) {
    std::string_view word = nextWord(text, pos);
    if (word.empty()) {
      return tier::fail(
          EINVAL, "parse /proc/self/stat: only " + std::to_string(field - 1) + " fields, need 15");
    }
    if (field == 14) utime = word;
    if (field == 15) stime = word;
  }
  auto user = parseTicks(utime, "utime");
  if (!user) return std::unexpected(user.error());
  auto system = parseTicks(stime, "stime");
  if (!system) return std::unexpected(system.error());
  auto ticks = static_cast<double>(clock_ticks_per_second);
  return AgentCpu{static_cast<double>(*user) / ticks, static_cast<double>(*system) / ticks};
}

tier::Result<std::map<std::string, uint64_t>> kernelTieringCounters(std::string_view text) {
  auto all = tier::parseCounters(text);
  if (!all) return std::unexpected(tier::wrap(all.error(), "parse /proc/vmstat"));
  std::map<std::string, uint64_t> tiering;
  for (auto& [name, value] : *all) {
    if (isTieringCounter(name)) tiering.emplace(name, value);
  }
  return tiering;
}

void publishAgentCpu(Registry& registry, const AgentCpu& cpu) {
  // The name is a valid constant: describe cannot fail.
  (void)registry.describe(std::string(kAgentCpuFamily), Type::Counter,
                          "CPU time the tierd agent process used, in seconds, by mode.");
  registry.set(kAgentCpuFamily, {{"mode", "user"}}, cpu.user_seconds);
  registry.set(kAgentCpuFamily, {{"mode", "system"}}, cpu.system_seconds);
}

void publishKernelTieringCounters(Registry& registry,
                                  const std::map<std::string, uint64_t>& counters) {
  (void)registry.describe(std::string(kKernelVmstatFamily), Type::Counter,
                          "Kernel page promotion, demotion and NUMA balancing counters from "
                          "/proc/vmstat, by field name (pages, or faults for numa_hint_faults*).");
  for (const auto& [name, value] : counters) {
    registry.set(kKernelVmstatFamily, {{"counter", name}}, static_cast<double>(value));
  }
}

}  // namespace tierd::metrics
