#include "os/wakeup.h"

#include <time.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace tier {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Pipe {
  int fds[2] = {-1, -1};
  Pipe() { EXPECT_EQ(::pipe(fds), 0); }
  ~Pipe() {
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
  }
};

TEST(Wakeup, NothingReadySleepsTheWholeTimeout) {
  auto wakeup = Wakeup::create();
  ASSERT_TRUE(wakeup);
  Pipe pipe;
  const std::vector<int> fds{pipe.fds[0]};
  const auto start = Clock::now();
  EXPECT_EQ(wakeup->wait(fds, 100ms), Wakeup::Why::kTimeout);
  EXPECT_GE(Clock::now() - start, 100ms);
}

TEST(Wakeup, AReadableDescriptorEndsTheWait) {
  auto wakeup = Wakeup::create();
  ASSERT_TRUE(wakeup);
  Pipe quiet, busy;
  ASSERT_EQ(::write(busy.fds[1], "x", 1), 1);
  const std::vector<int> fds{quiet.fds[0], busy.fds[0]};
  EXPECT_EQ(wakeup->wait(fds, 60s), Wakeup::Why::kReady);
}

TEST(Wakeup, WakeFromAnotherThreadEndsTheWaitAndLaterOnes) {
  auto wakeup = Wakeup::create();
  ASSERT_TRUE(wakeup);
  std::thread waker([&] {
    std::this_thread::sleep_for(50ms);
    wakeup->wake();
  });
  EXPECT_EQ(wakeup->wait({}, 60s), Wakeup::Why::kWoken);
  waker.join();
  EXPECT_EQ(wakeup->wait({}, 60s), Wakeup::Why::kWoken) << "a stop stays stopped";
}

double threadCpuSeconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// A perf event whose process exited reports POLLHUP on every poll: left in,
// it would end every poll at once and the wait would spin on it.
TEST(Wakeup, AHungUpDescriptorIsLeftOutNotSpunOn) {
  auto wakeup = Wakeup::create();
  ASSERT_TRUE(wakeup);
  Pipe pipe;
  ::close(pipe.fds[1]);
  pipe.fds[1] = -1;  // the reader now sees POLLHUP, never POLLIN
  const std::vector<int> fds{pipe.fds[0]};
  const auto start = Clock::now();
  const double cpu0 = threadCpuSeconds();
  EXPECT_EQ(wakeup->wait(fds, 300ms), Wakeup::Why::kTimeout);
  const double waited = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_GE(waited, 0.3);
  // Spinning would burn about the whole wait; sleeping burns next to none.
  EXPECT_LT(threadCpuSeconds() - cpu0, waited / 2);
}

}  // namespace
}  // namespace tier
