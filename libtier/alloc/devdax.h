// The optional devdax tier: a device-DAX character device (a dax device left
// in devdax mode, not onlined as system RAM) mapped with libpmem2 into the
// engine's reservation, so its blocks are libtier blocks like any other.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace tier::alloc {

// Maps `path` at exactly [slot, slot + its size) (at most slot_size bytes),
// replacing the reservation's PROT_NONE pages there. The mapped size, or
// -errno (the slot is then reserved again, PROT_NONE).
long mapDevdax(const char* path, uintptr_t slot, size_t slot_size);

}  // namespace tier::alloc
