// QueueService: the queues themselves (create, delete, attributes, purge),
// receipt handles, commits and waiting for messages. Sending, receiving,
// deleting and visibility changes are in queue_messages.cpp.

#include "events/queue_service.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <unordered_map>

#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/crypto.h"
#include "events/detail/queue_service_state.h"

namespace nimbus::events {

using base::ErrorCode;
using base::make_error;
using detail::invalid_handle;
using detail::no_queue;

namespace {

bool is_fifo_name(std::string_view name) { return name.ends_with(".fifo"); }

// One operation as a batch (a braced list inside co_await trips GCC 12).
std::vector<QueueOp> single(QueueOp op) {
  std::vector<QueueOp> out;
  out.push_back(std::move(op));
  return out;
}

// The attribute values a new queue starts with, as GetQueueAttributes shows them.
AttributeMap defaults(bool fifo) {
  AttributeMap a = {{"VisibilityTimeout", "30"},           {"MessageRetentionPeriod", "345600"},
                    {"DelaySeconds", "0"},                 {"MaximumMessageSize", "262144"},
                    {"ReceiveMessageWaitTimeSeconds", "0"}, {"SqsManagedSseEnabled", "false"}};
  if (fifo) {
    a["ContentBasedDeduplication"] = "false";
    a["DeduplicationScope"] = "queue";
    a["FifoThroughputLimit"] = "perQueue";
  }
  return a;
}

}  // namespace

QueueService::QueueService(QueueStore& store, const base::Clock& clock, QueueServiceConfig config)
    : store_(store), clock_(clock), config_(std::move(config)), commit_(store) {}

QueueService::~QueueService() { stop(); }

base::Status QueueService::start() {
  auto snap = store_.load();
  if (!snap.ok()) return std::move(snap).error();
  std::lock_guard lock(mu_);
  secret_ = snap->secret;
  for (auto& row : snap->queues) {
    auto q = std::make_unique<Queue>();
    q->settings = settings_from(row.attributes, is_fifo_name(row.name));
    q->row = std::move(row);
    queues_.emplace(q->row.name, std::move(q));
  }
  for (auto& row : snap->messages) {
    Queue* q = find(row.queue);
    if (q == nullptr) continue;
    next_seq_ = std::max(next_seq_, row.seq + 1);
    Message m;
    m.attributes = attributes_from_json(row.attributes);
    m.md5_of_body = md5_of_body(row.body);
    m.row = std::move(row);
    const std::uint64_t seq = m.row.seq;
    auto& stored = q->messages.emplace(seq, std::move(m)).first->second;
    q->by_id.emplace(stored.row.id, seq);
    index(*q, stored);
  }
  for (auto& d : snap->dedup) {
    if (Queue* q = find(d.queue)) q->dedup.emplace(d.dedup_id, d);
  }
  stored_mappings_ = std::move(snap->mappings);
  commit_.start();
  return base::Ok{};
}

std::vector<MappingRow> QueueService::stored_mappings() const {
  std::lock_guard lock(mu_);
  return stored_mappings_;
}

asio::awaitable<base::Status> QueueService::put_mapping(MappingRow row) {
  std::vector<QueueOp> ops;
  ops.emplace_back(op::PutMapping{std::move(row)});
  base::Status status = co_await commit(std::move(ops));
  co_return status;
}

asio::awaitable<base::Status> QueueService::drop_mapping(std::string uuid) {
  std::vector<QueueOp> ops;
  ops.emplace_back(op::DropMapping{std::move(uuid)});
  base::Status status = co_await commit(std::move(ops));
  co_return status;
}

void QueueService::release_waiters() {
  std::vector<std::shared_ptr<Waiter>> woken;
  std::lock_guard lock(mu_);
  releasing_ = true;
  for (auto& [name, q] : queues_) wake(*q, woken);
  fire(woken);
}

void QueueService::stop() { commit_.stop(); }

std::string QueueService::queue_arn(std::string_view name) const {
  return fmt::format("arn:aws:sqs:{}:{}:{}", config_.region, config_.account_id, name);
}

base::Result<std::string> QueueService::name_from_arn(std::string_view arn) const {
  const std::string prefix = fmt::format("arn:aws:sqs:{}:{}:", config_.region, config_.account_id);
  if (!arn.starts_with(prefix)) return no_queue();
  return std::string(arn.substr(prefix.size()));
}

QueueService::Queue* QueueService::find(std::string_view name) const {
  const auto it = queues_.find(name);
  return it == queues_.end() ? nullptr : it->second.get();
}

void QueueService::index(Queue& q, Message& m) {
  (m.pending ? q.uncommitted : q.schedule).emplace(m.row.visible_at_ms, m.row.seq);
}

void QueueService::unindex(Queue& q, const Message& m) {
  (m.pending ? q.uncommitted : q.schedule).erase({m.row.visible_at_ms, m.row.seq});
}

std::string QueueService::receipt_handle(const std::string& queue, const Message& m) const {
  const std::string payload = fmt::format("{}\n{}\n{}", queue, m.row.id, m.row.receive_count);
  const auto mac = base::hmac_sha256(secret_, payload);
  return base::base64_encode(payload) + "." + base::to_hex(mac).substr(0, 40);
}

base::Result<QueueService::HandleParts> QueueService::parse_handle(std::string_view handle) const {
  const auto dot = handle.rfind('.');
  if (dot == std::string_view::npos) return invalid_handle(handle);
  const auto payload = base::base64_decode(handle.substr(0, dot));
  if (!payload) return invalid_handle(handle);
  const auto mac = base::to_hex(base::hmac_sha256(secret_, *payload)).substr(0, 40);
  if (!base::constant_time_equal(mac, handle.substr(dot + 1))) return invalid_handle(handle);
  const auto a = payload->find('\n');
  const auto b = payload->rfind('\n');
  if (a == std::string::npos || a == b) return invalid_handle(handle);
  HandleParts parts{payload->substr(0, a), payload->substr(a + 1, b - a - 1), 0};
  parts.receive_count = std::strtoll(payload->c_str() + b + 1, nullptr, 10);
  return parts;
}

// --- commits and waiting -------------------------------------------------

asio::awaitable<base::Status> QueueService::commit(std::vector<QueueOp> ops, std::function<void()> queued) {
  if (ops.empty()) co_return base::Ok{};
  // State goes through the lambda's captures, not async_initiate's arguments
  // (GCC 12 mishandles temporaries in co_await expressions).
  auto batch = std::make_shared<std::vector<QueueOp>>(std::move(ops));
  auto init = [this, batch, queued = std::move(queued)](auto handler) {
    auto shared = std::make_shared<decltype(handler)>(std::move(handler));
    commit_.submit(std::move(*batch), [shared](const base::Status& status) {
      auto ex = asio::get_associated_executor(*shared);
      asio::post(ex, asio::append(std::move(*shared), status));
    });
    if (queued) queued();
  };
  base::Status status =
      co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(base::Status)>(init, asio::use_awaitable);
  co_return status;
}

void QueueService::wake(Queue& q, std::vector<std::shared_ptr<Waiter>>& out) {
  for (auto& w : q.waiters) out.push_back(std::move(w));
  q.waiters.clear();
}

void QueueService::offer_uncommitted(const std::string& name, const std::vector<std::uint64_t>& seqs) {
  std::vector<std::shared_ptr<Waiter>> woken;
  std::lock_guard lock(mu_);
  Queue* q = find(name);
  if (q == nullptr || q->settings.fifo) return;
  for (std::uint64_t seq : seqs) {
    const auto it = q->messages.find(seq);
    if (it != q->messages.end() && it->second.pending) index(*q, it->second);
  }
  std::erase_if(q->waiters, [&woken](std::shared_ptr<Waiter>& w) {
    if (!w->takes_uncommitted) return false;
    woken.push_back(std::move(w));
    return true;
  });
  fire(woken);
}

void QueueService::fire(std::vector<std::shared_ptr<Waiter>>& waiters) {
  for (auto& w : waiters) {
    if (w->wake) {
      auto f = std::move(w->wake);
      w->wake = nullptr;
      // Its deadline is moot: the timer's handler (which holds the waiter)
      // runs now instead of at the deadline, up to 20 s on.
      w->timer.cancel();
      f();
    }
  }
  waiters.clear();
}

// Completes when a message may have become available in `name` (a send, a
// delete or visibility change, the next visibility deadline) or at until_ms.
asio::awaitable<void> QueueService::wait_for_messages(std::string name, std::int64_t until_ms,
                                                     bool takes_uncommitted) {
  auto init = [this, queue = std::move(name), until = until_ms, takes_uncommitted](auto handler) {
    auto shared = std::make_shared<decltype(handler)>(std::move(handler));
    auto ex = asio::get_associated_executor(*shared);
    auto waiter = std::make_shared<Waiter>(asio::any_io_executor(ex));
    waiter->queue = queue;
    waiter->takes_uncommitted = takes_uncommitted;
    waiter->wake = [shared]() {
      auto hex = asio::get_associated_executor(*shared);
      asio::post(hex, std::move(*shared));
    };
    std::int64_t due = until;
    std::vector<std::shared_ptr<Waiter>> now_ready;
    {
      std::lock_guard lock(mu_);
      Queue* q = find(queue);
      if (q == nullptr || releasing_) {
        now_ready.push_back(waiter);
      } else {
        const std::int64_t now = clock_.now_ms();
        const auto next = q->schedule.upper_bound({now, UINT64_MAX});
        const bool uncommitted_visible =
            takes_uncommitted && !q->settings.fifo && !q->uncommitted.empty() && q->uncommitted.begin()->first <= now;
        if (q->schedule.begin() != next || uncommitted_visible) {
          now_ready.push_back(waiter);  // something is visible already
        } else if (next != q->schedule.end()) {
          due = std::min(due, next->first);
        }
        if (now_ready.empty()) q->waiters.push_back(waiter);
      }
      if (!now_ready.empty()) {
        fire(now_ready);
        return;
      }
      // Set up under mu_, as fire() cancels it under mu_: the timer's calls
      // never overlap.
      waiter->timer.expires_after(std::chrono::milliseconds(std::max<std::int64_t>(0, due - clock_.now_ms()) + 1));
      waiter->timer.async_wait([this, waiter](const boost::system::error_code&) {
        std::lock_guard held(mu_);
        if (Queue* waited_on = find(waiter->queue)) std::erase(waited_on->waiters, waiter);
        std::vector<std::shared_ptr<Waiter>> one{waiter};
        fire(one);
      });
    }
  };
  co_await asio::async_initiate<const asio::use_awaitable_t<>&, void()>(init, asio::use_awaitable);
}

// --- queues -----------------------------------------------------------------

base::Status QueueService::check_redrive_target(const AttributeMap& attributes, bool fifo) const {
  const auto settings = settings_from(attributes, fifo);
  if (!settings.redrive) return base::Ok{};
  auto target = name_from_arn(settings.redrive->dead_letter_arn);
  const Queue* dlq = target.ok() ? find(*target) : nullptr;
  if (dlq == nullptr) {
    return make_error(ErrorCode::kInvalidParameterValue,
                      fmt::format("Value {} for parameter RedrivePolicy is invalid. Reason: Dead letter target does "
                                  "not exist.",
                                  attributes.at("RedrivePolicy")));
  }
  if (dlq->settings.fifo != fifo) {
    return make_error(ErrorCode::kInvalidParameterValue,
                      fmt::format("Value {} for parameter RedrivePolicy is invalid. Reason: Dead-letter queue must "
                                  "be same type of queue as the source.",
                                  attributes.at("RedrivePolicy")));
  }
  return base::Ok{};
}

asio::awaitable<base::Status> QueueService::create_queue(std::string name, AttributeMap attributes) {
  if (!valid_queue_name(name)) {
    co_return make_error(ErrorCode::kInvalidParameterValue,
                         "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length");
  }
  const bool fifo = is_fifo_name(name);
  auto normal = normalise_attributes(attributes, fifo, /*creating=*/true);
  if (!normal.ok()) co_return std::move(normal).error();
  QueueRow row{name, defaults(fifo), clock_.now_ms(), 0};
  row.modified_ms = row.created_ms;
  for (auto& [k, v] : *normal) row.attributes[k] = v;
  {
    std::lock_guard lock(mu_);
    if (const Queue* existing = find(name)) {
      for (const auto& [k, v] : *normal) {
        const auto it = existing->row.attributes.find(k);
        if (it == existing->row.attributes.end() || it->second != v) {
          co_return make_error(ErrorCode::kQueueAlreadyExists,
                               fmt::format("A queue already exists with the same name and a different value for "
                                           "attribute {}",
                                           k));
        }
      }
      co_return base::Ok{};
    }
    if (auto s = check_redrive_target(row.attributes, fifo); !s.ok()) co_return s;
  }
  std::vector<QueueOp> ops = single(op::PutQueue{row});
  const base::Status committed = co_await commit(std::move(ops));
  if (!committed.ok()) co_return committed;
  std::lock_guard lock(mu_);
  if (find(name) == nullptr) {
    auto q = std::make_unique<Queue>();
    q->settings = settings_from(row.attributes, fifo);
    q->row = std::move(row);
    queues_.emplace(name, std::move(q));
  }
  co_return base::Ok{};
}

asio::awaitable<base::Status> QueueService::delete_queue(std::string name) {
  if (auto s = queue_exists(name); !s.ok()) co_return s;
  std::vector<QueueOp> ops = single(op::DropQueue{name});
  const base::Status committed = co_await commit(std::move(ops));
  if (!committed.ok()) co_return committed;
  std::vector<std::shared_ptr<Waiter>> woken;
  {
    std::lock_guard lock(mu_);
    const auto it = queues_.find(name);
    if (it != queues_.end()) {
      wake(*it->second, woken);
      queues_.erase(it);
    }
    fire(woken);
  }
  co_return base::Ok{};
}

base::Status QueueService::queue_exists(std::string_view name) const {
  std::lock_guard lock(mu_);
  if (find(name) == nullptr) return no_queue();
  return base::Ok{};
}

std::vector<std::string> QueueService::list_queues(std::string_view prefix, std::string_view after,
                                                   std::size_t max) const {
  std::vector<std::string> out;
  std::lock_guard lock(mu_);
  for (auto it = after.empty() ? queues_.begin() : queues_.upper_bound(after); it != queues_.end(); ++it) {
    if (!it->first.starts_with(prefix)) continue;
    if (out.size() == max) break;
    out.push_back(it->first);
  }
  return out;
}

base::Result<AttributeMap> QueueService::get_attributes(std::string_view name,
                                                        const std::vector<std::string>& names) const {
  const bool all = std::find(names.begin(), names.end(), "All") != names.end();
  for (const auto& n : names) {
    if (n != "All" && !known_attribute_name(n)) {
      return make_error(ErrorCode::kInvalidAttributeName, fmt::format("Unknown Attribute {}.", n));
    }
  }
  std::lock_guard lock(mu_);
  const Queue* q = find(name);
  if (q == nullptr) return no_queue();
  AttributeMap full = q->row.attributes;
  const std::int64_t now = clock_.now_ms();
  std::int64_t visible = 0;
  std::int64_t in_flight = 0;
  std::int64_t delayed = 0;
  for (const auto& [seq, m] : q->messages) {
    if (m.pending) continue;
    if (m.row.visible_at_ms <= now) {
      ++visible;
    } else if (m.row.receive_count > 0) {
      ++in_flight;
    } else {
      ++delayed;
    }
  }
  full["ApproximateNumberOfMessages"] = std::to_string(visible);
  full["ApproximateNumberOfMessagesNotVisible"] = std::to_string(in_flight);
  full["ApproximateNumberOfMessagesDelayed"] = std::to_string(delayed);
  full["CreatedTimestamp"] = std::to_string(q->row.created_ms / 1000);
  full["LastModifiedTimestamp"] = std::to_string(q->row.modified_ms / 1000);
  full["QueueArn"] = queue_arn(name);
  if (q->settings.fifo) full["FifoQueue"] = "true";
  if (all) return full;
  AttributeMap out;
  for (const auto& n : names) {
    if (const auto it = full.find(n); it != full.end()) out[n] = it->second;
  }
  return out;
}

asio::awaitable<base::Status> QueueService::set_attributes(std::string name, AttributeMap attributes) {
  QueueRow row;
  {
    std::lock_guard lock(mu_);
    const Queue* q = find(name);
    if (q == nullptr) co_return no_queue();
    auto normal = normalise_attributes(attributes, q->settings.fifo, /*creating=*/false);
    if (!normal.ok()) co_return std::move(normal).error();
    row = q->row;
    for (auto& [k, v] : *normal) {
      if (v.empty() && k == "RedrivePolicy") {
        row.attributes.erase(k);
      } else {
        row.attributes[k] = v;
      }
    }
    if (auto s = check_redrive_target(row.attributes, q->settings.fifo); !s.ok()) co_return s;
    row.modified_ms = clock_.now_ms();
  }
  std::vector<QueueOp> ops = single(op::PutQueue{row});
  const base::Status committed = co_await commit(std::move(ops));
  if (!committed.ok()) co_return committed;
  std::lock_guard lock(mu_);
  if (Queue* q = find(name)) {
    q->settings = settings_from(row.attributes, q->settings.fifo);
    q->row = std::move(row);
  }
  co_return base::Ok{};
}

asio::awaitable<base::Status> QueueService::purge(std::string name) {
  if (auto s = queue_exists(name); !s.ok()) co_return s;
  std::vector<QueueOp> ops = single(op::Purge{name});
  const base::Status committed = co_await commit(std::move(ops));
  if (!committed.ok()) co_return committed;
  std::lock_guard lock(mu_);
  if (Queue* q = find(name)) {
    std::erase_if(q->messages, [](const auto& kv) { return !kv.second.pending; });
    q->schedule.clear();
    q->by_id.clear();
    for (const auto& [seq, m] : q->messages) q->by_id.emplace(m.row.id, seq);
  }
  co_return base::Ok{};
}

}  // namespace nimbus::events
