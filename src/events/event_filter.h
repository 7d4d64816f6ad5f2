#pragma once
// EventFilter: an EventBridge-style event pattern, as event source mappings'
// FilterCriteria use them (Lambda "event filtering"). A pattern is a JSON
// object whose leaves are lists of conditions; an event matches when every
// field the pattern names matches one condition of its list:
//   "s", 5, true, null                    equal (numbers compared as numbers)
//   {"prefix": "s"} {"suffix": "s"}       (either may hold {"equals-ignore-case": "s"})
//   {"equals-ignore-case": "s"}
//   {"wildcard": "a*b"}
//   {"anything-but": v | [v...] | {"prefix"|"suffix": "s"}}
//   {"numeric": [">", 0, "<=", 5]}        up to two comparisons
//   {"exists": true | false}
// plus {"$or": [pattern, ...]} at any level. A field holding an array
// matches when one of its elements does. Pure, immutable after parse;
// callable from any thread.

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace nimbus::events {

inline constexpr std::size_t kMaxFilterPatternBytes = 4096;

class EventFilter {
 public:
  // kInvalidParameterValue naming what is wrong with the pattern.
  [[nodiscard]] static base::Result<EventFilter> parse(std::string_view pattern);
  [[nodiscard]] bool matches(const nlohmann::json& event) const;
  [[nodiscard]] const std::string& text() const { return text_; }

 private:
  std::string text_;
  nlohmann::json pattern_;
};

// What an SQS record looks like to filters: the record, with a body that is
// a JSON object or array parsed, so patterns can name its fields
// ({"body": {"kind": ["order"]}}); any other body stays a string.
[[nodiscard]] nlohmann::json filterable_sqs_record(const nlohmann::json& record);

}  // namespace nimbus::events
