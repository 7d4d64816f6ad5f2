#pragma once
// QueueService's state (internal to the events part): what it keeps per
// queue and per message, and the errors both of its files answer with.
// queue_service.cpp holds the queues, commits and waiting; queue_messages.cpp
// sending, receiving, deleting and visibility changes.

#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "events/queue_service.h"

namespace nimbus::events {

struct QueueService::Message {
  MessageRow row;
  MessageAttributeMap attributes;
  std::string md5_of_body;
  bool pending = false;  // written, not yet committed: only receivers that take uncommitted ones see it
};

struct QueueService::Waiter {
  explicit Waiter(const asio::any_io_executor& ex) : timer(ex) {}
  std::string queue;
  std::function<void()> wake;  // set until fired (guarded by QueueService::mu_)
  asio::steady_timer timer;
  bool takes_uncommitted = false;  // ReceiveRequest::take_uncommitted: woken by a send before its commit
};

struct QueueService::Queue {
  QueueRow row;
  QueueSettings settings;
  std::map<std::uint64_t, Message> messages;             // by seq
  std::unordered_map<std::string, std::uint64_t> by_id;  // id -> seq
  std::set<std::pair<std::int64_t, std::uint64_t>> schedule;     // (visible_at, seq), committed only
  std::set<std::pair<std::int64_t, std::uint64_t>> uncommitted;  // (visible_at, seq), pending ones
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

namespace detail {

inline base::Error no_queue() {
  return base::make_error(base::ErrorCode::kQueueDoesNotExist, "The specified queue does not exist.");
}

inline base::Error invalid_handle(std::string_view handle) {
  return base::make_error(base::ErrorCode::kReceiptHandleIsInvalid,
                          fmt::format("The input receipt handle \"{}\" is not a valid receipt handle.", handle));
}

}  // namespace detail
}  // namespace nimbus::events
