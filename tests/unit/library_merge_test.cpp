#include <gtest/gtest.h>

#include "discovery/library_reader.h"

namespace tier {
namespace {

PlatformFacts withMemdev(uint64_t pmem_size) {
  PlatformFacts facts;
  facts.memdevs.push_back(CxlMemdev{.name = "mem0", .serial = 42, .pmem_size = pmem_size});
  return facts;
}

TEST(LibraryMerge, AgreementYieldsNoNotesAndAddsHealth) {
  auto sysfs = withMemdev(256 << 20);
  auto library = withMemdev(256 << 20);
  library.memdevs[0].health = CxlHealth{.media_status = "normal", .life_used_percent = 3};
  EXPECT_TRUE(mergeLibraryFacts(sysfs, library).empty());
  ASSERT_TRUE(sysfs.memdevs[0].health);
  EXPECT_EQ(sysfs.memdevs[0].health->life_used_percent, 3);
}

TEST(LibraryMerge, NamesEachDisagreement) {
  auto sysfs = withMemdev(256 << 20);
  auto library = withMemdev(512 << 20);
  library.dax_devices.push_back(DaxDevice{.name = "dax0.0"});
  auto notes = mergeLibraryFacts(sysfs, library);
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_NE(notes[0].find("dax0.0"), std::string::npos) << notes[0];
  EXPECT_NE(notes[1].find("mem0 pmem_size"), std::string::npos) << notes[1];
}

}  // namespace
}  // namespace tier
