#include "discovery/library_reader.h"

#include <cxl/libcxl.h>
#include <daxctl/libdaxctl.h>
#include <fmt/format.h>
#include <ndctl/libndctl.h>

#include <memory>

namespace tier {
namespace {

template <typename T>
const T* findByName(const std::vector<T>& items, const std::string& name) {
  for (const auto& item : items)
    if (item.name == name) return &item;
  return nullptr;
}

std::optional<std::string> text(const char* value) {
  return value ? std::optional<std::string>(value) : std::nullopt;
}

std::optional<CxlHealth> readHealth(cxl_memdev* memdev) {
  std::unique_ptr<cxl_cmd, decltype(&cxl_cmd_unref)> cmd(cxl_cmd_new_get_health_info(memdev),
                                                         cxl_cmd_unref);
  if (!cmd || cxl_cmd_submit(cmd.get()) < 0 || cxl_cmd_get_mbox_status(cmd.get()) != 0)
    return std::nullopt;  // no mailbox access, or the device refused
  auto flag = [](int value) -> std::optional<std::string> {
    if (value < 0) return std::nullopt;
    return value ? "true" : "false";
  };
  CxlHealth health;
  health.maintenance_needed = flag(cxl_cmd_health_info_get_maintenance_needed(cmd.get()));
  health.performance_degraded = flag(cxl_cmd_health_info_get_performance_degraded(cmd.get()));
  health.hw_replacement_needed = flag(cxl_cmd_health_info_get_hw_replacement_needed(cmd.get()));
  if (cxl_cmd_health_info_get_media_normal(cmd.get()) > 0)
    health.media_status = "normal";
  else if (cxl_cmd_health_info_get_media_not_ready(cmd.get()) > 0)
    health.media_status = "not_ready";
  else if (cxl_cmd_health_info_get_media_persistence_lost(cmd.get()) > 0)
    health.media_status = "persistence_lost";
  else if (cxl_cmd_health_info_get_media_data_lost(cmd.get()) > 0)
    health.media_status = "data_lost";
  if (int life = cxl_cmd_health_info_get_life_used(cmd.get()); life >= 0)
    health.life_used_percent = life;
  health.temperature_celsius = cxl_cmd_health_info_get_temperature(cmd.get());
  if (int shutdowns = cxl_cmd_health_info_get_dirty_shutdowns(cmd.get()); shutdowns >= 0)
    health.dirty_shutdowns = static_cast<uint64_t>(shutdowns);
  return health;
}

void readCxlObjects(PlatformFacts& facts) {
  cxl_ctx* raw = nullptr;
  if (cxl_new(&raw) != 0) return;
  std::unique_ptr<cxl_ctx, decltype(&cxl_unref)> ctx(raw, cxl_unref);
  cxl_memdev* memdev = nullptr;
  cxl_memdev_foreach(ctx.get(), memdev) {
    CxlMemdev entry;
    entry.name = cxl_memdev_get_devname(memdev);
    entry.serial = cxl_memdev_get_serial(memdev);
    entry.ram_size = cxl_memdev_get_ram_size(memdev);
    entry.pmem_size = cxl_memdev_get_pmem_size(memdev);
    entry.firmware_version = text(cxl_memdev_get_firmware_verison(memdev));  // sic, libcxl's name
    entry.numa_node = cxl_memdev_get_numa_node(memdev);
    entry.host = text(cxl_memdev_get_host(memdev));
    entry.health = readHealth(memdev);
    facts.memdevs.push_back(std::move(entry));
  }
  cxl_bus* bus = nullptr;
  cxl_bus_foreach(ctx.get(), bus) {
    cxl_port* root = cxl_bus_get_port(bus);
    cxl_decoder* decoder = nullptr;
    cxl_decoder_foreach(root, decoder) {
      cxl_region* region = nullptr;
      cxl_region_foreach(decoder, region) {
        CxlRegion entry;
        entry.name = cxl_region_get_devname(region);
        entry.size = cxl_region_get_size(region);
        entry.start = cxl_region_get_resource(region);
        entry.interleave_ways = static_cast<int>(cxl_region_get_interleave_ways(region));
        entry.interleave_granularity =
            static_cast<int>(cxl_region_get_interleave_granularity(region));
        entry.committed = cxl_region_decode_is_committed(region) > 0;
        entry.root_decoder = cxl_decoder_get_devname(decoder);
        for (int position = 0; position < *entry.interleave_ways; ++position) {
          cxl_decoder* target = cxl_region_get_target_decoder(region, position);
          cxl_memdev* target_memdev = target ? cxl_decoder_get_memdev(target) : nullptr;
          if (target_memdev) entry.memdevs.push_back(cxl_memdev_get_devname(target_memdev));
        }
        facts.cxl_regions.push_back(std::move(entry));
      }
    }
  }
}

void readDaxObjects(PlatformFacts& facts) {
  daxctl_ctx* raw = nullptr;
  if (daxctl_new(&raw) != 0) return;
  std::unique_ptr<daxctl_ctx, decltype(&daxctl_unref)> ctx(raw, daxctl_unref);
  daxctl_region* region = nullptr;
  daxctl_region_foreach(ctx.get(), region) {
    daxctl_dev* dev = nullptr;
    daxctl_dev_foreach(region, dev) {
      DaxDevice entry;
      entry.name = daxctl_dev_get_devname(dev);
      entry.region = std::to_string(daxctl_region_get_id(region));
      entry.size = daxctl_dev_get_size(dev);
      entry.target_node = daxctl_dev_get_target_node(dev);
      entry.start = daxctl_dev_get_resource(dev);
      daxctl_memory* memory = daxctl_dev_get_memory(dev);
      entry.mode = memory ? "system-ram" : "devdax";
      if (memory) {
        int online = daxctl_memory_is_online(memory);
        int total = daxctl_memory_num_sections(memory);
        entry.online_memblocks = online > 0 ? static_cast<uint64_t>(online) : 0;
        entry.total_memblocks = total > 0 ? static_cast<uint64_t>(total) : 0;
        if (online > 0) entry.movable = daxctl_memory_is_movable(memory) > 0;
      }
      facts.dax_devices.push_back(std::move(entry));
    }
  }
}

std::optional<std::string> namespaceMode(ndctl_namespace* ns) {
  switch (ndctl_namespace_get_mode(ns)) {
    case NDCTL_NS_MODE_DEVDAX:
      return "devdax";
    case NDCTL_NS_MODE_FSDAX:
      return "fsdax";
    case NDCTL_NS_MODE_SECTOR:
      return "sector";
    case NDCTL_NS_MODE_RAW:
      return "raw";
    default:
      return std::nullopt;
  }
}

void readNvdimmObjects(PlatformFacts& facts) {
  ndctl_ctx* raw = nullptr;
  if (ndctl_new(&raw) != 0) return;
  std::unique_ptr<ndctl_ctx, decltype(&ndctl_unref)> ctx(raw, ndctl_unref);
  ndctl_bus* bus = nullptr;
  ndctl_bus_foreach(ctx.get(), bus) {
    ndctl_region* region = nullptr;
    ndctl_region_foreach(bus, region) {
      NdRegion entry;
      entry.name = ndctl_region_get_devname(region);
      entry.bus = ndctl_bus_get_devname(bus);
      entry.provider = ndctl_bus_get_provider(bus);
      entry.size = ndctl_region_get_size(region);
      entry.start = ndctl_region_get_resource(region);
      entry.target_node = ndctl_region_get_target_node(region);
      entry.numa_node = ndctl_region_get_numa_node(region);
      facts.nd_regions.push_back(entry);
      ndctl_namespace* ns = nullptr;
      ndctl_namespace_foreach(region, ns) {
        if (!ndctl_namespace_is_active(ns)) continue;
        NdNamespace ns_entry;
        ns_entry.name = ndctl_namespace_get_devname(ns);
        ns_entry.region = entry.name;
        ns_entry.mode = namespaceMode(ns);
        ns_entry.size = ndctl_namespace_get_size(ns);
        facts.namespaces.push_back(std::move(ns_entry));
      }
    }
  }
}

template <typename T>
void compareNames(const std::vector<T>& sysfs, const std::vector<T>& library, const char* what,
                  const char* library_name, std::vector<std::string>& out) {
  for (const auto& item : library)
    if (!findByName(sysfs, item.name))
      out.push_back(fmt::format("{} sees {} {}, sysfs does not", library_name, what, item.name));
  for (const auto& item : sysfs)
    if (!findByName(library, item.name))
      out.push_back(fmt::format("sysfs sees {} {}, {} does not", what, item.name, library_name));
}

template <typename V>
void compareField(const std::string& object, const char* field, const V& sysfs, const V& library,
                  std::vector<std::string>& out) {
  if (sysfs != library)
    out.push_back(fmt::format("{} {}: sysfs and the library disagree", object, field));
}

}  // namespace

PlatformFacts readLibraryFacts() {
  PlatformFacts facts;
  readCxlObjects(facts);
  readDaxObjects(facts);
  readNvdimmObjects(facts);
  return facts;
}

std::vector<std::string> mergeLibraryFacts(PlatformFacts& facts, const PlatformFacts& library) {
  std::vector<std::string> disagreements;
  compareNames(facts.memdevs, library.memdevs, "memdev", "libcxl", disagreements);
  compareNames(facts.cxl_regions, library.cxl_regions, "region", "libcxl", disagreements);
  compareNames(facts.dax_devices, library.dax_devices, "dax device", "libdaxctl", disagreements);
  compareNames(facts.nd_regions, library.nd_regions, "nd region", "libndctl", disagreements);
  for (auto& memdev : facts.memdevs) {
    const CxlMemdev* other = findByName(library.memdevs, memdev.name);
    if (!other) continue;
    compareField(memdev.name, "serial", memdev.serial, other->serial, disagreements);
    compareField(memdev.name, "ram_size", memdev.ram_size, other->ram_size, disagreements);
    compareField(memdev.name, "pmem_size", memdev.pmem_size, other->pmem_size, disagreements);
    memdev.health = other->health;
  }
  for (const auto& region : facts.cxl_regions) {
    const CxlRegion* other = findByName(library.cxl_regions, region.name);
    if (!other) continue;
    compareField(region.name, "size", region.size, other->size, disagreements);
    compareField(region.name, "memdevs", region.memdevs, other->memdevs, disagreements);
  }
  for (const auto& dax : facts.dax_devices) {
    const DaxDevice* other = findByName(library.dax_devices, dax.name);
    if (!other) continue;
    compareField(dax.name, "size", dax.size, other->size, disagreements);
    compareField(dax.name, "target_node", dax.target_node, other->target_node, disagreements);
    compareField(dax.name, "mode", dax.mode, other->mode, disagreements);
    compareField(dax.name, "online_memblocks", dax.online_memblocks, other->online_memblocks,
                 disagreements);
  }
  for (const auto& region : facts.nd_regions) {
    const NdRegion* other = findByName(library.nd_regions, region.name);
    if (!other) continue;
    compareField(region.name, "size", region.size, other->size, disagreements);
    compareField(region.name, "target_node", region.target_node, other->target_node, disagreements);
  }
  return disagreements;
}

}  // namespace tier
