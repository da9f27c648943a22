#include "client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

namespace tierctl {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxReplyBytes = 64 << 20;  // ps of many processes stays far below

// Closes the socket on every return path.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

int remainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::clamp<int64_t>(left.count(), 0, 24 * 60 * 60 * 1000));
}

std::string seconds(std::chrono::milliseconds duration) {
  return fmt::format("{:g} s", static_cast<double>(duration.count()) / 1000.0);
}

// Errors meeting the agent are printed as is, so the hint can follow strerror.
std::unexpected<tier::Error> unreachable(const std::string& path, int err) {
  bool not_running = err == ENOENT || err == ECONNREFUSED;
  return tier::fail(0, fmt::format("cannot reach tierd at {}: {}{}", path, std::strerror(err),
                                   not_running ? " (is tierd running?)" : ""));
}

}  // namespace

tier::Result<Json> callAgent(const std::string& socket_path, const Json& request,
                             std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (socket_path.empty() || socket_path.size() >= sizeof(address.sun_path))
    return tier::fail(0, fmt::format("cannot reach tierd at {}: the socket path must have 1 to {} "
                                     "bytes",
                                     socket_path, sizeof(address.sun_path) - 1));
  std::memcpy(address.sun_path, socket_path.c_str(), socket_path.size() + 1);

  Fd sock{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (sock.fd < 0) return tier::fail(errno, "create a socket");
  // A blocking connect waits for room in a full backlog; bound it.
  timeval connect_timeout{.tv_sec = static_cast<time_t>(timeout.count() / 1000),
                          .tv_usec = static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
  ::setsockopt(sock.fd, SOL_SOCKET, SO_SNDTIMEO, &connect_timeout, sizeof(connect_timeout));
  if (::connect(sock.fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0)
    return unreachable(socket_path, (errno == EINPROGRESS || errno == EAGAIN) ? ETIMEDOUT : errno);

  // Send the request. If tierd already answered and closed (EBUSY), the send
  // fails with EPIPE, and its reply is still waiting to be read.
  std::string line = request.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  std::string_view pending = line;
  while (!pending.empty()) {
    ssize_t n = ::send(sock.fd, pending.data(), pending.size(), MSG_NOSIGNAL);
    if (n > 0) {
      pending.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return tier::fail(ETIMEDOUT, fmt::format("send the request to tierd at {}", socket_path));
    break;  // EPIPE, ECONNRESET: read what tierd said
  }
  ::shutdown(sock.fd, SHUT_WR);

  std::string reply;
  std::array<char, 65536> buffer;
  for (;;) {
    pollfd in{.fd = sock.fd, .events = POLLIN, .revents = 0};
    int ready = ::poll(&in, 1, remainingMs(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return tier::fail(errno, "wait for tierd's reply");
    if (ready == 0)
      return tier::fail(ETIMEDOUT, fmt::format("no reply from tierd at {} within {}", socket_path,
                                               seconds(timeout)));
    ssize_t n = ::read(sock.fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != ECONNRESET) return tier::fail(errno, "read tierd's reply");
    if (n <= 0) break;  // EOF, or reset after the reply was queued
    std::string_view chunk(buffer.data(), static_cast<size_t>(n));
    size_t newline = chunk.find('\n');
    reply.append(chunk.substr(0, newline));
    if (newline != std::string_view::npos) break;
    if (reply.size() > kMaxReplyBytes)
      return tier::fail(EPROTO, fmt::format("reply from tierd at {} exceeds {} bytes", socket_path,
                                            kMaxReplyBytes));
  }
  if (reply.empty())
    return tier::fail(
        EPROTO, fmt::format("tierd at {} closed the connection without replying", socket_path));
  return tierd::control::parseReply(reply);
}

}  // namespace tierctl
