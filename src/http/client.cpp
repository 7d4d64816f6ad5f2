#include "http/client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <charconv>

namespace nimbus::http {

base::Result<Endpoint> parse_endpoint(std::string_view url) {
  if (url.starts_with("https://")) {
    return base::make_error(base::ErrorCode::kInvalidParameterValue,
                            "endpoint '" + std::string(url) + "': https is not supported by the CLI");
  }
  if (url.starts_with("http://")) url.remove_prefix(7);
  while (!url.empty() && url.back() == '/') url.remove_suffix(1);
  const auto colon = url.rfind(':');
  Endpoint ep;
  if (colon == std::string_view::npos) {
    ep.host = std::string(url);
    ep.port = 80;
  } else {
    ep.host = std::string(url.substr(0, colon));
    const auto port = url.substr(colon + 1);
    unsigned value = 0;
    const auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc{} || p != port.data() + port.size() || value == 0 || value > 65535) {
      return base::make_error(base::ErrorCode::kInvalidParameterValue,
                              "endpoint '" + std::string(url) + "': bad port");
    }
    ep.port = static_cast<std::uint16_t>(value);
  }
  if (ep.host.empty()) {
    return base::make_error(base::ErrorCode::kInvalidParameterValue, "endpoint has no host");
  }
  return ep;
}

base::Result<Response> send(const Endpoint& endpoint, Request request, std::chrono::seconds timeout) {
  const std::string where = endpoint.host + ":" + std::to_string(endpoint.port);
  try {
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.expires_after(timeout);
    stream.connect(resolver.resolve(endpoint.host, std::to_string(endpoint.port)));
    if (request[Field::host].empty()) request.set(Field::host, where);
    request.prepare_payload();
    beast::http::write(stream, request);
    beast::flat_buffer buffer;
    beast::http::response_parser<beast::http::string_body> parser;
    parser.body_limit(512ull * 1024 * 1024);
    beast::http::read(stream, buffer, parser);
    boost::system::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    return parser.release();
  } catch (const boost::system::system_error& e) {
    return base::make_error(base::ErrorCode::kService,
                            "cannot reach nimbus at " + where + ": " + e.code().message());
  }
}

}  // namespace nimbus::http
