#include "base/error.h"

#include <array>

namespace nimbus::base {
namespace {

// Indexed by ErrorCode. Types and message casing from botocore's Lambda model
// (shared/reference/lambda-api.md §1.4, §4.1).
constexpr std::array<ErrorShape, 15> kShapes = {{
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
}};

}  // namespace

const ErrorShape& shape_of(ErrorCode code) {
  return kShapes.at(static_cast<std::size_t>(code));
}

}  // namespace nimbus::base
