// The control socket's wire protocol: one request per connection.
//
// The client sends one JSON object on one line ('\n'-terminated, at most
// kMaxRequestBytes before the '\n'); the server answers with one JSON object
// and a '\n', then closes.
//
//   request: {"version":1,"request":"<name>", ...arguments}
//     status, config-show, config-reload   no arguments
//     ps        {"pid"?:N}
//     migrate   {"pid":N,"range"?:{"start":N,"end":N},"to_node"?:N,"to_tier"?:N}
//               (exactly one of to_node / to_tier)
//     pin       {"pid":N,"range":{"start":N,"end":N},"tier":N}
//     unpin     {"pid":N,"range":{"start":N,"end":N}}
//     register  {"pid":N,"program":"comm","library":"libtier-preload","policy":{...},
//                "tiers":[{"rank":N,"nodes":[N,...],"reserved_bytes":N},...]}
//     hint      {"pid":N,"range":{"start":N,"end":N},"hint":"hot"|"cold"}
//   reply:   {"ok":true,"result":{...}}
//            {"ok":false,"error":{"code":"EPERM","errno":1,"message":"..."}}
//
// pid is 1..kMaxPid; addresses are non-negative integers with start < end;
// nodes and tiers are 0..kMaxNodeId. Unknown fields, duplicate fields and
// wrong types are rejected (EINVAL) with a message naming the field.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/result.h"
#include "control/handler.h"

namespace tierd::control {

inline constexpr int kProtocolVersion = 1;
inline constexpr size_t kMaxRequestBytes = 64 * 1024;  // the line, without its '\n'
inline constexpr pid_t kMaxPid = 4194304;              // PID_MAX_LIMIT on 64-bit kernels
inline constexpr int kMaxNodeId = 1023;                // MAX_NUMNODES - 1 with NODES_SHIFT 10
inline constexpr const char* kDefaultSocketPath = "/run/tierd/tierd.sock";

// The requests without arguments.
struct StatusRequest {};
struct ConfigShowRequest {};
struct ConfigReloadRequest {};

inline constexpr size_t kMaxProgramChars = 256;   // register's "program" and "library"
inline constexpr size_t kMaxRegisteredTiers = 64;  // register's "tiers"

using Request = std::variant<StatusRequest, PsRequest, MigrateRequest, PinRequest, UnpinRequest,
                             ConfigShowRequest, ConfigReloadRequest, RegisterRequest, HintRequest>;

// The wire name: "status", "ps", "migrate", "pin", "unpin", "config-show",
// "config-reload", "register", "hint".
std::string_view requestName(const Request& request);

// "hot" or "cold".
std::string_view hintName(Hint hint);

// register's "tiers" as sent on the wire.
Json registeredTiersToJson(const std::vector<RegisteredTier>& tiers);

// Parses one request line (a trailing '\n' is allowed). Errors are EINVAL
// (EMSGSIZE for a line over kMaxRequestBytes) and name the offending field.
// Never throws.
tier::Result<Request> parseRequest(std::string_view line);

// The JSON a client sends for `request` (with "version"); the inverse of
// parseRequest for every valid request.
Json requestToJson(const Request& request);

// One reply line, '\n' included. An error's "message" is its context (the
// client appends strerror(errno) as tier::Error::message() does); errnum 0 or
// an errno without a name is sent as EINVAL. Strings that are not UTF-8 are
// replaced, never thrown on.
std::string formatReply(const tier::Result<Json>& reply);

// Client side: the result of an ok reply, or the error the server sent as
// Error{errno, message}. A reply that is not of the shape above is EPROTO.
tier::Result<Json> parseReply(std::string_view line);

// "EPERM" for EPERM (strerrorname_np), "EINVAL" for 0 or an unknown errno.
std::string errnoName(int errnum);

}  // namespace tierd::control
