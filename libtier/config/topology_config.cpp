#include "config/topology_config.h"

#include <fmt/format.h>

#include <toml++/toml.h>
#include <algorithm>

#include "parse/parsers.h"

namespace tier {
namespace {

std::string where(std::string_view source, const toml::node& node) {
  return fmt::format("{}:{}", source, node.source().begin.line);
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
  TopologyOptions options;
  const toml::node* section = root.get("topology");
  if (!section) return options;
  const toml::table* topology = section->as_table();
  if (!topology) return fail(EINVAL, where(source, *section) + ": [topology] must be a table");
  for (const auto& [key, value] : *topology) {
    if (key == "same_tier_tolerance" || key == "same_tier_distance_tolerance") {
      auto fraction = value.value<double>();
      if (!fraction || !(*fraction >= 0 && *fraction <= 1))  // NaN fails both
        return fail(EINVAL, fmt::format("{}: topology.{} must be a number from 0 to 1",
                                        where(source, value), key.str()));
      (key == "same_tier_tolerance" ? options.same_tier_tolerance
                                    : options.same_tier_distance_tolerance) = *fraction;
    } else if (key == "tier_override") {
      const toml::table* overrides = value.as_table();
      if (!overrides)
        return fail(EINVAL, where(source, value) + ": topology.tier_override must be a table");
      for (const auto& [node_key, rank] : *overrides) {
        auto node = nodeIdFromKey(node_key.str());
        if (!node)
          return fail(EINVAL, fmt::format("{}: topology.tier_override: {}", where(source, rank),
                                          node.error().context));
        auto rank_value = rank.value_exact<int64_t>();  // no bools or floats
        if (!rank_value || *rank_value < 0 || *rank_value > 64)
          return fail(EINVAL, fmt::format("{}: topology.tier_override.{} must be a tier rank 0-64",
                                          where(source, rank), node_key.str()));
        if (!options.tier_override.emplace(*node, static_cast<int>(*rank_value)).second)
          return fail(EINVAL, fmt::format("{}: topology.tier_override names node {} twice",
                                          where(source, rank), *node));
      }
    } else {
      return fail(EINVAL,
                  fmt::format("{}: unknown key topology.{}", where(source, value), key.str()));
    }
  }
  return options;
}

}  // namespace tier
