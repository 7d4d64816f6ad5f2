// JsonSchema: compiling the draft-04 subset declared in gateway/validation.h
// into nodes (checking is in json_schema_validate.cpp, request validation
// itself in validation.cpp).

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <map>
#include <regex>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "gateway/detail/json_schema.h"

namespace nimbus::gateway {

using base::ErrorCode;
using base::make_error;
using nlohmann::json;

namespace {

using detail::compare_numbers;
using detail::escape_token;
using detail::is_integral;
using detail::kNoNode;
using detail::Pattern;
using detail::too_deep;
using Node = JsonSchema::Node;

constexpr std::array<std::pair<std::string_view, unsigned>, 7> kTypeNames = {{
    {"null", detail::kNullBit},
    {"boolean", detail::kBooleanBit},
    {"object", detail::kObjectBit},
    {"array", detail::kArrayBit},
    {"number", detail::kNumberBit},
    {"integer", detail::kIntegerBit},
    {"string", detail::kStringBit},
}};

// Keywords that only annotate: accepted anywhere, never checked.
constexpr std::array<std::string_view, 11> kAnnotations = {
    "title", "description", "$schema", "id", "$id", "default", "format", "examples", "example", "$comment",
    "readOnly"};

// A local "$ref" ("#", "#/definitions/a", URI-escaped or not) as the tokens
// of its JSON pointer; nullopt when the reference is not local or malformed.
std::optional<std::vector<std::string>> ref_tokens(std::string_view ref) {
  if (ref.empty() || ref.front() != '#') return std::nullopt;
  std::string decoded;
  if (!http::percent_decode(ref.substr(1), decoded)) return std::nullopt;
  std::vector<std::string> tokens;
  if (decoded.empty()) return tokens;
  if (decoded.front() != '/') return std::nullopt;
  std::string_view rest(decoded);
  while (!rest.empty()) {
    rest.remove_prefix(1);
    const auto slash = rest.find('/');
    const std::string_view raw = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
    std::string token;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '~') {
        token += raw[i];
      } else if (i + 1 < raw.size() && (raw[i + 1] == '0' || raw[i + 1] == '1')) {
        token += raw[++i] == '0' ? '~' : '/';
      } else {
        return std::nullopt;
      }
    }
    tokens.push_back(std::move(token));
  }
  return tokens;
}

const json* resolve(const json& document, const std::vector<std::string>& tokens) {
  const json* at = &document;
  for (const auto& token : tokens) {
    if (at->is_object()) {
      const auto it = at->find(token);
      if (it == at->end()) return nullptr;
      at = &*it;
    } else if (at->is_array()) {
      if (token.empty() || token.size() > 9 || (token.size() > 1 && token[0] == '0') ||
          !std::all_of(token.begin(), token.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return nullptr;
      }
      const std::size_t index = std::stoul(token);
      if (index >= at->size()) return nullptr;
      at = &(*at)[index];
    } else {
      return nullptr;
    }
  }
  return at;
}

// Turns a schema document into nodes: first the tree itself (recursion bounded
// by the document's depth, checked before), then the "$ref"s, resolved in a
// loop so that chains of references never deepen the stack.
class SchemaCompiler {
 public:
  struct PendingRef {
    int node;             // the node holding the "$ref"
    std::string pointer;  // its place in the document
    std::string text;     // the reference as written
  };

  explicit SchemaCompiler(const json& document) : document_(document) {}

  base::Result<std::vector<Node>> run() {
    if (auto deep = too_deep(document_, JsonSchema::kMaxSchemaDepth)) {
      return fail(*deep, fmt::format("is nested deeper than {} levels", JsonSchema::kMaxSchemaDepth));
    }
    NIMBUS_TRY(compile(document_, ""));
    for (std::size_t i = 0; i < refs_.size(); ++i) {
      const PendingRef ref = refs_[i];  // a copy: resolving may add more
      NIMBUS_TRY(resolve_ref(ref));
    }
    NIMBUS_TRY(check_cycles());
    return std::move(nodes_);
  }

 private:
  static base::Error fail(const std::string& pointer, std::string_view what) {
    return make_error(ErrorCode::kValidation,
                      pointer.empty() ? fmt::format("BodySchema {}", what) : fmt::format("BodySchema {} {}", pointer, what));
  }

  base::Result<int> compile(const json& schema, const std::string& pointer) {
    if (const auto it = by_pointer_.find(pointer); it != by_pointer_.end()) return it->second;
    const int index = static_cast<int>(nodes_.size());
    nodes_.emplace_back();
    by_pointer_.emplace(pointer, index);
    Node node;
    node.pointer = pointer;
    if (schema.is_boolean()) {
      node.kind = schema.get<bool>() ? Node::Kind::kAlwaysValid : Node::Kind::kNeverValid;
    } else if (!schema.is_object()) {
      return fail(pointer, "must be a schema (a JSON object or a boolean)");
    } else {
      if (const auto defs = schema.find("definitions"); defs != schema.end()) {
        if (!defs->is_object()) return fail(pointer + "/definitions", "must be an object of schemas");
        for (const auto& [name, sub] : defs->items()) {
          NIMBUS_TRY(compile(sub, pointer + "/definitions/" + escape_token(name)));
        }
      }
      if (const auto ref = schema.find("$ref"); ref != schema.end()) {
        if (!ref->is_string()) return fail(pointer + "/$ref", "must be a string");
        refs_.push_back({index, pointer, ref->get<std::string>()});
      } else {
        for (const auto& [keyword, value] : schema.items()) {
          NIMBUS_TRY(keyword_into(node, keyword, value, pointer + "/" + escape_token(keyword)));
        }
        if (node.minimum_exclusive && !node.minimum) return fail(pointer + "/exclusiveMinimum", "true needs a minimum");
        if (node.maximum_exclusive && !node.maximum) return fail(pointer + "/exclusiveMaximum", "true needs a maximum");
      }
    }
    nodes_[static_cast<std::size_t>(index)] = std::move(node);
    return index;
  }

  base::Result<std::size_t> count(const json& value, const std::string& at) {
    if (!is_integral(value) || compare_numbers(value, json(0)) < 0) return fail(at, "must be a non-negative integer");
    if (compare_numbers(value, json(std::uint64_t{1} << 53)) > 0) return std::size_t{1} << 53;
    return static_cast<std::size_t>(value.get<double>());
  }

  static base::Result<Pattern> pattern(const json& value, const std::string& at) {
    if (!value.is_string()) return fail(at, "must be a string (a regular expression)");
    const auto& source = value.get_ref<const std::string&>();
    try {
      return Pattern{source, std::regex(source, std::regex::ECMAScript)};
    } catch (const std::regex_error& e) {
      return fail(at, fmt::format("is not a valid regular expression: {}", e.what()));
    }
  }

  base::Result<std::vector<int>> schema_list(const json& value, const std::string& at) {
    if (!value.is_array() || value.empty()) return fail(at, "must be a non-empty array of schemas");
    std::vector<int> out;
    for (std::size_t i = 0; i < value.size(); ++i) {
      auto sub = compile(value[i], fmt::format("{}/{}", at, i));
      if (!sub.ok()) return std::move(sub).error();
      out.push_back(*sub);
    }
    return out;
  }

  base::Result<std::vector<std::string>> name_list(const json& value, const std::string& at) {
    if (!value.is_array()) return fail(at, "must be an array of property names");
    std::vector<std::string> out;
    for (const auto& name : value) {
      if (!name.is_string()) return fail(at, "must be an array of property names");
      if (std::find(out.begin(), out.end(), name.get_ref<const std::string&>()) != out.end()) {
        return fail(at, fmt::format("lists '{}' twice", name.get_ref<const std::string&>()));
      }
      out.push_back(name.get<std::string>());
    }
    return out;
  }

  // Assigns a compiled value to `slot`, or returns the error.
  template <typename T>
  static base::Status assign(T& slot, base::Result<T> value) {
    if (!value.ok()) return std::move(value).error();
    slot = std::move(*value);
    return base::Ok{};
  }

  base::Status number(std::optional<json>& slot, const json& value, const std::string& at) {
    if (!value.is_number()) return fail(at, "must be a number");
    slot = value;
    return base::Ok{};
  }

  base::Status type_into(Node& node, const json& value, const std::string& at) {
    std::vector<std::string_view> names;
    const json list = value.is_array() ? value : json::array({value});
    if (list.empty()) return fail(at, "must name at least one type");
    for (const auto& item : list) {
      if (!item.is_string()) return fail(at, "must be a type name or an array of type names");
      const auto& text = item.get_ref<const std::string&>();
      const auto known = std::find_if(kTypeNames.begin(), kTypeNames.end(), [&](const auto& t) { return t.first == text; });
      if (known == kTypeNames.end()) {
        return fail(at, fmt::format("has an unknown type '{}' (expected string, number, integer, boolean, object, "
                                    "array or null)",
                                    text));
      }
      if ((node.types & known->second) != 0) return fail(at, fmt::format("lists '{}' twice", text));
      node.types |= known->second;
      names.push_back(known->first);
    }
    node.expected_types = std::string(names.front());
    for (std::size_t i = 1; i < names.size(); ++i) {
      node.expected_types += fmt::format("{}{}", i + 1 == names.size() ? " or " : ", ", names[i]);
    }
    return base::Ok{};
  }

  base::Status exclusive_into(bool& flag, std::optional<json>& bound, const json& value, const std::string& at) {
    if (value.is_boolean()) {
      flag = value.get<bool>();
      return base::Ok{};
    }
    if (!value.is_number()) return fail(at, "must be a boolean (draft-04) or a number (draft-06)");
    bound = value;
    return base::Ok{};
  }

  base::Status properties_into(Node& node, const json& value, const std::string& at) {
    if (!value.is_object()) return fail(at, "must be an object of schemas");
    for (const auto& [name, sub] : value.items()) {
      auto index = compile(sub, at + "/" + escape_token(name));
      if (!index.ok()) return std::move(index).error();
      node.properties.emplace_back(name, *index);
    }
    return base::Ok{};
  }

  base::Status pattern_properties_into(Node& node, const json& value, const std::string& at) {
    if (!value.is_object()) return fail(at, "must be an object of schemas keyed by regular expressions");
    for (const auto& [source, sub] : value.items()) {
      const std::string sub_at = at + "/" + escape_token(source);
      auto compiled = pattern(json(source), sub_at);
      if (!compiled.ok()) return std::move(compiled).error();
      auto index = compile(sub, sub_at);
      if (!index.ok()) return std::move(index).error();
      node.pattern_properties.emplace_back(std::move(*compiled), *index);
    }
    return base::Ok{};
  }

  base::Status dependencies_into(Node& node, const json& value, const std::string& at) {
    if (!value.is_object()) return fail(at, "must be an object");
    for (const auto& [name, dependency] : value.items()) {
      const std::string sub_at = at + "/" + escape_token(name);
      if (dependency.is_array()) {
        auto names = name_list(dependency, sub_at);
        if (!names.ok()) return std::move(names).error();
        node.property_dependencies.emplace_back(name, std::move(*names));
      } else {
        auto index = compile(dependency, sub_at);
        if (!index.ok()) return std::move(index).error();
        node.schema_dependencies.emplace_back(name, *index);
      }
    }
    return base::Ok{};
  }

  base::Status keyword_into(Node& node, const std::string& keyword, const json& value, const std::string& at) {
    if (keyword == "type") return type_into(node, value, at);
    if (keyword == "enum") {
      if (!value.is_array() || value.empty()) return fail(at, "must be a non-empty array");
      node.enum_values = value.get<std::vector<json>>();
      return base::Ok{};
    }
    if (keyword == "const") {
      node.const_value = value;
      return base::Ok{};
    }
    if (keyword == "minimum") return number(node.minimum, value, at);
    if (keyword == "maximum") return number(node.maximum, value, at);
    if (keyword == "exclusiveMinimum") return exclusive_into(node.minimum_exclusive, node.exclusive_minimum, value, at);
    if (keyword == "exclusiveMaximum") return exclusive_into(node.maximum_exclusive, node.exclusive_maximum, value, at);
    if (keyword == "multipleOf") {
      if (!value.is_number() || compare_numbers(value, json(0)) <= 0) return fail(at, "must be a number greater than 0");
      node.multiple_of = value;
      return base::Ok{};
    }
    if (keyword == "minLength") return assign(node.min_length, as_optional(count(value, at)));
    if (keyword == "maxLength") return assign(node.max_length, as_optional(count(value, at)));
    if (keyword == "minItems") return assign(node.min_items, as_optional(count(value, at)));
    if (keyword == "maxItems") return assign(node.max_items, as_optional(count(value, at)));
    if (keyword == "minProperties") return assign(node.min_properties, as_optional(count(value, at)));
    if (keyword == "maxProperties") return assign(node.max_properties, as_optional(count(value, at)));
    if (keyword == "pattern") {
      auto compiled = pattern(value, at);
      if (!compiled.ok()) return std::move(compiled).error();
      node.pattern = std::move(*compiled);
      return base::Ok{};
    }
    if (keyword == "uniqueItems") {
      if (!value.is_boolean()) return fail(at, "must be a boolean");
      node.unique_items = value.get<bool>();
      return base::Ok{};
    }
    if (keyword == "items") {
      if (value.is_array()) return assign(node.tuple_items, schema_list(value, at));
      return assign(node.items, compile(value, at));
    }
    if (keyword == "additionalItems") return assign(node.additional_items, compile(value, at));
    if (keyword == "properties") return properties_into(node, value, at);
    if (keyword == "patternProperties") return pattern_properties_into(node, value, at);
    if (keyword == "additionalProperties") return assign(node.additional_properties, compile(value, at));
    if (keyword == "dependencies") return dependencies_into(node, value, at);
    if (keyword == "required") return assign(node.required, name_list(value, at));
    if (keyword == "allOf") return assign(node.all_of, schema_list(value, at));
    if (keyword == "anyOf") return assign(node.any_of, schema_list(value, at));
    if (keyword == "oneOf") return assign(node.one_of, schema_list(value, at));
    if (keyword == "not") return assign(node.not_schema, compile(value, at));
    if (keyword == "definitions" || keyword.starts_with("x-") ||
        std::find(kAnnotations.begin(), kAnnotations.end(), keyword) != kAnnotations.end()) {
      return base::Ok{};
    }
    return fail(at, "is not a supported keyword");
  }

  static base::Result<std::optional<std::size_t>> as_optional(base::Result<std::size_t> value) {
    if (!value.ok()) return std::move(value).error();
    return std::optional<std::size_t>(*value);
  }

  base::Status resolve_ref(const PendingRef& ref) {
    const std::string at = ref.pointer + "/$ref";
    const std::string& text = ref.text;
    const auto tokens = ref_tokens(text);
    if (!tokens) return fail(at, fmt::format("'{}' is not a local reference (\"#\" or \"#/...\")", text));
    const json* target = resolve(document_, *tokens);
    if (target == nullptr) return fail(at, fmt::format("'{}' does not resolve to anything in the schema", text));
    std::string target_pointer;
    for (const auto& token : *tokens) target_pointer += "/" + escape_token(token);
    auto compiled = compile(*target, target_pointer);
    if (!compiled.ok()) return std::move(compiled).error();
    nodes_[static_cast<std::size_t>(ref.node)].ref = *compiled;
    return base::Ok{};
  }

  // Refuses "$ref"/allOf/anyOf/oneOf/not/dependencies cycles that apply a
  // schema to the same value again without descending into it: they never end.
  base::Status check_cycles() const {
    enum class Mark : std::uint8_t { kNew, kOpen, kDone };
    std::vector<Mark> marks(nodes_.size(), Mark::kNew);
    for (std::size_t start = 0; start < nodes_.size(); ++start) {
      if (marks[start] != Mark::kNew) continue;
      std::vector<std::pair<std::size_t, std::size_t>> stack;  // node, next edge
      stack.emplace_back(start, 0);
      marks[start] = Mark::kOpen;
      while (!stack.empty()) {
        auto& [node, edge] = stack.back();
        const std::vector<int> next = same_value_children(nodes_[node]);
        if (edge == next.size()) {
          marks[node] = Mark::kDone;
          stack.pop_back();
          continue;
        }
        const auto child = static_cast<std::size_t>(next[edge++]);
        if (marks[child] == Mark::kOpen) {
          return fail(nodes_[child].pointer, "is part of a $ref cycle that never descends into the value");
        }
        if (marks[child] == Mark::kNew) {
          marks[child] = Mark::kOpen;
          stack.emplace_back(child, 0);
        }
      }
    }
    return base::Ok{};
  }

  static std::vector<int> same_value_children(const Node& node) {
    std::vector<int> out;
    if (node.ref != kNoNode) out.push_back(node.ref);
    for (const auto* list : {&node.all_of, &node.any_of, &node.one_of}) out.insert(out.end(), list->begin(), list->end());
    if (node.not_schema != kNoNode) out.push_back(node.not_schema);
    for (const auto& [name, index] : node.schema_dependencies) out.push_back(index);
    return out;
  }

  const json& document_;
  std::vector<Node> nodes_;
  std::map<std::string, int> by_pointer_;
  std::vector<PendingRef> refs_;
};

}  // namespace

JsonSchema::JsonSchema() = default;
JsonSchema::JsonSchema(const JsonSchema& other) = default;
JsonSchema::JsonSchema(JsonSchema&& other) noexcept = default;
JsonSchema& JsonSchema::operator=(const JsonSchema& other) = default;
JsonSchema& JsonSchema::operator=(JsonSchema&& other) noexcept = default;
JsonSchema::~JsonSchema() = default;

base::Result<JsonSchema> JsonSchema::compile(const json& schema) {
  auto nodes = SchemaCompiler(schema).run();
  if (!nodes.ok()) return std::move(nodes).error();
  JsonSchema compiled;
  compiled.document_ = schema;
  compiled.nodes_ = std::move(*nodes);
  return compiled;
}

const json& JsonSchema::document() const { return document_; }

}  // namespace nimbus::gateway
