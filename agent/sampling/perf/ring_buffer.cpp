#include "sampling/perf/ring_buffer.h"

#include <linux/perf_event.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdio>
#include <cstring>
#include <string>

namespace tierd::sampling::perf {

namespace {

// Sequential reads of native-endian fields from a record body; `ok` turns
// false (and stays false) when a read would run past the end.
class Cursor {
 public:
  explicit Cursor(std::span<const std::byte> bytes) : bytes_(bytes) {}

  uint64_t u64() {
    uint64_t value = 0;
    read(&value, sizeof value);
    return value;
  }
  // Two u32 fields packed in one u64 slot ({u32 pid, tid}, {u32 cpu, res}).
  std::pair<uint32_t, uint32_t> u32pair() {
    uint32_t pair[2] = {0, 0};
    read(pair, sizeof pair);
    return {pair[0], pair[1]};
  }
  uint32_t u32() {
    uint32_t value = 0;
    read(&value, sizeof value);
    return value;
  }
  void skip(uint64_t n) {
    if (!ok_ || n > bytes_.size() - off_) {
      ok_ = false;
      return;
    }
    off_ += static_cast<size_t>(n);
  }
  void alignTo8() { skip((8 - off_ % 8) % 8); }
  size_t remaining() const { return bytes_.size() - off_; }
  bool ok() const { return ok_; }

 private:
  void read(void* dst, size_t n) {
    if (!ok_ || n > bytes_.size() - off_) {
      ok_ = false;
      return;
    }
    std::memcpy(dst, bytes_.data() + off_, n);
    off_ += n;
  }

  std::span<const std::byte> bytes_;
  size_t off_ = 0;
  bool ok_ = true;
};

constexpr uint64_t kHeaderSize = sizeof(perf_event_header);

}  // namespace

tier::Result<RingMemory> ringFromMmap(void* base, size_t length, size_t page_size) {
  if (base == nullptr || page_size == 0 || length <= page_size) {
    return tier::fail(EINVAL, "perf mmap: a mapping of at least two pages is needed");
  }
  auto* meta = static_cast<perf_event_mmap_page*>(base);
  uint64_t offset = meta->data_offset;
  uint64_t size = meta->data_size;
  if (size == 0) {  // kernels before 4.1 leave these 0: data follows the first page
    offset = page_size;
    size = length - page_size;
  }
  if (offset > length || size > length - offset) {
    return tier::fail(EINVAL, "perf mmap: data area " + std::to_string(offset) + "+" +
                                  std::to_string(size) + " outside the mapping of " +
                                  std::to_string(length) + " bytes");
  }
  RingMemory memory;
  memory.data_head = &meta->data_head;
  memory.data_tail = &meta->data_tail;
  memory.data = std::span<const std::byte>(static_cast<const std::byte*>(base) + offset,
                                           static_cast<size_t>(size));
  return memory;
}

tier::Result<RingReader> RingReader::create(RingMemory memory, ReaderOptions options) {
  if (memory.data_head == nullptr || memory.data_tail == nullptr) {
    return tier::fail(EINVAL, "perf ring: data_head and data_tail are needed");
  }
  if (memory.data.size() < kHeaderSize || !std::has_single_bit(memory.data.size())) {
    return tier::fail(EINVAL,
                      "perf ring: the data area must be a power of two of at least 8 bytes, not " +
                          std::to_string(memory.data.size()));
  }
  uint64_t unsupported = options.sample_type & ~kSupportedSampleType;
  if (unsupported != 0) {
    char hex[32];
    std::snprintf(hex, sizeof hex, "0x%llx", static_cast<unsigned long long>(unsupported));
    return tier::fail(EINVAL, std::string("perf ring: sample_type bits ") + hex +
                                  " change the record layout and are not parsed");
  }
  if ((options.sample_type & PERF_SAMPLE_WEIGHT) &&
      (options.sample_type & PERF_SAMPLE_WEIGHT_STRUCT)) {
    return tier::fail(EINVAL, "perf ring: PERF_SAMPLE_WEIGHT and WEIGHT_STRUCT exclude each other");
  }
  return RingReader(memory, options);
}

uint64_t RingReader::pending() const {
  uint64_t head = std::atomic_ref<__u64>(*mem_.data_head).load(std::memory_order_acquire);
  uint64_t tail = std::atomic_ref<__u64>(*mem_.data_tail).load(std::memory_order_relaxed);
  return head - tail;
}

void RingReader::copyOut(uint64_t offset, size_t length, std::byte* dst) const {
  size_t size = mem_.data.size();
  size_t pos = static_cast<size_t>(offset & mask_);
  size_t first = std::min(length, size - pos);
  std::memcpy(dst, mem_.data.data() + pos, first);
  if (first < length) std::memcpy(dst + first, mem_.data.data(), length - first);
}

RingReader::RingReader(RingMemory memory, ReaderOptions options)
    : mem_(memory),
      options_(options),
      mask_(memory.data.size() - 1),
      layout_(fixedLayout(options.sample_type)) {}

RingReader::FixedLayout RingReader::fixedLayout(uint64_t type) {
  FixedLayout layout;
  if (type & (PERF_SAMPLE_CALLCHAIN | PERF_SAMPLE_RAW)) return layout;  // variable length
  int offset = 0;
  // The kernel's field order, as parseSample walks it.
  const auto field = [&](uint64_t bit, int* at) {
    if (!(type & bit)) return;
    if (at) *at = offset;
    offset += 8;
  };
  field(PERF_SAMPLE_IDENTIFIER, nullptr);
  field(PERF_SAMPLE_IP, nullptr);
  field(PERF_SAMPLE_TID, &layout.tid);
  field(PERF_SAMPLE_TIME, &layout.time);
  field(PERF_SAMPLE_ADDR, &layout.addr);
  field(PERF_SAMPLE_ID, nullptr);
  field(PERF_SAMPLE_STREAM_ID, nullptr);
  field(PERF_SAMPLE_CPU, &layout.cpu);
  field(PERF_SAMPLE_PERIOD, nullptr);
  field(PERF_SAMPLE_WEIGHT | PERF_SAMPLE_WEIGHT_STRUCT, &layout.weight);
  field(PERF_SAMPLE_DATA_SRC, &layout.data_src);
  field(PERF_SAMPLE_TRANSACTION, nullptr);
  field(PERF_SAMPLE_PHYS_ADDR, &layout.phys);
  field(PERF_SAMPLE_CGROUP, nullptr);
  field(PERF_SAMPLE_DATA_PAGE_SIZE, nullptr);
  field(PERF_SAMPLE_CODE_PAGE_SIZE, nullptr);
  layout.fixed = true;
  layout.body_bytes = static_cast<size_t>(offset);
  return layout;
}

bool RingReader::parseFixed(std::span<const std::byte> body, AccessSample& sample) const {
  if (body.size() < layout_.body_bytes) return false;
  const auto u64At = [&](int offset) {
    uint64_t value = 0;
    std::memcpy(&value, body.data() + offset, sizeof value);
    return value;
  };
  const auto u32At = [&](int offset) {
    uint32_t value = 0;
    std::memcpy(&value, body.data() + offset, sizeof value);
    return value;
  };
  if (layout_.tid >= 0) {
    sample.pid = static_cast<pid_t>(u32At(layout_.tid));
    sample.tid = static_cast<pid_t>(u32At(layout_.tid + 4));
  } else {
    sample.pid = options_.default_pid;
  }
  if (layout_.time >= 0) sample.time_ns = u64At(layout_.time);
  if (layout_.addr >= 0) sample.address = u64At(layout_.addr);
  if (layout_.cpu >= 0) sample.cpu = static_cast<int>(u32At(layout_.cpu));
  if (layout_.weight >= 0) {
    perf_sample_weight weight{};
    weight.full = u64At(layout_.weight);
    const uint64_t value =
        (options_.sample_type & PERF_SAMPLE_WEIGHT) ? weight.full : weight.var1_dw;
    sample.weight = value == 0 ? 1 : value;
  }
  if (layout_.data_src >= 0 && ((u64At(layout_.data_src) >> PERF_MEM_OP_SHIFT) & PERF_MEM_OP_STORE))
    sample.write = true;
  if (layout_.phys >= 0) sample.physical = u64At(layout_.phys);
  if (options_.all_stores) sample.write = true;
  return true;
}

bool RingReader::parseSample(std::span<const std::byte> body, AccessSample& sample) const {
  if (layout_.fixed) return parseFixed(body, sample);
  const uint64_t type = options_.sample_type;
  Cursor c(body);
  if (type & PERF_SAMPLE_IDENTIFIER) c.u64();
  if (type & PERF_SAMPLE_IP) c.u64();
  if (type & PERF_SAMPLE_TID) {
    auto [pid, tid] = c.u32pair();
    sample.pid = static_cast<pid_t>(pid);
    sample.tid = static_cast<pid_t>(tid);
  } else {
    sample.pid = options_.default_pid;
  }
  if (type & PERF_SAMPLE_TIME) sample.time_ns = c.u64();
  if (type & PERF_SAMPLE_ADDR) sample.address = c.u64();
  if (type & PERF_SAMPLE_ID) c.u64();
  if (type & PERF_SAMPLE_STREAM_ID) c.u64();
  if (type & PERF_SAMPLE_CPU) sample.cpu = static_cast<int>(c.u32pair().first);
  if (type & PERF_SAMPLE_PERIOD) c.u64();
  if (type & PERF_SAMPLE_CALLCHAIN) {
    uint64_t nr = c.u64();
    if (nr > c.remaining() / 8) return false;
    c.skip(nr * 8);
  }
  if (type & PERF_SAMPLE_RAW) {
    uint32_t size = c.u32();
    c.skip(size);
    c.alignTo8();
  }
  if (type & (PERF_SAMPLE_WEIGHT | PERF_SAMPLE_WEIGHT_STRUCT)) {
    perf_sample_weight weight{};
    weight.full = c.u64();
    uint64_t value = (type & PERF_SAMPLE_WEIGHT) ? weight.full : weight.var1_dw;
    sample.weight = value == 0 ? 1 : value;
  }
  if (type & PERF_SAMPLE_DATA_SRC) {
    uint64_t data_src = c.u64();
    if ((data_src >> PERF_MEM_OP_SHIFT) & PERF_MEM_OP_STORE) sample.write = true;
  }
  if (type & PERF_SAMPLE_TRANSACTION) c.u64();
  if (type & PERF_SAMPLE_PHYS_ADDR) sample.physical = c.u64();
  if (type & PERF_SAMPLE_CGROUP) c.u64();
  if (type & PERF_SAMPLE_DATA_PAGE_SIZE) c.u64();
  if (type & PERF_SAMPLE_CODE_PAGE_SIZE) c.u64();
  if (options_.all_stores) sample.write = true;
  return c.ok();
}

size_t RingReader::drain(std::vector<AccessSample>& out, size_t max_samples) {
  const uint64_t size = mem_.data.size();
  const uint64_t head = std::atomic_ref<__u64>(*mem_.data_head).load(std::memory_order_acquire);
  const uint64_t start = std::atomic_ref<__u64>(*mem_.data_tail).load(std::memory_order_relaxed);
  uint64_t tail = start;
  size_t appended = 0;

  auto resync = [&] {  // a header we cannot trust: drop everything published
    ++stats_.base.malformed;
    tail = head;
    partial_at_ = UINT64_MAX;
  };

  while (tail != head) {
    const uint64_t avail = head - tail;
    if (avail > size) {  // more than the buffer holds: the offsets are garbage
      resync();
      break;
    }
    if (avail < kHeaderSize) break;  // the head is inside a header: wait for the rest

    perf_event_header header{};
    copyOut(tail, sizeof header, reinterpret_cast<std::byte*>(&header));
    const uint64_t record = header.size;
    if (record < kHeaderSize || record % 8 != 0 || record > size) {
      resync();
      break;
    }
    if (record > avail) {
      if (partial_at_ == tail && partial_head_ != head) {
        resync();  // the head moved on but this record still does not fit
      } else {
        partial_at_ = tail;  // the head is inside this record: leave it for the next call
        partial_head_ = head;
      }
      break;
    }
    partial_at_ = UINT64_MAX;
    if (header.type == PERF_RECORD_SAMPLE && appended >= max_samples) break;

    // The record's bytes, contiguous: in place, or copied when it wraps.
    std::span<const std::byte> bytes;
    const size_t pos = static_cast<size_t>(tail & mask_);
    if (pos + record <= size) {
      bytes = mem_.data.subspan(pos, static_cast<size_t>(record));
    } else {
      scratch_.resize(static_cast<size_t>(record));
      copyOut(tail, static_cast<size_t>(record), scratch_.data());
      bytes = std::span<const std::byte>(scratch_.data(), scratch_.size());
    }
    const std::span<const std::byte> body = bytes.subspan(kHeaderSize);

    switch (header.type) {
      case PERF_RECORD_SAMPLE: {
        AccessSample sample;
        if (!parseSample(body, sample)) {
          ++stats_.base.malformed;
        } else if (sample.address == 0) {
          ++stats_.no_address;
        } else if (options_.drop_kernel_addresses && (sample.address >> 63) != 0) {
          ++stats_.kernel_addresses;
        } else {
          out.push_back(sample);
          ++stats_.base.samples;
          ++appended;
        }
        break;
      }
      case PERF_RECORD_LOST: {  // {u64 id; u64 lost;}
        Cursor c(body);
        c.u64();
        uint64_t lost = c.u64();
        if (c.ok())
          stats_.base.lost += lost;
        else
          ++stats_.base.malformed;
        break;
      }
      case PERF_RECORD_LOST_SAMPLES: {  // {u64 lost;}
        Cursor c(body);
        uint64_t lost = c.u64();
        if (c.ok())
          stats_.base.lost += lost;
        else
          ++stats_.base.malformed;
        break;
      }
      case PERF_RECORD_THROTTLE:
        ++stats_.base.throttled;
        break;
      case PERF_RECORD_UNTHROTTLE:
        ++stats_.unthrottled;
        break;
      default:
        ++stats_.other_records;
        break;
    }
    tail += record;
  }

  stats_.bytes += tail - start;
  if (tail != start) {
    std::atomic_ref<__u64>(*mem_.data_tail).store(tail, std::memory_order_release);
  }
  return appended;
}

}  // namespace tierd::sampling::perf
