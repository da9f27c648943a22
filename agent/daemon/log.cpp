#include "daemon/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace tierd {
namespace {

std::atomic<int> threshold{static_cast<int>(Priority::Info)};
std::mutex write_mutex;

}  // namespace

void setLogThreshold(Priority most_verbose) {
  threshold = static_cast<int>(most_verbose);
}

bool logs(Priority priority) {
  return static_cast<int>(priority) <= threshold.load();
}

void logLine(Priority priority, std::string_view message) {
  if (!logs(priority)) return;
  std::lock_guard lock(write_mutex);  // one line stays one line across threads
  fmt::print(stderr, "<{}>{}\n", static_cast<int>(priority), message);
  std::fflush(stderr);
}

}  // namespace tierd
