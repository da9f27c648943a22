#include "preload/agent_link.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace tier::preload {
namespace {

constexpr const char* kDefaultSocket = "/run/tierd/tierd.sock";

// Appends to a fixed buffer; `failed` once anything did not fit.
struct Writer {
  char* out;
  size_t capacity;
  size_t at = 0;
  bool failed = false;

  void add(const char* format, ...) __attribute__((format(printf, 2, 3))) {
    if (failed) return;
    va_list args;
    va_start(args, format);
    int n = std::vsnprintf(out + at, capacity - at, format, args);
    va_end(args);
    if (n < 0 || static_cast<size_t>(n) >= capacity - at) {
      failed = true;
      return;
    }
    at += static_cast<size_t>(n);
  }

  // A JSON string: quotes, backslashes and control characters escaped.
  void addString(const char* text) {
    add("\"");
    for (const char* c = text; *c != '\0' && !failed; ++c) {
      auto byte = static_cast<unsigned char>(*c);
      if (byte == '"' || byte == '\\')
        add("\\%c", *c);
      else if (byte < 0x20)
        add("\\u%04x", byte);
      else
        add("%c", *c);
    }
    add("\"");
  }

  void addTarget(Target target) {
    switch (target.kind) {
      case Target::kFast:
        add("\"fast\"");
        break;
      case Target::kFar:
        add("\"far\"");
        break;
      case Target::kRatio:
        add("\"ratio\"");
        break;
      case Target::kRank:
        add("\"rank%d\"", target.index);
        break;
      case Target::kNode:
        add("\"node%d\"", target.index);
        break;
    }
  }
};

}  // namespace

size_t formatRegistration(char* out, size_t capacity, int pid, const char* program,
                          const Policy& policy, const tier_stats_t* tiers, int tier_count) {
  if (capacity == 0) return 0;
  Writer w{out, capacity};
  w.add("{\"version\":1,\"request\":\"register\",\"pid\":%d,\"program\":", pid);
  w.addString(program);
  w.add(",\"library\":\"libtier-preload\",\"policy\":{\"ratio\":[");
  for (int i = 0; i < policy.share_count; ++i) {
    w.add("%s{\"tier\":", i ? "," : "");
    w.addTarget(policy.shares[i].tier);
    w.add(",\"weight\":%u}", policy.shares[i].weight);
  }
  w.add("],\"threshold\":");
  if (policy.threshold == kNoLimit)
    w.add("null");
  else
    w.add("%llu", static_cast<unsigned long long>(policy.threshold));
  w.add(",\"rules\":[");
  for (int i = 0; i < policy.rule_count; ++i) {
    const SizeRule& rule = policy.rules[i];
    w.add("%s{\"low\":%llu,\"high\":", i ? "," : "", static_cast<unsigned long long>(rule.low));
    if (rule.high == kNoLimit)
      w.add("null");
    else
      w.add("%llu", static_cast<unsigned long long>(rule.high));
    w.add(",\"target\":");
    w.addTarget(rule.target);
    w.add("}");
  }
  w.add("]},\"tiers\":[");
  for (int i = 0; i < tier_count; ++i) {
    const tier_stats_t& tier = tiers[i];
    w.add("%s{\"rank\":%d,\"nodes\":[", i ? "," : "", tier.rank);
    for (int n = 0; n < std::min(tier.node_count, 16); ++n)
      w.add("%s%d", n ? "," : "", tier.nodes[n]);
    w.add("],\"reserved_bytes\":%llu}", static_cast<unsigned long long>(tier.reserved_bytes));
  }
  w.add("]}\n");
  if (w.failed) {
    out[0] = '\0';
    return 0;
  }
  return w.at;
}

namespace {

void say(const char* format, ...) __attribute__((format(printf, 1, 2)));

void say(const char* format, ...) {
  char line[768];
  va_list args;
  va_start(args, format);
  int n = std::vsnprintf(line, sizeof line, format, args);
  va_end(args);
  if (n > 0) (void)!::write(2, line, std::min(static_cast<size_t>(n), sizeof line - 1));
}

// The program's name from /proc/self/comm, without allocating.
void programName(char* out, size_t capacity) {
  out[0] = '\0';
  int fd = ::open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = ::read(fd, out, capacity - 1);
  ::close(fd);
  size_t length = n > 0 ? static_cast<size_t>(n) : 0;
  while (length > 0 && out[length - 1] == '\n')
    --length;
  out[length] = '\0';
}

}  // namespace

void registerWithAgent(const Policy& policy, int tier_count) {
  if (policy.agent == AgentMode::kOff) return;
  const char* path = policy.agent_socket[0] ? policy.agent_socket : kDefaultSocket;
  bool explicit_request = policy.agent == AgentMode::kOn;
  if (!explicit_request && ::access(path, F_OK) != 0) return;

  static tier_stats_t tiers[64];
  int count = std::min(tier_count, 64);
  for (int i = 0; i < count; ++i)
    if (tier_stats(i, &tiers[i]) != 0) tiers[i] = tier_stats_t{.rank = i};
  char program[32];
  programName(program, sizeof program);
  static char request[8192];
  size_t length = formatRegistration(request, sizeof request, static_cast<int>(::getpid()), program,
                                     policy, tiers, count);
  if (length == 0) return;

  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path);
  bool sent =
      ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      ::send(fd, request, length, MSG_NOSIGNAL | MSG_DONTWAIT) == static_cast<ssize_t>(length);
  int error = errno;
  if (!sent && (explicit_request || policy.debug))
    say("libtier-preload: cannot register with tierd at %s: %s\n", path, std::strerror(error));
  if (sent && policy.debug) {
    // Only to show the answer: waits at most 200 ms, once, at start-up.
    char reply[512];
    pollfd readable{fd, POLLIN, 0};
    ssize_t n = ::poll(&readable, 1, 200) == 1 ? ::recv(fd, reply, sizeof reply - 1, 0) : -1;
    if (n > 0) {
      reply[n] = '\0';
      say("libtier-preload: registered with tierd at %s; it answered %s%s", path, reply,
          reply[n - 1] == '\n' ? "" : "\n");
    } else {
      say("libtier-preload: registered with tierd at %s; no answer within 200 ms\n", path);
    }
  }
  ::close(fd);
}

}  // namespace tier::preload
