// QueueService over a real SQLite file in a temporary directory, driven with
// a ManualClock: visibility, redrive, FIFO order and dedup, receipt handles,
// persistence across a reopen, and the MD5s SQS computes.

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "events/queue_message.h"
#include "events/queue_service.h"
#include "events/queue_sqlite_store.h"

namespace nimbus::events {
namespace {

namespace fs = std::filesystem;

template <typename T>
asio::awaitable<void> store_into(asio::awaitable<T> task, std::optional<T>* out) {
  out->emplace(co_await std::move(task));
}

// Runs one awaitable to completion on a private io_context.
template <typename T>
T run(asio::awaitable<T> task) {
  asio::io_context io;
  std::optional<T> out;
  asio::co_spawn(io, store_into(std::move(task), &out), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  io.run();
  return std::move(*out);
}

class QueueServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("nimbus-queue-test-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    open();
  }
  void TearDown() override {
    close();
    fs::remove_all(dir_);
  }
  void open() {
    store_ = std::make_unique<SqliteQueueStore>(dir_ / "queues.db");
    ASSERT_TRUE(store_->open().ok());
    service_ = std::make_unique<QueueService>(*store_, clock_, QueueServiceConfig{});
    ASSERT_TRUE(service_->start().ok());
  }
  void close() {
    service_.reset();
    store_.reset();
  }
  void create(const std::string& name, AttributeMap attrs = {}) {
    auto s = run(service_->create_queue(name, std::move(attrs)));
    ASSERT_TRUE(s.ok()) << s.error().message;
  }
  SendResult send(const std::string& queue, std::string body, std::string group = {}, std::string dedup = {}) {
    std::vector<SendRequest> requests(1);
    requests[0].body = std::move(body);
    requests[0].group_id = std::move(group);
    requests[0].dedup_id = std::move(dedup);
    auto r = run(service_->send(queue, std::move(requests)));
    EXPECT_TRUE(r.ok());
    EXPECT_TRUE(r->front().ok()) << r->front().error().message;
    return r->front().value();
  }
  std::vector<ReceivedMessage> receive(const std::string& queue, int max = 10,
                                       std::optional<std::int64_t> visibility = std::nullopt) {
    ReceiveRequest req;
    req.max_messages = max;
    req.wait_s = 0;
    req.visibility_s = visibility;
    auto r = run(service_->receive(queue, req));
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? std::move(*r) : std::vector<ReceivedMessage>{};
  }
  std::vector<std::string> bodies(const std::vector<ReceivedMessage>& msgs) {
    std::vector<std::string> out;
    for (const auto& m : msgs) out.push_back(m.body);
    return out;
  }

  fs::path dir_;
  base::ManualClock clock_{1'700'000'000'000};
  std::unique_ptr<SqliteQueueStore> store_;
  std::unique_ptr<QueueService> service_;
};

TEST(QueueMd5Test, MatchesValuesSqsReturns) {
  EXPECT_EQ(md5_of_body("hello"), "5d41402abc4b2a76b9719d911017c592");
  EXPECT_EQ(md5_of_attributes({{"SellerName", {"String", "Example Store"}}}), "cd28f3b68aeee4b2eac9c66f2f694b58");
  EXPECT_EQ(md5_of_attributes({{"ordinal", {"Number", "1"}}, {"category", {"String", "test"}}}),
            "d21ae90c49061e927f57df5f5d72be1f");
  EXPECT_EQ(md5_of_attributes({{"timestamp", {"Number", "1493147359900"}}}), "235c5c510d26fb653d073faed50ae77c");
  EXPECT_EQ(md5_of_attributes({}), "");
}

TEST(QueueMessageTest, RejectsBadAttributesAndText) {
  EXPECT_FALSE(validate_attributes({{"AWS.x", {"String", "v"}}}).ok());
  EXPECT_FALSE(validate_attributes({{"n", {"Number", "abc"}}}).ok());
  EXPECT_FALSE(validate_attributes({{"n", {"Strin", "v"}}}).ok());
  EXPECT_FALSE(validate_attributes({{"n", {"String", ""}}}).ok());
  EXPECT_TRUE(validate_attributes({{"n.x-y_z", {"Number.int", "-1.5e3"}}}).ok());
  EXPECT_TRUE(valid_message_text("h\xc3\xa9llo\t\n"));
  EXPECT_FALSE(valid_message_text(std::string("a\x01", 2)));
  EXPECT_FALSE(valid_message_text("\xff"));
}

TEST_F(QueueServiceTest, VisibilityTimeoutHidesThenReturnsWithCount) {
  create("q");
  const auto sent = send("q", "body");
  auto first = receive("q", 10, 30);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].message_id, sent.message_id);
  EXPECT_EQ(first[0].system_attributes.at("ApproximateReceiveCount"), "1");
  EXPECT_TRUE(receive("q").empty());
  clock_.advance_ms(30'000);
  auto second = receive("q");
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].system_attributes.at("ApproximateReceiveCount"), "2");
  // The first handle is stale; a forged one is refused; the current one deletes.
  auto stale = run(service_->delete_messages("q", {first[0].receipt_handle}));
  ASSERT_TRUE(stale.ok());
  EXPECT_EQ(stale->front().error().code, base::ErrorCode::kReceiptHandleIsInvalid);
  std::string forged = second[0].receipt_handle;
  forged.back() = forged.back() == '0' ? '1' : '0';
  auto bad = run(service_->delete_messages("q", {forged}));
  EXPECT_EQ(bad->front().error().code, base::ErrorCode::kReceiptHandleIsInvalid);
  auto ok = run(service_->delete_messages("q", {second[0].receipt_handle}));
  EXPECT_TRUE(ok->front().ok());
  clock_.advance_ms(60'000);
  EXPECT_TRUE(receive("q").empty());
}

TEST_F(QueueServiceTest, DelaySecondsAndChangeVisibility) {
  create("d", {{"DelaySeconds", "5"}});
  send("d", "later");
  EXPECT_TRUE(receive("d").empty());
  auto attrs = service_->get_attributes("d", {"ApproximateNumberOfMessagesDelayed"});
  EXPECT_EQ(attrs->at("ApproximateNumberOfMessagesDelayed"), "1");
  clock_.advance_ms(5'000);
  auto got = receive("d");
  ASSERT_EQ(got.size(), 1u);
  auto changed = run(service_->change_visibility("d", {VisibilityChange{got[0].receipt_handle, 0}}));
  EXPECT_TRUE(changed->front().ok());
  auto again = receive("d");
  ASSERT_EQ(again.size(), 1u);
  clock_.advance_ms(31'000);
  auto not_inflight = run(service_->change_visibility("d", {VisibilityChange{again[0].receipt_handle, 10}}));
  EXPECT_EQ(not_inflight->front().error().code, base::ErrorCode::kMessageNotInflight);
}

TEST_F(QueueServiceTest, RedrivesAfterMaxReceiveCount) {
  create("dlq");
  create("src", {{"RedrivePolicy",
                  R"({"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":2})"}});
  send("src", "poison");
  EXPECT_EQ(receive("src", 10, 0).size(), 1u);
  EXPECT_EQ(receive("src", 10, 0).size(), 1u);
  EXPECT_TRUE(receive("src", 10, 0).empty());
  auto dead = receive("dlq");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].body, "poison");
  EXPECT_EQ(dead[0].system_attributes.at("DeadLetterQueueSourceArn"), "arn:aws:sqs:us-east-1:000000000000:src");
  auto missing = run(service_->create_queue(
      "src2", {{"RedrivePolicy", R"({"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:none",
                                     "maxReceiveCount":2})"}}));
  EXPECT_EQ(missing.error().code, base::ErrorCode::kInvalidParameterValue);
}

TEST_F(QueueServiceTest, FifoOrderPerGroupAndDedup) {
  create("f.fifo", {{"FifoQueue", "true"}});
  send("f.fifo", "a1", "a", "1");
  send("f.fifo", "b1", "b", "2");
  send("f.fifo", "a2", "a", "3");
  const auto dup = send("f.fifo", "a1 again", "a", "1");
  auto first = receive("f.fifo", 1);
  ASSERT_EQ(bodies(first), std::vector<std::string>{"a1"});
  EXPECT_EQ(dup.message_id, first[0].message_id);
  // Group a is blocked while a1 is in flight: only b1 comes.
  EXPECT_EQ(bodies(receive("f.fifo")), std::vector<std::string>{"b1"});
  EXPECT_TRUE(run(service_->delete_messages("f.fifo", {first[0].receipt_handle}))->front().ok());
  EXPECT_EQ(bodies(receive("f.fifo")), std::vector<std::string>{"a2"});
  // The dedup window is 5 minutes.
  clock_.advance_ms(5 * 60 * 1000 + 1);
  const auto fresh = send("f.fifo", "a1 later", "a", "1");
  EXPECT_NE(fresh.message_id, dup.message_id);
  // Content-based dedup needs the attribute.
  std::vector<SendRequest> requests(1);
  requests[0].body = "x";
  requests[0].group_id = "g";
  auto r = run(service_->send("f.fifo", std::move(requests)));
  EXPECT_EQ(r->front().error().code, base::ErrorCode::kInvalidParameterValue);
}

// A long poll that a send wakes ends there: its deadline timer goes with it,
// so the io_context runs out of work at once, not 20 s later (an event
// source mapping's poller waits again and again; the timers piled up).
TEST_F(QueueServiceTest, ALongPollWokenByASendLeavesNoTimerBehind) {
  create("q");
  ReceiveRequest req;
  req.max_messages = 1;
  req.wait_s = 20;
  auto polled = std::async(std::launch::async, [&] { return run(service_->receive("q", req)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the poll waits by now
  send("q", "wake");
  ASSERT_EQ(polled.wait_for(std::chrono::seconds(5)), std::future_status::ready)
      << "the poll's io_context still holds work after the message was handed out";
  auto got = polled.get();
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(bodies(*got), std::vector<std::string>{"wake"});
}

TEST_F(QueueServiceTest, CreateIsIdempotentAndValidates) {
  create("c", {{"VisibilityTimeout", "10"}});
  EXPECT_TRUE(run(service_->create_queue("c", {{"VisibilityTimeout", "10"}})).ok());
  EXPECT_EQ(run(service_->create_queue("c", {{"VisibilityTimeout", "11"}})).error().code,
            base::ErrorCode::kQueueAlreadyExists);
  EXPECT_EQ(run(service_->create_queue("v", {{"VisibilityTimeout", "43201"}})).error().code,
            base::ErrorCode::kInvalidAttributeValue);
  EXPECT_EQ(run(service_->create_queue("v", {{"Bogus", "1"}})).error().code, base::ErrorCode::kInvalidAttributeName);
  EXPECT_EQ(run(service_->create_queue("bad name", {})).error().code, base::ErrorCode::kInvalidParameterValue);
  EXPECT_EQ(run(service_->create_queue("x.fifo", {})).error().code, base::ErrorCode::kInvalidParameterValue);
}

TEST_F(QueueServiceTest, EverythingSurvivesReopen) {
  create("p");
  send("p", "one");
  send("p", "two");
  auto inflight = receive("p", 1, 20);
  ASSERT_EQ(inflight.size(), 1u);
  close();
  open();
  // The in-flight message keeps its visibility deadline and its receipt handle.
  EXPECT_EQ(bodies(receive("p")), std::vector<std::string>{"two"});
  clock_.advance_ms(20'000);
  auto back = receive("p");
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].body, inflight[0].body);
  EXPECT_EQ(back[0].system_attributes.at("ApproximateReceiveCount"), "2");
}

TEST_F(QueueServiceTest, EventSourceMappingDocumentsAreStoredWithTheQueues) {
  ASSERT_TRUE(run(service_->put_mapping(MappingRow{"u-1", R"({"a":1})"})).ok());
  ASSERT_TRUE(run(service_->put_mapping(MappingRow{"u-2", R"({"b":2})"})).ok());
  ASSERT_TRUE(run(service_->put_mapping(MappingRow{"u-1", R"({"a":3})"})).ok());  // replaces
  ASSERT_TRUE(run(service_->drop_mapping("u-2")).ok());
  close();
  open();
  const auto rows = service_->stored_mappings();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].uuid, "u-1");
  EXPECT_EQ(rows[0].document, R"({"a":3})");
}

TEST_F(QueueServiceTest, SendToArnForDestinations) {
  create("dest");
  auto sent = service_->send_to_arn_blocking("arn:aws:sqs:us-east-1:000000000000:dest", "{\"x\":1}");
  ASSERT_TRUE(sent.ok());
  EXPECT_EQ(receive("dest")[0].body, "{\"x\":1}");
  EXPECT_EQ(service_->send_to_arn_blocking("arn:aws:sqs:us-east-1:000000000000:nope", "x").error().code,
            base::ErrorCode::kQueueDoesNotExist);
}

// A store whose disk fills up on demand (apply fails as SQLITE_FULL would).
class FillableStore final : public QueueStore {
 public:
  explicit FillableStore(QueueStore& inner) : inner_(inner) {}
  base::Result<QueueSnapshot> load() override { return inner_.load(); }
  base::Status apply(std::span<const QueueOp> ops) override {
    if (full) return base::make_error(base::ErrorCode::kService, "queue store: database or disk is full");
    return inner_.apply(ops);
  }
  std::atomic<bool> full{false};

 private:
  QueueStore& inner_;
};

TEST_F(QueueServiceTest, FullDiskFailsTheSendAndKeepsNothing) {
  create("full");
  close();
  SqliteQueueStore sqlite(dir_ / "queues.db");
  ASSERT_TRUE(sqlite.open().ok());
  FillableStore store(sqlite);
  QueueService service(store, clock_, QueueServiceConfig{});
  ASSERT_TRUE(service.start().ok());
  store.full = true;
  std::vector<SendRequest> requests(1);
  requests[0].body = "lost?";
  auto sent = run(service.send("full", std::move(requests)));
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.error().code, base::ErrorCode::kService);
  store.full = false;
  ReceiveRequest req;
  req.wait_s = 0;
  auto got = run(service.receive("full", req));
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->empty());
  EXPECT_EQ(service.get_attributes("full", {"ApproximateNumberOfMessages"})->at("ApproximateNumberOfMessages"), "0");
}

// A store whose commits wait until the test opens the gate, then succeed or fail.
class GatedStore final : public QueueStore {
 public:
  explicit GatedStore(QueueStore& inner) : inner_(inner) {}
  base::Result<QueueSnapshot> load() override { return inner_.load(); }
  base::Status apply(std::span<const QueueOp> ops) override {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return open_; });
    if (fail_) return base::make_error(base::ErrorCode::kService, "queue store: database or disk is full");
    return inner_.apply(ops);
  }
  void open(bool fail) {
    std::lock_guard lock(mu_);
    open_ = true;
    fail_ = fail;
    cv_.notify_all();
  }

 private:
  QueueStore& inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  bool fail_ = false;
};

// A send and a receive that takes uncommitted messages, each on a thread of
// its own, over a store whose commits wait for the test.
class UncommittedTest : public QueueServiceTest {
 protected:
  void start_gated() {
    create("q");
    create("q.fifo", {{"FifoQueue", "true"}, {"ContentBasedDeduplication", "true"}});
    close();
    sqlite_ = std::make_unique<SqliteQueueStore>(dir_ / "queues.db");
    ASSERT_TRUE(sqlite_->open().ok());
    gated_ = std::make_unique<GatedStore>(*sqlite_);
    service_ = std::make_unique<QueueService>(*gated_, clock_, QueueServiceConfig{});
    ASSERT_TRUE(service_->start().ok());
  }
  void TearDown() override {
    if (service_) service_->release_waiters();  // a taker the test gave up on ends too
    if (gated_) gated_->open(false);
    for (const auto& join : joins_) join();
    service_.reset();
    gated_.reset();
    sqlite_.reset();
    QueueServiceTest::TearDown();
  }
  // Each call's thread is joined in TearDown, after the waiters are released
  // and the gate opened, so a test that gives up on one does not hang.
  std::shared_future<base::Result<std::vector<ReceivedMessage>>> receive_async(bool take_uncommitted,
                                                                              std::int64_t wait_s,
                                                                              std::string queue = "q") {
    ReceiveRequest req;
    req.wait_s = wait_s;
    req.await_commit = false;
    req.take_uncommitted = take_uncommitted;
    auto f = std::async(std::launch::async, [this, req, queue] { return run(service_->receive(queue, req)); }).share();
    joins_.emplace_back([f] { f.wait(); });
    return f;
  }
  std::shared_future<base::Result<std::vector<base::Result<SendResult>>>> send_async(std::string body,
                                                                                     std::string queue = "q") {
    auto f = std::async(std::launch::async, [this, body = std::move(body), queue] {
               std::vector<SendRequest> requests(1);
               requests[0].body = body;
               if (queue.ends_with(".fifo")) requests[0].group_id = "g";
               return run(service_->send(queue, std::move(requests)));
             }).share();
    joins_.emplace_back([f] { f.wait(); });
    return f;
  }

  std::unique_ptr<SqliteQueueStore> sqlite_;
  std::unique_ptr<GatedStore> gated_;
  std::vector<std::function<void()>> joins_;  // each holds a call's future until TearDown
};

TEST_F(UncommittedTest, ASendWakesItsTakerBeforeTheCommitAndNoOneElse) {
  start_gated();
  auto taker = receive_async(true, 2);  // waiting when the send comes
  auto sent = send_async("early");
  ASSERT_EQ(taker.wait_for(std::chrono::seconds(5)), std::future_status::ready) << "the send did not reach the taker";
  const auto got = taker.get();  // the commit is still held at the gate
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_EQ(bodies(*got), std::vector<std::string>{"early"});
  EXPECT_EQ(sent.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout) << "answered before the commit";
  // A plain receiver does not see it, and the next taker does not get it twice.
  EXPECT_TRUE(receive_async(false, 0).get()->empty());
  EXPECT_TRUE(receive_async(true, 0).get()->empty());
  gated_->open(false);
  const auto answer = sent.get();
  ASSERT_TRUE(answer.ok());
  ASSERT_TRUE(answer->front().ok());
  EXPECT_EQ(answer->front()->message_id, got->front().message_id);
  // Committed and in flight with the taker's visibility timeout: deleted by its handle.
  EXPECT_TRUE(receive("q").empty());
  auto deleted = run(service_->delete_messages("q", {got->front().receipt_handle}));
  ASSERT_TRUE(deleted.ok());
  EXPECT_TRUE(deleted->front().ok());
  clock_.advance_ms(3600 * 1000);
  EXPECT_TRUE(receive("q").empty());
  // And after a reopen nothing of it is left.
  service_.reset();
  gated_.reset();
  sqlite_.reset();
  open();
  EXPECT_TRUE(receive("q").empty());
}

TEST_F(UncommittedTest, AFailedCommitTakesTheMessageBackAndTheSendFails) {
  start_gated();
  auto sent = send_async("doomed");
  auto taker = receive_async(true, 2);
  ASSERT_EQ(taker.wait_for(std::chrono::seconds(5)), std::future_status::ready) << "the send did not reach the taker";
  const auto got = taker.get();
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_EQ(bodies(*got), std::vector<std::string>{"doomed"});
  gated_->open(true);  // the disk is full
  const auto answer = sent.get();
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.error().code, base::ErrorCode::kService);
  // Gone: not visible again later, and its handle deletes nothing.
  clock_.advance_ms(3600 * 1000);
  EXPECT_TRUE(receive_async(true, 0).get()->empty());
  auto deleted = run(service_->delete_messages("q", {got->front().receipt_handle}));
  ASSERT_TRUE(deleted.ok());
  EXPECT_TRUE(deleted->front().ok());  // already deleted, as SQS answers
  EXPECT_EQ(service_->get_attributes("q", {"ApproximateNumberOfMessages"})->at("ApproximateNumberOfMessages"), "0");
}

TEST_F(UncommittedTest, FifoQueuesHandOutOnlyCommittedMessages) {
  start_gated();
  auto sent = send_async("in order", "q.fifo");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the send's write is queued by then
  const auto got = receive_async(true, 0, "q.fifo").get();
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_TRUE(got->empty()) << "a FIFO message before its commit";
  gated_->open(false);
  ASSERT_TRUE(sent.get().ok());
  EXPECT_EQ(bodies(receive_async(true, 0, "q.fifo").get().value()), std::vector<std::string>{"in order"});
}

}  // namespace
}  // namespace nimbus::events
