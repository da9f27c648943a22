#include "control/protocol.h"

#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace tierd::control {
namespace {

constexpr size_t kMaxQuotedChars = 64;

// A user-supplied name or string as a JSON string literal, shortened so that
// a 64 KiB field name cannot bloat the error message.
std::string quotedName(std::string_view text) {
  bool shortened = text.size() > kMaxQuotedChars;
  if (shortened) text = text.substr(0, kMaxQuotedChars);
  std::string out = Json(std::string(text)).dump(-1, ' ', false, Json::error_handler_t::replace);
  if (shortened) out.insert(out.size() - 1, "...");
  return out;
}

// What a value is, for "must be X, not Y" messages.
std::string describe(const Json& value) {
  switch (value.type()) {
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return value.dump();
    case Json::value_t::number_float:
      return "a non-integer number";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::null:
      return "null";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::object:
      return "an object";
    default:
      return "an unsupported value";
  }
}

std::unexpected<tier::Error> invalid(std::string message) {
  return tier::fail(EINVAL, std::move(message));
}

// An integer within [min, max]; `name` is the field's path ("range.start").
tier::Result<int64_t> integerField(const Json& value, std::string_view name, int64_t min,
                                   int64_t max) {
  int64_t number = 0;
  if (value.is_number_unsigned()) {
    uint64_t raw = value.get<uint64_t>();
    if (raw > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return invalid(
          fmt::format("field \"{}\" must be between {} and {}, not {}", name, min, max, raw));
    number = static_cast<int64_t>(raw);
  } else if (value.is_number_integer()) {
    number = value.get<int64_t>();
  } else {
    return invalid(fmt::format("field \"{}\" must be an integer, not {}", name, describe(value)));
  }
  if (number < min || number > max)
    return invalid(
        fmt::format("field \"{}\" must be between {} and {}, not {}", name, min, max, number));
  return number;
}

tier::Result<uint64_t> addressField(const Json& value, std::string_view name) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer())  // only negative integers land here
    return invalid(fmt::format("field \"{}\" must be a non-negative integer, not {}", name,
                               value.get<int64_t>()));
  if (value.is_number_float())
    return invalid(fmt::format(
        "field \"{}\" must be an integer below 2^64, not a non-integer or larger number", name));
  return invalid(fmt::format("field \"{}\" must be an integer, not {}", name, describe(value)));
}

tier::Result<pid_t> pidField(const Json& object) {
  auto it = object.find("pid");
  if (it == object.end()) return invalid("missing field \"pid\"");
  auto pid = integerField(*it, "pid", 1, kMaxPid);
  if (!pid) return std::unexpected(pid.error());
  return static_cast<pid_t>(*pid);
}

tier::Result<int> nodeField(const Json& value, std::string_view name) {
  auto node = integerField(value, name, 0, kMaxNodeId);
  if (!node) return std::unexpected(node.error());
  return static_cast<int>(*node);
}

tier::Result<AddressRange> rangeField(const Json& object) {
  auto it = object.find("range");
  if (it == object.end()) return invalid("missing field \"range\"");
  const Json& range = *it;
  if (!range.is_object())
    return invalid(fmt::format(
        "field \"range\" must be an object {{\"start\":N,\"end\":N}}, not {}", describe(range)));
  for (const auto& [key, value] : range.items()) {
    if (key != "start" && key != "end")
      return invalid(
          fmt::format("unknown field {} (expected start and end)", quotedName("range." + key)));
  }
  AddressRange out;
  for (auto [key, slot] : {std::pair{"start", &out.start}, std::pair{"end", &out.end}}) {
    auto field = range.find(key);
    if (field == range.end()) return invalid(fmt::format("missing field \"range.{}\"", key));
    auto address = addressField(*field, fmt::format("range.{}", key));
    if (!address) return std::unexpected(address.error());
    *slot = *address;
  }
  if (out.start >= out.end)
    return invalid(
        fmt::format("field \"range\": start {:#x} must be below end {:#x}", out.start, out.end));
  return out;
}

// A required string of 1..kMaxProgramChars bytes.
tier::Result<std::string> nameField(const Json& object, std::string_view name) {
  auto it = object.find(name);
  if (it == object.end()) return invalid(fmt::format("missing field \"{}\"", name));
  if (!it->is_string())
    return invalid(fmt::format("field \"{}\" must be a string, not {}", name, describe(*it)));
  const auto& text = it->get_ref<const std::string&>();
  if (text.empty() || text.size() > kMaxProgramChars)
    return invalid(fmt::format("field \"{}\" must have 1 to {} bytes, not {}", name,
                               kMaxProgramChars, text.size()));
  return text;
}

// One element of register's "tiers"; `name` is its path ("tiers[1]").
tier::Result<RegisteredTier> registeredTierField(const Json& value, const std::string& name) {
  if (!value.is_object())
    return invalid(fmt::format(
        "field \"{}\" must be an object {{\"rank\":N,\"nodes\":[N,...],\"reserved_bytes\":N}}, "
        "not {}",
        name, describe(value)));
  for (const auto& [key, field] : value.items()) {
    if (key != "rank" && key != "nodes" && key != "reserved_bytes")
      return invalid(fmt::format("unknown field {} (expected rank, nodes and reserved_bytes)",
                                 quotedName(name + "." + key)));
  }
  for (const char* key : {"rank", "nodes", "reserved_bytes"})
    if (!value.contains(key)) return invalid(fmt::format("missing field \"{}.{}\"", name, key));
  RegisteredTier tier;
  auto rank = nodeField(value.at("rank"), name + ".rank");
  if (!rank) return std::unexpected(rank.error());
  tier.rank = *rank;
  const Json& nodes = value.at("nodes");
  if (!nodes.is_array())
    return invalid(
        fmt::format("field \"{}.nodes\" must be an array of node ids, not {}", name,
                    describe(nodes)));
  if (nodes.size() > static_cast<size_t>(kMaxNodeId) + 1)
    return invalid(fmt::format("field \"{}.nodes\" has {} entries; at most {}", name,
                               nodes.size(), kMaxNodeId + 1));
  for (size_t i = 0; i < nodes.size(); ++i) {
    auto node = nodeField(nodes[i], fmt::format("{}.nodes[{}]", name, i));
    if (!node) return std::unexpected(node.error());
    tier.nodes.push_back(*node);
  }
  auto reserved = addressField(value.at("reserved_bytes"), name + ".reserved_bytes");
  if (!reserved) return std::unexpected(reserved.error());
  tier.reserved_bytes = *reserved;
  return tier;
}

tier::Result<RegisterRequest> registerArguments(pid_t pid, const Json& object) {
  RegisterRequest out;
  out.pid = pid;
  auto program = nameField(object, "program");
  if (!program) return std::unexpected(program.error());
  out.program = std::move(*program);
  auto library = nameField(object, "library");
  if (!library) return std::unexpected(library.error());
  out.library = std::move(*library);
  if (auto policy = object.find("policy"); policy != object.end()) {
    if (!policy->is_object())
      return invalid(
          fmt::format("field \"policy\" must be an object, not {}", describe(*policy)));
    out.policy = *policy;
  }
  auto tiers = object.find("tiers");
  if (tiers == object.end()) return invalid("missing field \"tiers\"");
  if (!tiers->is_array())
    return invalid(fmt::format("field \"tiers\" must be an array, not {}", describe(*tiers)));
  if (tiers->size() > kMaxRegisteredTiers)
    return invalid(fmt::format("field \"tiers\" has {} entries; at most {}", tiers->size(),
                               kMaxRegisteredTiers));
  for (size_t i = 0; i < tiers->size(); ++i) {
    auto tier = registeredTierField((*tiers)[i], fmt::format("tiers[{}]", i));
    if (!tier) return std::unexpected(tier.error());
    out.tiers.push_back(std::move(*tier));
  }
  return out;
}

tier::Result<Hint> hintField(const Json& object) {
  auto it = object.find("hint");
  if (it == object.end()) return invalid("missing field \"hint\"");
  if (it->is_string()) {
    if (*it == "hot") return Hint::kHot;
    if (*it == "cold") return Hint::kCold;
    return invalid(fmt::format("field \"hint\" must be \"hot\" or \"cold\", not {}",
                               quotedName(it->get<std::string>())));
  }
  return invalid(
      fmt::format("field \"hint\" must be \"hot\" or \"cold\", not {}", describe(*it)));
}

struct RequestKind {
  std::string_view name;
  std::vector<std::string_view> fields;  // besides "version" and "request"
};

// In the order of Request's alternatives.
const std::array<RequestKind, std::variant_size_v<Request>>& requestKinds() {
  static const std::array<RequestKind, std::variant_size_v<Request>> kinds{{
      {"status", {}},
      {"ps", {"pid"}},
      {"migrate", {"pid", "range", "to_node", "to_tier"}},
      {"pin", {"pid", "range", "tier"}},
      {"unpin", {"pid", "range"}},
      {"config-show", {}},
      {"config-reload", {}},
      {"register", {"pid", "program", "library", "policy", "tiers"}},
      {"hint", {"pid", "range", "hint"}},
  }};
  return kinds;
}

std::string knownRequestList() {
  std::string list;
  for (const auto& kind : requestKinds()) {
    if (!list.empty()) list += ", ";
    list += kind.name;
  }
  return list;
}

// Parses JSON text, refusing duplicate keys (which value would win is a
// library detail; a request should not be ambiguous).
tier::Result<Json> parseJson(std::string_view text) {
  std::vector<std::set<std::string>> keys;  // one set per open object
  std::string duplicate;
  auto callback = [&](int, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
        keys.emplace_back();
        break;
      case Json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case Json::parse_event_t::key:
        if (!keys.empty() && parsed.is_string() &&
            !keys.back().insert(parsed.get<std::string>()).second && duplicate.empty())
          duplicate = parsed.get<std::string>();
        break;
      default:
        break;
    }
    return true;
  };
  try {
    Json json = Json::parse(text.begin(), text.end(), callback);
    if (!duplicate.empty())
      return invalid(fmt::format("duplicate field {}", quotedName(duplicate)));
    return json;
  } catch (const Json::parse_error& error) {
    // "[json.exception.parse_error.101] parse error at line 1, ..." -> "parse error at line 1, ..."
    std::string_view what = error.what();
    if (auto pos = what.find("] "); pos != std::string_view::npos) what.remove_prefix(pos + 2);
    // The library quotes the token it choked on, which may be a whole 64 KiB string.
    constexpr size_t kMaxDetail = 200;
    std::string detail(what.substr(0, kMaxDetail));
    if (what.size() > kMaxDetail) detail += "...";
    return invalid(fmt::format("invalid JSON: {}", detail));
  } catch (const std::exception& error) {
    return invalid(fmt::format("invalid JSON: {}", error.what()));
  }
}

tier::Result<Request> parseArguments(std::string_view name, const Json& object) {
  if (name == "status") return StatusRequest{};
  if (name == "config-show") return ConfigShowRequest{};
  if (name == "config-reload") return ConfigReloadRequest{};
  if (name == "ps") {
    PsRequest ps;
    if (object.contains("pid")) {
      auto pid = pidField(object);
      if (!pid) return std::unexpected(pid.error());
      ps.pid = *pid;
    }
    return ps;
  }
  auto pid = pidField(object);
  if (!pid) return std::unexpected(pid.error());
  if (name == "register") {
    auto registration = registerArguments(*pid, object);
    if (!registration) return std::unexpected(registration.error());
    return std::move(*registration);
  }
  if (name == "migrate") {
    MigrateRequest migrate;
    migrate.pid = *pid;
    if (object.contains("range")) {
      auto range = rangeField(object);
      if (!range) return std::unexpected(range.error());
      migrate.range = *range;
    }
    bool has_node = object.contains("to_node"), has_tier = object.contains("to_tier");
    if (has_node == has_tier)
      return invalid(
          fmt::format("migrate needs exactly one of fields \"to_node\" and \"to_tier\" ({})",
                      has_node ? "both given" : "neither given"));
    auto target = has_node ? nodeField(object.at("to_node"), "to_node")
                           : nodeField(object.at("to_tier"), "to_tier");
    if (!target) return std::unexpected(target.error());
    (has_node ? migrate.to_node : migrate.to_tier) = *target;
    return migrate;
  }
  auto range = rangeField(object);
  if (!range) return std::unexpected(range.error());
  if (name == "pin") {
    auto tier_field = object.find("tier");
    if (tier_field == object.end()) return invalid("missing field \"tier\"");
    auto tier_rank = nodeField(*tier_field, "tier");
    if (!tier_rank) return std::unexpected(tier_rank.error());
    return PinRequest{.pid = *pid, .range = *range, .tier = *tier_rank};
  }
  if (name == "hint") {
    auto hint = hintField(object);
    if (!hint) return std::unexpected(hint.error());
    return HintRequest{.pid = *pid, .range = *range, .hint = *hint};
  }
  return UnpinRequest{.pid = *pid, .range = *range};
}

tier::Result<Request> parseRequestUnchecked(std::string_view line) {
  if (line.size() > kMaxRequestBytes + 1 ||
      (line.size() == kMaxRequestBytes + 1 && line.back() != '\n'))
    return tier::fail(EMSGSIZE, fmt::format("request longer than {} bytes", kMaxRequestBytes));
  auto json = parseJson(line);
  if (!json) return std::unexpected(json.error());
  if (!json->is_object())
    return invalid(fmt::format("request must be a JSON object, not {}", describe(*json)));

  auto version = json->find("version");
  if (version == json->end()) return invalid("missing field \"version\" (this agent speaks 1)");
  if (!version->is_number_integer())  // true for unsigned numbers too
    return invalid(fmt::format("field \"version\" must be an integer, not {}", describe(*version)));
  if (*version != kProtocolVersion)
    return invalid(
        fmt::format("unsupported protocol version {} in field \"version\" (this agent "
                    "speaks {})",
                    version->dump(), kProtocolVersion));

  auto name_field = json->find("request");
  if (name_field == json->end()) return invalid("missing field \"request\"");
  if (!name_field->is_string())
    return invalid(
        fmt::format("field \"request\" must be a string, not {}", describe(*name_field)));
  const std::string& name = name_field->get_ref<const std::string&>();
  const RequestKind* kind = nullptr;
  for (const auto& candidate : requestKinds())
    if (candidate.name == name) kind = &candidate;
  if (kind == nullptr)
    return invalid(fmt::format("unknown request {} in field \"request\" (expected one of {})",
                               quotedName(name), knownRequestList()));

  for (const auto& [key, value] : json->items()) {
    if (key == "version" || key == "request") continue;
    bool known = false;
    for (auto field : kind->fields)
      known = known || field == key;
    if (!known)
      return invalid(fmt::format("unknown field {} in a \"{}\" request{}", quotedName(key),
                                 kind->name,
                                 kind->fields.empty() ? " (it takes no arguments)" : ""));
  }
  return parseArguments(kind->name, *json);
}

Json rangeToJson(const AddressRange& range) {
  return Json{{"start", range.start}, {"end", range.end}};
}

}  // namespace

std::string_view hintName(Hint hint) { return hint == Hint::kHot ? "hot" : "cold"; }

Json registeredTiersToJson(const std::vector<RegisteredTier>& tiers) {
  Json out = Json::array();
  for (const auto& tier : tiers)
    out.push_back(
        Json{{"rank", tier.rank}, {"nodes", tier.nodes}, {"reserved_bytes", tier.reserved_bytes}});
  return out;
}

std::string_view requestName(const Request& request) {
  return requestKinds()[request.index()].name;
}

tier::Result<Request> parseRequest(std::string_view line) {
  try {
    return parseRequestUnchecked(line);
  } catch (const std::exception& error) {  // e.g. bad_alloc: still an answer, not a crash
    return tier::fail(EINVAL, fmt::format("cannot parse request: {}", error.what()));
  }
}

Json requestToJson(const Request& request) {
  Json json{{"version", kProtocolVersion}, {"request", std::string(requestName(request))}};
  std::visit(
      [&json](const auto& r) {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, PsRequest>) {
          if (r.pid) json["pid"] = *r.pid;
        } else if constexpr (std::is_same_v<T, MigrateRequest>) {
          json["pid"] = r.pid;
          if (r.range) json["range"] = rangeToJson(*r.range);
          if (r.to_node) json["to_node"] = *r.to_node;
          if (r.to_tier) json["to_tier"] = *r.to_tier;
        } else if constexpr (std::is_same_v<T, PinRequest>) {
          json["pid"] = r.pid;
          json["range"] = rangeToJson(r.range);
          json["tier"] = r.tier;
        } else if constexpr (std::is_same_v<T, UnpinRequest>) {
          json["pid"] = r.pid;
          json["range"] = rangeToJson(r.range);
        } else if constexpr (std::is_same_v<T, RegisterRequest>) {
          json["pid"] = r.pid;
          json["program"] = r.program;
          json["library"] = r.library;
          json["policy"] = r.policy;
          json["tiers"] = registeredTiersToJson(r.tiers);
        } else if constexpr (std::is_same_v<T, HintRequest>) {
          json["pid"] = r.pid;
          json["range"] = rangeToJson(r.range);
          json["hint"] = hintName(r.hint);
        }
      },
      request);
  return json;
}

std::string errnoName(int errnum) {
  const char* name = errnum > 0 ? ::strerrorname_np(errnum) : nullptr;
  return name != nullptr ? name : "EINVAL";
}

std::string formatReply(const tier::Result<Json>& reply) {
  Json json;
  if (reply) {
    json = Json{{"ok", true}, {"result", *reply}};
  } else {
    int errnum = reply.error().errnum;
    if (errnum <= 0 || ::strerrorname_np(errnum) == nullptr) errnum = EINVAL;
    json = Json{
        {"ok", false},
        {"error",
         {{"code", errnoName(errnum)}, {"errno", errnum}, {"message", reply.error().context}}}};
  }
  return json.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

tier::Result<Json> parseReply(std::string_view line) {
  auto malformed = [](std::string_view what) {
    return tier::fail(EPROTO, fmt::format("malformed reply from tierd: {}", what));
  };
  Json json = Json::parse(line.begin(), line.end(), nullptr, false);
  if (json.is_discarded()) return malformed("not JSON");
  if (!json.is_object()) return malformed("not a JSON object");
  auto ok = json.find("ok");
  if (ok == json.end() || !ok->is_boolean()) return malformed("no boolean \"ok\"");
  if (ok->get<bool>()) {
    auto result = json.find("result");
    if (result == json.end()) return malformed("no \"result\"");
    return std::move(*result);
  }
  auto error = json.find("error");
  if (error == json.end() || !error->is_object()) return malformed("no \"error\" object");
  auto errnum = error->find("errno");
  auto message = error->find("message");
  if (errnum == error->end() || !errnum->is_number_integer() || message == error->end() ||
      !message->is_string())
    return malformed("\"error\" lacks \"errno\" or \"message\"");
  int64_t value = errnum->get<int64_t>();
  if (value <= 0 || value > 4095) value = EPROTO;
  return tier::fail(static_cast<int>(value), message->get<std::string>());
}

}  // namespace tierd::control
