// The Gateway's API keys and usage plans: the key ring of a snapshot, the
// refusals of the key check, the quota counts' persistence and the control
// paths /nimbus/v1/gateway/apikeys and /nimbus/v1/gateway/usage-plans[/keys].

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "gateway/gateway.h"

namespace nimbus::gateway {

namespace asio = boost::asio;
using base::ErrorCode;
using base::make_error;
using nlohmann::json;

namespace {

constexpr std::size_t kMaxApiKeys = 10000;
constexpr std::size_t kMaxUsagePlans = 300;
// How often the quota counts reach the store (a crash loses at most this much counting).
constexpr std::chrono::seconds kUsageFlushInterval{10};

constexpr std::string_view kKeysSetting = "api_keys";
constexpr std::string_view kPlansSetting = "usage_plans";
constexpr std::string_view kUsageSetting = "api_key_usage";

// Flushes the quota counts every kUsageFlushInterval until the pool stops.
asio::awaitable<void> flush_usage_loop(Gateway* gateway) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(kUsageFlushInterval);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    gateway->flush_usage();
  }
}

base::Result<std::string> required_param(const http::Params& query, std::string_view name) {
  const std::string* value = http::find_param(query, name);
  if (value == nullptr || value->empty()) return make_error(ErrorCode::kValidation, fmt::format("{} is required", name));
  return *value;
}

}  // namespace

// --- lifecycle ----------------------------------------------------------------

void Gateway::start_usage_flusher() {
  asio::co_spawn(blocking_, flush_usage_loop(this), [](const std::exception_ptr& e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("gateway: the usage flusher stopped: {}", ex.what());
    }
  });
}

Gateway::~Gateway() {
  blocking_.stop();
  blocking_.join();
  flush_usage();
}

void Gateway::flush_usage() {
  // Counted and written under one lock, so an older count never overwrites a newer one.
  std::lock_guard lock(flush_mu_);
  json doc = json::object();
  for (const auto& entry : snapshot()->keys.entries()) {
    const KeyUsage::Count c = entry.usage->count();
    if (c.used > 0) doc[entry.key.id] = {{"WindowStart", c.window_start}, {"Used", c.used}};
  }
  std::string text = doc.empty() ? std::string() : doc.dump();
  if (text == flushed_usage_) return;
  if (auto put = store_.put_gateway_setting(kUsageSetting, text); !put.ok()) {
    spdlog::warn("gateway: cannot persist the API keys' quota counts: {}", put.error().message);
    return;
  }
  flushed_usage_ = std::move(text);
}

// --- the key ring -------------------------------------------------------------

void Gateway::load_keys(const Snapshot& previous, Snapshot& next, const json& plans, const json& keys) {
  for (const auto& [name, doc] : plans.items()) {
    auto plan = usage_plan_from_json(doc);
    if (!plan.ok()) {
      spdlog::warn("gateway: ignoring stored usage plan '{}': {}", name, plan.error().message);
      continue;
    }
    next.plans.emplace(name, std::make_shared<const UsagePlan>(std::move(*plan)));
  }
  std::map<std::string, std::shared_ptr<KeyUsage>, std::less<>> usage_by_id;
  for (const auto& entry : previous.keys.entries()) usage_by_id.emplace(entry.key.id, entry.usage);
  json persisted = json::object();
  if (!usage_restored_) {
    // The first load: the counts the last run left.
    auto stored = stored_setting(kUsageSetting);
    if (stored.ok()) {
      persisted = std::move(*stored);
    } else {
      spdlog::warn("gateway: cannot read the API keys' quota counts: {}", stored.error().message);
    }
    usage_restored_ = true;
  }
  std::vector<KeyEntry> entries;
  for (const auto& [name, doc] : keys.items()) {
    auto key = api_key_from_json(doc);
    if (!key.ok()) {
      spdlog::warn("gateway: ignoring stored API key '{}': {}", name, key.error().message);
      continue;
    }
    KeyEntry entry;
    if (const auto plan = next.plans.find(key->usage_plan); plan != next.plans.end()) entry.plan = plan->second;
    if (const auto old = usage_by_id.find(key->id); old != usage_by_id.end()) {
      entry.usage = old->second;
    } else {
      entry.usage = std::make_shared<KeyUsage>();
      if (const auto count = persisted.find(key->id); count != persisted.end() && count->is_object()) {
        entry.usage->restore(
            KeyUsage::Count{count->value("WindowStart", std::int64_t{0}), count->value("Used", std::int64_t{0})});
      }
    }
    entry.usage->set_throttle(entry.plan ? entry.plan->throttle : std::nullopt, clock_);
    entry.key = std::move(*key);
    entries.push_back(std::move(entry));
  }
  next.keys = KeyRing(std::move(entries));
}

GatewayResponse Gateway::refuse_key(KeyCheck check, std::string& reason) {
  switch (check) {
    case KeyCheck::kMissing:
      metrics_.api_key_missing.add();
      reason = "no x-api-key";
      return message_response(403, "Forbidden");
    case KeyCheck::kThrottled:
      metrics_.api_key_throttled.add();
      reason = "API key throttle limit";
      return message_response(429, "Too Many Requests");
    case KeyCheck::kQuotaExceeded:
      metrics_.api_key_quota_exceeded.add();
      reason = "API key quota exhausted";
      return message_response(429, "Limit Exceeded");
    case KeyCheck::kInvalid:
    case KeyCheck::kAllowed:
      break;
  }
  metrics_.api_key_invalid.add();
  reason = "unknown or disabled API key, or one in no usage plan";
  return message_response(403, "Forbidden");
}

// --- control API ----------------------------------------------------------------

base::Result<ControlReply> Gateway::api_key_control(http::Verb method, const http::Params& query,
                                                    const std::string& body) {
  if (method == http::Verb::get) {
    const std::string* include = http::find_param(query, "IncludeValues");
    const bool with_values = include != nullptr && *include == "true";
    json list = json::array();
    for (const auto& entry : snapshot()->keys.entries()) list.push_back(to_json(entry.key, with_values));
    std::sort(list.begin(), list.end(),
              [](const json& a, const json& b) { return a.value("Name", "") < b.value("Name", ""); });
    return ControlReply{200, json{{"ApiKeys", std::move(list)}}};
  }
  std::lock_guard lock(control_mu_);
  auto stored = stored_setting(kKeysSetting);
  if (!stored.ok()) return std::move(stored).error();
  ControlReply reply{204, nullptr};
  if (method == http::Verb::delete_) {
    std::string name;
    NIMBUS_TRY_ASSIGN(name, required_param(query, "Name"));
    if (!stored->contains(name)) return make_error(ErrorCode::kResourceNotFound, fmt::format("API key not found: {}", name));
    stored->erase(name);
  } else {
    const json parsed = json::parse(body, nullptr, false);
    if (parsed.is_discarded()) return make_error(ErrorCode::kInvalidRequestContent, "The API key is not valid JSON");
    if (method == http::Verb::put) {
      // An update: only Enabled changes.
      if (!parsed.is_object()) return make_error(ErrorCode::kInvalidRequestContent, "The API key must be a JSON object");
      const auto name_member = parsed.find("Name");
      const std::string name =
          name_member != parsed.end() && name_member->is_string() ? name_member->get<std::string>() : std::string();
      NIMBUS_TRY(check_api_key_name(name, "Name"));
      const auto enabled = parsed.find("Enabled");
      if (enabled == parsed.end() || !enabled->is_boolean()) {
        return make_error(ErrorCode::kValidation, "Enabled must be true or false");
      }
      if (!stored->contains(name)) {
        return make_error(ErrorCode::kResourceNotFound, fmt::format("API key not found: {}", name));
      }
      (*stored)[name]["Enabled"] = enabled->get<bool>();
      auto updated = api_key_from_json((*stored)[name]);
      if (!updated.ok()) return std::move(updated).error();
      reply = ControlReply{200, to_json(*updated, false)};
    } else {
      if (parsed.is_object() && parsed.contains("Id")) {
        return make_error(ErrorCode::kValidation, "Id is chosen by nimbus; leave it out");
      }
      auto key = api_key_from_json(parsed);
      if (!key.ok()) return std::move(key).error();
      if (stored->contains(key->name)) {
        return make_error(ErrorCode::kResourceConflict, fmt::format("API key {} exists already", key->name));
      }
      if (stored->size() >= kMaxApiKeys) {
        return make_error(ErrorCode::kValidation, fmt::format("A gateway has at most {} API keys", kMaxApiKeys));
      }
      for (const auto& [other, doc] : stored->items()) {
        if (doc.value("Value", "") == key->value) {
          return make_error(ErrorCode::kResourceConflict,
                            fmt::format("API key {} has this value already; key values are unique", other));
        }
      }
      if (!key->usage_plan.empty() && !snapshot()->plans.contains(key->usage_plan)) {
        return make_error(ErrorCode::kResourceNotFound, fmt::format("Usage plan not found: {}", key->usage_plan));
      }
      const json doc = to_json(*key, true);
      (*stored)[key->name] = doc;
      NIMBUS_TRY(store_.put_gateway_setting(kKeysSetting, stored->dump()));
      NIMBUS_TRY(reload());
      return ControlReply{201, doc};
    }
  }
  NIMBUS_TRY(store_.put_gateway_setting(kKeysSetting, stored->empty() ? std::string() : stored->dump()));
  NIMBUS_TRY(reload());
  flush_usage();  // a removed key's count leaves the stored counts
  return reply;
}

base::Result<ControlReply> Gateway::usage_plan_control(http::Verb method, const http::Params& query,
                                                       const std::string& body) {
  if (method == http::Verb::get) {
    const auto snap = snapshot();
    json list = json::array();
    for (const auto& [name, plan] : snap->plans) {
      json doc = to_json(*plan);
      json keys = json::array();
      for (const auto& entry : snap->keys.entries()) {
        if (entry.key.usage_plan == name) keys.push_back(entry.key.name);
      }
      std::sort(keys.begin(), keys.end());
      doc["ApiKeys"] = std::move(keys);
      list.push_back(std::move(doc));
    }
    return ControlReply{200, json{{"UsagePlans", std::move(list)}}};
  }
  std::lock_guard lock(control_mu_);
  auto stored = stored_setting(kPlansSetting);
  if (!stored.ok()) return std::move(stored).error();
  if (method == http::Verb::delete_) {
    std::string name;
    NIMBUS_TRY_ASSIGN(name, required_param(query, "Name"));
    if (!stored->contains(name)) {
      return make_error(ErrorCode::kResourceNotFound, fmt::format("Usage plan not found: {}", name));
    }
    for (const auto& entry : snapshot()->keys.entries()) {
      if (entry.key.usage_plan == name) {
        return make_error(ErrorCode::kResourceConflict,
                          fmt::format("Usage plan {} has API key {}; detach its keys first", name, entry.key.name));
      }
    }
    stored->erase(name);
    NIMBUS_TRY(store_.put_gateway_setting(kPlansSetting, stored->empty() ? std::string() : stored->dump()));
    NIMBUS_TRY(reload());
    return ControlReply{204, nullptr};
  }
  const json parsed = json::parse(body, nullptr, false);
  if (parsed.is_discarded()) return make_error(ErrorCode::kInvalidRequestContent, "The usage plan is not valid JSON");
  if (parsed.is_object() && parsed.contains("Id")) {
    return make_error(ErrorCode::kValidation, "Id is chosen by nimbus; leave it out");
  }
  auto plan = usage_plan_from_json(parsed);
  if (!plan.ok()) return std::move(plan).error();
  if (const auto old = stored->find(plan->name); old != stored->end()) {
    plan->id = old->value("Id", plan->id);  // a replaced plan keeps its id
  } else if (stored->size() >= kMaxUsagePlans) {
    return make_error(ErrorCode::kValidation, fmt::format("A gateway has at most {} usage plans", kMaxUsagePlans));
  }
  const json doc = to_json(*plan);
  (*stored)[plan->name] = doc;
  NIMBUS_TRY(store_.put_gateway_setting(kPlansSetting, stored->dump()));
  NIMBUS_TRY(reload());
  return ControlReply{201, doc};
}

base::Result<ControlReply> Gateway::plan_key_control(http::Verb method, const http::Params& query,
                                                     const std::string& body) {
  std::string plan_name;
  std::string key_name;
  if (method == http::Verb::delete_) {
    NIMBUS_TRY_ASSIGN(plan_name, required_param(query, "UsagePlan"));
    NIMBUS_TRY_ASSIGN(key_name, required_param(query, "ApiKey"));
  } else {
    const json parsed = json::parse(body, nullptr, false);
    if (!parsed.is_object()) {
      return make_error(ErrorCode::kInvalidRequestContent, "The body must be a JSON object {UsagePlan, ApiKey}");
    }
    for (const char* member : {"UsagePlan", "ApiKey"}) {
      const auto it = parsed.find(member);
      if (it == parsed.end() || !it->is_string() || it->get<std::string>().empty()) {
        return make_error(ErrorCode::kValidation, fmt::format("{} is required", member));
      }
    }
    plan_name = parsed["UsagePlan"].get<std::string>();
    key_name = parsed["ApiKey"].get<std::string>();
  }
  std::lock_guard lock(control_mu_);
  auto stored = stored_setting(kKeysSetting);
  if (!stored.ok()) return std::move(stored).error();
  if (!snapshot()->plans.contains(plan_name)) {
    return make_error(ErrorCode::kResourceNotFound, fmt::format("Usage plan not found: {}", plan_name));
  }
  const auto key = stored->find(key_name);
  if (key == stored->end()) return make_error(ErrorCode::kResourceNotFound, fmt::format("API key not found: {}", key_name));
  const std::string current = key->value("UsagePlan", "");
  if (method == http::Verb::delete_) {
    if (current != plan_name) {
      return make_error(ErrorCode::kResourceNotFound,
                        fmt::format("API key {} is not in usage plan {}", key_name, plan_name));
    }
    key->erase("UsagePlan");
  } else {
    if (!current.empty() && current != plan_name) {
      // API Gateway: a key is in at most one usage plan per stage, and nimbus has one stage.
      return make_error(ErrorCode::kResourceConflict,
                        fmt::format("API key {} is in usage plan {} already; a key is in one usage plan", key_name,
                                    current));
    }
    (*key)["UsagePlan"] = plan_name;
  }
  NIMBUS_TRY(store_.put_gateway_setting(kKeysSetting, stored->dump()));
  NIMBUS_TRY(reload());
  if (method == http::Verb::delete_) return ControlReply{204, nullptr};
  return ControlReply{200, json{{"UsagePlan", plan_name}, {"ApiKey", key_name}}};
}

}  // namespace nimbus::gateway
