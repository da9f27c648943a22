#include "daemon/managers.h"

#include <fmt/format.h>

#include "fs/fs_writer.h"
#include "parse/parsers.h"

namespace tierd {
namespace {

constexpr std::string_view kNumaBalancing = "sys/kernel/numa_balancing";
constexpr std::string_view kKdamonds = "kernel/mm/damon/admin/kdamonds";

bool allDigits(const std::string& text) {
  return !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
}

tier::Result<void> writeKnob(const tier::FsRoot& proc, std::string_view knob, int value) {
  auto writer = tier::FsWriter::open(proc.dir());
  if (!writer) return std::unexpected(writer.error());
  return writer->write(knob, std::to_string(value));
}

}  // namespace

std::vector<std::string> OtherManagers::conflicts() const {
  std::vector<std::string> out;
  if (kernelPromotes())
    out.push_back(
        fmt::format("the kernel promotes hot pages itself (numa_balancing={})", *numa_balancing));
  for (int index : kdamonds_running)
    out.push_back(fmt::format("DAMON kdamond {} is running", index));
  for (pid_t pid : numad)
    out.push_back(fmt::format("numad runs as pid {}", pid));
  for (pid_t pid : memtierd)
    out.push_back(fmt::format("memtierd runs as pid {}", pid));
  return out;
}

OtherManagers detectOtherManagers(const tier::FsRoot& sys, const tier::FsRoot& proc) {
  OtherManagers found;
  if (auto text = proc.readFile(kNumaBalancing))
    if (auto value = tier::parseI64(*text)) found.numa_balancing = static_cast<int>(*value);
  if (auto text = sys.readFile("kernel/mm/numa/demotion_enabled"))
    if (auto value = tier::parseBool(*text)) found.demotion_enabled = *value;
  if (auto entries = sys.listDir(kKdamonds)) {
    for (const auto& name : *entries) {
      if (!allDigits(name)) continue;
      auto state = sys.readFile(fmt::format("{}/{}/state", kKdamonds, name));
      if (state && tier::trim(*state) == "on") found.kdamonds_running.push_back(std::stoi(name));
    }
  }
  if (auto pids = proc.listDir("")) {
    for (const auto& name : *pids) {
      if (!allDigits(name)) continue;
      auto comm = proc.readFile(name + "/comm");
      if (!comm) continue;  // gone already
      std::string_view command = tier::trim(*comm);
      if (command == "numad") found.numad.push_back(std::stoi(name));
      if (command == "memtierd") found.memtierd.push_back(std::stoi(name));
    }
  }
  return found;
}

tier::Result<int> disableKernelPromotion(const tier::FsRoot& proc) {
  auto text = proc.readFile(kNumaBalancing);
  if (!text) return std::unexpected(text.error());
  auto value = tier::parseI64(*text);
  if (!value) return std::unexpected(value.error());
  int old_value = static_cast<int>(*value);
  if (old_value & 2)
    if (auto ok = writeKnob(proc, kNumaBalancing, old_value & ~2); !ok)
      return std::unexpected(ok.error());
  return old_value;
}

tier::Result<void> restoreNumaBalancing(const tier::FsRoot& proc, int value) {
  return writeKnob(proc, kNumaBalancing, value);
}

}  // namespace tierd
