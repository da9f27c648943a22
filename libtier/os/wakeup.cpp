#include "os/wakeup.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <utility>
#include <vector>

namespace tier {

Result<Wakeup> Wakeup::create() {
  const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return fail(errno, "eventfd");
  return Wakeup(fd);
}

Wakeup::Wakeup(Wakeup&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

Wakeup& Wakeup::operator=(Wakeup&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

Wakeup::~Wakeup() {
  if (fd_ >= 0) ::close(fd_);
}

Wakeup::Why Wakeup::wait(std::span<const int> fds, std::chrono::milliseconds timeout) const {
  using Clock = std::chrono::steady_clock;
  std::vector<pollfd> polled;
  polled.reserve(fds.size() + 1);
  polled.push_back({fd_, POLLIN, 0});
  for (int fd : fds)
    polled.push_back({fd, POLLIN, 0});
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Why::kTimeout;
    const int n = ::poll(polled.data(), polled.size(), static_cast<int>(left));
    if (n == 0) return Why::kTimeout;
    if (n < 0) {
      if (errno == EINTR) continue;
      return Why::kTimeout;  // cannot happen with valid arguments; never spin on it
    }
    if (polled[0].revents != 0) return Why::kWoken;
    bool ready = false;
    for (size_t i = 1; i < polled.size(); ++i) {
      if (polled[i].revents & POLLIN) {
        ready = true;
      } else if (polled[i].revents != 0) {
        polled[i].fd = -1;  // poll skips negative descriptors
      }
    }
    if (ready) return Why::kReady;
  }
}

void Wakeup::wake() const {
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(fd_, &one, sizeof one);
}

}  // namespace tier
