// Fuzz target: the JWT authorizer's parsing — a JWKS document (before the
// first NUL byte) and a bearer token (after it) verified against it.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "gateway/jwt.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto split = input.find('\0');
  const std::string_view token = split == std::string_view::npos ? input : input.substr(split + 1);
  auto keys = nimbus::gateway::KeySet::parse(split == std::string_view::npos ? "{\"keys\":[]}" : input.substr(0, split));
  if (!keys.ok()) return 0;
  nimbus::gateway::JwtPolicy policy;
  (void)nimbus::gateway::verify_jwt(token, *keys, policy, 1700000000);
  (void)nimbus::gateway::has_unknown_kid(token, *keys);
  (void)nimbus::gateway::base64url_decode(token);
  return 0;
}
