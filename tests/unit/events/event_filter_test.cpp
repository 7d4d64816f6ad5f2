// Event filter patterns (FilterCriteria of event source mappings): each
// operator, arrays, missing fields, $or, nesting, SQS bodies, and the
// refusals of malformed patterns.

#include <gtest/gtest.h>

#include "events/event_filter.h"

namespace nimbus::events {
namespace {

using nlohmann::json;

bool match(const char* pattern, const json& event) {
  auto f = EventFilter::parse(pattern);
  EXPECT_TRUE(f.ok()) << pattern << ": " << (f.ok() ? "" : f.error().message);
  return f.ok() && f->matches(event);
}

TEST(EventFilterTest, LiteralsAndArrays) {
  const json e = {{"kind", "order"}, {"n", 5}, {"ok", true}, {"none", nullptr}, {"tags", {"a", "b"}}};
  EXPECT_TRUE(match(R"({"kind": ["order"]})", e));
  EXPECT_TRUE(match(R"({"kind": ["refund", "order"]})", e));
  EXPECT_FALSE(match(R"({"kind": ["refund"]})", e));
  EXPECT_TRUE(match(R"({"n": [5.0]})", e));  // numbers compare as numbers
  EXPECT_FALSE(match(R"({"n": ["5"]})", e));
  EXPECT_TRUE(match(R"({"ok": [true], "none": [null]})", e));
  EXPECT_TRUE(match(R"({"tags": ["b"]})", e));  // one element is enough
  EXPECT_FALSE(match(R"({"missing": ["x"]})", e));
  EXPECT_FALSE(match(R"({"kind": ["order"], "n": [6]})", e));  // every field must match
}

TEST(EventFilterTest, Operators) {
  const json e = {{"name", "Invoice-2026"}, {"price", 12.5}, {"city", "Lyon"}};
  EXPECT_TRUE(match(R"({"name": [{"prefix": "Inv"}]})", e));
  EXPECT_FALSE(match(R"({"name": [{"prefix": "inv"}]})", e));
  EXPECT_TRUE(match(R"({"name": [{"prefix": {"equals-ignore-case": "inv"}}]})", e));
  EXPECT_TRUE(match(R"({"name": [{"suffix": "2026"}]})", e));
  EXPECT_TRUE(match(R"({"city": [{"equals-ignore-case": "LYON"}]})", e));
  EXPECT_TRUE(match(R"({"name": [{"wildcard": "Inv*-20*"}]})", e));
  EXPECT_FALSE(match(R"({"name": [{"wildcard": "*-2025"}]})", e));
  EXPECT_TRUE(match(R"({"price": [{"numeric": [">", 10, "<=", 12.5]}]})", e));
  EXPECT_FALSE(match(R"({"price": [{"numeric": ["<", 10]}]})", e));
  EXPECT_FALSE(match(R"({"city": [{"numeric": [">", 0]}]})", e));
  EXPECT_TRUE(match(R"({"city": [{"anything-but": ["Paris", "Nice"]}]})", e));
  EXPECT_FALSE(match(R"({"city": [{"anything-but": "Lyon"}]})", e));
  EXPECT_TRUE(match(R"({"name": [{"anything-but": {"prefix": "Receipt"}}]})", e));
  EXPECT_FALSE(match(R"({"name": [{"anything-but": {"suffix": "2026"}}]})", e));
  EXPECT_FALSE(match(R"({"missing": [{"anything-but": "x"}]})", e));  // needs the field
}

TEST(EventFilterTest, ExistsNestingAndOr) {
  const json e = {{"body", {{"order", {{"total", 30}, {"state", "new"}}}}}, {"attributes", {{"n", "1"}}}};
  EXPECT_TRUE(match(R"({"body": {"order": {"total": [{"numeric": [">=", 30]}]}}})", e));
  EXPECT_TRUE(match(R"({"body": {"coupon": [{"exists": false}]}})", e));
  EXPECT_FALSE(match(R"({"body": {"order": {"state": [{"exists": false}]}}})", e));
  EXPECT_TRUE(match(R"({"body": {"order": {"state": [{"exists": true}]}}})", e));
  EXPECT_FALSE(match(R"({"body": {"order": [{"exists": true}]}})", e));  // exists is for leaves
  EXPECT_TRUE(match(R"({"$or": [{"attributes": {"n": ["2"]}}, {"body": {"order": {"state": ["new"]}}}]})", e));
  EXPECT_FALSE(match(R"({"$or": [{"attributes": {"n": ["2"]}}, {"body": {"order": {"state": ["old"]}}}]})", e));
  EXPECT_FALSE(match(R"({"nothere": {"x": ["y"]}})", e));
}

TEST(EventFilterTest, SqsBodiesParseOnlyWhenJson) {
  const json json_body = filterable_sqs_record({{"body", R"({"kind": "order"})"}, {"messageId", "m"}});
  EXPECT_TRUE(match(R"({"body": {"kind": ["order"]}})", json_body));
  const json text_body = filterable_sqs_record({{"body", "plain text"}});
  EXPECT_TRUE(match(R"({"body": ["plain text"]})", text_body));
  EXPECT_TRUE(match(R"({"body": [{"prefix": "plain"}]})", text_body));
  const json number_body = filterable_sqs_record({{"body", "42"}});
  EXPECT_TRUE(match(R"({"body": ["42"]})", number_body));  // a JSON scalar body stays a string
}

TEST(EventFilterTest, MalformedPatternsAreRefusedWithTheReason) {
  const std::pair<const char*, const char*> bad[] = {
      {"not json", "not JSON"},
      {"[]", "non-empty JSON object"},
      {"{}", "non-empty JSON object"},
      {R"({"a": "x"})", "list of conditions"},
      {R"({"a": []})", "empty"},
      {R"({"a": [{"prefix": 5}]})", "prefix takes a string"},
      {R"({"a": [{"numeric": [">"]}]})", "numeric"},
      {R"({"a": [{"numeric": ["!=", 1]}]})", "unknown numeric operator"},
      {R"({"a": [{"exists": "yes"}]})", "exists takes true or false"},
      {R"({"a": [{"regex": "x"}]})", "unknown operator 'regex'"},
      {R"({"a": [{"prefix": "x", "suffix": "y"}]})", "exactly one operator"},
      {R"({"$or": [{"a": ["x"]}]})", "at least two"},
  };
  for (const auto& [pattern, why] : bad) {
    auto f = EventFilter::parse(pattern);
    ASSERT_FALSE(f.ok()) << pattern;
    EXPECT_NE(f.error().message.find(why), std::string::npos) << pattern << " -> " << f.error().message;
    EXPECT_NE(f.error().message.find("Invalid filter pattern definition"), std::string::npos);
  }
  EXPECT_FALSE(EventFilter::parse(std::string(5000, ' ')).ok());
}

}  // namespace
}  // namespace nimbus::events
