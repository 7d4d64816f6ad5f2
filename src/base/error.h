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
};

// How an ErrorCode is shown on the Lambda API.
struct ErrorShape {
  std::string_view type;          // x-amzn-ErrorType and exception name
  unsigned http_status;
  std::string_view message_key;   // "message" or "Message", as botocore's model says
  std::string_view fault;         // "User" or "Service"
};

[[nodiscard]] const ErrorShape& shape_of(ErrorCode code);

// An expected failure: a code and a message written for the user, naming
// what was wrong.
struct Error {
  ErrorCode code = ErrorCode::kService;
  std::string message;
};

}  // namespace nimbus::base
