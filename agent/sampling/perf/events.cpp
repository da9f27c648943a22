#include "sampling/perf/events.h"

#include <linux/perf_event.h>

#include <algorithm>
#include <array>
#include <set>

#include "parse/parsers.h"

namespace tierd::sampling::perf {

namespace {

constexpr std::string_view kDevices = "bus/event_source/devices";

using tier::split;

std::unexpected<tier::Error> noPmu(const std::string& why) {
  return tier::fail(ENODEV, "no data-address sampling PMU on this host: " + why);
}

std::string cpuText(const CpuId& cpu) {
  std::string text = cpu.vendor.empty() ? std::string("unknown CPU") : cpu.vendor;
  if (cpu.family >= 0) text += " family " + std::to_string(cpu.family);
  if (cpu.model >= 0) text += " model " + std::to_string(cpu.model);
  return text;
}

// What one PMU directory under bus/event_source/devices says.
struct PmuInfo {
  std::string name;
  uint32_t type = 0;
  PmuFormat format;
  std::string pmu_name;            // caps/pmu_name
  std::optional<int> max_precise;  // caps/max_precise
  std::map<std::string, std::string, std::less<>> events;
};

std::string devicePath(std::string_view pmu, std::string_view rest = {}) {
  std::string path = std::string(kDevices) + "/" + std::string(pmu);
  if (!rest.empty()) path += "/" + std::string(rest);
  return path;
}

bool hasPmu(const tier::FsRoot& sys, std::string_view pmu) {
  return sys.exists(devicePath(pmu, "type"));
}

tier::Result<PmuInfo> readPmu(const tier::FsRoot& sys, std::string_view pmu) {
  PmuInfo info;
  info.name = std::string(pmu);
  auto type_text = sys.readFile(devicePath(pmu, "type"));
  if (!type_text) return std::unexpected(type_text.error());
  auto type = tier::parseU64(*type_text);
  if (!type || *type > UINT32_MAX) {
    return tier::fail(EINVAL, "bad PMU type in " + devicePath(pmu, "type"));
  }
  info.type = static_cast<uint32_t>(*type);
  if (auto names = sys.listDir(devicePath(pmu, "format"))) {
    for (const auto& field : *names) {
      auto text = sys.readFile(devicePath(pmu, "format/" + field));
      if (!text) continue;
      auto parsed = parseFormat(*text);
      if (!parsed) {
        return std::unexpected(tier::wrap(parsed.error(), devicePath(pmu, "format/" + field)));
      }
      info.format.emplace(field, std::move(*parsed));
    }
  }
  if (auto text = sys.readFile(devicePath(pmu, "caps/pmu_name"))) {
    info.pmu_name = std::string(tier::trim(*text));
  }
  if (auto text = sys.readFile(devicePath(pmu, "caps/max_precise"))) {
    if (auto value = tier::parseU64(*text); value && *value < 8) {
      info.max_precise = static_cast<int>(*value);
    }
  }
  for (const char* event : {"mem-loads", "mem-loads-aux", "mem-stores"}) {
    if (auto text = sys.readFile(devicePath(pmu, std::string("events/") + event))) {
      info.events.emplace(event, std::string(tier::trim(*text)));
    }
  }
  return info;
}

// Drops one term ("ldlat") from a terms string.
std::string withoutTerm(std::string_view terms, std::string_view name) {
  std::string out;
  for (std::string_view term : split(terms, ',')) {
    term = tier::trim(term);
    if (term.empty()) continue;
    std::string_view key = term.substr(0, term.find('='));
    if (key == name) continue;
    if (!out.empty()) out += ',';
    out += term;
  }
  return out;
}

// (major, minor) of "6.1.0-18-amd64".
std::pair<int, int> kernelVersion(std::string_view release) {
  int major = 0, minor = 0;
  auto parts = split(tier::trim(release), '.');
  auto number = [](std::string_view text) {
    int value = 0;
    for (char c : text) {
      if (c < '0' || c > '9') break;
      value = value * 10 + (c - '0');
    }
    return value;
  };
  if (!parts.empty()) major = number(parts[0]);
  if (parts.size() > 1) minor = number(parts[1]);
  return {major, minor};
}

// No PERF_SAMPLE_PERIOD: on software events it makes the kernel sample every
// event whatever the period (perf_swevent_event), and the period is known anyway.
constexpr uint64_t kBaseSampleType =
    PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_ADDR | PERF_SAMPLE_CPU;

// Core PMUs whose PEBS records carry the data linear address (Haswell on).
const std::set<std::string, std::less<>> kIntelDataLaPmus = {
    "haswell",          "broadwell",         "skylake",          "icelake",
    "icelake_server",   "tigerlake",         "sapphire_rapids",  "granite_rapids",
    "alderlake_hybrid", "meteorlake_hybrid", "lunarlake_hybrid", "arrowlake_hybrid",
};

// L3-miss loads by memory kind on the server models that have them
// (tools/perf/pmu-events: skylakex, cascadelakex, icelakex, sapphirerapids,
// emeraldrapids, graniterapids).
struct TierEvent {
  const char* name;
  const char* terms;
  EventKind kind;
  uint64_t period;
};
constexpr TierEvent kLocalDram{"MEM_LOAD_L3_MISS_RETIRED.LOCAL_DRAM", "event=0xd3,umask=0x1",
                               EventKind::kLoadLocalDram, 20011};
constexpr TierEvent kRemoteDram{"MEM_LOAD_L3_MISS_RETIRED.REMOTE_DRAM", "event=0xd3,umask=0x2",
                                EventKind::kLoadRemoteDram, 5003};
constexpr TierEvent kLocalPmm{"MEM_LOAD_RETIRED.LOCAL_PMM", "event=0xd1,umask=0x80",
                              EventKind::kLoadPmem, 5003};
constexpr TierEvent kLocalCxl{"MEM_LOAD_RETIRED.LOCAL_CXL_MEM", "event=0xd1,umask=0x80",
                              EventKind::kLoadCxl, 5003};

std::vector<TierEvent> intelTierEvents(const CpuId& cpu) {
  if (cpu.family != 6) return {};
  switch (cpu.model) {
    case 85:  // Skylake-SP; Cascade Lake and Cooper Lake from stepping 5
      if (cpu.stepping >= 5) return {kLocalDram, kRemoteDram, kLocalPmm};
      return {kLocalDram, kRemoteDram};
    case 106:  // Ice Lake-SP
    case 108:  // Ice Lake-D
    case 143:  // Sapphire Rapids
    case 207:  // Emerald Rapids
      return {kLocalDram, kRemoteDram, kLocalPmm};
    case 173:  // Granite Rapids
    case 174:  // Granite Rapids-D
      return {kLocalDram, kRemoteDram, kLocalCxl};
    default:
      return {};
  }
}

EventSpec pebsSpec(const PmuInfo& pmu, const SelectOptions& options, uint8_t precise) {
  EventSpec spec;
  spec.pmu = pmu.name;
  spec.type = pmu.type;
  spec.precise_ip = precise;
  spec.sample_type = kBaseSampleType | PERF_SAMPLE_WEIGHT | PERF_SAMPLE_DATA_SRC;
  if (options.physical_addresses) spec.sample_type |= PERF_SAMPLE_PHYS_ADDR;
  spec.min_period = 1000;  // PEBS assists cost; shorter periods risk throttling
  spec.max_period = 1ULL << 31;
  return spec;
}

tier::Result<std::vector<EventSpec>> selectIntel(const tier::FsRoot& sys, const CpuId& cpu,
                                                 const SelectOptions& options) {
  std::string core = hasPmu(sys, "cpu") ? "cpu" : hasPmu(sys, "cpu_core") ? "cpu_core" : "";
  if (core.empty()) {
    return noPmu(cpuText(cpu) + " without a core PMU: /sys/" + std::string(kDevices) +
                 " has no 'cpu' or 'cpu_core' (the kernel exposes no hardware PMU, e.g. a VM "
                 "without a virtual PMU)");
  }
  auto pmu = readPmu(sys, core);
  if (!pmu) return noPmu("cannot read the core PMU: " + pmu.error().message());
  std::string shown = pmu->pmu_name.empty() ? core : pmu->pmu_name;
  if (pmu->max_precise && *pmu->max_precise == 0) {
    return noPmu("the core PMU '" + shown +
                 "' has no PEBS (caps/max_precise is 0; a VM without PEBS passthrough?)");
  }
  const bool known = kIntelDataLaPmus.contains(pmu->pmu_name);
  if (!known && !pmu->events.contains("mem-loads")) {
    return noPmu("the core PMU '" + shown +
                 "' offers no PEBS data-address events (no events/mem-loads)");
  }
  const uint8_t precise = static_cast<uint8_t>(std::clamp(pmu->max_precise.value_or(2), 1, 2));
  std::vector<EventSpec> specs;
  std::vector<std::string> skipped;

  if (options.load_latency) {
    std::string terms;
    if (auto it = pmu->events.find("mem-loads"); it != pmu->events.end()) {
      terms = withoutTerm(it->second, "ldlat");
    } else {
      terms = "event=0xcd,umask=0x1";
    }
    if (!pmu->format.contains("ldlat")) {
      skipped.push_back("load latency (no format/ldlat)");
    } else {
      EventSpec spec = pebsSpec(*pmu, options, precise);
      spec.name = "MEM_TRANS_RETIRED.LOAD_LATENCY ldlat=" + std::to_string(options.ldlat_cycles);
      spec.kind = EventKind::kLoadLatency;
      spec.sample_period = 10007;
      terms += ",ldlat=" + std::to_string(options.ldlat_cycles);
      if (auto ok = applyTerms(pmu->format, terms, spec); !ok) {
        return noPmu("cannot encode " + spec.name + ": " + ok.error().message());
      }
      if (auto it = pmu->events.find("mem-loads-aux"); it != pmu->events.end()) {
        EventSpec leader;
        if (auto ok = applyTerms(pmu->format, it->second, leader); !ok) {
          return noPmu("cannot encode mem-loads-aux: " + ok.error().message());
        }
        spec.aux_leader_config = leader.config;
      }
      specs.push_back(std::move(spec));
    }
  }

  if (options.tier_loads) {
    for (const TierEvent& event : intelTierEvents(cpu)) {
      EventSpec spec = pebsSpec(*pmu, options, precise);
      spec.name = event.name;
      spec.kind = event.kind;
      spec.sample_period = event.period;
      if (auto ok = applyTerms(pmu->format, event.terms, spec); !ok) {
        return noPmu("cannot encode " + spec.name + ": " + ok.error().message());
      }
      specs.push_back(std::move(spec));
    }
  }

  if (options.stores) {
    EventSpec spec = pebsSpec(*pmu, options, precise);
    std::string terms;
    if (auto it = pmu->events.find("mem-stores"); it != pmu->events.end()) {
      terms = it->second;
      spec.name = "mem-stores (" + terms + ")";
    } else {
      terms = "event=0xd0,umask=0x82";
      spec.name = "MEM_INST_RETIRED.ALL_STORES";
    }
    spec.kind = EventKind::kStore;
    spec.all_stores = true;
    spec.sample_period = 100003;
    if (auto ok = applyTerms(pmu->format, terms, spec); !ok) {
      return noPmu("cannot encode " + spec.name + ": " + ok.error().message());
    }
    specs.push_back(std::move(spec));
  }

  if (specs.empty()) {
    std::string why = "the core PMU '" + shown + "' offers none of the selected events";
    for (const auto& s : skipped)
      why += "; " + s;
    return noPmu(why);
  }
  return specs;
}

tier::Result<std::vector<EventSpec>> selectAmd(const tier::FsRoot& sys, const tier::FsRoot& proc,
                                               const CpuId& cpu, const SelectOptions& options) {
  if (!hasPmu(sys, "ibs_op")) {
    std::string why = cpuText(cpu) + " without the ibs_op PMU: /sys/" + devicePath("ibs_op") +
                      " is missing (IBS not exposed by the kernel or the hypervisor)";
    if (!hasPmu(sys, "cpu")) why += "; there is no core PMU 'cpu' either (no hardware PMU at all)";
    return noPmu(why);
  }
  auto pmu = readPmu(sys, "ibs_op");
  if (!pmu) return noPmu("cannot read the ibs_op PMU: " + pmu.error().message());

  EventSpec spec;
  spec.pmu = "ibs_op";
  spec.kind = EventKind::kIbsOp;
  spec.type = pmu->type;
  spec.precise_ip = 0;
  spec.exclude_kernel = false;  // IBS has no privilege filter; the reader drops kernel addresses
  spec.sample_type = kBaseSampleType | PERF_SAMPLE_WEIGHT | PERF_SAMPLE_DATA_SRC;
  if (options.physical_addresses) spec.sample_type |= PERF_SAMPLE_PHYS_ADDR;
  spec.period_granularity = 16;  // the low 4 bits of IbsOpMaxCnt do not exist
  spec.min_period = 1024;
  spec.max_period = 0xFFFF0;
  spec.sample_period = 65536;

  std::string terms;
  auto add = [&](const std::string& term) {
    if (!terms.empty()) terms += ',';
    terms += term;
  };
  if (pmu->format.contains("cnt_ctl")) add("cnt_ctl=1");  // count ops, not cycles
  if (pmu->format.contains("l3missonly")) add("l3missonly=1");
  if (pmu->format.contains("ldlat") && options.ldlat_cycles >= 128 &&
      options.ldlat_cycles <= 2048) {
    add("ldlat=" + std::to_string(options.ldlat_cycles));
  }
  spec.name = "ibs_op (" + (terms.empty() ? std::string("cycles") : terms) + ")";
  if (auto ok = applyTerms(pmu->format, terms, spec); !ok) {
    return noPmu("cannot encode " + spec.name + ": " + ok.error().message());
  }
  // Per-thread IBS events exist from Linux 6.2.
  if (auto release = proc.readFile("sys/kernel/osrelease")) {
    auto [major, minor] = kernelVersion(*release);
    spec.per_task = major > 6 || (major == 6 && minor >= 2);
  } else {
    spec.per_task = false;
  }
  return std::vector<EventSpec>{std::move(spec)};
}

}  // namespace

std::string_view kindName(EventKind kind) {
  switch (kind) {
    case EventKind::kLoadLatency:
      return "load-latency";
    case EventKind::kLoadLocalDram:
      return "load-local-dram";
    case EventKind::kLoadRemoteDram:
      return "load-remote-dram";
    case EventKind::kLoadPmem:
      return "load-pmem";
    case EventKind::kLoadCxl:
      return "load-cxl";
    case EventKind::kStore:
      return "store";
    case EventKind::kIbsOp:
      return "ibs-op";
    case EventKind::kPageFault:
      return "page-fault";
  }
  return "unknown";
}

tier::Result<CpuId> parseCpuinfo(std::string_view text) {
  CpuId cpu;
  for (std::string_view line : split(text, '\n')) {
    if (tier::trim(line).empty()) {
      if (!cpu.vendor.empty() || cpu.family >= 0) break;  // end of the first processor
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = tier::trim(line.substr(0, colon));
    std::string_view value = tier::trim(line.substr(colon + 1));
    auto number = [&](int& field) -> tier::Result<void> {
      auto parsed = tier::parseU64(value);
      if (!parsed || *parsed > 0xffff) {
        return tier::fail(EINVAL,
                          "cpuinfo: bad " + std::string(key) + " '" + std::string(value) + "'");
      }
      field = static_cast<int>(*parsed);
      return {};
    };
    if (key == "vendor_id") {
      cpu.vendor = std::string(value);
    } else if (key == "cpu family") {
      if (auto ok = number(cpu.family); !ok) return std::unexpected(ok.error());
    } else if (key == "model") {
      if (auto ok = number(cpu.model); !ok) return std::unexpected(ok.error());
    } else if (key == "stepping") {
      if (value != "unknown") {
        if (auto ok = number(cpu.stepping); !ok) return std::unexpected(ok.error());
      }
    }
  }
  return cpu;
}

tier::Result<FormatField> parseFormat(std::string_view text) {
  std::string_view body = tier::trim(text);
  size_t colon = body.find(':');
  if (colon == std::string_view::npos) {
    return tier::fail(EINVAL, "bad format '" + std::string(body) + "'");
  }
  std::string_view word = body.substr(0, colon);
  FormatField field;
  if (word == "config") {
    field.word = 0;
  } else if (word == "config1") {
    field.word = 1;
  } else if (word == "config2") {
    field.word = 2;
  } else {
    return tier::fail(EINVAL, "format word '" + std::string(word) + "' is not supported");
  }
  int width = 0;
  for (std::string_view range : split(body.substr(colon + 1), ',')) {
    size_t dash = range.find('-');
    auto lo = tier::parseU64(range.substr(0, dash));
    auto hi = dash == std::string_view::npos ? lo : tier::parseU64(range.substr(dash + 1));
    if (!lo || !hi || *lo > *hi || *hi > 63) {
      return tier::fail(EINVAL, "bad bit range '" + std::string(range) + "' in format '" +
                                    std::string(body) + "'");
    }
    field.ranges.emplace_back(static_cast<int>(*lo), static_cast<int>(*hi));
    width += static_cast<int>(*hi - *lo + 1);
  }
  if (width > 64)
    return tier::fail(EINVAL, "format '" + std::string(body) + "' wider than 64 bits");
  return field;
}

tier::Result<void> applyTerms(const PmuFormat& format, std::string_view terms, EventSpec& spec) {
  std::array<uint64_t*, 3> words = {&spec.config, &spec.config1, &spec.config2};
  for (std::string_view term : split(terms, ',')) {
    term = tier::trim(term);
    if (term.empty()) continue;
    size_t eq = term.find('=');
    std::string_view name = term.substr(0, eq);
    uint64_t value = 1;
    if (eq != std::string_view::npos) {
      auto parsed = tier::parseU64(term.substr(eq + 1));
      if (!parsed) return tier::fail(EINVAL, "bad value in term '" + std::string(term) + "'");
      value = *parsed;
    }
    auto it = format.find(name);
    if (it == format.end()) {
      return tier::fail(ENOENT, "the PMU has no format field '" + std::string(name) + "'");
    }
    const FormatField& field = it->second;
    int width = 0;
    for (auto [lo, hi] : field.ranges)
      width += hi - lo + 1;
    if (width < 64 && (value >> width) != 0) {
      return tier::fail(ERANGE, "value of '" + std::string(term) + "' does not fit in " +
                                    std::to_string(width) + " bits");
    }
    uint64_t& word = *words[static_cast<size_t>(field.word)];
    for (auto [lo, hi] : field.ranges) {
      int n = hi - lo + 1;
      uint64_t mask = n == 64 ? ~0ULL : ((1ULL << n) - 1);
      word = (word & ~(mask << lo)) | ((value & mask) << lo);
      value = n == 64 ? 0 : value >> n;
    }
  }
  return {};
}

tier::Result<std::vector<EventSpec>> selectEvents(const tier::FsRoot& sys, const tier::FsRoot& proc,
                                                  const SelectOptions& options) {
  CpuId cpu;
  if (auto text = proc.readFile("cpuinfo")) {
    if (auto parsed = parseCpuinfo(*text)) cpu = *parsed;
  }
  if (cpu.vendor == "AuthenticAMD" || cpu.vendor == "HygonGenuine") {
    return selectAmd(sys, proc, cpu, options);
  }
  if (cpu.vendor == "GenuineIntel") return selectIntel(sys, cpu, options);
  // Unknown or unreadable vendor: go by what the kernel exposes.
  if (hasPmu(sys, "ibs_op")) return selectAmd(sys, proc, cpu, options);
  if (hasPmu(sys, "cpu") || hasPmu(sys, "cpu_core")) {
    auto intel = selectIntel(sys, cpu, options);
    if (intel) return intel;
  }
  return noPmu(cpuText(cpu) + ": neither Intel PEBS nor AMD IBS is exposed in /sys/" +
               std::string(kDevices));
}

EventSpec pageFaultEvent(uint64_t period) {
  EventSpec spec;
  spec.name = "page-faults";
  spec.pmu = "software";
  spec.kind = EventKind::kPageFault;
  spec.type = PERF_TYPE_SOFTWARE;
  spec.config = PERF_COUNT_SW_PAGE_FAULTS;
  spec.sample_type = kBaseSampleType;
  spec.sample_period = period == 0 ? 1 : period;
  spec.min_period = 1;
  spec.max_period = 1ULL << 20;
  return spec;
}

}  // namespace tierd::sampling::perf
