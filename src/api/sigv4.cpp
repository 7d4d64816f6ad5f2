#include "api/sigv4.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <set>
#include <utility>

#include "base/check.h"
#include "base/clock.h"
#include "base/crypto.h"

namespace nimbus::api {
namespace {

using base::ErrorCode;
using base::make_error;

constexpr std::string_view kMissingToken = "Missing Authentication Token";
constexpr std::string_view kUnknownKey = "The security token included in the request is invalid.";
constexpr std::string_view kMismatch =
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details.";
constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";

std::string_view to_std(boost::beast::string_view s) { return {s.data(), s.size()}; }

bool is_blank(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string to_lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), ascii_lower);
  return out;
}

bool is_digits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_hex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
         });
}

// Splits on `sep`, keeping empty pieces.
std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (true) {
    const auto at = s.find(sep);
    out.push_back(s.substr(0, at));
    if (at == std::string_view::npos) break;
    s.remove_prefix(at + 1);
  }
  return out;
}

// "5 min." for whole minutes, as AWS writes it; seconds or ms otherwise.
std::string describe_skew(std::int64_t ms) {
  if (ms % 60000 == 0) return fmt::format("{} min.", ms / 60000);
  if (ms % 1000 == 0) return fmt::format("{} s.", ms / 1000);
  return fmt::format("{} ms", ms);
}

// The request date for the string to sign: X-Amz-Date as sent, else Date
// converted. Errors name what is missing or malformed.
base::Result<std::string> request_amz_date(const http::Request& request) {
  if (request.count("X-Amz-Date") > 1) {
    return make_error(ErrorCode::kInvalidSignature, "Only one 'X-Amz-Date' header is allowed.");
  }
  const auto amz = request.find("X-Amz-Date");
  if (amz != request.end()) {
    std::string value(trim(to_std(amz->value())));
    // base::parse_amz_date alone lets strptime skip blanks inside the fields.
    const bool digits = value.size() == 16 && is_digits(std::string_view(value).substr(0, 8)) &&
                        is_digits(std::string_view(value).substr(9, 6));
    if (!digits || base::parse_amz_date(value) < 0) {
      return make_error(
          ErrorCode::kInvalidSignature,
          fmt::format("X-Amz-Date header '{}' is not in the form YYYYMMDDThhmmssZ.", value));
    }
    return value;
  }
  const auto date = request.find(http::Field::date);
  if (date != request.end()) {
    const std::string_view value = trim(to_std(date->value()));
    auto converted = detail::amz_date_from_http_date(value);
    if (!converted || base::parse_amz_date(*converted) < 0) {
      return make_error(ErrorCode::kInvalidSignature,
                        fmt::format("Date header '{}' is not an RFC 1123 date "
                                    "(Sun, 01 Jan 2023 00:00:00 GMT).",
                                    value));
    }
    return std::move(*converted);
  }
  return make_error(ErrorCode::kInvalidSignature,
                    "Authorization header requires existence of either a 'X-Amz-Date' or a "
                    "'Date' header.");
}

// The scope checks AWS makes before looking at the signature.
base::Status check_scope(const detail::ParsedAuthorization& auth, std::string_view amz_date,
                         std::string_view expected_service) {
  if (auth.terminator != detail::kScopeTerminator) {
    return make_error(ErrorCode::kInvalidSignature,
                      fmt::format("Credential should be scoped with a valid terminator: '{}', "
                                  "not '{}'.",
                                  detail::kScopeTerminator, auth.terminator));
  }
  if (auth.service != expected_service) {
    return make_error(
        ErrorCode::kInvalidSignature,
        fmt::format("Credential should be scoped to correct service: '{}'.", expected_service));
  }
  if (auth.region.empty()) {
    return make_error(ErrorCode::kInvalidSignature,
                      "Credential should be scoped to a valid region.");
  }
  if (auth.scope_date != amz_date.substr(0, 8)) {
    return make_error(ErrorCode::kInvalidSignature,
                      fmt::format("Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                                  "version of date from HTTP: '{}' != '{}', from '{}'.",
                                  auth.scope_date, amz_date.substr(0, 8), amz_date));
  }
  return base::Ok{};
}

base::Status check_skew(std::string_view amz_date, std::int64_t now_ms, std::int64_t max_skew_ms) {
  const std::int64_t signed_ms = base::parse_amz_date(std::string(amz_date));
  if (signed_ms < now_ms - max_skew_ms) {
    return make_error(ErrorCode::kInvalidSignature,
                      fmt::format("Signature expired: {} is now earlier than {} ({} - {})",
                                  amz_date, base::format_amz_date(now_ms - max_skew_ms),
                                  base::format_amz_date(now_ms), describe_skew(max_skew_ms)));
  }
  if (signed_ms > now_ms + max_skew_ms) {
    return make_error(ErrorCode::kInvalidSignature,
                      fmt::format("Signature not yet current: {} is still later than {} ({} + {})",
                                  amz_date, base::format_amz_date(now_ms + max_skew_ms),
                                  base::format_amz_date(now_ms), describe_skew(max_skew_ms)));
  }
  return base::Ok{};
}

// The hash to put last in the canonical request. A hex X-Amz-Content-SHA256
// must match the body (it would otherwise vouch for a body that was replaced);
// UNSIGNED-PAYLOAD is the signer's choice and is accepted; other values
// (streaming chunk signatures) are not supported.
base::Result<std::string> checked_payload_hash(const http::Request& request) {
  const auto header = request.find("X-Amz-Content-SHA256");
  if (header == request.end()) return base::to_hex(base::sha256(request.body()));
  std::string value(trim(to_std(header->value())));
  if (value == kUnsignedPayload) return value;
  if (!is_hex64(value)) {
    return make_error(ErrorCode::kInvalidSignature,
                      fmt::format("X-Amz-Content-SHA256 value '{}' is not supported; send the "
                                  "hex SHA-256 of the body or UNSIGNED-PAYLOAD.",
                                  value));
  }
  if (to_lower(value) != base::to_hex(base::sha256(request.body()))) {
    return make_error(ErrorCode::kInvalidSignature,
                      "The provided 'x-amz-content-sha256' header does not match what was "
                      "computed.");
  }
  return value;
}

}  // namespace

namespace detail {

base::Result<ParsedAuthorization> parse_authorization(std::string_view value) {
  value = trim(value);
  const auto space = value.find(' ');
  const std::string_view algorithm = value.substr(0, space);
  if (algorithm != kAlgorithm) {
    return make_error(ErrorCode::kInvalidSignature,
                      fmt::format("Unsupported Authorization algorithm '{}'; expected {}.",
                                  algorithm, kAlgorithm));
  }
  const std::string_view rest =
      space == std::string_view::npos ? std::string_view{} : value.substr(space + 1);

  std::optional<std::string_view> credential;
  std::optional<std::string_view> signed_headers;
  std::optional<std::string_view> signature;
  for (std::string_view part : split(rest, ',')) {
    part = trim(part);
    if (part.empty()) continue;
    const auto eq = part.find('=');
    if (eq == std::string_view::npos) {
      return make_error(ErrorCode::kInvalidSignature,
                        fmt::format("Authorization header parameter '{}' is not of the form "
                                    "key=value.",
                                    part));
    }
    const std::string_view key = trim(part.substr(0, eq));
    const std::string_view val = trim(part.substr(eq + 1));
    std::optional<std::string_view>* slot = nullptr;
    if (key == "Credential") slot = &credential;
    if (key == "SignedHeaders") slot = &signed_headers;
    if (key == "Signature") slot = &signature;
    if (slot == nullptr) continue;  // unknown parameters are ignored, as AWS does
    if (slot->has_value()) {
      return make_error(ErrorCode::kInvalidSignature,
                        fmt::format("Authorization header has more than one '{}' parameter.", key));
    }
    *slot = val;
  }

  std::string missing;
  if (!credential) missing += "Authorization header requires 'Credential' parameter. ";
  if (!signed_headers) missing += "Authorization header requires 'SignedHeaders' parameter. ";
  if (!signature) missing += "Authorization header requires 'Signature' parameter. ";
  if (!missing.empty()) {
    return make_error(ErrorCode::kInvalidSignature,
                      fmt::format("{}Authorization={}", missing, value));
  }

  ParsedAuthorization out;
  const std::vector<std::string_view> scope = split(*credential, '/');
  if (scope.size() != 5 || scope[0].empty() || scope[1].size() != 8 || !is_digits(scope[1])) {
    return make_error(ErrorCode::kInvalidSignature,
                      fmt::format("Credential '{}' is not of the form "
                                  "<AccessKeyId>/<YYYYMMDD>/<region>/<service>/aws4_request.",
                                  *credential));
  }
  out.access_key_id = std::string(scope[0]);
  out.scope_date = std::string(scope[1]);
  out.region = std::string(scope[2]);
  out.service = std::string(scope[3]);
  out.terminator = std::string(scope[4]);

  for (std::string_view name : split(*signed_headers, ';')) {
    if (name.empty()) {
      return make_error(
          ErrorCode::kInvalidSignature,
          fmt::format("SignedHeaders '{}' contains an empty header name.", *signed_headers));
    }
    out.signed_headers.emplace_back(name);
  }
  if (signature->empty()) {
    return make_error(ErrorCode::kInvalidSignature, "Authorization header has an empty Signature.");
  }
  out.signature = std::string(*signature);
  return out;
}

std::string canonical_uri(std::string_view raw_path) {
  if (raw_path.empty()) return "/";
  return http::percent_encode(raw_path, /*keep_slash=*/true);
}

std::string canonical_query(std::string_view raw_query) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (std::string_view part : split(raw_query, '&')) {
    if (part.empty()) continue;
    const auto eq = part.find('=');
    const std::string_view raw_name = part.substr(0, eq);
    const std::string_view raw_value =
        eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1);
    std::string name;
    std::string value;
    if (!http::percent_decode(raw_name, name)) name = std::string(raw_name);
    if (!http::percent_decode(raw_value, value)) value = std::string(raw_value);
    pairs.emplace_back(http::percent_encode(name), http::percent_encode(value));
  }
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (const auto& [name, value] : pairs) {
    if (!out.empty()) out.push_back('&');
    out += name;
    out.push_back('=');
    out += value;
  }
  return out;
}

std::string canonical_header_value(std::string_view value) {
  value = trim(value);
  std::string out;
  out.reserve(value.size());
  bool in_blank = false;
  for (char c : value) {
    if (is_blank(c)) {
      in_blank = true;
      continue;
    }
    if (in_blank) out.push_back(' ');
    in_blank = false;
    out.push_back(c);
  }
  return out;
}

base::Result<std::string> canonical_request(const http::Request& request,
                                            const std::vector<std::string>& signed_headers,
                                            std::string_view payload_hash) {
  const auto [raw_path, raw_query] = http::split_target(to_std(request.target()));
  std::string out;
  out += to_std(request.method_string());
  out.push_back('\n');
  out += canonical_uri(raw_path);
  out.push_back('\n');
  out += canonical_query(raw_query);
  out.push_back('\n');
  for (const std::string& name : signed_headers) {
    const auto range = request.equal_range(name);
    if (range.first == range.second) {
      return make_error(ErrorCode::kInvalidSignature,
                        fmt::format("Header '{}' is listed in SignedHeaders but is not present "
                                    "in the request.",
                                    name));
    }
    out += name;
    out.push_back(':');
    bool first = true;
    for (auto it = range.first; it != range.second; ++it) {
      if (!first) out.push_back(',');
      first = false;
      out += canonical_header_value(to_std(it->value()));
    }
    out.push_back('\n');
  }
  out.push_back('\n');
  for (std::size_t i = 0; i < signed_headers.size(); ++i) {
    if (i > 0) out.push_back(';');
    out += signed_headers[i];
  }
  out.push_back('\n');
  out += payload_hash;
  return out;
}

std::string credential_scope(std::string_view scope_date, std::string_view region,
                             std::string_view service) {
  return fmt::format("{}/{}/{}/{}", scope_date, region, service, kScopeTerminator);
}

std::string string_to_sign(std::string_view amz_date, std::string_view scope,
                           std::string_view canonical_request) {
  return fmt::format("{}\n{}\n{}\n{}", kAlgorithm, amz_date, scope,
                     base::to_hex(base::sha256(canonical_request)));
}

std::string signing_key(std::string_view secret, std::string_view scope_date,
                        std::string_view region, std::string_view service) {
  const std::string seed = "AWS4" + std::string(secret);
  auto key = base::hmac_sha256(seed, scope_date);
  key = base::hmac_sha256(base::as_bytes(key), region);
  key = base::hmac_sha256(base::as_bytes(key), service);
  key = base::hmac_sha256(base::as_bytes(key), kScopeTerminator);
  return std::string(base::as_bytes(key));
}

std::string compute_signature(std::string_view secret, std::string_view amz_date,
                              std::string_view region, std::string_view service,
                              std::string_view canonical_request) {
  const std::string_view scope_date = amz_date.substr(0, 8);
  const std::string key = signing_key(secret, scope_date, region, service);
  const std::string to_sign =
      string_to_sign(amz_date, credential_scope(scope_date, region, service), canonical_request);
  return base::to_hex(base::hmac_sha256(key, to_sign));
}

std::string payload_hash(const http::Request& request) {
  const auto header = request.find("X-Amz-Content-SHA256");
  if (header != request.end()) return std::string(trim(to_std(header->value())));
  return base::to_hex(base::sha256(request.body()));
}

std::optional<std::string> amz_date_from_http_date(std::string_view http_date) {
  // "Sun, 01 Jan 2023 00:00:00 GMT": fixed width, 29 characters.
  static constexpr std::array<std::string_view, 12> kMonths = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  static constexpr std::array<std::string_view, 7> kDays = {"Mon", "Tue", "Wed", "Thu",
                                                            "Fri", "Sat", "Sun"};
  if (http_date.size() != 29) return std::nullopt;
  const std::string_view day_name = http_date.substr(0, 3);
  if (std::find(kDays.begin(), kDays.end(), day_name) == kDays.end()) return std::nullopt;
  if (http_date.substr(3, 2) != ", " || http_date[7] != ' ' || http_date[11] != ' ' ||
      http_date[16] != ' ' || http_date[19] != ':' || http_date[22] != ':' ||
      http_date.substr(25) != " GMT") {
    return std::nullopt;
  }
  const std::string_view day = http_date.substr(5, 2);
  const std::string_view year = http_date.substr(12, 4);
  const std::string_view hour = http_date.substr(17, 2);
  const std::string_view minute = http_date.substr(20, 2);
  const std::string_view second = http_date.substr(23, 2);
  if (!is_digits(day) || !is_digits(year) || !is_digits(hour) || !is_digits(minute) ||
      !is_digits(second)) {
    return std::nullopt;
  }
  const auto month = std::find(kMonths.begin(), kMonths.end(), http_date.substr(8, 3));
  if (month == kMonths.end()) return std::nullopt;
  const int month_number = static_cast<int>(month - kMonths.begin()) + 1;
  return fmt::format("{}{:02}{}T{}{}{}Z", year, month_number, day, hour, minute, second);
}

}  // namespace detail

base::Result<SigV4Identity> verify_sigv4(const http::Request& request, const SecretLookup& lookup,
                                         std::string_view expected_service, std::int64_t now_ms,
                                         std::int64_t max_skew_ms) {
  const std::size_t authorization_count = request.count(http::Field::authorization);
  if (authorization_count == 0) {
    return make_error(ErrorCode::kMissingAuthentication, std::string(kMissingToken));
  }
  if (authorization_count > 1) {
    return make_error(ErrorCode::kInvalidSignature, "Only one 'Authorization' header is allowed.");
  }
  auto auth = detail::parse_authorization(to_std(request[http::Field::authorization]));
  if (!auth) return std::move(auth).error();

  auto amz_date = request_amz_date(request);
  if (!amz_date) return std::move(amz_date).error();

  NIMBUS_TRY(check_scope(*auth, *amz_date, expected_service));
  if (std::find(auth->signed_headers.begin(), auth->signed_headers.end(), "host") ==
      auth->signed_headers.end()) {
    return make_error(ErrorCode::kInvalidSignature,
                      "'Host' must be a 'SignedHeader' in the AWS Authorization.");
  }
  NIMBUS_TRY(check_skew(*amz_date, now_ms, max_skew_ms));

  const std::optional<std::string> secret = lookup(auth->access_key_id);
  if (!secret) return make_error(ErrorCode::kUnrecognizedClient, std::string(kUnknownKey));

  auto hash = checked_payload_hash(request);
  if (!hash) return std::move(hash).error();
  auto canonical = detail::canonical_request(request, auth->signed_headers, *hash);
  if (!canonical) return std::move(canonical).error();

  const std::string expected =
      detail::compute_signature(*secret, *amz_date, auth->region, auth->service, *canonical);
  if (!base::constant_time_equal(expected, auth->signature)) {
    return make_error(ErrorCode::kInvalidSignature, std::string(kMismatch));
  }
  return SigV4Identity{std::move(auth->access_key_id), std::move(auth->region),
                       std::move(auth->service)};
}

void sign_sigv4(http::Request& request, const Credentials& credentials, std::string_view region,
                std::string_view service, std::int64_t now_ms) {
  NIMBUS_DCHECK(request.find(http::Field::host) != request.end());
  const std::string amz_date = base::format_amz_date(now_ms);
  request.set("X-Amz-Date", amz_date);
  request.erase(http::Field::authorization);

  std::set<std::string> names = {"x-amz-date"};
  for (const auto& field : request) {
    std::string name = to_lower(to_std(field.name_string()));
    if (name == "host" || name == "content-type" || name.starts_with("x-amz-")) {
      names.insert(std::move(name));
    }
  }
  const std::vector<std::string> signed_headers(names.begin(), names.end());

  auto canonical =
      detail::canonical_request(request, signed_headers, detail::payload_hash(request));
  // Every listed header was taken from the request, so this cannot fail.
  NIMBUS_CHECK(canonical.ok());
  const std::string signature = detail::compute_signature(credentials.secret_access_key, amz_date,
                                                          region, service, *canonical);

  std::string header_list;
  for (const std::string& name : signed_headers) {
    if (!header_list.empty()) header_list.push_back(';');
    header_list += name;
  }
  request.set(http::Field::authorization,
              fmt::format("{} Credential={}/{}, SignedHeaders={}, Signature={}", detail::kAlgorithm,
                          credentials.access_key_id,
                          detail::credential_scope(amz_date.substr(0, 8), region, service),
                          header_list, signature));
}

}  // namespace nimbus::api
