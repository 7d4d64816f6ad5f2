#include "events/queue_attributes.h"

#include <array>
#include <cctype>
#include <charconv>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace nimbus::events {

using base::ErrorCode;
using base::make_error;

namespace {

struct IntRange {
  std::string_view name;
  std::int64_t min;
  std::int64_t max;
};

constexpr std::array<IntRange, 6> kIntegers = {{
    {"VisibilityTimeout", 0, 43200},
    {"MessageRetentionPeriod", 60, 1209600},
    {"DelaySeconds", 0, 900},
    {"MaximumMessageSize", 1024, 262144},
    {"ReceiveMessageWaitTimeSeconds", 0, 20},
    {"KmsDataKeyReusePeriodSeconds", 60, 86400},
}};

// Attributes kept verbatim (nimbus does not act on them).
constexpr std::array<std::string_view, 4> kPassThrough = {"Policy", "RedriveAllowPolicy", "KmsMasterKeyId",
                                                          "SqsManagedSseEnabled"};
constexpr std::array<std::string_view, 3> kFifoOnly = {"ContentBasedDeduplication", "DeduplicationScope",
                                                       "FifoThroughputLimit"};
constexpr std::array<std::string_view, 7> kReadOnly = {
    "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp", "LastModifiedTimestamp", "QueueArn", "RedrivePolicy"};

std::optional<std::int64_t> parse_int(std::string_view text) {
  std::int64_t v = 0;
  const auto* end = text.data() + text.size();
  const auto [p, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || p != end) return std::nullopt;
  return v;
}

base::Error invalid_value(std::string_view name) {
  return make_error(ErrorCode::kInvalidAttributeValue, fmt::format("Invalid value for the parameter {}.", name));
}

base::Result<std::string> normalise_redrive(const std::string& text) {
  const auto bad = [&](std::string_view reason) {
    return make_error(ErrorCode::kInvalidParameterValue,
                      fmt::format("Value {} for parameter RedrivePolicy is invalid. Reason: {}", text, reason));
  };
  if (text.empty()) return std::string();  // removes the policy
  const auto doc = nlohmann::json::parse(text, nullptr, false);
  if (!doc.is_object()) return bad("Redrive policy is not a valid JSON map.");
  const auto arn = doc.find("deadLetterTargetArn");
  const auto count = doc.find("maxReceiveCount");
  if (arn == doc.end() || !arn->is_string()) return bad("Redrive policy does not contain mandatory attribute: deadLetterTargetArn.");
  if (count == doc.end()) return bad("Redrive policy does not contain mandatory attribute: maxReceiveCount.");
  std::optional<std::int64_t> n;
  if (count->is_number_integer()) n = count->get<std::int64_t>();
  if (count->is_string()) n = parse_int(count->get<std::string>());
  if (!n || *n < 1 || *n > 1000) return bad("Invalid value for maxReceiveCount: must be between 1 and 1000.");
  for (const auto& [k, v] : doc.items()) {
    if (k != "deadLetterTargetArn" && k != "maxReceiveCount") {
      return bad(fmt::format("Only following attributes are supported: [deadLetterTargetArn, maxReceiveCount]."));
    }
  }
  return nlohmann::json{{"deadLetterTargetArn", arn->get<std::string>()}, {"maxReceiveCount", *n}}.dump();
}

}  // namespace

bool valid_queue_name(std::string_view name) {
  std::string_view base = name;
  if (base.ends_with(".fifo")) base.remove_suffix(5);
  if (base.empty() || name.size() > 80) return false;
  for (char c : base) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '-' && c != '_') return false;
  }
  return true;
}

bool known_attribute_name(std::string_view name) {
  for (const auto& r : kIntegers) {
    if (r.name == name) return true;
  }
  for (auto n : kPassThrough) {
    if (n == name) return true;
  }
  for (auto n : kFifoOnly) {
    if (n == name) return true;
  }
  for (auto n : kReadOnly) {
    if (n == name) return true;
  }
  return name == "FifoQueue";
}

base::Result<AttributeMap> normalise_attributes(const AttributeMap& attributes, bool fifo_queue, bool creating) {
  AttributeMap out;
  for (const auto& [name, value] : attributes) {
    bool handled = false;
    for (const auto& r : kIntegers) {
      if (r.name != name) continue;
      const auto v = parse_int(value);
      if (!v || *v < r.min || *v > r.max) return invalid_value(name);
      out[name] = std::to_string(*v);
      handled = true;
    }
    if (handled) continue;
    if (name == "RedrivePolicy") {
      NIMBUS_TRY(normalise_redrive(value));
      out[name] = normalise_redrive(value).value();
      continue;
    }
    if (name == "FifoQueue") {
      if (!creating) return make_error(ErrorCode::kInvalidAttributeName, "Unknown Attribute FifoQueue.");
      if (value != "true" && value != "false") return invalid_value(name);
      if ((value == "true") != fifo_queue) {
        return make_error(ErrorCode::kInvalidParameterValue,
                          "The name of a FIFO queue can only include alphanumeric characters, hyphens, or "
                          "underscores, must end with .fifo suffix and be 1 to 80 in length.");
      }
      continue;  // implied by the name
    }
    bool pass = false;
    for (auto n : kPassThrough) pass = pass || n == name;
    if (pass) {
      out[name] = value;
      continue;
    }
    bool fifo_only = false;
    for (auto n : kFifoOnly) fifo_only = fifo_only || n == name;
    if (fifo_only) {
      if (!fifo_queue) return make_error(ErrorCode::kInvalidAttributeName, fmt::format("Unknown Attribute {}.", name));
      if (name == "ContentBasedDeduplication" && value != "true" && value != "false") return invalid_value(name);
      if (name == "DeduplicationScope" && value != "messageGroup" && value != "queue") return invalid_value(name);
      if (name == "FifoThroughputLimit" && value != "perQueue" && value != "perMessageGroupId") {
        return invalid_value(name);
      }
      out[name] = value;
      continue;
    }
    return make_error(ErrorCode::kInvalidAttributeName, fmt::format("Unknown Attribute {}.", name));
  }
  if (creating && fifo_queue && !attributes.contains("FifoQueue")) {
    return make_error(ErrorCode::kInvalidParameterValue,
                      "The name of a FIFO queue can only include alphanumeric characters, hyphens, or "
                      "underscores, must end with .fifo suffix and be 1 to 80 in length.");
  }
  return out;
}

QueueSettings settings_from(const AttributeMap& attributes, bool fifo_queue) {
  QueueSettings s;
  s.fifo = fifo_queue;
  const auto number = [&](std::string_view name, std::int64_t& field) {
    const auto it = attributes.find(std::string(name));
    if (it == attributes.end()) return;
    if (const auto v = parse_int(it->second)) field = *v;
  };
  number("VisibilityTimeout", s.visibility_timeout_s);
  number("MessageRetentionPeriod", s.retention_s);
  number("DelaySeconds", s.delay_s);
  number("MaximumMessageSize", s.max_message_size);
  number("ReceiveMessageWaitTimeSeconds", s.receive_wait_s);
  if (const auto it = attributes.find("ContentBasedDeduplication"); it != attributes.end()) {
    s.content_based_dedup = it->second == "true";
  }
  if (const auto it = attributes.find("RedrivePolicy"); it != attributes.end() && !it->second.empty()) {
    const auto doc = nlohmann::json::parse(it->second, nullptr, false);
    if (doc.is_object()) {
      s.redrive = RedrivePolicy{doc.value("deadLetterTargetArn", std::string()),
                                doc.value("maxReceiveCount", std::int64_t{10})};
    }
  }
  return s;
}

}  // namespace nimbus::events
