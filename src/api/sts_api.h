#pragma once
// StsApi: the part of AWS STS nimbus offers today on the control port, in
// the query protocol every client uses for STS (form POST Action=..., XML
// answers): GetCallerIdentity, which tools and SDKs call to check their
// credentials and learn the account. The daemon's key pair is the account
// root. Other actions answer InvalidAction naming what is offered.
//
// LambdaApi hands it requests whose credential scope names "sts", after
// verifying SigV4. Threads: handle() is re-entrant, any thread. Holds only
// the account id; owned by the daemon.

#include <string>

#include <boost/asio/awaitable.hpp>

#include "base/result.h"
#include "http/types.h"

namespace nimbus::api {

class StsApi {
 public:
  explicit StsApi(std::string account_id);

  [[nodiscard]] http::asio::awaitable<http::Response> handle(http::Request request);
  // An error as STS shows it (<ErrorResponse> XML), for failures found before handle().
  [[nodiscard]] http::Response render_error(const base::Error& error, const http::Request& request) const;

 private:
  std::string account_id_;
};

// The answer to a signed request for an AWS service nimbus does not offer,
// in the shape that service's protocol parses (JSON when the request has an
// X-Amz-Target, query XML for form posts and ?Action=, REST-XML for s3,
// REST-JSON otherwise): 400 UnknownService, naming the service and those
// that are offered.
[[nodiscard]] http::Response unknown_service_response(const http::Request& request, std::string_view service,
                                                      std::string_view offered);

}  // namespace nimbus::api
