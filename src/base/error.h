#pragma once
// Error codes of nimbus and the one table that maps each to what a Lambda
// client sees: the error type (x-amzn-ErrorType), the HTTP status and the
// casing of the message member in the JSON body.

#include <cstdint>
#include <string>
#include <string_view>

namespace nimbus::base {

enum class ErrorCode : std::uint8_t {
  kInvalidParameterValue,   // semantic check failed (runtime, sizes, qualifiers)
  kValidation,              // model constraint failed (range, pattern, enum)
  kResourceNotFound,        // function/version/alias/config missing
  kResourceConflict,        // exists already, update in progress
  kPreconditionFailed,      // RevisionId mismatch
  kRequestTooLarge,         // body over a limit (RequestEntityTooLargeException)
  kInvalidRequestContent,   // body is not JSON
  kTooManyRequests,         // throttled
  kInvalidSignature,        // SigV4 signature mismatch
  kUnrecognizedClient,      // unknown access key
  kAccessDenied,            // other account
  kMissingAuthentication,   // no Authorization header
  kNotImplemented,          // route that nimbus does not offer (yet)
  kProvisionedConfigNotFound,  // GetProvisionedConcurrencyConfig without one
  kService,                 // our fault or the environment's (disk, sqlite)
  // Queues (SQS-compatible API; shown on the Lambda API only when a queue is named there).
  kQueueDoesNotExist,       // unknown queue name or URL
  kQueueAlreadyExists,      // CreateQueue with other attribute values
  kInvalidAttributeName,    // unknown queue attribute
  kInvalidAttributeValue,   // queue attribute out of range or malformed
  kMissingParameter,        // a required SQS parameter is absent
  kInvalidAction,           // unknown SQS action / X-Amz-Target
  kInvalidMessageContents,  // body with characters SQS does not allow
  kEmptyBatchRequest,       // batch without entries
  kTooManyEntriesInBatch,   // more than 10 batch entries
  kBatchEntryIdsNotDistinct,
  kInvalidBatchEntryId,
  kBatchRequestTooLong,     // batch over the total size limit
  kReceiptHandleIsInvalid,  // forged, malformed or stale receipt handle
  kMessageNotInflight,      // ChangeMessageVisibility on a visible message
};

// How an ErrorCode is shown on the Lambda API.
struct ErrorShape {
  std::string_view type;          // x-amzn-ErrorType and exception name
  unsigned http_status;
  std::string_view message_key;   // "message" or "Message", as botocore's model says
  std::string_view fault;         // "User" or "Service"
};

[[nodiscard]] const ErrorShape& shape_of(ErrorCode code);

// How an ErrorCode is shown on the SQS-compatible API (botocore's sqs model):
// the query protocol's <Code>, the JSON protocol's __type shape name
// (com.amazonaws.sqs#<shape>), the HTTP status and Sender/Receiver.
struct SqsErrorShape {
  std::string_view query_code;   // e.g. AWS.SimpleQueueService.NonExistentQueue
  std::string_view json_shape;   // e.g. QueueDoesNotExist
  unsigned http_status;
  bool sender_fault;
};

[[nodiscard]] const SqsErrorShape& sqs_shape_of(ErrorCode code);

// An expected failure: a code and a message written for the user, naming
// what was wrong.
struct Error {
  ErrorCode code = ErrorCode::kService;
  std::string message;
};

}  // namespace nimbus::base
