#include "http/server.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <thread>

#include <spdlog/spdlog.h>

namespace nimbus::http {

namespace {
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
}

struct Server::Connection {
  explicit Connection(asio::ip::tcp::socket s) : stream(std::move(s)) {}
  beast::tcp_stream stream;
  std::atomic<bool> busy{false};
};

Server::Server(asio::any_io_executor executor, ServerConfig config, Handler handler,
               ErrorRenderer render_error)
    : executor_(std::move(executor)),
      config_(std::move(config)),
      handler_(std::move(handler)),
      render_error_(std::move(render_error)),
      acceptor_(asio::make_strand(executor_)) {}

Server::~Server() = default;

base::Result<asio::ip::tcp::endpoint> Server::listen() {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(config_.host, ec);
  if (ec) {
    return base::make_error(base::ErrorCode::kInvalidParameterValue,
                            "invalid listen address '" + config_.host + "': " + ec.message());
  }
  const asio::ip::tcp::endpoint endpoint(address, config_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return base::make_error(base::ErrorCode::kService,
                            "listen on " + config_.host + ":" + std::to_string(config_.port) +
                                " (" + config_.name + "): " + ec.message());
  }
  return acceptor_.local_endpoint();
}

void Server::start() {
  asio::co_spawn(acceptor_.get_executor(), accept_loop(), [name = config_.name](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("{}: accept loop ended: {}", name, ex.what());
    }
  });
}

asio::awaitable<void> Server::accept_loop() {
  while (!stopping_) {
    auto [ec, socket] = co_await acceptor_.async_accept(asio::make_strand(executor_), kUseTuple);
    if (ec) {
      if (stopping_ || ec == asio::error::operation_aborted) break;
      spdlog::warn("{}: accept: {}", config_.name, ec.message());
      continue;  // EMFILE and friends: keep serving the connections we have
    }
    socket.set_option(asio::ip::tcp::no_delay(true), ec);
    auto conn = std::make_shared<Connection>(std::move(socket));
    {
      std::lock_guard lock(mu_);
      connections_.insert(conn);
    }
    asio::co_spawn(conn->stream.get_executor(), serve(conn), [this, conn, name = config_.name](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          spdlog::warn("{}: connection ended: {}", name, ex.what());
        }
      }
      std::lock_guard lock(mu_);
      connections_.erase(conn);
    });
  }
}

asio::awaitable<void> Server::serve(std::shared_ptr<Connection> conn) {
  beast::flat_buffer buffer;
  for (;;) {
    beast::http::request_parser<beast::http::string_body> parser;
    parser.body_limit(config_.body_limit);
    parser.header_limit(64 * 1024);
    conn->stream.expires_after(config_.idle_timeout);
    auto [ec, n] = co_await beast::http::async_read_header(conn->stream, buffer, parser, kUseTuple);
    if (ec) co_return;  // closed, timed out or malformed: nothing to answer
    conn->busy = true;
    in_flight_.fetch_add(1);
    struct Done {
      Server* s;
      Connection* c;
      ~Done() {
        c->busy = false;
        s->in_flight_.fetch_sub(1);
      }
    } done{this, conn.get()};

    Response response;
    bool keep_alive = parser.get().keep_alive();
    const unsigned version = parser.get().version();
    const auto length = parser.content_length();
    if (length && *length > config_.body_limit) {
      response = render_error_(base::Error{base::ErrorCode::kRequestTooLarge,
                                           "Request must be smaller than " +
                                               std::to_string(config_.body_limit) + " bytes"},
                               version);
      keep_alive = false;  // the unread body makes the stream unusable
    } else {
      if (parser.get()[Field::expect] == "100-continue") {
        beast::http::response<beast::http::empty_body> cont{Status::continue_, version};
        auto [wec, wn] = co_await beast::http::async_write(conn->stream, cont, kUseTuple);
        if (wec) co_return;
      }
      conn->stream.expires_after(std::chrono::seconds(300));
      std::tie(ec, n) = co_await beast::http::async_read(conn->stream, buffer, parser, kUseTuple);
      if (ec == beast::http::error::body_limit) {
        response = render_error_(base::Error{base::ErrorCode::kRequestTooLarge,
                                             "Request must be smaller than " +
                                                 std::to_string(config_.body_limit) + " bytes"},
                                 version);
        keep_alive = false;
      } else if (ec) {
        co_return;
      } else {
        conn->stream.expires_never();
        try {
          response = co_await handler_(parser.release());
        } catch (const std::exception& ex) {
          spdlog::error("{}: handler threw: {}", config_.name, ex.what());
          response = render_error_(base::Error{base::ErrorCode::kService, "internal error"}, version);
        }
      }
    }
    if (stopping_) keep_alive = false;
    response.version(version);
    response.keep_alive(keep_alive);
    response.prepare_payload();
    conn->stream.expires_after(std::chrono::seconds(300));
    auto [wec, wn] = co_await beast::http::async_write(conn->stream, response, kUseTuple);
    served_.fetch_add(1);
    if (wec || !keep_alive) {
      boost::system::error_code ignored;
      conn->stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
      co_return;
    }
  }
}

void Server::stop() {
  if (stopping_.exchange(true)) return;
  asio::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  });
  std::lock_guard lock(mu_);
  for (const auto& conn : connections_) {
    if (conn->busy) continue;  // closes itself after its response
    asio::post(conn->stream.get_executor(), [conn] { conn->stream.cancel(); });
  }
}

bool Server::drain(std::chrono::milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (in_flight_.load() > 0) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace nimbus::http
