// JSON helpers over nlohmann::json.
//
// nlohmann's lexer handles one byte at a time and grows each string a byte
// at a time. That is fine for API bodies of a few kB, and slow for a body
// carrying a zip of tens of MB as base64 (CreateFunction's Code.ZipFile):
// about 2 s of CPU for 55 MB. The helpers here cut long plain strings out of
// the text before the lexer (or the serializer) sees them; results are
// exactly nlohmann's.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace nimbus::base {

// String values at least this long, of printable ASCII without escapes, are
// lifted out of the text before parsing.
inline constexpr std::size_t kLongJsonString = 64 * 1024;

// What nlohmann::json::parse(text, nullptr, false) returns (a discarded value
// when `text` is not JSON), with long plain string values copied once into
// the document instead of going through the lexer.
[[nodiscard]] nlohmann::json parse_json(std::string_view text);

// Whether `text` is one JSON value (nlohmann::json::accept), without
// building a document; long plain strings are skipped over.
[[nodiscard]] bool is_json(std::string_view text);

// What doc.dump() returns, with long plain string values written straight
// into the text instead of through nlohmann's escaping serializer.
[[nodiscard]] std::string dump_json(const nlohmann::json& doc);

}  // namespace nimbus::base
