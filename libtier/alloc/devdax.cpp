#include "devdax.h"

#include <errno.h>
#include <fcntl.h>
#include <libpmem2.h>
#include <sys/mman.h>
#include <unistd.h>

namespace tier::alloc {
namespace {

// libpmem2 reports failures as negative PMEM2_E_* codes or -errno; keep the
// errno ones, call the rest EINVAL (a device we cannot use as asked).
long asErrno(int rc) { return rc < 0 && rc > -4096 ? rc : -EINVAL; }

void reserveAgain(uintptr_t slot, size_t slot_size) {
  mmap(reinterpret_cast<void*>(slot), slot_size, PROT_NONE,
       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
}

}  // namespace

// libpmem2 allocates its handles with malloc: under the shim these come from
// its bootstrap buffer (this runs inside tier_engine_init). The mapping and
// its handles live as long as the process.
long mapDevdax(const char* path, uintptr_t slot, size_t slot_size) {
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return -errno;
  pmem2_source* source = nullptr;
  pmem2_config* config = nullptr;
  pmem2_vm_reservation* reservation = nullptr;
  pmem2_map* map = nullptr;
  size_t size = 0;
  int rc = pmem2_source_from_fd(&source, fd);
  if (rc == 0) rc = pmem2_source_size(source, &size);
  if (rc == 0 && size > slot_size) size = slot_size & ~((size_t{1} << 21) - 1);
  if (rc == 0) rc = pmem2_config_new(&config);
  if (rc == 0) rc = pmem2_config_set_required_store_granularity(config, PMEM2_GRANULARITY_PAGE);
  if (rc == 0) rc = pmem2_config_set_length(config, size);
  if (rc == 0) {
    // pmem2 reserves the range itself (it must be free): hand it our slot.
    munmap(reinterpret_cast<void*>(slot), slot_size);
    rc = pmem2_vm_reservation_new(&reservation, reinterpret_cast<void*>(slot), size);
    if (rc == 0) rc = pmem2_config_set_vm_reservation(config, reservation, 0);
    if (rc == 0) rc = pmem2_map_new(&map, config, source);
    if (rc != 0 || pmem2_map_get_address(map) != reinterpret_cast<void*>(slot)) {
      if (reservation != nullptr && map == nullptr) pmem2_vm_reservation_delete(&reservation);
      reserveAgain(slot, slot_size);
      if (rc == 0) rc = -EFAULT;
    } else if (size < slot_size) {
      mmap(reinterpret_cast<void*>(slot + size), slot_size - size, PROT_NONE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    }
  }
  if (config != nullptr) pmem2_config_delete(&config);
  if (source != nullptr) pmem2_source_delete(&source);
  close(fd);  // the mapping keeps the device open
  return rc == 0 ? static_cast<long>(size) : asErrno(rc);
}

}  // namespace tier::alloc
