#pragma once
// AsyncQueue: the durable queue of asynchronous invocations. enqueue()
// commits a row to the store before it completes, so the Lambda API answers
// 202 only for work that is kept. Group commit: one writer thread takes every
// write that arrived while the previous transaction was being committed and
// commits them together in one transaction (PRAGMA synchronous=FULL stays on),
// so fsync does not cap the accept rate. Each caller completes only when its
// batch is committed; a store error (SQLITE_FULL, ENOSPC, ...) fails every
// request of that batch and acknowledges none.
//
// The dispatcher claims due rows and writes outcomes through the same writer,
// so every write of async state is serialised on one thread. Reads (list,
// show) go straight to the store.
//
// Threads: enqueue(), write() and claim() are coroutines callable from any
// io thread; they complete on the caller's executor. write_blocking() is for
// callers outside coroutines (the control extension). Owned by the daemon:
// start() before use, stop() drains what was submitted and joins the writer.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "base/clock.h"
#include "base/result.h"
#include "events/metrics.h"
#include "store/store.h"

namespace nimbus::events {

namespace asio = boost::asio;

// Lambda's payload limit for InvocationType Event (the InvokeAsync-era 256 KB).
inline constexpr std::size_t kMaxEventPayload = 262144;

// What kind of work a row is.
enum class AsyncKind {
  kInvoke,       // Invoke with InvocationType Event
  kDestination,  // a destination function receiving an invocation record
};

struct AsyncRequest {
  std::string function;
  std::string qualifier;  // "" or "$LATEST", a version, an alias
  std::string payload;    // JSON text
  AsyncKind kind = AsyncKind::kInvoke;
  std::string source_id;  // kDestination: the invocation whose record this is
};

// The outcome of a submitted write, claim or prune, delivered on the caller's executor.
struct WriteOutcome {
  base::Status status = base::Ok{};
  std::vector<store::AsyncInvocationRow> rows;  // claim: the claimed rows
  std::int64_t pruned = 0;                      // prune: rows deleted
};

class AsyncQueue {
 public:
  // `metrics` may be null (tests).
  AsyncQueue(store::Store& store, const base::Clock& clock, EventsMetrics* metrics = nullptr);
  ~AsyncQueue();
  AsyncQueue(const AsyncQueue&) = delete;
  AsyncQueue& operator=(const AsyncQueue&) = delete;

  void start();
  // Commits what was submitted, then stops the writer; later calls fail.
  void stop();

  // Commits a new pending invocation; completes with its request id once
  // the row is durable, or with the store's error.
  [[nodiscard]] asio::awaitable<base::Result<std::string>> enqueue(AsyncRequest request);
  // A new row for `request`, due now (not yet written).
  [[nodiscard]] store::AsyncInvocationRow make_row(const AsyncRequest& request) const;
  // Commits `batch` (group-committed with whatever else is waiting).
  [[nodiscard]] asio::awaitable<base::Status> write(store::AsyncWriteBatch batch);
  [[nodiscard]] base::Status write_blocking(store::AsyncWriteBatch batch);
  // Claims up to `limit` due rows (marks them running).
  [[nodiscard]] asio::awaitable<WriteOutcome> claim(std::int64_t now_ms, std::size_t limit);
  // Deletes up to `limit` ended rows (Store::prune_async), on the writer so
  // that it never races a redrive of the same row.
  [[nodiscard]] asio::awaitable<WriteOutcome> prune(std::int64_t succeeded_before_ms, std::int64_t failed_before_ms,
                                                    std::size_t limit);

  // Called on the writer thread after each commit that inserted rows (the
  // dispatcher uses it to wake up). Set before start().
  void on_inserted(std::function<void()> callback) { on_inserted_ = std::move(callback); }

  // Commits and transactions made so far (for the benchmark and tests).
  [[nodiscard]] std::uint64_t transactions() const;

 private:
  // A batch merged into the next transaction, or (when `alone` is set) an
  // operation run by itself on the writer after that transaction.
  struct Item {
    store::AsyncWriteBatch batch;
    std::function<WriteOutcome()> alone;
    std::function<void(WriteOutcome)> done;  // runs on the writer thread
  };
  asio::awaitable<WriteOutcome> submit(Item item);
  void push(Item item);
  void run();

  store::Store& store_;
  const base::Clock& clock_;
  EventsMetrics* metrics_;
  std::function<void()> on_inserted_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> items_;          // GUARDED_BY(mu_)
  bool stopping_ = false;           // GUARDED_BY(mu_)
  std::uint64_t transactions_ = 0;  // GUARDED_BY(mu_)
  std::thread writer_;
};

// The JSON name of a kind ("invoke", "destination").
[[nodiscard]] std::string_view kind_name(AsyncKind kind);

}  // namespace nimbus::events
