// JsonSchema: compiling and checking the draft-04 subset declared in
// gateway/validation.h (request validation itself is in validation.cpp).

#include "gateway/validation.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <map>
#include <regex>
#include <string_view>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace nimbus::gateway {

using base::ErrorCode;
using base::make_error;
using nlohmann::json;

namespace {

constexpr int kNoNode = -1;
constexpr std::size_t kMaxMessage = 512;   // bytes of one validate() message
constexpr std::size_t kMaxRendered = 80;   // bytes of a value quoted in a message

enum TypeBit : unsigned {
  kNullBit = 1U << 0,
  kBooleanBit = 1U << 1,
  kObjectBit = 1U << 2,
  kArrayBit = 1U << 3,
  kNumberBit = 1U << 4,
  kIntegerBit = 1U << 5,
  kStringBit = 1U << 6,
};

constexpr std::array<std::pair<std::string_view, unsigned>, 7> kTypeNames = {{
    {"null", kNullBit},
    {"boolean", kBooleanBit},
    {"object", kObjectBit},
    {"array", kArrayBit},
    {"number", kNumberBit},
    {"integer", kIntegerBit},
    {"string", kStringBit},
}};

// Keywords that only annotate: accepted anywhere, never checked.
constexpr std::array<std::string_view, 11> kAnnotations = {
    "title", "description", "$schema", "id", "$id", "default", "format", "examples", "example", "$comment",
    "readOnly"};

struct Pattern {
  std::string source;
  std::regex regex;
};

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

bool is_integral(const json& value) {
  if (value.is_number_integer()) return true;
  if (!value.is_number_float()) return false;
  const double d = value.get<double>();
  return std::isfinite(d) && std::trunc(d) == d;
}

unsigned type_bits(const json& value) {
  switch (value.type()) {
    case json::value_t::null: return kNullBit;
    case json::value_t::boolean: return kBooleanBit;
    case json::value_t::object: return kObjectBit;
    case json::value_t::array: return kArrayBit;
    case json::value_t::string: return kStringBit;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return is_integral(value) ? kNumberBit | kIntegerBit : kNumberBit;
    default: return 0;
  }
}

// Numbers compared by value (3 == 3.0), exactly across int64, uint64 and double.
__extension__ typedef __int128 Wide;  // NOLINT(modernize-use-using): __extension__ needs typedef

Wide wide(const json& value) {
  return value.is_number_unsigned() ? static_cast<Wide>(value.get<std::uint64_t>())
                                    : static_cast<Wide>(value.get<std::int64_t>());
}

int sign(double d) { return d < 0 ? -1 : (d > 0 ? 1 : 0); }

// Compares an integer with a double exactly. NaN sorts after every number.
int compare_integer_double(Wide i, double d) {
  if (std::isnan(d)) return -1;
  if (d < -0x1p64) return 1;
  if (d >= 0x1p64) return -1;
  const double whole = std::trunc(d);
  const Wide w = static_cast<Wide>(whole);
  if (i != w) return i < w ? -1 : 1;
  return -sign(d - whole);
}

int compare_numbers(const json& a, const json& b) {
  if (!a.is_number_float() && !b.is_number_float()) {
    const Wide x = wide(a);
    const Wide y = wide(b);
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (!a.is_number_float()) return compare_integer_double(wide(a), b.get<double>());
  if (!b.is_number_float()) return -compare_integer_double(wide(b), a.get<double>());
  const double x = a.get<double>();
  const double y = b.get<double>();
  if (std::isnan(x) || std::isnan(y)) return std::isnan(x) == std::isnan(y) ? 0 : (std::isnan(x) ? 1 : -1);
  return x < y ? -1 : (x > y ? 1 : 0);
}

int type_rank(const json& value) {
  switch (value.type()) {
    case json::value_t::null: return 0;
    case json::value_t::boolean: return 1;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return 2;
    case json::value_t::string: return 3;
    case json::value_t::array: return 4;
    case json::value_t::object: return 5;
    default: return 6;
  }
}

// A total order on JSON values whose equality is JSON Schema's (numbers by
// value, objects regardless of member order). Recursion is bounded by the
// shallower operand, and callers bound instances to kMaxInstanceDepth.
int compare(const json& a, const json& b) {
  const int ra = type_rank(a);
  const int rb = type_rank(b);
  if (ra != rb) return ra < rb ? -1 : 1;
  switch (ra) {
    case 1: return a.get<bool>() == b.get<bool>() ? 0 : (a.get<bool>() ? 1 : -1);
    case 2: return compare_numbers(a, b);
    case 3: {
      const int c = a.get_ref<const std::string&>().compare(b.get_ref<const std::string&>());
      return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    case 4:
    case 5: {
      if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
      if (ra == 4) {
        for (std::size_t i = 0; i < a.size(); ++i) {
          if (const int c = compare(a[i], b[i]); c != 0) return c;
        }
        return 0;
      }
      for (auto x = a.begin(), y = b.begin(); x != a.end(); ++x, ++y) {
        if (const int c = x.key().compare(y.key()); c != 0) return c < 0 ? -1 : 1;
        if (const int c = compare(x.value(), y.value()); c != 0) return c;
      }
      return 0;
    }
    default: return 0;
  }
}

std::size_t code_points(const std::string& text) {
  return static_cast<std::size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::string escape_token(std::string_view token) {
  std::string out;
  for (const char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

// The JSON pointer of the first value nested deeper than `limit` containers,
// or nullopt. Recursion stops at limit + 1, whatever the value's real depth.
std::optional<std::string> too_deep(const json& value, std::size_t limit, std::size_t depth = 0) {
  if (!value.is_structured()) return std::nullopt;
  if (depth >= limit) return std::string();
  if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i) {
      if (auto inner = too_deep(value[i], limit, depth + 1)) return fmt::format("/{}{}", i, *inner);
    }
  } else {
    for (const auto& [key, item] : value.items()) {
      if (auto inner = too_deep(item, limit, depth + 1)) return "/" + escape_token(key) + *inner;
    }
  }
  return std::nullopt;
}

bool search(const Pattern& pattern, const std::string& text) {
  try {
    return std::regex_search(text, pattern.regex);
  } catch (const std::regex_error&) {
    return false;  // libstdc++ gave up (complexity): treat as no match
  }
}

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

}  // namespace

// One schema object (or boolean schema) of the document, with its keywords
// checked and its subschemas referred to by index into JsonSchema::nodes_.
struct JsonSchema::Node {
  enum class Kind : std::uint8_t { kSchema, kAlwaysValid, kNeverValid };
  Kind kind = Kind::kSchema;
  std::string pointer;  // where in the document ("" for the root)
  int ref = kNoNode;    // "$ref": everything else is ignored

  unsigned types = 0;   // 0: any type
  std::string expected_types;  // "string or null", for messages
  std::optional<std::vector<json>> enum_values;
  std::optional<json> const_value;

  std::optional<json> minimum;
  std::optional<json> maximum;
  bool minimum_exclusive = false;  // draft-04 boolean form
  bool maximum_exclusive = false;
  std::optional<json> exclusive_minimum;  // draft-06 number form
  std::optional<json> exclusive_maximum;
  std::optional<json> multiple_of;

  std::optional<std::size_t> min_length;
  std::optional<std::size_t> max_length;
  std::optional<Pattern> pattern;

  int items = kNoNode;            // one schema for every item
  std::vector<int> tuple_items;   // or one per position
  int additional_items = kNoNode;
  std::optional<std::size_t> min_items;
  std::optional<std::size_t> max_items;
  bool unique_items = false;

  std::vector<std::pair<std::string, int>> properties;  // sorted by name
  std::vector<std::string> required;
  std::vector<std::pair<Pattern, int>> pattern_properties;
  int additional_properties = kNoNode;
  std::vector<std::pair<std::string, std::vector<std::string>>> property_dependencies;
  std::vector<std::pair<std::string, int>> schema_dependencies;
  std::optional<std::size_t> min_properties;
  std::optional<std::size_t> max_properties;

  std::vector<int> all_of;
  std::vector<int> any_of;
  std::vector<int> one_of;
  int not_schema = kNoNode;
};

namespace {

using Node = JsonSchema::Node;

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

  static bool is_multiple(const json& value, const json& divisor) {
    if (!value.is_number_float() && !divisor.is_number_float()) return wide(value) % wide(divisor) == 0;
    const double quotient = value.get<double>() / divisor.get<double>();
    if (!std::isfinite(quotient)) return false;
    return std::fabs(quotient - std::round(quotient)) <= 1e-9 * std::max(1.0, std::fabs(quotient));
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

const json& JsonSchema::document() const { return document_; }

}  // namespace nimbus::gateway
