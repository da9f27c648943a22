// `tierctl topology -j`: the topology as JSON in ndctl's manner (snake_case
// keys, objects named by kernel device names, raw numbers unless -u).
#pragma once

#include <nlohmann/json.hpp>

#include "topology/topology.h"

namespace tierctl {

using Json = nlohmann::ordered_json;

struct JsonStyle {
  bool human = false;  // -u: sizes as "X.XX GiB (Y.YY GB)", addresses in hex
};

Json topologyToJson(const tier::Topology& topology, const JsonStyle& style);

}  // namespace tierctl
