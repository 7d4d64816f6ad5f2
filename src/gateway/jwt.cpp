#include "gateway/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <algorithm>

#include <fmt/format.h>

#include "base/crypto.h"

namespace nimbus::gateway {

using base::ErrorCode;
using base::make_error;
using nlohmann::json;

namespace {

struct Algorithm {
  std::string_view name;
  std::string_view kty;      // the key type it needs
  const EVP_MD* (*digest)();
  std::size_t ec_half = 0;   // bytes of r (and of s) in a JOSE ECDSA signature; 0 for RSA
};

constexpr Algorithm kAlgorithms[] = {
    {"RS256", "RSA", EVP_sha256, 0}, {"RS384", "RSA", EVP_sha384, 0}, {"RS512", "RSA", EVP_sha512, 0},
    {"ES256", "EC", EVP_sha256, 32}, {"ES384", "EC", EVP_sha384, 48},
};

const Algorithm* find_algorithm(std::string_view name) {
  for (const auto& a : kAlgorithms) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

std::shared_ptr<void> own_key(EVP_PKEY* key) {
  return {key, [](void* p) { EVP_PKEY_free(static_cast<EVP_PKEY*>(p)); }};
}

struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
struct ParamBldFree {
  void operator()(OSSL_PARAM_BLD* b) const { OSSL_PARAM_BLD_free(b); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct CtxFree {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

std::string member(const json& object, const char* name) {
  const auto it = object.find(name);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Builds an EVP_PKEY from OSSL parameters of `type` ("RSA" or "EC").
base::Result<std::shared_ptr<void>> key_from_params(const char* type, OSSL_PARAM* params) {
  std::unique_ptr<EVP_PKEY_CTX, CtxFree> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* key = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
    return make_error(ErrorCode::kValidation, fmt::format("the {} key parameters are not a valid public key", type));
  }
  return own_key(key);
}

base::Result<std::shared_ptr<void>> rsa_key(const json& jwk) {
  const auto n = base64url_decode(member(jwk, "n"));
  const auto e = base64url_decode(member(jwk, "e"));
  if (!n || !e || n->empty() || e->empty()) {
    return make_error(ErrorCode::kValidation, "an RSA key needs base64url members n and e");
  }
  if (n->size() < 256) return make_error(ErrorCode::kValidation, "RSA keys shorter than 2048 bits are refused");
  std::unique_ptr<BIGNUM, BnFree> bn_n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n->data()),
                                                 static_cast<int>(n->size()), nullptr));
  std::unique_ptr<BIGNUM, BnFree> bn_e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e->data()),
                                                 static_cast<int>(e->size()), nullptr));
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld || !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get())) {
    return make_error(ErrorCode::kService, "OpenSSL could not hold the RSA parameters");
  }
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld.get()));
  return key_from_params("RSA", params.get());
}

base::Result<std::shared_ptr<void>> ec_key(const json& jwk) {
  const std::string crv = member(jwk, "crv");
  const char* group = crv == "P-256" ? "prime256v1" : crv == "P-384" ? "secp384r1" : nullptr;
  if (group == nullptr) return make_error(ErrorCode::kValidation, fmt::format("EC curve '{}' is not supported", crv));
  const std::size_t size = crv == "P-256" ? 32 : 48;
  auto x = base64url_decode(member(jwk, "x"));
  auto y = base64url_decode(member(jwk, "y"));
  if (!x || !y || x->empty() || y->empty() || x->size() > size || y->size() > size) {
    return make_error(ErrorCode::kValidation, fmt::format("an EC {} key needs x and y of {} bytes", crv, size));
  }
  // RFC 7518 wants full-size coordinates, but some JWK writers (PyJWT before
  // 2.8) drop leading zero bytes, one key in 128: pad them back.
  x->insert(0, size - x->size(), '\0');
  y->insert(0, size - y->size(), '\0');
  std::string point = "\x04" + *x + *y;  // uncompressed SEC1 point
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
      !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size())) {
    return make_error(ErrorCode::kService, "OpenSSL could not hold the EC parameters");
  }
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld.get()));
  return key_from_params("EC", params.get());
}

// JOSE's r||s to the DER ECDSA-Sig-Value OpenSSL verifies.
std::optional<std::string> ecdsa_der(std::string_view raw, std::size_t half) {
  if (raw.size() != 2 * half) return std::nullopt;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  if (sig == nullptr) return std::nullopt;
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), static_cast<int>(half), nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data() + half), static_cast<int>(half), nullptr);
  if (r == nullptr || s == nullptr || ECDSA_SIG_set0(sig, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return std::nullopt;
  }
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  if (len <= 0) return std::nullopt;
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

bool verify_signature(const Algorithm& alg, EVP_PKEY* key, std::string_view signed_part, std::string signature) {
  if (alg.ec_half != 0) {
    auto der = ecdsa_der(signature, alg.ec_half);
    if (!der) return false;
    signature = std::move(*der);
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, alg.digest(), nullptr, key) != 1) return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                          reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()) == 1;
}

std::string_view strip_bearer(std::string_view token) {
  if (token.size() > 7 && (token.substr(0, 7) == "Bearer " || token.substr(0, 7) == "bearer ")) token.remove_prefix(7);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  return token;
}

struct TokenParts {
  std::string_view header_b64, payload_b64, signature_b64;
  json header;
};

std::optional<TokenParts> split_token(std::string_view token) {
  const auto first = token.find('.');
  const auto second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) return std::nullopt;
  TokenParts parts{token.substr(0, first), token.substr(first + 1, second - first - 1), token.substr(second + 1), {}};
  const auto header = base64url_decode(parts.header_b64);
  if (!header) return std::nullopt;
  parts.header = json::parse(*header, nullptr, false);
  if (!parts.header.is_object()) return std::nullopt;
  return parts;
}

// A NumericDate claim; nullopt when absent, error text when malformed.
std::optional<std::int64_t> numeric_date(const json& claims, const char* name, bool& malformed) {
  const auto it = claims.find(name);
  if (it == claims.end()) return std::nullopt;
  if (!it->is_number()) {
    malformed = true;
    return std::nullopt;
  }
  return static_cast<std::int64_t>(it->get<double>());
}

std::vector<std::string> scopes_of(const json& claims) {
  std::vector<std::string> out;
  const auto add_words = [&](std::string_view text) {
    std::size_t start = 0;
    while (start < text.size()) {
      const auto end = std::min(text.find(' ', start), text.size());
      if (end > start) out.emplace_back(text.substr(start, end - start));
      start = end + 1;
    }
  };
  for (const char* name : {"scope", "scp"}) {
    const auto it = claims.find(name);
    if (it == claims.end()) continue;
    if (it->is_string()) add_words(it->get<std::string>());
    if (it->is_array()) {
      for (const auto& s : *it) {
        if (s.is_string()) out.push_back(s.get<std::string>());
      }
    }
  }
  return out;
}

JwtError fail(JwtFailure failure, std::string message) { return JwtError{failure, std::move(message)}; }

}  // namespace

std::optional<std::string> base64url_decode(std::string_view text) {
  if (text.find_first_of("+/=") != std::string_view::npos) return std::nullopt;
  std::string standard(text);
  for (char& c : standard) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  if (standard.size() % 4 == 1) return std::nullopt;
  standard.append((4 - standard.size() % 4) % 4, '=');
  return base::base64_decode(standard);
}

std::string base64url_encode(std::string_view bytes) {
  std::string out = base::base64_encode(bytes);
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

base::Result<KeySet> KeySet::parse(std::string_view jwks_json) {
  const json doc = json::parse(jwks_json, nullptr, false);
  if (!doc.is_object() || !doc.contains("keys") || !doc["keys"].is_array()) {
    return make_error(ErrorCode::kValidation, "the JWKS document must be a JSON object with a \"keys\" array");
  }
  KeySet set;
  std::string last_problem;
  for (const auto& jwk : doc["keys"]) {
    if (!jwk.is_object()) continue;
    const std::string use = member(jwk, "use");
    if (!use.empty() && use != "sig") continue;
    JsonWebKey key{member(jwk, "kid"), member(jwk, "alg"), member(jwk, "kty"), nullptr};
    base::Result<std::shared_ptr<void>> parsed = make_error(ErrorCode::kValidation, "unsupported key type");
    if (key.kty == "RSA") {
      parsed = rsa_key(jwk);
    } else if (key.kty == "EC") {
      parsed = ec_key(jwk);
    } else {
      continue;  // symmetric and OKP keys are not for API Gateway's checks
    }
    if (!parsed.ok()) {
      last_problem = fmt::format("key '{}': {}", key.kid, parsed.error().message);
      continue;
    }
    key.key = std::move(*parsed);
    set.keys_.push_back(std::move(key));
  }
  if (set.keys_.empty()) {
    return make_error(ErrorCode::kValidation,
                      "the JWKS document has no usable RSA or EC signing key" +
                          (last_problem.empty() ? std::string() : " (" + last_problem + ")"));
  }
  return set;
}

const JsonWebKey* KeySet::find(std::string_view kid) const {
  for (const auto& k : keys_) {
    if (k.kid == kid) return &k;
  }
  // A token without kid may use the only key of a one-key set.
  if (kid.empty() && keys_.size() == 1) return &keys_.front();
  return nullptr;
}

bool has_unknown_kid(std::string_view token, const KeySet& keys) {
  const auto parts = split_token(strip_bearer(token));
  if (!parts) return false;
  return keys.find(member(parts->header, "kid")) == nullptr;
}

std::variant<VerifiedJwt, JwtError> verify_jwt(std::string_view token, const KeySet& keys, const JwtPolicy& policy,
                                               std::int64_t now_s) {
  token = strip_bearer(token);
  const auto parts = split_token(token);
  if (!parts) return fail(JwtFailure::kMalformed, "the token is not a compact JWS (header.payload.signature)");
  const std::string alg_name = member(parts->header, "alg");
  const Algorithm* alg = find_algorithm(alg_name);
  if (alg == nullptr) {
    return fail(JwtFailure::kAlgorithm, fmt::format("algorithm '{}' is not accepted", alg_name));
  }
  const std::string kid = member(parts->header, "kid");
  const JsonWebKey* key = keys.find(kid);
  if (key == nullptr) return fail(JwtFailure::kUnknownKey, fmt::format("no key with kid '{}' in the JWKS", kid));
  if (key->kty != alg->kty || (!key->alg.empty() && key->alg != alg->name)) {
    return fail(JwtFailure::kAlgorithm, fmt::format("key '{}' is not for algorithm {}", kid, alg_name));
  }
  auto signature = base64url_decode(parts->signature_b64);
  if (!signature) return fail(JwtFailure::kMalformed, "the signature is not base64url");
  const std::string_view signed_part = token.substr(0, parts->header_b64.size() + 1 + parts->payload_b64.size());
  if (!verify_signature(*alg, static_cast<EVP_PKEY*>(key->key.get()), signed_part, std::move(*signature))) {
    return fail(JwtFailure::kSignature, "the signature does not verify");
  }
  const auto payload = base64url_decode(parts->payload_b64);
  json claims = payload ? json::parse(*payload, nullptr, false) : json();
  if (!claims.is_object()) return fail(JwtFailure::kMalformed, "the payload is not a JSON object");

  if (member(claims, "iss") != policy.issuer) {
    return fail(JwtFailure::kClaims, fmt::format("issuer '{}' is not '{}'", member(claims, "iss"), policy.issuer));
  }
  std::vector<std::string> audiences;
  if (const auto aud = claims.find("aud"); aud != claims.end()) {
    if (aud->is_string()) audiences.push_back(aud->get<std::string>());
    if (aud->is_array()) {
      for (const auto& a : *aud) {
        if (a.is_string()) audiences.push_back(a.get<std::string>());
      }
    }
  }
  if (const std::string client_id = member(claims, "client_id"); !client_id.empty()) audiences.push_back(client_id);
  const bool audience_ok = std::any_of(audiences.begin(), audiences.end(), [&](const std::string& a) {
    return std::find(policy.audience.begin(), policy.audience.end(), a) != policy.audience.end();
  });
  if (!audience_ok) return fail(JwtFailure::kClaims, "neither aud nor client_id is an accepted audience");
  bool malformed = false;
  const auto exp = numeric_date(claims, "exp", malformed);
  const auto nbf = numeric_date(claims, "nbf", malformed);
  const auto iat = numeric_date(claims, "iat", malformed);
  if (malformed) return fail(JwtFailure::kClaims, "exp, nbf and iat must be numbers");
  if (!exp) return fail(JwtFailure::kClaims, "the token has no exp claim");
  if (*exp <= now_s) return fail(JwtFailure::kClaims, fmt::format("the token expired at {}", *exp));
  if (nbf && *nbf > now_s) return fail(JwtFailure::kClaims, fmt::format("the token is not valid before {}", *nbf));
  if (iat && *iat > now_s) return fail(JwtFailure::kClaims, fmt::format("the token was issued in the future ({})", *iat));
  VerifiedJwt out{parts->header, std::move(claims), {}};
  out.scopes = scopes_of(out.claims);
  return out;
}

json claims_as_strings(const json& claims) {
  json out = json::object();
  for (const auto& [name, value] : claims.items()) {
    if (value.is_string()) {
      out[name] = value;
    } else if (value.is_array()) {
      std::string joined = "[";
      for (std::size_t i = 0; i < value.size(); ++i) {
        if (i > 0) joined += ' ';
        joined += value[i].is_string() ? value[i].get<std::string>() : value[i].dump();
      }
      out[name] = joined + "]";
    } else {
      out[name] = value.dump();
    }
  }
  return out;
}

}  // namespace nimbus::gateway
