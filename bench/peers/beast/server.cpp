// The C++ floor for bench/run: a bare Boost.Beast HTTP/1.1 server, no
// framework, no routing, no JSON library.
//
//   beast-hello <port> [threads]     (listens on 127.0.0.1; threads default: all cores)
//
// Answers every request with 200 and
//   {"message":"Hello from C++!","input":{"body":"<request body as a JSON string>"}}
// on keep-alive connections: the least any HTTP server can do for the
// benchmark's hello answer, measured on the same machine as nimbus.

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// `text` as the contents of a JSON string (quotes not included).
void append_json_escaped(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += "\\u00";
          out += kHex[(c >> 4) & 0xf];
          out += kHex[c & 0xf];
        } else {
          out += c;
        }
    }
  }
}

std::string answer(std::string_view body) {
  std::string out;
  out.reserve(body.size() + 64);
  out += R"({"message":"Hello from C++!","input":{"body":")";
  append_json_escaped(out, body);
  out += "\"}}";
  return out;
}

asio::awaitable<void> serve(tcp::socket socket) {
  beast::flat_buffer buffer;
  beast::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  for (;;) {
    http::request<http::string_body> req;
    co_await http::async_read(socket, buffer, req, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;  // closed by the client, or a malformed request
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    res.keep_alive(req.keep_alive());
    res.body() = answer(req.body());
    res.prepare_payload();
    co_await http::async_write(socket, res, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !res.keep_alive()) break;
  }
  socket.shutdown(tcp::socket::shutdown_send, ec);
}

void log_failure(const std::exception_ptr& e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "beast-hello: %s\n", ex.what());
  }
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor) {
  for (;;) {
    beast::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) continue;
    asio::co_spawn(acceptor.get_executor(), serve(std::move(socket)), log_failure);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <port> [threads]\n", argv[0]);
    return 2;
  }
  const auto port = static_cast<unsigned short>(std::atoi(argv[1]));
  int threads = argc > 2 ? std::atoi(argv[2]) : static_cast<int>(std::thread::hardware_concurrency());
  if (threads < 1) threads = 1;
  try {
    asio::io_context io{threads};
    tcp::acceptor acceptor{io, {asio::ip::make_address("127.0.0.1"), port}};
    asio::co_spawn(io, accept_loop(acceptor), log_failure);
    std::vector<std::thread> pool;
    for (int i = 1; i < threads; ++i) pool.emplace_back([&io] { io.run(); });
    io.run();
    for (auto& t : pool) t.join();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "beast-hello: %s\n", e.what());
    return 1;
  }
  return 0;
}
