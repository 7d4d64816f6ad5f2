#pragma once
// Queue attributes: the settable ones SQS knows, their ranges, and the typed
// settings QueueService works from. Attributes are kept as SQS shows them
// (name -> string); QueueSettings is derived from that map. Pure functions.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace nimbus::events {

using AttributeMap = std::map<std::string, std::string>;

struct RedrivePolicy {
  std::string dead_letter_arn;
  std::int64_t max_receive_count = 10;
};

struct QueueSettings {
  bool fifo = false;
  std::int64_t visibility_timeout_s = 30;     // 0..43200
  std::int64_t retention_s = 345600;          // 60..1209600 (4 days)
  std::int64_t delay_s = 0;                   // 0..900
  std::int64_t max_message_size = 262144;     // 1024..262144
  std::int64_t receive_wait_s = 0;            // 0..20
  bool content_based_dedup = false;           // FIFO only
  std::optional<RedrivePolicy> redrive;
};

// Whether `name` is a valid queue name (1-80 of [A-Za-z0-9_-], plus .fifo
// for FIFO queues).
[[nodiscard]] bool valid_queue_name(std::string_view name);

// Checks `attributes` as CreateQueue / SetQueueAttributes take them and
// returns them normalised (numbers without leading zeros, RedrivePolicy as
// compact JSON). `creating`: FifoQueue may be given (it is immutable after).
// Errors: kInvalidAttributeName for unknown names, kInvalidAttributeValue /
// kInvalidParameterValue for values out of range, naming the attribute.
[[nodiscard]] base::Result<AttributeMap> normalise_attributes(const AttributeMap& attributes, bool fifo_queue,
                                                              bool creating);

// The settings an attribute map (normalised) describes.
[[nodiscard]] QueueSettings settings_from(const AttributeMap& attributes, bool fifo_queue);

// The attribute names GetQueueAttributes accepts (besides All).
[[nodiscard]] bool known_attribute_name(std::string_view name);

}  // namespace nimbus::events
