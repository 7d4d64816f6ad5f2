#pragma once
// Internal to the gateway part: what JsonSchema's compiler (json_schema.cpp)
// and its validator (json_schema_validate.cpp) share: the compiled node, the
// type bits, and JSON Schema's view of values (json_schema_values.cpp).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/validation.h"

namespace nimbus::gateway {
namespace detail {

inline constexpr int kNoNode = -1;

enum TypeBit : unsigned {
  kNullBit = 1U << 0,
  kBooleanBit = 1U << 1,
  kObjectBit = 1U << 2,
  kArrayBit = 1U << 3,
  kNumberBit = 1U << 4,
  kIntegerBit = 1U << 5,
  kStringBit = 1U << 6,
};

struct Pattern {
  std::string source;
  std::regex regex;
};

// Whether a number has no fractional part (3 and 3.0 are integers).
[[nodiscard]] bool is_integral(const nlohmann::json& value);
// The TypeBit of a value; an integral number is both a number and an integer.
[[nodiscard]] unsigned type_bits(const nlohmann::json& value);
// Numbers compared by value (3 == 3.0), exactly across int64, uint64 and
// double: -1, 0 or 1. NaN sorts after every number.
[[nodiscard]] int compare_numbers(const nlohmann::json& a, const nlohmann::json& b);
// A total order on JSON values whose equality is JSON Schema's (numbers by
// value, objects regardless of member order). Recursion is bounded by the
// shallower operand, and callers bound instances to kMaxInstanceDepth.
[[nodiscard]] int compare(const nlohmann::json& a, const nlohmann::json& b);
// Whether `value` is a multiple of `divisor` (> 0): exactly for integers,
// within a relative 1e-9 for doubles.
[[nodiscard]] bool is_multiple(const nlohmann::json& value, const nlohmann::json& divisor);
// A JSON pointer token: "~" as "~0", "/" as "~1".
[[nodiscard]] std::string escape_token(std::string_view token);
// The JSON pointer of the first value nested deeper than `limit` containers,
// or nullopt. Recursion stops at limit + 1, whatever the value's real depth.
[[nodiscard]] std::optional<std::string> too_deep(const nlohmann::json& value, std::size_t limit,
                                                  std::size_t depth = 0);

}  // namespace detail

// One schema object (or boolean schema) of the document, with its keywords
// checked and its subschemas referred to by index into JsonSchema::nodes_.
struct JsonSchema::Node {
  enum class Kind : std::uint8_t { kSchema, kAlwaysValid, kNeverValid };
  Kind kind = Kind::kSchema;
  std::string pointer;  // where in the document ("" for the root)
  int ref = detail::kNoNode;    // "$ref": everything else is ignored

  unsigned types = 0;   // 0: any type
  std::string expected_types;  // "string or null", for messages
  std::optional<std::vector<nlohmann::json>> enum_values;
  std::optional<nlohmann::json> const_value;

  std::optional<nlohmann::json> minimum;
  std::optional<nlohmann::json> maximum;
  bool minimum_exclusive = false;  // draft-04 boolean form
  bool maximum_exclusive = false;
  std::optional<nlohmann::json> exclusive_minimum;  // draft-06 number form
  std::optional<nlohmann::json> exclusive_maximum;
  std::optional<nlohmann::json> multiple_of;

  std::optional<std::size_t> min_length;
  std::optional<std::size_t> max_length;
  std::optional<detail::Pattern> pattern;

  int items = detail::kNoNode;            // one schema for every item
  std::vector<int> tuple_items;   // or one per position
  int additional_items = detail::kNoNode;
  std::optional<std::size_t> min_items;
  std::optional<std::size_t> max_items;
  bool unique_items = false;

  std::vector<std::pair<std::string, int>> properties;  // sorted by name
  std::vector<std::string> required;
  std::vector<std::pair<detail::Pattern, int>> pattern_properties;
  int additional_properties = detail::kNoNode;
  std::vector<std::pair<std::string, std::vector<std::string>>> property_dependencies;
  std::vector<std::pair<std::string, int>> schema_dependencies;
  std::optional<std::size_t> min_properties;
  std::optional<std::size_t> max_properties;

  std::vector<int> all_of;
  std::vector<int> any_of;
  std::vector<int> one_of;
  int not_schema = detail::kNoNode;
};

}  // namespace nimbus::gateway
