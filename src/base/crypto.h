#pragma once
// Hashing and encodings over OpenSSL: SHA-256, HMAC-SHA256, hex, base64,
// random bytes and UUIDs. Pure functions, callable from any thread.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nimbus::base {

using Sha256Digest = std::array<std::uint8_t, 32>;

[[nodiscard]] Sha256Digest sha256(std::string_view data);
[[nodiscard]] Sha256Digest hmac_sha256(std::string_view key, std::string_view data);

// Incremental SHA-256 for data that arrives in pieces (files).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view data);
  [[nodiscard]] Sha256Digest finish();

 private:
  void* ctx_;  // EVP_MD_CTX
};

[[nodiscard]] std::string to_hex(std::string_view bytes);
[[nodiscard]] std::string to_hex(const Sha256Digest& digest);
[[nodiscard]] std::string_view as_bytes(const Sha256Digest& digest);
// Parses 64 hex digits; nullopt otherwise.
[[nodiscard]] std::optional<Sha256Digest> digest_from_hex(std::string_view hex);

// Standard padded base64 (RFC 4648 §4).
[[nodiscard]] std::string base64_encode(std::string_view bytes);
// Strict: rejects characters outside the alphabet, bad padding and bad length.
// Whitespace (\r \n) is skipped, as MIME-wrapped input sometimes carries it.
[[nodiscard]] std::optional<std::string> base64_decode(std::string_view text);

// Cryptographically random bytes (RAND_bytes).
[[nodiscard]] std::string random_bytes(std::size_t n);
// A random (version 4) UUID in its 36-character text form.
[[nodiscard]] std::string uuid4();

// Equal in time independent of where the strings differ.
[[nodiscard]] bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace nimbus::base
