// The agent's log: one line per event on stderr, with a syslog priority
// prefix ("<3>") that journald turns into the entry's priority.
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace tierd {

enum class Priority { Err = 3, Warning = 4, Notice = 5, Info = 6, Debug = 7 };

void setLogThreshold(Priority most_verbose);
bool logs(Priority priority);  // false when lines of this priority are dropped
void logLine(Priority priority, std::string_view message);

template <typename... Args>
void log(Priority priority, fmt::format_string<Args...> format, Args&&... args) {
  logLine(priority, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace tierd
