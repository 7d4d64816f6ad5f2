#include "events/async_queue.h"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <future>
#include <memory>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "base/crypto.h"

namespace nimbus::events {

using base::ErrorCode;
using base::make_error;

std::string_view kind_name(AsyncKind kind) {
  return kind == AsyncKind::kDestination ? "destination" : "invoke";
}

AsyncQueue::AsyncQueue(store::Store& store, const base::Clock& clock, EventsMetrics* metrics)
    : store_(store), clock_(clock), metrics_(metrics) {}

AsyncQueue::~AsyncQueue() { stop(); }

void AsyncQueue::start() {
  std::lock_guard lock(mu_);
  if (writer_.joinable()) return;
  stopping_ = false;
  writer_ = std::thread([this] { run(); });
}

void AsyncQueue::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

std::uint64_t AsyncQueue::transactions() const {
  std::lock_guard lock(mu_);
  return transactions_;
}

store::AsyncInvocationRow AsyncQueue::make_row(const AsyncRequest& request) const {
  store::AsyncInvocationRow row;
  row.id = base::uuid4();
  row.function = request.function;
  row.qualifier = request.qualifier;
  row.payload = request.payload.empty() ? "{}" : request.payload;
  row.state = "pending";
  const std::int64_t now = clock_.now_ms();
  row.next_attempt_ms = now;
  row.created_ms = now;
  row.updated_ms = now;
  nlohmann::json doc = {{"kind", kind_name(request.kind)}, {"age_base_ms", now}};
  if (!request.source_id.empty()) doc["source"] = request.source_id;
  row.document = doc.dump();
  return row;
}

void AsyncQueue::push(Item item) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      items_.push_back(std::move(item));
      cv_.notify_one();
      return;
    }
  }
  item.done(WriteOutcome{make_error(ErrorCode::kService, "nimbus is shutting down; the request was not kept"), {}, 0});
}

asio::awaitable<WriteOutcome> AsyncQueue::submit(Item item) {
  // The handler is move-only; the writer thread reaches it through a
  // shared_ptr and posts the completion to the handler's own executor.
  return asio::async_initiate<decltype(asio::use_awaitable), void(WriteOutcome)>(
      [this](auto handler, Item it) {
        using Handler = decltype(handler);
        auto shared = std::make_shared<Handler>(std::move(handler));
        // Tracked: the caller's io_context has outstanding work until the writer answers.
        auto ex = asio::prefer(asio::get_associated_executor(*shared), asio::execution::outstanding_work.tracked);
        it.done = [shared, ex](WriteOutcome outcome) {
          asio::post(ex, [shared, o = std::move(outcome)]() mutable { std::move (*shared)(std::move(o)); });
        };
        push(std::move(it));
      },
      asio::use_awaitable, std::move(item));
}

asio::awaitable<base::Result<std::string>> AsyncQueue::enqueue(AsyncRequest request) {
  store::AsyncInvocationRow row = make_row(request);
  std::string id = row.id;
  Item item;
  item.batch.inserts.push_back(std::move(row));
  WriteOutcome outcome = co_await submit(std::move(item));
  if (!outcome.status.ok()) {
    if (metrics_) metrics_->enqueue_errors.add();
    co_return std::move(outcome.status).error();
  }
  if (metrics_) {
    metrics_->enqueued.add();
    metrics_->queue_depth.add(1);
  }
  co_return id;
}

asio::awaitable<base::Status> AsyncQueue::write(store::AsyncWriteBatch batch) {
  Item item;
  item.batch = std::move(batch);
  WriteOutcome outcome = co_await submit(std::move(item));
  co_return std::move(outcome.status);
}

base::Status AsyncQueue::write_blocking(store::AsyncWriteBatch batch) {
  auto promise = std::make_shared<std::promise<base::Status>>();
  auto future = promise->get_future();
  Item item;
  item.batch = std::move(batch);
  item.done = [promise](WriteOutcome outcome) { promise->set_value(std::move(outcome.status)); };
  push(std::move(item));
  return future.get();
}

asio::awaitable<WriteOutcome> AsyncQueue::claim(std::int64_t now_ms, std::size_t limit) {
  Item item;
  item.alone = [this, now_ms, limit] {
    auto rows = store_.claim_async(now_ms, limit);
    if (!rows.ok()) return WriteOutcome{std::move(rows).error(), {}, 0};
    return WriteOutcome{base::Ok{}, std::move(*rows), 0};
  };
  co_return co_await submit(std::move(item));
}

asio::awaitable<WriteOutcome> AsyncQueue::prune(std::int64_t succeeded_before_ms, std::int64_t failed_before_ms,
                                                std::size_t limit) {
  Item item;
  item.alone = [this, succeeded_before_ms, failed_before_ms, limit] {
    auto pruned = store_.prune_async(succeeded_before_ms, failed_before_ms, limit);
    if (!pruned.ok()) return WriteOutcome{std::move(pruned).error(), {}, 0};
    return WriteOutcome{base::Ok{}, {}, *pruned};
  };
  co_return co_await submit(std::move(item));
}

void AsyncQueue::run() {
  for (;;) {
    std::deque<Item> items;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !items_.empty(); });
      if (items_.empty()) return;  // stopping and drained
      items.swap(items_);
    }
    // Everything that arrived while the last transaction committed goes
    // into this one.
    store::AsyncWriteBatch merged;
    std::size_t writes = 0;
    for (auto& item : items) {
      if (item.alone) continue;
      ++writes;
      for (auto& row : item.batch.inserts) merged.inserts.push_back(std::move(row));
      for (auto& row : item.batch.updates) merged.updates.push_back(std::move(row));
    }
    base::Status status = base::Ok{};
    if (writes > 0) {
      status = store_.write_async(merged);
      if (!status.ok()) spdlog::error("events: committing {} async writes failed: {}", writes, status.error().message);
      std::lock_guard lock(mu_);
      ++transactions_;
    }
    for (auto& item : items) {
      item.done(item.alone ? item.alone() : WriteOutcome{status, {}, 0});
    }
    if (status.ok() && !merged.inserts.empty() && on_inserted_) on_inserted_();
  }
}

}  // namespace nimbus::events
