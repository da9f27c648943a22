// libtier's side of the control socket: processes under the shim register
// their heap's tiers and policy (shown by status), and tier_hint(HOT/COLD)
// moves a range through the same migration engine as `tierctl migrate`.
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "control/protocol.h"
#include "daemon/agent.h"
#include "workloads/process.h"

namespace tierd {

using control::Json;

tier::Result<Json> Agent::registerProcess(const control::Caller&,
                                          const control::RegisterRequest& request) {
  // The start time tells a re-used pid from the process that registered.
  auto stat = workloads::readStat(proc_, request.pid);
  if (!stat) return std::unexpected(stat.error());
  LibtierProcess registration{.key = {request.pid, stat->start_time},
                              .program = request.program,
                              .library = request.library,
                              .policy = request.policy,
                              .tiers = request.tiers};
  std::lock_guard lock(libtier_mutex_);
  std::erase_if(libtier_, [&](const LibtierProcess& p) { return p.key.pid == request.pid; });
  libtier_.push_back(std::move(registration));
  return Json{{"registered", true}, {"pid", request.pid}};
}

void Agent::dropExitedLibtier() {
  std::vector<LibtierProcess> registrations;
  {
    std::lock_guard lock(libtier_mutex_);
    registrations = libtier_;
  }
  std::vector<workloads::ProcessKey> gone;
  for (const auto& registration : registrations) {
    auto stat = workloads::readStat(proc_, registration.key.pid);
    if (!stat || stat->start_time != registration.key.start_time) gone.push_back(registration.key);
  }
  if (gone.empty()) return;
  std::lock_guard lock(libtier_mutex_);
  std::erase_if(libtier_, [&](const LibtierProcess& p) {
    return std::find(gone.begin(), gone.end(), p.key) != gone.end();
  });
}

Json Agent::libtierJson(const control::Caller& caller) const {
  std::vector<LibtierProcess> registrations;
  {
    std::lock_guard lock(libtier_mutex_);
    registrations = libtier_;
  }
  Json out = Json::array();
  for (const auto& registration : registrations) {
    if (!visibleTo(caller, registration.key.pid)) continue;
    out.push_back(Json{{"pid", registration.key.pid},
                       {"program", registration.program},
                       {"library", registration.library},
                       {"policy", registration.policy},
                       {"tiers", control::registeredTiersToJson(registration.tiers)}});
  }
  return out;
}

tier::Result<Json> Agent::hint(const control::Caller& caller, const control::HintRequest& request) {
  // Hot: the fastest tier the process's CPUs see; cold: the tier below it.
  int rank = request.hint == control::Hint::kHot ? 0 : 1;
  auto node = targetNode(request.pid, std::nullopt, rank);
  if (!node) {
    if (rank == 1 && node.error().errnum == EINVAL)
      return tier::fail(ENODEV, fmt::format("cold hint for process {}: its CPUs see one memory "
                                            "tier, there is none below it",
                                            request.pid));
    return std::unexpected(node.error());
  }
  auto moved = runMove(caller, request.pid, {{request.range.start, request.range.end}}, *node);
  if (!moved) return moved;
  return Json{{"pid", request.pid},
              {"hint", std::string(control::hintName(request.hint))},
              {"tier", rank},
              {"node", *node},
              {"move", *moved}};
}

}  // namespace tierd
