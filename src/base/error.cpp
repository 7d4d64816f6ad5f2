#include "base/error.h"

#include <array>

namespace nimbus::base {
namespace {

// Indexed by ErrorCode. Types and message casing from botocore's Lambda model
// (shared/reference/lambda-api.md §1.4, §4.1).
constexpr std::array<ErrorShape, 29> kShapes = {{
    {"InvalidParameterValueException", 400, "message", "User"},
    {"ValidationException", 400, "message", "User"},
    {"ResourceNotFoundException", 404, "Message", "User"},
    {"ResourceConflictException", 409, "message", "User"},
    {"PreconditionFailedException", 412, "message", "User"},
    {"RequestEntityTooLargeException", 413, "message", "User"},
    {"InvalidRequestContentException", 400, "message", "User"},
    {"TooManyRequestsException", 429, "message", "User"},
    {"InvalidSignatureException", 403, "message", "User"},
    {"UnrecognizedClientException", 403, "message", "User"},
    {"AccessDeniedException", 403, "Message", "User"},
    {"MissingAuthenticationTokenException", 403, "message", "User"},
    {"NotImplementedException", 501, "message", "User"},
    {"ProvisionedConcurrencyConfigNotFoundException", 404, "message", "User"},
    {"ServiceException", 500, "Message", "Service"},
    {"InvalidParameterValueException", 400, "message", "User"},  // queue does not exist
    {"ResourceConflictException", 409, "message", "User"},
    {"InvalidParameterValueException", 400, "message", "User"},
    {"InvalidParameterValueException", 400, "message", "User"},
    {"InvalidParameterValueException", 400, "message", "User"},
    {"InvalidParameterValueException", 400, "message", "User"},
    {"InvalidParameterValueException", 400, "message", "User"},
    {"InvalidParameterValueException", 400, "message", "User"},
    {"InvalidParameterValueException", 400, "message", "User"},
    {"InvalidParameterValueException", 400, "message", "User"},
    {"InvalidParameterValueException", 400, "message", "User"},
    {"RequestEntityTooLargeException", 413, "message", "User"},
    {"InvalidParameterValueException", 400, "message", "User"},
    {"InvalidParameterValueException", 400, "message", "User"},
}};

// Indexed by ErrorCode. Codes and statuses from botocore's sqs 2012-11-05
// model (error.code / httpStatusCode); the rest as SQS answers them.
constexpr std::array<SqsErrorShape, 29> kSqsShapes = {{
    {"InvalidParameterValue", "InvalidParameterValue", 400, true},
    {"ValidationError", "ValidationError", 400, true},
    {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", 400, true},
    {"InvalidParameterValue", "InvalidParameterValue", 400, true},
    {"InvalidParameterValue", "InvalidParameterValue", 400, true},
    {"RequestEntityTooLarge", "RequestEntityTooLarge", 413, true},
    {"MalformedQueryString", "MalformedQueryString", 400, true},
    {"RequestThrottled", "RequestThrottled", 403, true},
    {"SignatureDoesNotMatch", "SignatureDoesNotMatch", 403, true},
    {"InvalidClientTokenId", "InvalidClientTokenId", 403, true},
    {"AccessDenied", "AccessDenied", 403, true},
    {"MissingAuthenticationToken", "MissingAuthenticationToken", 403, true},
    {"AWS.SimpleQueueService.UnsupportedOperation", "UnsupportedOperation", 400, true},
    {"InvalidParameterValue", "InvalidParameterValue", 400, true},
    {"InternalError", "InternalError", 500, false},
    {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", 400, true},
    {"QueueAlreadyExists", "QueueNameExists", 400, true},
    {"InvalidAttributeName", "InvalidAttributeName", 400, true},
    {"InvalidAttributeValue", "InvalidAttributeValue", 400, true},
    {"MissingParameter", "MissingParameter", 400, true},
    {"InvalidAction", "InvalidAction", 400, true},
    {"InvalidMessageContents", "InvalidMessageContents", 400, true},
    {"AWS.SimpleQueueService.EmptyBatchRequest", "EmptyBatchRequest", 400, true},
    {"AWS.SimpleQueueService.TooManyEntriesInBatchRequest", "TooManyEntriesInBatchRequest", 400, true},
    {"AWS.SimpleQueueService.BatchEntryIdsNotDistinct", "BatchEntryIdsNotDistinct", 400, true},
    {"AWS.SimpleQueueService.InvalidBatchEntryId", "InvalidBatchEntryId", 400, true},
    {"AWS.SimpleQueueService.BatchRequestTooLong", "BatchRequestTooLong", 400, true},
    {"ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", 400, true},
    {"AWS.SimpleQueueService.MessageNotInflight", "MessageNotInflight", 400, true},
}};

}  // namespace

const SqsErrorShape& sqs_shape_of(ErrorCode code) {
  return kSqsShapes.at(static_cast<std::size_t>(code));
}

const ErrorShape& shape_of(ErrorCode code) {
  return kShapes.at(static_cast<std::size_t>(code));
}

}  // namespace nimbus::base
