#pragma once
// API keys and usage plans of the gateway, after API Gateway REST APIs (HTTP
// APIs have none; in nimbus they are an optional extension). A route with
// ApiKeyRequired needs an `x-api-key` header naming an enabled key that is in
// a usage plan; the plan's throttle (rate + burst, a bucket per key) and quota
// (requests per UTC day, ISO week or calendar month, per key) then apply.
//
// The configuration types and their JSON are pure. KeyRing is an immutable
// lookup table (value -> key) built per gateway snapshot; the mutable part of
// a key (its bucket and quota count) is a KeyUsage shared across snapshots,
// guarded by its own mutex, never held across I/O.

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "base/result.h"
#include "gateway/token_bucket.h"

namespace nimbus::gateway {

enum class QuotaPeriod : std::uint8_t { kDay, kWeek, kMonth };

[[nodiscard]] std::string_view to_string(QuotaPeriod period);
[[nodiscard]] std::optional<QuotaPeriod> parse_quota_period(std::string_view text);
// The start (epoch ms) of the UTC window holding `epoch_ms`: the day at 00:00,
// the ISO week's Monday at 00:00, the month's first day at 00:00.
[[nodiscard]] std::int64_t quota_window_start(QuotaPeriod period, std::int64_t epoch_ms);

struct PlanThrottle {
  double rate = 0;         // requests per second (> 0)
  std::int64_t burst = 0;  // >= 1
  bool operator==(const PlanThrottle&) const = default;
};

struct PlanQuota {
  std::int64_t limit = 0;  // requests per window (>= 1)
  QuotaPeriod period = QuotaPeriod::kDay;
  bool operator==(const PlanQuota&) const = default;
};

struct UsagePlan {
  std::string name;
  std::string id;
  std::optional<PlanThrottle> throttle;
  std::optional<PlanQuota> quota;
  bool operator==(const UsagePlan&) const = default;
};

struct ApiKey {
  std::string name;
  std::string id;     // 10 characters [a-z0-9], as API Gateway's key ids
  std::string value;  // 20-128 characters [A-Za-z0-9]
  bool enabled = true;
  std::string usage_plan;  // a plan's name; empty: in no plan (every request refused)
  bool operator==(const ApiKey&) const = default;
};

// The control API's JSON. Parsing checks every field and names the bad one.
// A plan's or key's id and a key's value are generated when absent.
[[nodiscard]] base::Result<UsagePlan> usage_plan_from_json(const nlohmann::json& body);
[[nodiscard]] nlohmann::json to_json(const UsagePlan& plan);
[[nodiscard]] base::Result<ApiKey> api_key_from_json(const nlohmann::json& body);
// include_value: the stored document and the create answer; lists leave it out.
[[nodiscard]] nlohmann::json to_json(const ApiKey& key, bool include_value);
[[nodiscard]] base::Status check_api_key_name(std::string_view name, std::string_view field);

// 40 random characters from [A-Za-z0-9] (base's crypto random, no modulo bias).
[[nodiscard]] std::string generate_api_key_value();
// 10 random characters from [a-z0-9].
[[nodiscard]] std::string generate_resource_id();

// What a key has used: its plan's bucket and the count in the current quota
// window. Shared by the snapshots while the key exists.
class KeyUsage {
 public:
  enum class Verdict : std::uint8_t { kAllowed, kThrottled, kQuotaExceeded };

  // Quota first (a refused request uses nothing), then the bucket; an
  // admitted request counts against the quota.
  [[nodiscard]] Verdict admit(const UsagePlan& plan, const base::Clock& clock);
  // A new bucket when the plan's throttle changed (or none any more).
  void set_throttle(const std::optional<PlanThrottle>& throttle, const base::Clock& clock);
  // The count to persist, and restoring it at start.
  struct Count {
    std::int64_t window_start = 0;
    std::int64_t used = 0;
  };
  [[nodiscard]] Count count();
  void restore(Count count);

 private:
  std::mutex mu_;
  std::optional<PlanThrottle> throttle_;  // GUARDED_BY(mu_)
  std::optional<TokenBucket> bucket_;     // GUARDED_BY(mu_)
  Count count_;                           // GUARDED_BY(mu_)
};

// One key as a request sees it: its configuration, its plan (null: none) and
// its usage.
struct KeyEntry {
  ApiKey key;
  std::shared_ptr<const UsagePlan> plan;
  std::shared_ptr<KeyUsage> usage;
};

// Why a request was refused by the key check, or that it passed.
enum class KeyCheck : std::uint8_t { kAllowed, kMissing, kInvalid, kThrottled, kQuotaExceeded };

// Keys by value. Immutable after construction.
class KeyRing {
 public:
  KeyRing() = default;
  explicit KeyRing(std::vector<KeyEntry> entries);

  // The entry whose value is `value`, or null.
  [[nodiscard]] const KeyEntry* find(std::string_view value) const;
  // The whole check for a request carrying `value` (empty: no header).
  // On kAllowed, *entry is the key.
  [[nodiscard]] KeyCheck check(std::string_view value, const base::Clock& clock, const KeyEntry** entry) const;
  [[nodiscard]] const std::vector<KeyEntry>& entries() const { return entries_; }

 private:
  struct ValueHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view v) const { return std::hash<std::string_view>{}(v); }
  };
  std::vector<KeyEntry> entries_;
  std::unordered_map<std::string, std::size_t, ValueHash, std::equal_to<>> by_value_;
};

}  // namespace nimbus::gateway
