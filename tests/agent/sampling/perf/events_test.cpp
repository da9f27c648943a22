// Event selection on small fixture trees: an Intel Sapphire Rapids host, an
// AMD Zen host with IBS, and hosts without a PMU (like this one).
#include "sampling/perf/events.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/perf_event.h>

#include "../../../unit/temp_tree.h"

namespace tierd::sampling::perf {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr const char* kDev = "sys/bus/event_source/devices/";

std::string cpuinfo(const std::string& vendor, int family, int model, int stepping) {
  std::string block = "processor\t: 0\nvendor_id\t: " + vendor +
                      "\ncpu family\t: " + std::to_string(family) +
                      "\nmodel\t\t: " + std::to_string(model) +
                      "\nmodel name\t: test cpu\nstepping\t: " + std::to_string(stepping) +
                      "\nflags\t\t: fpu vme\n\n";
  std::string second = block;
  second.replace(second.find("processor\t: 0"), 13, "processor\t: 1");
  return block + second;
}

// The software-only PMUs every kernel has (this host has just these, plus msr and uprobe).
void softwarePmus(const tier::test::TempTree& t) {
  t.file(std::string(kDev) + "software/type", "1\n");
  t.file(std::string(kDev) + "tracepoint/type", "2\n");
  t.file(std::string(kDev) + "breakpoint/type", "5\n");
}

void intelCoreFormat(const tier::test::TempTree& t, const std::string& pmu) {
  const std::string f = std::string(kDev) + pmu + "/format/";
  t.file(f + "event", "config:0-7\n");
  t.file(f + "umask", "config:8-15\n");
  t.file(f + "edge", "config:18\n");
  t.file(f + "pc", "config:19\n");
  t.file(f + "inv", "config:23\n");
  t.file(f + "cmask", "config:24-31\n");
  t.file(f + "ldlat", "config1:0-15\n");
  t.file(f + "frontend", "config1:0-23\n");
  t.file(f + "offcore_rsp", "config1:0-63\n");
}

void sapphireRapids(const tier::test::TempTree& t) {
  softwarePmus(t);
  const std::string cpu = std::string(kDev) + "cpu/";
  t.file(cpu + "type", "4\n");
  t.file(cpu + "caps/pmu_name", "sapphire_rapids\n");
  t.file(cpu + "caps/max_precise", "3\n");
  t.file(cpu + "events/mem-loads", "event=0xcd,umask=0x1,ldlat=3\n");
  t.file(cpu + "events/mem-loads-aux", "event=0x03,umask=0x82\n");
  t.file(cpu + "events/mem-stores", "event=0xcd,umask=0x2\n");
  t.file(cpu + "events/cpu-cycles", "event=0x3c\n");
  intelCoreFormat(t, "cpu");
  t.file("proc/cpuinfo", cpuinfo("GenuineIntel", 6, 143, 8));
  t.file("proc/sys/kernel/osrelease", "6.1.0-18-amd64\n");
}

void amdZen4(const tier::test::TempTree& t, const std::string& release) {
  softwarePmus(t);
  t.file(std::string(kDev) + "cpu/type", "4\n");
  t.file(std::string(kDev) + "cpu/format/event", "config:0-7,32-35\n");
  t.file(std::string(kDev) + "cpu/format/umask", "config:8-15\n");
  const std::string ibs = std::string(kDev) + "ibs_op/";
  t.file(ibs + "type", "11\n");
  t.file(ibs + "format/cnt_ctl", "config:19\n");
  t.file(ibs + "format/l3missonly", "config:16\n");
  t.file(std::string(kDev) + "ibs_fetch/type", "10\n");
  t.file(std::string(kDev) + "ibs_fetch/format/rand_en", "config:57\n");
  t.file("proc/cpuinfo", cpuinfo("AuthenticAMD", 25, 17, 1));
  t.file("proc/sys/kernel/osrelease", release + "\n");
}

struct Roots {
  tier::FsRoot sys, proc;
};
Roots roots(const tier::test::TempTree& t) {
  t.dir("sys");
  t.dir("proc");
  auto sys = tier::FsRoot::open((t.root() / "sys").string());
  auto proc = tier::FsRoot::open((t.root() / "proc").string());
  EXPECT_TRUE(sys && proc);
  return Roots{std::move(*sys), std::move(*proc)};
}

const EventSpec* findKind(const std::vector<EventSpec>& specs, EventKind kind) {
  for (const auto& spec : specs) {
    if (spec.kind == kind) return &spec;
  }
  return nullptr;
}

TEST(SelectEvents, SapphireRapidsGetsPebsLoadLatencyTierLoadsAndStores) {
  tier::test::TempTree t;
  sapphireRapids(t);
  auto r = roots(t);
  auto specs = selectEvents(r.sys, r.proc);
  ASSERT_TRUE(specs) << specs.error().message();
  ASSERT_EQ(specs->size(), 5u);

  const EventSpec* ldlat = findKind(*specs, EventKind::kLoadLatency);
  ASSERT_NE(ldlat, nullptr);
  EXPECT_EQ(ldlat->name, "MEM_TRANS_RETIRED.LOAD_LATENCY ldlat=64");
  EXPECT_EQ(ldlat->pmu, "cpu");
  EXPECT_EQ(ldlat->type, 4u);
  EXPECT_EQ(ldlat->config, 0x01cdu);
  EXPECT_EQ(ldlat->config1, 64u);
  EXPECT_EQ(ldlat->precise_ip, 2);
  ASSERT_TRUE(ldlat->aux_leader_config.has_value());
  EXPECT_EQ(*ldlat->aux_leader_config, 0x8203u);
  EXPECT_TRUE(ldlat->sample_type & PERF_SAMPLE_ADDR);
  EXPECT_TRUE(ldlat->sample_type & PERF_SAMPLE_WEIGHT);
  EXPECT_TRUE(ldlat->sample_type & PERF_SAMPLE_DATA_SRC);
  EXPECT_FALSE(ldlat->sample_type & PERF_SAMPLE_PHYS_ADDR);
  EXPECT_TRUE(ldlat->exclude_kernel);
  EXPECT_TRUE(ldlat->per_task);

  const EventSpec* local = findKind(*specs, EventKind::kLoadLocalDram);
  ASSERT_NE(local, nullptr);
  EXPECT_EQ(local->name, "MEM_LOAD_L3_MISS_RETIRED.LOCAL_DRAM");
  EXPECT_EQ(local->config, 0x01d3u);
  EXPECT_FALSE(local->aux_leader_config.has_value());
  const EventSpec* remote = findKind(*specs, EventKind::kLoadRemoteDram);
  ASSERT_NE(remote, nullptr);
  EXPECT_EQ(remote->config, 0x02d3u);
  const EventSpec* pmem = findKind(*specs, EventKind::kLoadPmem);
  ASSERT_NE(pmem, nullptr);
  EXPECT_EQ(pmem->config, 0x80d1u);
  const EventSpec* stores = findKind(*specs, EventKind::kStore);
  ASSERT_NE(stores, nullptr);
  EXPECT_EQ(stores->config, 0x02cdu);  // from events/mem-stores
  EXPECT_TRUE(stores->all_stores);
  EXPECT_EQ(findKind(*specs, EventKind::kIbsOp), nullptr);
}

TEST(SelectEvents, OptionsChooseEventsThresholdAndPhysicalAddresses) {
  tier::test::TempTree t;
  sapphireRapids(t);
  auto r = roots(t);
  SelectOptions options;
  options.ldlat_cycles = 128;
  options.tier_loads = false;
  options.stores = false;
  options.physical_addresses = true;
  auto specs = selectEvents(r.sys, r.proc, options);
  ASSERT_TRUE(specs) << specs.error().message();
  ASSERT_EQ(specs->size(), 1u);
  EXPECT_EQ((*specs)[0].config1, 128u);
  EXPECT_TRUE((*specs)[0].sample_type & PERF_SAMPLE_PHYS_ADDR);
}

TEST(SelectEvents, SkylakeServerWithoutPmemAndWithoutAuxLeader) {
  tier::test::TempTree t;
  softwarePmus(t);
  const std::string cpu = std::string(kDev) + "cpu/";
  t.file(cpu + "type", "4\n");
  t.file(cpu + "caps/pmu_name", "skylake\n");
  t.file(cpu + "caps/max_precise", "3\n");
  t.file(cpu + "events/mem-loads", "event=0xcd,umask=0x1,ldlat=3\n");
  t.file(cpu + "events/mem-stores", "event=0xd0,umask=0x82\n");
  intelCoreFormat(t, "cpu");
  t.file("proc/cpuinfo", cpuinfo("GenuineIntel", 6, 85, 4));  // Skylake-SP, not Cascade Lake
  auto r = roots(t);
  auto specs = selectEvents(r.sys, r.proc);
  ASSERT_TRUE(specs) << specs.error().message();
  ASSERT_EQ(specs->size(), 4u);
  EXPECT_FALSE(findKind(*specs, EventKind::kLoadLatency)->aux_leader_config.has_value());
  EXPECT_EQ(findKind(*specs, EventKind::kLoadPmem), nullptr);
  EXPECT_EQ(findKind(*specs, EventKind::kStore)->config, 0x82d0u);
}

TEST(SelectEvents, GraniteRapidsSamplesLocalCxlLoads) {
  tier::test::TempTree t;
  sapphireRapids(t);
  t.file(std::string(kDev) + "cpu/caps/pmu_name", "granite_rapids\n");
  t.file("proc/cpuinfo", cpuinfo("GenuineIntel", 6, 173, 1));
  auto r = roots(t);
  auto specs = selectEvents(r.sys, r.proc);
  ASSERT_TRUE(specs) << specs.error().message();
  const EventSpec* cxl = findKind(*specs, EventKind::kLoadCxl);
  ASSERT_NE(cxl, nullptr);
  EXPECT_EQ(cxl->name, "MEM_LOAD_RETIRED.LOCAL_CXL_MEM");
  EXPECT_EQ(cxl->config, 0x80d1u);
  EXPECT_EQ(findKind(*specs, EventKind::kLoadPmem), nullptr);
}

TEST(SelectEvents, HybridClientUsesTheCoreSidePmu) {
  tier::test::TempTree t;
  softwarePmus(t);
  const std::string core = std::string(kDev) + "cpu_core/";
  t.file(core + "type", "4\n");
  t.file(core + "caps/pmu_name", "alderlake_hybrid\n");
  t.file(core + "events/mem-loads", "event=0xd0,umask=0x5,ldlat=3\n");
  t.file(core + "events/mem-stores", "event=0xd0,umask=0x6\n");
  intelCoreFormat(t, "cpu_core");
  t.file(std::string(kDev) + "cpu_atom/type", "10\n");
  t.file("proc/cpuinfo", cpuinfo("GenuineIntel", 6, 151, 2));
  auto r = roots(t);
  auto specs = selectEvents(r.sys, r.proc);
  ASSERT_TRUE(specs) << specs.error().message();
  ASSERT_EQ(specs->size(), 2u);  // a client: no tier events
  EXPECT_EQ((*specs)[0].pmu, "cpu_core");
  EXPECT_EQ((*specs)[0].config, 0x05d0u);
  EXPECT_EQ((*specs)[0].config1, 64u);
}

TEST(SelectEvents, AmdZen4GetsIbsOpWithL3MissOnly) {
  tier::test::TempTree t;
  amdZen4(t, "6.1.0-18-amd64");
  auto r = roots(t);
  auto specs = selectEvents(r.sys, r.proc);
  ASSERT_TRUE(specs) << specs.error().message();
  ASSERT_EQ(specs->size(), 1u);
  const EventSpec& ibs = (*specs)[0];
  EXPECT_EQ(ibs.kind, EventKind::kIbsOp);
  EXPECT_EQ(ibs.pmu, "ibs_op");
  EXPECT_EQ(ibs.name, "ibs_op (cnt_ctl=1,l3missonly=1)");
  EXPECT_EQ(ibs.type, 11u);
  EXPECT_EQ(ibs.config, (1u << 19) | (1u << 16));
  EXPECT_EQ(ibs.precise_ip, 0);
  EXPECT_FALSE(ibs.exclude_kernel);
  EXPECT_EQ(ibs.period_granularity, 16u);
  EXPECT_EQ(ibs.sample_period % 16, 0u);
  EXPECT_TRUE(ibs.sample_type & PERF_SAMPLE_ADDR);
  EXPECT_TRUE(ibs.sample_type & PERF_SAMPLE_DATA_SRC);
  EXPECT_FALSE(ibs.per_task);  // per-thread IBS needs Linux 6.2
}

TEST(SelectEvents, AmdIbsPerTaskFromLinux62AndZen5LoadLatency) {
  tier::test::TempTree t;
  amdZen4(t, "6.12.9-amd64");
  t.file(std::string(kDev) + "ibs_op/format/ldlat", "config1:0-11\n");
  auto r = roots(t);
  SelectOptions options;
  options.ldlat_cycles = 256;
  auto specs = selectEvents(r.sys, r.proc, options);
  ASSERT_TRUE(specs) << specs.error().message();
  EXPECT_TRUE((*specs)[0].per_task);
  EXPECT_EQ((*specs)[0].config1, 256u);
  EXPECT_THAT((*specs)[0].name, HasSubstr("ldlat=256"));
}

TEST(SelectEvents, ThisHostAmdWithoutIbsHasNoDataAddressPmu) {
  tier::test::TempTree t;  // what this machine shows: software PMUs, msr, uprobe
  softwarePmus(t);
  t.file(std::string(kDev) + "msr/type", "9\n");
  t.file(std::string(kDev) + "uprobe/type", "8\n");
  t.file("proc/cpuinfo", cpuinfo("AuthenticAMD", 25, 1, 1));
  auto r = roots(t);
  auto specs = selectEvents(r.sys, r.proc);
  ASSERT_FALSE(specs);
  EXPECT_EQ(specs.error().errnum, ENODEV);
  EXPECT_THAT(specs.error().context, StartsWith("no data-address sampling PMU on this host: "));
  EXPECT_THAT(specs.error().context, HasSubstr("AuthenticAMD family 25"));
  EXPECT_THAT(specs.error().context, HasSubstr("ibs_op"));
  EXPECT_THAT(specs.error().context, HasSubstr("no core PMU 'cpu' either"));
}

TEST(SelectEvents, IntelVmWithoutPmu) {
  tier::test::TempTree t;
  softwarePmus(t);
  t.file("proc/cpuinfo", cpuinfo("GenuineIntel", 6, 143, 8));
  auto r = roots(t);
  auto specs = selectEvents(r.sys, r.proc);
  ASSERT_FALSE(specs);
  EXPECT_THAT(specs.error().context, StartsWith("no data-address sampling PMU on this host: "));
  EXPECT_THAT(specs.error().context, HasSubstr("no 'cpu' or 'cpu_core'"));
}

TEST(SelectEvents, IntelPmuWithoutPebs) {
  tier::test::TempTree t;
  sapphireRapids(t);
  t.file(std::string(kDev) + "cpu/caps/max_precise", "0\n");
  auto r = roots(t);
  auto specs = selectEvents(r.sys, r.proc);
  ASSERT_FALSE(specs);
  EXPECT_THAT(specs.error().context, HasSubstr("has no PEBS"));
}

TEST(SelectEvents, IntelArchitecturalPmuWithoutMemEvents) {
  tier::test::TempTree t;
  softwarePmus(t);
  t.file(std::string(kDev) + "cpu/type", "4\n");
  t.file(std::string(kDev) + "cpu/caps/pmu_name", "generic_arch_v2\n");
  intelCoreFormat(t, "cpu");
  t.file("proc/cpuinfo", cpuinfo("GenuineIntel", 6, 143, 8));
  auto r = roots(t);
  auto specs = selectEvents(r.sys, r.proc);
  ASSERT_FALSE(specs);
  EXPECT_THAT(specs.error().context, HasSubstr("generic_arch_v2"));
  EXPECT_THAT(specs.error().context, HasSubstr("no events/mem-loads"));
}

TEST(SelectEvents, UnreadableCpuinfoFallsBackToWhatSysfsShows) {
  tier::test::TempTree t;
  amdZen4(t, "6.5.0");
  std::filesystem::remove(t.root() / "proc/cpuinfo");
  auto r = roots(t);
  auto specs = selectEvents(r.sys, r.proc);
  ASSERT_TRUE(specs) << specs.error().message();
  EXPECT_EQ((*specs)[0].kind, EventKind::kIbsOp);
}

TEST(SelectEvents, LiveHostAnswersOrExplains) {
  auto sys = tier::FsRoot::open("/sys");
  auto proc = tier::FsRoot::open("/proc");
  ASSERT_TRUE(sys && proc);
  auto specs = selectEvents(*sys, *proc);
  if (specs) {
    GTEST_SKIP() << "this host has a data-address PMU: " << (*specs)[0].name;
  }
  EXPECT_THAT(specs.error().context, StartsWith("no data-address sampling PMU on this host: "));
}

TEST(PmuFormat, ParsesRangesAndWords) {
  auto a = parseFormat("config:0-7\n");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->word, 0);
  ASSERT_EQ(a->ranges.size(), 1u);
  EXPECT_EQ(a->ranges[0], std::make_pair(0, 7));
  auto b = parseFormat("config1:0-15");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->word, 1);
  auto c = parseFormat("config:0-7,32-35");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->ranges.size(), 2u);
  auto d = parseFormat("config:21");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->ranges[0], std::make_pair(21, 21));
  EXPECT_FALSE(parseFormat("config3:0-7"));
  EXPECT_FALSE(parseFormat("config:7-0"));
  EXPECT_FALSE(parseFormat("config:0-64"));
  EXPECT_FALSE(parseFormat("nonsense"));
}

TEST(PmuFormat, AppliesTermsAcrossSplitFields) {
  PmuFormat format;
  format.emplace("event", *parseFormat("config:0-7,32-35"));
  format.emplace("umask", *parseFormat("config:8-15"));
  format.emplace("edge", *parseFormat("config:18"));
  format.emplace("ldlat", *parseFormat("config1:0-15"));
  EventSpec spec;
  ASSERT_TRUE(applyTerms(format, "event=0x1d3,umask=0x2,edge,ldlat=30", spec));
  EXPECT_EQ(spec.config, 0xd3u | (0x2u << 8) | (1u << 18) | (1ULL << 32));
  EXPECT_EQ(spec.config1, 30u);

  auto unknown = applyTerms(format, "period=1000", spec);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().errnum, ENOENT);
  auto wide = applyTerms(format, "umask=0x1ff", spec);
  ASSERT_FALSE(wide);
  EXPECT_EQ(wide.error().errnum, ERANGE);
  EXPECT_FALSE(applyTerms(format, "umask=zz", spec));
}

TEST(Cpuinfo, FirstProcessorOnly) {
  auto cpu = parseCpuinfo(cpuinfo("GenuineIntel", 6, 143, 8));
  ASSERT_TRUE(cpu);
  EXPECT_EQ(cpu->vendor, "GenuineIntel");
  EXPECT_EQ(cpu->family, 6);
  EXPECT_EQ(cpu->model, 143);
  EXPECT_EQ(cpu->stepping, 8);
  auto arm = parseCpuinfo("processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\n");
  ASSERT_TRUE(arm);
  EXPECT_TRUE(arm->vendor.empty());
  EXPECT_FALSE(parseCpuinfo("vendor_id : x\ncpu family : six\n"));
}

TEST(PageFaultEvent, IsASoftwareEventWithAddresses) {
  EventSpec spec = pageFaultEvent();
  EXPECT_EQ(spec.type, static_cast<uint32_t>(PERF_TYPE_SOFTWARE));
  EXPECT_EQ(spec.config, static_cast<uint64_t>(PERF_COUNT_SW_PAGE_FAULTS));
  EXPECT_EQ(spec.sample_period, 1u);
  EXPECT_TRUE(spec.sample_type & PERF_SAMPLE_ADDR);
  EXPECT_EQ(spec.precise_ip, 0);
  EXPECT_EQ(spec.kind, EventKind::kPageFault);
  EXPECT_EQ(kindName(spec.kind), "page-fault");
}

}  // namespace
}  // namespace tierd::sampling::perf
