#include "gateway/function_urls.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "base/clock.h"
#include "base/crypto.h"
#include "gateway/detail/text.h"

namespace nimbus::gateway {

using base::ErrorCode;
using base::make_error;
using json = nlohmann::json;

namespace {
constexpr std::string_view kControlPrefix = "/2021-10-31/functions/";
constexpr std::string_view kPathForm = "/fn/";
constexpr std::string_view kHostLabel = ".lambda-url.";
constexpr std::size_t kUrlIdLength = 32;
constexpr std::size_t kMaxListItems = 50;

std::string_view to_string(UrlAuthType auth) { return auth == UrlAuthType::kNone ? "NONE" : "AWS_IAM"; }

base::Result<UrlAuthType> parse_auth(const json& value) {
  if (value.is_string() && value == "NONE") return UrlAuthType::kNone;
  if (value.is_string() && value == "AWS_IAM") return UrlAuthType::kAwsIam;
  return make_error(ErrorCode::kValidation,
                    fmt::format("1 validation error detected: Value '{}' at 'authType' failed to satisfy constraint: "
                                "Member must satisfy enum value set: [NONE, AWS_IAM]",
                                value.is_string() ? value.get<std::string>() : value.dump()));
}

base::Result<std::string> parse_invoke_mode(const json& value) {
  if (value.is_string() && value == "BUFFERED") return std::string("BUFFERED");
  if (value.is_string() && value == "RESPONSE_STREAM") {
    return make_error(ErrorCode::kInvalidParameterValue,
                      "InvokeMode RESPONSE_STREAM: nimbus's function URLs answer BUFFERED only");
  }
  return make_error(ErrorCode::kValidation,
                    fmt::format("1 validation error detected: Value '{}' at 'invokeMode' failed to satisfy constraint: "
                                "Member must satisfy enum value set: [BUFFERED, RESPONSE_STREAM]",
                                value.is_string() ? value.get<std::string>() : value.dump()));
}

std::string new_url_id() {
  constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  const std::string bytes = base::random_bytes(kUrlIdLength);
  std::string id;
  id.reserve(kUrlIdLength);
  // 36 letters: the modulo bias (256 % 36) is irrelevant for an identifier.
  for (const char b : bytes) id += kAlphabet[static_cast<unsigned char>(b) % kAlphabet.size()];
  return id;
}

bool is_url_id(std::string_view id) {
  return id.size() == kUrlIdLength && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
         });
}

json to_document(const FunctionUrl& url) {
  json doc = {{"UrlId", url.url_id},
              {"AuthType", to_string(url.auth)},
              {"InvokeMode", url.invoke_mode},
              {"Created", url.created_ms},
              {"Modified", url.modified_ms}};
  if (url.cors) doc["Cors"] = gateway::to_json(*url.cors);
  return doc;
}

std::optional<FunctionUrl> from_document(const store::ResourceRow& row) {
  const json doc = json::parse(row.document, nullptr, false);
  if (!doc.is_object() || !doc.contains("UrlId")) return std::nullopt;
  FunctionUrl url;
  url.url_id = doc.value("UrlId", "");
  url.function = row.function;
  url.qualifier = row.key;
  url.auth = doc.value("AuthType", "AWS_IAM") == "NONE" ? UrlAuthType::kNone : UrlAuthType::kAwsIam;
  url.invoke_mode = doc.value("InvokeMode", "BUFFERED");
  url.created_ms = doc.value("Created", std::int64_t{0});
  url.modified_ms = doc.value("Modified", url.created_ms);
  if (doc.contains("Cors")) {
    auto cors = parse_cors(doc["Cors"]);
    if (cors.ok()) url.cors = std::move(*cors);
  }
  return url;
}

// The members a Create or Update body may set: AuthType, Cors (null
// removes it), InvokeMode.
base::Status apply_settings(FunctionUrl& url, const json& body) {
  if (body.contains("AuthType")) {
    auto auth = parse_auth(body["AuthType"]);
    if (!auth.ok()) return std::move(auth).error();
    url.auth = *auth;
  }
  if (body.contains("Cors")) {
    if (body["Cors"].is_null()) {
      url.cors.reset();
    } else {
      auto cors = parse_cors(body["Cors"]);
      if (!cors.ok()) return std::move(cors).error();
      url.cors = std::move(*cors);
    }
  }
  if (body.contains("InvokeMode")) {
    auto mode = parse_invoke_mode(body["InvokeMode"]);
    if (!mode.ok()) return std::move(mode).error();
    url.invoke_mode = std::move(*mode);
  }
  return base::Ok{};
}

base::Error not_found() {
  return make_error(ErrorCode::kResourceNotFound, "The resource you requested does not exist.");
}
}  // namespace

std::optional<UrlTarget> function_url_target(std::string_view host, std::string_view raw_path) {
  // <url-id>.lambda-url.<region>.on.aws (or .localhost): the whole path is the function's.
  if (const auto label = host.find(kHostLabel); label != std::string_view::npos && is_url_id(host.substr(0, label)) &&
                                                (host.ends_with(".on.aws") || host.ends_with(".localhost"))) {
    return UrlTarget{std::string(host.substr(0, label)), std::string(raw_path)};
  }
  if (!raw_path.starts_with(kPathForm)) return std::nullopt;
  const std::string_view rest = raw_path.substr(kPathForm.size());
  const auto slash = rest.find('/');
  return UrlTarget{std::string(rest.substr(0, slash)),
                   slash == std::string_view::npos ? std::string("/") : std::string(rest.substr(slash))};
}

FunctionUrls::FunctionUrls(store::Store& store, registry::Registry& registry, const base::Clock& clock)
    : store_(store), registry_(registry), clock_(clock) {}

base::Status FunctionUrls::load() {
  auto rows = store_.all_resources(store::ResourceKind::kFunctionUrl);
  if (!rows.ok()) return std::move(rows).error();
  std::lock_guard lock(mu_);
  by_id_.clear();
  for (const auto& row : *rows) {
    if (auto url = from_document(row)) by_id_[url->url_id] = std::make_shared<const FunctionUrl>(std::move(*url));
  }
  return base::Ok{};
}

void FunctionUrls::set_base_url(std::string base_url) {
  std::lock_guard lock(mu_);
  base_url_ = std::move(base_url);
}

std::shared_ptr<const FunctionUrl> FunctionUrls::find(std::string_view url_id) const {
  std::lock_guard lock(mu_);
  const auto it = by_id_.find(url_id);
  return it == by_id_.end() ? nullptr : it->second;
}

std::shared_ptr<const FunctionUrl> FunctionUrls::find_by_target(const registry::FunctionRef& ref) const {
  std::lock_guard lock(mu_);
  for (const auto& [id, url] : by_id_) {
    if (url->function == ref.name && url->qualifier == ref.qualifier) return url;
  }
  return nullptr;
}

void FunctionUrls::forget(std::string_view function, std::optional<std::string_view> alias) {
  if (alias) (void)store_.delete_resource(store::ResourceKind::kFunctionUrl, function, *alias);
  std::lock_guard lock(mu_);
  std::erase_if(by_id_, [&](const auto& entry) {
    return entry.second->function == function && (!alias || entry.second->qualifier == *alias);
  });
}

base::Result<FunctionUrls::Reply> FunctionUrls::control(http::Verb method, std::string_view path,
                                                        const http::Params& query, const std::string& body) {
  // {name}/url or {name}/urls
  std::string_view rest = path.substr(std::min(path.size(), kControlPrefix.size()));
  const bool many = rest.ends_with("/urls");
  if (!many && !rest.ends_with("/url")) {
    return make_error(ErrorCode::kNotImplemented,
                      fmt::format("{} is not an operation nimbus offers", std::string(path)));
  }
  rest.remove_suffix(many ? 5 : 4);
  std::string name;
  if (!http::percent_decode(rest, name) || name.empty() || name.find('/') != std::string::npos) {
    return make_error(ErrorCode::kResourceNotFound, "Function not found: " + std::string(rest));
  }
  auto ref = registry_.resolve(name);
  if (!ref.ok()) return std::move(ref).error();
  if (many) {
    if (method != http::Verb::get) return make_error(ErrorCode::kNotImplemented, "ListFunctionUrlConfigs is a GET");
    return list(ref->name, query);
  }
  if (const std::string* q = http::find_param(query, "Qualifier"); q != nullptr) {
    if (!ref->qualifier.empty() && ref->qualifier != *q) {
      return make_error(ErrorCode::kInvalidParameterValue,
                        "The derived qualifier from the function name does not match the specified qualifier.");
    }
    ref->qualifier = *q;
  }
  json parsed = body.empty() ? json::object() : json::parse(body, nullptr, false);
  if (!parsed.is_object()) {
    return make_error(ErrorCode::kInvalidRequestContent, "Could not parse request body into json");
  }
  switch (method) {
    case http::Verb::post: return create(*ref, parsed);
    case http::Verb::get: return get(*ref);
    case http::Verb::put: return update(*ref, parsed);
    case http::Verb::delete_: return remove(*ref);
    default: return make_error(ErrorCode::kNotImplemented, "unsupported method for a function URL config");
  }
}

base::Status FunctionUrls::check_target(const registry::FunctionRef& ref) {
  const std::string& q = ref.qualifier;
  if (!q.empty() && std::all_of(q.begin(), q.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    return make_error(ErrorCode::kValidation,
                      fmt::format("1 validation error detected: Value '{}' at 'qualifier' failed to satisfy "
                                  "constraint: a function URL belongs to $LATEST or an alias, not a version",
                                  q));
  }
  auto function = registry_.get(ref.name);
  if (!function.ok()) return std::move(function).error();
  if (!q.empty() && q != "$LATEST") {
    auto alias = registry_.get_alias(ref.name, q);
    if (!alias.ok()) return std::move(alias).error();
  }
  return base::Ok{};
}

base::Result<std::shared_ptr<const FunctionUrl>> FunctionUrls::save(FunctionUrl url) {
  NIMBUS_TRY(store_.put_resource(
      store::ResourceRow{url.function, store::ResourceKind::kFunctionUrl, url.qualifier, to_document(url).dump(), ""}));
  auto stored = std::make_shared<const FunctionUrl>(std::move(url));
  std::lock_guard lock(mu_);
  by_id_[stored->url_id] = stored;
  return stored;
}

base::Result<FunctionUrls::Reply> FunctionUrls::create(const registry::FunctionRef& ref, const json& body) {
  NIMBUS_TRY(check_target(ref));
  if (!body.contains("AuthType")) {
    return make_error(ErrorCode::kValidation,
                      "1 validation error detected: Value null at 'authType' failed to satisfy constraint: Member "
                      "must not be null");
  }
  FunctionUrl url;
  NIMBUS_TRY(apply_settings(url, body));
  if (find_by_target(ref) != nullptr) {
    return make_error(ErrorCode::kResourceConflict,
                      fmt::format("Failed to create function url config for [functionArn = {}]. Error message:  "
                                  "FunctionUrlConfig exists for this Lambda function",
                                  registry_.function_arn(ref.name, ref.qualifier)));
  }
  url.url_id = new_url_id();
  url.function = ref.name;
  url.qualifier = ref.qualifier;
  url.created_ms = url.modified_ms = clock_.now_ms();
  auto stored = save(std::move(url));
  if (!stored.ok()) return std::move(stored).error();
  return Reply{201, to_json(**stored, false)};
}

base::Result<std::shared_ptr<const FunctionUrl>> FunctionUrls::existing(const registry::FunctionRef& ref) {
  NIMBUS_TRY(check_target(ref));
  auto url = find_by_target(ref);
  if (url == nullptr) return not_found();
  return url;
}

base::Result<FunctionUrls::Reply> FunctionUrls::get(const registry::FunctionRef& ref) {
  auto url = existing(ref);
  if (!url.ok()) return std::move(url).error();
  return Reply{200, to_json(**url, true)};
}

base::Result<FunctionUrls::Reply> FunctionUrls::update(const registry::FunctionRef& ref, const json& body) {
  auto current = existing(ref);
  if (!current.ok()) return std::move(current).error();
  FunctionUrl url = **current;
  NIMBUS_TRY(apply_settings(url, body));
  url.modified_ms = clock_.now_ms();
  auto stored = save(std::move(url));
  if (!stored.ok()) return std::move(stored).error();
  return Reply{200, to_json(**stored, true)};
}

base::Result<FunctionUrls::Reply> FunctionUrls::remove(const registry::FunctionRef& ref) {
  auto url = existing(ref);
  if (!url.ok()) return std::move(url).error();
  NIMBUS_TRY(store_.delete_resource(store::ResourceKind::kFunctionUrl, ref.name, ref.qualifier));
  {
    std::lock_guard lock(mu_);
    by_id_.erase((*url)->url_id);
  }
  return Reply{204, nullptr};
}

base::Result<FunctionUrls::Reply> FunctionUrls::list(const std::string& function, const http::Params& query) {
  auto exists = registry_.get(function);
  if (!exists.ok()) return std::move(exists).error();
  std::size_t max_items = kMaxListItems;
  if (const std::string* m = http::find_param(query, "MaxItems"); m != nullptr) {
    const bool digits = !m->empty() && m->size() <= 3 &&
                        std::all_of(m->begin(), m->end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    if (!digits || std::stoul(*m) < 1 || std::stoul(*m) > kMaxListItems) {
      return make_error(ErrorCode::kValidation,
                        fmt::format("1 validation error detected: Value '{}' at 'maxItems' failed to satisfy "
                                    "constraint: Member must be between 1 and 50",
                                    *m));
    }
    max_items = std::stoul(*m);
  }
  const std::string* marker = http::find_param(query, "Marker");
  std::vector<std::shared_ptr<const FunctionUrl>> urls;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, url] : by_id_) {
      if (url->function == function && (marker == nullptr || url->qualifier > *marker)) urls.push_back(url);
    }
  }
  std::sort(urls.begin(), urls.end(), [](const auto& a, const auto& b) { return a->qualifier < b->qualifier; });
  json out = {{"FunctionUrlConfigs", json::array()}};
  for (std::size_t i = 0; i < urls.size() && i < max_items; ++i) out["FunctionUrlConfigs"].push_back(to_json(*urls[i], true));
  if (urls.size() > max_items) out["NextMarker"] = urls[max_items - 1]->qualifier;
  return Reply{200, std::move(out)};
}

json FunctionUrls::to_json(const FunctionUrl& url, bool with_modified) const {
  std::string base;
  {
    std::lock_guard lock(mu_);
    base = base_url_;
  }
  json out = {{"FunctionUrl", fmt::format("{}{}{}/", base, kPathForm, url.url_id)},
              {"FunctionArn", registry_.function_arn(url.function, url.qualifier)},
              {"AuthType", to_string(url.auth)},
              {"CreationTime", base::format_lambda_time(url.created_ms)},
              {"InvokeMode", url.invoke_mode}};
  if (with_modified) out["LastModifiedTime"] = base::format_lambda_time(url.modified_ms);
  if (url.cors) out["Cors"] = gateway::to_json(*url.cors);
  return out;
}

}  // namespace nimbus::gateway
