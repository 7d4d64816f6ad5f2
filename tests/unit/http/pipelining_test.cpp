// http::Server with pipelined requests on loopback: answers come back in
// order, and with hold_answers_to_pipelined an answer waits for the one to the
// request already behind it (one write), but is never lost when the
// connection ends first.

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "http/detail/awaitable.h"
#include "http/server.h"

namespace nimbus::http {
namespace {

using namespace std::chrono_literals;
namespace beast = boost::beast;

// GET /wait answers when the test releases it; anything else at once. The
// body is the target.
class PipeliningTest : public ::testing::Test {
 protected:
  void start(bool hold) {
    ServerConfig config;
    config.hold_answers_to_pipelined = hold;
    server_ = std::make_unique<Server>(
        io_.get_executor(), config,
        [this](Request request, RequestContext) -> asio::awaitable<Response> {
          if (request.target() == "/wait" && !released_) {
            co_await release_.async_wait(detail::kUseTuple);
          }
          Response response{Status::ok, request.version()};
          response.body() = std::string(request.target());
          co_return response;
        },
        [](const base::Error& error, unsigned version) {
          Response response{Status::bad_request, version};
          response.body() = "error: " + error.message;
          return response;
        });
    auto endpoint = server_->listen();
    ASSERT_TRUE(endpoint.ok()) << endpoint.error().message;
    server_->start();
    thread_ = std::thread([this] {
      auto guard = asio::make_work_guard(io_);
      io_.run();
    });
    stream_.connect(asio::ip::tcp::endpoint{asio::ip::make_address("127.0.0.1"), endpoint->port()});
  }
  void TearDown() override {
    release();
    if (server_) server_->stop();
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  void send(const std::string& bytes) { asio::write(stream_.socket(), asio::buffer(bytes)); }
  void release() {
    asio::post(io_, [this] {
      released_ = true;
      release_.cancel();
    });
  }
  // Reads the next answer into `message`, within 10 s.
  template <class Message>
  boost::system::error_code read_into(Message& message) {
    boost::system::error_code ec = asio::error::timed_out;
    stream_.expires_after(10s);
    beast::http::async_read(stream_, buffer_, message, [&ec](boost::system::error_code e, std::size_t) { ec = e; });
    client_io_.restart();
    client_io_.run();
    return ec;
  }
  Response read() {
    Response response;
    const auto ec = read_into(response);
    EXPECT_FALSE(ec) << ec.message();
    return response;
  }
  std::size_t bytes_waiting_after(std::chrono::milliseconds pause) {
    std::this_thread::sleep_for(pause);
    return stream_.socket().available() + buffer_.size();
  }

  static std::string get(const std::string& target) { return "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"; }

  asio::io_context io_;
  asio::steady_timer release_{io_, asio::steady_timer::time_point::max()};
  bool released_ = false;  // on io_'s one thread, as the handler
  std::unique_ptr<Server> server_;
  std::thread thread_;
  asio::io_context client_io_;
  beast::tcp_stream stream_{client_io_};
  beast::flat_buffer buffer_;
};

TEST_F(PipeliningTest, HeldAnswerGoesOutWithTheAnswerBehindIt) {
  start(true);
  send(get("/first") + get("/wait"));
  EXPECT_EQ(bytes_waiting_after(200ms), 0u) << "the first answer was written before the second was ready";
  release();
  EXPECT_EQ(read().body(), "/first");
  EXPECT_EQ(read().body(), "/wait");
  // A request with nothing behind it is answered at once, on the same connection.
  send(get("/alone"));
  EXPECT_EQ(read().body(), "/alone");
}

TEST_F(PipeliningTest, WithoutTheSettingEachAnswerGoesOutAtOnce) {
  start(false);
  send(get("/first") + get("/wait"));
  EXPECT_EQ(read().body(), "/first");  // while /wait still waits
  release();
  EXPECT_EQ(read().body(), "/wait");
}

TEST_F(PipeliningTest, HeldAnswersAreWrittenWhenTheClientStopsMidRequest) {
  start(true);
  send(get("/first") + get("/second") + "GET /thi");
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send);
  EXPECT_EQ(read().body(), "/first");
  EXPECT_EQ(read().body(), "/second");
  Response none;
  EXPECT_EQ(read_into(none), beast::http::error::end_of_stream);
}

TEST_F(PipeliningTest, HeldAnswerComesBeforeTheErrorForAMalformedRequest) {
  start(true);
  send(get("/first") + "NOT HTTP\r\n\r\n");
  EXPECT_EQ(read().body(), "/first");
  const Response error = read();
  EXPECT_EQ(error.result(), Status::bad_request);
  EXPECT_EQ(error.body(), "error: Malformed HTTP request");
}

TEST_F(PipeliningTest, HeldAnswerComesBeforeAHundredContinue) {
  start(true);
  send(get("/first") + "PUT /put HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
  EXPECT_EQ(read().body(), "/first");
  beast::http::response<beast::http::empty_body> interim;
  const auto ec = read_into(interim);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(interim.result(), Status::continue_);
  send("{}");
  EXPECT_EQ(read().body(), "/put");
}

}  // namespace
}  // namespace nimbus::http
