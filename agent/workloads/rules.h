// Which processes tierd manages: the [[workloads]] rules of tierd.toml.
//
//   [[workloads]]
//   name = "inference"                           # required, unique
//   cgroup = "/system.slice/inference.service"   # this cgroup v2 path and its descendants
//   pids = [1234, 5678]                          # any of these pids
//   comm = "python3?"                            # ECMAScript regex, full match on the comm
//   exe = "/opt/llm/bin/.*"                      # ECMAScript regex, full match on the exe path
//
// A rule needs at least one selector; its selectors are ANDed, and a process
// is selected by the first rule (in file order) that it matches.
#pragma once

#include <sys/types.h>

#include <toml++/toml.h>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "workloads/process.h"

namespace tierd::workloads {

// A regex with the text it was compiled from (for `config show` and messages).
// std::regex (libstdc++) backtracks: a nested quantifier such as "(a+)+b" takes
// time exponential in the subject's length (seconds on a 15-character comm),
// so keep patterns plain ("python3?", "/opt/llm/bin/.*").
struct Pattern {
  std::string text;
  std::regex regex;

  // Whole-string match. A pattern that overwhelms std::regex matches nothing.
  bool fullMatch(std::string_view subject) const;
};

// Fails with EINVAL naming the pattern and std::regex's complaint.
tier::Result<Pattern> compilePattern(std::string_view text);

struct WorkloadRule {
  std::string name;
  std::optional<std::string> cgroup;  // absolute, normalized: "/a/b", or "/" for the root
  std::vector<pid_t> pids;            // sorted, unique; empty: any pid
  std::optional<Pattern> comm;
  std::optional<Pattern> exe;
  int line = 0;  // of the rule's [[workloads]] header, 0 when not from a file
};

// Reads the `workloads` array of tables (absent: no rules). `source` names
// the file in errors, which read "<source>:<line>: workloads[<i>].<key>:
// <what>", with i counted from 0.
tier::Result<std::vector<WorkloadRule>> parseWorkloadRules(const toml::table& root,
                                                           std::string_view source);

// True when `path` is the cgroup `ancestor` or lies below it (by whole path
// components: "/a/bc" is not below "/a/b").
bool cgroupContains(std::string_view ancestor, std::string_view path);

// Every selector of `rule` holds for `process`. Kernel threads never match;
// an exe rule never matches a process whose exe could not be read.
bool matches(const WorkloadRule& rule, const ProcessInfo& process);

}  // namespace tierd::workloads
