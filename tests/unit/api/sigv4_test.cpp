#include "api/sigv4.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>

#include "base/clock.h"

namespace nimbus::api {
namespace {

using base::ErrorCode;

constexpr std::string_view kAkid = "AKIDEXAMPLE";
constexpr std::string_view kSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr std::string_view kHost = "127.0.0.1:19001";
constexpr std::string_view kVectorDate = "20230101T000000Z";
constexpr std::string_view kMismatch =
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details.";

// Reference vectors of shared/reference/lambda-api.md §6.2.
constexpr std::string_view kInvokeTarget =
    "/2015-03-31/functions/my-function/invocations?Qualifier=prod";
constexpr std::string_view kInvokeBody = R"({"hello":"world"})";
constexpr std::string_view kInvokeSignature =
    "e98943807e910c10350d5ae8df681356252f772c861595a55581e64826faa37e";
constexpr std::string_view kTagsTarget =
    "/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-function";
constexpr std::string_view kTagsSignature =
    "c1f83c36826de3bba6ab8eb001a2721aba438535958c84a7fdfd206cd0e27d47";

std::int64_t vector_now_ms() { return base::parse_amz_date(std::string(kVectorDate)); }

SecretLookup example_lookup() {
  return [](std::string_view akid) -> std::optional<std::string> {
    if (akid == kAkid) return std::string(kSecret);
    return std::nullopt;
  };
}

http::Request make_request(http::Verb verb, std::string_view target, std::string_view body) {
  http::Request request{verb, std::string(target), 11};
  request.set(http::Field::host, kHost);
  request.body() = std::string(body);
  request.prepare_payload();
  return request;
}

std::string vector_authorization(std::string_view signature) {
  return "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20230101/us-east-1/lambda/aws4_request, "
         "SignedHeaders=host;x-amz-date, Signature=" +
         std::string(signature);
}

// A reference-vector request with the headers botocore sent.
http::Request vector_request(http::Verb verb, std::string_view target, std::string_view body,
                             std::string_view signature) {
  http::Request request = make_request(verb, target, body);
  request.set("X-Amz-Date", kVectorDate);
  request.set(http::Field::authorization, vector_authorization(signature));
  return request;
}

// An Invoke request as botocore would send it, signed at the vector date.
http::Request signed_invoke(const Credentials& credentials) {
  http::Request request = make_request(http::Verb::post, kInvokeTarget, kInvokeBody);
  request.set(http::Field::content_type, "application/json");
  request.set("X-Amz-Invocation-Type", "RequestResponse");
  request.set(http::Field::user_agent, "Boto3/1.26.165");
  sign_sigv4(request, credentials, "us-east-1", "lambda", vector_now_ms());
  return request;
}

Credentials example_credentials() { return {std::string(kAkid), std::string(kSecret)}; }

base::Result<SigV4Identity> verify_at_vector_date(const http::Request& request) {
  return verify_sigv4(request, example_lookup(), "lambda", vector_now_ms());
}

void expect_error(const base::Result<SigV4Identity>& result, ErrorCode code,
                  std::string_view message_part) {
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, code);
  EXPECT_NE(result.error().message.find(message_part), std::string::npos)
      << "message: " << result.error().message;
}

// --- reference vectors -------------------------------------------------------

TEST(SigV4Vectors, InvokePostVerifies) {
  const http::Request request =
      vector_request(http::Verb::post, kInvokeTarget, kInvokeBody, kInvokeSignature);
  const auto identity = verify_at_vector_date(request);
  ASSERT_TRUE(identity.ok()) << identity.error().message;
  EXPECT_EQ(identity->access_key_id, kAkid);
  EXPECT_EQ(identity->region, "us-east-1");
  EXPECT_EQ(identity->service, "lambda");
}

TEST(SigV4Vectors, InvokePostComputedSignatureMatches) {
  const http::Request request =
      vector_request(http::Verb::post, kInvokeTarget, kInvokeBody, kInvokeSignature);
  EXPECT_EQ(detail::payload_hash(request),
            "93a23971a914e5eacbf0a8d25154cda309c3c1c72fbb9914d47c60f3cb681588");
  const auto canonical =
      detail::canonical_request(request, {"host", "x-amz-date"}, detail::payload_hash(request));
  ASSERT_TRUE(canonical.ok());
  EXPECT_EQ(*canonical,
            "POST\n/2015-03-31/functions/my-function/invocations\nQualifier=prod\n"
            "host:127.0.0.1:19001\nx-amz-date:20230101T000000Z\n\nhost;x-amz-date\n"
            "93a23971a914e5eacbf0a8d25154cda309c3c1c72fbb9914d47c60f3cb681588");
  EXPECT_EQ(detail::compute_signature(kSecret, kVectorDate, "us-east-1", "lambda", *canonical),
            kInvokeSignature);
}

TEST(SigV4Vectors, TagsGetVerifies) {
  const http::Request request = vector_request(http::Verb::get, kTagsTarget, "", kTagsSignature);
  const auto identity = verify_at_vector_date(request);
  ASSERT_TRUE(identity.ok()) << identity.error().message;
  EXPECT_EQ(identity->access_key_id, kAkid);
}

TEST(SigV4Vectors, TagsGetComputedSignatureMatches) {
  const http::Request request = vector_request(http::Verb::get, kTagsTarget, "", kTagsSignature);
  const auto canonical =
      detail::canonical_request(request, {"host", "x-amz-date"}, detail::payload_hash(request));
  ASSERT_TRUE(canonical.ok());
  EXPECT_EQ(*canonical,
            "GET\n/2017-03-31/tags/"
            "arn%253Aaws%253Alambda%253Aus-east-1%253A123456789012%253Afunction%253Amy-function\n"
            "\nhost:127.0.0.1:19001\nx-amz-date:20230101T000000Z\n\nhost;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(detail::compute_signature(kSecret, kVectorDate, "us-east-1", "lambda", *canonical),
            kTagsSignature);
}

TEST(SigV4Vectors, SigningReproducesInvokeVector) {
  http::Request request = make_request(http::Verb::post, kInvokeTarget, kInvokeBody);
  sign_sigv4(request, example_credentials(), "us-east-1", "lambda", vector_now_ms());
  EXPECT_EQ(request["X-Amz-Date"], kVectorDate);
  EXPECT_EQ(request[http::Field::authorization], vector_authorization(kInvokeSignature));
}

TEST(SigV4Vectors, SigningReproducesTagsVector) {
  http::Request request = make_request(http::Verb::get, kTagsTarget, "");
  sign_sigv4(request, example_credentials(), "us-east-1", "lambda", vector_now_ms());
  EXPECT_EQ(request[http::Field::authorization], vector_authorization(kTagsSignature));
}

// --- canonical pieces ----------------------------------------------------------

TEST(SigV4Canonical, UriEncodesRawPathOnceMore) {
  EXPECT_EQ(detail::canonical_uri(""), "/");
  EXPECT_EQ(detail::canonical_uri("/"), "/");
  EXPECT_EQ(detail::canonical_uri("/tags/arn%3Aaws"), "/tags/arn%253Aaws");
  EXPECT_EQ(detail::canonical_uri("/a b/$LATEST/x-y_z.~"), "/a%20b/%24LATEST/x-y_z.~");
}

TEST(SigV4Canonical, QueryDecodesReencodesAndSorts) {
  EXPECT_EQ(detail::canonical_query(""), "");
  EXPECT_EQ(detail::canonical_query("Qualifier=prod"), "Qualifier=prod");
  EXPECT_EQ(detail::canonical_query("b=2&a=%41&a=1&c"), "a=1&a=A&b=2&c=");
  EXPECT_EQ(detail::canonical_query("x=a%20b+c&y=%3a%2F"), "x=a%20b%2Bc&y=%3A%2F");
  EXPECT_EQ(detail::canonical_query("k=v=w"), "k=v%3Dw");
  EXPECT_EQ(detail::canonical_query("&&Marker=&"), "Marker=");
  EXPECT_EQ(detail::canonical_query("bad=%zz"), "bad=%25zz");
}

TEST(SigV4Canonical, HeaderValueTrimmedAndCollapsed) {
  EXPECT_EQ(detail::canonical_header_value("  a   b \t c  "), "a b c");
  EXPECT_EQ(detail::canonical_header_value("plain"), "plain");
  EXPECT_EQ(detail::canonical_header_value(" \t "), "");
}

TEST(SigV4Canonical, RequestJoinsRepeatedHeaders) {
  http::Request request = make_request(http::Verb::get, "/p?b=1&a=2", "");
  request.insert("X-Amz-Meta", " one  two ");
  request.insert("X-Amz-Meta", "three");
  const auto canonical =
      detail::canonical_request(request, {"host", "x-amz-meta"}, "UNSIGNED-PAYLOAD");
  ASSERT_TRUE(canonical.ok());
  EXPECT_EQ(*canonical,
            "GET\n/p\na=2&b=1\nhost:127.0.0.1:19001\nx-amz-meta:one two,three\n\n"
            "host;x-amz-meta\nUNSIGNED-PAYLOAD");
}

TEST(SigV4Canonical, RequestFailsOnAbsentSignedHeader) {
  const http::Request request = make_request(http::Verb::get, "/", "");
  const auto canonical = detail::canonical_request(request, {"host", "x-amz-date"}, "h");
  ASSERT_FALSE(canonical.ok());
  EXPECT_EQ(canonical.error().code, ErrorCode::kInvalidSignature);
  EXPECT_NE(canonical.error().message.find("x-amz-date"), std::string::npos);
}

TEST(SigV4Canonical, PayloadHashPrefersContentSha256Header) {
  http::Request request = make_request(http::Verb::put, "/", "abc");
  EXPECT_EQ(detail::payload_hash(request),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  request.set("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD");
  EXPECT_EQ(detail::payload_hash(request), "UNSIGNED-PAYLOAD");
}

TEST(SigV4Canonical, HttpDateConverts) {
  EXPECT_EQ(detail::amz_date_from_http_date("Sun, 01 Jan 2023 00:00:00 GMT"), "20230101T000000Z");
  EXPECT_EQ(detail::amz_date_from_http_date("Tue, 31 Dec 2024 23:59:58 GMT"), "20241231T235958Z");
  EXPECT_EQ(detail::amz_date_from_http_date("Sun, 01 Foo 2023 00:00:00 GMT"), std::nullopt);
  EXPECT_EQ(detail::amz_date_from_http_date("Sun, 01 Jan 2023 00:00:00 UTC"), std::nullopt);
  EXPECT_EQ(detail::amz_date_from_http_date("20230101T000000Z"), std::nullopt);
  EXPECT_EQ(detail::amz_date_from_http_date(""), std::nullopt);
}

// --- Authorization header parsing ----------------------------------------------

TEST(SigV4Parse, WellFormedHeader) {
  const auto parsed = detail::parse_authorization(vector_authorization(kTagsSignature));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->access_key_id, "AKIDEXAMPLE");
  EXPECT_EQ(parsed->scope_date, "20230101");
  EXPECT_EQ(parsed->region, "us-east-1");
  EXPECT_EQ(parsed->service, "lambda");
  EXPECT_EQ(parsed->terminator, "aws4_request");
  EXPECT_EQ(parsed->signed_headers, (std::vector<std::string>{"host", "x-amz-date"}));
  EXPECT_EQ(parsed->signature, kTagsSignature);
}

TEST(SigV4Parse, ToleratesMissingSpacesAfterCommas) {
  const auto parsed = detail::parse_authorization(
      "AWS4-HMAC-SHA256 Credential=K/20230101/r/s/aws4_request,SignedHeaders=host,Signature=ab");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->signature, "ab");
}

TEST(SigV4Parse, RejectsOtherAlgorithm) {
  const auto parsed = detail::parse_authorization(
      "AWS4-HMAC-SHA512 Credential=K/20230101/r/s/aws4_request, SignedHeaders=host, Signature=ab");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidSignature);
  EXPECT_NE(parsed.error().message.find("AWS4-HMAC-SHA512"), std::string::npos);
}

TEST(SigV4Parse, NamesMissingParameters) {
  const auto parsed = detail::parse_authorization("AWS4-HMAC-SHA256 SignedHeaders=host");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidSignature);
  EXPECT_NE(parsed.error().message.find("requires 'Credential'"), std::string::npos);
  EXPECT_NE(parsed.error().message.find("requires 'Signature'"), std::string::npos);
  EXPECT_EQ(parsed.error().message.find("requires 'SignedHeaders'"), std::string::npos);
}

TEST(SigV4Parse, RejectsMalformedCredential) {
  for (
      const char* header : {
          "AWS4-HMAC-SHA256 Credential=K/20230101/r/aws4_request, SignedHeaders=host, Signature=a",
          "AWS4-HMAC-SHA256 Credential=K/2023011/r/s/aws4_request, SignedHeaders=host, Signature=a",
          "AWS4-HMAC-SHA256 Credential=/20230101/r/s/aws4_request, SignedHeaders=host, Signature=a",
          "AWS4-HMAC-SHA256 Credential=K/20230101/r/s/aws4_request, SignedHeaders=host;;x, "
          "Signature=a",
          "AWS4-HMAC-SHA256 Credential=K/20230101/r/s/aws4_request, SignedHeaders=host, Signature=",
          "AWS4-HMAC-SHA256 Credential, SignedHeaders=host, Signature=a",
          "AWS4-HMAC-SHA256 Credential=K/20230101/r/s/aws4_request, Credential=K/20230101/r/s/"
          "aws4_request, SignedHeaders=host, Signature=a",
          "",
      }) {
    const auto parsed = detail::parse_authorization(header);
    EXPECT_FALSE(parsed.ok()) << header;
    if (!parsed.ok()) {
      EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidSignature) << header;
    }
  }
}

// --- round trip -------------------------------------------------------------------

TEST(SigV4RoundTrip, SignedRequestVerifies) {
  const http::Request request = signed_invoke(example_credentials());
  const auto identity = verify_at_vector_date(request);
  ASSERT_TRUE(identity.ok()) << identity.error().message;
  EXPECT_EQ(identity->access_key_id, kAkid);
  EXPECT_EQ(identity->region, "us-east-1");
  EXPECT_EQ(identity->service, "lambda");
}

TEST(SigV4RoundTrip, SignsBotocoreHeaderSet) {
  http::Request request = signed_invoke(example_credentials());
  const auto parsed = detail::parse_authorization(std::string(request[http::Field::authorization]));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->signed_headers, (std::vector<std::string>{"content-type", "host", "x-amz-date",
                                                              "x-amz-invocation-type"}));
  EXPECT_EQ(parsed->scope_date, "20230101");
}

TEST(SigV4RoundTrip, EncodedPathQueryAndEmptyBodyVerify) {
  http::Request request =
      make_request(http::Verb::get,
                   "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af/"
                   "aliases?Marker=a%2Bb%20c&FunctionVersion=%24LATEST&MaxItems=5",
                   "");
  request.set("X-Amz-Security-Token", "session token");
  sign_sigv4(request, example_credentials(), "eu-west-1", "lambda", vector_now_ms() + 1234);
  const auto identity =
      verify_sigv4(request, example_lookup(), "lambda", vector_now_ms() + 60 * 1000);
  ASSERT_TRUE(identity.ok()) << identity.error().message;
  EXPECT_EQ(identity->region, "eu-west-1");
}

TEST(SigV4RoundTrip, ResigningReplacesOldAuthorization) {
  http::Request request = signed_invoke(example_credentials());
  const std::int64_t later = vector_now_ms() + 3600 * 1000;
  sign_sigv4(request, example_credentials(), "us-east-1", "lambda", later);
  EXPECT_EQ(request.count(http::Field::authorization), 1U);
  EXPECT_TRUE(verify_sigv4(request, example_lookup(), "lambda", later).ok());
}

TEST(SigV4RoundTrip, UnsignedHeaderMayChange) {
  http::Request request = signed_invoke(example_credentials());
  request.set(http::Field::user_agent, "something else");
  request.set("amz-sdk-request", "attempt=2; max=3");
  EXPECT_TRUE(verify_at_vector_date(request).ok());
}

TEST(SigV4RoundTrip, ContentSha256HeaderMatchingBodyVerifies) {
  http::Request request = make_request(http::Verb::put, "/x", "payload");
  request.set("X-Amz-Content-SHA256", detail::payload_hash(request));
  sign_sigv4(request, example_credentials(), "us-east-1", "lambda", vector_now_ms());
  EXPECT_TRUE(verify_at_vector_date(request).ok());
}

TEST(SigV4RoundTrip, DateHeaderFallback) {
  // A client that sends only Date (RFC 1123): the string to sign uses its
  // YYYYMMDDThhmmssZ form.
  http::Request request = make_request(http::Verb::get, kTagsTarget, "");
  request.set(http::Field::date, "Sun, 01 Jan 2023 00:00:00 GMT");
  const auto canonical =
      detail::canonical_request(request, {"date", "host"}, detail::payload_hash(request));
  ASSERT_TRUE(canonical.ok());
  const std::string signature =
      detail::compute_signature(kSecret, kVectorDate, "us-east-1", "lambda", *canonical);
  request.set(http::Field::authorization,
              "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20230101/us-east-1/lambda/aws4_request, "
              "SignedHeaders=date;host, Signature=" +
                  signature);
  const auto identity = verify_at_vector_date(request);
  ASSERT_TRUE(identity.ok()) << identity.error().message;
}

TEST(SigV4RoundTrip, WithinSkewAccepted) {
  const http::Request request = signed_invoke(example_credentials());
  EXPECT_TRUE(
      verify_sigv4(request, example_lookup(), "lambda", vector_now_ms() + 5 * 60 * 1000).ok());
  EXPECT_TRUE(
      verify_sigv4(request, example_lookup(), "lambda", vector_now_ms() - 5 * 60 * 1000).ok());
}

// --- failures -----------------------------------------------------------------------

TEST(SigV4Failure, WrongSecret) {
  const http::Request request =
      signed_invoke({std::string(kAkid), "not-the-secret-of-AKIDEXAMPLE"});
  const auto result = verify_at_vector_date(request);
  expect_error(result, ErrorCode::kInvalidSignature, kMismatch);
  EXPECT_EQ(result.error().message, kMismatch);
}

TEST(SigV4Failure, UnknownKey) {
  const http::Request request = signed_invoke({"AKIDUNKNOWN", std::string(kSecret)});
  const auto result = verify_at_vector_date(request);
  expect_error(result, ErrorCode::kUnrecognizedClient, "");
  EXPECT_EQ(result.error().message, "The security token included in the request is invalid.");
}

TEST(SigV4Failure, TamperedBody) {
  http::Request request = signed_invoke(example_credentials());
  request.body() = R"({"hello":"mallory"})";
  request.prepare_payload();
  expect_error(verify_at_vector_date(request), ErrorCode::kInvalidSignature, kMismatch);
}

TEST(SigV4Failure, TamperedBodyUnderContentSha256Header) {
  http::Request request = make_request(http::Verb::put, "/x", "payload");
  request.set("X-Amz-Content-SHA256", detail::payload_hash(request));
  sign_sigv4(request, example_credentials(), "us-east-1", "lambda", vector_now_ms());
  request.body() = "other payload";
  expect_error(verify_at_vector_date(request), ErrorCode::kInvalidSignature,
               "x-amz-content-sha256");
}

TEST(SigV4Failure, TamperedPath) {
  http::Request request = signed_invoke(example_credentials());
  request.target("/2015-03-31/functions/other-function/invocations?Qualifier=prod");
  expect_error(verify_at_vector_date(request), ErrorCode::kInvalidSignature, kMismatch);
}

TEST(SigV4Failure, PathEncodingMatters) {
  // The same path with one more or one less level of encoding is a different
  // canonical URI.
  const http::Request signed_request =
      vector_request(http::Verb::get, kTagsTarget, "", kTagsSignature);
  http::Request request = signed_request;
  request.target("/2017-03-31/tags/arn:aws:lambda:us-east-1:123456789012:function:my-function");
  expect_error(verify_at_vector_date(request), ErrorCode::kInvalidSignature, kMismatch);
}

TEST(SigV4Failure, TamperedQuery) {
  http::Request request = signed_invoke(example_credentials());
  request.target("/2015-03-31/functions/my-function/invocations?Qualifier=dev");
  expect_error(verify_at_vector_date(request), ErrorCode::kInvalidSignature, kMismatch);
}

TEST(SigV4Failure, TamperedSignedHeader) {
  http::Request request = signed_invoke(example_credentials());
  request.set("X-Amz-Invocation-Type", "Event");
  expect_error(verify_at_vector_date(request), ErrorCode::kInvalidSignature, kMismatch);
}

TEST(SigV4Failure, TamperedMethod) {
  http::Request request = signed_invoke(example_credentials());
  request.method(http::Verb::put);
  expect_error(verify_at_vector_date(request), ErrorCode::kInvalidSignature, kMismatch);
}

TEST(SigV4Failure, ExpiredDate) {
  const http::Request request = signed_invoke(example_credentials());
  const auto result =
      verify_sigv4(request, example_lookup(), "lambda", vector_now_ms() + 10 * 60 * 1000);
  expect_error(result, ErrorCode::kInvalidSignature, "Signature expired");
  EXPECT_EQ(result.error().message,
            "Signature expired: 20230101T000000Z is now earlier than 20230101T000500Z "
            "(20230101T001000Z - 5 min.)");
}

TEST(SigV4Failure, DateInFuture) {
  const http::Request request = signed_invoke(example_credentials());
  const auto result =
      verify_sigv4(request, example_lookup(), "lambda", vector_now_ms() - 5 * 60 * 1000 - 1000);
  expect_error(result, ErrorCode::kInvalidSignature, "Signature not yet current");
}

TEST(SigV4Failure, MissingAuthorizationHeader) {
  http::Request request = signed_invoke(example_credentials());
  request.erase(http::Field::authorization);
  const auto result = verify_at_vector_date(request);
  expect_error(result, ErrorCode::kMissingAuthentication, "");
  EXPECT_EQ(result.error().message, "Missing Authentication Token");
}

TEST(SigV4Failure, MalformedAuthorizationHeader) {
  http::Request request = signed_invoke(example_credentials());
  request.set(http::Field::authorization, "AWS4-HMAC-SHA256 garbage");
  expect_error(verify_at_vector_date(request), ErrorCode::kInvalidSignature, "key=value");

  request.set(http::Field::authorization,
              "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20230101/us-east-1/lambda/aws4_request");
  expect_error(verify_at_vector_date(request), ErrorCode::kInvalidSignature,
               "requires 'SignedHeaders'");
}

TEST(SigV4Failure, WrongAlgorithm) {
  http::Request request = signed_invoke(example_credentials());
  std::string header(request[http::Field::authorization]);
  header.replace(0, std::string_view("AWS4-HMAC-SHA256").size(), "AWS4-ECDSA-P256-SHA256");
  request.set(http::Field::authorization, header);
  expect_error(verify_at_vector_date(request), ErrorCode::kInvalidSignature,
               "AWS4-ECDSA-P256-SHA256");
}

TEST(SigV4Failure, DuplicateAuthorizationHeader) {
  http::Request request = signed_invoke(example_credentials());
  request.insert(http::Field::authorization, vector_authorization(kInvokeSignature));
  expect_error(verify_at_vector_date(request), ErrorCode::kInvalidSignature, "Authorization");
}

TEST(SigV4Failure, MissingDate) {
  http::Request request = signed_invoke(example_credentials());
  request.erase("X-Amz-Date");
  expect_error(verify_at_vector_date(request), ErrorCode::kInvalidSignature, "'X-Amz-Date'");
}

TEST(SigV4Failure, MalformedDate) {
  http::Request request = signed_invoke(example_credentials());
  request.set("X-Amz-Date", "2023-01-01T00:00:00Z");
  expect_error(verify_at_vector_date(request), ErrorCode::kInvalidSignature, "X-Amz-Date");
  request.set("X-Amz-Date", "2023 1 1T 0 0 0Z");
  expect_error(verify_at_vector_date(request), ErrorCode::kInvalidSignature, "X-Amz-Date");
  request.erase("X-Amz-Date");
  request.set(http::Field::date, "yesterday");
  expect_error(verify_at_vector_date(request), ErrorCode::kInvalidSignature, "Date header");
}

TEST(SigV4Failure, WrongService) {
  http::Request request = make_request(http::Verb::get, "/", "");
  sign_sigv4(request, example_credentials(), "us-east-1", "s3", vector_now_ms());
  expect_error(verify_at_vector_date(request), ErrorCode::kInvalidSignature, "'lambda'");
}

TEST(SigV4Failure, ScopeDateDiffersFromRequestDate) {
  http::Request request = vector_request(http::Verb::get, kTagsTarget, "", kTagsSignature);
  request.set("X-Amz-Date", "20230102T000000Z");
  const auto result =
      verify_sigv4(request, example_lookup(), "lambda", vector_now_ms() + 24 * 3600 * 1000);
  expect_error(result, ErrorCode::kInvalidSignature, "Date in Credential scope");
}

TEST(SigV4Failure, WrongTerminator) {
  http::Request request = vector_request(http::Verb::get, kTagsTarget, "", kTagsSignature);
  request.set(http::Field::authorization,
              "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20230101/us-east-1/lambda/aws5_request, "
              "SignedHeaders=host;x-amz-date, Signature=" +
                  std::string(kTagsSignature));
  expect_error(verify_at_vector_date(request), ErrorCode::kInvalidSignature, "aws5_request");
}

TEST(SigV4Failure, HostNotSigned) {
  http::Request request = vector_request(http::Verb::get, kTagsTarget, "", kTagsSignature);
  request.set(http::Field::authorization,
              "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20230101/us-east-1/lambda/aws4_request, "
              "SignedHeaders=x-amz-date, Signature=" +
                  std::string(kTagsSignature));
  expect_error(verify_at_vector_date(request), ErrorCode::kInvalidSignature, "'Host'");
}

TEST(SigV4Failure, SignedHeaderAbsent) {
  http::Request request = signed_invoke(example_credentials());
  request.erase("X-Amz-Invocation-Type");
  expect_error(verify_at_vector_date(request), ErrorCode::kInvalidSignature,
               "x-amz-invocation-type");
}

TEST(SigV4Failure, UnsupportedContentSha256Value) {
  http::Request request = make_request(http::Verb::put, "/x", "payload");
  request.set("X-Amz-Content-SHA256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
  sign_sigv4(request, example_credentials(), "us-east-1", "lambda", vector_now_ms());
  expect_error(verify_at_vector_date(request), ErrorCode::kInvalidSignature,
               "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
}

}  // namespace
}  // namespace nimbus::api
