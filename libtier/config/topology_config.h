// The [topology] section of tierd.toml, shared by tierd and tierctl:
//
//   [topology]
//   same_tier_tolerance = 0.10      # fraction of HMAT latency; nodes this close share a tier
//   same_tier_distance_tolerance = 0.25  # the same for SLIT distances
//   [topology.tier_override]        # node -> tier rank, for wrong firmware data
//   node3 = 1                       # "3" = 1 works too
#pragma once

#include <toml++/toml.h>
#include <string_view>

#include "base/result.h"
#include "topology/topology.h"

namespace tier {

// Parses TOML text; `source` names it in errors ("tierd.toml:4: ...").
// Keys outside [topology] are left to their own modules.
Result<TopologyOptions> parseTopologyConfig(std::string_view toml_text, std::string_view source);
// The same from an already parsed (possibly merged) document; errors name
// the file and line each offending node came from.
Result<TopologyOptions> topologyFromTable(const toml::table& root);
// Applies only the keys this document sets onto `options` (a drop-in over
// the main file); tier overrides merge node by node.
Result<void> applyTopologyTable(const toml::table& root, TopologyOptions& options);

}  // namespace tier
