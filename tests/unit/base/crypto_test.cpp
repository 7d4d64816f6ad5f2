#include "base/crypto.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <set>
#include <string>
#include <thread>

#include "base/clock.h"

namespace nimbus::base {
namespace {

TEST(Crypto, Sha256KnownVectors) {
  EXPECT_EQ(to_hex(sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(to_hex(sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Crypto, HmacRfc4231Case2) {
  EXPECT_EQ(to_hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Crypto, Base64RoundTripAndPadding) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  for (std::string s : {"", "a", "ab", "abc", "abcd", "\x00\xff\x10"}) {
    auto back = base64_decode(base64_encode(s));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, s);
  }
}

TEST(Crypto, Base64RejectsMalformedInput) {
  EXPECT_FALSE(base64_decode("Zg=").has_value());     // bad length
  EXPECT_FALSE(base64_decode("Z!==").has_value());    // bad character
  EXPECT_FALSE(base64_decode("Zg==Zg==").has_value()); // data after padding
  EXPECT_FALSE(base64_decode("Zh==").has_value());    // non-zero leftover bits
  EXPECT_FALSE(base64_decode("Zm9=").has_value());    // non-zero bits under one '='
  EXPECT_FALSE(base64_decode("Z===").has_value());    // three padding symbols
  EXPECT_FALSE(base64_decode("====").has_value());
  EXPECT_FALSE(base64_decode("Zm=v").has_value());    // padding inside a group
  EXPECT_FALSE(base64_decode("Zm9v Zm9v").has_value()); // whitespace other than line breaks
  EXPECT_EQ(base64_decode("Zm9v\r\nYmFy"), std::optional<std::string>("foobar"));  // MIME line breaks
  EXPECT_EQ(base64_decode(""), std::optional<std::string>(""));
}

TEST(Crypto, Base64RoundTripsEveryByteAndLength) {
  std::string bytes;
  for (int i = 0; i < 770; ++i) bytes.push_back(static_cast<char>((i * 7 + i / 256) & 0xFF));
  for (std::size_t n = 0; n <= bytes.size(); n += (n < 16 ? 1 : 37)) {
    const std::string s = bytes.substr(0, n);
    const std::string text = base64_encode(s);
    EXPECT_EQ(text.size() % 4, 0u);
    EXPECT_EQ(base64_decode(text), std::optional<std::string>(s)) << "length " << n;
  }
}

TEST(Crypto, DigestFromHex) {
  const auto d = sha256("x");
  EXPECT_EQ(digest_from_hex(to_hex(d)), d);
  EXPECT_FALSE(digest_from_hex("abc").has_value());
  EXPECT_FALSE(digest_from_hex(std::string(64, 'g')).has_value());
}

TEST(Crypto, Uuid4Shape) {
  const std::string a = uuid4();
  ASSERT_EQ(a.size(), 36u);
  EXPECT_EQ(a[14], '4');
  EXPECT_NE(a, uuid4());
}

TEST(Crypto, Uuid4DashesAndVariant) {
  const std::string a = uuid4();
  for (const std::size_t dash : {8u, 13u, 18u, 23u}) EXPECT_EQ(a[dash], '-') << a;
  EXPECT_NE(std::string("89ab").find(a[19]), std::string::npos) << a;
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef-"), std::string::npos) << a;
}

// Small draws come from a per-thread buffer: across many refills, and
// across threads, no 16 bytes repeat; big draws bypass it.
TEST(Crypto, RandomBytesNeverRepeat) {
  std::set<std::string> seen;
  for (int i = 0; i < 5000; ++i) ASSERT_TRUE(seen.insert(random_bytes(16)).second);
  std::string other;
  std::thread([&other] { other = random_bytes(16); }).join();
  EXPECT_TRUE(seen.insert(other).second);
  EXPECT_EQ(random_bytes(0), "");
  const std::string big = random_bytes(4096);
  ASSERT_EQ(big.size(), 4096u);
  EXPECT_NE(big.substr(0, 16), big.substr(16, 16));
}

// A fork drops the buffer: parent and child draw different bytes next.
TEST(Crypto, RandomBytesDifferAfterFork) {
  (void)random_bytes(16);  // the parent's buffer is filled
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string child = random_bytes(16);
    _exit(::write(fds[1], child.data(), child.size()) == 16 ? 0 : 1);
  }
  ::close(fds[1]);
  const std::string parent = random_bytes(16);
  std::string child(16, '\0');
  EXPECT_EQ(::read(fds[0], child.data(), child.size()), 16);
  ::close(fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_NE(parent, child);
}

TEST(Clock, LambdaTimeFormat) {
  EXPECT_EQ(format_lambda_time(1586545592563), "2020-04-10T19:06:32.563+0000");
  EXPECT_EQ(format_amz_date(1672531200000), "20230101T000000Z");
  EXPECT_EQ(parse_amz_date("20230101T000000Z"), 1672531200000);
  EXPECT_EQ(parse_amz_date("2023-01-01"), -1);
}

}  // namespace
}  // namespace nimbus::base
