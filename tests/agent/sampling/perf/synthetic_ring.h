// Synthetic perf ring buffers and records for the reader's tests: a data area
// with head/tail words, and builders that lay records out as the kernel does.
#pragma once

#include <linux/perf_event.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "sampling/perf/ring_buffer.h"

namespace tierd::sampling::perf::test {

using Bytes = std::vector<std::byte>;

class ByteWriter {
 public:
  void u64(uint64_t value) { put(&value, sizeof value); }
  void u32(uint32_t value) { put(&value, sizeof value); }
  void u32pair(uint32_t a, uint32_t b) {
    u32(a);
    u32(b);
  }
  void bytes(const Bytes& data) { bytes_.insert(bytes_.end(), data.begin(), data.end()); }
  const Bytes& data() const { return bytes_; }

 private:
  void put(const void* p, size_t n) {
    auto* b = static_cast<const std::byte*>(p);
    bytes_.insert(bytes_.end(), b, b + n);
  }
  Bytes bytes_;
};

// A record: header (type, misc, size = 8 + body) followed by the body.
inline Bytes record(uint32_t type, const Bytes& body, uint16_t size_override = 0) {
  perf_event_header header{};
  header.type = type;
  header.misc = 0;
  header.size = size_override ? size_override : static_cast<uint16_t>(sizeof header + body.size());
  Bytes out(sizeof header);
  std::memcpy(out.data(), &header, sizeof header);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

struct SampleFields {
  uint64_t identifier = 77;
  uint64_t ip = 0x401000;
  uint32_t pid = 100, tid = 101;
  uint64_t time = 123456789;
  uint64_t addr = 0x7f0000001000;
  uint64_t id = 77, stream_id = 78;
  uint32_t cpu = 3;
  uint64_t period = 1;
  std::vector<uint64_t> callchain;
  Bytes raw;  // (4 + raw.size()) should be a multiple of 8, as the kernel pads it
  uint64_t weight = 0;
  uint64_t data_src = 0;
  uint64_t transaction = 0;
  uint64_t phys = 0;
  uint64_t cgroup = 0, data_page_size = 0, code_page_size = 0;
};

// The body of a PERF_RECORD_SAMPLE, fields in the kernel's order.
inline Bytes sampleBody(uint64_t type, const SampleFields& f) {
  ByteWriter w;
  if (type & PERF_SAMPLE_IDENTIFIER) w.u64(f.identifier);
  if (type & PERF_SAMPLE_IP) w.u64(f.ip);
  if (type & PERF_SAMPLE_TID) w.u32pair(f.pid, f.tid);
  if (type & PERF_SAMPLE_TIME) w.u64(f.time);
  if (type & PERF_SAMPLE_ADDR) w.u64(f.addr);
  if (type & PERF_SAMPLE_ID) w.u64(f.id);
  if (type & PERF_SAMPLE_STREAM_ID) w.u64(f.stream_id);
  if (type & PERF_SAMPLE_CPU) w.u32pair(f.cpu, 0);
  if (type & PERF_SAMPLE_PERIOD) w.u64(f.period);
  if (type & PERF_SAMPLE_CALLCHAIN) {
    w.u64(f.callchain.size());
    for (uint64_t ip : f.callchain)
      w.u64(ip);
  }
  if (type & PERF_SAMPLE_RAW) {
    w.u32(static_cast<uint32_t>(f.raw.size()));
    w.bytes(f.raw);
  }
  if (type & (PERF_SAMPLE_WEIGHT | PERF_SAMPLE_WEIGHT_STRUCT)) w.u64(f.weight);
  if (type & PERF_SAMPLE_DATA_SRC) w.u64(f.data_src);
  if (type & PERF_SAMPLE_TRANSACTION) w.u64(f.transaction);
  if (type & PERF_SAMPLE_PHYS_ADDR) w.u64(f.phys);
  if (type & PERF_SAMPLE_CGROUP) w.u64(f.cgroup);
  if (type & PERF_SAMPLE_DATA_PAGE_SIZE) w.u64(f.data_page_size);
  if (type & PERF_SAMPLE_CODE_PAGE_SIZE) w.u64(f.code_page_size);
  return w.data();
}

inline Bytes sampleRecord(uint64_t type, const SampleFields& f) {
  return record(PERF_RECORD_SAMPLE, sampleBody(type, f));
}

inline Bytes lostRecord(uint64_t lost) {
  ByteWriter w;
  w.u64(5);  // id
  w.u64(lost);
  return record(PERF_RECORD_LOST, w.data());
}

inline Bytes lostSamplesRecord(uint64_t lost) {
  ByteWriter w;
  w.u64(lost);
  return record(PERF_RECORD_LOST_SAMPLES, w.data());
}

inline Bytes throttleRecord(bool throttle) {
  ByteWriter w;
  w.u64(1000);  // time
  w.u64(5);     // id
  w.u64(5);     // stream_id
  return record(throttle ? PERF_RECORD_THROTTLE : PERF_RECORD_UNTHROTTLE, w.data());
}

inline Bytes commRecord() {
  ByteWriter w;
  w.u32pair(100, 101);
  Bytes name(16, std::byte{'x'});
  w.bytes(name);
  return record(PERF_RECORD_COMM, w.data());
}

// A data area with its head and tail words; the writer position is `write_at`.
class SyntheticRing {
 public:
  explicit SyntheticRing(size_t size, uint64_t start = 0)
      : data_(size, std::byte{0xEE}), head_(start), tail_(start), write_at_(start) {}

  RingMemory memory() { return RingMemory{&head_, &tail_, data_}; }

  // Copies bytes at the writer position (wrapping); does not publish.
  void put(const Bytes& bytes) {
    for (std::byte b : bytes) {
      data_[static_cast<size_t>(write_at_ & (data_.size() - 1))] = b;
      ++write_at_;
    }
  }
  void publish() { head_ = write_at_; }
  void publish(uint64_t head) { head_ = head; }
  void append(const Bytes& bytes) {
    put(bytes);
    publish();
  }

  uint64_t head() const { return head_; }
  uint64_t tail() const { return tail_; }
  uint64_t writeAt() const { return write_at_; }
  size_t size() const { return data_.size(); }

 private:
  Bytes data_;
  alignas(8) __u64 head_;
  alignas(8) __u64 tail_;
  uint64_t write_at_;
};

}  // namespace tierd::sampling::perf::test
