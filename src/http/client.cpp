#include "http/client.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <charconv>
#include <optional>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "http/detail/awaitable.h"

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

namespace {

using detail::kUseTuple;
using Outcome = base::Result<Response>;

// "[::1]" names the address ::1.
std::string bare_host(const std::string& host) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') return host.substr(1, host.size() - 2);
  return host;
}

Outcome unreachable(const std::string& where, const std::string& why) {
  return base::make_error(base::ErrorCode::kService, "cannot reach " + where + ": " + why);
}

// One request/response exchange on a connected stream (plain or TLS); the
// deadline set on the stream's lowest layer bounds it.
template <class Stream>
asio::awaitable<Outcome> exchange(Stream& stream, Request& request, const std::string& where) {
  auto [wec, wn] = co_await beast::http::async_write(stream, request, kUseTuple);
  if (wec) co_return unreachable(where, wec.message());
  beast::flat_buffer buffer;
  beast::http::response_parser<beast::http::string_body> parser;
  parser.body_limit(512ull * 1024 * 1024);
  auto [rec, rn] = co_await beast::http::async_read(stream, buffer, parser, kUseTuple);
  if (rec) co_return unreachable(where, rec.message());
  boost::system::error_code ignored;
  beast::get_lowest_layer(stream).socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  co_return parser.release();
}

// Why a handshake failed, in words: the certificate verdict when there is one.
std::string tls_failure(const boost::system::error_code& ec, SSL* ssl) {
  const long verdict = SSL_get_verify_result(ssl);
  if (verdict != X509_V_OK) {
    return std::string("TLS certificate not accepted: ") + X509_verify_cert_error_string(verdict);
  }
  return "TLS handshake failed: " + ec.message();
}

// Asks for the server's name to be checked: DNS names are also sent as SNI;
// IP addresses are matched against the certificate's IP entries.
bool expect_server_name(SSL* ssl, const std::string& host) {
  boost::system::error_code not_ip;
  asio::ip::make_address(host, not_ip);
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  if (!not_ip) return X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) == 1;
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  return SSL_set_tlsext_host_name(ssl, host.c_str()) == 1 &&
         X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size()) == 1;
}

asio::awaitable<Outcome> exchange_with(Endpoint endpoint, Request request, std::chrono::seconds timeout) {
  const std::string where = endpoint.host + ":" + std::to_string(endpoint.port);
  const std::string host = bare_host(endpoint.host);
  auto executor = co_await asio::this_coro::executor;
  asio::ip::tcp::resolver resolver(executor);
  auto [rec, found] = co_await resolver.async_resolve(host, std::to_string(endpoint.port), kUseTuple);
  if (rec) co_return unreachable(where, rec.message());
  if (request[Field::host].empty()) request.set(Field::host, where);
  request.prepare_payload();

  if (endpoint.scheme == Scheme::kHttp) {
    beast::tcp_stream stream(executor);
    stream.expires_after(timeout);
    auto [cec, ce] = co_await stream.async_connect(found, kUseTuple);
    if (cec) co_return unreachable(where, cec.message());
    co_return co_await exchange(stream, request, where);
  }

  asio::ssl::context ctx(asio::ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  ctx.set_default_verify_paths();
  if (!endpoint.ca_file.empty()) {
    boost::system::error_code ec;
    ctx.load_verify_file(endpoint.ca_file, ec);
    if (ec) {
      co_return base::make_error(base::ErrorCode::kService,
                                 "CA file " + endpoint.ca_file + ": cannot load (" + ec.message() + ")");
    }
  }
  ctx.set_verify_mode(asio::ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> stream(executor, ctx);
  if (!expect_server_name(stream.native_handle(), host)) {
    co_return base::make_error(base::ErrorCode::kService, "cannot verify the name '" + host + "'");
  }
  auto& tcp = beast::get_lowest_layer(stream);
  tcp.expires_after(timeout);
  auto [cec, ce] = co_await tcp.async_connect(found, kUseTuple);
  if (cec) co_return unreachable(where, cec.message());
  auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::client, kUseTuple);
  if (hec) co_return unreachable(where, tls_failure(hec, stream.native_handle()));
  co_return co_await exchange(stream, request, where);
}

// Runs exchange_with() to completion, leaving its outcome in `out`.
asio::awaitable<void> send_async(Endpoint endpoint, Request request, std::chrono::seconds timeout,
                                 std::optional<Outcome>& out) {
  out.emplace(co_await exchange_with(std::move(endpoint), std::move(request), timeout));
}

}  // namespace

base::Result<Response> send(const Endpoint& endpoint, Request request, std::chrono::seconds timeout) {
  // Asynchronous operations on a private io_context: the stream's deadline
  // bounds connect, handshake, write and read alike.
  asio::io_context io;
  std::optional<Outcome> out;
  std::string failure;
  asio::co_spawn(io, send_async(endpoint, std::move(request), timeout, out), [&failure](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      failure = ex.what();
    }
  });
  io.run();
  if (!out) return unreachable(endpoint.host + ":" + std::to_string(endpoint.port), failure);
  return std::move(*out);
}

}  // namespace nimbus::http
