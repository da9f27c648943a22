// What the control socket asks of the agent. The server (server.h) parses
// and authorizes each request, then calls one of these; the daemon
// implements them. Replies are JSON objects placed under "result".
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "base/result.h"

namespace tierd::control {

using Json = nlohmann::ordered_json;

// Who is asking, from SO_PEERCRED, plus what the server derived from it.
struct Caller {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  bool privileged = false;  // uid 0, or CAP_SYS_NICE in the caller's effective set
  // Requested when the server is stopping. Long calls (migrate) should check
  // stop.stop_requested() between batches and return ECANCELED; a default
  // token is never requested.
  std::stop_token stop;
};

struct AddressRange {
  uint64_t start = 0, end = 0;  // [start, end), page-aligned by the agent
};

struct PsRequest {
  std::optional<pid_t> pid;  // none: every managed process the caller may see
};
// The server authorizes ps without a pid for everyone, so ps() itself must
// filter: an unprivileged caller (!caller.privileged) sees only the processes
// whose real uid equals caller.uid.

struct MigrateRequest {
  pid_t pid = 0;
  std::optional<AddressRange> range;  // none: the whole address space
  std::optional<int> to_node;         // exactly one of to_node / to_tier
  std::optional<int> to_tier;         // tier rank as seen from the process's CPUs
};

struct PinRequest {
  pid_t pid = 0;
  AddressRange range;
  int tier = 0;
};

struct UnpinRequest {
  pid_t pid = 0;
  AddressRange range;
};

// One tier of a libtier process's heap, as the library sees it.
struct RegisteredTier {
  int rank = 0;
  std::vector<int> nodes;
  uint64_t reserved_bytes = 0;
};

// libtier (the LD_PRELOAD shim) says once after start-up what its heap looks
// like. The policy object is the library's own (ratio, threshold, rules): the
// agent shows it, it does not interpret it.
struct RegisterRequest {
  pid_t pid = 0;
  std::string program;  // the process's comm, as the library read it
  std::string library;  // "libtier-preload"
  Json policy = Json::object();
  std::vector<RegisteredTier> tiers;
};

enum class Hint { kHot, kCold };

// tier_hint(HOT/COLD): move the range's present pages up to the fastest tier
// now (hot) or to the tier below it (cold).
struct HintRequest {
  pid_t pid = 0;
  AddressRange range;
  Hint hint = Hint::kHot;
};

// Result formats (the "result" object of a reply; tierctl renders them):
//   status:  {"version":"0.1.0","uptime_seconds":N,"mode":"observe|coexist|takeover",
//             "managed_processes":N,
//             "migration":{"pages_moved":N,"bytes_moved":N,"failed":{"<reason>":N,...}},
//             "other_managers":{...}}
//   ps:      {"processes":[{"pid":N,"comm":"...","workload":"...",
//                           "nodes":{"node0":bytes,"node1":bytes,...},"total":bytes},...]}
//   migrate: {"pid":N,"target_node":N,"pages_requested":N,"pages_moved":N,
//             "pages_already_there":N,"bytes_moved":N,"seconds":F,
//             "failed":{"EBUSY":N,...},"pages_on_target_after":N,"pages_present_after":N}
//   hint:    {"pid":N,"hint":"hot|cold","tier":N,"move":{<migrate's result>}}
//   pin, unpin, register, config-show, config-reload: an object of the daemon's choosing
//            ({} is fine).
//
// Every method may be called from several connection threads at once.
class Handler {
 public:
  virtual ~Handler() = default;
  virtual tier::Result<Json> status(const Caller& caller) = 0;
  virtual tier::Result<Json> ps(const Caller& caller, const PsRequest& request) = 0;
  virtual tier::Result<Json> migrate(const Caller& caller, const MigrateRequest& request) = 0;
  virtual tier::Result<Json> pin(const Caller& caller, const PinRequest& request) = 0;
  virtual tier::Result<Json> unpin(const Caller& caller, const UnpinRequest& request) = 0;
  virtual tier::Result<Json> registerProcess(const Caller& caller,
                                             const RegisterRequest& request) = 0;
  virtual tier::Result<Json> hint(const Caller& caller, const HintRequest& request) = 0;
  virtual tier::Result<Json> configShow(const Caller& caller) = 0;
  virtual tier::Result<Json> configReload(const Caller& caller) = 0;
};

}  // namespace tierd::control
