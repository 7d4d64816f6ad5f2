#include "base/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>

#include "base/check.h"

namespace nimbus::base {

Sha256Digest sha256(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.finish();
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  NIMBUS_CHECK(ctx_ != nullptr);
  NIMBUS_CHECK(EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr) == 1);
}

Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Sha256::update(std::string_view data) {
  NIMBUS_CHECK(EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size()) == 1);
}

Sha256Digest Sha256::finish() {
  Sha256Digest out{};
  unsigned len = 0;
  NIMBUS_CHECK(EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), out.data(), &len) == 1);
  NIMBUS_CHECK(len == out.size());
  return out;
}

Sha256Digest hmac_sha256(std::string_view key, std::string_view data) {
  Sha256Digest out{};
  unsigned len = 0;
  NIMBUS_CHECK(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                    reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(),
                    &len) != nullptr);
  NIMBUS_CHECK(len == out.size());
  return out;
}

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xF]);
  }
  return out;
}

std::string_view as_bytes(const Sha256Digest& digest) {
  return {reinterpret_cast<const char*>(digest.data()), digest.size()};
}

std::string to_hex(const Sha256Digest& digest) { return to_hex(as_bytes(digest)); }

std::optional<Sha256Digest> digest_from_hex(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Sha256Digest out{};
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = nibble(hex[2 * i]);
    const int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return out;
}

namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Symbol values; 0xFF for bytes that are not in the alphabet ('=' included).
constexpr std::array<std::uint8_t, 256> kSymbol = [] {
  std::array<std::uint8_t, 256> t{};
  t.fill(0xFF);
  for (std::uint8_t v = 0; v < 64; ++v) t[static_cast<unsigned char>(kAlphabet[v])] = v;
  return t;
}();

// Decodes whole groups of four symbols, no padding; false on a byte outside the alphabet.
bool decode_groups(std::string_view text, char* out) {
  for (std::size_t i = 0; i < text.size(); i += 4, out += 3) {
    const std::uint32_t a = kSymbol[static_cast<unsigned char>(text[i])];
    const std::uint32_t b = kSymbol[static_cast<unsigned char>(text[i + 1])];
    const std::uint32_t c = kSymbol[static_cast<unsigned char>(text[i + 2])];
    const std::uint32_t d = kSymbol[static_cast<unsigned char>(text[i + 3])];
    if ((a | b | c | d) & 0xC0) return false;
    const std::uint32_t n = (a << 18) | (b << 12) | (c << 6) | d;
    out[0] = static_cast<char>(n >> 16);
    out[1] = static_cast<char>((n >> 8) & 0xFF);
    out[2] = static_cast<char>(n & 0xFF);
  }
  return true;
}
}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out((bytes.size() + 2) / 3 * 4, '=');
  char* o = out.data();
  const auto byte = [&bytes](std::size_t i) -> std::uint32_t { return static_cast<unsigned char>(bytes[i]); };
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3, o += 4) {
    const std::uint32_t n = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    o[0] = kAlphabet[(n >> 18) & 63];
    o[1] = kAlphabet[(n >> 12) & 63];
    o[2] = kAlphabet[(n >> 6) & 63];
    o[3] = kAlphabet[n & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {  // one or two bytes left: two or three symbols, then the padding already there
    const std::uint32_t n = (byte(i) << 16) | (rest == 2 ? byte(i + 1) << 8 : 0);
    o[0] = kAlphabet[(n >> 18) & 63];
    o[1] = kAlphabet[(n >> 12) & 63];
    if (rest == 2) o[2] = kAlphabet[(n >> 6) & 63];
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.find_first_of("\r\n") != std::string_view::npos) {  // line-wrapped: decode without the breaks
    std::string joined;
    joined.reserve(text.size());
    for (char c : text) {
      if (c != '\r' && c != '\n') joined.push_back(c);
    }
    return base64_decode(joined);
  }
  if (text.size() % 4 != 0) return std::nullopt;
  if (text.empty()) return std::string();
  // The last group carries the padding: "xxxx", "xxx=" or "xx==".
  const std::size_t padding = text.ends_with("==") ? 2 : text.ends_with('=') ? 1 : 0;
  const std::size_t body = text.size() - 4;
  std::string out(body / 4 * 3 + 3 - padding, '\0');
  if (!decode_groups(text.substr(0, body), out.data())) return std::nullopt;
  std::string last(text.substr(body, 4 - padding));
  last.append(padding, 'A');  // zero bits in place of the padding
  char tail[3];
  if (!decode_groups(last, tail)) return std::nullopt;
  // Canonical input only: the bits the padding drops must be zero.
  if ((padding == 2 && tail[1] != 0) || (padding >= 1 && tail[2] != 0)) return std::nullopt;
  std::copy(tail, tail + 3 - padding, out.data() + body / 4 * 3);
  return out;
}

namespace {

// Every RAND_bytes call checks for a fork with a getpid() system call, which
// on a VM costs as much as the rest of a queue send; the ids drawn per
// message and per invocation come from a per-thread buffer instead, filled by
// one RAND_bytes call. A fork (the sandbox launcher) drops every buffer, so a
// parent and child never hand out the same bytes.
std::atomic<unsigned> g_fork_generation{0};

struct RandomBuffer {
  static constexpr std::size_t kSize = 1024;
  unsigned char bytes[kSize];
  std::size_t used = kSize;
  unsigned generation = 0;
};

}  // namespace

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  auto* dest = reinterpret_cast<unsigned char*>(out.data());
  if (n > RandomBuffer::kSize / 8) {
    NIMBUS_CHECK(RAND_bytes(dest, static_cast<int>(n)) == 1);
    return out;
  }
  static const bool drop_after_fork = ::pthread_atfork(nullptr, nullptr, [] { ++g_fork_generation; }) == 0;
  NIMBUS_CHECK(drop_after_fork);
  thread_local RandomBuffer buffer;
  const unsigned generation = g_fork_generation.load(std::memory_order_relaxed);
  if (buffer.generation != generation || buffer.used + n > RandomBuffer::kSize) {
    NIMBUS_CHECK(RAND_bytes(buffer.bytes, static_cast<int>(RandomBuffer::kSize)) == 1);
    buffer.used = 0;
    buffer.generation = generation;
  }
  std::memcpy(dest, buffer.bytes + buffer.used, n);
  OPENSSL_cleanse(buffer.bytes + buffer.used, n);  // bytes handed out are not kept
  buffer.used += n;
  return out;
}

std::string uuid4() {
  std::string b = random_bytes(16);
  b[6] = static_cast<char>((b[6] & 0x0F) | 0x40);
  b[8] = static_cast<char>((b[8] & 0x3F) | 0x80);
  const std::string h = to_hex(b);
  std::string id;
  id.reserve(36);
  id.append(h, 0, 8).append(1, '-').append(h, 8, 4).append(1, '-').append(h, 12, 4).append(1, '-');
  id.append(h, 16, 4).append(1, '-').append(h, 20, 12);
  return id;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace nimbus::base
