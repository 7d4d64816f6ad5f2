#include "events/async_queue.h"

#include <gtest/gtest.h>

#include <map>

#include <sqlite3.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <set>

#include "store/sqlite_store.h"

namespace nimbus::events {
namespace {

namespace asio = boost::asio;

class AsyncQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("nimbus-events-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    store_ = std::make_unique<store::SqliteStore>(dir_ / "nimbus.db");
    ASSERT_TRUE(store_->open().ok());
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Enqueues `n` invocations concurrently; returns the outcome of each.
  std::vector<base::Result<std::string>> enqueue_many(AsyncQueue& queue, int n) {
    std::vector<base::Result<std::string>> results;
    asio::io_context io;
    for (int i = 0; i < n; ++i) {
      asio::co_spawn(io, enqueue_one(queue, i, &results), [](std::exception_ptr e) { ASSERT_FALSE(e); });
    }
    io.run();
    return results;
  }

  static asio::awaitable<void> enqueue_one(AsyncQueue& queue, int i, std::vector<base::Result<std::string>>* out) {
    // A named request: GCC 12 double-destroys braced temporaries passed to a coroutine.
    AsyncRequest request{"f", "", "{\"i\":" + std::to_string(i) + "}"};
    out->push_back(co_await queue.enqueue(std::move(request)));
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::SqliteStore> store_;
  base::ManualClock clock_{1'000'000};
};

TEST_F(AsyncQueueTest, ConcurrentEnqueuesAreGroupCommitted) {
  AsyncQueue queue(*store_, clock_);
  queue.start();
  const auto results = enqueue_many(queue, 300);
  queue.stop();
  ASSERT_EQ(results.size(), 300u);
  std::set<std::string> ids;
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.error().message;
    ids.insert(*r);
  }
  EXPECT_EQ(ids.size(), 300u);
  // Every acknowledged id is in the store, pending.
  for (const auto& id : ids) {
    auto row = store_->get_async(id);
    ASSERT_TRUE(row.ok());
    EXPECT_EQ(row->state, "pending");
    EXPECT_EQ(row->function, "f");
  }
  // Fewer transactions than requests: they were batched.
  EXPECT_LT(queue.transactions(), 300u);
}

TEST_F(AsyncQueueTest, ClaimMarksDueRowsRunningAndRestartRequeuesThem) {
  AsyncQueue queue(*store_, clock_);
  queue.start();
  ASSERT_EQ(enqueue_many(queue, 5).size(), 5u);
  // A row due later is not claimed.
  auto later = queue.make_row(AsyncRequest{"g", "", "{}"});
  later.next_attempt_ms = clock_.now_ms() + 60'000;
  store::AsyncWriteBatch batch;
  batch.inserts.push_back(later);
  ASSERT_TRUE(queue.write_blocking(batch).ok());

  asio::io_context io;
  WriteOutcome claimed;
  asio::co_spawn(io, queue.claim(clock_.now_ms(), 3), [&claimed](std::exception_ptr, WriteOutcome o) {
    claimed = std::move(o);
  });
  io.run();
  ASSERT_TRUE(claimed.status.ok());
  ASSERT_EQ(claimed.rows.size(), 3u);
  for (const auto& row : claimed.rows) EXPECT_EQ(store_->get_async(row.id)->state, "running");
  auto rest = store_->claim_async(clock_.now_ms(), 10);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->size(), 2u);  // not the later one
  queue.stop();

  // After a crash every running row is pending again.
  auto requeued = store_->requeue_running_async();
  ASSERT_TRUE(requeued.ok());
  EXPECT_EQ(*requeued, 5);
  auto counts = store_->count_async();
  ASSERT_TRUE(counts.ok());
  ASSERT_EQ(counts->size(), 1u);
  EXPECT_EQ(counts->front().first, "pending");
  EXPECT_EQ(counts->front().second, 6);
}

TEST_F(AsyncQueueTest, AStoreErrorFailsTheRequestAndKeepsNothing) {
  AsyncQueue queue(*store_, clock_);
  queue.start();
  // Break the table from a second connection: every commit now fails.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "nimbus.db").c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "DROP TABLE async_invocations", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  const auto results = enqueue_many(queue, 10);
  queue.stop();
  ASSERT_EQ(results.size(), 10u);
  for (const auto& r : results) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, base::ErrorCode::kService);
    EXPECT_NE(r.error().message.find("async invocation"), std::string::npos) << r.error().message;
  }
}

TEST_F(AsyncQueueTest, WritesAfterStopAreRefused) {
  AsyncQueue queue(*store_, clock_);
  queue.start();
  queue.stop();
  const auto results = enqueue_many(queue, 1);
  ASSERT_EQ(results.size(), 1u);
  ASSERT_FALSE(results[0].ok());
  EXPECT_NE(results[0].error().message.find("shutting down"), std::string::npos);
  EXPECT_EQ(store_->list_async("", "", 0, 10)->size(), 0u);
}

TEST_F(AsyncQueueTest, ListFiltersByFunctionAndStateNewestFirst) {
  AsyncQueue queue(*store_, clock_);
  queue.start();
  store::AsyncWriteBatch batch;
  for (const char* fn : {"a", "b", "a"}) batch.inserts.push_back(queue.make_row(AsyncRequest{fn, "", "{}"}));
  batch.inserts.back().state = "failed";
  ASSERT_TRUE(queue.write_blocking(batch).ok());
  queue.stop();
  auto a = store_->list_async("a", "", 0, 10);
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->size(), 2u);
  EXPECT_GT((*a)[0].seq, (*a)[1].seq);
  EXPECT_EQ(store_->list_async("", "failed", 0, 10)->size(), 1u);
  EXPECT_EQ(store_->list_async("", "", (*a)[0].seq, 10)->size(), 2u);
}

// Pruning deletes ended rows past their keep time, oldest first and at most
// `limit`, through the writer; pending, running and recent rows stay.
TEST_F(AsyncQueueTest, PruneDeletesOnlyEndedRowsPastTheirKeepTime) {
  AsyncQueue queue(*store_, clock_);
  queue.start();
  store::AsyncWriteBatch batch;
  const auto row = [&](const char* state, std::int64_t updated_ms) {
    auto r = queue.make_row(AsyncRequest{"f", "", "{}"});
    r.state = state;
    r.updated_ms = updated_ms;
    batch.inserts.push_back(r);
  };
  row("succeeded", 100);  // old: goes
  row("succeeded", 200);  // old: goes
  row("succeeded", 900);  // recent: stays
  row("failed", 100);     // failed keep longer: stays at the first cut
  row("pending", 100);
  row("running", 100);
  ASSERT_TRUE(queue.write_blocking(batch).ok());

  const auto prune = [&](std::int64_t succeeded_before, std::int64_t failed_before, std::size_t limit) {
    asio::io_context io;
    WriteOutcome out;
    asio::co_spawn(io, queue.prune(succeeded_before, failed_before, limit),
                   [&out](std::exception_ptr, WriteOutcome o) { out = std::move(o); });
    io.run();
    EXPECT_TRUE(out.status.ok());
    return out.pruned;
  };
  EXPECT_EQ(prune(500, 50, 1), 1);  // the limit holds
  EXPECT_EQ(prune(500, 50, 10), 1);
  EXPECT_EQ(prune(500, 50, 10), 0);
  EXPECT_EQ(store_->list_async("", "succeeded", 0, 10)->size(), 1u);
  EXPECT_EQ(prune(500, 150, 10), 1);  // now the failed one
  queue.stop();
  const auto counted = store_->count_async();
  ASSERT_TRUE(counted.ok());
  std::map<std::string, std::int64_t> counts;
  for (const auto& [state, n] : *counted) counts[state] = n;
  EXPECT_EQ(counts, (std::map<std::string, std::int64_t>{{"pending", 1}, {"running", 1}, {"succeeded", 1}}));
}

}  // namespace
}  // namespace nimbus::events
