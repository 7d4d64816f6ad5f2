#include "api/sts_api.h"

#include <cctype>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "api/detail/sqs_protocol.h"
#include "base/crypto.h"
#include "base/error.h"

namespace nimbus::api {

namespace {
constexpr std::string_view kXmlns = "https://sts.amazonaws.com/doc/2011-06-15/";

http::Response xml_response(http::Status status, unsigned version, std::string body) {
  http::Response res{status, version};
  res.set(http::Field::content_type, "text/xml");
  res.body() = std::move(body);
  return res;
}

// The action of a query-protocol request: in the form body or the query string.
std::string action_of(const http::Request& request) {
  const auto [path, query] = http::split_target(request.target());
  for (const std::string_view source : {std::string_view(request.body()), query}) {
    const http::Params params = http::parse_query(source);
    if (const std::string* action = http::find_param(params, "Action"); action != nullptr) return *action;
  }
  return {};
}
}  // namespace

StsApi::StsApi(std::string account_id) : account_id_(std::move(account_id)) {}

http::Response StsApi::render_error(const base::Error& error, const http::Request& request) const {
  const base::ErrorShape& shape = base::shape_of(error.code);
  // STS's own codes for what LambdaApi finds before handle(): signature and key problems.
  std::string_view code = shape.type;
  if (error.code == base::ErrorCode::kInvalidSignature) code = "SignatureDoesNotMatch";
  if (error.code == base::ErrorCode::kUnrecognizedClient) code = "InvalidClientTokenId";
  if (error.code == base::ErrorCode::kMissingAuthentication) code = "MissingAuthenticationToken";
  if (error.code == base::ErrorCode::kInvalidAction) code = "InvalidAction";
  return xml_response(static_cast<http::Status>(shape.http_status), request.version(),
                      detail::query_error_xml(shape.fault == "User" ? "Sender" : "Receiver", code, error.message,
                                              base::uuid4()));
}

http::asio::awaitable<http::Response> StsApi::handle(http::Request request) {
  const std::string action = action_of(request);
  if (action != "GetCallerIdentity") {
    co_return render_error(
        base::Error{base::ErrorCode::kInvalidAction,
                    action.empty() ? std::string("Missing Action")
                                   : fmt::format("Could not find operation {}: nimbus's STS offers GetCallerIdentity "
                                                 "(the daemon's key pair is the account root)",
                                                 action)},
        request);
  }
  co_return xml_response(
      http::Status::ok, request.version(),
      fmt::format("<GetCallerIdentityResponse xmlns=\"{}\">\n"
                  "  <GetCallerIdentityResult>\n"
                  "    <Arn>arn:aws:iam::{}:root</Arn>\n"
                  "    <UserId>{}</UserId>\n"
                  "    <Account>{}</Account>\n"
                  "  </GetCallerIdentityResult>\n"
                  "  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n"
                  "</GetCallerIdentityResponse>\n",
                  kXmlns, account_id_, account_id_, account_id_, base::uuid4()));
}

http::Response unknown_service_response(const http::Request& request, std::string_view service,
                                        std::string_view offered) {
  // The name is the client's text: only a plain service name is repeated.
  std::string name;
  for (const char c : service.substr(0, 64)) {
    if (std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.') name += c;
  }
  const std::string message = fmt::format("nimbus does not offer the service '{}'; it offers {}", name, offered);
  const std::string request_id = base::uuid4();
  http::Response res{http::Status::bad_request, request.version()};
  res.set("x-amzn-RequestId", request_id);
  const auto [path, query] = http::split_target(request.target());
  const bool json_protocol = !request["X-Amz-Target"].empty();
  const bool query_protocol = request[http::Field::content_type].starts_with("application/x-www-form-urlencoded") ||
                              query.starts_with("Action=") || query.find("&Action=") != std::string_view::npos;
  if (json_protocol) {
    res.set(http::Field::content_type, "application/x-amz-json-1.1");
    res.set("x-amzn-ErrorType", "UnknownService");
    res.body() = nlohmann::json{{"__type", "UnknownService"}, {"message", message}}.dump();
  } else if (query_protocol) {
    res.set(http::Field::content_type, "text/xml");
    res.body() = detail::query_error_xml("Sender", "UnknownService", message, request_id);
  } else if (name == "s3") {
    res.set(http::Field::content_type, "application/xml");
    res.body() = fmt::format("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>UnknownService</Code>"
                             "<Message>{}</Message><RequestId>{}</RequestId></Error>",
                             detail::xml_escape(message), request_id);
  } else {
    res.set(http::Field::content_type, "application/json");
    res.set("x-amzn-ErrorType", "UnknownService");
    res.body() = nlohmann::json{{"message", message}, {"Message", message}}.dump();
  }
  return res;
}

}  // namespace nimbus::api
