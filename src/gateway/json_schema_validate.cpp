// JsonSchema::validate(): walks an instance and the compiled nodes together
// (compiling is in json_schema.cpp).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <regex>
#include <string_view>
#include <utility>
#include <variant>

#include <fmt/format.h>

#include "gateway/detail/json_schema.h"

namespace nimbus::gateway {

using nlohmann::json;

namespace {

using detail::compare;
using detail::compare_numbers;
using detail::escape_token;
using detail::is_multiple;
using detail::kNoNode;
using detail::Pattern;
using detail::too_deep;
using detail::type_bits;
using Node = JsonSchema::Node;

constexpr std::size_t kMaxMessage = 512;   // bytes of one validate() message
constexpr std::size_t kMaxRendered = 80;   // bytes of a value quoted in a message

// Keeps a message to kMaxMessage bytes, cutting on a UTF-8 character boundary.
std::string clip(std::string text, std::size_t max) {
  if (text.size() <= max) return text;
  std::size_t cut = max - 3;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  text.resize(cut);
  text += "...";
  return text;
}

std::string render(const json& value) {
  return clip(value.dump(-1, ' ', false, json::error_handler_t::replace), kMaxRendered);
}

std::string type_name(const json& value) {
  switch (value.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "boolean";
    case json::value_t::object: return "object";
    case json::value_t::array: return "array";
    case json::value_t::string: return "string";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return "number";
    default: return "invalid value";
  }
}

std::size_t code_points(const std::string& text) {
  return static_cast<std::size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

bool search(const Pattern& pattern, const std::string& text) {
  try {
    return std::regex_search(text, pattern.regex);
  } catch (const std::regex_error&) {
    return false;  // libstdc++ gave up (complexity): treat as no match
  }
}

// Where a failing value is: object keys and array indexes from the root.
class InstancePath {
 public:
  class Step {
   public:
    Step(InstancePath& path, std::variant<std::string_view, std::size_t> segment) : path_(path) {
      path_.segments_.push_back(segment);
    }
    ~Step() { path_.segments_.pop_back(); }
    Step(const Step&) = delete;
    Step& operator=(const Step&) = delete;

   private:
    InstancePath& path_;
  };

  [[nodiscard]] std::string text() const {
    if (segments_.empty()) return "/";
    std::string out;
    for (const auto& segment : segments_) {
      if (const auto* key = std::get_if<std::string_view>(&segment)) {
        out += "/" + escape_token(*key);
      } else {
        out += fmt::format("/{}", std::get<std::size_t>(segment));
      }
    }
    return out;
  }

 private:
  std::vector<std::variant<std::string_view, std::size_t>> segments_;
};

// Collects messages, or (for anyOf/oneOf/not branches) only counts them.
struct Sink {
  std::vector<std::string>* messages = nullptr;
  std::size_t limit = 1;
  std::size_t count = 0;
  [[nodiscard]] bool full() const { return count >= limit; }
};

// One validate() call: walks the instance and the nodes together.
class Validator {
 public:
  explicit Validator(const std::vector<Node>& nodes) : nodes_(nodes) {}

  void check(int index, const json& value, Sink& sink, std::size_t depth) {
    if (stopped() || sink.full()) return;
    if (++steps_ > JsonSchema::kMaxSteps) {
      stop(fmt::format("{}: validation stopped after {} schema checks (the schema is too costly for this value)",
                       path_.text(), JsonSchema::kMaxSteps));
      return;
    }
    if (depth > JsonSchema::kMaxEvaluationDepth) {
      stop(fmt::format("{}: schemas nest deeper than {} levels here (a recursive $ref?)", path_.text(),
                       JsonSchema::kMaxEvaluationDepth));
      return;
    }
    const Node& node = nodes_[static_cast<std::size_t>(index)];
    if (node.kind == Node::Kind::kAlwaysValid) return;
    if (node.kind == Node::Kind::kNeverValid) {
      fail(sink, "no value is allowed here");
      return;
    }
    if (node.ref != kNoNode) {
      check(node.ref, value, sink, depth + 1);
      return;
    }
    if (node.types != 0 && (type_bits(value) & node.types) == 0) {
      fail(sink, "expected {}, found {}", node.expected_types, type_name(value));
    }
    if (node.enum_values && std::none_of(node.enum_values->begin(), node.enum_values->end(),
                                         [&](const json& allowed) { return compare(allowed, value) == 0; })) {
      fail(sink, "{} is not one of {}", render(value), render(json(*node.enum_values)));
    }
    if (node.const_value && compare(*node.const_value, value) != 0) {
      fail(sink, "{} is not the constant {}", render(value), render(*node.const_value));
    }
    if (value.is_number()) check_number(node, value, sink);
    if (value.is_string()) check_string(node, value.get_ref<const std::string&>(), sink);
    if (value.is_array()) check_array(node, value, sink, depth);
    if (value.is_object()) check_object(node, value, sink, depth);
    check_combinations(node, value, sink, depth);
  }

  [[nodiscard]] bool stopped() const { return stop_message_.has_value(); }
  [[nodiscard]] const std::string& stop_message() const { return *stop_message_; }

 private:
  template <typename... Args>
  void fail(Sink& sink, fmt::format_string<Args...> format, Args&&... args) {
    ++sink.count;
    if (sink.messages != nullptr) {
      sink.messages->push_back(
          clip(path_.text() + ": " + fmt::format(format, std::forward<Args>(args)...), kMaxMessage));
    }
  }

  void stop(std::string message) { stop_message_ = clip(std::move(message), kMaxMessage); }

  // Whether `value` passes `index`, without messages.
  bool passes(int index, const json& value, std::size_t depth) {
    Sink quiet;
    check(index, value, quiet, depth);
    return quiet.count == 0;
  }

  void check_number(const Node& node, const json& value, Sink& sink) {
    if (node.minimum) {
      const int c = compare_numbers(value, *node.minimum);
      if (c < 0 || (node.minimum_exclusive && c == 0)) {
        fail(sink, "{} is less than {}the minimum of {}", render(value), node.minimum_exclusive ? "or equal to " : "",
             render(*node.minimum));
      }
    }
    if (node.exclusive_minimum && compare_numbers(value, *node.exclusive_minimum) <= 0) {
      fail(sink, "{} is less than or equal to the exclusive minimum of {}", render(value), render(*node.exclusive_minimum));
    }
    if (node.maximum) {
      const int c = compare_numbers(value, *node.maximum);
      if (c > 0 || (node.maximum_exclusive && c == 0)) {
        fail(sink, "{} is greater than {}the maximum of {}", render(value), node.maximum_exclusive ? "or equal to " : "",
             render(*node.maximum));
      }
    }
    if (node.exclusive_maximum && compare_numbers(value, *node.exclusive_maximum) >= 0) {
      fail(sink, "{} is greater than or equal to the exclusive maximum of {}", render(value), render(*node.exclusive_maximum));
    }
    if (node.multiple_of && !is_multiple(value, *node.multiple_of)) {
      fail(sink, "{} is not a multiple of {}", render(value), render(*node.multiple_of));
    }
  }

  void check_string(const Node& node, const std::string& text, Sink& sink) {
    if (node.min_length || node.max_length) {
      const std::size_t length = code_points(text);
      if (node.min_length && length < *node.min_length) {
        fail(sink, "length {} is less than the minimum length of {}", length, *node.min_length);
      }
      if (node.max_length && length > *node.max_length) {
        fail(sink, "length {} is greater than the maximum length of {}", length, *node.max_length);
      }
    }
    if (node.pattern) {
      if (text.size() > JsonSchema::kMaxPatternInput) {
        fail(sink, "a string of {} bytes is too long to match against the pattern '{}' (limit {})", text.size(),
             node.pattern->source, JsonSchema::kMaxPatternInput);
      } else if (!search(*node.pattern, text)) {
        fail(sink, "does not match the pattern '{}'", node.pattern->source);
      }
    }
  }

  void check_array(const Node& node, const json& array, Sink& sink, std::size_t depth) {
    if (node.min_items && array.size() < *node.min_items) {
      fail(sink, "has {} items, fewer than the minimum of {}", array.size(), *node.min_items);
    }
    if (node.max_items && array.size() > *node.max_items) {
      fail(sink, "has {} items, more than the maximum of {}", array.size(), *node.max_items);
    }
    if (node.unique_items) check_unique(array, sink);
    const std::size_t tuple = node.tuple_items.size();
    const bool no_more = tuple > 0 && node.additional_items != kNoNode &&
                         nodes_[static_cast<std::size_t>(node.additional_items)].kind == Node::Kind::kNeverValid;
    if (no_more && array.size() > tuple) fail(sink, "has {} items, at most {} are allowed", array.size(), tuple);
    for (std::size_t i = 0; i < array.size() && !sink.full() && !stopped(); ++i) {
      int schema = node.items;
      if (tuple > 0) schema = i < tuple ? node.tuple_items[i] : (no_more ? kNoNode : node.additional_items);
      if (schema == kNoNode) continue;
      const InstancePath::Step step(path_, i);
      check(schema, array[i], sink, depth + 1);
    }
  }

  void check_unique(const json& array, Sink& sink) {
    std::vector<std::size_t> order(array.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      const int c = compare(array[a], array[b]);
      return c != 0 ? c < 0 : a < b;
    });
    std::optional<std::pair<std::size_t, std::size_t>> first;
    for (std::size_t i = 1; i < order.size(); ++i) {
      if (compare(array[order[i - 1]], array[order[i]]) != 0) continue;
      const auto pair = std::minmax(order[i - 1], order[i]);
      if (!first || pair.second < first->second) first = pair;
    }
    if (first) fail(sink, "items {} and {} are equal, but items must be unique", first->first, first->second);
  }

  [[nodiscard]] bool matches_pattern_properties(const Node& node, const std::string& key) const {
    return std::any_of(node.pattern_properties.begin(), node.pattern_properties.end(), [&](const auto& entry) {
      return key.size() <= JsonSchema::kMaxPatternInput && search(entry.first, key);
    });
  }

  void check_object(const Node& node, const json& object, Sink& sink, std::size_t depth) {
    for (const auto& name : node.required) {
      if (!object.contains(name)) fail(sink, "missing required property '{}'", name);
    }
    if (node.min_properties && object.size() < *node.min_properties) {
      fail(sink, "has {} properties, fewer than the minimum of {}", object.size(), *node.min_properties);
    }
    if (node.max_properties && object.size() > *node.max_properties) {
      fail(sink, "has {} properties, more than the maximum of {}", object.size(), *node.max_properties);
    }
    for (const auto& [name, needs] : node.property_dependencies) {
      if (!object.contains(name)) continue;
      for (const auto& other : needs) {
        if (!object.contains(other)) fail(sink, "property '{}' requires property '{}'", name, other);
      }
    }
    for (const auto& [name, index] : node.schema_dependencies) {
      if (object.contains(name)) check(index, object, sink, depth + 1);
    }
    for (const auto& [key, item] : object.items()) {
      if (sink.full() || stopped()) return;
      const InstancePath::Step step(path_, std::string_view(key));
      const auto declared = std::lower_bound(node.properties.begin(), node.properties.end(), key,
                                             [](const auto& entry, const std::string& k) { return entry.first < k; });
      bool covered = declared != node.properties.end() && declared->first == key;
      if (covered) check(declared->second, item, sink, depth + 1);
      for (const auto& [pattern, index] : node.pattern_properties) {
        if (key.size() > JsonSchema::kMaxPatternInput) {
          fail(sink, "a property name of {} bytes is too long to match against patternProperties (limit {})",
               key.size(), JsonSchema::kMaxPatternInput);
          break;
        }
        if (!search(pattern, key)) continue;
        covered = true;
        check(index, item, sink, depth + 1);
      }
      if (covered || node.additional_properties == kNoNode) continue;
      if (nodes_[static_cast<std::size_t>(node.additional_properties)].kind == Node::Kind::kNeverValid) {
        fail(sink, "property is not allowed (additionalProperties is false)");
      } else {
        check(node.additional_properties, item, sink, depth + 1);
      }
    }
  }

  void check_combinations(const Node& node, const json& value, Sink& sink, std::size_t depth) {
    for (const int index : node.all_of) check(index, value, sink, depth + 1);
    if (!node.any_of.empty() && !stopped() && !sink.full()) {
      const bool any = std::any_of(node.any_of.begin(), node.any_of.end(),
                                   [&](int index) { return passes(index, value, depth + 1) && !stopped(); });
      if (!any && !stopped()) fail(sink, "does not match any of the {} schemas in anyOf", node.any_of.size());
    }
    if (!node.one_of.empty() && !stopped() && !sink.full()) {
      std::vector<std::size_t> matched;
      for (std::size_t i = 0; i < node.one_of.size() && matched.size() < 2; ++i) {
        if (passes(node.one_of[i], value, depth + 1)) matched.push_back(i);
      }
      if (stopped()) return;
      if (matched.empty()) {
        fail(sink, "does not match any of the {} schemas in oneOf", node.one_of.size());
      } else if (matched.size() > 1) {
        fail(sink, "matches oneOf schemas {} and {}, but must match exactly one", matched[0], matched[1]);
      }
    }
    if (node.not_schema != kNoNode && !stopped() && !sink.full() && passes(node.not_schema, value, depth + 1) &&
        !stopped()) {
      fail(sink, "must not match the schema in 'not'");
    }
  }

  const std::vector<Node>& nodes_;
  InstancePath path_;
  std::size_t steps_ = 0;
  std::optional<std::string> stop_message_;
};

}  // namespace

std::vector<std::string> JsonSchema::validate(const json& instance, std::size_t max_errors) const {
  if (auto deep = too_deep(instance, kMaxInstanceDepth)) {
    return {clip(fmt::format("{}: nested deeper than {} levels", deep->empty() ? "/" : *deep, kMaxInstanceDepth),
                 kMaxMessage)};
  }
  std::vector<std::string> messages;
  Sink sink{&messages, std::max<std::size_t>(max_errors, 1)};
  Validator validator(nodes_);
  validator.check(0, instance, sink, 0);
  if (validator.stopped()) return {validator.stop_message()};
  return messages;
}


}  // namespace nimbus::gateway
