#pragma once
// The HTTP vocabulary shared by every listener of nimbus (control API,
// gateway, runtime API): Beast string-body messages and a few helpers.

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nimbus::http {

namespace beast = boost::beast;
namespace asio = boost::asio;
using Verb = beast::http::verb;
using Status = beast::http::status;
using Field = beast::http::field;
using Request = beast::http::request<beast::http::string_body>;
using Response = beast::http::response<beast::http::string_body>;

// Name/value pairs in the order they appeared (query strings, path params).
using Params = std::vector<std::pair<std::string, std::string>>;

// Decodes %XX escapes; with `plus_is_space` also '+' (form encoding).
// Returns false on a malformed escape.
[[nodiscard]] bool percent_decode(std::string_view in, std::string& out, bool plus_is_space = false);
// Encodes every byte outside A-Za-z0-9-_.~ (and '/' when keep_slash).
[[nodiscard]] std::string percent_encode(std::string_view in, bool keep_slash = false);

// Splits a request target into its path and query parts (without '?').
[[nodiscard]] std::pair<std::string_view, std::string_view> split_target(std::string_view target);
// Parses "a=1&b=2&a=3" into decoded pairs; malformed escapes are kept raw.
[[nodiscard]] Params parse_query(std::string_view query);
// First value of `name` in params, or nullptr.
[[nodiscard]] const std::string* find_param(const Params& params, std::string_view name);

}  // namespace nimbus::http
