// The running agent: owns the configuration, the topology, the managed
// processes, the migration engine, the control socket and the metrics, and
// answers control requests (control::Handler). main.cpp drives it: tick()
// once per interval, reload() on SIGHUP, stop() on SIGTERM.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "config/config.h"
#include "control/handler.h"
#include "control/server.h"
#include "daemon/managers.h"
#include "fs/fs_root.h"
#include "kernel_tiering/kernel_tiering.h"
#include "kernel_tiering/knobs.h"
#include "metrics/http_exporter.h"
#include "metrics/registry.h"
#include "migrate/engine.h"
#include "policy/policy_loop.h"
#include "sampling/perf/access_sampler.h"
#include "topology/topology.h"
#include "workloads/watcher.h"

namespace tierd {

struct AgentOptions {
  std::string config_path = "/etc/tierd/tierd.toml";
  bool config_required = false;  // --config given: a missing file is an error
  bool dry_run = false;          // --dry-run: decide and report, move nothing
  std::string sysfs_root = "/sys";
  std::string procfs_root = "/proc";
  std::optional<std::string> socket_path;     // overrides [control] socket
  std::optional<std::string> metrics_listen;  // overrides [metrics] listen
};

// Cpus_allowed_list of /proc/PID/status; nullopt when unreadable.
std::optional<std::vector<int>> allowedCpus(const tier::FsRoot& proc, pid_t pid);

class Agent : public control::Handler {
 public:
  static tier::Result<std::unique_ptr<Agent>> create(AgentOptions options,
                                                     config::AgentConfig config);
  ~Agent() override;

  // Opens the control socket and the metrics listener and takes over kernel
  // knobs when the mode says so. The first tick follows.
  tier::Result<void> start();
  // One pass of the main loop: processes, pins, other managers, metrics.
  void tick();
  // Reads the configuration again; on error keeps the old one and says why.
  tier::Result<void> reload();
  void stop();

  std::chrono::milliseconds interval() const;
  std::string statusLine() const;  // for sd_notify STATUS=

  // control::Handler
  tier::Result<control::Json> status(const control::Caller& caller) override;
  tier::Result<control::Json> ps(const control::Caller& caller,
                                 const control::PsRequest& request) override;
  tier::Result<control::Json> migrate(const control::Caller& caller,
                                      const control::MigrateRequest& request) override;
  tier::Result<control::Json> pin(const control::Caller& caller,
                                  const control::PinRequest& request) override;
  tier::Result<control::Json> unpin(const control::Caller& caller,
                                    const control::UnpinRequest& request) override;
  tier::Result<control::Json> registerProcess(const control::Caller& caller,
                                              const control::RegisterRequest& request) override;
  tier::Result<control::Json> hint(const control::Caller& caller,
                                   const control::HintRequest& request) override;
  tier::Result<control::Json> configShow(const control::Caller& caller) override;
  tier::Result<control::Json> configReload(const control::Caller& caller) override;

 private:
  struct Pin {
    workloads::ProcessKey key;
    control::AddressRange range;
    int tier = 0;
    int node = -1;
  };

  // A process under libtier's shim, from its register request (libtier_wiring.cpp).
  struct LibtierProcess {
    workloads::ProcessKey key;
    std::string program, library;
    control::Json policy;
    std::vector<control::RegisteredTier> tiers;
  };

  Agent(AgentOptions options, config::AgentConfig config, tier::FsRoot sys, tier::FsRoot proc);
  void applyConfig();
  tier::Result<void> refreshTopology();
  void refreshNodeMemory();
  tier::Result<int> targetNode(pid_t pid, std::optional<int> node, std::optional<int> tier) const;
  tier::Result<control::Json> runMove(const control::Caller& caller, pid_t pid,
                                      std::vector<migrate::Range> ranges, int node);
  void enforcePins();
  void publishMetrics();
  void publishProcessMetrics();
  bool visibleTo(const control::Caller& caller, pid_t pid) const;
  std::map<int, uint64_t> residentBytesByNode(pid_t pid) const;
  bool dryRun() const;
  // Mode "kernel" (kernel_wiring.cpp).
  void startKernelTiering();
  void stopKernelTiering();
  void reloadKernelTiering();
  std::optional<control::Json> kernelTieringJson();
  void publishKernelTieringMetrics();

  // The policy loop (policy_wiring.cpp).
  void startPolicy();
  void placeOwnMemory();
  void stopPolicy();
  policy::PolicySettings policySettings() const;
  sampling::perf::ScanningHooks scanningHooks();
  std::vector<policy::TierView> tierViews() const;
  std::vector<policy::ProcessInfo> policyProcesses() const;
  policy::RoomSettings policyRoom() const;
  control::Json policyJson() const;
  void publishPolicyMetrics();
  void logPolicySummary() const;
  // libtier registrations (libtier_wiring.cpp).
  void dropExitedLibtier();
  control::Json libtierJson(const control::Caller& caller) const;

  AgentOptions options_;
  tier::FsRoot sys_, proc_;
  std::optional<tier::FsRoot> cgroupfs_;

  mutable std::shared_mutex state_mutex_;  // config_, topology_, others_, pins_
  config::AgentConfig config_;
  tier::Topology topology_;
  OtherManagers others_;
  std::vector<Pin> pins_;
  mutable std::mutex libtier_mutex_;  // libtier_; taken alone, never with another lock held
  std::vector<LibtierProcess> libtier_;

  mutable std::mutex watcher_mutex_;
  workloads::ProcessWatcher watcher_;

  migrate::KernelPageOps page_ops_;
  std::unique_ptr<migrate::MigrationEngine> engine_;
  std::optional<kernel_tiering::KernelKnobs> knobs_;  // the policy's hint-fault scanning
  std::unique_ptr<policy::PolicyLoop> policy_;
  metrics::Registry registry_;
  std::unique_ptr<control::Server> server_;
  std::unique_ptr<metrics::HttpExporter> exporter_;
  std::mutex reload_mutex_;
  std::atomic<config::Mode> mode_{config::Mode::Coexist};
  std::atomic<bool> config_dry_run_{false};
  std::optional<int> saved_numa_balancing_;
  std::mutex kernel_mutex_;  // kernel_tiering_, kernel_error_; after state_mutex_, never before
  std::unique_ptr<kernel_tiering::KernelTiering> kernel_tiering_;
  std::optional<tier::Error> kernel_error_;  // why mode "kernel" could not configure the kernel
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_textfile_{};
  std::chrono::steady_clock::time_point last_process_metrics_{};
  std::chrono::steady_clock::time_point last_discovery_{};
  std::chrono::steady_clock::time_point last_full_discovery_{};
  std::string last_fingerprint_;  // platformFingerprint() at the last full discovery
  uint64_t ticks_ = 0;
};

}  // namespace tierd
