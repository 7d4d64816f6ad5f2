#include "events/queue_service.h"

#include <algorithm>
#include <chrono>
#include <future>
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

namespace nimbus::events {

using base::ErrorCode;
using base::make_error;

struct QueueService::Message {
  MessageRow row;
  MessageAttributeMap attributes;
  std::string md5_of_body;
  bool pending = false;  // written, not yet committed: invisible to receivers
};

struct QueueService::Waiter {
  explicit Waiter(const asio::any_io_executor& ex) : timer(ex) {}
  std::string queue;
  std::function<void()> wake;  // set until fired (guarded by QueueService::mu_)
  asio::steady_timer timer;
};

struct QueueService::Queue {
  QueueRow row;
  QueueSettings settings;
  std::map<std::uint64_t, Message> messages;             // by seq
  std::unordered_map<std::string, std::uint64_t> by_id;  // id -> seq
  std::set<std::pair<std::int64_t, std::uint64_t>> schedule;  // (visible_at, seq), committed only
  std::unordered_map<std::string, DedupRow> dedup;       // FIFO
  std::vector<std::shared_ptr<Waiter>> waiters;
};

struct QueueService::PreparedSend {
  std::vector<base::Result<SendResult>> results;
  std::vector<std::uint64_t> seqs;  // messages inserted (pending)
  std::vector<QueueOp> ops;
};

struct QueueService::Claim {
  std::vector<ReceivedMessage> messages;
  std::vector<QueueOp> ops;
  std::vector<std::string> woken_queues;  // dead-letter queues that received messages
  std::int64_t wait_s = 0;
};

namespace {

bool is_fifo_name(std::string_view name) { return name.ends_with(".fifo"); }

// One operation as a batch (a braced list inside co_await trips GCC 12).
std::vector<QueueOp> single(QueueOp op) {
  std::vector<QueueOp> out;
  out.push_back(std::move(op));
  return out;
}

std::string sequence_text(std::uint64_t seq) { return fmt::format("{:020}", seq); }

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

base::Error no_queue() {
  return make_error(ErrorCode::kQueueDoesNotExist, "The specified queue does not exist.");
}

base::Error invalid_handle(std::string_view handle) {
  return make_error(ErrorCode::kReceiptHandleIsInvalid,
                    fmt::format("The input receipt handle \"{}\" is not a valid receipt handle.", handle));
}

base::Error parameter(std::string_view name, std::string_view value, std::string_view reason) {
  return make_error(ErrorCode::kInvalidParameterValue,
                    fmt::format("Value {} for parameter {} is invalid. Reason: {}", value, name, reason));
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
  if (!m.pending) q.schedule.emplace(m.row.visible_at_ms, m.row.seq);
}

void QueueService::unindex(Queue& q, const Message& m) { q.schedule.erase({m.row.visible_at_ms, m.row.seq}); }

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

asio::awaitable<base::Status> QueueService::commit(std::vector<QueueOp> ops) {
  if (ops.empty()) co_return base::Ok{};
  // State goes through the lambda's captures, not async_initiate's arguments
  // (GCC 12 mishandles temporaries in co_await expressions).
  auto batch = std::make_shared<std::vector<QueueOp>>(std::move(ops));
  auto init = [this, batch](auto handler) {
    auto shared = std::make_shared<decltype(handler)>(std::move(handler));
    commit_.submit(std::move(*batch), [shared](const base::Status& status) {
      auto ex = asio::get_associated_executor(*shared);
      asio::post(ex, asio::append(std::move(*shared), status));
    });
  };
  base::Status status =
      co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(base::Status)>(init, asio::use_awaitable);
  co_return status;
}

void QueueService::wake(Queue& q, std::vector<std::shared_ptr<Waiter>>& out) {
  for (auto& w : q.waiters) out.push_back(std::move(w));
  q.waiters.clear();
}

void QueueService::fire(std::vector<std::shared_ptr<Waiter>>& waiters) {
  for (auto& w : waiters) {
    if (w->wake) {
      auto f = std::move(w->wake);
      w->wake = nullptr;
      f();
    }
  }
  waiters.clear();
}

// Completes when a message may have become available in `name` (a send, a
// delete or visibility change, the next visibility deadline) or at until_ms.
asio::awaitable<void> QueueService::wait_for_messages(std::string name, std::int64_t until_ms) {
  auto init = [this, queue = std::move(name), until = until_ms](auto handler) {
    auto shared = std::make_shared<decltype(handler)>(std::move(handler));
    auto ex = asio::get_associated_executor(*shared);
    auto waiter = std::make_shared<Waiter>(asio::any_io_executor(ex));
    waiter->queue = queue;
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
        if (q->schedule.begin() != next) {
          now_ready.push_back(waiter);  // something is visible already
        } else if (next != q->schedule.end()) {
          due = std::min(due, next->first);
        }
        if (now_ready.empty()) q->waiters.push_back(waiter);
      }
      if (!now_ready.empty()) fire(now_ready);
    }
    if (!waiter->wake) return;  // already fired
    waiter->timer.expires_after(std::chrono::milliseconds(std::max<std::int64_t>(0, due - clock_.now_ms()) + 1));
    waiter->timer.async_wait([this, waiter](const boost::system::error_code&) {
      std::lock_guard lock(mu_);
      if (Queue* q = find(waiter->queue)) std::erase(q->waiters, waiter);
      std::vector<std::shared_ptr<Waiter>> one{waiter};
      fire(one);
    });
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

// --- send -------------------------------------------------------------------

base::Result<QueueService::PreparedSend> QueueService::prepare_send(const std::string& name,
                                                                    std::vector<SendRequest>& requests) {
  PreparedSend out;
  std::lock_guard lock(mu_);
  Queue* q = find(name);
  if (q == nullptr) return no_queue();
  const QueueSettings& s = q->settings;
  const std::int64_t now = clock_.now_ms();
  bool expired_dedup = false;
  for (auto& r : requests) {
    const auto fail = [&](base::Error e) { out.results.emplace_back(std::move(e)); };
    if (r.body.empty()) {
      fail(make_error(ErrorCode::kMissingParameter, "The request must contain the parameter MessageBody."));
      continue;
    }
    if (!valid_message_text(r.body)) {
      fail(make_error(ErrorCode::kInvalidMessageContents,
                      "Invalid characters found. The set of allowed characters is #x9 | #xA | #xD | #x20 to "
                      "#xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF"));
      continue;
    }
    if (auto v = validate_attributes(r.attributes); !v.ok()) {
      fail(std::move(v).error());
      continue;
    }
    if (static_cast<std::int64_t>(r.body.size() + attributes_size(r.attributes)) > s.max_message_size) {
      fail(make_error(ErrorCode::kInvalidParameterValue,
                      fmt::format("One or more parameters are invalid. Reason: Message must be shorter than {} bytes.",
                                  s.max_message_size)));
      continue;
    }
    if (r.delay_s && (*r.delay_s < 0 || *r.delay_s > 900)) {
      fail(parameter("DelaySeconds", std::to_string(*r.delay_s), "DelaySeconds must be >= 0 and <= 900."));
      continue;
    }
    if (s.fifo) {
      if (r.delay_s && *r.delay_s != 0) {
        fail(parameter("DelaySeconds", std::to_string(*r.delay_s),
                       "The request include parameter that is not valid for this queue type."));
        continue;
      }
      if (r.group_id.empty()) {
        fail(make_error(ErrorCode::kMissingParameter, "The request must contain the parameter MessageGroupId."));
        continue;
      }
      if (r.dedup_id.empty()) {
        if (!s.content_based_dedup) {
          fail(make_error(ErrorCode::kInvalidParameterValue,
                          "The queue should either have ContentBasedDeduplication enabled or "
                          "MessageDeduplicationId provided explicitly"));
          continue;
        }
        r.dedup_id = base::to_hex(base::sha256(r.body));
      }
    } else {
      if (!r.group_id.empty()) {
        fail(parameter("MessageGroupId", r.group_id,
                       "The request include parameter that is not valid for this queue type."));
        continue;
      }
      if (!r.dedup_id.empty()) {
        fail(parameter("MessageDeduplicationId", r.dedup_id,
                       "The request include parameter that is not valid for this queue type."));
        continue;
      }
    }
    SendResult result{{}, md5_of_body(r.body), md5_of_attributes(r.attributes), {}};
    if (s.fifo) {
      const auto it = q->dedup.find(r.dedup_id);
      if (it != q->dedup.end() && it->second.expires_ms > now) {
        result.message_id = it->second.message_id;
        result.sequence_number = sequence_text(it->second.seq);
        out.results.emplace_back(std::move(result));
        continue;
      }
      if (it != q->dedup.end()) {
        q->dedup.erase(it);
        expired_dedup = true;
      }
    }
    Message m;
    m.pending = true;
    m.row.queue = name;
    m.row.id = base::uuid4();
    m.row.seq = next_seq_++;
    m.row.sent_ms = now;
    m.row.visible_at_ms = now + 1000 * r.delay_s.value_or(s.delay_s);
    m.row.group_id = r.group_id;
    m.row.dedup_id = r.dedup_id;
    m.row.attributes = attributes_to_json(r.attributes);
    m.row.body = std::move(r.body);
    m.attributes = std::move(r.attributes);
    m.md5_of_body = result.md5_of_body;
    result.message_id = m.row.id;
    if (s.fifo) {
      result.sequence_number = sequence_text(m.row.seq);
      DedupRow d{name, m.row.dedup_id, m.row.id, m.row.seq, now + config_.dedup_window_ms};
      q->dedup[d.dedup_id] = d;
      out.ops.emplace_back(op::PutDedup{std::move(d)});
    }
    out.ops.emplace_back(op::InsertMessage{m.row});
    out.seqs.push_back(m.row.seq);
    q->by_id.emplace(m.row.id, m.row.seq);
    q->messages.emplace(m.row.seq, std::move(m));
    out.results.emplace_back(std::move(result));
  }
  if (expired_dedup) out.ops.emplace_back(op::ExpireDedup{now});
  return out;
}

void QueueService::finish_send(const std::string& name, const PreparedSend& prepared, const base::Status& committed) {
  std::vector<std::shared_ptr<Waiter>> woken;
  std::lock_guard lock(mu_);
  Queue* q = find(name);
  if (q == nullptr) return;
  for (std::uint64_t seq : prepared.seqs) {
    const auto it = q->messages.find(seq);
    if (it == q->messages.end()) continue;
    if (committed.ok()) {
      it->second.pending = false;
      index(*q, it->second);
    } else {
      q->by_id.erase(it->second.row.id);
      if (q->settings.fifo) q->dedup.erase(it->second.row.dedup_id);
      q->messages.erase(it);
    }
  }
  if (committed.ok()) wake(*q, woken);
  fire(woken);
}

asio::awaitable<base::Result<std::vector<base::Result<SendResult>>>> QueueService::send(
    std::string name, std::vector<SendRequest> requests) {
  auto prepared = prepare_send(name, requests);
  if (!prepared.ok()) co_return std::move(prepared).error();
  const base::Status committed = co_await commit(std::move(prepared->ops));
  finish_send(name, *prepared, committed);
  if (!committed.ok() && !prepared->seqs.empty()) co_return committed.error();
  co_return std::move(prepared->results);
}

base::Result<SendResult> QueueService::send_to_arn_blocking(std::string_view arn, std::string body,
                                                            MessageAttributeMap attributes) {
  auto name = name_from_arn(arn);
  if (!name.ok()) return std::move(name).error();
  std::vector<SendRequest> requests(1);
  requests[0].body = std::move(body);
  requests[0].attributes = std::move(attributes);
  if (name->ends_with(".fifo")) {
    requests[0].group_id = "nimbus";
    requests[0].dedup_id = base::uuid4();
  }
  auto prepared = prepare_send(*name, requests);
  if (!prepared.ok()) return std::move(prepared).error();
  std::promise<base::Status> promise;
  auto future = promise.get_future();
  commit_.submit(std::move(prepared->ops), [&promise](const base::Status& s) { promise.set_value(s); });
  const base::Status committed = future.get();
  finish_send(*name, *prepared, committed);
  if (!committed.ok()) return committed.error();
  return std::move(prepared->results.front());
}

// --- receive ----------------------------------------------------------------

base::Result<QueueService::Claim> QueueService::claim(const std::string& name, const ReceiveRequest& request) {
  Claim out;
  std::lock_guard lock(mu_);
  Queue* q = find(name);
  if (q == nullptr) return no_queue();
  const QueueSettings& s = q->settings;
  out.wait_s = request.wait_s.value_or(s.receive_wait_s);
  const std::int64_t now = clock_.now_ms();
  const std::int64_t visibility_ms = 1000 * request.visibility_s.value_or(s.visibility_timeout_s);
  Queue* dlq = nullptr;
  if (s.redrive) {
    if (auto dlq_name = name_from_arn(s.redrive->dead_letter_arn); dlq_name.ok()) dlq = find(*dlq_name);
  }

  // Candidates in delivery order: standard by visibility time, FIFO by
  // sequence with a group blocked while one of its messages is in flight.
  std::vector<std::uint64_t> candidates;
  if (!s.fifo) {
    for (auto it = q->schedule.begin(); it != q->schedule.end() && it->first <= now; ++it) {
      candidates.push_back(it->second);
      if (candidates.size() >= static_cast<std::size_t>(request.max_messages) * 4 + 16) break;
    }
  } else {
    std::set<std::string_view> blocked;
    for (const auto& [seq, m] : q->messages) {
      if (m.pending || blocked.contains(m.row.group_id)) continue;
      if (m.row.visible_at_ms > now) {
        blocked.insert(m.row.group_id);
        continue;
      }
      candidates.push_back(seq);
    }
  }
  for (std::uint64_t seq : candidates) {
    if (out.messages.size() >= static_cast<std::size_t>(request.max_messages)) break;
    auto it = q->messages.find(seq);
    if (it == q->messages.end()) continue;
    Message& m = it->second;
    if (m.row.sent_ms + 1000 * s.retention_s <= now) {  // retention ran out
      out.ops.emplace_back(op::DeleteMessage{name, m.row.id});
      unindex(*q, m);
      q->by_id.erase(m.row.id);
      q->messages.erase(it);
      continue;
    }
    if (dlq != nullptr && dlq != q && m.row.receive_count >= s.redrive->max_receive_count) {
      Message moved = std::move(m);
      unindex(*q, moved);
      q->by_id.erase(moved.row.id);
      q->messages.erase(it);
      moved.row.queue = dlq->row.name;
      moved.row.seq = next_seq_++;
      moved.row.visible_at_ms = now;
      moved.row.source_arn = queue_arn(name);
      out.ops.emplace_back(op::MoveMessage{name, moved.row});
      dlq->by_id.emplace(moved.row.id, moved.row.seq);
      auto& placed = dlq->messages.emplace(moved.row.seq, std::move(moved)).first->second;
      index(*dlq, placed);
      out.woken_queues.push_back(dlq->row.name);
      continue;
    }
    unindex(*q, m);
    m.row.receive_count += 1;
    if (m.row.first_receive_ms == 0) m.row.first_receive_ms = now;
    m.row.visible_at_ms = now + visibility_ms;
    index(*q, m);
    out.ops.emplace_back(op::UpdateMessage{name, m.row.id, m.row.visible_at_ms, m.row.receive_count,
                                           m.row.first_receive_ms});
    ReceivedMessage r{m.row.id, receipt_handle(name, m), m.row.body, m.md5_of_body, m.attributes, {}};
    auto& sys = r.system_attributes;
    sys["SenderId"] = config_.account_id;
    sys["SentTimestamp"] = std::to_string(m.row.sent_ms);
    sys["ApproximateReceiveCount"] = std::to_string(m.row.receive_count);
    sys["ApproximateFirstReceiveTimestamp"] = std::to_string(m.row.first_receive_ms);
    if (s.fifo) {
      sys["MessageGroupId"] = m.row.group_id;
      sys["MessageDeduplicationId"] = m.row.dedup_id;
      sys["SequenceNumber"] = sequence_text(m.row.seq);
    }
    if (!m.row.source_arn.empty()) sys["DeadLetterQueueSourceArn"] = m.row.source_arn;
    out.messages.push_back(std::move(r));
  }
  return out;
}

asio::awaitable<base::Result<std::vector<ReceivedMessage>>> QueueService::receive(std::string name,
                                                                                  ReceiveRequest request) {
  if (request.max_messages < 1 || request.max_messages > kMaxReceiveMessages) {
    co_return parameter("MaxNumberOfMessages", std::to_string(request.max_messages),
                        "Must be between 1 and 10, if provided.");
  }
  if (request.wait_s && (*request.wait_s < 0 || *request.wait_s > kMaxWaitSeconds)) {
    co_return parameter("WaitTimeSeconds", std::to_string(*request.wait_s), "Must be >= 0 and <= 20, if provided.");
  }
  if (request.visibility_s && (*request.visibility_s < 0 || *request.visibility_s > kMaxVisibilitySeconds)) {
    co_return parameter("VisibilityTimeout", std::to_string(*request.visibility_s),
                        "Must be between 0 and 43200, if provided.");
  }
  std::int64_t deadline = -1;
  for (;;) {
    auto claimed = claim(name, request);
    if (!claimed.ok()) co_return std::move(claimed).error();
    if (deadline < 0) deadline = clock_.now_ms() + 1000 * claimed->wait_s;
    if (!claimed->ops.empty()) {
      if (request.await_commit) {
        if (auto s = co_await commit(std::move(claimed->ops)); !s.ok()) co_return s.error();
      } else {
        commit_.submit(std::move(claimed->ops), [](const base::Status& s) {
          if (!s.ok()) spdlog::warn("queues: recording a receive failed (its messages become visible again): {}",
                                    s.error().message);
        });
      }
      std::vector<std::shared_ptr<Waiter>> woken;
      std::lock_guard lock(mu_);
      for (const auto& dlq : claimed->woken_queues) {
        if (Queue* q = find(dlq)) wake(*q, woken);
      }
      fire(woken);
    }
    bool releasing = false;
    {
      std::lock_guard lock(mu_);
      releasing = releasing_;
    }
    if (!claimed->messages.empty() || clock_.now_ms() >= deadline || releasing) {
      co_return std::move(claimed->messages);
    }
    co_await wait_for_messages(name, deadline);
  }
}

// --- delete and visibility -----------------------------------------------

asio::awaitable<base::Result<std::vector<base::Status>>> QueueService::delete_messages(
    std::string name, std::vector<std::string> handles) {
  std::vector<base::Status> results;
  std::vector<QueueOp> ops;
  {
    std::lock_guard lock(mu_);
    Queue* q = find(name);
    if (q == nullptr) co_return no_queue();
    for (const auto& handle : handles) {
      auto parts = parse_handle(handle);
      if (!parts.ok() || parts->queue != name) {
        results.emplace_back(invalid_handle(handle));
        continue;
      }
      const auto id = q->by_id.find(parts->id);
      if (id == q->by_id.end()) {
        results.emplace_back(base::Ok{});  // already deleted
        continue;
      }
      auto it = q->messages.find(id->second);
      if (it->second.row.receive_count != parts->receive_count) {
        results.emplace_back(make_error(ErrorCode::kReceiptHandleIsInvalid, "The receipt handle has expired."));
        continue;
      }
      unindex(*q, it->second);
      ops.emplace_back(op::DeleteMessage{name, parts->id});
      q->by_id.erase(id);
      q->messages.erase(it);
      results.emplace_back(base::Ok{});
    }
  }
  if (auto s = co_await commit(std::move(ops)); !s.ok()) co_return s.error();
  std::vector<std::shared_ptr<Waiter>> woken;
  std::lock_guard lock(mu_);
  if (Queue* q = find(name); q != nullptr && q->settings.fifo) wake(*q, woken);  // a group may be unblocked
  fire(woken);
  co_return results;
}

asio::awaitable<base::Result<std::vector<base::Status>>> QueueService::change_visibility(
    std::string name, std::vector<VisibilityChange> changes) {
  std::vector<base::Status> results;
  std::vector<QueueOp> ops;
  {
    std::lock_guard lock(mu_);
    Queue* q = find(name);
    if (q == nullptr) co_return no_queue();
    const std::int64_t now = clock_.now_ms();
    for (const auto& c : changes) {
      if (c.timeout_s < 0 || c.timeout_s > kMaxVisibilitySeconds) {
        results.emplace_back(parameter("VisibilityTimeout", std::to_string(c.timeout_s),
                                       "Must be between 0 and 43200, if provided."));
        continue;
      }
      auto parts = parse_handle(c.receipt_handle);
      if (!parts.ok() || parts->queue != name) {
        results.emplace_back(invalid_handle(c.receipt_handle));
        continue;
      }
      const auto id = q->by_id.find(parts->id);
      if (id == q->by_id.end()) {
        results.emplace_back(make_error(ErrorCode::kReceiptHandleIsInvalid, "The receipt handle has expired."));
        continue;
      }
      Message& m = q->messages.find(id->second)->second;
      if (m.row.receive_count != parts->receive_count) {
        results.emplace_back(make_error(ErrorCode::kReceiptHandleIsInvalid, "The receipt handle has expired."));
        continue;
      }
      if (m.row.visible_at_ms <= now) {
        results.emplace_back(make_error(ErrorCode::kMessageNotInflight,
                                        "Message does not exist or is not available for visibility timeout change."));
        continue;
      }
      unindex(*q, m);
      m.row.visible_at_ms = now + 1000 * c.timeout_s;
      index(*q, m);
      ops.emplace_back(op::UpdateMessage{name, m.row.id, m.row.visible_at_ms, m.row.receive_count,
                                         m.row.first_receive_ms});
      results.emplace_back(base::Ok{});
    }
  }
  if (auto s = co_await commit(std::move(ops)); !s.ok()) co_return s.error();
  std::vector<std::shared_ptr<Waiter>> woken;
  std::lock_guard lock(mu_);
  if (Queue* q = find(name)) wake(*q, woken);
  fire(woken);
  co_return results;
}

base::Status QueueMessageSink::send(std::string_view queue_arn, std::string_view body,
                                    const MessageAttributes& attributes) {
  MessageAttributeMap converted;
  for (const auto& [name, attr] : attributes) converted.emplace(name, MessageAttributeValue{attr.data_type, attr.value});
  auto sent = queues_.send_to_arn_blocking(queue_arn, std::string(body), std::move(converted));
  if (sent.ok()) return base::Ok{};
  base::Error e = std::move(sent).error();
  if (e.code == ErrorCode::kQueueDoesNotExist) {
    e = make_error(ErrorCode::kResourceNotFound, fmt::format("queue {} does not exist", queue_arn));
  }
  return e;
}

}  // namespace nimbus::events
