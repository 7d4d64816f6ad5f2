#pragma once
// ControlClient: the CLI's connection to a running daemon. Finds the endpoint
// and credentials (flags, environment, then the data directory), signs each
// request with SigV4 and turns Lambda error bodies into readable errors.

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "api/sigv4.h"
#include "base/result.h"
#include "http/client.h"

namespace nimbus::cli {

struct ClientOptions {
  std::string endpoint;                 // empty: discover
  std::filesystem::path data_dir;       // empty: the daemon's default
  std::string region = "us-east-1";
};

struct ApiReply {
  unsigned status = 0;
  nlohmann::json body;  // null when the response had no JSON body
  std::string raw;
  std::map<std::string, std::string> headers;
};

class ControlClient {
 public:
  [[nodiscard]] static base::Result<ControlClient> connect(const ClientOptions& options);

  // Sends a request; 2xx comes back as ApiReply, anything else as an Error
  // whose message is "<ErrorType>: <message>".
  [[nodiscard]] base::Result<ApiReply> call(http::Verb method, const std::string& target,
                                            const std::optional<nlohmann::json>& body = std::nullopt);
  // The same with a raw body and extra headers (Invoke).
  [[nodiscard]] base::Result<ApiReply> call_raw(http::Verb method, const std::string& target, std::string body,
                                                const std::map<std::string, std::string>& headers);

  [[nodiscard]] const std::string& endpoint_url() const { return endpoint_url_; }

 private:
  http::Endpoint endpoint_;
  std::string endpoint_url_;
  std::optional<api::Credentials> credentials_;
  std::string region_;
};

}  // namespace nimbus::cli
