#include "agent_verbs.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client.h"
#include "control/protocol.h"
#include "units.h"

namespace tierctl {
namespace {

using tierd::control::AddressRange;
using tierd::control::kDefaultSocketPath;
using tierd::control::kMaxNodeId;
using tierd::control::kMaxPid;
using tierd::control::Request;

constexpr int kExitFailure = 1;
constexpr auto kDefaultTimeout = std::chrono::seconds(30);
constexpr auto kMigrateTimeout = std::chrono::minutes(10);  // whole address spaces take a while
constexpr double kMiB = 1024.0 * 1024.0;

// --socket is global (before or after the verb), like --sysfs-root: it lives
// on the root app and is declared by whichever agent verb attaches first.
CLI::Option* socketOption(CLI::App& cmd) {
  CLI::App* root = &cmd;
  while (root->get_parent() != nullptr)
    root = root->get_parent();
  if (CLI::Option* existing = root->get_option_no_throw("--socket")) return existing;
  return root->add_option("--socket")
      ->description("tierd's control socket (for status, ps, migrate, pin, unpin, config)")
      ->option_text(fmt::format("PATH [{}]", kDefaultSocketPath));
}

std::string socketPath(const CLI::Option* option) {
  return option->count() > 0 ? option->as<std::string>() : std::string(kDefaultSocketPath);
}

// ---- reading replies whose fields the daemon may still change -------------

std::optional<uint64_t> optU64(const Json& object, const char* key) {
  if (!object.is_object()) return std::nullopt;
  auto it = object.find(key);
  if (it == object.end()) return std::nullopt;
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  if (it->is_number_integer())
    return static_cast<uint64_t>(std::max<int64_t>(0, it->get<int64_t>()));
  if (it->is_number_float()) return static_cast<uint64_t>(std::max(0.0, it->get<double>()));
  return std::nullopt;
}

uint64_t u64(const Json& object, const char* key) {
  return optU64(object, key).value_or(0);
}

std::string text(const Json& object, const char* key, std::string fallback = "-") {
  if (!object.is_object()) return fallback;
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return fallback;
  if (it->is_string()) return it->get<std::string>();
  return it->dump(-1, ' ', false, Json::error_handler_t::replace);
}

// {"EBUSY": 3, "ENOMEM": 1} -> "EBUSY 3, ENOMEM 1"; the total in `sum`.
std::string counts(const Json& object, uint64_t* sum = nullptr) {
  std::vector<std::string> parts;
  if (object.is_object()) {
    for (const auto& [key, value] : object.items()) {
      uint64_t n = u64(object, key.c_str());
      if (sum != nullptr) *sum += n;
      parts.push_back(fmt::format("{} {}", key, n));
    }
  }
  return fmt::format("{}", fmt::join(parts, ", "));
}

std::string duration(uint64_t seconds) {
  uint64_t days = seconds / 86400, hours = seconds / 3600 % 24, minutes = seconds / 60 % 60,
           secs = seconds % 60;
  if (days > 0) return fmt::format("{}d {:02}h {:02}m {:02}s", days, hours, minutes, secs);
  if (hours > 0) return fmt::format("{}h {:02}m {:02}s", hours, minutes, secs);
  if (minutes > 0) return fmt::format("{}m {:02}s", minutes, secs);
  return fmt::format("{}s", secs);
}

std::string rangeText(const AddressRange& range) {
  return fmt::format("{:#x}-{:#x}", range.start, range.end);
}

// ---- text views -------------------------------------------------------------

// One line per process under libtier: "libtier: 4242 python3, policy fast:1,far:3,
// tiers 0 [0] 32.0 MiB reserved, 1 [2] 0 B reserved".
std::string libtierText(const Json& processes) {
  if (!processes.is_array() || processes.empty()) return "";
  std::string out;
  for (const auto& process : processes) {
    std::vector<std::string> tiers;
    const Json list = process.is_object() ? process.value("tiers", Json::array()) : Json();
    if (list.is_array())
      for (const auto& tier : list) {
        std::vector<int> nodes;
        if (tier.is_object() && tier.contains("nodes") && tier["nodes"].is_array())
          for (const auto& node : tier["nodes"])
            if (node.is_number_integer()) nodes.push_back(node.get<int>());
        tiers.push_back(fmt::format("{} [{}] {} reserved", u64(tier, "rank"),
                                    fmt::join(nodes, ","), shortSize(u64(tier, "reserved_bytes"))));
      }
    std::string policy = "none";
    if (process.is_object() && process.contains("policy") && process["policy"].is_object() &&
        !process["policy"].empty())
      policy = process["policy"].dump(-1, ' ', false, Json::error_handler_t::replace);
    out += fmt::format("libtier: {} {}, policy {}, tiers {}\n", u64(process, "pid"),
                       text(process, "program", "?"), policy,
                       tiers.empty() ? "none" : fmt::format("{}", fmt::join(tiers, "; ")));
  }
  return out;
}

std::string statusText(const Json& result) {
  std::string out = fmt::format("tierd {}: up {}, mode {}\n", text(result, "version"),
                                duration(u64(result, "uptime_seconds")), text(result, "mode"));
  out += fmt::format("managed processes: {}\n", u64(result, "managed_processes"));
  const Json migration = result.is_object() ? result.value("migration", Json::object()) : Json();
  out += fmt::format("migrated: {} pages ({})\n", u64(migration, "pages_moved"),
                     shortSize(u64(migration, "bytes_moved")));
  uint64_t failed = 0;
  std::string reasons =
      counts(migration.is_object() ? migration.value("failed", Json::object()) : Json(), &failed);
  out += fmt::format("failed: {}{}\n", failed, reasons.empty() ? "" : " (" + reasons + ")");
  std::vector<std::string> managers;
  if (result.is_object() && result.contains("other_managers") &&
      result["other_managers"].is_object()) {
    for (const auto& [key, value] : result["other_managers"].items())
      managers.push_back(fmt::format("{} {}", key, text(result["other_managers"], key.c_str())));
  }
  out += fmt::format("other managers: {}\n",
                     managers.empty() ? "none" : fmt::format("{}", fmt::join(managers, ", ")));
  out += libtierText(result.is_object() ? result.value("libtier", Json::array()) : Json());
  return out;
}

// The layout of `numastat -p` for several processes: one row per process,
// one column per node, MB (MiB) with 2 decimals, and a Total row and column.
std::string psText(const Json& result) {
  const Json processes =
      result.is_object() ? result.value("processes", Json::array()) : Json::array();
  std::map<int, std::string> nodes;  // node id -> key in "nodes"
  if (processes.is_array()) {
    for (const auto& process : processes) {
      if (!process.is_object() || !process.contains("nodes") || !process["nodes"].is_object())
        continue;
      for (const auto& [key, value] : process["nodes"].items()) {
        int id = -1;
        if (key.size() > 4 && key.starts_with("node")) {
          auto [end, ec] = std::from_chars(key.data() + 4, key.data() + key.size(), id);
          if (ec != std::errc() || end != key.data() + key.size()) id = -1;
        }
        if (id >= 0) nodes.emplace(id, key);
      }
    }
  }
  struct Row {
    std::string label, workload;
    std::vector<uint64_t> bytes;  // per node, then the total
  };
  std::vector<Row> rows;
  Row total{"Total", "", std::vector<uint64_t>(nodes.size() + 1, 0)};
  if (processes.is_array()) {
    for (const auto& process : processes) {
      Row row{fmt::format("{} ({})", u64(process, "pid"), text(process, "comm", "?")),
              text(process, "workload"),
              {}};
      const Json per_node = process.is_object() ? process.value("nodes", Json::object()) : Json();
      uint64_t sum = 0;
      for (const auto& [id, key] : nodes) {
        row.bytes.push_back(u64(per_node, key.c_str()));
        sum += row.bytes.back();
      }
      row.bytes.push_back(optU64(process, "total").value_or(sum));
      for (size_t i = 0; i < row.bytes.size(); ++i)
        total.bytes[i] += row.bytes[i];
      rows.push_back(std::move(row));
    }
  }
  size_t label_width = 17, workload_width = 8;
  for (const auto& row : rows) {
    label_width = std::max(label_width, row.label.size());
    workload_width = std::max(workload_width, row.workload.size());
  }
  std::string rule = fmt::format("{:-<{}}  {:-<{}}", "", label_width, "", workload_width);
  for (size_t i = 0; i <= nodes.size(); ++i)
    rule += " ---------------";
  rule += "\n";

  std::string out = "Per-node process memory usage (in MBs)\n";
  out += fmt::format("{:<{}}  {:<{}}", "PID", label_width, "Workload", workload_width);
  for (const auto& [id, key] : nodes)
    out += fmt::format("{:>16}", fmt::format("Node {}", id));
  out += fmt::format("{:>16}\n", "Total");
  out += rule;
  auto print = [&](const Row& row) {
    out += fmt::format("{:<{}}  {:<{}}", row.label, label_width, row.workload, workload_width);
    for (uint64_t bytes : row.bytes)
      out += fmt::format("{:>16.2f}", static_cast<double>(bytes) / kMiB);
    out += "\n";
  };
  for (const auto& row : rows)
    print(row);
  out += rule;
  print(total);
  return out;
}

std::string migrateText(const Json& result, const tierd::control::MigrateRequest& request) {
  std::string target = optU64(result, "target_node")
                           ? fmt::format("node {}", u64(result, "target_node"))
                       : request.to_node ? fmt::format("node {}", *request.to_node)
                                         : fmt::format("tier {}", request.to_tier.value_or(0));
  std::string what = request.range
                         ? fmt::format("{} of process {}", rangeText(*request.range),
                                       optU64(result, "pid").value_or(request.pid))
                         : fmt::format("process {}", optU64(result, "pid").value_or(request.pid));
  std::string out =
      fmt::format("migrated {} to {}: {} of {} pages moved ({}) in {:.2f} s\n", what, target,
                  u64(result, "pages_moved"), u64(result, "pages_requested"),
                  shortSize(u64(result, "bytes_moved")),
                  result.is_object() && result.contains("seconds") && result["seconds"].is_number()
                      ? result["seconds"].get<double>()
                      : 0.0);
  out += fmt::format("  already there: {} pages\n", u64(result, "pages_already_there"));
  uint64_t failed = 0;
  std::string reasons =
      counts(result.is_object() ? result.value("failed", Json::object()) : Json(), &failed);
  out += fmt::format("  failed: {} pages{}\n", failed, reasons.empty() ? "" : " (" + reasons + ")");
  if (auto present = optU64(result, "pages_present_after")) {
    uint64_t on_target = u64(result, "pages_on_target_after");
    out += fmt::format("  now on {}: {} of {} present pages", target, on_target, *present);
    if (*present > 0)
      out += fmt::format(" ({:.1f}%)",
                         100.0 * static_cast<double>(on_target) / static_cast<double>(*present));
    out += "\n";
  }
  return out;
}

// ---- running a verb ---------------------------------------------------------

// Sends the request and prints the result with `render` (or as JSON with -j).
int ask(const CLI::Option* socket, const Request& request, bool json,
        const std::function<std::string(const Json&)>& render,
        std::chrono::milliseconds timeout = kDefaultTimeout) {
  auto reply = callAgent(socketPath(socket), tierd::control::requestToJson(request), timeout);
  if (!reply) {
    fmt::print(stderr, "tierctl: {}\n", reply.error().message());
    return kExitFailure;
  }
  std::string out;
  try {
    out = json ? reply->dump(2, ' ', false, Json::error_handler_t::replace) + "\n" : render(*reply);
  } catch (const std::exception& error) {
    fmt::print(stderr, "tierctl: unexpected reply from tierd: {}\n", error.what());
    return kExitFailure;
  }
  fmt::print("{}", out);
  return 0;
}

CLI::Validator rangeValidator() {
  return CLI::Validator(
      [](std::string& value) {
        auto range = parseRangeArgument(value);
        return range ? std::string() : range.error().context;
      },
      "START-END");
}

void addPid(CLI::App& cmd, pid_t& pid, bool required) {
  auto* option = cmd.add_option("--pid", pid, "Process id")->check(CLI::Range(1, kMaxPid));
  if (required) option->required();
}

void addRange(CLI::App& cmd, std::string& range, bool required) {
  auto* option =
      cmd.add_option("--range", range,
                     "Address range START-END, hex with 0x or decimal (e.g. 0x7f00000-0x7f80000)")
          ->check(rangeValidator());
  if (required) option->required();
}

AddressRange rangeOf(const std::string& text) {
  return parseRangeArgument(text).value_or(AddressRange{});  // validated by the option
}

void addJson(CLI::App& cmd, bool& json) {
  cmd.add_flag("-j,--json", json, "The reply's result as JSON");
}

std::optional<uint64_t> parseAddress(std::string_view text) {
  int base = 10;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    text.remove_prefix(2);
    base = 16;
  }
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace

tier::Result<AddressRange> parseRangeArgument(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return tier::fail(EINVAL, fmt::format("{} in \"{}\" (expected START-END, e.g. "
                                          "0x7f0000000000-0x7f0000200000)",
                                          why, text));
  };
  size_t dash = text.find('-');
  if (dash == std::string_view::npos) return bad("no '-'");
  auto start = parseAddress(text.substr(0, dash));
  auto end = parseAddress(text.substr(dash + 1));
  if (!start) return bad("bad START");
  if (!end) return bad("bad END");
  if (*start >= *end) return bad("START must be below END");
  return AddressRange{.start = *start, .end = *end};
}

std::function<int()> attachStatusVerb(CLI::App& cmd, const RootOptions&) {
  auto* socket = socketOption(cmd);
  auto json = std::make_shared<bool>(false);
  addJson(cmd, *json);
  return [socket, json] { return ask(socket, tierd::control::StatusRequest{}, *json, statusText); };
}

std::function<int()> attachPsVerb(CLI::App& cmd, const RootOptions&) {
  auto* socket = socketOption(cmd);
  struct Flags {
    pid_t pid = 0;
    bool json = false;
  };
  auto flags = std::make_shared<Flags>();
  addPid(cmd, flags->pid, false);
  addJson(cmd, flags->json);
  return [socket, flags] {
    tierd::control::PsRequest request;
    if (flags->pid > 0) request.pid = flags->pid;
    return ask(socket, request, flags->json, psText);
  };
}

std::function<int()> attachMigrateVerb(CLI::App& cmd, const RootOptions&) {
  auto* socket = socketOption(cmd);
  struct Flags {
    pid_t pid = 0;
    std::string range;
    int node = -1, tier = -1;
    bool json = false;
  };
  auto flags = std::make_shared<Flags>();
  addPid(cmd, flags->pid, true);
  addRange(cmd, flags->range, false);
  auto* target = cmd.add_option_group("target", "Where the pages go (exactly one)");
  target->add_option("--to-node", flags->node, "NUMA node")->check(CLI::Range(0, kMaxNodeId));
  target->add_option("--to-tier", flags->tier, "Tier rank as seen from the process's CPUs")
      ->check(CLI::Range(0, kMaxNodeId));
  target->require_option(1);
  addJson(cmd, flags->json);
  return [socket, flags] {
    tierd::control::MigrateRequest request;
    request.pid = flags->pid;
    if (!flags->range.empty()) request.range = rangeOf(flags->range);
    if (flags->node >= 0) request.to_node = flags->node;
    if (flags->tier >= 0) request.to_tier = flags->tier;
    return ask(
        socket, request, flags->json,
        [request](const Json& result) { return migrateText(result, request); }, kMigrateTimeout);
  };
}

std::function<int()> attachPinVerb(CLI::App& cmd, const RootOptions&) {
  auto* socket = socketOption(cmd);
  struct Flags {
    pid_t pid = 0;
    std::string range;
    int tier = 0;
    bool json = false;
  };
  auto flags = std::make_shared<Flags>();
  addPid(cmd, flags->pid, true);
  addRange(cmd, flags->range, true);
  cmd.add_option("--tier", flags->tier, "Tier rank to keep the range on")
      ->required()
      ->check(CLI::Range(0, kMaxNodeId));
  addJson(cmd, flags->json);
  return [socket, flags] {
    tierd::control::PinRequest request{
        .pid = flags->pid, .range = rangeOf(flags->range), .tier = flags->tier};
    return ask(socket, request, flags->json, [request](const Json&) {
      return fmt::format("pinned {} of process {} to tier {}\n", rangeText(request.range),
                         request.pid, request.tier);
    });
  };
}

std::function<int()> attachUnpinVerb(CLI::App& cmd, const RootOptions&) {
  auto* socket = socketOption(cmd);
  struct Flags {
    pid_t pid = 0;
    std::string range;
    bool json = false;
  };
  auto flags = std::make_shared<Flags>();
  addPid(cmd, flags->pid, true);
  addRange(cmd, flags->range, true);
  addJson(cmd, flags->json);
  return [socket, flags] {
    tierd::control::UnpinRequest request{.pid = flags->pid, .range = rangeOf(flags->range)};
    return ask(socket, request, flags->json, [request](const Json&) {
      return fmt::format("unpinned {} of process {}\n", rangeText(request.range), request.pid);
    });
  };
}

std::function<int()> attachConfigVerb(CLI::App& cmd, const RootOptions&) {
  auto* socket = socketOption(cmd);
  auto json = std::make_shared<bool>(false);
  CLI::App* show = cmd.add_subcommand("show", "The configuration tierd runs with (JSON)");
  CLI::App* reload = cmd.add_subcommand("reload", "Re-read tierd.toml (root or CAP_SYS_NICE)");
  addJson(*show, *json);
  addJson(*reload, *json);
  cmd.require_subcommand(1);
  return [socket, json, show] {
    if (show->parsed()) {
      return ask(socket, tierd::control::ConfigShowRequest{}, true, nullptr);
    }
    return ask(socket, tierd::control::ConfigReloadRequest{}, *json,
               [](const Json&) { return std::string("tierd reloaded its configuration\n"); });
  };
}

}  // namespace tierctl
