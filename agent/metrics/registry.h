// The agent's metrics: a thread-safe registry of counter and gauge families
// rendered in the Prometheus text exposition format 0.0.4.
//
// A family is declared once with describe() (name, type, help) and then
// carries any number of series, one per label set. Updates to families that
// were never described, with invalid label names or with values a counter
// cannot take are dropped, never fatal: each one is counted in
// tierd_metrics_errors_total{reason=...} so a bug shows up on the dashboard
// instead of crashing the agent.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace tierd::metrics {

enum class Type { Counter, Gauge };

// Label name/value pairs. Order does not matter: the registry keys and
// renders series with their labels sorted by name.
using Labels = std::vector<std::pair<std::string, std::string>>;

// The registry's own family, counting dropped updates by reason:
// "undescribed" (no such family), "bad_label" (invalid or duplicate label
// name), "bad_value" (NaN or infinite delta, negative counter delta or value).
inline constexpr std::string_view kErrorsFamily = "tierd_metrics_errors_total";

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool validMetricName(std::string_view name);
// [a-zA-Z_][a-zA-Z0-9_]*, and not starting with "__" (reserved by Prometheus).
bool validLabelName(std::string_view name);

// A sample value as the exposition format writes it: integral values without
// exponent or ".0" (up to 2^64, so kernel counters read as integers), others
// in the shortest form that reads back exactly, "NaN", "+Inf", "-Inf".
std::string formatValue(double value);

class Registry {
 public:
  Registry();

  // Declares a family. Fails with EINVAL for an invalid name, or when the
  // name is already described with the other type. Describing it again with
  // the same type only replaces the help text.
  tier::Result<void> describe(std::string name, Type type, std::string help);

  // Adds `delta` to a series (created at 0). Counters take only finite,
  // non-negative deltas; gauges any finite delta.
  void add(std::string_view name, const Labels& labels, double delta);
  // Sets a series: gauges, and counters mirrored from kernel totals (a
  // counter's value must not be negative or NaN).
  void set(std::string_view name, const Labels& labels, double value);
  // Drops every series of a family (it stays described), e.g. before
  // re-publishing per-process gauges so that vanished processes disappear.
  void clearFamily(std::string_view name);
  // Replaces every series of a family in one step, so that a scrape never
  // sees it half published (as it can between clearFamily() and the set()
  // calls that follow). Samples with bad labels or values are dropped and
  // counted; a repeated label set keeps the last value.
  void replaceFamily(std::string_view name, std::vector<std::pair<Labels, double>> samples);

  // The whole registry in text format 0.0.4: families sorted by name, each
  // with its # HELP and # TYPE lines, series sorted by labels. Families
  // without series are left out.
  std::string renderText() const;

 private:
  using Series = std::map<Labels, double>;
  struct Family {
    Type type = Type::Gauge;
    std::string help;
    Series series;
  };
  enum class Op { Add, Set };

  void update(std::string_view name, const Labels& labels, double value, Op op);
  void countErrorLocked(std::string_view reason);

  mutable std::mutex mutex_;
  std::map<std::string, Family, std::less<>> families_;
};

}  // namespace tierd::metrics
