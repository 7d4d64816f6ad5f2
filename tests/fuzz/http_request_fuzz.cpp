// Fuzz target: an HTTP/1.1 request as the listeners read it (Beast's parser
// with the server's header and body limits, chunked bodies included), then
// what the gateway and the control API do with its target: split, decode the
// query, percent-decode the path, find a function URL in it.
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/function_urls.h"
#include "http/types.h"

namespace beast = boost::beast;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  beast::http::request_parser<beast::http::string_body> parser;
  parser.header_limit(10240);
  parser.body_limit(1 << 20);
  parser.eager(true);
  boost::system::error_code ec;
  std::size_t used = 0;
  while (used < input.size() && !parser.is_done()) {
    const std::size_t n = parser.put(boost::asio::buffer(input.data() + used, input.size() - used), ec);
    if (ec == beast::http::error::need_more) break;
    if (ec || n == 0) return 0;
    used += n;
  }
  if (!parser.is_header_done()) return 0;
  const auto& request = parser.get();
  const auto [path, query] = nimbus::http::split_target(request.target());
  const nimbus::http::Params params = nimbus::http::parse_query(query);
  (void)nimbus::http::find_param(params, "Qualifier");
  std::string decoded;
  (void)nimbus::http::percent_decode(path, decoded);
  (void)nimbus::http::percent_encode(decoded, true);
  const std::string host(request[beast::http::field::host]);
  (void)nimbus::gateway::function_url_target(host, path);
  return 0;
}
