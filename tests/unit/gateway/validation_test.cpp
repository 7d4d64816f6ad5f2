#include "gateway/validation.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace nimbus::gateway {
namespace {

using nlohmann::json;
using Messages = std::vector<std::string>;

JsonSchema schema(const json& document) {
  auto compiled = JsonSchema::compile(document);
  EXPECT_TRUE(compiled.ok()) << document.dump() << ": " << (compiled.ok() ? "" : compiled.error().message);
  return compiled.ok() ? *compiled : *JsonSchema::compile(json::object());
}

Messages errors(const json& document, const json& instance) { return schema(document).validate(instance); }

bool valid(const json& document, const json& instance) { return errors(document, instance).empty(); }

std::string compile_error(const json& document) {
  auto compiled = JsonSchema::compile(document);
  EXPECT_FALSE(compiled.ok()) << document.dump() << " compiled";
  if (compiled.ok()) return "";
  EXPECT_EQ(compiled.error().code, base::ErrorCode::kValidation);
  return compiled.error().message;
}

// An array nested `levels` deep around a 1: [[[1]]] for 3.
std::string nested_array(std::size_t levels) { return std::string(levels, '[') + "1" + std::string(levels, ']'); }

TEST(JsonSchema, TypeNames) {
  EXPECT_TRUE(valid({{"type", "string"}}, "x"));
  EXPECT_TRUE(valid({{"type", "number"}}, 3));
  EXPECT_TRUE(valid({{"type", "number"}}, 3.5));
  EXPECT_TRUE(valid({{"type", "boolean"}}, false));
  EXPECT_TRUE(valid({{"type", "null"}}, nullptr));
  EXPECT_TRUE(valid({{"type", "object"}}, json::object()));
  EXPECT_TRUE(valid({{"type", "array"}}, json::array()));
  EXPECT_EQ(errors({{"type", "string"}}, 3), Messages{"/: expected string, found number"});
  EXPECT_EQ(errors({{"type", "object"}}, json::array()), Messages{"/: expected object, found array"});
  EXPECT_EQ(errors({{"type", "boolean"}}, "true"), Messages{"/: expected boolean, found string"});
  EXPECT_EQ(errors({{"type", "null"}}, false), Messages{"/: expected null, found boolean"});
  EXPECT_EQ(errors({{"type", "number"}}, nullptr), Messages{"/: expected number, found null"});
}

TEST(JsonSchema, IntegerAcceptsWholeFloats) {
  EXPECT_TRUE(valid({{"type", "integer"}}, 3));
  EXPECT_TRUE(valid({{"type", "integer"}}, json::parse("3.0")));
  EXPECT_TRUE(valid({{"type", "integer"}}, json::parse("-18446744073709551615")));
  EXPECT_TRUE(valid({{"type", "integer"}}, json::parse("18446744073709551615")));
  EXPECT_EQ(errors({{"type", "integer"}}, 3.5), Messages{"/: expected integer, found number"});
  EXPECT_EQ(errors({{"type", "integer"}}, "3"), Messages{"/: expected integer, found string"});
}

TEST(JsonSchema, TypeLists) {
  const json s = {{"type", {"string", "null"}}};
  EXPECT_TRUE(valid(s, "x"));
  EXPECT_TRUE(valid(s, nullptr));
  EXPECT_EQ(errors(s, 1), Messages{"/: expected string or null, found number"});
  EXPECT_EQ(errors({{"type", {"string", "integer", "boolean"}}}, 1.5),
            Messages{"/: expected string, integer or boolean, found number"});
}

TEST(JsonSchema, PointersNameTheFailingValue) {
  const json s = {{"properties", {{"tags", {{"items", {{"type", "string"}}}}}, {"a/b~c", {{"type", "string"}}}}}};
  EXPECT_EQ(errors(s, {{"tags", {"x", "y", 3}}}), Messages{"/tags/2: expected string, found number"});
  EXPECT_EQ(errors(s, {{"a/b~c", 1}}), Messages{"/a~1b~0c: expected string, found number"});
}

TEST(JsonSchema, PropertiesAndRequired) {
  const json s = {{"type", "object"},
                  {"required", {"name", "age"}},
                  {"properties", {{"name", {{"type", "string"}}}, {"age", {{"type", "integer"}}}}}};
  EXPECT_TRUE(valid(s, {{"name", "Ada"}, {"age", 36}, {"other", true}}));
  EXPECT_EQ(errors(s, {{"age", 36}}), Messages{"/: missing required property 'name'"});
  EXPECT_EQ(errors(s, json::object()),
            (Messages{"/: missing required property 'name'", "/: missing required property 'age'"}));
  EXPECT_EQ(errors(s, {{"name", 1}, {"age", "x"}}),
            (Messages{"/age: expected integer, found string", "/name: expected string, found number"}));
  // Object keywords do not apply to other types.
  EXPECT_TRUE(valid({{"required", {"name"}}}, "not an object"));
}

TEST(JsonSchema, AdditionalProperties) {
  const json closed = {{"properties", {{"name", json::object()}}}, {"additionalProperties", false}};
  EXPECT_TRUE(valid(closed, {{"name", 1}}));
  EXPECT_EQ(errors(closed, {{"name", 1}, {"nmae", 2}}),
            Messages{"/nmae: property is not allowed (additionalProperties is false)"});
  const json typed = {{"properties", {{"name", {{"type", "string"}}}}}, {"additionalProperties", {{"type", "number"}}}};
  EXPECT_TRUE(valid(typed, {{"name", "x"}, {"a", 1}, {"b", 2.5}}));
  EXPECT_EQ(errors(typed, {{"name", "x"}, {"a", "1"}}), Messages{"/a: expected number, found string"});
  EXPECT_TRUE(valid({{"additionalProperties", true}}, {{"anything", 1}}));
}

TEST(JsonSchema, PatternProperties) {
  const json s = {{"patternProperties", {{"^x-", {{"type", "string"}}}, {"[0-9]$", {{"type", "integer"}}}}},
                  {"additionalProperties", false}};
  EXPECT_TRUE(valid(s, {{"x-trace", "abc"}, {"n1", 5}}));
  EXPECT_EQ(errors(s, {{"x-trace", 1}}), Messages{"/x-trace: expected string, found number"});
  // Matched by both patterns: both apply.
  EXPECT_EQ(errors(s, {{"x-1", "a"}}), Messages{"/x-1: expected integer, found string"});
  EXPECT_EQ(errors(s, {{"other", 1}}), Messages{"/other: property is not allowed (additionalProperties is false)"});
  const std::string long_name(JsonSchema::kMaxPatternInput + 1, 'x');
  EXPECT_EQ(errors(s, {{long_name, 1}}).front().substr(0, 40),
            ("/" + long_name).substr(0, 40));
}

TEST(JsonSchema, Dependencies) {
  const json s = {{"dependencies",
                   {{"credit_card", {"billing_address"}}, {"coupon", {{"required", {"expires"}}}}}}};
  EXPECT_TRUE(valid(s, {{"name", "x"}}));
  EXPECT_TRUE(valid(s, {{"credit_card", 1}, {"billing_address", "x"}}));
  EXPECT_EQ(errors(s, {{"credit_card", 1}}), Messages{"/: property 'credit_card' requires property 'billing_address'"});
  EXPECT_EQ(errors(s, {{"coupon", "A"}}), Messages{"/: missing required property 'expires'"});
}

TEST(JsonSchema, Items) {
  const json s = {{"items", {{"type", "integer"}}}};
  EXPECT_TRUE(valid(s, {1, 2, 3}));
  EXPECT_TRUE(valid(s, json::array()));
  EXPECT_EQ(errors(s, {1, "2", 3, "4"}),
            (Messages{"/1: expected integer, found string", "/3: expected integer, found string"}));
}

TEST(JsonSchema, TupleItemsAndAdditionalItems) {
  const json open = {{"items", {{{"type", "string"}}, {{"type", "number"}}}}};
  EXPECT_TRUE(valid(open, {"a", 1, true, nullptr}));
  EXPECT_TRUE(valid(open, {"a"}));
  EXPECT_EQ(errors(open, {1, "a"}),
            (Messages{"/0: expected string, found number", "/1: expected number, found string"}));
  json closed = open;
  closed["additionalItems"] = false;
  EXPECT_TRUE(valid(closed, {"a", 1}));
  EXPECT_EQ(errors(closed, {"a", 1, 2}), Messages{"/: has 3 items, at most 2 are allowed"});
  json typed = open;
  typed["additionalItems"] = {{"type", "boolean"}};
  EXPECT_TRUE(valid(typed, {"a", 1, true, false}));
  EXPECT_EQ(errors(typed, {"a", 1, true, "no"}), Messages{"/3: expected boolean, found string"});
  // additionalItems means nothing without a tuple.
  EXPECT_TRUE(valid({{"additionalItems", false}}, {1, 2}));
}

TEST(JsonSchema, EnumAndConst) {
  const json s = {{"enum", {"S", "M", "L", 1, nullptr, {{"a", 1}}}}};
  EXPECT_TRUE(valid(s, "M"));
  EXPECT_TRUE(valid(s, 1.0));  // numbers compare by value
  EXPECT_TRUE(valid(s, nullptr));
  EXPECT_TRUE(valid(s, {{"a", 1}}));
  EXPECT_EQ(errors(s, "XL"), Messages{R"(/: "XL" is not one of ["S","M","L",1,null,{"a":1}])"});
  EXPECT_FALSE(valid(s, true));  // true is not 1
  EXPECT_FALSE(valid(s, "1"));
  EXPECT_TRUE(valid({{"const", {{"kind", "book"}, {"n", {1, 2}}}}}, {{"n", {1.0, 2}}, {"kind", "book"}}));
  EXPECT_EQ(errors({{"const", "book"}}, "car"), Messages{R"(/: "car" is not the constant "book")"});
  EXPECT_FALSE(valid({{"const", {1, 2}}}, {2, 1}));
}

TEST(JsonSchema, MinimumAndMaximum) {
  const json s = {{"minimum", 18}, {"maximum", 120}};
  EXPECT_TRUE(valid(s, 18));
  EXPECT_TRUE(valid(s, 120.0));
  EXPECT_TRUE(valid(s, "not a number"));
  EXPECT_EQ(errors({{"properties", {{"age", s}}}}, {{"age", 7}}), Messages{"/age: 7 is less than the minimum of 18"});
  EXPECT_EQ(errors(s, 120.5), Messages{"/: 120.5 is greater than the maximum of 120"});
  // Exact across integer and floating point representations.
  EXPECT_FALSE(valid({{"maximum", 9007199254740992LL}}, 9007199254740993LL));
  EXPECT_TRUE(valid({{"maximum", 9007199254740993.0}}, 9007199254740992LL));
  EXPECT_FALSE(valid({{"minimum", 0}}, -0.5));
  EXPECT_TRUE(valid({{"minimum", -1}}, json::parse("18446744073709551615")));
}

TEST(JsonSchema, ExclusiveBoundsDraft04) {
  const json s = {{"minimum", 0}, {"exclusiveMinimum", true}, {"maximum", 10}, {"exclusiveMaximum", true}};
  EXPECT_TRUE(valid(s, 0.001));
  EXPECT_TRUE(valid(s, 9));
  EXPECT_EQ(errors(s, 0), Messages{"/: 0 is less than or equal to the minimum of 0"});
  EXPECT_EQ(errors(s, 10), Messages{"/: 10 is greater than or equal to the maximum of 10"});
  EXPECT_TRUE(valid({{"minimum", 0}, {"exclusiveMinimum", false}}, 0));
}

TEST(JsonSchema, ExclusiveBoundsDraft06) {
  const json s = {{"exclusiveMinimum", 0}, {"exclusiveMaximum", 10.5}};
  EXPECT_TRUE(valid(s, 10));
  EXPECT_EQ(errors(s, 0), Messages{"/: 0 is less than or equal to the exclusive minimum of 0"});
  EXPECT_EQ(errors(s, 10.5), Messages{"/: 10.5 is greater than or equal to the exclusive maximum of 10.5"});
}

TEST(JsonSchema, MultipleOf) {
  EXPECT_TRUE(valid({{"multipleOf", 5}}, 25));
  EXPECT_TRUE(valid({{"multipleOf", 5}}, -25));
  EXPECT_TRUE(valid({{"multipleOf", 5}}, 25.0));
  EXPECT_EQ(errors({{"multipleOf", 5}}, 26), Messages{"/: 26 is not a multiple of 5"});
  EXPECT_TRUE(valid({{"multipleOf", 0.01}}, 19.99));
  EXPECT_TRUE(valid({{"multipleOf", 0.1}}, 0.3));
  EXPECT_FALSE(valid({{"multipleOf", 0.01}}, 19.995));
  EXPECT_FALSE(valid({{"multipleOf", 1e-300}}, 1e300));  // the quotient overflows
}

TEST(JsonSchema, StringLengthsCountCodePoints) {
  const json s = {{"minLength", 2}, {"maxLength", 5}};
  EXPECT_TRUE(valid(s, "héllo"));           // 6 bytes, 5 code points
  EXPECT_TRUE(valid(s, "\xF0\x9F\x98\x80!"));  // an emoji and '!': 2 code points
  EXPECT_EQ(errors(s, "a"), Messages{"/: length 1 is less than the minimum length of 2"});
  EXPECT_EQ(errors(s, "héllo!"), Messages{"/: length 6 is greater than the maximum length of 5"});
  EXPECT_TRUE(valid(s, 123456));
}

TEST(JsonSchema, PatternSearches) {
  EXPECT_TRUE(valid({{"pattern", "b"}}, "abc"));  // search, not full match
  EXPECT_TRUE(valid({{"pattern", "^[a-z]+(-[a-z]+)*$"}}, "my-product"));
  EXPECT_EQ(errors({{"pattern", "^[a-z]+$"}}, "Abc"), Messages{"/: does not match the pattern '^[a-z]+$'"});
  EXPECT_TRUE(valid({{"pattern", "^\\d{3}$"}}, "123"));
  EXPECT_TRUE(valid({{"pattern", "x"}}, 5));
}

TEST(JsonSchema, PatternInputIsBounded) {
  // std::regex recurses per character: a long string must fail cleanly, not overflow the stack.
  const json s = {{"pattern", "^(a|b)*$"}};
  EXPECT_TRUE(valid(s, std::string(JsonSchema::kMaxPatternInput, 'a')));
  EXPECT_EQ(errors(s, std::string(200000, 'a')),
            Messages{"/: a string of 200000 bytes is too long to match against the pattern '^(a|b)*$' (limit 1024)"});
}

TEST(JsonSchema, ArrayCountsAndUniqueness) {
  const json s = {{"minItems", 1}, {"maxItems", 3}, {"uniqueItems", true}};
  EXPECT_TRUE(valid(s, {1, "1", true}));
  EXPECT_EQ(errors(s, json::array()), Messages{"/: has 0 items, fewer than the minimum of 1"});
  EXPECT_EQ(errors(s, {1, 2, 3, 4}), Messages{"/: has 4 items, more than the maximum of 3"});
  EXPECT_EQ(errors(s, {"a", "b", "a"}), Messages{"/: items 0 and 2 are equal, but items must be unique"});
  EXPECT_FALSE(valid(s, {1, 1.0}));
  EXPECT_FALSE(valid(s, json::parse(R"([{"a":1,"b":[2]},{"b":[2.0],"a":1}])")));
  EXPECT_TRUE(valid(s, json::parse(R"([{"a":1},{"a":2}])")));
  EXPECT_TRUE(valid({{"uniqueItems", true}}, json::parse("[9007199254740993, 9007199254740992.0, 1, 1.5]")));
  EXPECT_TRUE(valid({{"uniqueItems", false}}, {1, 1}));
}

TEST(JsonSchema, UniquenessOfManyItems) {
  json many = json::array();
  for (int i = 0; i < 20000; ++i) many.push_back(i % 2 == 0 ? json(i) : json(std::to_string(i)));
  EXPECT_TRUE(valid({{"uniqueItems", true}}, many));
  many.push_back(19998.0);
  EXPECT_EQ(errors({{"uniqueItems", true}}, many), Messages{"/: items 19998 and 20000 are equal, but items must be unique"});
}

TEST(JsonSchema, PropertyCounts) {
  const json s = {{"minProperties", 1}, {"maxProperties", 2}};
  EXPECT_TRUE(valid(s, {{"a", 1}}));
  EXPECT_EQ(errors(s, json::object()), Messages{"/: has 0 properties, fewer than the minimum of 1"});
  EXPECT_EQ(errors(s, {{"a", 1}, {"b", 2}, {"c", 3}}), Messages{"/: has 3 properties, more than the maximum of 2"});
}

TEST(JsonSchema, AllOf) {
  const json s = {{"allOf", {{{"type", "integer"}}, {{"minimum", 10}}}}};
  EXPECT_TRUE(valid(s, 12));
  EXPECT_EQ(errors(s, 5), Messages{"/: 5 is less than the minimum of 10"});
  EXPECT_EQ(errors(s, 5.5), (Messages{"/: expected integer, found number", "/: 5.5 is less than the minimum of 10"}));
}

TEST(JsonSchema, AnyOf) {
  const json s = {{"anyOf", {{{"type", "string"}}, {{"type", "integer"}, {"minimum", 0}}}}};
  EXPECT_TRUE(valid(s, "x"));
  EXPECT_TRUE(valid(s, 3));
  EXPECT_EQ(errors(s, -1), Messages{"/: does not match any of the 2 schemas in anyOf"});
  EXPECT_EQ(errors(s, nullptr), Messages{"/: does not match any of the 2 schemas in anyOf"});
}

TEST(JsonSchema, OneOf) {
  const json s = {{"oneOf", {{{"type", "integer"}}, {{"type", "number"}, {"multipleOf", 3}}, {{"type", "string"}}}}};
  EXPECT_TRUE(valid(s, 4));    // only the first
  EXPECT_FALSE(valid(s, 4.5));  // neither an integer, nor a multiple of 3, nor a string
  EXPECT_TRUE(valid(s, "x"));
  EXPECT_EQ(errors(s, 6), Messages{"/: matches oneOf schemas 0 and 1, but must match exactly one"});
  EXPECT_EQ(errors(s, nullptr), Messages{"/: does not match any of the 3 schemas in oneOf"});
}

TEST(JsonSchema, Not) {
  const json s = {{"not", {{"type", "null"}}}};
  EXPECT_TRUE(valid(s, 1));
  EXPECT_EQ(errors(s, nullptr), Messages{"/: must not match the schema in 'not'"});
}

TEST(JsonSchema, BooleanSchemas) {
  EXPECT_TRUE(valid(true, {1, 2}));
  EXPECT_EQ(errors(false, 1), Messages{"/: no value is allowed here"});
  EXPECT_EQ(errors({{"properties", {{"secret", false}}}}, {{"secret", 1}}),
            Messages{"/secret: no value is allowed here"});
}

TEST(JsonSchema, RefToDefinitions) {
  const json s = {{"definitions", {{"price", {{"type", "number"}, {"minimum", 0}}}}},
                  {"properties", {{"price", {{"$ref", "#/definitions/price"}}}, {"was", {{"$ref", "#/definitions/price"}}}}}};
  EXPECT_TRUE(valid(s, {{"price", 1.5}, {"was", 2}}));
  EXPECT_EQ(errors(s, {{"price", -1}, {"was", "x"}}),
            (Messages{"/price: -1 is less than the minimum of 0", "/was: expected number, found string"}));
}

TEST(JsonSchema, RefToAnyLocalPointer) {
  const json s = {{"properties",
                   {{"a/b", {{"type", "string"}}},
                    {"c d", {{"type", "integer"}}},
                    {"x", {{"$ref", "#/properties/a~1b"}}},
                    {"y", {{"$ref", "#/properties/c%20d"}}},
                    {"z", {{"items", {{{"type", "null"}}, {{"$ref", "#/properties/z/items/0"}}}}}}}}};
  EXPECT_TRUE(valid(s, {{"x", "s"}, {"y", 1}, {"z", {nullptr, nullptr}}}));
  EXPECT_EQ(errors(s, {{"x", 1}}), Messages{"/x: expected string, found number"});
  EXPECT_EQ(errors(s, {{"y", "1"}}), Messages{"/y: expected integer, found string"});
  EXPECT_EQ(errors(s, {{"z", {nullptr, 1}}}), Messages{"/z/1: expected null, found number"});
}

TEST(JsonSchema, RecursiveRefThroughTheValue) {
  // A tree: each node has a name and children that are nodes.
  const json s = {{"type", "object"},
                  {"required", {"name"}},
                  {"properties", {{"name", {{"type", "string"}}}, {"children", {{"items", {{"$ref", "#"}}}}}}}};
  EXPECT_TRUE(valid(s, json::parse(R"({"name":"a","children":[{"name":"b","children":[{"name":"c"}]}]})")));
  EXPECT_EQ(errors(s, json::parse(R"({"name":"a","children":[{"name":"b","children":[{"name":3}]}]})")),
            Messages{"/children/0/children/0/name: expected string, found number"});
}

TEST(JsonSchema, KeywordsBesideRefAreIgnored) {
  // Draft-04: a "$ref" object is replaced by its target.
  const json s = {{"definitions", {{"n", {{"type", "number"}}}}}, {"$ref", "#/definitions/n"}, {"minimum", 100}};
  EXPECT_TRUE(valid(s, 5));
  EXPECT_FALSE(valid(s, "5"));
}

TEST(JsonSchema, RefChainsHitTheDepthLimit) {
  // A chain of 600 definitions, each referring to the next: compiles (no
  // recursion in compile), but validating it nests past the limit.
  json definitions = json::object();
  for (int i = 0; i < 600; ++i) definitions["d" + std::to_string(i)] = {{"$ref", "#/definitions/d" + std::to_string(i + 1)}};
  definitions["d600"] = {{"type", "integer"}};
  const json s = {{"definitions", definitions}, {"$ref", "#/definitions/d0"}};
  EXPECT_EQ(errors(s, 1), Messages{"/: schemas nest deeper than 512 levels here (a recursive $ref?)"});
  // 100 links are fine.
  json short_chain = json::object();
  for (int i = 0; i < 100; ++i) short_chain["d" + std::to_string(i)] = {{"$ref", "#/definitions/d" + std::to_string(i + 1)}};
  short_chain["d100"] = {{"type", "integer"}};
  EXPECT_TRUE(valid({{"definitions", short_chain}, {"$ref", "#/definitions/d0"}}, 1));
  EXPECT_FALSE(valid({{"definitions", short_chain}, {"$ref", "#/definitions/d0"}}, "1"));
}

TEST(JsonSchema, ExponentialSchemasStopAtTheStepBudget) {
  // Every array level applies the definition twice: 2^40 checks for 40 levels.
  const json s = {{"definitions", {{"a", {{"items", {{"allOf", {{{"$ref", "#/definitions/a"}}, {{"$ref", "#/definitions/a"}}}}}}}}}},
                  {"$ref", "#/definitions/a"}};
  const Messages out = errors(s, json::parse(nested_array(40)));
  ASSERT_EQ(out.size(), 1U);
  EXPECT_NE(out[0].find("validation stopped after 1000000 schema checks"), std::string::npos) << out[0];
  EXPECT_TRUE(valid(s, json::parse(nested_array(5))));
}

TEST(JsonSchema, InstanceDepthIsLimited) {
  const json s = {{"type", "array"}};
  EXPECT_TRUE(valid(s, json::parse(nested_array(64))));
  std::string pointer;
  for (int i = 0; i < 64; ++i) pointer += "/0";
  EXPECT_EQ(errors(s, json::parse(nested_array(65))), Messages{pointer + ": nested deeper than 64 levels"});
  EXPECT_EQ(errors(true, json::parse(R"({"a":)" + nested_array(70) + "}")).front().substr(0, 8), "/a/0/0/0");
}

TEST(JsonSchema, MaxErrors) {
  const json s = {{"items", {{"type", "string"}}}};
  const json many = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  EXPECT_EQ(schema(s).validate(many).size(), 10U);
  EXPECT_EQ(schema(s).validate(many, 3).size(), 3U);
  EXPECT_EQ(schema(s).validate(many, 0).size(), 1U);  // at least one: empty means valid
}

TEST(JsonSchema, CopiesAreIndependent) {
  auto original = std::make_unique<JsonSchema>(schema({{"pattern", "^a+$"}, {"minLength", 2}}));
  const JsonSchema copy = *original;
  JsonSchema moved = std::move(*original);
  original.reset();
  EXPECT_TRUE(copy.validate("aaa").empty());
  EXPECT_EQ(copy.validate("b").size(), 2U);
  EXPECT_EQ(moved.validate("ab"), Messages{"/: does not match the pattern '^a+$'"});
  EXPECT_EQ(copy.document()["pattern"], "^a+$");
}

TEST(JsonSchema, AnnotationsAreIgnored) {
  const json s = {{"$schema", "http://json-schema.org/draft-04/schema#"},
                  {"id", "product"},
                  {"title", "Product"},
                  {"description", "A product"},
                  {"format", "email"},
                  {"default", 1},
                  {"examples", {1}},
                  {"x-amazon-apigateway", 1},
                  {"type", "string"}};
  EXPECT_TRUE(valid(s, "not an email"));
}

TEST(JsonSchema, CompileErrorsNameThePointer) {
  EXPECT_EQ(compile_error({{"properties", {{"age", {{"minimum", "18"}}}}}}),
            "BodySchema /properties/age/minimum must be a number");
  EXPECT_EQ(compile_error({{"type", "int"}}),
            "BodySchema /type has an unknown type 'int' (expected string, number, integer, boolean, object, array or "
            "null)");
  EXPECT_EQ(compile_error({{"type", {"string", "string"}}}), "BodySchema /type lists 'string' twice");
  EXPECT_EQ(compile_error({{"type", 5}}), "BodySchema /type must be a type name or an array of type names");
  EXPECT_EQ(compile_error({{"minLength", -1}}), "BodySchema /minLength must be a non-negative integer");
  EXPECT_EQ(compile_error({{"maxItems", 1.5}}), "BodySchema /maxItems must be a non-negative integer");
  EXPECT_EQ(compile_error({{"items", {{"maxProperties", "2"}}}}), "BodySchema /items/maxProperties must be a non-negative integer");
  EXPECT_EQ(compile_error({{"multipleOf", 0}}), "BodySchema /multipleOf must be a number greater than 0");
  EXPECT_EQ(compile_error({{"enum", json::array()}}), "BodySchema /enum must be a non-empty array");
  EXPECT_EQ(compile_error({{"required", {"a", 1}}}), "BodySchema /required must be an array of property names");
  EXPECT_EQ(compile_error({{"required", {"a", "a"}}}), "BodySchema /required lists 'a' twice");
  EXPECT_EQ(compile_error({{"uniqueItems", "yes"}}), "BodySchema /uniqueItems must be a boolean");
  EXPECT_EQ(compile_error({{"exclusiveMinimum", true}}), "BodySchema /exclusiveMinimum true needs a minimum");
  EXPECT_EQ(compile_error({{"exclusiveMaximum", "1"}}),
            "BodySchema /exclusiveMaximum must be a boolean (draft-04) or a number (draft-06)");
  EXPECT_EQ(compile_error({{"anyOf", json::array()}}), "BodySchema /anyOf must be a non-empty array of schemas");
  EXPECT_EQ(compile_error({{"allOf", {{{"type", "string"}}, 3}}}),
            "BodySchema /allOf/1 must be a schema (a JSON object or a boolean)");
  EXPECT_EQ(compile_error({{"properties", {{"a", {{"minimun", 1}}}}}}),
            "BodySchema /properties/a/minimun is not a supported keyword");
  EXPECT_EQ(compile_error({{"definitions", 1}}), "BodySchema /definitions must be an object of schemas");
  EXPECT_EQ(compile_error(json::array()), "BodySchema must be a schema (a JSON object or a boolean)");
  EXPECT_EQ(compile_error({{"properties", {{"a/b", {{"type", "x"}}}}}}).substr(0, 36),
            "BodySchema /properties/a~1b/type has");
}

TEST(JsonSchema, CompileErrorsForPatterns) {
  const std::string bad = compile_error({{"properties", {{"code", {{"pattern", "([a-z]"}}}}}});
  EXPECT_EQ(bad.rfind("BodySchema /properties/code/pattern is not a valid regular expression: ", 0), 0U) << bad;
  EXPECT_EQ(compile_error({{"pattern", 1}}), "BodySchema /pattern must be a string (a regular expression)");
  const std::string bad_key = compile_error({{"patternProperties", {{"[", true}}}});
  EXPECT_EQ(bad_key.rfind("BodySchema /patternProperties/[ is not a valid regular expression", 0), 0U) << bad_key;
}

TEST(JsonSchema, CompileErrorsForRefs) {
  EXPECT_EQ(compile_error({{"properties", {{"a", {{"$ref", "#/definitions/missing"}}}}}}),
            "BodySchema /properties/a/$ref '#/definitions/missing' does not resolve to anything in the schema");
  EXPECT_EQ(compile_error({{"$ref", "http://example.com/schema.json#/a"}}),
            "BodySchema /$ref 'http://example.com/schema.json#/a' is not a local reference (\"#\" or \"#/...\")");
  EXPECT_EQ(compile_error({{"$ref", "other.json"}}),
            "BodySchema /$ref 'other.json' is not a local reference (\"#\" or \"#/...\")");
  EXPECT_EQ(compile_error({{"$ref", "#/a~2"}}), "BodySchema /$ref '#/a~2' is not a local reference (\"#\" or \"#/...\")");
  EXPECT_EQ(compile_error({{"$ref", 1}}), "BodySchema /$ref must be a string");
  // The target must be a schema.
  EXPECT_EQ(compile_error(json::parse(R"({"enum": [1], "not": {"$ref": "#/enum/0"}})")),
            "BodySchema /enum/0 must be a schema (a JSON object or a boolean)");
  // Errors inside definitions are found even when nothing refers to them.
  EXPECT_EQ(compile_error({{"definitions", {{"unused", {{"type", "float"}}}}}}).substr(0, 42),
            "BodySchema /definitions/unused/type has an");
}

TEST(JsonSchema, RefCyclesThatNeverDescendAreRefused) {
  EXPECT_EQ(compile_error({{"$ref", "#"}}), "BodySchema is part of a $ref cycle that never descends into the value");
  const json mutual = json::parse(R"({"definitions": {"a": {"$ref": "#/definitions/b"},
                                                       "b": {"anyOf": [{"type": "string"}, {"$ref": "#/definitions/a"}]}},
                                       "$ref": "#/definitions/a"})");
  EXPECT_NE(compile_error(mutual).find(" is part of a $ref cycle that never descends into the value"), std::string::npos)
      << compile_error(mutual);
  EXPECT_NE(compile_error({{"not", {{"allOf", {{{"$ref", "#"}}}}}}}).find("is part of a $ref cycle"), std::string::npos);
}

TEST(JsonSchema, SchemaDocumentDepthIsLimited) {
  json deep = {{"type", "string"}};
  for (int i = 0; i < 100; ++i) deep = {{"not", deep}};
  EXPECT_TRUE(JsonSchema::compile(deep).ok());  // 100 levels of JSON
  for (int i = 0; i < 100; ++i) deep = {{"not", deep}};
  const std::string message = compile_error(deep);
  EXPECT_EQ(message.substr(0, 16), "BodySchema /not/");
  EXPECT_NE(message.find(" is nested deeper than 128 levels"), std::string::npos) << message;
  // Deep JSON anywhere in the document counts, even in annotations.
  EXPECT_NE(compile_error({{"default", json::parse(nested_array(500))}}).find("nested deeper than 128"), std::string::npos);
}

// The seeds' products API: POST /products {"name": ..., "price": ..., "tags": [...]}.
const json kProductSchema = json::parse(R"({
  "$schema": "http://json-schema.org/draft-04/schema#",
  "title": "Product",
  "type": "object",
  "required": ["name"],
  "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": 200},
    "price": {"type": "number", "minimum": 0},
    "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true}
  },
  "additionalProperties": false
})");

TEST(JsonSchema, ProductSchema) {
  const JsonSchema s = schema(kProductSchema);
  EXPECT_TRUE(s.validate(json::parse(R"({"name":"Lamp","price":19.99,"tags":["home","light"]})")).empty());
  EXPECT_TRUE(s.validate(json::parse(R"({"name":"Free sample","price":0})")).empty());
  EXPECT_TRUE(s.validate(json::parse(R"({"name":"Lamp"})")).empty());
  EXPECT_EQ(s.validate(json::parse(R"({"price":5})")), Messages{"/: missing required property 'name'"});
  EXPECT_EQ(s.validate(json::parse(R"({"name":"Lamp","price":-1})")), Messages{"/price: -1 is less than the minimum of 0"});
  EXPECT_EQ(s.validate(json::parse(R"({"name":"Lamp","price":"9.99"})")),
            Messages{"/price: expected number, found string"});
  EXPECT_EQ(s.validate(json::parse(R"({"name":"Lamp","tags":["a",2,"a"]})")),
            (Messages{"/tags: items 0 and 2 are equal, but items must be unique", "/tags/1: expected string, found number"}));
  EXPECT_EQ(s.validate(json::parse(R"({"name":"","colour":"red"})")),
            (Messages{"/colour: property is not allowed (additionalProperties is false)",
                      "/name: length 0 is less than the minimum length of 1"}));
  EXPECT_EQ(s.validate(json::parse("[]")), Messages{"/: expected object, found array"});
}

// --- RequestValidation ---

IncomingRequest request(std::string query = "", std::vector<std::pair<std::string, std::string>> headers = {},
                        std::string body = "") {
  IncomingRequest r;
  r.method = "POST";
  r.raw_path = "/products";
  r.raw_query = std::move(query);
  r.headers = std::move(headers);
  r.body = std::move(body);
  return r;
}

RequestValidation validation(const json& doc) {
  auto parsed = parse_request_validation(doc);
  EXPECT_TRUE(parsed.ok()) << doc.dump() << ": " << (parsed.ok() ? "" : parsed.error().message);
  return parsed.ok() ? *parsed : RequestValidation{};
}

base::Error parse_error(const json& doc) {
  auto parsed = parse_request_validation(doc);
  EXPECT_FALSE(parsed.ok()) << doc.dump();
  return parsed.ok() ? base::Error{} : parsed.error();
}

TEST(RequestValidation, ParsesAndRoundTrips) {
  const json doc = {{"RequiredParameters", {"method.request.querystring.name", "method.request.header.X-Api-Key"}},
                    {"BodySchema", kProductSchema}};
  const RequestValidation v = validation(doc);
  EXPECT_EQ(v.required_parameters,
            (std::vector<std::string>{"method.request.querystring.name", "method.request.header.X-Api-Key"}));
  ASSERT_TRUE(v.body_schema.has_value());
  EXPECT_EQ(to_json(v), doc);
  EXPECT_EQ(to_json(validation(to_json(v))), doc);
  EXPECT_EQ(to_json(validation(json::object())), json::object());
  EXPECT_FALSE(validation({{"RequiredParameters", nullptr}, {"BodySchema", nullptr}}).body_schema.has_value());
}

TEST(RequestValidation, BodySchemaMayBeAJsonString) {
  // API Gateway's Model.schema is a string holding the JSON.
  const RequestValidation v = validation({{"BodySchema", kProductSchema.dump()}});
  ASSERT_TRUE(v.body_schema.has_value());
  EXPECT_EQ(v.body_schema->document(), kProductSchema);
  EXPECT_EQ(to_json(v)["BodySchema"], kProductSchema);
  const base::Error e = parse_error({{"BodySchema", "{not json"}});
  EXPECT_EQ(e.code, base::ErrorCode::kInvalidRequestContent);
  EXPECT_EQ(e.message, "BodySchema is a string but not valid JSON");
}

TEST(RequestValidation, RefusesBadConfiguration) {
  EXPECT_EQ(parse_error(json::array()).message,
            "Request validation must be a JSON object with RequiredParameters and/or BodySchema");
  EXPECT_EQ(parse_error({{"RequestParameters", json::array()}}).message,
            "Unknown request validation member 'RequestParameters' (expected RequiredParameters or BodySchema)");
  EXPECT_EQ(parse_error({{"RequiredParameters", "method.request.querystring.a"}}).message,
            "RequiredParameters must be a list of strings");
  EXPECT_EQ(parse_error({{"RequiredParameters", {1}}}).message, "RequiredParameters must be a list of strings");
  for (const char* bad : {"name", "method.request.querystring.", "method.request.body.x", "querystring.name",
                          "method.request.multivaluequerystring.a"}) {
    const base::Error e = parse_error({{"RequiredParameters", {bad}}});
    EXPECT_EQ(e.code, base::ErrorCode::kValidation);
    EXPECT_EQ(e.message, std::string("RequiredParameters item '") + bad +
                             "' must be method.request.querystring.NAME, method.request.header.NAME or "
                             "method.request.path.NAME");
  }
  EXPECT_EQ(parse_error({{"RequiredParameters", {"method.request.header.X-Key", "method.request.header.x-key"}}}).message,
            "RequiredParameters lists 'method.request.header.x-key' twice");
  EXPECT_TRUE(parse_request_validation(
                  {{"RequiredParameters", {"method.request.querystring.a", "method.request.querystring.A"}}})
                  .ok());
  const base::Error schema_error = parse_error({{"BodySchema", {{"type", "text"}}}});
  EXPECT_EQ(schema_error.code, base::ErrorCode::kValidation);
  EXPECT_EQ(schema_error.message.substr(0, 33), "BodySchema /type has an unknown t");
}

TEST(RequestValidation, RequiredQueryStringParameters) {
  const RequestValidation v = validation({{"RequiredParameters", {"method.request.querystring.name"}}});
  EXPECT_EQ(validate_request(v, request("name=Ada"), {}), std::nullopt);
  EXPECT_EQ(validate_request(v, request("a=1&name=Ada"), {}), std::nullopt);
  EXPECT_EQ(validate_request(v, request("name="), {}), std::nullopt);  // empty counts as present
  EXPECT_EQ(validate_request(v, request("name"), {}), std::nullopt);
  EXPECT_EQ(validate_request(v, request("n%61me=x"), {}), std::nullopt);  // decoded
  EXPECT_EQ(validate_request(v, request(""), {}), "Missing required request parameters: [name]");
  EXPECT_EQ(validate_request(v, request("Name=Ada"), {}), "Missing required request parameters: [name]");
  EXPECT_EQ(validate_request(v, request("names=1"), {}), "Missing required request parameters: [name]");
}

TEST(RequestValidation, RequiredHeadersAreCaseInsensitive) {
  const RequestValidation v = validation({{"RequiredParameters", {"method.request.header.x-api-key"}}});
  EXPECT_EQ(validate_request(v, request("", {{"X-API-Key", "k"}}), {}), std::nullopt);
  EXPECT_EQ(validate_request(v, request("", {{"x-api-key", "k"}}), {}), std::nullopt);
  EXPECT_EQ(validate_request(v, request("", {{"x-api-key", ""}}), {}),
            "Missing required request parameters: [x-api-key]");
  EXPECT_EQ(validate_request(v, request("x-api-key=k", {{"x-api-keys", "k"}}), {}),
            "Missing required request parameters: [x-api-key]");
}

TEST(RequestValidation, RequiredPathParameters) {
  const RequestValidation v = validation({{"RequiredParameters", {"method.request.path.id"}}});
  EXPECT_EQ(validate_request(v, request(), {{"id", "42"}}), std::nullopt);
  EXPECT_EQ(validate_request(v, request("id=42"), {}), "Missing required request parameters: [id]");
  EXPECT_EQ(validate_request(v, request(), {{"id", ""}}), "Missing required request parameters: [id]");
}

TEST(RequestValidation, AllMissingParametersInConfiguredOrder) {
  const RequestValidation v = validation({{"RequiredParameters",
                                           {"method.request.querystring.name", "method.request.path.id",
                                            "method.request.header.X-Api-Key", "method.request.querystring.page"}}});
  EXPECT_EQ(validate_request(v, request("page=2"), {}), "Missing required request parameters: [name, id, X-Api-Key]");
  EXPECT_EQ(validate_request(v, request("name=a&page=2", {{"x-api-key", "k"}}), {{"id", "1"}}), std::nullopt);
}

TEST(RequestValidation, BodyMustBeJson) {
  const RequestValidation v = validation({{"BodySchema", kProductSchema}});
  for (const char* body : {"", "   ", "{", "name=Lamp", "{\"name\":\"Lamp\"} trailing", "\x80\x81"}) {
    EXPECT_EQ(validate_request(v, request("", {}, body), {}), "Invalid request body: the body is not valid JSON")
        << body;
  }
  // Without a schema the body is not looked at.
  EXPECT_EQ(validate_request(validation(json::object()), request("", {}, "not json"), {}), std::nullopt);
}

TEST(RequestValidation, BodyAgainstTheSchema) {
  const RequestValidation v = validation({{"BodySchema", kProductSchema}});
  EXPECT_EQ(validate_request(v, request("", {}, R"({"name":"Lamp","price":19.99})"), {}), std::nullopt);
  EXPECT_EQ(validate_request(v, request("", {}, R"({"price":-1,"tags":[1]})"), {}),
            "Invalid request body: /: missing required property 'name'; /price: -1 is less than the minimum of 0; "
            "/tags/0: expected string, found number");
}

TEST(RequestValidation, ParametersAreCheckedBeforeTheBody) {
  const RequestValidation v =
      validation({{"RequiredParameters", {"method.request.header.x-api-key"}}, {"BodySchema", kProductSchema}});
  EXPECT_EQ(validate_request(v, request("", {}, "not json"), {}), "Missing required request parameters: [x-api-key]");
  EXPECT_EQ(validate_request(v, request("", {{"X-Api-Key", "k"}}, "not json"), {}),
            "Invalid request body: the body is not valid JSON");
}

TEST(RequestValidation, DeeplyNestedBodiesAreRefusedNotCrashing) {
  const RequestValidation v = validation({{"BodySchema", {{"type", "array"}}}});
  const auto answer = validate_request(v, request("", {}, nested_array(100000)), {});
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->rfind("Invalid request body: /0/0/0/0", 0), 0U) << *answer;
  EXPECT_NE(answer->find(": nested deeper than 64 levels"), std::string::npos) << *answer;
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += "{\"a\":";
  objects += "1" + std::string(100000, '}');
  EXPECT_TRUE(validate_request(v, request("", {}, objects), {}).has_value());
}

TEST(RequestValidation, LongMessagesAreClipped) {
  const std::string key(5000, 'k');
  const RequestValidation v = validation({{"BodySchema", {{"additionalProperties", false}}}});
  const auto answer = validate_request(v, request("", {}, json{{key, 1}}.dump()), {});
  ASSERT_TRUE(answer.has_value());
  EXPECT_LE(answer->size(), 600U);
  EXPECT_EQ(answer->substr(answer->size() - 3), "...");
}

}  // namespace
}  // namespace nimbus::gateway
