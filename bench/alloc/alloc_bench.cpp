// One allocator workload per run, measured through plain malloc/free so that
// whichever allocator is LD_PRELOADed serves it. bench/alloc/run.py runs this
// binary under every allocator, round-robin, and builds the tables.
//
//   alloc_bench pair SIZE THREADS      ns per malloc+touch+free pair
//   alloc_bench larson THREADS         server churn, blocks freed by later threads
//   alloc_bench xmalloc THREADS        producers allocate, consumers free
//   alloc_bench cache-scratch THREADS  passive false sharing
//   alloc_bench churn THREADS          a 256 MiB working set of mixed sizes, reshaped
//
// Output: one line "bench=NAME ns=X hwm_kib=Y": X is the workload's time per
// operation (lower is better), Y the process's peak resident set (VmHWM).
// The workloads follow the published descriptions of larson (Larson & Krishnan),
// xmalloc-test (Lever & Boreham) and cache-scratch (Hoard); the code is ours.
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// Keeps the compiler from pairing and eliding malloc/free.
inline void escape(void* pointer) {
  asm volatile("" : : "g"(pointer) : "memory");
}

double nanosSince(Clock::time_point start) {
  return std::chrono::duration<double, std::nano>(Clock::now() - start).count();
}

long peakResidentKib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

void* mustAllocate(size_t size) {
  void* block = std::malloc(size);
  if (block == nullptr) {
    std::fprintf(stderr, "alloc_bench: malloc(%zu) returned NULL\n", size);
    std::exit(3);
  }
  return block;
}

// A reusable barrier without heap state: libstdc++'s std::barrier allocates
// over-aligned memory (aligned new), which libmemtier does not interpose and
// then crashes freeing; the bench must measure allocators, not trip on that.
class SpinBarrier {
 public:
  explicit SpinBarrier(int threads) : threads_(threads) {}
  void arriveAndWait() {
    int generation = generation_.load();
    if (arrived_.fetch_add(1) + 1 == threads_) {
      arrived_.store(0);
      generation_.fetch_add(1);
      return;
    }
    while (generation_.load() == generation)
      std::this_thread::yield();
  }

 private:
  const int threads_;
  std::atomic<int> arrived_{0};
  std::atomic<int> generation_{0};
};

// Runs `body(thread_index)` on `threads` threads started together.
template <typename Body>
void runThreads(int threads, Body body) {
  std::vector<std::thread> workers;
  for (int index = 0; index < threads; ++index)
    workers.emplace_back(body, index);
  for (auto& worker : workers)
    worker.join();
}

// Times `pairs` malloc+touch+free pairs of `size` bytes; ns per pair.
double timePairs(size_t size, long pairs) {
  auto start = Clock::now();
  for (long i = 0; i < pairs; ++i) {
    auto* block = static_cast<volatile char*>(mustAllocate(size));
    block[0] = static_cast<char>(i);
    escape(const_cast<char*>(block));
    std::free(const_cast<char*>(block));
  }
  return nanosSince(start) / static_cast<double>(pairs);
}

// Per thread: a warm-up round sizes the rounds to about 20 ms each, so a slow
// allocator is not timed for seconds and a fast one not for microseconds;
// then the best of kRounds rounds. The threads' bests are averaged. Rounds
// start together (barrier), so two threads really overlap.
double pairNanos(size_t size, int threads) {
  constexpr int kRounds = 5;
  constexpr double kRoundNanos = 20e6;
  std::vector<double> best(threads, 1e300);
  SpinBarrier sync(threads);
  runThreads(threads, [&](int index) {
    double warm = timePairs(size, 20'000);
    long pairs = std::clamp(static_cast<long>(kRoundNanos / warm), 20'000L, 2'000'000L);
    for (int round = 0; round < kRounds; ++round) {
      sync.arriveAndWait();
      best[index] = std::min(best[index], timePairs(size, pairs));
    }
  });
  double sum = 0;
  for (double value : best)
    sum += value;
  return sum / threads;
}

size_t randomSize(std::minstd_rand& random, size_t smallest, size_t largest) {
  return smallest + random() % (largest - smallest + 1);
}

// Larson: each thread keeps kSlots live blocks of 8..1000 bytes and replaces
// random ones; after kReplacements it ends and a new thread inherits its
// blocks (the server pattern: memory freed by a thread that did not allocate
// it). ns per replacement (a free plus a malloc), wall time over all threads.
double larsonNanos(int threads) {
  constexpr int kSlots = 1000;
  constexpr long kReplacements = 200'000;
  constexpr int kGenerations = 6;
  std::vector<std::vector<void*>> slots(threads, std::vector<void*>(kSlots));
  for (int thread = 0; thread < threads; ++thread) {
    std::minstd_rand random(4141 + thread);
    for (auto& slot : slots[thread])
      slot = mustAllocate(randomSize(random, 8, 1000));
  }
  auto start = Clock::now();
  for (int generation = 0; generation < kGenerations; ++generation) {
    runThreads(threads, [&](int index) {
      std::minstd_rand random(static_cast<unsigned>(generation * 131 + index));
      auto& mine = slots[index];
      for (long i = 0; i < kReplacements; ++i) {
        auto& slot = mine[random() % kSlots];
        std::free(slot);
        size_t size = randomSize(random, 8, 1000);
        slot = mustAllocate(size);
        static_cast<char*>(slot)[size - 1] = 1;
      }
    });
  }
  double nanos = nanosSince(start);
  for (auto& mine : slots) {
    for (void* block : mine)
      std::free(block);
  }
  return nanos / (static_cast<double>(kReplacements) * kGenerations * threads);
}

// A bounded queue of pointer batches from producers to consumers.
class BatchQueue {
 public:
  void push(std::vector<void*> batch) {
    std::unique_lock lock(mutex_);
    not_full_.wait(lock, [&] { return batches_.size() < kCapacity; });
    batches_.push_back(std::move(batch));
    not_empty_.notify_one();
  }
  // Empty when every producer has finished and the queue is drained.
  std::vector<void*> pop() {
    std::unique_lock lock(mutex_);
    not_empty_.wait(lock, [&] { return !batches_.empty() || producers_left_ == 0; });
    if (batches_.empty()) return {};
    auto batch = std::move(batches_.front());
    batches_.pop_front();
    not_full_.notify_one();
    return batch;
  }
  void setProducers(int count) { producers_left_ = count; }
  void producerDone() {
    std::lock_guard lock(mutex_);
    --producers_left_;
    not_empty_.notify_all();
  }

 private:
  static constexpr size_t kCapacity = 64;
  std::mutex mutex_;
  std::condition_variable not_empty_, not_full_;
  std::deque<std::vector<void*>> batches_;
  int producers_left_ = 0;
};

// xmalloc-test: half the threads only allocate (16..256 bytes), the other
// half only free what they receive. ns per block (malloc + remote free), wall.
double xmallocNanos(int threads) {
  constexpr long kBlocksPerProducer = 400'000;
  constexpr size_t kBatch = 256;
  int producers = threads > 1 ? threads / 2 : 1;
  int consumers = threads > 1 ? threads - producers : 1;
  BatchQueue queue;
  queue.setProducers(producers);
  auto start = Clock::now();
  runThreads(producers + consumers, [&](int index) {
    if (index < producers) {
      std::minstd_rand random(static_cast<unsigned>(index + 1));
      std::vector<void*> batch;
      for (long i = 0; i < kBlocksPerProducer; ++i) {
        size_t size = randomSize(random, 16, 256);
        auto* block = static_cast<char*>(mustAllocate(size));
        block[0] = 1;
        batch.push_back(block);
        if (batch.size() == kBatch) {
          queue.push(std::move(batch));
          batch = {};
        }
      }
      if (!batch.empty()) queue.push(std::move(batch));
      queue.producerDone();
    } else {
      for (auto batch = queue.pop(); !batch.empty(); batch = queue.pop()) {
        for (void* block : batch)
          std::free(block);
      }
    }
  });
  return nanosSince(start) / (static_cast<double>(kBlocksPerProducer) * producers);
}

// cache-scratch: the main thread allocates one small object per thread
// (likely sharing cache lines) and hands each to a thread, which frees it and
// then repeatedly allocates an object of the same size, writes it many times
// and frees it. An allocator that returns the freed neighbour's line makes
// the threads write the same cache line. ns per object write, wall.
double cacheScratchNanos(int threads) {
  constexpr size_t kObjectSize = 8;
  constexpr int kIterations = 40'000;
  constexpr int kWrites = 500;
  std::vector<char*> handed(threads);
  for (auto& object : handed)
    object = static_cast<char*>(mustAllocate(kObjectSize));
  auto start = Clock::now();
  runThreads(threads, [&](int index) {
    std::free(handed[index]);
    for (int i = 0; i < kIterations; ++i) {
      auto* object = static_cast<volatile char*>(mustAllocate(kObjectSize));
      for (int write = 0; write < kWrites; ++write) {
        for (size_t byte = 0; byte < kObjectSize; ++byte)
          object[byte] = object[byte] + 1;
      }
      std::free(const_cast<char*>(object));
    }
  });
  return nanosSince(start) / (static_cast<double>(kIterations) * kWrites * threads);
}

// A 256 MiB working set (per run, split over the threads) of sizes from
// 16 B to 64 KiB, then 4 passes replacing a random half with other sizes:
// the peak resident set shows the allocator's fragmentation and overhead.
// ns per replacement, wall.
double churnNanos(int threads) {
  constexpr size_t kWorkingSet = 256ull << 20;
  constexpr int kPasses = 4;
  std::vector<long> replacements(threads);
  auto start = Clock::now();
  runThreads(threads, [&](int index) {
    std::minstd_rand random(static_cast<unsigned>(99 + index));
    auto pickSize = [&] {
      // Mostly small blocks, a few large ones: sizes spread log-uniformly.
      int shift = static_cast<int>(random() % 12);  // 16 B .. 32 KiB classes
      return randomSize(random, size_t{16} << shift, size_t{32} << shift);
    };
    std::vector<std::pair<void*, size_t>> blocks;
    size_t live = 0;
    while (live < kWorkingSet / threads) {
      size_t size = pickSize();
      auto* block = static_cast<char*>(mustAllocate(size));
      std::memset(block, 1, size);
      blocks.emplace_back(block, size);
      live += size;
    }
    for (int pass = 0; pass < kPasses; ++pass) {
      for (auto& [block, size] : blocks) {
        if (random() % 2 != 0) continue;
        std::free(block);
        size = pickSize();
        block = mustAllocate(size);
        std::memset(block, 2, size);
        ++replacements[index];
      }
    }
    for (auto& [block, size] : blocks)
      std::free(block);
  });
  long total = 0;
  for (long count : replacements)
    total += count;
  return nanosSince(start) / static_cast<double>(total);
}

int usage() {
  std::fprintf(stderr,
               "usage: alloc_bench pair SIZE THREADS | larson THREADS | xmalloc THREADS |\n"
               "       cache-scratch THREADS | churn THREADS\n");
  return 2;
}

long positive(const char* text) {
  char* end = nullptr;
  long value = std::strtol(text, &end, 10);
  return (end == text || *end != '\0' || value <= 0) ? -1 : value;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  std::string_view bench = argv[1];
  long threads = positive(argv[argc - 1]);
  if (threads < 0 || threads > 64) {
    std::fprintf(stderr, "alloc_bench: bad thread count '%s'\n", argv[argc - 1]);
    return 2;
  }
  int thread_count = static_cast<int>(threads);
  double nanos = 0;
  if (bench == "pair" && argc == 4) {
    long size = positive(argv[2]);
    if (size < 0) {
      std::fprintf(stderr, "alloc_bench: bad size '%s'\n", argv[2]);
      return 2;
    }
    nanos = pairNanos(static_cast<size_t>(size), thread_count);
  } else if (argc != 3) {
    return usage();
  } else if (bench == "larson") {
    nanos = larsonNanos(thread_count);
  } else if (bench == "xmalloc") {
    nanos = xmallocNanos(thread_count);
  } else if (bench == "cache-scratch") {
    nanos = cacheScratchNanos(thread_count);
  } else if (bench == "churn") {
    nanos = churnNanos(thread_count);
  } else {
    return usage();
  }
  // Straight to the file descriptor: libmemtier unmaps its tiers at exit
  // while stdio's buffer lives in them, and the result line would be lost.
  char line[128];
  int length = std::snprintf(line, sizeof line, "bench=%s ns=%.2f hwm_kib=%ld\n", argv[1], nanos,
                             peakResidentKib());
  return write(STDOUT_FILENO, line, static_cast<size_t>(length)) == length ? 0 : 1;
}
