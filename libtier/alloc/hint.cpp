// tier_hint: one request line to tierd's control socket (the agent's
// protocol, agent/control/protocol.h). pin/unpin map onto the agent's
// requests; hot/cold are sent as {"request":"hint"}, which an agent without
// hint support refuses as an unknown request: that is -ENOTSUP here. No allocation: the line is
// formatted into a stack buffer.
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "engine.h"
#include "engine_internal.h"

namespace {

constexpr const char* kDefaultSocket = "/run/tierd/tierd.sock";

// Appends text to a fixed buffer; `ok` turns false on overflow.
struct Line {
  char text[512];
  size_t length = 0;
  bool ok = true;
  void add(const char* s) {
    size_t n = strlen(s);
    if (length + n >= sizeof text) {
      ok = false;
      return;
    }
    memcpy(text + length, s, n);
    length += n;
    text[length] = '\0';
  }
  void add(uint64_t v) {
    char digits[24];
    int n = 0;
    do {
      digits[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    char out[24];
    for (int i = 0; i < n; ++i) out[i] = digits[n - 1 - i];
    out[n] = '\0';
    add(out);
  }
};

// The errno of an {"ok":false,"error":{...,"errno":N}} reply, EIO without one.
int replyErrno(const char* reply) {
  const char* at = strstr(reply, "\"errno\":");
  if (at == nullptr) return EIO;
  int value = atoi(at + 8);
  return value > 0 ? value : EIO;
}

int sendLine(const Line& line, char* reply, size_t capacity) {
  const char* path = getenv("LIBTIER_TIERD_SOCKET");
  if (path == nullptr || *path == '\0') path = kDefaultSocket;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof address.sun_path) return -ENAMETOOLONG;
  strcpy(address.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  timeval timeout{2, 0};  // a hung agent must not hang the program
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    return -ENOTCONN;
  }
  int rc = 0;
  if (send(fd, line.text, line.length, MSG_NOSIGNAL) != static_cast<ssize_t>(line.length)) {
    rc = -ENOTCONN;
  } else {
    size_t got = 0;
    while (got + 1 < capacity) {
      ssize_t n = recv(fd, reply + got, capacity - 1 - got, 0);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
      if (memchr(reply + got - static_cast<size_t>(n), '\n', static_cast<size_t>(n))) break;
    }
    reply[got] = '\0';
    if (got == 0) rc = -ENOTCONN;
  }
  close(fd);
  return rc;
}

}  // namespace

extern "C" int tier_hint(const void* address, size_t length, tier_hint_t hint) {
  if (length == 0 || hint < TIER_HINT_HOT || hint > TIER_HINT_UNPIN) return -EINVAL;
  uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  uintptr_t start = reinterpret_cast<uintptr_t>(address) & ~(page - 1);
  uintptr_t end = reinterpret_cast<uintptr_t>(address) + length;
  if (end < start) return -EINVAL;
  end = (end + page - 1) & ~(page - 1);
  Line line;
  line.add("{\"version\":1,\"request\":\"");
  line.add(hint == TIER_HINT_PIN ? "pin" : hint == TIER_HINT_UNPIN ? "unpin" : "hint");
  line.add("\",\"pid\":");
  line.add(static_cast<uint64_t>(getpid()));
  line.add(",\"range\":{\"start\":");
  line.add(static_cast<uint64_t>(start));
  line.add(",\"end\":");
  line.add(static_cast<uint64_t>(end));
  line.add("}");
  if (hint == TIER_HINT_PIN) {
    // Pin where the range is now: its libtier tier, else the tier of its first page's node.
    int rank = tier_of(address);
    if (rank < 0) {
      int node = tier_node_of(address);
      rank = node >= 0 ? tier_engine_rank_of_node(node) : -1;
    }
    line.add(",\"tier\":");
    line.add(static_cast<uint64_t>(rank < 0 ? 0 : rank));
  } else if (hint == TIER_HINT_HOT || hint == TIER_HINT_COLD) {
    line.add(",\"hint\":\"");
    line.add(hint == TIER_HINT_HOT ? "hot" : "cold");
    line.add("\"");
  }
  line.add("}\n");
  if (!line.ok) return -EOVERFLOW;
  char reply[1024];
  int rc = sendLine(line, reply, sizeof reply);
  if (rc != 0) return rc;
  if (strstr(reply, "\"ok\":true") != nullptr) return 0;
  // An agent older than the hint request names it as unknown; other refusals
  // (EPERM, ESRCH, ENODEV: no slower tier) keep their errno.
  if ((hint == TIER_HINT_HOT || hint == TIER_HINT_COLD) &&
      strstr(reply, "unknown request") != nullptr)
    return -ENOTSUP;
  return -replyErrno(reply);
}
