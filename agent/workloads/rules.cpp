#include "workloads/rules.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <map>

namespace tierd::workloads {
namespace {

constexpr int64_t kPidMaxLimit = 4194304;  // PID_MAX_LIMIT on 64-bit kernels

int lineOf(const toml::node& node) {
  return static_cast<int>(node.source().begin.line);
}

// "tierd.toml:7: workloads[1].comm: bad regex ..."
class Reporter {
 public:
  Reporter(std::string_view source, size_t index) : source_(source), index_(index) {}
  std::unexpected<tier::Error> operator()(const toml::node& at, std::string_view key,
                                          std::string_view what) const {
    std::string field = fmt::format("workloads[{}]", index_);
    if (!key.empty()) field += fmt::format(".{}", key);
    return tier::fail(EINVAL, fmt::format("{}:{}: {}: {}", source_, lineOf(at), field, what));
  }

 private:
  std::string_view source_;
  size_t index_;
};

// Checks and normalizes a cgroup v2 path; the error says what is wrong.
std::optional<std::string> normalizeCgroup(std::string_view path, std::string& why) {
  if (!path.starts_with('/')) {
    why = "must be an absolute cgroup v2 path like \"/system.slice/inference.service\"";
    return std::nullopt;
  }
  while (path.size() > 1 && path.back() == '/')
    path.remove_suffix(1);
  if (path == "/") return std::string(path);
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t end = std::min(path.find('/', pos), path.size());
    std::string_view part = path.substr(pos, end - pos);
    if (part.empty() || part == "." || part == "..") {
      why = fmt::format("'{}' has an empty, '.' or '..' component", path);
      return std::nullopt;
    }
    if (part.find('\n') != std::string_view::npos) {
      why = "a cgroup name cannot hold a newline";
      return std::nullopt;
    }
    pos = end + 1;
  }
  return std::string(path);
}

tier::Result<WorkloadRule> parseRule(const toml::table& table, size_t index,
                                     std::string_view source) {
  Reporter error(source, index);
  WorkloadRule rule;
  rule.line = lineOf(table);

  // toml++ iterates keys alphabetically; report problems in file order.
  std::vector<std::pair<std::string_view, const toml::node*>> entries;
  for (const auto& [key, value] : table)
    entries.emplace_back(key.str(), &value);
  std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    const auto &pa = a.second->source().begin, &pb = b.second->source().begin;
    return pa.line != pb.line ? pa.line < pb.line : pa.column < pb.column;
  });

  bool has_name = false;
  for (const auto& [key, node] : entries) {
    const toml::node& value = *node;
    if (key == "name") {
      auto name = value.value_exact<std::string>();
      if (!name) return error(value, key, "must be a string");
      if (name->empty()) return error(value, key, "must not be empty");
      rule.name = std::move(*name);
      has_name = true;
    } else if (key == "cgroup") {
      auto path = value.value_exact<std::string>();
      if (!path) return error(value, key, "must be a string (a cgroup v2 path)");
      std::string why;
      auto normal = normalizeCgroup(*path, why);
      if (!normal) return error(value, key, why);
      rule.cgroup = std::move(*normal);
    } else if (key == "pids") {
      const toml::array* pids = value.as_array();
      if (!pids) return error(value, key, "must be an array of process ids");
      if (pids->empty()) return error(value, key, "must not be empty");
      for (size_t i = 0; i < pids->size(); ++i) {
        const toml::node& item = *pids->get(i);
        std::string item_key = fmt::format("pids[{}]", i);
        auto pid = item.value_exact<int64_t>();
        if (!pid || *pid < 1 || *pid > kPidMaxLimit)
          return error(item, item_key,
                       fmt::format("must be a process id from 1 to {}", kPidMaxLimit));
        if (std::find(rule.pids.begin(), rule.pids.end(), *pid) != rule.pids.end())
          return error(item, item_key, fmt::format("pid {} is listed twice", *pid));
        rule.pids.push_back(static_cast<pid_t>(*pid));
      }
      std::sort(rule.pids.begin(), rule.pids.end());
    } else if (key == "comm" || key == "exe") {
      auto text = value.value_exact<std::string>();
      if (!text) return error(value, key, "must be a string (a regex)");
      auto pattern = compilePattern(*text);
      if (!pattern) return error(value, key, pattern.error().context);
      (key == "comm" ? rule.comm : rule.exe) = std::move(*pattern);
    } else {
      return error(value, key, "unknown key (known: name, cgroup, pids, comm, exe)");
    }
  }
  if (!has_name) return error(table, "name", "required");
  if (!rule.cgroup && rule.pids.empty() && !rule.comm && !rule.exe)
    return error(
        table, "",
        fmt::format("rule '{}' has no selector: give cgroup, pids, comm or exe", rule.name));
  return rule;
}

}  // namespace

bool Pattern::fullMatch(std::string_view subject) const {
  try {
    return std::regex_match(subject.begin(), subject.end(), regex);
  } catch (const std::regex_error&) {  // error_complexity, error_stack
    return false;
  }
}

tier::Result<Pattern> compilePattern(std::string_view text) {
  if (text.empty()) return tier::fail(EINVAL, "empty regex");
  try {
    return Pattern{std::string(text), std::regex(text.begin(), text.end(), std::regex::ECMAScript)};
  } catch (const std::regex_error& bad) {
    return tier::fail(EINVAL, fmt::format("bad regex '{}': {}", text, bad.what()));
  }
}

tier::Result<std::vector<WorkloadRule>> parseWorkloadRules(const toml::table& root,
                                                           std::string_view source) {
  std::vector<WorkloadRule> rules;
  const toml::node* node = root.get("workloads");
  if (!node) return rules;
  const toml::array* array = node->as_array();
  if (!array)
    return tier::fail(EINVAL, fmt::format("{}:{}: workloads: must be an array of tables: write "
                                          "[[workloads]]",
                                          source, lineOf(*node)));
  std::map<std::string, std::pair<size_t, int>, std::less<>> names;  // -> index, line
  for (size_t i = 0; i < array->size(); ++i) {
    const toml::node& item = *array->get(i);
    const toml::table* table = item.as_table();
    if (!table) return Reporter(source, i)(item, "", "must be a table");
    auto rule = parseRule(*table, i, source);
    if (!rule) return std::unexpected(rule.error());
    auto [it, fresh] = names.emplace(rule->name, std::pair{i, rule->line});
    if (!fresh) {
      const toml::node* name = table->get("name");
      return Reporter(source, i)(*name, "name",
                                 fmt::format("duplicate name '{}' (also workloads[{}], line {})",
                                             rule->name, it->second.first, it->second.second));
    }
    rules.push_back(std::move(*rule));
  }
  return rules;
}

bool cgroupContains(std::string_view ancestor, std::string_view path) {
  if (ancestor.empty() || path.empty()) return false;
  if (ancestor == "/") return path.starts_with('/');
  if (!path.starts_with(ancestor)) return false;
  return path.size() == ancestor.size() || path[ancestor.size()] == '/';
}

bool matches(const WorkloadRule& rule, const ProcessInfo& process) {
  if (process.kernel_thread) return false;
  if (!rule.pids.empty() &&
      !std::binary_search(rule.pids.begin(), rule.pids.end(), process.key.pid))
    return false;
  if (rule.comm && !rule.comm->fullMatch(process.comm)) return false;
  if (rule.cgroup && !cgroupContains(*rule.cgroup, process.cgroup)) return false;
  if (rule.exe && (process.exe.empty() || !rule.exe->fullMatch(process.exe))) return false;
  return true;
}

}  // namespace tierd::workloads
