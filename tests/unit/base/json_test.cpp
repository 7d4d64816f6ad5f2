#include "base/json.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace nimbus::base {
namespace {

using nlohmann::json;

const std::string kLong(kLongJsonString, 'Q');

// parse_json must give exactly what nlohmann gives, and is_json what
// json::accept says, whether or not anything is lifted.
void expect_same_as_nlohmann(const std::string& text) {
  const json want = json::parse(text, nullptr, false);
  const json got = parse_json(text);
  ASSERT_EQ(got.is_discarded(), want.is_discarded()) << text.substr(0, 80);
  if (!want.is_discarded()) {
    EXPECT_EQ(got, want) << text.substr(0, 80);
  }
  EXPECT_EQ(is_json(text), json::accept(text)) << text.substr(0, 80);
}

TEST(Json, LongPlainStringsComeBackWhereTheyWere) {
  const std::string other = kLong + "Zm9v+/==";
  const std::string text = R"({"FunctionName":"f","Code":{"ZipFile":")" + kLong + R"("},"Tags":[")" + other +
                           R"(",1,null,{"k" : ")" + kLong + R"(" }],"x":"short"})";
  const json doc = parse_json(text);
  ASSERT_FALSE(doc.is_discarded());
  EXPECT_EQ(doc["Code"]["ZipFile"], kLong);
  EXPECT_EQ(doc["Tags"][0], other);
  EXPECT_EQ(doc["Tags"][3]["k"], kLong);
  EXPECT_EQ(doc["x"], "short");
  expect_same_as_nlohmann(text);
}

TEST(Json, AnswersAsNlohmannDoes) {
  const std::vector<std::string> texts = {
      "\"" + kLong + "\"",                                  // a document that is one long string
      " [\"" + kLong + "\" , \"" + kLong + "\"] ",           // several
      "{\"" + kLong + "\" : 1}",                             // a long key is not lifted
      "{\"a\":\"" + kLong + "\\n\"}",                        // an escape: parsed by nlohmann alone
      "{\"a\":\"" + kLong + "\\u0041\"}",
      "{\"a\":\"caf\xc3\xa9" + kLong + "\"}",                // UTF-8 outside ASCII
      "{\"a\":\"" + kLong + "\"}",
      "{\"a\":\"\\u0000\",\"b\":\"" + kLong + "\"}",         // a NUL escape beside a long string
      "{\"a\":\"\\u00001\",\"b\":\"" + kLong + "\"}",        // a user string shaped like a placeholder
      "{\"a\":\"\\\\u0000\",\"b\":\"" + kLong + "\"}",       // an escaped backslash, not a NUL
      // Not JSON, each with a long plain string in it:
      "{\"a\":\"" + kLong + "\"",                            // unclosed object
      "{\"a\":\"" + kLong,                                   // unterminated string
      "{\"a\":\"" + kLong + "\" \"b\"}",                     // missing comma
      "{\"a\":\"" + kLong + "\",}",                          // trailing comma
      "{\"a\":\"" + kLong + "\xff\"}",                       // invalid UTF-8
      "{\"a\":\"" + kLong + "\t\"}",                         // a raw control character
      "{\"a\":\"" + kLong + "\"} x",                         // text after the document
      "{a:\"" + kLong + "\"}",                               // an unquoted key
      "\"" + kLong + "\":1",                                 // a lone key
      "{\"a\":\"x\\\"" + kLong + "\"}",                      // an escaped quote before long text
      "",
      "{}",
  };
  for (const auto& text : texts) expect_same_as_nlohmann(text);
}

TEST(Json, ShortStringsAreLeftToNlohmann) {
  const std::string text = R"({"a":")" + std::string(kLongJsonString - 1, 'z') + R"(","b":[1,2]})";
  expect_same_as_nlohmann(text);
  EXPECT_EQ(parse_json(text)["b"], json::array({1, 2}));
}

TEST(Json, DumpWritesWhatNlohmannWrites) {
  const std::vector<json> docs = {
      json{{"FunctionName", "f"}, {"Code", {{"ZipFile", kLong}}}, {"Tags", {kLong + "+/=", 1, nullptr}}},
      json(kLong),
      json::array({kLong, "short", json::object({{"k", kLong}})}),
      json{{kLong, kLong}},                                    // a long key stays with nlohmann
      json{{"a", std::string("nul\0inside")}, {"b", kLong}},  // a NUL: nlohmann alone
      json{{"a", "\\u0000 \"\\u0000"}, {"b", kLong}},       // text that looks like a placeholder once escaped
      json{{"a", kLong + "\n"}, {"b", kLong + "\xc3\xa9"}},   // not plain: escaped by nlohmann
      json{{"a", 1}, {"b", {true, 2.5}}},
  };
  for (const auto& doc : docs) {
    const std::string text = dump_json(doc);
    EXPECT_EQ(text, doc.dump());
    EXPECT_EQ(parse_json(text), doc);
  }
}

}  // namespace
}  // namespace nimbus::base
