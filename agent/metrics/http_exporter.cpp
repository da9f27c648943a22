#include "metrics/http_exporter.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <utility>

namespace tierd::metrics {

namespace {

constexpr size_t kWorkerThreads = 2;
constexpr size_t kMaxPayloadBytes = 4096;  // scrapes have no body
constexpr time_t kTimeoutSeconds = 5;
constexpr size_t kKeepAliveMaxRequests = 16;

constexpr std::string_view kIndexPage =
    "<!DOCTYPE html>\n"
    "<html><head><title>tierd</title></head>\n"
    "<body><h1>tierd</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n";

// cpp-httplib's default sets SO_REUSEPORT, which would let a second agent
// (any process of the same user) bind the same port and silently take half
// the scrapes. SO_REUSEADDR only allows rebinding over TIME_WAIT.
void reuseAddressOnly(int sock) {
  int yes = 1;
  ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
}

// cpp-httplib reports a failed bind as a bare false; bind a probe socket the
// same way to learn why (EADDRINUSE, EADDRNOTAVAIL, EACCES...). Returns 0
// when the probe succeeds.
int bindErrno(const ListenAddress& address) {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = address.ipv6 ? AF_INET6 : AF_INET;
  if (address.ipv6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(address.port));
    ::inet_pton(AF_INET6, address.host.c_str(), &in6->sin6_addr);
    length = sizeof *in6;
  } else {
    auto* in4 = reinterpret_cast<sockaddr_in*>(&storage);
    in4->sin_family = AF_INET;
    in4->sin_port = htons(static_cast<uint16_t>(address.port));
    ::inet_pton(AF_INET, address.host.c_str(), &in4->sin_addr);
    length = sizeof *in4;
  }
  int sock = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return errno;
  reuseAddressOnly(sock);
  int err = 0;
  if (::bind(sock, reinterpret_cast<sockaddr*>(&storage), length) != 0 || ::listen(sock, 1) != 0) {
    err = errno;
  }
  ::close(sock);
  return err;
}

std::string formatAddress(const ListenAddress& address, int port) {
  std::string host = address.ipv6 ? "[" + address.host + "]" : address.host;
  return host + ":" + std::to_string(port);
}

}  // namespace

tier::Result<ListenAddress> parseListenAddress(std::string_view listen) {
  auto bad = [&](const std::string& why) {
    return tier::fail(EINVAL, "listen address \"" + std::string(listen) + "\": " + why);
  };
  ListenAddress address;
  std::string_view host, port;
  if (listen.starts_with('[')) {
    size_t close = listen.find(']');
    if (close == std::string_view::npos || close + 1 >= listen.size() || listen[close + 1] != ':') {
      return bad("expected [IPv6 address]:port, e.g. [::1]:9464");
    }
    host = listen.substr(1, close - 1);
    port = listen.substr(close + 2);
    address.ipv6 = true;
  } else {
    size_t colon = listen.rfind(':');
    if (colon == std::string_view::npos) {
      port = listen;
    } else {
      host = listen.substr(0, colon);
      port = listen.substr(colon + 1);
    }
    if (host.find(':') != std::string_view::npos) {
      return bad("an IPv6 address needs brackets, e.g. [::1]:9464");
    }
  }

  bool digits = !port.empty() && port.size() <= 5 &&
                std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (digits) address.port = std::stoi(std::string(port));
  if (!digits || address.port > 65535) {
    if (listen.find(':') == std::string_view::npos)
      return bad("expected address:port, e.g. 127.0.0.1:9464");
    return bad("port \"" + std::string(port) + "\" is not a number from 0 to 65535");
  }

  if (host.empty() || host == "localhost") host = "127.0.0.1";
  address.host = std::string(host);
  unsigned char buffer[sizeof(in6_addr)];
  if (::inet_pton(address.ipv6 ? AF_INET6 : AF_INET, address.host.c_str(), buffer) != 1) {
    return bad("\"" + address.host + "\" is not a numeric " + (address.ipv6 ? "IPv6" : "IPv4") +
               " address");
  }
  return address;
}

tier::Result<std::unique_ptr<HttpExporter>> HttpExporter::start(
    const std::string& listen, std::function<std::string()> render) {
  auto address = parseListenAddress(listen);
  if (!address) return std::unexpected(address.error());

  std::unique_ptr<HttpExporter> exporter(new HttpExporter());
  exporter->server_ = std::make_unique<httplib::Server>();
  httplib::Server& server = *exporter->server_;
  server.new_task_queue = [] { return new httplib::ThreadPool(kWorkerThreads); };
  server.set_address_family(address->ipv6 ? AF_INET6 : AF_INET);
  server.set_socket_options(reuseAddressOnly);
  server.set_payload_max_length(kMaxPayloadBytes);
  server.set_read_timeout(kTimeoutSeconds, 0);
  server.set_write_timeout(kTimeoutSeconds, 0);
  server.set_keep_alive_timeout(kTimeoutSeconds);
  server.set_keep_alive_max_count(kKeepAliveMaxRequests);

  // Before any body is read: only GET and HEAD (which cpp-httplib answers
  // from the GET handlers, without the body).
  server.set_pre_routing_handler([](const httplib::Request& request, httplib::Response& response) {
    if (request.method == "GET" || request.method == "HEAD") {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    response.status = 405;
    response.set_header("Allow", "GET, HEAD");
    return httplib::Server::HandlerResponse::Handled;
  });
  server.Get("/metrics",
             [render = std::move(render)](const httplib::Request&, httplib::Response& response) {
               response.set_content(render(), std::string(kExpositionContentType));
             });
  server.Get("/", [](const httplib::Request&, httplib::Response& response) {
    response.set_content(std::string(kIndexPage), "text/html; charset=utf-8");
  });
  server.set_error_handler([](const httplib::Request&, httplib::Response& response) {
    if (!response.body.empty()) return;
    std::string text = response.status == 404   ? "404 Not Found: see /metrics\n"
                       : response.status == 405 ? "405 Method Not Allowed\n"
                                                : std::to_string(response.status) + "\n";
    response.set_content(text, "text/plain; charset=utf-8");
  });

  int port = address->port == 0
                 ? server.bind_to_any_port(address->host)
                 : (server.bind_to_port(address->host, address->port) ? address->port : -1);
  if (port < 0) {
    int saved = errno;
    int err = bindErrno(*address);
    if (err == 0) err = saved != 0 ? saved : EIO;
    return tier::fail(err, "listen on " + listen);
  }
  exporter->port_ = port;
  exporter->address_ = formatAddress(*address, port);

  exporter->thread_ = std::thread([self = exporter.get()] {
    pthread_setname_np(pthread_self(), "tierd-http");  // its pool's threads inherit the name
    self->server_->listen_after_bind();
    self->listener_exited_ = true;
  });
  // stop() may only stop a running server: wait for the accept loop to start
  // (listen_after_bind marks it running first thing).
  while (!exporter->server_->is_running() && !exporter->listener_exited_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return exporter;
}

HttpExporter::~HttpExporter() {
  stop();
}

void HttpExporter::stop() {
  std::call_once(stopped_, [this] {
    // Closing the listening socket ends the accept loop; the worker pool
    // finishes the requests in progress and is joined before the loop returns.
    if (server_ && !listener_exited_) server_->stop();
    if (thread_.joinable()) thread_.join();
  });
}

}  // namespace tierd::metrics
