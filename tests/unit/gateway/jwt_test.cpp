#include "gateway/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace nimbus::gateway {
namespace {

using nlohmann::json;

constexpr std::int64_t kNow = 1'800'000'000;

// A key pair generated for the test, able to sign tokens and to describe its
// public half as a JWK.
class TestKey {
 public:
  static TestKey rsa() { return TestKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)), false); }
  static TestKey ec() { return TestKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), true); }

  json jwk(const std::string& kid) const {
    if (!ec_) {
      return {{"kty", "RSA"}, {"kid", kid}, {"use", "sig"}, {"alg", "RS256"},
              {"n", base64url_encode(bn_param(OSSL_PKEY_PARAM_RSA_N))},
              {"e", base64url_encode(bn_param(OSSL_PKEY_PARAM_RSA_E))}};
    }
    unsigned char point[65];
    size_t len = 0;
    EXPECT_EQ(EVP_PKEY_get_octet_string_param(key_.get(), OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &len), 1);
    const std::string raw(reinterpret_cast<char*>(point) + 1, len - 1);
    return {{"kty", "EC"}, {"kid", kid}, {"crv", "P-256"}, {"x", base64url_encode(raw.substr(0, 32))},
            {"y", base64url_encode(raw.substr(32))}};
  }

  std::string sign(const json& header, const json& claims) const {
    const std::string input = base64url_encode(header.dump()) + "." + base64url_encode(claims.dump());
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EXPECT_EQ(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()), 1);
    size_t len = 0;
    EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size());
    std::string sig(len, '\0');
    EXPECT_EQ(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                             reinterpret_cast<const unsigned char*>(input.data()), input.size()),
              1);
    sig.resize(len);
    if (ec_) sig = der_to_jose(sig);
    return input + "." + base64url_encode(sig);
  }

 private:
  TestKey(EVP_PKEY* key, bool ec) : key_(key, EVP_PKEY_free), ec_(ec) {}

  std::string bn_param(const char* name) const {
    BIGNUM* bn = nullptr;
    EXPECT_EQ(EVP_PKEY_get_bn_param(key_.get(), name, &bn), 1);
    std::string out(static_cast<size_t>(BN_num_bytes(bn)), '\0');
    BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
    BN_free(bn);
    return out;
  }

  static std::string der_to_jose(const std::string& der) {
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
    std::string out(64, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(sig), reinterpret_cast<unsigned char*>(out.data()), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig), reinterpret_cast<unsigned char*>(out.data()) + 32, 32);
    ECDSA_SIG_free(sig);
    return out;
  }

  std::shared_ptr<EVP_PKEY> key_;
  bool ec_;
};

const TestKey& rsa_key() {
  static const TestKey key = TestKey::rsa();
  return key;
}
const TestKey& ec_key() {
  static const TestKey key = TestKey::ec();
  return key;
}

KeySet key_set() {
  json jwks = {{"keys", {rsa_key().jwk("r1"), ec_key().jwk("e1"), {{"kty", "oct"}, {"kid", "h"}, {"k", "c2VjcmV0"}}}}};
  auto set = KeySet::parse(jwks.dump());
  EXPECT_TRUE(set.ok()) << set.error().message;
  return std::move(*set);
}

const JwtPolicy kPolicy{"https://issuer.example", {"api://orders", "spa-client"}};

json good_claims() {
  return {{"iss", "https://issuer.example"}, {"aud", "api://orders"}, {"sub", "ada"},
          {"exp", kNow + 600},              {"iat", kNow - 10},      {"scope", "orders:read orders:write"}};
}

std::string failure_of(const std::variant<VerifiedJwt, JwtError>& r) {
  const auto* e = std::get_if<JwtError>(&r);
  return e ? e->message : std::string("accepted");
}

TEST(Jwt, AcceptsRs256AndEs256TokensWithTheirScopes) {
  const KeySet keys = key_set();
  EXPECT_EQ(keys.size(), 2u);  // the symmetric key is skipped
  for (const auto& [key, alg, kid] : {std::tuple{&rsa_key(), "RS256", "r1"}, std::tuple{&ec_key(), "ES256", "e1"}}) {
    const std::string token = key->sign({{"alg", alg}, {"kid", kid}, {"typ", "JWT"}}, good_claims());
    auto result = verify_jwt("Bearer " + token, keys, kPolicy, kNow);
    ASSERT_TRUE(std::holds_alternative<VerifiedJwt>(result)) << alg << ": " << failure_of(result);
    const auto& ok = std::get<VerifiedJwt>(result);
    EXPECT_EQ(ok.claims["sub"], "ada");
    EXPECT_EQ(ok.scopes, (std::vector<std::string>{"orders:read", "orders:write"}));
  }
}

// A JWK whose coordinate lost its leading zero byte (as PyJWT before 2.8
// writes one key in 128) still verifies; a coordinate too long does not.
TEST(Jwt, EcKeyWithAShortCoordinateVerifies) {
  for (int attempt = 0; attempt < 5000; ++attempt) {
    const TestKey key = TestKey::ec();
    json jwk = key.jwk("short");
    std::string x = *base64url_decode(jwk["x"].get<std::string>());
    std::string y = *base64url_decode(jwk["y"].get<std::string>());
    if (x[0] != '\0' && y[0] != '\0') continue;
    if (x[0] == '\0') jwk["x"] = base64url_encode(x.substr(1));
    if (y[0] == '\0') jwk["y"] = base64url_encode(y.substr(1));
    auto keys = KeySet::parse(json{{"keys", {jwk}}}.dump());
    ASSERT_TRUE(keys.ok()) << keys.error().message;
    const std::string token = key.sign({{"alg", "ES256"}, {"kid", "short"}}, good_claims());
    auto result = verify_jwt(token, *keys, kPolicy, kNow);
    EXPECT_TRUE(std::holds_alternative<VerifiedJwt>(result)) << failure_of(result);

    jwk["x"] = base64url_encode(std::string(33, '\1'));
    EXPECT_FALSE(KeySet::parse(json{{"keys", {jwk}}}.dump()).ok());
    return;
  }
  FAIL() << "no P-256 key with a leading zero coordinate in 5000 tries";
}

TEST(Jwt, RefusesTamperedUnsignedAndMisroutedTokens) {
  const KeySet keys = key_set();
  const std::string token = rsa_key().sign({{"alg", "RS256"}, {"kid", "r1"}}, good_claims());
  // One changed claim breaks the signature.
  json forged = good_claims();
  forged["sub"] = "mallory";
  const std::string tampered = token.substr(0, token.find('.') + 1) + base64url_encode(forged.dump()) +
                               token.substr(token.rfind('.'));
  EXPECT_EQ(std::get<JwtError>(verify_jwt(tampered, keys, kPolicy, kNow)).failure, JwtFailure::kSignature);
  // alg none, HMAC with the public key as secret, unknown kid, RS256 header on an EC key.
  const std::string unsigned_token =
      base64url_encode(json{{"alg", "none"}, {"kid", "r1"}}.dump()) + "." + base64url_encode(good_claims().dump()) + ".";
  EXPECT_EQ(std::get<JwtError>(verify_jwt(unsigned_token, keys, kPolicy, kNow)).failure, JwtFailure::kAlgorithm);
  const std::string hs = base64url_encode(json{{"alg", "HS256"}, {"kid", "r1"}}.dump()) + "." +
                         base64url_encode(good_claims().dump()) + ".c2ln";
  EXPECT_EQ(std::get<JwtError>(verify_jwt(hs, keys, kPolicy, kNow)).failure, JwtFailure::kAlgorithm);
  const std::string other_kid = rsa_key().sign({{"alg", "RS256"}, {"kid", "r2"}}, good_claims());
  EXPECT_EQ(std::get<JwtError>(verify_jwt(other_kid, keys, kPolicy, kNow)).failure, JwtFailure::kUnknownKey);
  EXPECT_TRUE(has_unknown_kid(other_kid, keys));
  EXPECT_FALSE(has_unknown_kid(token, keys));
  const std::string wrong_type = rsa_key().sign({{"alg", "RS256"}, {"kid", "e1"}}, good_claims());
  EXPECT_EQ(std::get<JwtError>(verify_jwt(wrong_type, keys, kPolicy, kNow)).failure, JwtFailure::kAlgorithm);
  for (const char* junk : {"", "a.b", "a.b.c.d", "!!.??.##", "e30.e30"}) {
    EXPECT_EQ(std::get<JwtError>(verify_jwt(junk, keys, kPolicy, kNow)).failure, JwtFailure::kMalformed) << junk;
  }
}

TEST(Jwt, ChecksIssuerAudienceAndTimes) {
  const KeySet keys = key_set();
  const auto verdict = [&](const json& claims) {
    return failure_of(verify_jwt(rsa_key().sign({{"alg", "RS256"}, {"kid", "r1"}}, claims), keys, kPolicy, kNow));
  };
  EXPECT_EQ(verdict(good_claims()), "accepted");
  const auto with = [](const char* name, json value) {
    json c = good_claims();
    if (value.is_null()) {
      c.erase(name);
    } else {
      c[name] = std::move(value);
    }
    return c;
  };
  EXPECT_NE(verdict(with("iss", "https://evil.example")), "accepted");
  EXPECT_NE(verdict(with("aud", "api://other")), "accepted");
  EXPECT_EQ(verdict(with("aud", json::array({"x", "api://orders"}))), "accepted");
  json by_client = with("aud", nullptr);
  by_client["client_id"] = "spa-client";
  EXPECT_EQ(verdict(by_client), "accepted");
  EXPECT_NE(verdict(with("aud", nullptr)), "accepted");
  EXPECT_EQ(verdict(with("exp", kNow)), "the token expired at 1800000000");
  EXPECT_NE(verdict(with("exp", nullptr)), "accepted");
  EXPECT_NE(verdict(with("exp", "tomorrow")), "accepted");
  EXPECT_NE(verdict(with("nbf", kNow + 60)), "accepted");
  EXPECT_NE(verdict(with("iat", kNow + 60)), "accepted");
  EXPECT_EQ(verdict(with("nbf", kNow)), "accepted");
}

TEST(Jwt, KeySetRefusesDocumentsWithoutUsableKeys) {
  EXPECT_FALSE(KeySet::parse("not json").ok());
  EXPECT_FALSE(KeySet::parse(R"({"keys": []})").ok());
  auto weak = KeySet::parse(R"({"keys": [{"kty": "RSA", "kid": "w", "n": "AQAB", "e": "AQAB"}]})");
  ASSERT_FALSE(weak.ok());
  EXPECT_NE(weak.error().message.find("2048"), std::string::npos) << weak.error().message;
  auto bad_curve = KeySet::parse(R"({"keys": [{"kty": "EC", "kid": "c", "crv": "P-521", "x": "AA", "y": "AA"}]})");
  ASSERT_FALSE(bad_curve.ok());
  EXPECT_NE(bad_curve.error().message.find("P-521"), std::string::npos);
  // A point not on the curve is not a key.
  json off_curve = ec_key().jwk("e1");
  off_curve["y"] = base64url_encode(std::string(32, '\x01'));
  EXPECT_FALSE(KeySet::parse(json{{"keys", {off_curve}}}.dump()).ok());
}

TEST(Jwt, ClaimsReachIntegrationsAsStrings) {
  const json claims = {{"sub", "ada"}, {"exp", 1800000000}, {"admin", true}, {"groups", {"a", "b"}}};
  EXPECT_EQ(claims_as_strings(claims),
            json({{"sub", "ada"}, {"exp", "1800000000"}, {"admin", "true"}, {"groups", "[a b]"}}));
}

TEST(Jwt, Base64UrlRoundTrips) {
  for (std::string s : {"", "f", "fo", "foo", "\xff\xfe\xfd?>"}) {
    const auto back = base64url_decode(base64url_encode(s));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, s);
  }
  EXPECT_FALSE(base64url_decode("ab+/").has_value());
  EXPECT_FALSE(base64url_decode("abc=").has_value());
  EXPECT_FALSE(base64url_decode("a").has_value());
}

}  // namespace
}  // namespace nimbus::gateway
