// Reader of the perf mmap ring buffer. Pure logic over memory it is handed:
// the sampler gives it the kernel's mapping, the tests give it synthetic
// buffers. It parses PERF_RECORD_SAMPLE for a configured sample_type, counts
// PERF_RECORD_LOST / LOST_SAMPLES and THROTTLE / UNTHROTTLE, skips every other
// record by its size, and never trusts a header: a size of 0, a size that is
// not a multiple of 8 or larger than the buffer is counted as malformed and the
// reader resynchronises by consuming everything the kernel has published.
//
// Protocol (perf_event_open(2), "mmap layout"): data_head is read with acquire
// semantics (the kernel's writes to the data area become visible before it),
// the records between data_tail and data_head are consumed, then data_tail is
// stored with release semantics (our reads finish before the kernel may reuse
// the space). Offsets grow without bound; the position in the data area is
// offset & (size - 1), and records may wrap around its end.
#pragma once

#include <linux/perf_event.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"
#include "sampling/sample.h"

namespace tierd::sampling::perf {

// The parts of one mapping the reader uses.
struct RingMemory {
  __u64* data_head = nullptr;       // written by the kernel (perf_event_mmap_page::data_head)
  __u64* data_tail = nullptr;       // written by the reader
  std::span<const std::byte> data;  // the data area; its size is a power of two
};

// The RingMemory of a perf mmap: `base` is the mapping (the perf_event_mmap_page
// followed by the data area), `length` its size in bytes. Uses the page's
// data_offset/data_size when the kernel fills them (4.1+), else one page of
// metadata followed by the rest.
tier::Result<RingMemory> ringFromMmap(void* base, size_t length, size_t page_size);

struct ReaderOptions {
  uint64_t sample_type = 0;  // attr.sample_type of the event writing this ring
  bool all_stores = false;   // every sample is a store (e.g. MEM_INST_RETIRED.ALL_STORES)
  pid_t default_pid = 0;     // pid for samples without PERF_SAMPLE_TID
  // Drop samples with kernel addresses (top bit set), for PMUs that cannot
  // exclude the kernel themselves (AMD IBS).
  bool drop_kernel_addresses = false;
};

// What the reader saw beyond the shared SamplerStats.
struct ReaderStats {
  SamplerStats base;  // samples, lost, throttled, malformed
  uint64_t unthrottled = 0;
  uint64_t no_address = 0;        // samples whose address was 0 (dropped)
  uint64_t kernel_addresses = 0;  // samples dropped by drop_kernel_addresses
  uint64_t other_records = 0;     // MMAP, COMM, ... skipped by their size
  uint64_t bytes = 0;             // consumed
};

// The sample_type bits the reader can parse; others change the record layout
// in ways that depend on more attributes (READ, BRANCH_STACK, REGS_*, STACK_USER, AUX).
constexpr uint64_t kSupportedSampleType =
    PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME |
    PERF_SAMPLE_ADDR | PERF_SAMPLE_ID | PERF_SAMPLE_STREAM_ID | PERF_SAMPLE_CPU |
    PERF_SAMPLE_PERIOD | PERF_SAMPLE_CALLCHAIN | PERF_SAMPLE_RAW | PERF_SAMPLE_WEIGHT |
    PERF_SAMPLE_WEIGHT_STRUCT | PERF_SAMPLE_DATA_SRC | PERF_SAMPLE_TRANSACTION |
    PERF_SAMPLE_PHYS_ADDR | PERF_SAMPLE_CGROUP | PERF_SAMPLE_DATA_PAGE_SIZE |
    PERF_SAMPLE_CODE_PAGE_SIZE;

class RingReader {
 public:
  // Fails (EINVAL) when the data area is empty or not a power of two, a
  // pointer is missing, or sample_type has a bit the reader cannot parse.
  static tier::Result<RingReader> create(RingMemory memory, ReaderOptions options);

  // Consumes what the kernel has published, appending samples with an address
  // to `out`; stops early after `max_samples` samples (the rest stays for the
  // next call). Advances data_tail past every consumed record. Returns the
  // number of samples appended.
  size_t drain(std::vector<AccessSample>& out, size_t max_samples = SIZE_MAX);

  // Bytes published by the kernel and not yet consumed.
  uint64_t pending() const;
  // The data area's size in bytes: what may be pending before records are lost.
  uint64_t capacity() const { return mem_.data.size(); }

  const ReaderStats& stats() const { return stats_; }
  const ReaderOptions& options() const { return options_; }

 private:
  RingReader(RingMemory memory, ReaderOptions options);

  void copyOut(uint64_t offset, size_t length, std::byte* dst) const;
  // Parses the body of a PERF_RECORD_SAMPLE (the record without its header).
  bool parseSample(std::span<const std::byte> body, AccessSample& sample) const;

  // Without a callchain or raw data every field sits at the same offset in
  // every sample: parsing reads those offsets instead of walking sample_type
  // bit by bit (a sixth of the hint-fault sampler's instructions per sample).
  struct FixedLayout {
    bool fixed = false;
    size_t body_bytes = 0;
    int tid = -1, time = -1, addr = -1, cpu = -1, weight = -1, data_src = -1, phys = -1;
  };
  static FixedLayout fixedLayout(uint64_t sample_type);
  bool parseFixed(std::span<const std::byte> body, AccessSample& sample) const;

  RingMemory mem_;
  ReaderOptions options_;
  uint64_t mask_;
  FixedLayout layout_;
  ReaderStats stats_;
  std::vector<std::byte> scratch_;
  // A record whose header claims more bytes than were published is left for
  // the next call once; if the head has moved on and it still does not fit,
  // it cannot be a record in progress (the kernel publishes whole records).
  uint64_t partial_at_ = UINT64_MAX;
  uint64_t partial_head_ = 0;
};

}  // namespace tierd::sampling::perf
