#include "metrics/registry.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace tierd::metrics {

namespace {

bool isAlpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

std::string_view typeName(Type type) {
  return type == Type::Counter ? "counter" : "gauge";
}

bool byName(const std::pair<std::string, std::string>& a,
            const std::pair<std::string, std::string>& b) {
  return a.first < b.first;
}

// `labels` sorted by name: itself when already sorted (the usual case, no
// copy), else a sorted copy kept in `storage`.
const Labels& sortedLabels(const Labels& labels, Labels& storage) {
  if (std::is_sorted(labels.begin(), labels.end(), byName)) return labels;
  storage = labels;
  std::sort(storage.begin(), storage.end(), byName);
  return storage;
}

// Valid names, none repeated (they are sorted, so repeats are neighbours).
bool validSortedLabels(const Labels& labels) {
  for (size_t i = 0; i < labels.size(); ++i) {
    if (!validLabelName(labels[i].first)) return false;
    if (i > 0 && labels[i - 1].first == labels[i].first) return false;
  }
  return true;
}

// Counters take finite non-negative deltas and values; gauges any finite
// delta and any value (NaN and infinities included).
bool validValue(Type type, double value, bool is_delta) {
  if (is_delta) return std::isfinite(value) && (type == Type::Gauge || value >= 0);
  return type == Type::Gauge || (std::isfinite(value) && value >= 0);
}

// Length of the well-formed UTF-8 sequence starting at text[i], or 0.
size_t utf8SequenceLength(std::string_view text, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  size_t length;
  unsigned char min2 = 0x80, max2 = 0xBF;  // bounds of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) min2 = 0xA0;  // overlong
    if (lead == 0xED) max2 = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) min2 = 0x90;  // overlong
    if (lead == 0xF4) max2 = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  if (byte(i + 1) < min2 || byte(i + 1) > max2) return 0;
  for (size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return length;
}

// Escapes for a HELP text (\\ and \n) or a label value (also \"). Bytes that
// are not well-formed UTF-8 (a process's comm can hold anything) become
// U+FFFD, because one bad byte would make Prometheus reject the whole scrape.
void appendEscaped(std::string& out, std::string_view text, bool label_value) {
  for (size_t i = 0; i < text.size();) {
    char c = text[i];
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && label_value) {
      out += "\\\"";
    } else {
      size_t length = utf8SequenceLength(text, i);
      if (length == 0) {
        out += "\xEF\xBF\xBD";
        ++i;
      } else {
        out.append(text, i, length);
        i += length;
      }
      continue;
    }
    ++i;
  }
}

}  // namespace

bool validMetricName(std::string_view name) {
  if (name.empty() || !(isAlpha(name[0]) || name[0] == ':')) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return isAlpha(c) || isDigit(c) || c == ':'; });
}

bool validLabelName(std::string_view name) {
  if (name.empty() || !isAlpha(name[0]) || name.starts_with("__")) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return isAlpha(c) || isDigit(c); });
}

std::string formatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == 0) return "0";  // also -0
  char buffer[64];
  if (std::trunc(value) == value && std::fabs(value) <= 0x1p64) {
    // Exact: every double in this range is an integer with at most 20 digits.
    int length = std::snprintf(buffer, sizeof buffer, "%.0f", value);
    return std::string(buffer, static_cast<size_t>(length));
  }
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, end);
}

Registry::Registry() {
  families_.emplace(
      std::string(kErrorsFamily),
      Family{Type::Counter,
             "Metric updates the agent dropped (undescribed family, bad label, bad value).",
             {}});
}

tier::Result<void> Registry::describe(std::string name, Type type, std::string help) {
  if (!validMetricName(name)) return tier::fail(EINVAL, "invalid metric name \"" + name + "\"");
  std::lock_guard lock(mutex_);
  auto [it, inserted] = families_.try_emplace(std::move(name));
  if (!inserted && it->second.type != type) {
    return tier::fail(EINVAL, "metric " + it->first + " is already described as a " +
                                  std::string(typeName(it->second.type)));
  }
  it->second.type = type;
  it->second.help = std::move(help);
  return {};
}

void Registry::add(std::string_view name, const Labels& labels, double delta) {
  update(name, labels, delta, Op::Add);
}

void Registry::set(std::string_view name, const Labels& labels, double value) {
  update(name, labels, value, Op::Set);
}

void Registry::update(std::string_view name, const Labels& labels, double value, Op op) {
  // Sort outside the lock; the common case (already sorted) copies nothing.
  Labels sorted;
  const Labels& key = sortedLabels(labels, sorted);

  std::lock_guard lock(mutex_);
  auto family = families_.find(name);
  if (family == families_.end()) return countErrorLocked("undescribed");
  if (!validValue(family->second.type, value, op == Op::Add)) return countErrorLocked("bad_value");

  Series& series = family->second.series;
  auto it = series.find(key);
  if (it == series.end()) {
    if (!validSortedLabels(key)) return countErrorLocked("bad_label");
    it = series.emplace(key, 0.0).first;
  }
  if (op == Op::Add) {
    it->second += value;
  } else {
    it->second = value;
  }
}

void Registry::replaceFamily(std::string_view name,
                             std::vector<std::pair<Labels, double>> samples) {
  Series fresh;
  for (auto& [labels, value] : samples) {
    if (!std::is_sorted(labels.begin(), labels.end(), byName)) {
      std::sort(labels.begin(), labels.end(), byName);
    }
    fresh.insert_or_assign(std::move(labels), value);
  }

  std::lock_guard lock(mutex_);
  auto family = families_.find(name);
  if (family == families_.end()) return countErrorLocked("undescribed");
  for (auto it = fresh.begin(); it != fresh.end();) {
    const char* reason = !validSortedLabels(it->first)                         ? "bad_label"
                         : !validValue(family->second.type, it->second, false) ? "bad_value"
                                                                               : nullptr;
    if (reason != nullptr) {
      countErrorLocked(reason);
      it = fresh.erase(it);
    } else {
      ++it;
    }
  }
  family->second.series = std::move(fresh);
}

void Registry::countErrorLocked(std::string_view reason) {
  auto family = families_.find(kErrorsFamily);
  if (family == families_.end()) return;
  family->second.series[Labels{{"reason", std::string(reason)}}] += 1;
}

void Registry::clearFamily(std::string_view name) {
  std::lock_guard lock(mutex_);
  auto family = families_.find(name);
  if (family != families_.end()) family->second.series.clear();
}

std::string Registry::renderText() const {
  std::string out;
  std::lock_guard lock(mutex_);
  for (const auto& [name, family] : families_) {
    if (family.series.empty()) continue;
    out += "# HELP ";
    out += name;
    if (!family.help.empty()) {
      out += ' ';
      appendEscaped(out, family.help, false);
    }
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += typeName(family.type);
    out += '\n';
    for (const auto& [labels, value] : family.series) {
      out += name;
      if (!labels.empty()) {
        out += '{';
        for (size_t i = 0; i < labels.size(); ++i) {
          if (i > 0) out += ',';
          out += labels[i].first;
          out += "=\"";
          appendEscaped(out, labels[i].second, true);
          out += '"';
        }
        out += '}';
      }
      out += ' ';
      out += formatValue(value);
      out += '\n';
    }
  }
  return out;
}

}  // namespace tierd::metrics
