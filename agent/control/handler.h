// What the control socket asks of the agent. The server (server.h) parses
// and authorizes each request, then calls one of these; the daemon
// implements them. Replies are JSON objects placed under "result".
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>

#include "base/result.h"

namespace tierd::control {

using Json = nlohmann::ordered_json;

// Who is asking, from SO_PEERCRED, plus what the server derived from it.
struct Caller {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  bool privileged = false;  // uid 0, or CAP_SYS_NICE in the caller's effective set
};

struct AddressRange {
  uint64_t start = 0, end = 0;  // [start, end), page-aligned by the agent
};

struct PsRequest {
  std::optional<pid_t> pid;  // none: every managed process the caller may see
};

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

// Every method may be called from several connection threads at once.
class Handler {
 public:
  virtual ~Handler() = default;
  virtual tier::Result<Json> status(const Caller& caller) = 0;
  virtual tier::Result<Json> ps(const Caller& caller, const PsRequest& request) = 0;
  virtual tier::Result<Json> migrate(const Caller& caller, const MigrateRequest& request) = 0;
  virtual tier::Result<Json> pin(const Caller& caller, const PinRequest& request) = 0;
  virtual tier::Result<Json> unpin(const Caller& caller, const UnpinRequest& request) = 0;
  virtual tier::Result<Json> configShow(const Caller& caller) = 0;
  virtual tier::Result<Json> configReload(const Caller& caller) = 0;
};

}  // namespace tierd::control
