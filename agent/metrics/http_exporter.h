// A small HTTP server for Prometheus to scrape: GET /metrics returns the text
// exposition, GET / a page linking to it; every other path is 404 and every
// other method 405. It serves from its own listener thread and a pool of two
// worker threads, with small request limits and short timeouts.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "base/result.h"

namespace httplib {
class Server;
}

namespace tierd::metrics {

inline constexpr std::string_view kExpositionContentType =
    "text/plain; version=0.0.4; charset=utf-8";

struct ListenAddress {
  std::string host;  // numeric IPv4 or IPv6 address, without brackets
  int port = 0;      // 0: any free port
  bool ipv6 = false;
};

// "127.0.0.1:9464", "[::1]:9464", ":9464" or "9464" (address 127.0.0.1),
// "localhost:9464" (127.0.0.1), "0.0.0.0:9464" (every interface). Only
// numeric addresses: no name lookups. Anything else is an EINVAL error naming
// the string.
tier::Result<ListenAddress> parseListenAddress(std::string_view listen);

class HttpExporter {
 public:
  // Binds `listen` (see parseListenAddress) and starts serving. `render` is
  // called for every GET /metrics, possibly from two threads at once (so it
  // must be thread-safe, as Registry::renderText is), and must not throw.
  // Errors name the listen string: EINVAL when it does not parse, the bind
  // errno (EADDRINUSE, EADDRNOTAVAIL, EACCES, ...) otherwise.
  static tier::Result<std::unique_ptr<HttpExporter>> start(const std::string& listen,
                                                           std::function<std::string()> render);

  ~HttpExporter();  // stop()
  HttpExporter(const HttpExporter&) = delete;
  HttpExporter& operator=(const HttpExporter&) = delete;

  // Closes the listening socket, lets requests in progress finish and joins
  // the threads. Idempotent; safe from any thread but the server's own.
  void stop();

  // The port actually bound (the chosen one when the listen port was 0).
  int boundPort() const { return port_; }
  // "127.0.0.1:9464" or "[::1]:9464", with the bound port.
  const std::string& address() const { return address_; }

 private:
  HttpExporter() = default;

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::atomic<bool> listener_exited_{false};
  std::once_flag stopped_;
  int port_ = 0;
  std::string address_;
};

}  // namespace tierd::metrics
