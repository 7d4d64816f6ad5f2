#pragma once
// AWS Signature Version 4 for the Lambda REST API: verification of incoming
// requests (the control API calls verify_sigv4 on every request before routing)
// and signing of outgoing ones (the nimbus CLI and tests call sign_sigv4).
// Pure functions over a request and the values passed in; they keep no state
// and are callable from any thread. Time comes from the caller (the injected
// Clock), never from the system.
//
// The canonical form follows shared/reference/lambda-api.md §6.2 as botocore
// 1.29 produces it: the raw path encoded once more, the query decoded and
// re-encoded, only the headers named in SignedHeaders.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "http/types.h"

namespace nimbus::api {

// A long-term key pair: what a client signs with and what the server looks up.
struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
};

// Looks up the secret for an access key id; nullopt if unknown. Called once per
// verified request, on the caller's thread.
using SecretLookup = std::function<std::optional<std::string>(std::string_view access_key_id)>;

// Who signed a request that verified, and the scope they signed it for.
struct SigV4Identity {
  std::string access_key_id;
  std::string region;
  std::string service;
};

// Verifies the Authorization header of `request` (its body is request.body()).
// Errors:
//   no Authorization header -> kMissingAuthentication "Missing Authentication Token";
//   malformed header, wrong algorithm, no X-Amz-Date/Date, bad credential scope,
//   payload hash header not matching the body -> kInvalidSignature naming the problem;
//   unknown key -> kUnrecognizedClient;
//   signature mismatch -> kInvalidSignature with AWS's message;
//   date more than max_skew_ms from now_ms -> kInvalidSignature "Signature expired: ..."
//   (or "Signature not yet current: ..." when in the future);
//   credential scope service != expected_service -> kInvalidSignature naming it.
[[nodiscard]] base::Result<SigV4Identity> verify_sigv4(const http::Request& request,
                                                       const SecretLookup& lookup,
                                                       std::string_view expected_service,
                                                       std::int64_t now_ms,
                                                       std::int64_t max_skew_ms = 5 * 60 * 1000);

// Signs `request` in place as botocore does: sets X-Amz-Date (from now_ms) and
// Authorization, signing host, x-amz-date, content-type (if present) and every
// x-amz-* header present. The Host header must already be set by the caller; the
// target and body must be final.
void sign_sigv4(http::Request& request, const Credentials& credentials, std::string_view region,
                std::string_view service, std::int64_t now_ms);

// The steps of the signature, exposed for tests and fuzz targets. Not for use
// outside src/api.
namespace detail {

// The algorithm named at the start of the Authorization header.
inline constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
// The last element of every credential scope.
inline constexpr std::string_view kScopeTerminator = "aws4_request";

// The parts of `AWS4-HMAC-SHA256 Credential=.., SignedHeaders=.., Signature=..`.
struct ParsedAuthorization {
  std::string access_key_id;
  std::string scope_date;  // YYYYMMDD
  std::string region;
  std::string service;
  std::string terminator;                   // aws4_request when well formed
  std::vector<std::string> signed_headers;  // as listed, in order
  std::string signature;                    // hex, as sent
};

// Parses an Authorization header value. Errors (kInvalidSignature) name the
// missing or malformed part. Does not check the scope against anything.
[[nodiscard]] base::Result<ParsedAuthorization> parse_authorization(std::string_view value);

// The raw (still percent-encoded) path encoded once more: every byte except
// A-Za-z0-9-_.~/ becomes %XX. An empty path becomes "/".
[[nodiscard]] std::string canonical_uri(std::string_view raw_path);

// The raw query (without '?') split on '&' and the first '=', each part
// percent-decoded ('+' stays '+') and re-encoded, sorted by name then value and
// joined as n=v with '&'. Parts with a malformed escape are encoded as they are.
[[nodiscard]] std::string canonical_query(std::string_view raw_query);

// A header value trimmed of spaces and tabs with inner runs collapsed to one space.
[[nodiscard]] std::string canonical_header_value(std::string_view value);

// The canonical request of §6.2 step 4 for the given SignedHeaders names and
// payload hash. Fails (kInvalidSignature) when a signed header is absent.
[[nodiscard]] base::Result<std::string> canonical_request(
    const http::Request& request, const std::vector<std::string>& signed_headers,
    std::string_view payload_hash);

// `<YYYYMMDD>/<region>/<service>/aws4_request`.
[[nodiscard]] std::string credential_scope(std::string_view scope_date, std::string_view region,
                                           std::string_view service);

// `AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256 of canonical_request>`.
[[nodiscard]] std::string string_to_sign(std::string_view amz_date, std::string_view scope,
                                         std::string_view canonical_request);

// The raw 32-byte key derived from the secret and the scope (§6.2 step 6).
[[nodiscard]] std::string signing_key(std::string_view secret, std::string_view scope_date,
                                      std::string_view region, std::string_view service);

// The lowercase hex signature of `canonical_request` signed at `amz_date`
// (YYYYMMDDThhmmssZ) for the scope derived from it, region and service.
[[nodiscard]] std::string compute_signature(std::string_view secret, std::string_view amz_date,
                                            std::string_view region, std::string_view service,
                                            std::string_view canonical_request);

// Lowercase hex SHA-256 of the body, or the X-Amz-Content-SHA256 value if present.
[[nodiscard]] std::string payload_hash(const http::Request& request);

// Converts an RFC 1123 date ("Sun, 01 Jan 2023 00:00:00 GMT") to the
// YYYYMMDDThhmmssZ form; nullopt when it is not one.
[[nodiscard]] std::optional<std::string> amz_date_from_http_date(std::string_view http_date);

}  // namespace detail
}  // namespace nimbus::api
