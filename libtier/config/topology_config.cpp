#include "config/topology_config.h"

#include <fmt/format.h>

#include <toml++/toml.h>
#include <algorithm>
#include <set>

#include "parse/parsers.h"

namespace tier {
namespace {

// "file:line" of a node; toml::parse records the source name in each node.
std::string where(const toml::node& node) {
  const auto& path = node.source().path;
  return fmt::format("{}:{}", path ? *path : std::string("config"), node.source().begin.line);
}

Result<int> nodeIdFromKey(std::string_view key) {
  std::string_view digits = key.starts_with("node") ? key.substr(4) : key;
  bool plain_digits = !digits.empty() && std::all_of(digits.begin(), digits.end(),
                                                     [](char c) { return c >= '0' && c <= '9'; });
  if (!plain_digits) return fail(EINVAL, fmt::format("'{}' is not a node id", key));
  auto id = parseI64(digits);
  if (!id || *id < 0 || *id > 4095) return fail(EINVAL, fmt::format("'{}' is not a node id", key));
  return static_cast<int>(*id);
}

}  // namespace

Result<TopologyOptions> parseTopologyConfig(std::string_view toml_text, std::string_view source) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source);
  } catch (const toml::parse_error& error) {
    return fail(EINVAL,
                fmt::format("{}:{}: {}", source, error.source().begin.line, error.description()));
  }
  return topologyFromTable(root);
}

Result<TopologyOptions> topologyFromTable(const toml::table& root) {
  TopologyOptions options;
  if (auto ok = applyTopologyTable(root, options); !ok) return std::unexpected(ok.error());
  return options;
}

Result<void> applyTopologyTable(const toml::table& root, TopologyOptions& options) {
  std::set<int> overridden_here;
  const toml::node* section = root.get("topology");
  if (!section) return {};
  const toml::table* topology = section->as_table();
  if (!topology) return fail(EINVAL, where(*section) + ": [topology] must be a table");
  for (const auto& [key, value] : *topology) {
    if (key == "same_tier_tolerance" || key == "same_tier_distance_tolerance") {
      auto fraction = value.value<double>();
      if (!fraction || !(*fraction >= 0 && *fraction <= 1))  // NaN fails both
        return fail(EINVAL, fmt::format("{}: topology.{} must be a number from 0 to 1",
                                        where(value), key.str()));
      (key == "same_tier_tolerance" ? options.same_tier_tolerance
                                    : options.same_tier_distance_tolerance) = *fraction;
    } else if (key == "tier_override") {
      const toml::table* overrides = value.as_table();
      if (!overrides)
        return fail(EINVAL, where(value) + ": topology.tier_override must be a table");
      for (const auto& [node_key, rank] : *overrides) {
        auto node = nodeIdFromKey(node_key.str());
        if (!node)
          return fail(EINVAL, fmt::format("{}: topology.tier_override: {}", where(rank),
                                          node.error().context));
        auto rank_value = rank.value_exact<int64_t>();  // no bools or floats
        if (!rank_value || *rank_value < 0 || *rank_value > 64)
          return fail(EINVAL, fmt::format("{}: topology.tier_override.{} must be a tier rank 0-64",
                                          where(rank), node_key.str()));
        options.tier_override[*node] = static_cast<int>(*rank_value);
        if (!overridden_here.insert(*node).second)
          return fail(EINVAL, fmt::format("{}: topology.tier_override names node {} twice",
                                          where(rank), *node));
      }
    } else {
      return fail(EINVAL, fmt::format("{}: unknown key topology.{}", where(value), key.str()));
    }
  }
  return {};
}

}  // namespace tier
