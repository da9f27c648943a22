// The Agent's side of mode "kernel": applying [kernel] through KernelTiering
// at start and on reload, restoring at stop, and reporting (status JSON,
// metrics). tierd moves no pages itself in this mode.
#include <fmt/format.h>

#include "daemon/agent.h"
#include "daemon/log.h"

namespace tierd {

namespace {

// DAMOS stats are read by asking each kdamond to update them (it answers at
// its next aggregation, ~0.1 s), so metrics refresh them every few ticks.
constexpr uint64_t kDamosStatsTicks = 5;

}  // namespace

void Agent::startKernelTiering() {
  config::Mode mode;
  kernel_tiering::KernelTieringOptions options;
  tier::Topology topology;
  {
    std::shared_lock lock(state_mutex_);
    mode = config_.mode;
    options = config_.kernel;
    topology = topology_;
  }
  if (mode != config::Mode::Kernel) return;
  std::lock_guard lock(kernel_mutex_);
  kernel_error_.reset();
  if (dryRun()) {
    log(Priority::Info, "dry run: would configure the kernel's tiering (machinery {})",
        kernel_tiering::machineryName(options.machinery));
    return;
  }
  if (!kernel_tiering_) {
    auto opened = kernel_tiering::KernelTiering::open(options_.sysfs_root, options_.procfs_root);
    if (!opened) {
      kernel_error_ = opened.error();
      log(Priority::Err, "Failed to configure the kernel's tiering: {}", opened.error().message());
      return;
    }
    kernel_tiering_ = std::move(*opened);
  }
  if (auto ok = kernel_tiering_->apply(topology, options); !ok) {
    kernel_error_ = ok.error();
    log(Priority::Err, "Failed to configure the kernel's tiering: {}", ok.error().message());
    return;
  }
  auto report = kernel_tiering_->report();
  log(Priority::Notice, "{}", kernel_tiering::describeApplied(report));
  for (const auto& note : report.notes)
    log(Priority::Warning, "kernel tiering: {}", note);
}

void Agent::stopKernelTiering() {
  std::lock_guard lock(kernel_mutex_);
  kernel_error_.reset();
  if (!kernel_tiering_) return;
  bool was_applied = kernel_tiering_->applied();
  auto left = kernel_tiering_->restore();
  for (const auto& text : left)
    log(Priority::Warning, "kernel tiering: {}", text);
  if (was_applied)
    log(Priority::Notice, "kernel tiering restored{}", left.empty() ? "" : " except as noted");
  kernel_tiering_.reset();
}

// A reload re-applies only when mode "kernel" or [kernel] changed.
void Agent::reloadKernelTiering() {
  {
    std::shared_lock state(state_mutex_);
    std::lock_guard lock(kernel_mutex_);
    bool applied = kernel_tiering_ && kernel_tiering_->applied();
    if (config_.mode == config::Mode::Kernel && applied &&
        kernel_tiering_->options() == config_.kernel)
      return;
    if (config_.mode != config::Mode::Kernel && !kernel_tiering_ && !kernel_error_) return;
  }
  stopKernelTiering();
  startKernelTiering();
}

std::optional<control::Json> Agent::kernelTieringJson() {
  std::lock_guard lock(kernel_mutex_);
  if (!kernel_tiering_ && !kernel_error_) return std::nullopt;
  control::Json out = kernel_tiering_ ? kernel_tiering::reportJson(kernel_tiering_->report())
                                      : control::Json{{"applied", false}};
  if (kernel_error_) out["error"] = kernel_error_->message();
  return out;
}

void Agent::publishKernelTieringMetrics() {
  if (ticks_ % kDamosStatsTicks != 1) return;
  std::vector<std::pair<metrics::Labels, double>> tried, applied;
  {
    std::lock_guard lock(kernel_mutex_);
    if (kernel_tiering_ && kernel_tiering_->applied()) {
      for (const auto& scheme : kernel_tiering_->report().schemes) {
        metrics::Labels labels{{"scheme", std::string(damosActionName(scheme.entry.action))},
                               {"node", std::to_string(scheme.entry.node)},
                               {"target_node", std::to_string(scheme.entry.target_node)}};
        tried.push_back({labels, static_cast<double>(scheme.stats.sz_tried)});
        applied.push_back({labels, static_cast<double>(scheme.stats.sz_applied)});
      }
    }
  }
  (void)registry_.describe("tierd_kernel_damos_tried_bytes_total", metrics::Type::Counter,
                           "Bytes the DAMOS schemes tierd set up found matching (sz_tried).");
  (void)registry_.describe("tierd_kernel_damos_applied_bytes_total", metrics::Type::Counter,
                           "Bytes the DAMOS schemes tierd set up migrated (sz_applied).");
  registry_.replaceFamily("tierd_kernel_damos_tried_bytes_total", std::move(tried));
  registry_.replaceFamily("tierd_kernel_damos_applied_bytes_total", std::move(applied));
}

}  // namespace tierd
