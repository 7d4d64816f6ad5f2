#include "events/event_filter.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

namespace nimbus::events {

using base::ErrorCode;
using base::make_error;
using nlohmann::json;

namespace {

base::Error invalid(std::string_view why) {
  return make_error(ErrorCode::kInvalidParameterValue, fmt::format("Invalid filter pattern definition: {}", why));
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// '*' matches any run of characters; everything else is literal.
bool wildcard_match(std::string_view pattern, std::string_view text) {
  std::size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

// {"prefix": "s"} or {"prefix": {"equals-ignore-case": "s"}} (suffix alike).
base::Status check_affix(const json& value, std::string_view op) {
  if (value.is_string()) return base::Ok{};
  if (value.is_object() && value.size() == 1 && value.contains("equals-ignore-case") &&
      value["equals-ignore-case"].is_string()) {
    return base::Ok{};
  }
  return invalid(fmt::format("{} takes a string", op));
}

bool affix_matches(const json& value, const json& field, bool prefix) {
  if (!field.is_string()) return false;
  const auto& text = field.get_ref<const std::string&>();
  const bool ignore_case = value.is_object();
  const std::string& affix = ignore_case ? value["equals-ignore-case"].get_ref<const std::string&>()
                                         : value.get_ref<const std::string&>();
  if (affix.size() > text.size()) return false;
  const std::string_view part = prefix ? std::string_view(text).substr(0, affix.size())
                                       : std::string_view(text).substr(text.size() - affix.size());
  return ignore_case ? iequals(part, affix) : part == affix;
}

bool equal_values(const json& a, const json& b) {
  if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
  return a == b;
}

base::Status check_numeric(const json& spec) {
  if (!spec.is_array() || spec.empty() || spec.size() % 2 != 0 || spec.size() > 4) {
    return invalid("numeric takes one or two [operator, number] pairs");
  }
  for (std::size_t i = 0; i < spec.size(); i += 2) {
    static constexpr std::string_view kOps[] = {"<", "<=", "=", ">", ">="};
    if (!spec[i].is_string() || std::find(std::begin(kOps), std::end(kOps), spec[i].get<std::string>()) == std::end(kOps)) {
      return invalid(fmt::format("unknown numeric operator {}", spec[i].dump()));
    }
    if (!spec[i + 1].is_number()) return invalid("numeric compares with numbers");
  }
  return base::Ok{};
}

bool numeric_matches(const json& spec, const json& field) {
  if (!field.is_number()) return false;
  const double v = field.get<double>();
  for (std::size_t i = 0; i < spec.size(); i += 2) {
    const std::string& op = spec[i].get_ref<const std::string&>();
    const double n = spec[i + 1].get<double>();
    const bool ok = op == "<" ? v < n : op == "<=" ? v <= n : op == "=" ? v == n : op == ">" ? v > n : v >= n;
    if (!ok) return false;
  }
  return true;
}

base::Status check_condition(const json& c) {
  if (!c.is_object()) {
    if (c.is_array()) return invalid("a condition cannot be a list");
    return base::Ok{};  // a literal
  }
  if (c.size() != 1) return invalid("a condition object holds exactly one operator");
  const std::string& op = c.begin().key();
  const json& value = c.begin().value();
  if (op == "prefix" || op == "suffix") return check_affix(value, op);
  if (op == "equals-ignore-case" || op == "wildcard") {
    if (!value.is_string()) return invalid(fmt::format("{} takes a string", op));
    return base::Ok{};
  }
  if (op == "exists") {
    if (!value.is_boolean()) return invalid("exists takes true or false");
    return base::Ok{};
  }
  if (op == "numeric") return check_numeric(value);
  if (op == "anything-but") {
    if (value.is_object()) {
      if (value.size() == 1 && (value.contains("prefix") || value.contains("suffix"))) {
        return check_affix(value.begin().value(), value.begin().key());
      }
      return invalid("anything-but takes a value, a list of values, or a prefix or suffix");
    }
    if (value.is_array()) {
      for (const auto& v : value) {
        if (v.is_object() || v.is_array()) return invalid("anything-but lists hold plain values");
      }
    }
    return base::Ok{};
  }
  return invalid(fmt::format("unknown operator '{}'", op));
}

base::Status check_pattern(const json& pattern, int depth) {
  if (depth > 16) return invalid("nested too deeply");
  if (!pattern.is_object() || pattern.empty()) return invalid("a pattern is a non-empty JSON object");
  for (const auto& [key, value] : pattern.items()) {
    if (key == "$or") {
      if (!value.is_array() || value.size() < 2) return invalid("$or takes a list of at least two patterns");
      for (const auto& alternative : value) NIMBUS_TRY(check_pattern(alternative, depth + 1));
    } else if (value.is_object()) {
      NIMBUS_TRY(check_pattern(value, depth + 1));
    } else if (value.is_array()) {
      if (value.empty()) return invalid(fmt::format("the list for '{}' is empty", key));
      for (const auto& c : value) NIMBUS_TRY(check_condition(c));
    } else {
      return invalid(fmt::format("'{}' must map to a list of conditions or an object", key));
    }
  }
  return base::Ok{};
}

// One condition against one present value (not an array).
bool condition_matches(const json& c, const json& field) {
  if (!c.is_object()) return equal_values(c, field);
  const std::string& op = c.begin().key();
  const json& value = c.begin().value();
  if (op == "prefix") return affix_matches(value, field, true);
  if (op == "suffix") return affix_matches(value, field, false);
  if (op == "equals-ignore-case") return field.is_string() && iequals(field.get_ref<const std::string&>(), value.get_ref<const std::string&>());
  if (op == "wildcard") return field.is_string() && wildcard_match(value.get_ref<const std::string&>(), field.get_ref<const std::string&>());
  if (op == "numeric") return numeric_matches(value, field);
  if (op == "exists") return value.get<bool>();
  if (op == "anything-but") {
    if (value.is_object()) {
      const bool prefix = value.contains("prefix");
      return field.is_string() && !affix_matches(value.begin().value(), field, prefix);
    }
    if (value.is_array()) {
      return std::none_of(value.begin(), value.end(), [&](const json& v) { return equal_values(v, field); });
    }
    return !equal_values(value, field);
  }
  return false;
}

bool leaf_matches(const json& conditions, const json* field) {
  for (const auto& c : conditions) {
    if (c.is_object() && c.contains("exists")) {
      if (c["exists"].get<bool>() == (field != nullptr && !field->is_object())) return true;
      continue;
    }
    if (field == nullptr) continue;
    if (field->is_array()) {
      if (std::any_of(field->begin(), field->end(), [&](const json& e) { return condition_matches(c, e); })) return true;
    } else if (condition_matches(c, *field)) {
      return true;
    }
  }
  return false;
}

bool object_matches(const json& pattern, const json& event) {
  for (const auto& [key, value] : pattern.items()) {
    if (key == "$or") {
      if (std::none_of(value.begin(), value.end(), [&](const json& alt) { return object_matches(alt, event); })) {
        return false;
      }
      continue;
    }
    const json* field = nullptr;
    if (event.is_object()) {
      const auto it = event.find(key);
      if (it != event.end()) field = &*it;
    }
    if (value.is_object()) {
      if (field == nullptr || !field->is_object() || !object_matches(value, *field)) return false;
    } else if (!leaf_matches(value, field)) {
      return false;
    }
  }
  return true;
}

}  // namespace

base::Result<EventFilter> EventFilter::parse(std::string_view pattern) {
  if (pattern.size() > kMaxFilterPatternBytes) {
    return invalid(fmt::format("longer than {} characters", kMaxFilterPatternBytes));
  }
  json parsed = json::parse(pattern, nullptr, false);
  if (parsed.is_discarded()) return invalid("not JSON");
  NIMBUS_TRY(check_pattern(parsed, 0));
  EventFilter filter;
  filter.text_ = std::string(pattern);
  filter.pattern_ = std::move(parsed);
  return filter;
}

bool EventFilter::matches(const json& event) const { return object_matches(pattern_, event); }

json filterable_sqs_record(const json& record) {
  json out = record;
  const auto body = record.find("body");
  if (body != record.end() && body->is_string()) {
    json parsed = json::parse(body->get_ref<const std::string&>(), nullptr, false);
    if (parsed.is_object() || parsed.is_array()) out["body"] = std::move(parsed);
  }
  return out;
}

}  // namespace nimbus::events
