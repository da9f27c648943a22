#include "config/config.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

namespace tierd::config {
namespace {

namespace fs = std::filesystem;

std::string where(const toml::node& node) {
  const auto& path = node.source().path;
  return fmt::format("{}:{}", path ? *path : std::string("config"), node.source().begin.line);
}

// A drop-in overrides the keys it sets; tables merge key by key and arrays of
// tables ([[workloads]]) append.
void mergeInto(toml::table& base, const toml::table& overlay) {
  for (const auto& [key, value] : overlay) {
    toml::node* existing = base.get(key);
    if (existing && existing->is_table() && value.is_table()) {
      mergeInto(*existing->as_table(), *value.as_table());
    } else if (existing && existing->is_array_of_tables() && value.is_array_of_tables()) {
      for (const auto& item : *value.as_array())
        existing->as_array()->push_back(item);
    } else {
      base.insert_or_assign(key, value);
    }
  }
}

// Reads the keys of one section with typed setters, reporting every
// problem; unknown keys are errors so typos never pass silently.
class SectionReader {
 public:
  SectionReader(const toml::table& root, std::string section, Errors& errors)
      : section_(std::move(section)), errors_(errors) {
    const toml::node* node = root.get(section_);
    if (node && !node->is_table())
      errors_.push_back(fmt::format("{}: [{}] must be a table", where(*node), section_));
    table_ = node ? node->as_table() : nullptr;
  }
  ~SectionReader() {
    if (!table_) return;
    for (const auto& [key, value] : *table_)
      if (!known_.contains(std::string(key.str())))
        errors_.push_back(fmt::format("{}: unknown key {}.{}", where(value), section_, key.str()));
  }

  void number(const char* key, double& out, double min, double max) {
    read(key, [&](const toml::node& value) {
      std::optional<double> number = value.value<double>();
      if (value.is_boolean()) number.reset();
      if (!number || !(*number >= min && *number <= max))
        return fmt::format("must be a number from {} to {}", min, max);
      out = *number;
      return std::string();
    });
  }
  void integer(const char* key, int& out, int min, int max) {
    read(key, [&](const toml::node& value) {
      auto number = value.value_exact<int64_t>();
      if (!number || *number < min || *number > max)
        return fmt::format("must be an integer from {} to {}", min, max);
      out = static_cast<int>(*number);
      return std::string();
    });
  }
  void boolean(const char* key, bool& out) {
    read(key, [&](const toml::node& value) {
      auto flag = value.value_exact<bool>();
      if (!flag) return std::string("must be true or false");
      out = *flag;
      return std::string();
    });
  }
  void string(const char* key, std::string& out,
              std::function<std::string(const std::string&)> check = {}) {
    read(key, [&](const toml::node& value) {
      auto text = value.value_exact<std::string>();
      if (!text) return std::string("must be a string");
      if (check) {
        if (auto problem = check(*text); !problem.empty()) return problem;
      }
      out = *text;
      return std::string();
    });
  }

 private:
  void read(const char* key, const std::function<std::string(const toml::node&)>& apply) {
    known_.insert(key);
    if (!table_) return;
    const toml::node* value = table_->get(key);
    if (!value) return;
    if (auto problem = apply(*value); !problem.empty())
      errors_.push_back(fmt::format("{}: {}.{} {}", where(*value), section_, key, problem));
  }

  std::string section_;
  Errors& errors_;
  const toml::table* table_ = nullptr;
  std::set<std::string> known_;
};

std::string checkMode(const std::string& text) {
  return text == "observe" || text == "coexist" || text == "takeover" || text == "kernel"
             ? std::string()
             : "must be \"observe\", \"coexist\", \"takeover\" or \"kernel\"";
}

std::string checkMachinery(const std::string& text) {
  return kernel_tiering::machineryByName(text)
             ? std::string()
             : "must be \"numa_balancing\", \"damos\" or \"both\"";
}

std::string checkAbsolutePath(const std::string& text) {
  return text.empty() || text.front() == '/' ? std::string() : "must be an absolute path";
}

std::string checkListen(const std::string& text) {
  if (text.empty()) return {};
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    return "must be \"ADDRESS:PORT\" (e.g. \"127.0.0.1:9464\") or \"\" to turn it off";
  return {};
}

const std::set<std::string> kSections = {"agent",   "migration", "policy",    "control",
                                         "metrics", "topology",  "workloads", "kernel"};

// [kernel]: what mode "kernel" asks of the kernel's tiering machinery.
void readKernel(const toml::table& root, kernel_tiering::KernelTieringOptions& k, Errors& errors) {
  SectionReader kernel(root, "kernel", errors);
  std::string machinery(kernel_tiering::machineryName(k.machinery));
  kernel.string("machinery", machinery, checkMachinery);
  k.machinery = kernel_tiering::machineryByName(machinery).value_or(k.machinery);
  int rate = static_cast<int>(k.promote_rate_limit_mbps);
  kernel.integer("promote_rate_limit_mbps", rate, 0, 1'000'000);
  k.promote_rate_limit_mbps = static_cast<uint64_t>(rate);
  int threshold = static_cast<int>(k.hot_threshold_ms.value_or(0));
  kernel.integer("hot_threshold_ms", threshold, 1, 60'000);
  if (threshold > 0) k.hot_threshold_ms = static_cast<uint64_t>(threshold);
  kernel.boolean("demotion_enabled", k.demotion_enabled);
  // nr_accesses counts the samples of one aggregation interval that found
  // the region accessed: at most 20 with the 5 ms / 100 ms tierd sets.
  int accesses = static_cast<int>(k.damos_hot_min_accesses);
  kernel.integer("damos_hot_min_accesses", accesses, 1, 20);
  k.damos_hot_min_accesses = static_cast<uint32_t>(accesses);
  kernel.number("damos_cold_min_age_s", k.damos_cold_min_age_s, 0.1, 86'400);
  int quota_ms = static_cast<int>(k.damos_quota_ms);
  kernel.integer("damos_quota_ms", quota_ms, 1, 1'000);
  k.damos_quota_ms = static_cast<uint64_t>(quota_ms);
  kernel.number("damos_quota_mbps", k.damos_quota_mbps, 1, 1e6);
  kernel.number("damos_demote_free_percent", k.damos_demote_free_percent, 0, 100);
  kernel.number("damos_low_watermark_percent", k.damos_low_watermark_percent, 0, 100);
  const toml::node* section = root.get("kernel");
  const toml::node* low = section && section->is_table()
                              ? section->as_table()->get("damos_low_watermark_percent")
                              : nullptr;
  if (low && k.damos_low_watermark_percent > k.damos_demote_free_percent)
    errors.push_back(fmt::format(
        "{}: kernel.damos_low_watermark_percent must not exceed damos_demote_free_percent ({}): "
        "demotion would never run",
        where(*low), k.damos_demote_free_percent));
}

std::string checkSampler(const std::string& text) {
  static const std::set<std::string> kSamplers = {"auto",        "pebs",  "ibs",
                                                  "hint_faults", "damon", "soft_dirty"};
  return kSamplers.contains(text)
             ? std::string()
             : "must be \"auto\", \"pebs\", \"ibs\", \"hint_faults\", \"damon\" or \"soft_dirty\"";
}

void readPolicy(const toml::table& root, PolicyConfig& p, Errors& errors) {
  SectionReader policy(root, "policy", errors);
  policy.boolean("enabled", p.enabled);
  policy.string("sampler", p.sampler, checkSampler);
  int interval_ms = static_cast<int>(p.interval.count());
  policy.integer("interval_ms", interval_ms, 100, 600'000);
  p.interval = std::chrono::milliseconds(interval_ms);
  int sample_ms = static_cast<int>(p.sample_interval.count());
  policy.integer("sample_interval_ms", sample_ms, 10, 60'000);
  p.sample_interval = std::chrono::milliseconds(sample_ms);
  policy.number("cpu_budget_percent", p.cpu_budget_percent, 0.1, 100);
  policy.number("low_watermark_percent", p.low_watermark_percent, 0, 50);
  policy.number("benefit_margin", p.benefit_margin, 1, 100);
  policy.number("cold_divisor", p.cold_divisor, 1, 1000);
  policy.number("fast_half_life_s", p.fast_half_life_s, 0.1, 3600);
  policy.number("slow_half_life_s", p.slow_half_life_s, 0.1, 86400);
  policy.number("heat_map_percent", p.heat_map_percent, 0.001, 10);
}

void readSections(const toml::table& root, AgentConfig& config, Errors& errors) {
  for (const auto& [key, value] : root)
    if (!kSections.contains(std::string(key.str())))
      errors.push_back(fmt::format("{}: unknown section [{}]", where(value), key.str()));
  {
    SectionReader agent(root, "agent", errors);
    std::string mode = std::string(modeName(config.mode));
    agent.string("mode", mode, checkMode);
    config.mode = mode == "observe"    ? Mode::Observe
                  : mode == "takeover" ? Mode::Takeover
                  : mode == "kernel"   ? Mode::Kernel
                                       : Mode::Coexist;
    int interval_ms = static_cast<int>(config.interval.count());
    agent.integer("interval_ms", interval_ms, 100, 3'600'000);
    config.interval = std::chrono::milliseconds(interval_ms);
    agent.boolean("dry_run", config.dry_run);
    agent.boolean("own_memory_on_slower_tier", config.own_memory_on_slower_tier);
  }
  {
    SectionReader migration(root, "migration", errors);
    auto& m = config.migration;
    migration.number("rate_limit_mbps", m.rate_limit_mbps, 0, 1e6);
    migration.number("burst_mb", m.burst_mb, 0, 1e5);
    migration.integer("batch_pages", m.batch_pages, 1, 1 << 20);
    migration.number("min_free_mb", m.min_free_mb, 0, 1e9);
    migration.number("min_free_percent", m.min_free_percent, 0, 50);
    migration.number("pingpong_window_s", m.pingpong_window_s, 0, 86400);
  }
  readPolicy(root, config.policy, errors);
  readKernel(root, config.kernel, errors);
  {
    SectionReader control(root, "control", errors);
    control.string("socket", config.socket_path, [](const std::string& text) {
      return text.empty() ? "must not be empty" : checkAbsolutePath(text);
    });
    control.integer("max_connections", config.max_connections, 1, 1024);
  }
  {
    SectionReader metrics(root, "metrics", errors);
    metrics.string("listen", config.metrics_listen, checkListen);
    metrics.string("textfile_dir", config.textfile_dir, checkAbsolutePath);
    int interval_s = static_cast<int>(config.textfile_interval.count());
    metrics.integer("textfile_interval_s", interval_s, 1, 86400);
    config.textfile_interval = std::chrono::seconds(interval_s);
  }
  if (auto applied = tier::applyTopologyTable(root, config.topology); !applied)
    errors.push_back(applied.error().context);
  const auto& path = root.source().path;
  auto rules = workloads::parseWorkloadRules(root, path ? *path : std::string("config"));
  if (!rules) {
    errors.push_back(rules.error().context);
    return;
  }
  for (auto& rule : *rules) {
    bool taken = std::any_of(config.workloads.begin(), config.workloads.end(),
                             [&](const auto& other) { return other.name == rule.name; });
    if (taken)
      errors.push_back(fmt::format("{}:{}: workloads: the name \"{}\" is used twice",
                                   path ? *path : "config", rule.line, rule.name));
    else
      config.workloads.push_back(std::move(rule));
  }
}

}  // namespace

std::string_view modeName(Mode mode) {
  switch (mode) {
    case Mode::Observe:
      return "observe";
    case Mode::Coexist:
      return "coexist";
    case Mode::Takeover:
      return "takeover";
    case Mode::Kernel:
      return "kernel";
  }
  return "coexist";
}

std::expected<AgentConfig, Errors> parseConfig(
    const std::vector<std::pair<std::string, std::string>>& files) {
  AgentConfig config;
  Errors errors;
  // Each file is read onto the result in turn, so a drop-in overrides what it
  // sets, and every error keeps its own file and line (copied TOML nodes
  // lose their source).
  for (const auto& [source, text] : files) {
    try {
      toml::table document = toml::parse(text, source);
      readSections(document, config, errors);
      mergeInto(config.document, document);
      config.sources.push_back(source);
    } catch (const toml::parse_error& error) {
      errors.push_back(
          fmt::format("{}:{}: {}", source, error.source().begin.line, error.description()));
    }
  }
  if (!errors.empty()) return std::unexpected(errors);
  return config;
}

std::expected<AgentConfig, Errors> loadConfig(const std::string& path, bool required) {
  std::vector<std::pair<std::string, std::string>> files;
  auto slurp = [&](const fs::path& file) -> bool {
    std::ifstream in(file);
    if (!in) return false;
    std::stringstream text;
    text << in.rdbuf();
    files.emplace_back(file.string(), text.str());
    return true;
  };
  if (!slurp(path) && (required || fs::exists(path)))
    return std::unexpected(Errors{fmt::format("{}: cannot read: {}", path, std::strerror(errno))});
  fs::path dropins = fs::path(path).parent_path() / "conf.d";
  std::vector<fs::path> names;
  std::error_code ignored;
  for (const auto& entry : fs::directory_iterator(dropins, ignored))
    if (entry.path().extension() == ".toml") names.push_back(entry.path());
  std::sort(names.begin(), names.end());
  for (const auto& name : names)
    if (!slurp(name))
      return std::unexpected(
          Errors{fmt::format("{}: cannot read: {}", name.string(), std::strerror(errno))});
  return parseConfig(files);
}

}  // namespace tierd::config
