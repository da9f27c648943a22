// A thread's sleep that ends early: when any of a set of descriptors turns
// readable (a perf ring past its wakeup watermark), or when another thread
// calls wake() (stop). poll(2) on the descriptors plus an eventfd.
#pragma once

#include <chrono>
#include <span>

#include "base/result.h"

namespace tier {

class Wakeup {
 public:
  enum class Why { kTimeout, kReady, kWoken };

  static Result<Wakeup> create();
  Wakeup(Wakeup&& other) noexcept;
  Wakeup& operator=(Wakeup&& other) noexcept;
  Wakeup(const Wakeup&) = delete;
  Wakeup& operator=(const Wakeup&) = delete;
  ~Wakeup();

  // Sleeps up to `timeout`. A descriptor that hangs up or fails (a perf
  // event whose process exited) is left out for the rest of this call
  // instead of ending it: it would end every sleep at once.
  Why wait(std::span<const int> fds, std::chrono::milliseconds timeout) const;

  // Ends the current wait and every later one (the eventfd stays readable).
  void wake() const;

 private:
  explicit Wakeup(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace tier
