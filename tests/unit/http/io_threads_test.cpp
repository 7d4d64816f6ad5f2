// http::Server with IoThreads' placer on loopback: each connection stays on
// one io_context and one thread for all its requests, and connections are
// spread round robin over the contexts.

#include "http/io_threads.h"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "http/server.h"

namespace nimbus::http {
namespace {

// Answers "<execution context address> <thread id>" of where it ran.
asio::awaitable<Response> where_it_ran(Request request, RequestContext) {
  const auto& context = asio::query(co_await asio::this_coro::executor, asio::execution::context);
  std::ostringstream out;
  out << static_cast<const void*>(&context) << ' ' << std::this_thread::get_id();
  Response response{Status::ok, request.version()};
  response.body() = out.str();
  co_return response;
}

Response render_as_text(const base::Error& error, unsigned version) {
  Response response{Status::bad_request, version};
  response.body() = error.message;
  return response;
}

// One keep-alive client connection, blocking.
class KeepAliveClient {
 public:
  explicit KeepAliveClient(std::uint16_t port) : socket_(io_) {
    asio::ip::tcp::resolver resolver(io_);
    asio::connect(socket_, resolver.resolve("127.0.0.1", std::to_string(port)));
  }
  std::string get() {
    Request request{Verb::get, "/", 11};
    request.set(Field::host, "127.0.0.1");
    boost::beast::http::write(socket_, request);
    Response response;
    boost::beast::http::read(socket_, buffer_, response);
    return response.body();
  }

 private:
  asio::io_context io_;
  asio::ip::tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
};

TEST(IoThreads, EachConnectionStaysOnOneContextAndConnectionsAreSpread) {
  asio::io_context main{1};
  IoThreads threads(main, 2);
  ASSERT_EQ(threads.size(), 2u);
  ServerConfig config;
  config.connection_executor = threads.placer();
  Server server(main.get_executor(), config, where_it_ran, render_as_text);
  auto endpoint = server.listen();
  ASSERT_TRUE(endpoint.ok()) << endpoint.error().message;
  server.start();
  auto guard = asio::make_work_guard(main);
  std::thread main_thread([&main] { run_io(main); });
  threads.start();

  std::vector<std::string> homes;  // one per connection
  for (int c = 0; c < 4; ++c) {
    KeepAliveClient client(endpoint->port());
    const std::string first = client.get();
    for (int r = 0; r < 5; ++r) EXPECT_EQ(client.get(), first) << "connection " << c << " moved";
    homes.push_back(first);
  }
  // Round robin over two contexts, each run by a thread of its own.
  EXPECT_NE(homes[0], homes[1]);
  EXPECT_EQ(homes[0], homes[2]);
  EXPECT_EQ(homes[1], homes[3]);
  const auto thread_of = [](const std::string& home) { return home.substr(home.find(' ') + 1); };
  EXPECT_NE(thread_of(homes[0]), thread_of(homes[1]));

  server.stop();
  EXPECT_TRUE(server.drain(std::chrono::seconds(5)));
  main.stop();
  main_thread.join();
  threads.stop();
  threads.stop();  // idempotent
}

TEST(IoThreads, OneThreadMeansMainAlone) {
  asio::io_context main{1};
  IoThreads threads(main, 1);
  EXPECT_EQ(threads.size(), 1u);
  auto placer = threads.placer();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(&asio::query(placer(), asio::execution::context), &static_cast<asio::execution_context&>(main));
  }
  threads.start();  // nothing to run
  threads.stop();
}

}  // namespace
}  // namespace nimbus::http
