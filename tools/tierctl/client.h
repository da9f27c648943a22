// tierctl's side of the control socket (agent/control/protocol.h): one
// request, one reply.
#pragma once

#include <chrono>
#include <string>

#include "base/result.h"
#include "control/protocol.h"

namespace tierctl {

using Json = tierd::control::Json;

// Connects to tierd at `socket_path`, sends `request` as one line and returns
// the reply's result, or the error tierd replied with (its errno and
// message). Failing to connect is one readable line naming the socket, e.g.
// "cannot reach tierd at /run/tierd/tierd.sock: No such file or directory
// (is tierd running?)". No reply within `timeout` is ETIMEDOUT.
tier::Result<Json> callAgent(const std::string& socket_path, const Json& request,
                             std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace tierctl
