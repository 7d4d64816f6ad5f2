#pragma once
// The message vocabulary of the queues: message attributes, their checks, and
// the MD5 digests SQS returns (MD5OfMessageBody, MD5OfMessageAttributes) so
// clients that verify them (aws-sdk-java, @aws-sdk/client-sqs) accept ours.
// Pure functions, callable from any thread.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "base/result.h"

namespace nimbus::events {

// One message attribute. `value` holds the string (String/Number types) or
// the raw bytes (Binary types; base64 only on the wire).
struct MessageAttributeValue {
  std::string data_type;  // String | Number | Binary, optionally with ".custom"
  std::string value;
  [[nodiscard]] bool binary() const { return data_type.starts_with("Binary"); }
  bool operator==(const MessageAttributeValue&) const = default;
};
// Sorted by name, as the MD5 needs them.
using MessageAttributeMap = std::map<std::string, MessageAttributeValue>;

// Lower-case hex MD5 of the body bytes.
[[nodiscard]] std::string md5_of_body(std::string_view body);
// SQS's MD5OfMessageAttributes: for each attribute in name order, the
// big-endian 4-byte length and bytes of name and data type, a transport byte
// (1 string, 2 binary) and the length and bytes of the value. Empty when none.
[[nodiscard]] std::string md5_of_attributes(const MessageAttributeMap& attributes);

// Checks names, types and values as SQS does (≤ 10 attributes, names of
// [A-Za-z0-9_.-] up to 256 characters, not AWS./Amazon. prefixed, values
// present, Number values numeric). Errors name the attribute.
[[nodiscard]] base::Status validate_attributes(const MessageAttributeMap& attributes);
// Bytes counted against MaximumMessageSize: names, types and values.
[[nodiscard]] std::size_t attributes_size(const MessageAttributeMap& attributes);
// Whether every character is one SQS accepts in a body (#x9 #xA #xD
// #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF, valid UTF-8).
[[nodiscard]] bool valid_message_text(std::string_view text);

// Storage form: {"name": {"DataType": .., "StringValue" | "BinaryValue" (base64): ..}}.
[[nodiscard]] std::string attributes_to_json(const MessageAttributeMap& attributes);
[[nodiscard]] MessageAttributeMap attributes_from_json(std::string_view text);

}  // namespace nimbus::events
