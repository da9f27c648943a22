// The perf ring reader on synthetic buffers: layouts, wrap-around, lost and
// throttle records, and headers that cannot be trusted.
#include "sampling/perf/ring_buffer.h"

#include <gtest/gtest.h>
#include <linux/perf_event.h>
#include <sys/mman.h>
#include <unistd.h>

#include "synthetic_ring.h"

namespace tierd::sampling::perf {
namespace {

using test::Bytes;
using test::SampleFields;
using test::SyntheticRing;

constexpr uint64_t kBasic = PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_ADDR |
                            PERF_SAMPLE_CPU | PERF_SAMPLE_PERIOD;
constexpr uint64_t kPebs =
    kBasic | PERF_SAMPLE_WEIGHT | PERF_SAMPLE_DATA_SRC | PERF_SAMPLE_PHYS_ADDR;

RingReader makeReader(SyntheticRing& ring, uint64_t sample_type, ReaderOptions options = {}) {
  options.sample_type = sample_type;
  auto reader = RingReader::create(ring.memory(), options);
  EXPECT_TRUE(reader.has_value()) << reader.error().message();
  return std::move(*reader);
}

uint64_t storeSrc() {
  return uint64_t{PERF_MEM_OP_STORE} << PERF_MEM_OP_SHIFT;
}
uint64_t loadSrc() {
  return uint64_t{PERF_MEM_OP_LOAD} << PERF_MEM_OP_SHIFT;
}

TEST(RingReader, SingleSampleWithEveryPebsField) {
  SyntheticRing ring(4096);
  SampleFields f;
  f.weight = 312;
  f.data_src = storeSrc();
  f.phys = 0x1234567000;
  ring.append(test::sampleRecord(kPebs, f));
  RingReader reader = makeReader(ring, kPebs);

  std::vector<AccessSample> out;
  EXPECT_EQ(reader.drain(out), 1u);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].pid, 100);
  EXPECT_EQ(out[0].tid, 101);
  EXPECT_EQ(out[0].address, 0x7f0000001000u);
  EXPECT_EQ(out[0].physical, 0x1234567000u);
  EXPECT_EQ(out[0].weight, 312u);
  EXPECT_EQ(out[0].time_ns, 123456789u);
  EXPECT_EQ(out[0].cpu, 3);
  EXPECT_TRUE(out[0].write);
  EXPECT_EQ(ring.tail(), ring.head());
  EXPECT_EQ(reader.stats().base.samples, 1u);
  EXPECT_EQ(reader.stats().base.malformed, 0u);
  EXPECT_EQ(reader.pending(), 0u);
}

TEST(RingReader, LoadIsNotAWriteAndZeroWeightIsOne) {
  SyntheticRing ring(4096);
  SampleFields f;
  f.data_src = loadSrc();
  ring.append(test::sampleRecord(kPebs, f));
  RingReader reader = makeReader(ring, kPebs);
  std::vector<AccessSample> out;
  reader.drain(out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].write);
  EXPECT_EQ(out[0].weight, 1u);
}

TEST(RingReader, WeightStructTakesTheFirstWord) {
  constexpr uint64_t type = kBasic | PERF_SAMPLE_WEIGHT_STRUCT | PERF_SAMPLE_DATA_SRC;
  SyntheticRing ring(4096);
  SampleFields f;
  perf_sample_weight w{};
  w.var1_dw = 450;  // load latency
  w.var2_w = 77;    // instruction latency
  f.weight = w.full;
  ring.append(test::sampleRecord(type, f));
  RingReader reader = makeReader(ring, type);
  std::vector<AccessSample> out;
  reader.drain(out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].weight, 450u);
}

TEST(RingReader, AllStoresOptionMarksEverySampleAsWrite) {
  SyntheticRing ring(4096);
  ring.append(test::sampleRecord(kBasic, SampleFields{}));
  ReaderOptions options;
  options.all_stores = true;
  RingReader reader = makeReader(ring, kBasic, options);
  std::vector<AccessSample> out;
  reader.drain(out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].write);
}

TEST(RingReader, MinimalLayoutUsesDefaults) {
  SyntheticRing ring(4096);
  ring.append(test::sampleRecord(PERF_SAMPLE_ADDR, SampleFields{}));
  ReaderOptions options;
  options.default_pid = 4242;
  RingReader reader = makeReader(ring, PERF_SAMPLE_ADDR, options);
  std::vector<AccessSample> out;
  reader.drain(out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].pid, 4242);
  EXPECT_EQ(out[0].cpu, -1);
  EXPECT_EQ(out[0].weight, 1u);
  EXPECT_EQ(out[0].address, 0x7f0000001000u);
}

TEST(RingReader, VariableFieldsBeforeLaterOnesAreSkipped) {
  constexpr uint64_t type = PERF_SAMPLE_IDENTIFIER | kBasic | PERF_SAMPLE_ID |
                            PERF_SAMPLE_STREAM_ID | PERF_SAMPLE_CALLCHAIN | PERF_SAMPLE_RAW |
                            PERF_SAMPLE_WEIGHT | PERF_SAMPLE_DATA_SRC | PERF_SAMPLE_TRANSACTION |
                            PERF_SAMPLE_PHYS_ADDR | PERF_SAMPLE_CGROUP |
                            PERF_SAMPLE_DATA_PAGE_SIZE | PERF_SAMPLE_CODE_PAGE_SIZE;
  SyntheticRing ring(4096);
  SampleFields f;
  f.callchain = {1, 2, 3};
  f.raw = Bytes(12, std::byte{0xAB});  // 4 + 12 = 16: padded as the kernel does
  f.weight = 99;
  f.data_src = storeSrc();
  f.phys = 0xabc000;
  ring.append(test::sampleRecord(type, f));
  RingReader reader = makeReader(ring, type);
  std::vector<AccessSample> out;
  reader.drain(out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].address, f.addr);
  EXPECT_EQ(out[0].weight, 99u);
  EXPECT_TRUE(out[0].write);
  EXPECT_EQ(out[0].physical, 0xabc000u);
  EXPECT_EQ(reader.stats().base.malformed, 0u);
}

TEST(RingReader, FixedLayoutsReadWhatTheWalkOverEveryFieldReads) {
  // Without a callchain or raw data the reader reads fields at offsets found
  // once; with them it walks the fields. Both must agree, field by field, for
  // every fixed-size field the kernel can put before and between them.
  constexpr uint64_t kOptional[] = {PERF_SAMPLE_IDENTIFIER,  PERF_SAMPLE_IP,
                                    PERF_SAMPLE_TID,         PERF_SAMPLE_TIME,
                                    PERF_SAMPLE_ID,          PERF_SAMPLE_STREAM_ID,
                                    PERF_SAMPLE_CPU,         PERF_SAMPLE_PERIOD,
                                    PERF_SAMPLE_WEIGHT,      PERF_SAMPLE_DATA_SRC,
                                    PERF_SAMPLE_TRANSACTION, PERF_SAMPLE_PHYS_ADDR,
                                    PERF_SAMPLE_CGROUP,      PERF_SAMPLE_DATA_PAGE_SIZE};
  for (uint64_t mask = 0; mask < (1u << std::size(kOptional)); mask += 37) {
    uint64_t type = PERF_SAMPLE_ADDR;
    for (size_t bit = 0; bit < std::size(kOptional); ++bit)
      if (mask & (1u << bit)) type |= kOptional[bit];
    SampleFields f;
    f.pid = 7 + static_cast<uint32_t>(mask);
    f.tid = 9;
    f.time = 1000 + mask;
    f.addr = 0x7f0000000000 + (mask << 12);
    f.cpu = 1;
    f.weight = mask % 3;  // 0 reads as 1
    f.data_src = mask % 2 ? storeSrc() : loadSrc();
    f.phys = 0x5000 + mask;
    SyntheticRing fixed_ring(4096), walked_ring(4096);
    fixed_ring.append(test::sampleRecord(type, f));
    walked_ring.append(test::sampleRecord(type | PERF_SAMPLE_CALLCHAIN, f));
    RingReader fixed = makeReader(fixed_ring, type);
    RingReader walked = makeReader(walked_ring, type | PERF_SAMPLE_CALLCHAIN);
    std::vector<AccessSample> a, b;
    ASSERT_EQ(fixed.drain(a), 1u) << "sample_type " << type;
    ASSERT_EQ(walked.drain(b), 1u) << "sample_type " << type;
    EXPECT_EQ(a[0].pid, b[0].pid) << type;
    EXPECT_EQ(a[0].tid, b[0].tid) << type;
    EXPECT_EQ(a[0].time_ns, b[0].time_ns) << type;
    EXPECT_EQ(a[0].address, f.addr) << type;
    EXPECT_EQ(a[0].address, b[0].address) << type;
    EXPECT_EQ(a[0].cpu, b[0].cpu) << type;
    EXPECT_EQ(a[0].weight, b[0].weight) << type;
    EXPECT_EQ(a[0].write, b[0].write) << type;
    EXPECT_EQ(a[0].physical, b[0].physical) << type;
  }
  // A body shorter than the layout is malformed, not read past its end.
  SyntheticRing ring(4096);
  ring.append(test::sampleRecord(kBasic, SampleFields{}));
  RingReader reader = makeReader(ring, kBasic | PERF_SAMPLE_PHYS_ADDR);
  std::vector<AccessSample> out;
  EXPECT_EQ(reader.drain(out), 0u);
  EXPECT_EQ(reader.stats().base.malformed, 1u);
}

TEST(RingReader, ManyRecordsAcrossManyWraps) {
  SyntheticRing ring(1024);
  RingReader reader = makeReader(ring, kPebs);
  std::vector<AccessSample> out;
  uint64_t next = 0;
  for (int round = 0; round < 200; ++round) {
    for (int i = 0; i < 7; ++i) {  // 7 x 80 bytes fit in 1024
      SampleFields f;
      f.addr = 0x10000 + 64 * next++;
      ring.append(test::sampleRecord(kPebs, f));
    }
    reader.drain(out);
    EXPECT_EQ(ring.tail(), ring.head());
  }
  ASSERT_EQ(out.size(), 1400u);
  for (size_t i = 0; i < out.size(); ++i)
    ASSERT_EQ(out[i].address, 0x10000 + 64 * i) << i;
  EXPECT_EQ(reader.stats().base.samples, 1400u);
  EXPECT_EQ(reader.stats().base.malformed, 0u);
  EXPECT_EQ(reader.stats().bytes, 1400u * 80u);
}

TEST(RingReader, RecordWhoseBodyWrapsAroundTheEnd) {
  SyntheticRing ring(4096, /*start=*/4096 - 16);  // header and 8 body bytes before the end
  SampleFields f;
  f.addr = 0xdead000;
  f.weight = 5;
  ring.append(test::sampleRecord(kPebs, f));
  RingReader reader = makeReader(ring, kPebs);
  std::vector<AccessSample> out;
  reader.drain(out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].address, 0xdead000u);
  EXPECT_EQ(out[0].weight, 5u);
  EXPECT_EQ(ring.tail(), 4096u - 16u + 80u);
}

TEST(RingReader, HeaderThatWrapsAroundTheEnd) {
  SyntheticRing ring(4096, /*start=*/4096 - 4);  // the header itself straddles the end
  SampleFields f;
  f.addr = 0xbeef000;
  ring.append(test::sampleRecord(kBasic, f));
  ring.append(test::sampleRecord(kBasic, f));
  RingReader reader = makeReader(ring, kBasic);
  std::vector<AccessSample> out;
  reader.drain(out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].address, 0xbeef000u);
  EXPECT_EQ(out[1].address, 0xbeef000u);
  EXPECT_EQ(reader.stats().base.malformed, 0u);
}

TEST(RingReader, LostAndThrottleRecordsAreCounted) {
  SyntheticRing ring(4096);
  ring.append(test::lostRecord(5));
  ring.append(test::lostSamplesRecord(3));
  ring.append(test::throttleRecord(true));
  ring.append(test::throttleRecord(false));
  ring.append(test::commRecord());
  ring.append(test::sampleRecord(kBasic, SampleFields{}));
  RingReader reader = makeReader(ring, kBasic);
  std::vector<AccessSample> out;
  EXPECT_EQ(reader.drain(out), 1u);
  EXPECT_EQ(reader.stats().base.lost, 8u);
  EXPECT_EQ(reader.stats().base.throttled, 1u);
  EXPECT_EQ(reader.stats().unthrottled, 1u);
  EXPECT_EQ(reader.stats().other_records, 1u);
  EXPECT_EQ(reader.stats().base.malformed, 0u);
  EXPECT_EQ(ring.tail(), ring.head());
}

TEST(RingReader, ZeroSizeHeaderResynchronises) {
  SyntheticRing ring(4096);
  ring.append(test::sampleRecord(kBasic, SampleFields{}));
  Bytes bad(64, std::byte{0});  // header {type 0, misc 0, size 0}
  ring.append(bad);
  RingReader reader = makeReader(ring, kBasic);
  std::vector<AccessSample> out;
  EXPECT_EQ(reader.drain(out), 1u);
  EXPECT_EQ(reader.stats().base.malformed, 1u);
  EXPECT_EQ(ring.tail(), ring.head());  // everything published was consumed

  ring.append(test::sampleRecord(kBasic, SampleFields{}));  // and the next record parses
  EXPECT_EQ(reader.drain(out), 1u);
  EXPECT_EQ(reader.stats().base.malformed, 1u);
}

TEST(RingReader, HeaderLargerThanTheBufferResynchronises) {
  SyntheticRing ring(4096);
  ring.append(test::record(PERF_RECORD_SAMPLE, Bytes(56), /*size_override=*/8192 - 8));
  ring.append(test::sampleRecord(kBasic, SampleFields{}));
  RingReader reader = makeReader(ring, kBasic);
  std::vector<AccessSample> out;
  EXPECT_EQ(reader.drain(out), 0u);
  EXPECT_EQ(reader.stats().base.malformed, 1u);
  EXPECT_EQ(ring.tail(), ring.head());
}

TEST(RingReader, HeaderSizeNotAMultipleOfEightResynchronises) {
  SyntheticRing ring(4096);
  ring.append(test::record(PERF_RECORD_SAMPLE, Bytes(56), /*size_override=*/61));
  RingReader reader = makeReader(ring, kBasic);
  std::vector<AccessSample> out;
  reader.drain(out);
  EXPECT_EQ(reader.stats().base.malformed, 1u);
  EXPECT_EQ(ring.tail(), ring.head());
}

TEST(RingReader, HeaderLargerThanWhatWasPublishedIsMalformedOnceTheHeadMovesOn) {
  SyntheticRing ring(4096);
  // A header claiming 400 bytes followed by only 100 published: could be a
  // record in progress, so it is left alone.
  ring.put(test::record(PERF_RECORD_SAMPLE, Bytes(92), /*size_override=*/400));
  ring.publish();
  RingReader reader = makeReader(ring, kBasic);
  std::vector<AccessSample> out;
  EXPECT_EQ(reader.drain(out), 0u);
  EXPECT_EQ(reader.stats().base.malformed, 0u);
  EXPECT_EQ(ring.tail(), 0u);
  // The head moves on and the record still does not fit: not a record in
  // progress (the kernel publishes whole records). Everything is dropped.
  ring.append(Bytes(100, std::byte{0}));
  EXPECT_EQ(reader.drain(out), 0u);
  EXPECT_EQ(reader.stats().base.malformed, 1u);
  EXPECT_EQ(ring.tail(), ring.head());
}

TEST(RingReader, HeadPastTheBufferSizeResynchronises) {
  SyntheticRing ring(4096);
  ring.publish(100000);  // garbage: more than the buffer could hold
  RingReader reader = makeReader(ring, kBasic);
  std::vector<AccessSample> out;
  EXPECT_EQ(reader.drain(out), 0u);
  EXPECT_EQ(reader.stats().base.malformed, 1u);
  EXPECT_EQ(ring.tail(), 100000u);
}

TEST(RingReader, PartialRecordIsLeftForTheNextRead) {
  SyntheticRing ring(4096);
  ring.append(test::sampleRecord(kBasic, SampleFields{}));
  const uint64_t first_end = ring.head();
  SampleFields f;
  f.addr = 0x5000;
  ring.put(test::sampleRecord(kBasic, f));
  ring.publish(first_end + 24);  // the head is in the middle of the second record
  RingReader reader = makeReader(ring, kBasic);
  std::vector<AccessSample> out;
  EXPECT_EQ(reader.drain(out), 1u);
  EXPECT_EQ(ring.tail(), first_end);
  EXPECT_EQ(reader.pending(), 24u);
  EXPECT_EQ(reader.stats().base.malformed, 0u);

  ring.publish(first_end + 4);  // even inside the header
  EXPECT_EQ(reader.drain(out), 0u);
  EXPECT_EQ(ring.tail(), first_end);

  ring.publish();  // now whole
  EXPECT_EQ(reader.drain(out), 1u);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].address, 0x5000u);
  EXPECT_EQ(ring.tail(), ring.head());
  EXPECT_EQ(reader.stats().base.malformed, 0u);
}

TEST(RingReader, ShortSampleBodyIsMalformedAndSkippedBySize) {
  SyntheticRing ring(4096);
  // A sample record with only 16 body bytes where the layout needs 48.
  ring.append(test::record(PERF_RECORD_SAMPLE, Bytes(16)));
  SampleFields f;
  f.addr = 0x9000;
  ring.append(test::sampleRecord(kBasic, f));
  RingReader reader = makeReader(ring, kBasic);
  std::vector<AccessSample> out;
  EXPECT_EQ(reader.drain(out), 1u);
  EXPECT_EQ(out[0].address, 0x9000u);
  EXPECT_EQ(reader.stats().base.malformed, 1u);
}

TEST(RingReader, CallchainLongerThanTheRecordIsMalformed) {
  constexpr uint64_t type = kBasic | PERF_SAMPLE_CALLCHAIN;
  SyntheticRing ring(4096);
  test::ByteWriter w;
  for (int i = 0; i < 6; ++i)
    w.u64(1);   // ip, tid, time, addr, cpu, period
  w.u64(1000);  // callchain nr far beyond the record
  ring.append(test::record(PERF_RECORD_SAMPLE, w.data()));
  RingReader reader = makeReader(ring, type);
  std::vector<AccessSample> out;
  EXPECT_EQ(reader.drain(out), 0u);
  EXPECT_EQ(reader.stats().base.malformed, 1u);
  EXPECT_EQ(ring.tail(), ring.head());
}

TEST(RingReader, MaxSamplesStopsEarlyAndLeavesTheRest) {
  SyntheticRing ring(4096);
  for (int i = 0; i < 5; ++i) {
    SampleFields f;
    f.addr = 0x1000u * static_cast<uint64_t>(i + 1);
    ring.append(test::sampleRecord(kBasic, f));
  }
  RingReader reader = makeReader(ring, kBasic);
  std::vector<AccessSample> out;
  EXPECT_EQ(reader.drain(out, 3), 3u);
  EXPECT_EQ(ring.tail(), 3u * 56u);
  EXPECT_EQ(reader.drain(out), 2u);
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(out[4].address, 0x5000u);
  EXPECT_EQ(ring.tail(), ring.head());
}

TEST(RingReader, SamplesWithoutAnAddressOrInTheKernelAreDropped) {
  SyntheticRing ring(4096);
  SampleFields none;
  none.addr = 0;
  SampleFields kernel;
  kernel.addr = 0xffff888000001000;
  ring.append(test::sampleRecord(kBasic, none));
  ring.append(test::sampleRecord(kBasic, kernel));
  ring.append(test::sampleRecord(kBasic, SampleFields{}));
  ReaderOptions options;
  options.drop_kernel_addresses = true;
  RingReader reader = makeReader(ring, kBasic, options);
  std::vector<AccessSample> out;
  EXPECT_EQ(reader.drain(out), 1u);
  EXPECT_EQ(reader.stats().no_address, 1u);
  EXPECT_EQ(reader.stats().kernel_addresses, 1u);
  EXPECT_EQ(reader.stats().base.samples, 1u);
}

TEST(RingReader, NothingPublishedLeavesTheTailAlone) {
  SyntheticRing ring(4096, 800);
  RingReader reader = makeReader(ring, kBasic);
  std::vector<AccessSample> out;
  EXPECT_EQ(reader.drain(out), 0u);
  EXPECT_EQ(ring.tail(), 800u);
  EXPECT_EQ(reader.stats().bytes, 0u);
}

TEST(RingReader, CreateRejectsWhatItCannotRead) {
  SyntheticRing ring(4096);
  SyntheticRing odd(3000);
  ReaderOptions options;
  options.sample_type = kBasic;
  EXPECT_EQ(RingReader::create(odd.memory(), options).error().errnum, EINVAL);
  options.sample_type = kBasic | PERF_SAMPLE_READ;
  auto read = RingReader::create(ring.memory(), options);
  ASSERT_FALSE(read);
  EXPECT_NE(read.error().context.find("0x10"), std::string::npos) << read.error().context;
  options.sample_type = kBasic | PERF_SAMPLE_BRANCH_STACK;
  EXPECT_FALSE(RingReader::create(ring.memory(), options));
  options.sample_type = kBasic | PERF_SAMPLE_WEIGHT | PERF_SAMPLE_WEIGHT_STRUCT;
  EXPECT_FALSE(RingReader::create(ring.memory(), options));
  RingMemory missing = ring.memory();
  missing.data_tail = nullptr;
  options.sample_type = kBasic;
  EXPECT_FALSE(RingReader::create(missing, options));
}

TEST(RingFromMmap, UsesTheMetadataPageOffsets) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t length = 3 * page;
  void* base = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(base, MAP_FAILED);
  auto* meta = static_cast<perf_event_mmap_page*>(base);

  auto legacy = ringFromMmap(base, length, page);  // data_offset/data_size 0: old kernels
  ASSERT_TRUE(legacy) << legacy.error().message();
  EXPECT_EQ(legacy->data.size(), 2 * page);
  EXPECT_EQ(static_cast<const void*>(legacy->data.data()), static_cast<char*>(base) + page);
  EXPECT_EQ(legacy->data_head, &meta->data_head);
  EXPECT_EQ(legacy->data_tail, &meta->data_tail);

  meta->data_offset = page;
  meta->data_size = page;
  auto modern = ringFromMmap(base, length, page);
  ASSERT_TRUE(modern);
  EXPECT_EQ(modern->data.size(), page);

  meta->data_size = 4 * page;  // beyond the mapping
  EXPECT_FALSE(ringFromMmap(base, length, page));
  EXPECT_FALSE(ringFromMmap(base, page, page));
  ::munmap(base, length);
}

}  // namespace
}  // namespace tierd::sampling::perf
