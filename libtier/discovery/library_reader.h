// Reads CXL, dax and nvdimm objects through ndctl's libraries (libcxl,
// libdaxctl, libndctl). They only know the live /sys, so discovery uses them
// when its sysfs root is the running kernel's: to add what sysfs lacks (CXL
// health, a mailbox command) and to cross-check the sysfs reader.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "topology/facts.h"

namespace tier {

// Fills memdevs, cxl_regions, dax_devices, nd_regions and namespaces.
// A library whose context cannot be created (no such bus) leaves its part empty.
PlatformFacts readLibraryFacts();

// Adds library-only data (health) to `facts` and returns every disagreement
// between the two readers, one sentence each (empty when they agree).
std::vector<std::string> mergeLibraryFacts(PlatformFacts& facts, const PlatformFacts& library);

}  // namespace tier
