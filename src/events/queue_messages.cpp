// QueueService's messages: sending, receiving (claims and long polling),
// deleting and changing visibility. The queues themselves, commits and
// waiting are in queue_service.cpp.

#include "events/queue_service.h"

#include <algorithm>
#include <chrono>
#include <future>
#include <set>

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

std::string sequence_text(std::uint64_t seq) { return fmt::format("{:020}", seq); }

base::Error parameter(std::string_view name, std::string_view value, std::string_view reason) {
  return make_error(ErrorCode::kInvalidParameterValue,
                    fmt::format("Value {} for parameter {} is invalid. Reason: {}", value, name, reason));
}

}  // namespace

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
    q->messages.emplace(m.row.seq, std::move(m));  // indexed once its write is queued
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
    unindex(*q, it->second);
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
  std::function<void()> offer = [&] { offer_uncommitted(name, prepared->seqs); };  // named: GCC 12 and co_await
  const base::Status committed = co_await commit(std::move(prepared->ops), std::move(offer));
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
  offer_uncommitted(*name, prepared->seqs);
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
    const std::size_t enough = static_cast<std::size_t>(request.max_messages) * 4 + 16;
    for (auto it = q->schedule.begin(); it != q->schedule.end() && it->first <= now; ++it) {
      candidates.push_back(it->second);
      if (candidates.size() >= enough) break;
    }
    if (request.take_uncommitted) {
      for (auto it = q->uncommitted.begin(); it != q->uncommitted.end() && it->first <= now; ++it) {
        if (candidates.size() >= enough) break;
        candidates.push_back(it->second);
      }
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
    co_await wait_for_messages(name, deadline, request.take_uncommitted);
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
