// The Runtime API over real HTTP on loopback, without processes: a test plays
// the runtime with the blocking client while the invoker side runs as
// coroutines on an io_context.
#include "runtime_api/runtime_api.h"

#include "http/peer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <atomic>
#include <future>
#include <utility>
#include <vector>
#include <thread>

#include "http/client.h"

namespace nimbus::runtime_api {
namespace {

using namespace std::chrono_literals;

class SessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    api_ = std::make_unique<RuntimeApi>(io_.get_executor(), RuntimeApiConfig{});
    // Several threads: the invoker's and the runtime's sides of a session
    // then run on different threads, as in the daemon.
    for (int i = 0; i < kThreads; ++i) {
      threads_.emplace_back([this] {
        auto guard = boost::asio::make_work_guard(io_);
        io_.run();
      });
    }
    auto opened = api_->open(std::nullopt);
    ASSERT_TRUE(opened.ok());
    opened_ = *opened;
  }
  void TearDown() override {
    api_->close(opened_.id);
    api_->stop();
    io_.stop();
    for (auto& t : threads_) t.join();
  }

  http::Response call(http::Verb verb, const std::string& target, std::string body = {},
                      std::uint16_t port = 0) {
    http::Request req{verb, target, 11};
    req.body() = std::move(body);
    auto res = http::send(http::Endpoint{"127.0.0.1", port ? port : opened_.port}, std::move(req), 10s);
    EXPECT_TRUE(res.ok());
    return res.ok() ? *res : http::Response{};
  }

  std::future<InitOutcome> wait_ready(std::chrono::milliseconds timeout) {
    return boost::asio::co_spawn(io_, opened_.session->wait_ready(std::chrono::steady_clock::now() + timeout),
                                 boost::asio::use_future);
  }
  std::future<InvokeOutcome> invoke(Event e, std::chrono::milliseconds timeout) {
    return boost::asio::co_spawn(io_, opened_.session->invoke(std::move(e), std::chrono::steady_clock::now() + timeout),
                                 boost::asio::use_future);
  }

  static constexpr int kThreads = 4;
  boost::asio::io_context io_{kThreads};
  std::unique_ptr<RuntimeApi> api_;
  std::vector<std::thread> threads_;
  OpenedSession opened_{};
};

Event event(const std::string& id, const std::string& payload = R"({"k":1})") {
  Event e;
  e.request_id = id;
  e.payload = payload;
  e.deadline_ms = 1700000003000;
  e.invoked_arn = "arn:aws:lambda:us-east-1:000000000000:function:f";
  return e;
}

TEST_F(SessionTest, NextDeliversEventWithLambdaHeadersAndResponseReturns) {
  auto ready = wait_ready(5s);
  // The runtime's first /next completes init; it then waits for the event.
  auto next = std::async(std::launch::async, [this] { return call(http::Verb::get, "/2018-06-01/runtime/invocation/next"); });
  ASSERT_EQ(ready.get().status, InitStatus::kReady);
  auto outcome = invoke(event("req-1"), 5s);
  const http::Response ev = next.get();
  EXPECT_EQ(ev.result_int(), 200u);
  EXPECT_EQ(ev["Lambda-Runtime-Aws-Request-Id"], "req-1");
  EXPECT_EQ(ev["Lambda-Runtime-Deadline-Ms"], "1700000003000");
  EXPECT_EQ(ev["Lambda-Runtime-Invoked-Function-Arn"], "arn:aws:lambda:us-east-1:000000000000:function:f");
  EXPECT_EQ(ev[http::Field::content_type], "application/json");
  EXPECT_EQ(ev.body(), R"({"k":1})");
  const auto posted = call(http::Verb::post, "/2018-06-01/runtime/invocation/req-1/response", R"({"ok":true})");
  EXPECT_EQ(posted.result_int(), 202u);
  const auto out = outcome.get();
  EXPECT_EQ(out.status, InvokeStatus::kResponse);
  EXPECT_EQ(out.body, R"({"ok":true})");
  // Answering twice is refused.
  EXPECT_EQ(call(http::Verb::post, "/2018-06-01/runtime/invocation/req-1/response", "{}").result_int(), 400u);
}

// home() is the io_context the runtime's /next came in on (the invoker
// prefers instances on its own thread); nothing before the first /next.
TEST_F(SessionTest, HomeIsWhereTheRuntimesNextRuns) {
  EXPECT_EQ(opened_.session->home(), nullptr);
  auto ready = wait_ready(5s);
  auto next = std::async(std::launch::async, [this] { return call(http::Verb::get, "/2018-06-01/runtime/invocation/next"); });
  ASSERT_EQ(ready.get().status, InitStatus::kReady);
  EXPECT_EQ(opened_.session->home(), &static_cast<boost::asio::execution_context&>(io_));
  auto outcome = invoke(event("req-h"), 5s);
  EXPECT_EQ(next.get()["Lambda-Runtime-Aws-Request-Id"], "req-h");
  EXPECT_EQ(call(http::Verb::post, "/2018-06-01/runtime/invocation/req-h/response", "{}").result_int(), 202u);
  EXPECT_EQ(outcome.get().status, InvokeStatus::kResponse);
}

// A runtime may send its result and its next /next in one write (HTTP/1.1
// pipelining; examples/hello-cpp does): both are served, in order, on the
// one connection. The invoker has the result at once; the 202 goes out with
// the next event, in one write.
TEST_F(SessionTest, PipelinedResponseAndNextAreServedInOrder) {
  namespace beast = boost::beast;
  auto ready = wait_ready(5s);
  boost::asio::io_context client_io;
  beast::tcp_stream stream(client_io);
  stream.connect(boost::asio::ip::tcp::endpoint{boost::asio::ip::make_address("127.0.0.1"), opened_.port});
  const std::string next = "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n";
  boost::asio::write(stream.socket(), boost::asio::buffer(next));
  ASSERT_EQ(ready.get().status, InitStatus::kReady);
  beast::flat_buffer buffer;
  // Bounded: a request the server dropped fails the read instead of hanging the test.
  const auto read = [&] {
    http::Response res;
    boost::system::error_code ec = boost::asio::error::timed_out;
    stream.expires_after(10s);
    beast::http::async_read(stream, buffer, res, [&ec](boost::system::error_code e, std::size_t) { ec = e; });
    client_io.restart();
    client_io.run();
    EXPECT_FALSE(ec) << ec.message();
    return res;
  };
  auto outcome = invoke(event("req-p1"), 5s);
  ASSERT_EQ(read()["Lambda-Runtime-Aws-Request-Id"], "req-p1");
  for (const std::string id : {"req-p1", "req-p2", "req-p3"}) {
    const std::string body = R"({"id":")" + id + R"("})";
    const std::string both = "POST /2018-06-01/runtime/invocation/" + id + "/response HTTP/1.1\r\nHost: x\r\n" +
                             "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body + next;
    boost::asio::write(stream.socket(), boost::asio::buffer(both));
    const auto out = outcome.get();  // before any answer was written
    EXPECT_EQ(out.status, InvokeStatus::kResponse);
    EXPECT_EQ(out.body, body);
    if (id == "req-p3") break;
    const std::string following = id == "req-p1" ? "req-p2" : "req-p3";
    outcome = invoke(event(following), 5s);
    EXPECT_EQ(read().result_int(), 202u);  // the POST's answer comes first
    ASSERT_EQ(read()["Lambda-Runtime-Aws-Request-Id"], following);
  }
}

TEST_F(SessionTest, WrongRequestIdIsRefusedAndErrorsCarryTheirType) {
  auto ready = wait_ready(5s);
  auto next = std::async(std::launch::async, [this] { return call(http::Verb::get, "/2018-06-01/runtime/invocation/next"); });
  ASSERT_EQ(ready.get().status, InitStatus::kReady);
  auto outcome = invoke(event("req-2"), 5s);
  ASSERT_EQ(next.get().result_int(), 200u);
  const auto wrong = call(http::Verb::post, "/2018-06-01/runtime/invocation/other/response", "{}");
  EXPECT_EQ(wrong.result_int(), 400u);
  EXPECT_NE(wrong.body().find("InvalidRequestID"), std::string::npos);
  const auto err = call(http::Verb::post, "/2018-06-01/runtime/invocation/req-2/error",
                        R"({"errorType":"ValueError","errorMessage":"bad"})");
  EXPECT_EQ(err.result_int(), 202u);
  const auto out = outcome.get();
  EXPECT_EQ(out.status, InvokeStatus::kFunctionError);
  EXPECT_EQ(out.error_type, "ValueError");
}

TEST_F(SessionTest, InitErrorIsReported) {
  auto ready = wait_ready(5s);
  const auto res = call(http::Verb::post, "/2018-06-01/runtime/init/error",
                        R"({"errorType":"Runtime.ImportModuleError","errorMessage":"Unable to import module 'app'"})");
  EXPECT_EQ(res.result_int(), 202u);
  const auto init = ready.get();
  EXPECT_EQ(init.status, InitStatus::kInitError);
  EXPECT_EQ(init.error_type, "Runtime.ImportModuleError");
}

TEST_F(SessionTest, TimeoutAndLateAnswerIsRefused) {
  auto ready = wait_ready(5s);
  auto next = std::async(std::launch::async, [this] { return call(http::Verb::get, "/2018-06-01/runtime/invocation/next"); });
  ASSERT_EQ(ready.get().status, InitStatus::kReady);
  auto outcome = invoke(event("slow"), 200ms);
  ASSERT_EQ(next.get().result_int(), 200u);
  EXPECT_EQ(outcome.get().status, InvokeStatus::kTimeout);
  EXPECT_EQ(call(http::Verb::post, "/2018-06-01/runtime/invocation/slow/response", "{}").result_int(), 400u);
}

TEST_F(SessionTest, OversizeResponseBecomesResponseTooLarge) {
  auto ready = wait_ready(5s);
  auto next = std::async(std::launch::async, [this] { return call(http::Verb::get, "/2018-06-01/runtime/invocation/next"); });
  ASSERT_EQ(ready.get().status, InitStatus::kReady);
  auto outcome = invoke(event("big"), 10s);
  ASSERT_EQ(next.get().result_int(), 200u);
  const auto res = call(http::Verb::post, "/2018-06-01/runtime/invocation/big/response",
                        "\"" + std::string(kMaxResponseBytes, 'x') + "\"");
  EXPECT_EQ(res.result_int(), 413u);
  EXPECT_EQ(outcome.get().status, InvokeStatus::kResponseTooLarge);
}

TEST_F(SessionTest, FailWakesEveryWaiter) {
  auto ready = wait_ready(10s);
  opened_.session->fail();
  EXPECT_EQ(ready.get().status, InitStatus::kExited);
  EXPECT_EQ(invoke(event("x"), 10s).get().status, InvokeStatus::kExited);
}

TEST_F(SessionTest, ListenersAreSeparatePerInstance) {
  auto other = api_->open(std::nullopt);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->port, opened_.port);
  auto ready = wait_ready(5s);
  auto next = std::async(std::launch::async, [this] { return call(http::Verb::get, "/2018-06-01/runtime/invocation/next"); });
  ASSERT_EQ(ready.get().status, InitStatus::kReady);
  auto outcome = invoke(event("mine"), 5s);
  ASSERT_EQ(next.get().result_int(), 200u);
  // The other instance's port cannot answer this instance's request.
  const auto stolen = call(http::Verb::post, "/2018-06-01/runtime/invocation/mine/response", "{}", other->port);
  EXPECT_EQ(stolen.result_int(), 400u);
  EXPECT_EQ(call(http::Verb::post, "/2018-06-01/runtime/invocation/mine/response", R"("ok")").result_int(), 202u);
  EXPECT_EQ(outcome.get().body, R"("ok")");
  api_->close(other->id);
}

// Many invocations in a row, each handed over between threads: every event
// reaches the runtime once and every answer the invoke it belongs to.
TEST_F(SessionTest, ManyHandOffsAcrossThreadsLoseNothing) {
  constexpr int kInvokes = 300;
  auto ready = wait_ready(5s);
  auto runtime = std::async(std::launch::async, [this] {
    int answered = 0;
    for (int i = 0; i < kInvokes; ++i) {
      const auto ev = call(http::Verb::get, "/2018-06-01/runtime/invocation/next");
      const std::string id(ev["Lambda-Runtime-Aws-Request-Id"]);
      const auto res = call(http::Verb::post, "/2018-06-01/runtime/invocation/" + id + "/response",
                            "\"" + id + ":" + ev.body() + "\"");
      if (res.result_int() == 202u) ++answered;
    }
    return answered;
  });
  ASSERT_EQ(ready.get().status, InitStatus::kReady);
  auto session = opened_.session;
  auto invoker = [](std::shared_ptr<RuntimeSession> s) -> boost::asio::awaitable<int> {
    int matched = 0;
    for (int i = 0; i < kInvokes; ++i) {
      const std::string id = "r" + std::to_string(i);
      const auto out = co_await s->invoke(event(id, std::to_string(i)), std::chrono::steady_clock::now() + 10s);
      if (out.status == InvokeStatus::kResponse && out.body == "\"" + id + ":" + std::to_string(i) + "\"") ++matched;
    }
    co_return matched;
  };
  auto matched = boost::asio::co_spawn(io_, invoker(session), boost::asio::use_future);
  EXPECT_EQ(matched.get(), kInvokes);
  EXPECT_EQ(runtime.get(), kInvokes);
}

// Deadlines that race the runtime's answers: an answer the runtime was told
// was accepted (202) always reaches its invoke, and a timed-out invoke's
// answer is refused (400). Nothing is lost or reaches the wrong invoke.
// Every third invoke surely times out (the runtime sleeps past its deadline),
// every third surely succeeds (a long deadline), and the rest race a short
// deadline, whatever this machine's (or a sanitizer build's) speed.
TEST_F(SessionTest, DeadlinesRacingAnswersKeepTheCount) {
  constexpr int kInvokes = 150;
  auto ready = wait_ready(5s);
  std::atomic<bool> done{false};
  auto runtime = std::async(std::launch::async, [this, &done] {
    int accepted = 0;
    int refused = 0;
    while (!done.load()) {
      const auto ev = call(http::Verb::get, "/2018-06-01/runtime/invocation/next");
      if (ev.result_int() != 200u) break;  // the session failed: the test is over
      const std::string id(ev["Lambda-Runtime-Aws-Request-Id"]);
      if (id.starts_with("late")) std::this_thread::sleep_for(20ms);
      const auto res = call(http::Verb::post, "/2018-06-01/runtime/invocation/" + id + "/response", "\"" + id + "\"");
      if (res.result_int() == 202u) ++accepted;
      else if (res.result_int() == 400u) ++refused;
    }
    return std::pair{accepted, refused};
  });
  ASSERT_EQ(ready.get().status, InitStatus::kReady);
  auto invoker = [](std::shared_ptr<RuntimeSession> s) -> boost::asio::awaitable<std::pair<int, int>> {
    int responses = 0;
    int timeouts = 0;
    for (int i = 0; i < kInvokes; ++i) {
      const int kind = i % 3;
      const std::string id = (kind == 0 ? "late" : "ontime") + std::to_string(i);
      const auto budget = kind == 0 ? std::chrono::microseconds(5ms) : kind == 1 ? std::chrono::microseconds(10s)
                                                                                 : std::chrono::microseconds(1500us);
      const auto out = co_await s->invoke(event(id), std::chrono::steady_clock::now() + budget);
      if (out.status == InvokeStatus::kResponse && out.body == "\"" + id + "\"") ++responses;
      if (out.status == InvokeStatus::kTimeout) ++timeouts;
    }
    co_return std::pair{responses, timeouts};
  };
  const auto [responses, timeouts] = boost::asio::co_spawn(io_, invoker(opened_.session), boost::asio::use_future).get();
  done = true;
  opened_.session->fail();  // ends the runtime's last /next
  const auto [accepted, refused] = runtime.get();
  EXPECT_EQ(responses + timeouts, kInvokes);
  EXPECT_EQ(accepted, responses);
  // A timed-out event was either refused when answered late, or taken back
  // before the runtime asked for it.
  EXPECT_LE(refused, timeouts);
  EXPECT_GE(responses, kInvokes / 3);
  EXPECT_GE(timeouts, kInvokes / 3);
}

TEST(PeerUid, KernelReportsTheConnectingSocketsOwner) {
  // Our own connection to our own listener: the owner is us.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  boost::asio::ip::tcp::socket client(io);
  client.connect(acceptor.local_endpoint());
  auto server_side = acceptor.accept();
  const auto uid = http::socket_owner_uid(server_side.local_endpoint(), server_side.remote_endpoint());
  ASSERT_TRUE(uid.has_value());
  EXPECT_EQ(*uid, ::getuid());
}

}  // namespace
}  // namespace nimbus::runtime_api
