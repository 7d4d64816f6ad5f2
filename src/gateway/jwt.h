#pragma once
// JSON Web Tokens as API Gateway's JWT authorizers check them
// (shared/reference/events.md §1.7): a JWKS key set, signature verification
// over OpenSSL (RS256/384/512, ES256/384), and the claim checks (iss, aud or
// client_id, exp, nbf, iat, scopes). Pure apart from OpenSSL; any thread.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace nimbus::gateway {

// One public key of a JWKS document.
struct JsonWebKey {
  std::string kid;
  std::string alg;                       // optional in the document; empty when absent
  std::string kty;                       // "RSA" or "EC"
  std::shared_ptr<void> key;             // EVP_PKEY*, freed with EVP_PKEY_free
};

// A parsed JWKS document ({"keys": [...]}). Keys of other types or uses
// (kty oct, use enc) are skipped; a document with no usable key is an error.
class KeySet {
 public:
  [[nodiscard]] static base::Result<KeySet> parse(std::string_view jwks_json);
  [[nodiscard]] const JsonWebKey* find(std::string_view kid) const;
  [[nodiscard]] std::size_t size() const { return keys_.size(); }

 private:
  std::vector<JsonWebKey> keys_;
};

struct JwtPolicy {
  std::string issuer;
  std::vector<std::string> audience;     // aud or client_id must be one of them

  bool operator==(const JwtPolicy&) const = default;
};

// A token that passed every check.
struct VerifiedJwt {
  nlohmann::json header;
  nlohmann::json claims;
  std::vector<std::string> scopes;       // from "scope" (space-separated) or "scp"
};

// Why a token was refused (for logs; the client only ever sees 401).
enum class JwtFailure : std::uint8_t { kMalformed, kAlgorithm, kUnknownKey, kSignature, kClaims };

struct JwtError {
  JwtFailure failure;
  std::string message;
};

// Verifies a compact JWS ("h.p.s"; a "Bearer " prefix is accepted) against
// `keys` and `policy` at `now_s` (seconds since the epoch). alg "none" and
// HMAC algorithms are refused; the key's alg, when the JWKS names one, must
// match the token's.
[[nodiscard]] std::variant<VerifiedJwt, JwtError> verify_jwt(std::string_view token, const KeySet& keys,
                                                             const JwtPolicy& policy, std::int64_t now_s);

// True when the token's `kid` (from its header) is not in `keys`, so a fresh
// JWKS might know it. False for tokens that cannot be parsed at all.
[[nodiscard]] bool has_unknown_kid(std::string_view token, const KeySet& keys);

// The claims as API Gateway hands them to integrations: every value a
// string (numbers and booleans in their JSON text, arrays as "[a b]").
[[nodiscard]] nlohmann::json claims_as_strings(const nlohmann::json& claims);

// RFC 7515 base64url without padding.
[[nodiscard]] std::optional<std::string> base64url_decode(std::string_view text);
[[nodiscard]] std::string base64url_encode(std::string_view bytes);

}  // namespace nimbus::gateway
