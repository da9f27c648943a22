// tierd's configuration: /etc/tierd/tierd.toml plus /etc/tierd/conf.d/*.toml
// drop-ins (in name order; a drop-in overrides the keys it sets and appends
// [[workloads]]). Every error names file, line and key; all of them are
// reported at once, so `tierd --check-config` lists every mistake.
#pragma once

#include <chrono>
#include <expected>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "config/topology_config.h"
#include "kernel_tiering/options.h"
#include "workloads/rules.h"

namespace tierd::config {

// How tierd behaves next to the kernel's own tiering and other managers.
enum class Mode {
  Observe,   // report only: never moves a page, never touches a kernel knob
  Coexist,   // moves pages on request and by policy, leaves kernel knobs alone
  Takeover,  // also turns the kernel's competing machinery off while it runs
  Kernel,    // configures the kernel's own tiering ([kernel]) and reports what it does; moves no
             // pages itself
};
std::string_view modeName(Mode mode);

struct MigrationConfig {
  double rate_limit_mbps = 128;  // MiB/s for all moves together; 0 = unlimited
  double burst_mb = 8;
  int batch_pages = 512;
  double min_free_mb = 64;  // headroom kept free on every target node
  double min_free_percent = 2;
  double pingpong_window_s = 60;
};

// [policy]: tierd's own tiering loop (agent/policy). Runs in coexist and
// takeover modes for the processes [[workloads]] selects.
struct PolicyConfig {
  bool enabled = true;
  std::string sampler = "auto";              // auto, pebs, ibs, hint_faults, damon, soft_dirty
  std::chrono::milliseconds interval{2000};  // between plans (stretched under the CPU budget)
  std::chrono::milliseconds sample_interval{250};  // between sampler polls
  double cpu_budget_percent = 3;                   // of one core, the whole agent (SamplingShare)
  double low_watermark_percent = 1;                // of the fast tier: demote cold pages below it
  double benefit_margin = 2.0;
  double cold_divisor = 4;
  double fast_half_life_s = 5;
  double slow_half_life_s = 20;
  double heat_map_percent = 0.1;  // of all tiers' memory, for the heat map
  bool operator==(const PolicyConfig&) const = default;
};

struct AgentConfig {
  Mode mode = Mode::Coexist;
  std::chrono::milliseconds interval{1000};
  bool dry_run = false;
  // tierd's own memory on the next tier down, off the fast tier it manages.
  bool own_memory_on_slower_tier = true;
  MigrationConfig migration;
  PolicyConfig policy;
  std::string socket_path = "/run/tierd/tierd.sock";
  int max_connections = 16;
  std::string metrics_listen = "127.0.0.1:9464";  // "" turns the HTTP listener off
  std::string textfile_dir;                       // "" turns the textfile writer off
  std::chrono::seconds textfile_interval{15};
  tier::TopologyOptions topology;
  kernel_tiering::KernelTieringOptions kernel;  // [kernel], applied in mode "kernel"
  std::vector<workloads::WorkloadRule> workloads;
  toml::table document;              // the merged document, for `config show`
  std::vector<std::string> sources;  // files read, in order
};

using Errors = std::vector<std::string>;

// Reads `path` and the *.toml files of conf.d/ beside it. A missing main
// file is an error only when `required` (an explicit --config).
std::expected<AgentConfig, Errors> loadConfig(const std::string& path, bool required);
// The same from text (tests): each pair is (source name, TOML text).
std::expected<AgentConfig, Errors> parseConfig(
    const std::vector<std::pair<std::string, std::string>>& files);

}  // namespace tierd::config
