#include "control/server.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <exception>
#include <system_error>
#include <utility>

#include "control/auth.h"

namespace tierd::control {
namespace {

using Clock = std::chrono::steady_clock;

int remainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::clamp<int64_t>(left.count(), 0, 60 * 60 * 1000));
}

std::string seconds(std::chrono::milliseconds duration) {
  return fmt::format("{:g} s", static_cast<double>(duration.count()) / 1000.0);
}

// mkdir -p with 0755 for each directory created.
tier::Result<void> makeDirs(const std::string& dir) {
  if (dir.empty() || dir == "/") return {};
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return {};
    return tier::fail(ENOTDIR, "create directory " + dir);
  }
  if (errno != ENOENT) return tier::fail(errno, "stat " + dir);
  auto slash = dir.find_last_of('/');
  if (slash != std::string::npos && slash > 0)
    if (auto parent = makeDirs(dir.substr(0, slash)); !parent) return parent;
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return tier::fail(errno, "create directory " + dir);
  ::chmod(dir.c_str(), 0755);  // mkdir's mode is filtered by the umask
  return {};
}

tier::Result<sockaddr_un> socketAddress(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(address.sun_path))
    return tier::fail(ENAMETOOLONG, fmt::format("socket path \"{}\" must have 1 to {} bytes", path,
                                                sizeof(address.sun_path) - 1));
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  return address;
}

// Whether something accepts connections on the socket file at `path`.
// ECONNREFUSED means a stale file; other errors are returned.
tier::Result<bool> someoneListens(const sockaddr_un& address, const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return tier::fail(errno, "create a socket");
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address));
  int err = errno;
  ::close(fd);
  if (rc == 0 || err == EAGAIN || err == EINPROGRESS) return true;  // EAGAIN: backlog full
  if (err == ECONNREFUSED) return false;
  return tier::fail(err, "probe the existing socket " + path);
}

// Sends all of `data` before `deadline`. Never raises SIGPIPE.
bool sendAll(int fd, std::string_view data, Clock::time_point deadline) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd out{.fd = fd, .events = POLLOUT, .revents = 0};
      int ready = ::poll(&out, 1, remainingMs(deadline));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) return false;
      continue;
    }
    return false;
  }
  return true;
}

enum class ReadStatus { kLine, kEmpty, kTimeout, kOversized, kStopping, kError };

// Reads up to the first '\n' (not included), or to EOF if the client
// half-closed after a line without one.
ReadStatus readLine(int fd, int wake_fd, Clock::time_point deadline, std::string& line) {
  std::array<char, 4096> buffer;
  line.clear();
  for (;;) {
    std::array<pollfd, 2> fds{{{.fd = fd, .events = POLLIN, .revents = 0},
                               {.fd = wake_fd, .events = POLLIN, .revents = 0}}};
    int ready = ::poll(fds.data(), fds.size(), remainingMs(deadline));
    if (ready < 0) {
      if (errno == EINTR) continue;
      return ReadStatus::kError;
    }
    if (fds[1].revents != 0) return ReadStatus::kStopping;
    if (ready == 0) return ReadStatus::kTimeout;
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return ReadStatus::kError;
    }
    if (n == 0) {
      if (line.empty()) return ReadStatus::kEmpty;
      return line.size() > kMaxRequestBytes ? ReadStatus::kOversized : ReadStatus::kLine;
    }
    std::string_view chunk(buffer.data(), static_cast<size_t>(n));
    size_t newline = chunk.find('\n');
    line.append(chunk.substr(0, newline));
    if (line.size() > kMaxRequestBytes) return ReadStatus::kOversized;
    if (newline != std::string_view::npos) return ReadStatus::kLine;
  }
}

}  // namespace

Server::Server(std::string path, Handler& handler, const tier::FsRoot& proc, ServerOptions options)
    : path_(std::move(path)), handler_(handler), proc_(proc), options_(options) {
  if (options_.max_connections == 0) options_.max_connections = 1;
}

tier::Result<std::unique_ptr<Server>> Server::start(const std::string& path, Handler& handler,
                                                    const tier::FsRoot& proc,
                                                    ServerOptions options) {
  std::unique_ptr<Server> server(new Server(path, handler, proc, options));
  if (auto listening = server->listen(); !listening) return std::unexpected(listening.error());
  try {
    server->workers_.reserve(server->options_.max_connections);
    for (size_t i = 0; i < server->options_.max_connections; ++i)
      server->workers_.emplace_back([s = server.get()] {
        pthread_setname_np(pthread_self(), "tierd-control");
        s->workerLoop();
      });
    server->accept_thread_ = std::thread([s = server.get()] {
      pthread_setname_np(pthread_self(), "tierd-accept");
      s->acceptLoop();
    });
  } catch (const std::system_error& error) {
    return tier::fail(error.code().value(), "start the control socket's threads");
  }
  return server;
}

tier::Result<void> Server::listen() {
  auto address = socketAddress(path_);
  if (!address) return std::unexpected(address.error());
  auto slash = path_.find_last_of('/');
  if (slash != std::string::npos && slash > 0)
    if (auto dirs = makeDirs(path_.substr(0, slash)); !dirs) return dirs;

  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) return tier::fail(errno, "create an eventfd");

  // Two agents starting at once must not both decide the socket is stale.
  std::string lock_path = path_ + ".lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) return tier::fail(errno, "open " + lock_path);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      return tier::fail(EADDRINUSE, fmt::format("another tierd is already listening on {} (it "
                                                "holds {})",
                                                path_, lock_path));
    return tier::fail(errno, "lock " + lock_path);
  }

  struct stat existing {};
  if (::lstat(path_.c_str(), &existing) == 0) {
    if (!S_ISSOCK(existing.st_mode))
      return tier::fail(EEXIST,
                        fmt::format("{} exists and is not a socket; not replacing it", path_));
    auto listens = someoneListens(*address, path_);
    if (!listens) return std::unexpected(listens.error());
    if (*listens)
      return tier::fail(EADDRINUSE, fmt::format("another tierd is already listening on {}", path_));
    if (::unlink(path_.c_str()) != 0 && errno != ENOENT)
      return tier::fail(errno, "remove the stale socket " + path_);
  } else if (errno != ENOENT) {
    return tier::fail(errno, "stat " + path_);
  }

  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd_ < 0) return tier::fail(errno, "create a socket");
  if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&*address), sizeof(*address)) != 0)
    return tier::fail(errno, "bind " + path_);
  struct stat bound {};
  if (::lstat(path_.c_str(), &bound) == 0) {
    socket_dev_ = bound.st_dev;
    socket_ino_ = bound.st_ino;
  }
  if (::chmod(path_.c_str(), options_.socket_mode) != 0) return tier::fail(errno, "chmod " + path_);
  if (::listen(listen_fd_, 128) != 0) return tier::fail(errno, "listen on " + path_);
  return {};
}

Server::~Server() {
  (void)stop();
  for (auto& worker : workers_)
    if (worker.joinable()) worker.join();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

tier::Result<void> Server::stop() {
  bool first = false;
  {
    std::lock_guard lock(mutex_);
    first = !stopping_;
    stopping_ = true;
  }
  if (first) {
    stop_source_.request_stop();
    if (wake_fd_ >= 0) {
      uint64_t one = 1;
      (void)!::write(wake_fd_, &one, sizeof(one));
    }
    if (accept_thread_.joinable()) accept_thread_.join();
    if (listen_fd_ >= 0) {
      ::close(listen_fd_);
      listen_fd_ = -1;
      // Unlink only our own socket, not one a successor agent already made.
      struct stat st {};
      if (socket_ino_ != 0 && ::lstat(path_.c_str(), &st) == 0 && st.st_dev == socket_dev_ &&
          st.st_ino == socket_ino_)
        ::unlink(path_.c_str());
    }
    if (lock_fd_ >= 0) {
      ::close(lock_fd_);  // releases the flock; the file stays so the lock stays race-free
      lock_fd_ = -1;
    }
    work_ready_.notify_all();
  }

  std::unique_lock lock(mutex_);
  bool idle = work_done_.wait_for(lock, options_.stop_timeout, [&] { return stats_.active == 0; });
  if (!idle) {
    return tier::fail(ETIMEDOUT,
                      fmt::format("{} request(s) still running {} after stop: {}", stats_.active,
                                  seconds(options_.stop_timeout), fmt::join(running_, ", ")));
  }
  if (!stopped_) {
    stopped_ = true;
    lock.unlock();
    for (auto& worker : workers_)
      if (worker.joinable()) worker.join();
  }
  return {};
}

ServerStats Server::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void Server::count(std::string_view request, std::string_view outcome) {
  std::lock_guard lock(mutex_);
  ++stats_.requests[std::string(request)][std::string(outcome)];
}

void Server::countOne(uint64_t ServerStats::*counter) {
  std::lock_guard lock(mutex_);
  ++(stats_.*counter);
}

void Server::acceptLoop() {
  std::array<pollfd, 2> fds{{{.fd = listen_fd_, .events = POLLIN, .revents = 0},
                             {.fd = wake_fd_, .events = POLLIN, .revents = 0}}};
  for (;;) {
    int ready = ::poll(fds.data(), fds.size(), -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      countOne(&ServerStats::accept_errors);
      ::poll(&fds[1], 1, 100);
      continue;
    }
    if (fds[1].revents != 0) return;
    if (fds[0].revents == 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED)
        continue;
      // EMFILE and friends: the pending connection stays; back off instead of spinning.
      countOne(&ServerStats::accept_errors);
      ::poll(&fds[1], 1, 100);
      continue;
    }
    bool busy = false;
    {
      std::lock_guard lock(mutex_);
      ++stats_.connections;
      if (stats_.active >= options_.max_connections) {
        busy = true;
        ++stats_.busy;
      } else {
        ++stats_.active;
        try {
          queue_.push_back(fd);
        } catch (const std::exception&) {
          --stats_.active;
          busy = true;
        }
      }
    }
    if (busy) {
      std::string reply = formatReply(
          tier::fail(EBUSY, fmt::format("tierd is busy ({} requests in progress); try again",
                                        options_.max_connections)));
      (void)::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      ::close(fd);
      continue;
    }
    work_ready_.notify_one();
  }
}

void Server::workerLoop() {
  for (;;) {
    int fd = -1;
    {
      std::unique_lock lock(mutex_);
      work_ready_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      fd = queue_.front();
      queue_.pop_front();
    }
    serve(fd);
    ::close(fd);
    {
      std::lock_guard lock(mutex_);
      --stats_.active;
    }
    work_done_.notify_all();
  }
}

tier::Result<Json> Server::handle(const Caller& caller, const Request& request) {
  try {
    return std::visit(
        [&](const auto& r) -> tier::Result<Json> {
          using T = std::decay_t<decltype(r)>;
          if constexpr (std::is_same_v<T, StatusRequest>)
            return handler_.status(caller);
          else if constexpr (std::is_same_v<T, PsRequest>)
            return handler_.ps(caller, r);
          else if constexpr (std::is_same_v<T, MigrateRequest>)
            return handler_.migrate(caller, r);
          else if constexpr (std::is_same_v<T, PinRequest>)
            return handler_.pin(caller, r);
          else if constexpr (std::is_same_v<T, UnpinRequest>)
            return handler_.unpin(caller, r);
          else if constexpr (std::is_same_v<T, RegisterRequest>)
            return handler_.registerProcess(caller, r);
          else if constexpr (std::is_same_v<T, HintRequest>)
            return handler_.hint(caller, r);
          else if constexpr (std::is_same_v<T, ConfigShowRequest>)
            return handler_.configShow(caller);
          else
            return handler_.configReload(caller);
        },
        request);
  } catch (const std::exception& error) {
    countOne(&ServerStats::handler_exceptions);
    return tier::fail(EIO, fmt::format("internal error in tierd while handling {}: {}",
                                       requestName(request), error.what()));
  } catch (...) {
    countOne(&ServerStats::handler_exceptions);
    return tier::fail(
        EIO, fmt::format("internal error in tierd while handling {}", requestName(request)));
  }
}

void Server::serve(int fd) {
  auto reply = [&](const tier::Result<Json>& result) {
    if (!sendAll(fd, formatReply(result), Clock::now() + options_.write_timeout))
      countOne(&ServerStats::reply_failures);
  };
  try {
    // Credentials first: SO_PEERCRED is from connect time, and the caller's
    // /proc entry is checked against it before the pid has a chance to be reused.
    ucred credentials{};
    socklen_t length = sizeof(credentials);
    bool have_credentials = ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0;
    int credentials_errno = errno;
    Caller caller;
    if (have_credentials)
      caller = callerFromCredentials(credentials.pid, credentials.uid, credentials.gid, proc_);
    caller.stop = stop_source_.get_token();

    std::string line;
    ReadStatus status = stop_source_.stop_requested()
                            ? ReadStatus::kStopping
                            : readLine(fd, wake_fd_, Clock::now() + options_.read_timeout, line);
    switch (status) {
      case ReadStatus::kLine:
        break;
      case ReadStatus::kEmpty:
        countOne(&ServerStats::empty);
        return;
      case ReadStatus::kError:
        countOne(&ServerStats::reply_failures);
        return;
      case ReadStatus::kTimeout:
        countOne(&ServerStats::timeouts);
        reply(tier::fail(ETIMEDOUT, fmt::format("no complete request line within {}",
                                                seconds(options_.read_timeout))));
        return;
      case ReadStatus::kOversized:
        countOne(&ServerStats::oversized);
        reply(tier::fail(EMSGSIZE, fmt::format("request longer than {} bytes", kMaxRequestBytes)));
        return;
      case ReadStatus::kStopping:
        count("unknown", "stopping");
        reply(tier::fail(ESHUTDOWN, "tierd is shutting down"));
        return;
    }

    auto request = parseRequest(line);
    if (!request) {
      count("unknown", "invalid");
      reply(std::unexpected(request.error()));
      return;
    }
    std::string name(requestName(*request));

    if (!have_credentials) {
      count(name, "denied");
      reply(tier::fail(credentials_errno, "read the caller's credentials (SO_PEERCRED)"));
      return;
    }
    if (auto allowed = authorize(caller, *request, proc_); !allowed) {
      count(name, "denied");
      reply(std::unexpected(allowed.error()));
      return;
    }

    tier::Result<Json> result;
    {
      std::lock_guard lock(mutex_);
      running_.push_back(name);
    }
    result = handle(caller, *request);  // never throws
    {
      std::lock_guard lock(mutex_);
      if (auto it = std::find(running_.begin(), running_.end(), name); it != running_.end())
        running_.erase(it);
    }
    count(name, result ? "ok" : "failed");
    reply(result);
  } catch (...) {
    // Only allocation failures get here; the connection is dropped, the server goes on.
    countOne(&ServerStats::handler_exceptions);
  }
}

}  // namespace tierd::control
