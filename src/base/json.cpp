#include "base/json.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <string>
#include <vector>

#include "base/check.h"

namespace nimbus::base {
namespace {

using nlohmann::json;

// Bytes a lifted string may hold: printable ASCII other than '"' and '\'.
constexpr std::array<bool, 256> kPlain = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x7f; ++c) t[static_cast<std::size_t>(c)] = c != '"' && c != '\\';
  return t;
}();

// The content of a lifted string: text[begin, end), quotes excluded.
struct Span {
  std::size_t begin;
  std::size_t end;
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// The long plain string values of `text`, in order. A string's bounds follow
// from its quotes and escapes alone, as for any JSON lexer, so the text with
// their contents replaced tokenizes the same way, errors included. Keys are
// never lifted. Empty when the text holds a NUL escape, since the
// placeholders are NUL-led strings.
std::vector<Span> long_plain_strings(std::string_view text) {
  std::vector<Span> out;
  bool nul_escape = false;
  const std::size_t n = text.size();
  std::size_t i = 0;
  while ((i = text.find('"', i)) != std::string_view::npos) {
    std::size_t j = i + 1;
    while (j < n && kPlain[static_cast<unsigned char>(text[j])]) ++j;
    if (j < n && text[j] == '"') {
      if (j - i - 1 >= kLongJsonString) {
        std::size_t k = j + 1;
        while (k < n && is_space(text[k])) ++k;
        if (k == n || text[k] != ':') out.push_back(Span{i + 1, j});
      }
    } else {
      while (j < n && text[j] != '"') {
        if (text[j] == '\\') {
          nul_escape = nul_escape || text.substr(j, 6) == "\\u0000";
          ++j;
        }
        ++j;
      }
      if (j >= n) break;  // unterminated: the parser says so
    }
    i = j + 1;
  }
  if (nul_escape) out.clear();
  return out;
}

// `text` with the contents of `spans` replaced: by "\u0000<index>" when
// `placeholders`, else by nothing.
std::string without(std::string_view text, const std::vector<Span>& spans, bool placeholders) {
  std::size_t lifted = 0;
  for (const Span& s : spans) lifted += s.end - s.begin;
  std::string out;
  out.reserve(text.size() - lifted + spans.size() * 16);
  std::size_t at = 0;
  for (std::size_t k = 0; k < spans.size(); ++k) {
    out.append(text.substr(at, spans[k].begin - at));
    if (placeholders) {
      out += "\\u0000";
      out += std::to_string(k);
    }
    at = spans[k].end;
  }
  out.append(text.substr(at));
  return out;
}

// Puts the lifted strings back where their placeholders were parsed.
void restore(json& doc, std::string_view text, const std::vector<Span>& spans) {
  std::vector<json*> todo{&doc};
  while (!todo.empty()) {
    json* value = todo.back();
    todo.pop_back();
    if (value->is_string()) {
      auto& s = value->get_ref<std::string&>();
      if (s.empty() || s[0] != '\0') continue;
      std::size_t k = spans.size();
      std::from_chars(s.data() + 1, s.data() + s.size(), k);
      NIMBUS_CHECK(k < spans.size());
      s.assign(text.substr(spans[k].begin, spans[k].end - spans[k].begin));
    } else if (value->is_structured()) {
      for (auto& child : *value) todo.push_back(&child);
    }
  }
}

bool is_long_plain(const std::string& s) {
  return s.size() >= kLongJsonString &&
         std::all_of(s.begin(), s.end(), [](char c) { return kPlain[static_cast<unsigned char>(c)]; });
}

// A copy of `value` with long plain strings replaced by "\0<index>"
// placeholders and pointers to them in `lifted`; false when a string or key
// of the document holds a NUL, which would look like a placeholder.
bool skeleton(const json& value, json& out, std::vector<const std::string*>& lifted) {
  const auto has_nul = [](const std::string& s) { return s.find('\0') != std::string::npos; };
  if (value.is_string()) {
    const auto& s = value.get_ref<const std::string&>();
    if (has_nul(s)) return false;
    if (!is_long_plain(s)) {
      out = value;
      return true;
    }
    out = std::string(1, '\0') + std::to_string(lifted.size());
    lifted.push_back(&s);
    return true;
  }
  if (value.is_object()) {
    out = json::object();
    for (const auto& [key, child] : value.items()) {
      if (has_nul(key) || !skeleton(child, out[key], lifted)) return false;
    }
    return true;
  }
  if (value.is_array()) {
    out = json::array();
    for (const auto& child : value) {
      if (!skeleton(child, out.emplace_back(), lifted)) return false;
    }
    return true;
  }
  out = value;
  return true;
}

}  // namespace

std::string dump_json(const json& doc) {
  json shape;
  std::vector<const std::string*> lifted;
  if (!skeleton(doc, shape, lifted) || lifted.empty()) return doc.dump();
  const std::string text = shape.dump();
  std::size_t size = text.size();
  for (const auto* s : lifted) size += s->size();
  std::string out;
  out.reserve(size);
  // Each placeholder is dumped as "\u0000<index>"; nothing else can be, since
  // no string of the document holds a NUL.
  constexpr std::string_view kMark = "\"\\u0000";
  std::size_t at = 0;
  for (std::size_t mark; (mark = text.find(kMark, at)) != std::string::npos;) {
    const std::size_t digits = mark + kMark.size();
    const std::size_t close = text.find('"', digits);
    NIMBUS_CHECK(close != std::string::npos);
    std::size_t k = lifted.size();
    std::from_chars(text.data() + digits, text.data() + close, k);
    NIMBUS_CHECK(k < lifted.size());
    out.append(text, at, mark + 1 - at);
    out += *lifted[k];
    at = close;
  }
  out.append(text, at);
  return out;
}

json parse_json(std::string_view text) {
  const auto spans = long_plain_strings(text);
  if (spans.empty()) return json::parse(text, nullptr, false);
  json doc = json::parse(without(text, spans, true), nullptr, false);
  if (!doc.is_discarded()) restore(doc, text, spans);
  return doc;
}

bool is_json(std::string_view text) {
  const auto spans = long_plain_strings(text);
  if (spans.empty()) return json::accept(text);
  return json::accept(without(text, spans, false));
}

}  // namespace nimbus::base
