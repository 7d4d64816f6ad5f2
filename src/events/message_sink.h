#pragma once
// MessageSink: where queue destinations and dead-letter queues are sent. The
// SQS-compatible queues implement it; until they are wired in, the
// dispatcher runs without one and records such deliveries as failed with
// kQueueDestinationsPending as the reason.
//
// Threads: send() is called from io threads and may block briefly (a store
// commit); implementations serialise internally.

#include <map>
#include <string>
#include <string_view>

#include "base/result.h"

namespace nimbus::events {

// An SQS message attribute (DataType "String" or "Number").
struct MessageAttribute {
  std::string data_type;
  std::string value;
};
using MessageAttributes = std::map<std::string, MessageAttribute>;

class MessageSink {
 public:
  virtual ~MessageSink() = default;
  // Sends one message to the queue `queue_arn` (arn:aws:sqs:REGION:ACCOUNT:NAME);
  // kResourceNotFound when there is no such queue.
  [[nodiscard]] virtual base::Status send(std::string_view queue_arn, std::string_view body,
                                          const MessageAttributes& attributes) = 0;
};

inline constexpr std::string_view kQueueDestinationsPending =
    "queue destinations arrive with the SQS queues";

}  // namespace nimbus::events
