#include "parse/parsers.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <set>

namespace tier {
namespace {

constexpr std::string_view kSpace = " \t\n\r";

std::vector<std::string_view> splitWords(std::string_view text) {
  std::vector<std::string_view> words;
  size_t pos = text.find_first_not_of(kSpace);
  while (pos != std::string_view::npos) {
    size_t end = text.find_first_of(kSpace, pos);
    words.push_back(text.substr(pos, end == std::string_view::npos ? end : end - pos));
    pos = text.find_first_not_of(kSpace, end == std::string_view::npos ? text.size() : end);
  }
  return words;
}

std::string quoted(std::string_view text) {
  constexpr size_t kMaxShown = 60;
  std::string shown(text.substr(0, kMaxShown));
  if (text.size() > kMaxShown) shown += "...";
  return "'" + shown + "'";
}

template <typename Int>
Result<Int> parseInteger(std::string_view text, const char* what) {
  std::string_view digits = trim(text);
  int base = 10;
  if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
    digits.remove_prefix(2);
    base = 16;
    if (digits.front() == '-' || digits.front() == '+')
      return fail(EINVAL, std::string("not ") + what + ": " + quoted(text));
  }
  Int value{};
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size())
    return fail(EINVAL, std::string("not ") + what + ": " + quoted(text));
  return value;
}

// Visits non-blank lines with their 1-based numbers; stops at the first error.
template <typename Fn>
Result<void> forEachLine(std::string_view text, Fn&& fn) {
  int number = 0;
  for (std::string_view line : split(text, '\n')) {
    ++number;
    if (trim(line).empty()) continue;
    if (auto ok = fn(line); !ok)
      return std::unexpected(wrap(ok.error(), "line " + std::to_string(number)));
  }
  return {};
}

}  // namespace

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  size_t pos = 0;
  for (;;) {
    size_t next = text.find(separator, pos);
    parts.push_back(text.substr(pos, next == std::string_view::npos ? next : next - pos));
    if (next == std::string_view::npos) break;
    pos = next + 1;
  }
  return parts;
}

std::string_view trim(std::string_view text) {
  size_t first = text.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  size_t last = text.find_last_not_of(kSpace);
  return text.substr(first, last - first + 1);
}

Result<uint64_t> parseU64(std::string_view text) {
  return parseInteger<uint64_t>(text, "an unsigned number");
}

Result<int64_t> parseI64(std::string_view text) {
  return parseInteger<int64_t>(text, "a number");
}

Result<bool> parseBool(std::string_view text) {
  std::string word(trim(text));
  std::transform(word.begin(), word.end(), word.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (word == "1" || word == "y" || word == "yes" || word == "true") return true;
  if (word == "0" || word == "n" || word == "no" || word == "false") return false;
  return fail(EINVAL, "not a boolean: " + quoted(text));
}

Result<std::vector<int>> parseIdList(std::string_view text) {
  std::set<int> ids;
  std::string_view body = trim(text);
  if (body.empty()) return std::vector<int>{};
  for (std::string_view range : split(body, ',')) {
    size_t dash = range.find('-');
    auto first = parseInteger<int>(range.substr(0, dash), "an id");
    if (!first || *first < 0) return fail(EINVAL, "bad id list " + quoted(text));
    int last = *first;
    if (dash != std::string_view::npos) {
      auto end = parseInteger<int>(range.substr(dash + 1), "an id");
      if (!end || *end < *first) return fail(EINVAL, "bad id range " + quoted(range));
      last = *end;
    }
    // Kernel CPU ids stay below 8192 and node ids below 1024; a larger id
    // is garbage, and refusing it bounds the work and memory of a parse.
    constexpr int kMaxId = 1 << 16;
    if (last > kMaxId) return fail(ERANGE, "id out of range in " + quoted(range));
    for (int id = *first; id <= last; ++id)
      ids.insert(id);
  }
  return std::vector<int>(ids.begin(), ids.end());
}

std::string formatIdList(const std::vector<int>& ids) {
  std::vector<int> sorted = ids;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::string out;
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i;
    while (j + 1 < sorted.size() && sorted[j + 1] == sorted[j] + 1)
      ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(sorted[i]);
    if (j > i) out += "-" + std::to_string(sorted[j]);
    i = j + 1;
  }
  return out;
}

Result<std::vector<int>> parseDistanceRow(std::string_view text) {
  std::vector<int> row;
  for (std::string_view word : splitWords(text)) {
    auto value = parseInteger<int>(word, "a distance");
    if (!value) return std::unexpected(value.error());
    row.push_back(*value);
  }
  return row;
}

Result<std::map<std::string, uint64_t>> parseMeminfo(std::string_view text) {
  std::map<std::string, uint64_t> fields;
  auto ok = forEachLine(text, [&](std::string_view line) -> Result<void> {
    auto words = splitWords(line);
    // Per-node files prefix "Node <n>"; /proc/meminfo does not.
    if (words.size() >= 2 && words[0] == "Node") words.erase(words.begin(), words.begin() + 2);
    if (words.size() < 2 || words[0].size() < 2 || words[0].back() != ':')
      return fail(EINVAL, "not 'Name: value [kB]': " + quoted(line));
    auto value = parseU64(words[1]);
    if (!value) return std::unexpected(value.error());
    uint64_t scale = 1;
    if (words.size() == 3 && words[2] == "kB")
      scale = 1024;
    else if (words.size() != 2)
      return fail(EINVAL, "unexpected unit in " + quoted(line));
    if (*value > UINT64_MAX / scale) return fail(ERANGE, "value too large in " + quoted(line));
    fields[std::string(words[0].substr(0, words[0].size() - 1))] = *value * scale;
    return {};
  });
  if (!ok) return std::unexpected(ok.error());
  return fields;
}

Result<std::map<int, NodeWatermarks>> parseZoneWatermarks(std::string_view text) {
  std::map<int, NodeWatermarks> nodes;
  NodeWatermarks* zone_node = nullptr;
  uint64_t boost = 0;  // of the current zone; "boost" precedes min/low/high
  auto ok = forEachLine(text, [&](std::string_view line) -> Result<void> {
    auto words = splitWords(line);
    if (words[0] == "Node") {  // "Node 0, zone   Normal"
      if (words.size() != 4 || words[1].empty() || words[1].back() != ',' || words[2] != "zone")
        return fail(EINVAL, "not 'Node N, zone NAME': " + quoted(line));
      auto node = parseInteger<int>(words[1].substr(0, words[1].size() - 1), "a node id");
      if (!node) return std::unexpected(node.error());
      zone_node = &nodes[*node];
      boost = 0;
      return {};
    }
    if (words.size() != 2 || zone_node == nullptr) return {};
    if (words[0] == "count:") {  // a CPU's pageset
      auto value = parseU64(words[1]);
      if (!value) return std::unexpected(wrap(value.error(), quoted(line)));
      zone_node->per_cpu_free_pages += *value;
      return {};
    }
    uint64_t NodeWatermarks::*field = nullptr;
    if (words[0] == "min") field = &NodeWatermarks::min_pages;
    if (words[0] == "low") field = &NodeWatermarks::low_pages;
    if (words[0] == "high") field = &NodeWatermarks::high_pages;
    if (words[0] != "boost" && field == nullptr) return {};
    auto value = parseU64(words[1]);
    if (!value) return std::unexpected(wrap(value.error(), quoted(line)));
    if (field == nullptr) {
      boost = *value;
    } else {
      zone_node->*field += *value + boost;
    }
    return {};
  });
  if (!ok) return std::unexpected(ok.error());
  return nodes;
}

Result<std::optional<uint64_t>> parseNumaScanSeq(std::string_view text) {
  constexpr std::string_view kKey = "mm->numa_scan_seq";
  std::optional<uint64_t> seq;
  auto ok = forEachLine(text, [&](std::string_view line) -> Result<void> {
    const std::string_view trimmed = trim(line);
    if (!trimmed.starts_with(kKey)) return {};
    const size_t colon = trimmed.find(':');
    if (colon == std::string_view::npos ||
        trim(trimmed.substr(kKey.size(), colon - kKey.size())) != "")
      return fail(EINVAL, "not 'mm->numa_scan_seq : N': " + quoted(line));
    auto value = parseU64(trim(trimmed.substr(colon + 1)));
    if (!value) return std::unexpected(wrap(value.error(), quoted(line)));
    seq = *value;
    return {};
  });
  if (!ok) return std::unexpected(ok.error());
  return seq;
}

Result<std::map<std::string, uint64_t>> parseCounters(std::string_view text) {
  std::map<std::string, uint64_t> counters;
  auto ok = forEachLine(text, [&](std::string_view line) -> Result<void> {
    auto words = splitWords(line);
    if (words.size() != 2) return fail(EINVAL, "not 'name value': " + quoted(line));
    auto value = parseU64(words[1]);
    if (!value) return std::unexpected(value.error());
    counters[std::string(words[0])] = *value;
    return {};
  });
  if (!ok) return std::unexpected(ok.error());
  return counters;
}

namespace {

Result<void> applyNumaMapsField(std::string_view word, NumaMapsEntry& entry) {
  if (word == "heap") return entry.heap = true, Result<void>{};
  if (word == "stack") return entry.stack = true, Result<void>{};
  if (word == "huge") return entry.huge = true, Result<void>{};
  size_t eq = word.find('=');
  if (eq == std::string_view::npos) return {};  // a flag added by a newer kernel
  std::string_view key = word.substr(0, eq), value = word.substr(eq + 1);
  if (key == "file") {
    entry.file = std::string(value);
    return {};
  }
  auto number = parseU64(value);
  if (!number) return fail(EINVAL, "bad value in " + quoted(word));
  if (key.size() > 1 && key[0] == 'N' &&
      std::all_of(key.begin() + 1, key.end(), [](unsigned char c) { return std::isdigit(c); })) {
    auto node = parseInteger<int>(key.substr(1), "a node");
    if (!node) return std::unexpected(node.error());
    entry.pages_on_node[*node] = *number;
  } else if (key == "anon") {
    entry.anon = *number;
  } else if (key == "dirty") {
    entry.dirty = *number;
  } else if (key == "mapped") {
    entry.mapped = *number;
  } else if (key == "kernelpagesize_kB") {
    if (*number == 0 || *number > (UINT64_MAX >> 10))
      return fail(ERANGE, "bad page size " + quoted(word));
    entry.page_size = *number * 1024;
  }
  return {};
}

}  // namespace

Result<std::vector<NumaMapsEntry>> parseNumaMaps(std::string_view text) {
  std::vector<NumaMapsEntry> entries;
  auto ok = forEachLine(text, [&](std::string_view line) -> Result<void> {
    auto words = splitWords(line);
    if (words.size() < 2) return fail(EINVAL, "not '<address> <policy> ...': " + quoted(line));
    NumaMapsEntry entry;
    auto start = parseInteger<uint64_t>("0x" + std::string(words[0]), "an address");
    if (!start) return fail(EINVAL, "bad address " + quoted(words[0]));
    entry.start = *start;
    // Two policy names hold a space: "weighted interleave:0-1", "prefer (many):1-2".
    size_t first_field = 2;
    entry.policy = std::string(words[1]);
    if (words.size() > 2 && ((words[1] == "weighted" && words[2].starts_with("interleave")) ||
                             (words[1] == "prefer" && words[2].starts_with("(many)")))) {
      entry.policy += " " + std::string(words[2]);
      first_field = 3;
    }
    for (size_t i = first_field; i < words.size(); ++i)
      if (auto applied = applyNumaMapsField(words[i], entry); !applied) return applied;
    entries.push_back(std::move(entry));
    return {};
  });
  if (!ok) return std::unexpected(ok.error());
  return entries;
}

Result<std::vector<MapsEntry>> parseMaps(std::string_view text) {
  std::vector<MapsEntry> entries;
  auto ok = forEachLine(text, [&](std::string_view line) -> Result<void> {
    // "start-end perms offset dev inode [path]"; the path may hold spaces.
    auto words = splitWords(line);
    if (words.size() < 5) return fail(EINVAL, "not a maps line: " + quoted(line));
    size_t dash = words[0].find('-');
    if (dash == std::string_view::npos) return fail(EINVAL, "bad range " + quoted(words[0]));
    auto start = parseInteger<uint64_t>("0x" + std::string(words[0].substr(0, dash)), "an address");
    auto end = parseInteger<uint64_t>("0x" + std::string(words[0].substr(dash + 1)), "an address");
    auto offset = parseInteger<uint64_t>("0x" + std::string(words[2]), "an offset");
    auto inode = parseInteger<uint64_t>(words[4], "an inode");
    if (!start || !end || *end < *start || !offset || !inode || words[1].size() != 4)
      return fail(EINVAL, "bad maps line " + quoted(line));
    MapsEntry entry{*start, *end, std::string(words[1]), *offset, *inode, {}};
    if (words.size() > 5) {
      size_t path_at = static_cast<size_t>(words[5].data() - line.data());
      entry.path = std::string(trim(line.substr(path_at)));
    }
    entries.push_back(std::move(entry));
    return {};
  });
  if (!ok) return std::unexpected(ok.error());
  return entries;
}

}  // namespace tier
