// A Handler for server and tierctl tests: canned results, a record of what
// it was asked, and a gate that holds migrate calls until opened.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <vector>

#include "control/handler.h"

namespace tierd::control::test {

inline Json cannedStatus() {
  return Json::parse(R"({"version":"0.1.0","uptime_seconds":3725,"mode":"coexist",
    "managed_processes":2,
    "migration":{"pages_moved":2048,"bytes_moved":8388608,"failed":{"EBUSY":3,"ENOMEM":1}},
    "other_managers":{"numa_balancing":1}})");
}

inline Json cannedPs() {
  return Json::parse(R"({"processes":[
    {"pid":1234,"comm":"python3","workload":"vllm",
     "nodes":{"node0":1073741824,"node1":536870912},"total":1610612736},
    {"pid":4321,"comm":"llama-server","workload":"llama",
     "nodes":{"node0":104857600,"node2":52428800},"total":157286400}]})");
}

class FakeHandler : public Handler {
 public:
  struct Call {
    std::string what;
    Caller caller;
    Json request;
  };

  tier::Result<Json> status(const Caller& caller) override {
    record("status", caller, Json::object());
    return cannedStatus();
  }
  tier::Result<Json> ps(const Caller& caller, const PsRequest& request) override {
    record("ps", caller, request.pid ? Json{{"pid", *request.pid}} : Json::object());
    return cannedPs();
  }
  tier::Result<Json> migrate(const Caller& caller, const MigrateRequest& request) override {
    Json args{{"pid", request.pid}};
    if (request.range) args["range"] = {request.range->start, request.range->end};
    if (request.to_node) args["to_node"] = *request.to_node;
    if (request.to_tier) args["to_tier"] = *request.to_tier;
    record("migrate", caller, args);
    std::stop_callback wake(caller.stop, [this] {
      std::lock_guard lock(mutex_);
      changed_.notify_all();
    });
    {
      std::unique_lock lock(mutex_);
      ++waiting_;
      changed_.notify_all();
      changed_.wait(lock,
                    [&] { return !gate_closed_ || (honor_stop_ && caller.stop.stop_requested()); });
      --waiting_;
      if (gate_closed_) return tier::fail(ECANCELED, "migration cancelled: tierd is stopping");
    }
    if (request.pid == 4321) return tier::fail(EBUSY, "process 4321 is being migrated already");
    return Json{{"pid", request.pid},
                {"target_node", request.to_node.value_or(3)},
                {"pages_requested", 4096},
                {"pages_moved", 2560},
                {"pages_already_there", 1200},
                {"bytes_moved", 10485760},
                {"seconds", 0.42},
                {"failed", {{"EBUSY", 300}, {"ENOMEM", 36}}},
                {"pages_on_target_after", 3760},
                {"pages_present_after", 4096}};
  }
  tier::Result<Json> pin(const Caller& caller, const PinRequest& request) override {
    record("pin", caller,
           {{"pid", request.pid},
            {"range", {request.range.start, request.range.end}},
            {"tier", request.tier}});
    if (throw_on_pin_) throw std::runtime_error("pin table corrupted");
    return Json::object();
  }
  tier::Result<Json> unpin(const Caller& caller, const UnpinRequest& request) override {
    record("unpin", caller,
           {{"pid", request.pid}, {"range", {request.range.start, request.range.end}}});
    return Json::object();
  }
  tier::Result<Json> registerProcess(const Caller& caller,
                                     const RegisterRequest& request) override {
    record("register", caller,
           {{"pid", request.pid}, {"program", request.program}, {"tiers", request.tiers.size()}});
    return Json::object();
  }
  tier::Result<Json> hint(const Caller& caller, const HintRequest& request) override {
    record("hint", caller,
           {{"pid", request.pid},
            {"range", {request.range.start, request.range.end}},
            {"hint", request.hint == Hint::kHot ? "hot" : "cold"}});
    return Json{{"pid", request.pid}, {"tier", request.hint == Hint::kHot ? 0 : 1}};
  }
  tier::Result<Json> configShow(const Caller& caller) override {
    record("config-show", caller, Json::object());
    return Json{{"interval_ms", 1000}, {"mode", "coexist"}};
  }
  tier::Result<Json> configReload(const Caller& caller) override {
    record("config-reload", caller, Json::object());
    return Json::object();
  }

  // Migrate calls wait until openGate(); with honorStop they also give up
  // (ECANCELED) when the server asks them to stop.
  void closeGate(bool honor_stop = false) {
    std::lock_guard lock(mutex_);
    gate_closed_ = true;
    honor_stop_ = honor_stop;
  }
  void openGate() {
    std::lock_guard lock(mutex_);
    gate_closed_ = false;
    changed_.notify_all();
  }
  bool waitForWaiting(int count, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return waiting_ >= count; });
  }
  void throwOnPin() { throw_on_pin_ = true; }

  std::vector<Call> calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }

 private:
  void record(std::string what, const Caller& caller, Json request) {
    std::lock_guard lock(mutex_);
    calls_.push_back({std::move(what), caller, std::move(request)});
  }

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Call> calls_;
  bool gate_closed_ = false, honor_stop_ = false, throw_on_pin_ = false;
  int waiting_ = 0;
};

// A raw client: connects, sends `bytes` as they are, reads until EOF or
// '\n' (within `timeout`) and returns what came back ("" if nothing).
inline int connectTo(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline void sendAll(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
}

inline std::string readReply(int fd, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  std::string reply;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buffer[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd in{.fd = fd, .events = POLLIN, .revents = 0};
    if (::poll(&in, 1, static_cast<int>(left.count())) <= 0) break;
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n <= 0) break;
    reply.append(buffer, static_cast<size_t>(n));
    if (reply.find('\n') != std::string::npos) break;
  }
  return reply;
}

inline std::string exchange(const std::string& path, const std::string& bytes,
                            std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  int fd = connectTo(path);
  if (fd < 0) return "";
  sendAll(fd, bytes);
  std::string reply = readReply(fd, timeout);
  ::close(fd);
  return reply;
}

}  // namespace tierd::control::test
