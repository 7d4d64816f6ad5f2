#pragma once
// FunctionUrls: Lambda function URLs. The Lambda API's Create/Get/Update/
// Delete/ListFunctionUrlConfig(s) operations (the daemon routes
// /2021-10-31/functions/ here through the control API) manage one config per
// function and qualifier (unqualified, $LATEST or an alias), stored as the
// function's kFunctionUrl resources so they go with it. The gateway finds the
// config a URL names by its url id, from memory, on every request: only a
// function with a config is reachable by URL, with its AuthType (NONE, or
// AWS_IAM: SigV4-signed for the service "lambda") and its CORS.
//
// A URL is reached by the Host header Lambda uses,
// <url-id>.lambda-url.<region>.on.aws (or .localhost), or for local use by
// the path form <gateway>/fn/<url-id>/<path>, which FunctionUrl shows.
//
// Threads: control() from the control API's threads, find() from any io
// thread; one mutex guards the map (never held across store calls' results
// being used). Owned by the Gateway.

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "base/result.h"
#include "gateway/cors.h"
#include "http/types.h"
#include "registry/registry.h"
#include "store/store.h"

namespace nimbus::gateway {

enum class UrlAuthType { kNone, kAwsIam };

struct FunctionUrl {
  std::string url_id;     // 32 lowercase letters and digits, random
  std::string function;   // name
  std::string qualifier;  // "" (unqualified), "$LATEST" or an alias
  UrlAuthType auth = UrlAuthType::kAwsIam;
  std::optional<CorsConfig> cors;
  std::string invoke_mode = "BUFFERED";
  std::int64_t created_ms = 0;
  std::int64_t modified_ms = 0;
};

// The url id a request names, and the request path behind it; nullopt when
// the request is not for a function URL. `host` is the Host header's name
// (no port), lower case.
struct UrlTarget {
  std::string url_id;
  std::string path;  // what the function sees as rawPath
};
[[nodiscard]] std::optional<UrlTarget> function_url_target(std::string_view host, std::string_view raw_path);

class FunctionUrls {
 public:
  FunctionUrls(store::Store& store, registry::Registry& registry, const base::Clock& clock);

  // Reads every config from the store.
  [[nodiscard]] base::Status load();
  // Where the gateway listens (http://host:port): the base of FunctionUrl.
  void set_base_url(std::string base_url);

  // The Lambda API operations, under /2021-10-31/functions/{name}/url[s].
  struct Reply {
    unsigned status = 200;
    nlohmann::json body;  // null: no body
  };
  [[nodiscard]] base::Result<Reply> control(http::Verb method, std::string_view path, const http::Params& query,
                                            const std::string& body);

  // The config `url_id` names, or null.
  [[nodiscard]] std::shared_ptr<const FunctionUrl> find(std::string_view url_id) const;
  // Drops the configs of a deleted function (every qualifier; the store
  // deleted its rows with it) or of a deleted alias (its row too).
  void forget(std::string_view function, std::optional<std::string_view> alias = std::nullopt);

 private:
  base::Result<Reply> create(const registry::FunctionRef& ref, const nlohmann::json& body);
  base::Result<Reply> get(const registry::FunctionRef& ref);
  base::Result<Reply> update(const registry::FunctionRef& ref, const nlohmann::json& body);
  base::Result<Reply> remove(const registry::FunctionRef& ref);
  base::Result<Reply> list(const std::string& function, const http::Params& query);
  // The function (and alias) exist, and the qualifier is one a URL may have.
  base::Status check_target(const registry::FunctionRef& ref);
  [[nodiscard]] nlohmann::json to_json(const FunctionUrl& url, bool with_modified) const;
  [[nodiscard]] std::shared_ptr<const FunctionUrl> find_by_target(const registry::FunctionRef& ref) const;
  // The config of an existing target, or why there is none (the target's
  // own error, or ResourceNotFound).
  base::Result<std::shared_ptr<const FunctionUrl>> existing(const registry::FunctionRef& ref);
  // Stores `url` and makes it the one its url id names.
  base::Result<std::shared_ptr<const FunctionUrl>> save(FunctionUrl url);

  store::Store& store_;
  registry::Registry& registry_;
  const base::Clock& clock_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const FunctionUrl>, std::less<>> by_id_;  // GUARDED_BY(mu_)
  std::string base_url_;                                                        // GUARDED_BY(mu_)
};

}  // namespace nimbus::gateway
