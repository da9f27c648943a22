#include "node_sysfs.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace tier::alloc {
namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n'; }

// Parses a decimal at text[*at]; false when there is none or it overflows.
bool parseNumber(const char* text, size_t length, size_t* at, uint64_t* value) {
  size_t i = *at;
  if (i >= length || !isDigit(text[i])) return false;
  uint64_t v = 0;
  for (; i < length && isDigit(text[i]); ++i) {
    if (v > (UINT64_MAX - 9) / 10) return false;
    v = v * 10 + static_cast<uint64_t>(text[i] - '0');
  }
  *at = i;
  *value = v;
  return true;
}

// Copies a, then b, into out (capacity bytes); false when it does not fit.
bool join(char* out, size_t capacity, const char* a, const char* b, const char* c = "") {
  size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
  if (la + lb + lc + 1 > capacity) return false;
  memcpy(out, a, la);
  memcpy(out + la, b, lb);
  memcpy(out + la + lb, c, lc + 1);
  return true;
}

void formatInt(char* out, unsigned value) {
  char digits[12];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  for (int i = 0; i < n; ++i) out[i] = digits[n - 1 - i];
  out[n] = '\0';
}

bool readNodeList(const char* root, const char* path, NodeMask* mask) {
  char buf[512];
  long n = readSysFile(root, path, buf, sizeof buf);
  return n >= 0 && parseNodeList(buf, static_cast<size_t>(n), mask);
}

int lowestNode(NodeMask mask) { return mask == 0 ? -1 : __builtin_ctzll(mask); }

// For every node of `online`, its distance to the nearest node of `from`
// (-1 where unknown): a CPU-less node is judged from the socket it hangs off.
void readNearestDistances(const char* root, NodeMask from, NodeMask online, int* distances) {
  for (int i = 0; i < kMaxNodes; ++i) distances[i] = -1;
  for (int cpu_node = 0; cpu_node < kMaxNodes; ++cpu_node) {
    if (!(from & (NodeMask{1} << cpu_node))) continue;
    char number[12], path[96], buf[1024];
    formatInt(number, static_cast<unsigned>(cpu_node));
    if (!join(path, sizeof path, "/devices/system/node/node", number, "/distance")) continue;
    long n = readSysFile(root, path, buf, sizeof buf);
    if (n < 0) continue;
    int row[kMaxNodes];
    int count = parseDistances(buf, static_cast<size_t>(n), online, row);
    int k = 0;
    for (int node = 0; node < kMaxNodes && k < count; ++node) {
      if (!(online & (NodeMask{1} << node))) continue;
      int d = row[k++];
      if (distances[node] < 0 || d < distances[node]) distances[node] = d;
    }
  }
}

struct KernelTier {
  unsigned id;
  NodeMask nodes;
};

// memory_tierN entries of memory_tiering, unsorted; -errno when absent.
int readKernelTiers(const char* root, KernelTier* tiers, int capacity) {
  char dir[256];
  if (!join(dir, sizeof dir, root, "/devices/virtual/memory_tiering")) return -ENAMETOOLONG;
  int fd = static_cast<int>(syscall(SYS_open, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd < 0) return -errno;
  int count = 0;
  alignas(8) char buf[2048];
  for (;;) {
    long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (n <= 0) break;
    for (long at = 0; at < n;) {
      // struct linux_dirent64: ino (8), off (8), reclen (2), type (1), name.
      unsigned short reclen;
      memcpy(&reclen, buf + at + 16, sizeof reclen);
      const char* name = buf + at + 19;
      at += reclen;
      if (strncmp(name, "memory_tier", 11) != 0 || count >= capacity) continue;
      size_t i = 11;
      uint64_t id;
      if (!parseNumber(name, strlen(name), &i, &id) || name[i] != '\0') continue;
      char path[96];
      if (!join(path, sizeof path, "/devices/virtual/memory_tiering/", name, "/nodelist")) continue;
      NodeMask nodes;
      if (!readNodeList(root, path, &nodes)) continue;
      tiers[count++] = {static_cast<unsigned>(id), nodes};
    }
  }
  syscall(SYS_close, fd);
  return count;
}

// Appends `nodes` to out as tiers: CPU nodes (and CPU-less nodes at most
// 25 % farther than the farthest of them) first, then the other CPU-less
// nodes grouped by distance, nearest first.
void appendSplit(NodeMask nodes, NodeMask cpu_nodes, const int* distances, TierLayout* out) {
  NodeMask with_cpu = nodes & cpu_nodes;
  int cpu_reach = 10;
  for (int n = 0; n < kMaxNodes; ++n)
    if ((with_cpu & (NodeMask{1} << n)) && distances[n] > cpu_reach) cpu_reach = distances[n];
  NodeMask first = with_cpu;
  NodeMask rest = 0;
  for (int n = 0; n < kMaxNodes; ++n) {
    NodeMask bit = NodeMask{1} << n;
    if (!(nodes & bit) || (with_cpu & bit)) continue;
    bool near = with_cpu != 0 && distances[n] >= 0 && distances[n] * 4 <= cpu_reach * 5;
    (near ? first : rest) |= bit;
  }
  if (first != 0 && out->count < kMaxTiers) out->nodes[out->count++] = first;
  while (rest != 0 && out->count < kMaxTiers) {
    int nearest = -1;
    for (int n = 0; n < kMaxNodes; ++n)
      if ((rest & (NodeMask{1} << n)) && (nearest < 0 || distances[n] < distances[nearest]))
        nearest = n;
    NodeMask group = 0;
    for (int n = 0; n < kMaxNodes; ++n)
      if ((rest & (NodeMask{1} << n)) && distances[n] * 4 <= distances[nearest] * 5)
        group |= NodeMask{1} << n;
    out->nodes[out->count++] = group;
    rest &= ~group;
  }
}

}  // namespace

bool parseNodeList(const char* text, size_t length, NodeMask* mask) {
  NodeMask result = 0;
  size_t i = 0;
  while (i < length && isSpace(text[i])) ++i;
  while (i < length && !isSpace(text[i])) {
    uint64_t first, last;
    if (!parseNumber(text, length, &i, &first)) return false;
    last = first;
    if (i < length && text[i] == '-') {
      ++i;
      if (!parseNumber(text, length, &i, &last) || last < first) return false;
    }
    if (last >= kMaxNodes) return false;
    for (uint64_t n = first; n <= last; ++n) result |= NodeMask{1} << n;
    if (i < length && text[i] == ',') {
      ++i;
      if (i >= length || !isDigit(text[i])) return false;
    } else if (i < length && !isSpace(text[i])) {
      return false;
    }
  }
  while (i < length && isSpace(text[i])) ++i;
  if (i != length) return false;
  *mask = result;
  return true;
}

bool parseNodeMeminfo(const char* text, size_t length, const char* field, uint64_t* bytes) {
  size_t field_length = strlen(field);
  for (size_t line = 0; line < length;) {
    size_t end = line;
    while (end < length && text[end] != '\n') ++end;
    // "Node 0 MemFree:        963219 kB": the field follows the node number.
    size_t i = line;
    if (end - line > 5 && strncmp(text + line, "Node ", 5) == 0) {
      i += 5;
      while (i < end && isDigit(text[i])) ++i;
      while (i < end && text[i] == ' ') ++i;
    }
    if (end - i > field_length && strncmp(text + i, field, field_length) == 0 &&
        text[i + field_length] == ':') {
      i += field_length + 1;
      while (i < end && text[i] == ' ') ++i;
      uint64_t value;
      if (!parseNumber(text, end, &i, &value)) return false;
      while (i < end && text[i] == ' ') ++i;
      bool kb = end - i >= 2 && strncmp(text + i, "kB", 2) == 0;
      if (kb && value > UINT64_MAX / 1024) return false;
      *bytes = kb ? value * 1024 : value;
      return true;
    }
    line = end + 1;
  }
  return false;
}

int parseDistances(const char* text, size_t length, NodeMask online, int* distances) {
  int count = 0;
  int wanted = __builtin_popcountll(online);
  size_t i = 0;
  while (count < wanted) {
    while (i < length && isSpace(text[i])) ++i;
    uint64_t value;
    if (!parseNumber(text, length, &i, &value) || value > 1000) break;
    distances[count++] = static_cast<int>(value);
  }
  return count;
}

long readSysFile(const char* root, const char* path, char* buf, size_t capacity) {
  char full[512];
  if (capacity == 0 || !join(full, sizeof full, root, path)) return -ENAMETOOLONG;
  int fd = static_cast<int>(syscall(SYS_open, full, O_RDONLY | O_CLOEXEC));
  if (fd < 0) return -errno;
  size_t total = 0;
  while (total + 1 < capacity) {
    long n = syscall(SYS_read, fd, buf + total, capacity - 1 - total);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    total += static_cast<size_t>(n);
  }
  syscall(SYS_close, fd);
  buf[total] = '\0';
  return static_cast<long>(total);
}

int discoverTiers(const char* root, TierLayout* out) {
  *out = TierLayout{};
  NodeMask memory = 0, cpus = 0, online = 0;
  if (!readNodeList(root, "/devices/system/node/has_memory", &memory) &&
      !readNodeList(root, "/devices/system/node/online", &memory))
    return -ENOENT;
  if (!readNodeList(root, "/devices/system/node/online", &online)) online = memory;
  if (!readNodeList(root, "/devices/system/node/has_cpu", &cpus)) cpus = 0;
  if (memory == 0) return -ENOENT;
  NodeMask initiators = cpus != 0 ? cpus : NodeMask{1} << lowestNode(memory);
  int distances[kMaxNodes];
  readNearestDistances(root, initiators, online, distances);

  KernelTier kernel[kMaxTiers * 2];
  int kernel_count = readKernelTiers(root, kernel, kMaxTiers * 2);
  // Insertion sort by abstract distance (a handful of entries).
  for (int i = 1; i < kernel_count; ++i)
    for (int j = i; j > 0 && kernel[j].id < kernel[j - 1].id; --j) {
      KernelTier t = kernel[j];
      kernel[j] = kernel[j - 1];
      kernel[j - 1] = t;
    }
  NodeMask placed = 0;
  for (int i = 0; i < kernel_count; ++i) {
    NodeMask nodes = kernel[i].nodes & memory & ~placed;
    if (nodes == 0) continue;
    appendSplit(nodes, cpus, distances, out);
    placed |= nodes;
  }
  // Memory the kernel did not file in a tier (or no memory_tiering at all).
  if ((memory & ~placed) != 0) appendSplit(memory & ~placed, cpus, distances, out);
  return out->count > 0 ? 0 : -ENOENT;
}

bool parseTierOverride(const char* text, TierLayout* out) {
  TierLayout layout;
  NodeMask seen = 0;
  size_t length = strlen(text);
  for (size_t start = 0; start <= length;) {
    size_t end = start;
    while (end < length && text[end] != ';') ++end;
    NodeMask nodes;
    if (layout.count == kMaxTiers || !parseNodeList(text + start, end - start, &nodes) ||
        nodes == 0 || (nodes & seen) != 0)
      return false;
    seen |= nodes;
    layout.nodes[layout.count++] = nodes;
    start = end + 1;
  }
  *out = layout;
  return true;
}

uint64_t nodesMeminfo(const char* root, NodeMask nodes, const char* field) {
  uint64_t total = 0;
  for (int n = 0; n < kMaxNodes; ++n) {
    if (!(nodes & (NodeMask{1} << n))) continue;
    char number[12], path[96], buf[4096];
    formatInt(number, static_cast<unsigned>(n));
    if (!join(path, sizeof path, "/devices/system/node/node", number, "/meminfo")) continue;
    long length = readSysFile(root, path, buf, sizeof buf);
    uint64_t bytes;
    if (length > 0 && parseNodeMeminfo(buf, static_cast<size_t>(length), field, &bytes))
      total += bytes;
  }
  return total;
}

}  // namespace tier::alloc
