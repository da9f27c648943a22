// The control socket: a unix stream socket (default /run/tierd/tierd.sock)
// speaking protocol.h, one request per connection.
//
// An accept thread hands connections to a fixed pool of worker threads, one
// connection per worker; when all max_connections workers are busy a new
// connection gets an EBUSY reply and is closed. Each worker reads the request
// line (whole line within read_timeout, at most kMaxRequestBytes), reads the
// peer's SO_PEERCRED, parses, authorizes (auth.h), calls the Handler and
// writes the reply (within write_timeout). Every failure becomes an error
// reply; nothing a client sends stops the server.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "control/handler.h"
#include "control/protocol.h"
#include "fs/fs_root.h"

namespace tierd::control {

struct ServerOptions {
  size_t max_connections = 16;                    // connections served at once (worker threads)
  std::chrono::milliseconds read_timeout{5000};   // to receive the whole request line
  std::chrono::milliseconds write_timeout{5000};  // to send the reply
  // How long stop() waits for requests in progress (a migrate may take
  // seconds; Handlers see Caller::stop requested meanwhile).
  std::chrono::milliseconds stop_timeout{10000};
  mode_t socket_mode = 0666;  // anyone may connect; requests are authorized one by one
};

// Counters since start, for metrics.
struct ServerStats {
  // Requests answered, by request name ("status", ..., "unknown" when the
  // line did not parse) and outcome: "ok", "invalid" (did not parse),
  // "denied" (authorization), "failed" (the handler returned an error or
  // threw), "stopping" (the server was shutting down).
  std::map<std::string, std::map<std::string, uint64_t>> requests;
  uint64_t connections = 0;     // accepted
  uint64_t busy = 0;            // turned away with EBUSY: max_connections reached
  uint64_t timeouts = 0;        // no complete request within read_timeout
  uint64_t oversized = 0;       // request line over kMaxRequestBytes
  uint64_t empty = 0;           // closed by the client before sending anything
  uint64_t reply_failures = 0;  // client gone before its reply was sent, or not reading it
  uint64_t accept_errors = 0;   // accept(2) failures (EMFILE, ...)
  uint64_t handler_exceptions = 0;
  size_t active = 0;  // connections queued or being served now
};

class Server {
 public:
  // Listens on `path`. Creates the parent directory (0755) if missing.
  // An existing socket file is replaced only when nobody listens on it (a
  // stale one: connect fails with ECONNREFUSED); another agent listening is
  // EADDRINUSE, and a non-socket file at `path` is EEXIST. `handler` and
  // `proc` (the procfs root used for authorization) must outlive the server.
  static tier::Result<std::unique_ptr<Server>> start(const std::string& path, Handler& handler,
                                                     const tier::FsRoot& proc,
                                                     ServerOptions options = {});

  // Stops and waits for the workers (blocking, without a deadline).
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Closes the listener and unlinks the socket (if it is still ours), asks
  // running handler calls to stop (Caller::stop), and waits up to
  // options.stop_timeout for them. ETIMEDOUT names the requests still running;
  // the destructor then waits for them without a deadline. Idempotent.
  tier::Result<void> stop();

  ServerStats stats() const;
  const std::string& path() const { return path_; }

 private:
  Server(std::string path, Handler& handler, const tier::FsRoot& proc, ServerOptions options);
  tier::Result<void> listen();
  void acceptLoop();
  void workerLoop();
  void serve(int fd);
  tier::Result<Json> handle(const Caller& caller, const Request& request);
  void count(std::string_view request, std::string_view outcome);
  void countOne(uint64_t ServerStats::*counter);

  std::string path_;
  Handler& handler_;
  const tier::FsRoot& proc_;
  ServerOptions options_;

  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: readable once stop() begins
  dev_t socket_dev_ = 0;
  ino_t socket_ino_ = 0;
  int lock_fd_ = -1;  // flock on "<path>.lock": one agent per socket path
  std::stop_source stop_source_;

  mutable std::mutex mutex_;
  std::condition_variable work_ready_, work_done_;
  std::deque<int> queue_;             // accepted connections waiting for a worker
  std::vector<std::string> running_;  // request names being handled, for stop()'s report
  bool stopping_ = false;
  bool stopped_ = false;
  ServerStats stats_;

  std::thread accept_thread_;
  std::vector<std::thread> workers_;
};

}  // namespace tierd::control
