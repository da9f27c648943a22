#include "devdax.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libpmem2.h>
#include <sys/mman.h>
#include <unistd.h>

namespace tier::alloc {
namespace {

// libpmem2 is loaded only when a devdax tier is asked for: linking it pulls
// in libndctl, libdaxctl, libkmod, libudev and libcrypto, about 2 MiB of
// resident pages in every process under the shim (measured with smaps).
struct Pmem2 {
  decltype(&pmem2_source_from_fd) source_from_fd;
  decltype(&pmem2_source_size) source_size;
  decltype(&pmem2_source_delete) source_delete;
  decltype(&pmem2_config_new) config_new;
  decltype(&pmem2_config_set_required_store_granularity) config_set_granularity;
  decltype(&pmem2_config_set_length) config_set_length;
  decltype(&pmem2_config_set_vm_reservation) config_set_vm_reservation;
  decltype(&pmem2_config_delete) config_delete;
  decltype(&pmem2_vm_reservation_new) vm_reservation_new;
  decltype(&pmem2_vm_reservation_delete) vm_reservation_delete;
  decltype(&pmem2_map_new) map_new;
  decltype(&pmem2_map_get_address) map_get_address;
};

template <typename Fn>
bool bind(void* library, const char* name, Fn* out) {
  *out = reinterpret_cast<Fn>(dlsym(library, name));
  return *out != nullptr;
}

// Never unloaded: the mapping's handles belong to it for the process's life.
bool loadPmem2(Pmem2* p) {
  void* lib = dlopen("libpmem2.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) return false;
  return bind(lib, "pmem2_source_from_fd", &p->source_from_fd) &&
         bind(lib, "pmem2_source_size", &p->source_size) &&
         bind(lib, "pmem2_source_delete", &p->source_delete) &&
         bind(lib, "pmem2_config_new", &p->config_new) &&
         bind(lib, "pmem2_config_set_required_store_granularity", &p->config_set_granularity) &&
         bind(lib, "pmem2_config_set_length", &p->config_set_length) &&
         bind(lib, "pmem2_config_set_vm_reservation", &p->config_set_vm_reservation) &&
         bind(lib, "pmem2_config_delete", &p->config_delete) &&
         bind(lib, "pmem2_vm_reservation_new", &p->vm_reservation_new) &&
         bind(lib, "pmem2_vm_reservation_delete", &p->vm_reservation_delete) &&
         bind(lib, "pmem2_map_new", &p->map_new) &&
         bind(lib, "pmem2_map_get_address", &p->map_get_address);
}

// libpmem2 reports failures as negative PMEM2_E_* codes or -errno; keep the
// errno ones, call the rest EINVAL (a device we cannot use as asked).
long asErrno(int rc) {
  return rc < 0 && rc > -4096 ? rc : -EINVAL;
}

void reserveAgain(uintptr_t slot, size_t slot_size) {
  mmap(reinterpret_cast<void*>(slot), slot_size, PROT_NONE,
       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
}

int mapAt(const Pmem2& p, pmem2_source* source, size_t size, uintptr_t slot, size_t slot_size) {
  pmem2_config* config = nullptr;
  pmem2_vm_reservation* reservation = nullptr;
  pmem2_map* map = nullptr;
  int rc = p.config_new(&config);
  if (rc == 0) rc = p.config_set_granularity(config, PMEM2_GRANULARITY_PAGE);
  if (rc == 0) rc = p.config_set_length(config, size);
  if (rc == 0) {
    // pmem2 reserves the range itself (it must be free): hand it our slot.
    munmap(reinterpret_cast<void*>(slot), slot_size);
    rc = p.vm_reservation_new(&reservation, reinterpret_cast<void*>(slot), size);
    if (rc == 0) rc = p.config_set_vm_reservation(config, reservation, 0);
    if (rc == 0) rc = p.map_new(&map, config, source);
    if (rc != 0 || p.map_get_address(map) != reinterpret_cast<void*>(slot)) {
      if (reservation != nullptr && map == nullptr) p.vm_reservation_delete(&reservation);
      reserveAgain(slot, slot_size);
      if (rc == 0) rc = -EFAULT;
    } else if (size < slot_size) {
      mmap(reinterpret_cast<void*>(slot + size), slot_size - size, PROT_NONE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    }
  }
  if (config != nullptr) p.config_delete(&config);
  return rc;
}

}  // namespace

// libpmem2 allocates its handles with malloc (and dlopen does too): under the
// shim these come from its bootstrap buffer (this runs inside
// tier_engine_init). The mapping and its handles live as long as the process.
long mapDevdax(const char* path, uintptr_t slot, size_t slot_size) {
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return -errno;
  Pmem2 p;
  if (!loadPmem2(&p)) {
    close(fd);
    return -ELIBACC;
  }
  pmem2_source* source = nullptr;
  size_t size = 0;
  int rc = p.source_from_fd(&source, fd);
  if (rc == 0) rc = p.source_size(source, &size);
  if (rc == 0 && size > slot_size) size = slot_size & ~((size_t{1} << 21) - 1);
  if (rc == 0) rc = mapAt(p, source, size, slot, slot_size);
  if (source != nullptr) p.source_delete(&source);
  close(fd);  // the mapping keeps the device open
  return rc == 0 ? static_cast<long>(size) : asErrno(rc);
}

}  // namespace tier::alloc
