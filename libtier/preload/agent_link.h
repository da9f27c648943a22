// Telling tierd what this process's heap looks like: one "register" request
// on the agent's control socket, sent once after start-up. Optional: the
// shim works alone, the request never blocks (non-blocking connect and send,
// no wait for the reply unless LIBTIER_DEBUG asks to see it), and a missing
// or refusing agent is not an error.
#pragma once

#include <cstddef>

#include "preload/policy.h"
#include "tier/tier.h"

namespace tier::preload {

// The request line ('\n'-terminated) in the control protocol's shape
// ({"version":1,"request":"register",...}), into `out`; its length, or 0 when
// it does not fit. Pure: the caller supplies pid, program name and tiers.
size_t formatRegistration(char* out, size_t capacity, int pid, const char* program,
                          const Policy& policy, const tier_stats_t* tiers, int tier_count);

// Sends it when the policy's agent mode and the socket allow.
void registerWithAgent(const Policy& policy, int tier_count);

}  // namespace tier::preload
