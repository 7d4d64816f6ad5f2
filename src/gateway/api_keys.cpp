#include "gateway/api_keys.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "base/crypto.h"

namespace nimbus::gateway {

using base::ErrorCode;
using base::make_error;
using nlohmann::json;

namespace {

constexpr std::string_view kKeyAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
constexpr std::string_view kIdAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789";

base::Error usage_invalid(std::string message) { return make_error(ErrorCode::kValidation, std::move(message)); }

// `n` characters drawn uniformly from `alphabet` (rejection sampling: no modulo bias).
std::string random_text(std::string_view alphabet, std::size_t n) {
  const std::size_t limit = 256 - 256 % alphabet.size();
  std::string out;
  out.reserve(n);
  while (out.size() < n) {
    for (const char c : base::random_bytes(n)) {
      const auto b = static_cast<unsigned char>(c);
      if (b >= limit) continue;
      out.push_back(alphabet[b % alphabet.size()]);
      if (out.size() == n) break;
    }
  }
  return out;
}

bool all_alnum(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; });
}

// A member that must be a string when present; empty when absent or null.
base::Result<std::string> string_member(const json& body, const char* name, std::string_view prefix = {}) {
  const auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::string();
  if (!it->is_string()) return usage_invalid(fmt::format("{}{} must be a string", prefix, name));
  return it->get<std::string>();
}

base::Status only_members(const json& body, std::initializer_list<std::string_view> known, std::string_view what) {
  for (const auto& [key, value] : body.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return usage_invalid(fmt::format("Unknown {} member '{}'", what, key));
    }
  }
  return base::Ok{};
}

}  // namespace

std::string_view to_string(QuotaPeriod period) {
  switch (period) {
    case QuotaPeriod::kDay: return "DAY";
    case QuotaPeriod::kWeek: return "WEEK";
    case QuotaPeriod::kMonth: return "MONTH";
  }
  return "DAY";
}

std::optional<QuotaPeriod> parse_quota_period(std::string_view text) {
  if (text == "DAY") return QuotaPeriod::kDay;
  if (text == "WEEK") return QuotaPeriod::kWeek;
  if (text == "MONTH") return QuotaPeriod::kMonth;
  return std::nullopt;
}

std::int64_t quota_window_start(QuotaPeriod period, std::int64_t epoch_ms) {
  using namespace std::chrono;
  const sys_days day = floor<days>(sys_time<milliseconds>(milliseconds(epoch_ms)));
  sys_days start = day;
  if (period == QuotaPeriod::kWeek) {
    // ISO weeks start on Monday: c_encoding() is 0 for Sunday.
    start = day - days((weekday(day).c_encoding() + 6) % 7);
  } else if (period == QuotaPeriod::kMonth) {
    const year_month_day ymd(day);
    start = sys_days(ymd.year() / ymd.month() / 1);
  }
  return duration_cast<milliseconds>(start.time_since_epoch()).count();
}

std::string generate_api_key_value() { return random_text(kKeyAlphabet, 40); }
std::string generate_resource_id() { return random_text(kIdAlphabet, 10); }

base::Status check_api_key_name(std::string_view name, std::string_view field) {
  if (name.empty() || name.size() > 128 || !std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
      })) {
    return usage_invalid(fmt::format("{} is required: 1-128 letters, digits, '-', '_' or '.'", field));
  }
  return base::Ok{};
}

// --- JSON -------------------------------------------------------------------

base::Result<UsagePlan> usage_plan_from_json(const json& body) {
  if (!body.is_object()) return make_error(ErrorCode::kInvalidRequestContent, "The usage plan must be a JSON object");
  NIMBUS_TRY(only_members(body, {"Name", "Id", "Throttle", "Quota"}, "usage plan"));
  UsagePlan plan;
  NIMBUS_TRY_ASSIGN(plan.name, string_member(body, "Name"));
  NIMBUS_TRY(check_api_key_name(plan.name, "Name"));
  NIMBUS_TRY_ASSIGN(plan.id, string_member(body, "Id"));
  if (plan.id.empty()) plan.id = generate_resource_id();
  if (const auto t = body.find("Throttle"); t != body.end() && !t->is_null()) {
    if (!t->is_object()) return usage_invalid("Throttle must be an object with RateLimit and BurstLimit");
    NIMBUS_TRY(only_members(*t, {"RateLimit", "BurstLimit"}, "Throttle"));
    const auto rate = t->find("RateLimit");
    const auto burst = t->find("BurstLimit");
    if (rate == t->end() || !rate->is_number() || !std::isfinite(rate->get<double>()) || rate->get<double>() <= 0) {
      return usage_invalid("Throttle.RateLimit must be a number above 0");
    }
    if (burst == t->end() || !burst->is_number_integer() || burst->get<std::int64_t>() < 1) {
      return usage_invalid("Throttle.BurstLimit must be an integer of at least 1");
    }
    plan.throttle = PlanThrottle{rate->get<double>(), burst->get<std::int64_t>()};
  }
  if (const auto q = body.find("Quota"); q != body.end() && !q->is_null()) {
    if (!q->is_object()) return usage_invalid("Quota must be an object with Limit and Period");
    NIMBUS_TRY(only_members(*q, {"Limit", "Period"}, "Quota"));
    const auto limit = q->find("Limit");
    if (limit == q->end() || !limit->is_number_integer() || limit->get<std::int64_t>() < 1) {
      return usage_invalid("Quota.Limit must be an integer of at least 1");
    }
    std::string period_text;
    NIMBUS_TRY_ASSIGN(period_text, string_member(*q, "Period", "Quota."));
    const auto period = parse_quota_period(period_text);
    if (!period) return usage_invalid("Quota.Period must be DAY, WEEK or MONTH");
    plan.quota = PlanQuota{limit->get<std::int64_t>(), *period};
  }
  return plan;
}

json to_json(const UsagePlan& plan) {
  json out = {{"Name", plan.name}, {"Id", plan.id}};
  if (plan.throttle) out["Throttle"] = {{"RateLimit", plan.throttle->rate}, {"BurstLimit", plan.throttle->burst}};
  if (plan.quota) out["Quota"] = {{"Limit", plan.quota->limit}, {"Period", to_string(plan.quota->period)}};
  return out;
}

base::Result<ApiKey> api_key_from_json(const json& body) {
  if (!body.is_object()) return make_error(ErrorCode::kInvalidRequestContent, "The API key must be a JSON object");
  NIMBUS_TRY(only_members(body, {"Name", "Id", "Value", "Enabled", "UsagePlan"}, "API key"));
  ApiKey key;
  NIMBUS_TRY_ASSIGN(key.name, string_member(body, "Name"));
  NIMBUS_TRY(check_api_key_name(key.name, "Name"));
  NIMBUS_TRY_ASSIGN(key.id, string_member(body, "Id"));
  if (key.id.empty()) key.id = generate_resource_id();
  NIMBUS_TRY_ASSIGN(key.value, string_member(body, "Value"));
  if (key.value.empty()) {
    key.value = generate_api_key_value();
  } else if (key.value.size() < 20 || key.value.size() > 128 || !all_alnum(key.value)) {
    return usage_invalid("Value must be 20-128 letters and digits");
  }
  if (const auto e = body.find("Enabled"); e != body.end() && !e->is_null()) {
    if (!e->is_boolean()) return usage_invalid("Enabled must be true or false");
    key.enabled = e->get<bool>();
  }
  NIMBUS_TRY_ASSIGN(key.usage_plan, string_member(body, "UsagePlan"));
  return key;
}

json to_json(const ApiKey& key, bool include_value) {
  json out = {{"Name", key.name}, {"Id", key.id}, {"Enabled", key.enabled}};
  if (include_value) out["Value"] = key.value;
  if (!key.usage_plan.empty()) out["UsagePlan"] = key.usage_plan;
  return out;
}

// --- usage ------------------------------------------------------------------

KeyUsage::Verdict KeyUsage::admit(const UsagePlan& plan, const base::Clock& clock) {
  std::lock_guard lock(mu_);
  std::int64_t window = 0;
  if (plan.quota) {
    window = quota_window_start(plan.quota->period, clock.now_ms());
    if (window != count_.window_start) count_ = Count{window, 0};
    if (count_.used >= plan.quota->limit) return Verdict::kQuotaExceeded;
  }
  if (bucket_ && !bucket_->try_take()) return Verdict::kThrottled;
  if (plan.quota) ++count_.used;
  return Verdict::kAllowed;
}

void KeyUsage::set_throttle(const std::optional<PlanThrottle>& throttle, const base::Clock& clock) {
  std::lock_guard lock(mu_);
  if (throttle == throttle_) return;  // keep the bucket: an edit elsewhere must not refill it
  throttle_ = throttle;
  bucket_.reset();
  if (throttle) bucket_.emplace(throttle->rate, throttle->burst, clock);
}

KeyUsage::Count KeyUsage::count() {
  std::lock_guard lock(mu_);
  return count_;
}

void KeyUsage::restore(Count count) {
  std::lock_guard lock(mu_);
  count_ = count;
}

// --- key ring ---------------------------------------------------------------

KeyRing::KeyRing(std::vector<KeyEntry> entries) : entries_(std::move(entries)) {
  by_value_.reserve(entries_.size());
  for (std::size_t i = 0; i < entries_.size(); ++i) by_value_.emplace(entries_[i].key.value, i);
}

const KeyEntry* KeyRing::find(std::string_view value) const {
  const auto it = by_value_.find(value);
  return it == by_value_.end() ? nullptr : &entries_[it->second];
}

KeyCheck KeyRing::check(std::string_view value, const base::Clock& clock, const KeyEntry** entry) const {
  if (value.empty()) return KeyCheck::kMissing;
  const KeyEntry* found = find(value);
  // A disabled key, or one in no usage plan, is as good as none (API Gateway: 403).
  if (found == nullptr || !found->key.enabled || !found->plan) return KeyCheck::kInvalid;
  switch (found->usage->admit(*found->plan, clock)) {
    case KeyUsage::Verdict::kThrottled: return KeyCheck::kThrottled;
    case KeyUsage::Verdict::kQuotaExceeded: return KeyCheck::kQuotaExceeded;
    case KeyUsage::Verdict::kAllowed: break;
  }
  *entry = found;
  return KeyCheck::kAllowed;
}

}  // namespace nimbus::gateway
