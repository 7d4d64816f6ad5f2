#include "http/client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <charconv>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

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

// One request/response exchange on a connected stream (plain or TLS).
template <class Stream>
Response exchange(Stream& stream, Request& request) {
  beast::http::write(stream, request);
  beast::flat_buffer buffer;
  beast::http::response_parser<beast::http::string_body> parser;
  parser.body_limit(512ull * 1024 * 1024);
  beast::http::read(stream, buffer, parser);
  return parser.release();
}

// "[::1]" names the address ::1.
std::string bare_host(const std::string& host) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') return host.substr(1, host.size() - 2);
  return host;
}

// Why a handshake failed, in words: the certificate verdict when there is one.
std::string tls_failure(const boost::system::system_error& e, SSL* ssl) {
  const long verdict = SSL_get_verify_result(ssl);
  if (verdict != X509_V_OK) {
    return std::string("TLS certificate not accepted: ") + X509_verify_cert_error_string(verdict);
  }
  return "TLS handshake failed: " + e.code().message();
}

}  // namespace

base::Result<Response> send(const Endpoint& endpoint, Request request, std::chrono::seconds timeout) {
  const std::string where = endpoint.host + ":" + std::to_string(endpoint.port);
  const std::string host = bare_host(endpoint.host);
  try {
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    if (request[Field::host].empty()) request.set(Field::host, where);
    request.prepare_payload();
    if (endpoint.scheme == Scheme::kHttp) {
      beast::tcp_stream stream(io);
      stream.expires_after(timeout);
      stream.connect(resolver.resolve(host, std::to_string(endpoint.port)));
      auto response = exchange(stream, request);
      boost::system::error_code ignored;
      stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      return response;
    }

    asio::ssl::context ctx(asio::ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
    ctx.set_default_verify_paths();
    if (!endpoint.ca_file.empty()) {
      boost::system::error_code ec;
      ctx.load_verify_file(endpoint.ca_file, ec);
      if (ec) {
        return base::make_error(base::ErrorCode::kService,
                                "CA file " + endpoint.ca_file + ": cannot load (" + ec.message() + ")");
      }
    }
    ctx.set_verify_mode(asio::ssl::verify_peer);
    beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
    SSL* ssl = stream.native_handle();
    boost::system::error_code ip_ec;
    asio::ip::make_address(host, ip_ec);
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    if (ip_ec) {
      // A name: sent as SNI and matched against the certificate's DNS names.
      SSL_set_tlsext_host_name(ssl, host.c_str());
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      if (X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size()) != 1) {
        return base::make_error(base::ErrorCode::kService, "cannot verify host name '" + host + "'");
      }
    } else if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1) {
      return base::make_error(base::ErrorCode::kService, "cannot verify address '" + host + "'");
    }
    auto& tcp = beast::get_lowest_layer(stream);
    tcp.expires_after(timeout);
    tcp.connect(resolver.resolve(host, std::to_string(endpoint.port)));
    try {
      stream.handshake(asio::ssl::stream_base::client);
    } catch (const boost::system::system_error& e) {
      return base::make_error(base::ErrorCode::kService, "cannot reach " + where + ": " + tls_failure(e, ssl));
    }
    auto response = exchange(stream, request);
    boost::system::error_code ignored;
    tcp.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    return response;
  } catch (const boost::system::system_error& e) {
    return base::make_error(base::ErrorCode::kService, "cannot reach " + where + ": " + e.code().message());
  }
}

}  // namespace nimbus::http
