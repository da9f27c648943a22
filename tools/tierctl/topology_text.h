// `tierctl topology` for people, and the `numactl -H` compatible view.
#pragma once

#include <string>

#include "topology/topology.h"

namespace tierctl {

std::string topologyText(const tier::Topology& topology, bool verbose);
// Byte-for-byte the layout of `numactl --hardware`.
std::string numactlHardwareText(const tier::Topology& topology);

}  // namespace tierctl
