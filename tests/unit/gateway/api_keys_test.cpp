#include "gateway/api_keys.h"

#include <gtest/gtest.h>

#include <set>

namespace nimbus::gateway {
namespace {

using nlohmann::json;

constexpr std::int64_t kDayMs = 86'400'000;
// 2024-02-29 12:34:56 UTC, a Thursday in a leap year.
constexpr std::int64_t kLeapThursday = 1'709'210'096'000;

TEST(QuotaWindow, DayStartsAtUtcMidnight) {
  EXPECT_EQ(quota_window_start(QuotaPeriod::kDay, kLeapThursday), 1'709'164'800'000);  // 2024-02-29 00:00
  EXPECT_EQ(quota_window_start(QuotaPeriod::kDay, 1'709'164'800'000), 1'709'164'800'000);
  EXPECT_EQ(quota_window_start(QuotaPeriod::kDay, 1'709'164'800'000 - 1), 1'709'164'800'000 - kDayMs);
}

TEST(QuotaWindow, WeekStartsOnIsoMonday) {
  EXPECT_EQ(quota_window_start(QuotaPeriod::kWeek, kLeapThursday), 1'708'905'600'000);  // Mon 2024-02-26
  // Sunday 23:59:59 still belongs to the week that began six days before; Monday opens the next.
  EXPECT_EQ(quota_window_start(QuotaPeriod::kWeek, 1'709'510'399'000), 1'708'905'600'000);
  EXPECT_EQ(quota_window_start(QuotaPeriod::kWeek, 1'709'510'400'000), 1'709'510'400'000);
  // Across a year: Friday 2021-01-01 is in the week of Monday 2020-12-28.
  EXPECT_EQ(quota_window_start(QuotaPeriod::kWeek, 1'609'477'200'000), 1'609'113'600'000);
  // The epoch was a Thursday: its week began Monday 1969-12-29.
  EXPECT_EQ(quota_window_start(QuotaPeriod::kWeek, 0), -3 * kDayMs);
}

TEST(QuotaWindow, MonthStartsOnTheFirst) {
  EXPECT_EQ(quota_window_start(QuotaPeriod::kMonth, kLeapThursday), 1'706'745'600'000);  // 2024-02-01
  EXPECT_EQ(quota_window_start(QuotaPeriod::kMonth, 1'609'477'200'000), 1'609'459'200'000);  // 2021-01-01
  EXPECT_EQ(quota_window_start(QuotaPeriod::kMonth, 1'609'459'200'000 - 1), 1'606'780'800'000);  // 2020-12-01
}

TEST(QuotaWindow, PeriodNames) {
  EXPECT_EQ(parse_quota_period("WEEK"), QuotaPeriod::kWeek);
  EXPECT_EQ(to_string(QuotaPeriod::kMonth), "MONTH");
  EXPECT_FALSE(parse_quota_period("day"));
  EXPECT_FALSE(parse_quota_period("YEAR"));
}

TEST(ApiKeyValues, GeneratedValuesAreFortyAlphanumerics) {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    const std::string v = generate_api_key_value();
    ASSERT_EQ(v.size(), 40u);
    for (char c : v) ASSERT_TRUE(std::isalnum(static_cast<unsigned char>(c))) << v;
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 200u);
  const std::string id = generate_resource_id();
  ASSERT_EQ(id.size(), 10u);
  for (char c : id) EXPECT_TRUE(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)));
}

TEST(ApiKeyJson, KeysRoundTripAndCheckEveryField) {
  auto key = api_key_from_json(json{{"Name", "partner"}, {"Value", "abcdefghij0123456789XYZ"}});
  ASSERT_TRUE(key.ok()) << key.error().message;
  EXPECT_TRUE(key->enabled);
  EXPECT_EQ(key->id.size(), 10u);
  auto again = api_key_from_json(to_json(*key, true));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *key);
  EXPECT_FALSE(to_json(*key, false).contains("Value"));

  const auto error_of = [](const json& body) {
    auto parsed = api_key_from_json(body);
    return parsed.ok() ? std::string("accepted") : parsed.error().message;
  };
  EXPECT_EQ(error_of(json{{"Name", "k"}, {"Value", "short"}}), "Value must be 20-128 letters and digits");
  EXPECT_EQ(error_of(json{{"Name", "k"}, {"Value", "abcdefghij0123456789-_"}}), "Value must be 20-128 letters and digits");
  EXPECT_EQ(error_of(json{{"Name", "bad name"}}), "Name is required: 1-128 letters, digits, '-', '_' or '.'");
  EXPECT_EQ(error_of(json{{"Name", "k"}, {"Enabled", "yes"}}), "Enabled must be true or false");
  EXPECT_EQ(error_of(json{{"Name", "k"}, {"Colour", 1}}), "Unknown API key member 'Colour'");
}

TEST(UsagePlanJson, ParsesAndNamesTheBadField) {
  auto plan = usage_plan_from_json(
      json{{"Name", "gold"}, {"Throttle", {{"RateLimit", 2.5}, {"BurstLimit", 5}}}, {"Quota", {{"Limit", 1000}, {"Period", "WEEK"}}}});
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(plan->throttle, (PlanThrottle{2.5, 5}));
  EXPECT_EQ(plan->quota, (PlanQuota{1000, QuotaPeriod::kWeek}));
  auto again = usage_plan_from_json(to_json(*plan));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *plan);

  const auto error_of = [](const json& body) {
    auto parsed = usage_plan_from_json(body);
    return parsed.ok() ? std::string("accepted") : parsed.error().message;
  };
  EXPECT_EQ(error_of(json{{"Name", "p"}, {"Throttle", {{"RateLimit", -1}, {"BurstLimit", 5}}}}),
            "Throttle.RateLimit must be a number above 0");
  EXPECT_EQ(error_of(json{{"Name", "p"}, {"Throttle", {{"RateLimit", 1}, {"BurstLimit", 0}}}}),
            "Throttle.BurstLimit must be an integer of at least 1");
  EXPECT_EQ(error_of(json{{"Name", "p"}, {"Quota", {{"Limit", 10}, {"Period", "YEAR"}}}}),
            "Quota.Period must be DAY, WEEK or MONTH");
  EXPECT_EQ(error_of(json{{"Name", "p"}, {"Quota", {{"Limit", 1.5}, {"Period", "DAY"}}}}),
            "Quota.Limit must be an integer of at least 1");
  EXPECT_EQ(error_of(json{{"Name", "p"}, {"Quota", {{"Limit", 10}, {"Period", 3}}}}), "Quota.Period must be a string");
  EXPECT_EQ(error_of(json{{"Name", ""}}), "Name is required: 1-128 letters, digits, '-', '_' or '.'");
}

// A ring of three keys: `good` in a plan, `off` disabled, `loose` in no plan.
struct Ring {
  explicit Ring(const UsagePlan& p, base::Clock& clock) : plan(std::make_shared<const UsagePlan>(p)) {
    std::vector<KeyEntry> entries;
    const auto add = [&](std::string name, std::string value, bool enabled, bool in_plan) {
      KeyEntry e;
      e.key = ApiKey{std::move(name), "id" + value.substr(0, 8), std::move(value), enabled, in_plan ? "plan" : ""};
      if (in_plan) e.plan = plan;
      e.usage = std::make_shared<KeyUsage>();
      e.usage->set_throttle(in_plan ? plan->throttle : std::nullopt, clock);
      entries.push_back(std::move(e));
    };
    add("good", "GoodGoodGoodGoodGood1", true, true);
    add("off", "OffOffOffOffOffOffOff2", false, true);
    add("loose", "LooseLooseLooseLoose3", true, false);
    ring = KeyRing(std::move(entries));
  }
  std::shared_ptr<const UsagePlan> plan;
  KeyRing ring;
};

TEST(KeyRing, LooksKeysUpByValueAndRefusesUnusableOnes) {
  base::ManualClock clock(kLeapThursday);
  Ring r(UsagePlan{"plan", "p1", std::nullopt, std::nullopt}, clock);
  const KeyEntry* entry = nullptr;
  EXPECT_EQ(r.ring.check("", clock, &entry), KeyCheck::kMissing);
  EXPECT_EQ(r.ring.check("GoodGoodGoodGoodGood", clock, &entry), KeyCheck::kInvalid);  // a prefix is not the key
  EXPECT_EQ(r.ring.check("goodgoodgoodgoodgood1", clock, &entry), KeyCheck::kInvalid);  // values are case-sensitive
  EXPECT_EQ(r.ring.check("OffOffOffOffOffOffOff2", clock, &entry), KeyCheck::kInvalid);
  EXPECT_EQ(r.ring.check("LooseLooseLooseLoose3", clock, &entry), KeyCheck::kInvalid);
  EXPECT_EQ(entry, nullptr);
  EXPECT_EQ(r.ring.check("GoodGoodGoodGoodGood1", clock, &entry), KeyCheck::kAllowed);
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->key.name, "good");
  EXPECT_EQ(r.ring.find("OffOffOffOffOffOffOff2")->key.name, "off");
}

TEST(KeyRing, ThrottlesPerKeyWithThePlansBucket) {
  base::ManualClock clock(kLeapThursday);
  Ring r(UsagePlan{"plan", "p1", PlanThrottle{2, 2}, std::nullopt}, clock);
  const KeyEntry* entry = nullptr;
  EXPECT_EQ(r.ring.check("GoodGoodGoodGoodGood1", clock, &entry), KeyCheck::kAllowed);
  EXPECT_EQ(r.ring.check("GoodGoodGoodGoodGood1", clock, &entry), KeyCheck::kAllowed);
  EXPECT_EQ(r.ring.check("GoodGoodGoodGoodGood1", clock, &entry), KeyCheck::kThrottled);
  clock.advance_ms(500);  // one token at 2 per second
  EXPECT_EQ(r.ring.check("GoodGoodGoodGoodGood1", clock, &entry), KeyCheck::kAllowed);
  EXPECT_EQ(r.ring.check("GoodGoodGoodGoodGood1", clock, &entry), KeyCheck::kThrottled);
}

TEST(KeyRing, QuotaCountsAdmittedRequestsPerWindow) {
  base::ManualClock clock(kLeapThursday);
  Ring r(UsagePlan{"plan", "p1", PlanThrottle{1, 1}, PlanQuota{2, QuotaPeriod::kDay}}, clock);
  const KeyEntry* entry = nullptr;
  const std::string good = "GoodGoodGoodGoodGood1";
  EXPECT_EQ(r.ring.check(good, clock, &entry), KeyCheck::kAllowed);
  EXPECT_EQ(r.ring.check(good, clock, &entry), KeyCheck::kThrottled);  // throttled: not counted
  clock.advance_ms(1000);
  EXPECT_EQ(r.ring.check(good, clock, &entry), KeyCheck::kAllowed);
  clock.advance_ms(1000);
  EXPECT_EQ(r.ring.check(good, clock, &entry), KeyCheck::kQuotaExceeded);
  const KeyUsage::Count used = entry->usage->count();
  EXPECT_EQ(used.used, 2);
  EXPECT_EQ(used.window_start, 1'709'164'800'000);
  // The next UTC day opens a new window.
  clock.advance_ms(1'709'164'800'000 + kDayMs - clock.now_ms());
  EXPECT_EQ(r.ring.check(good, clock, &entry), KeyCheck::kAllowed);
  EXPECT_EQ(entry->usage->count().used, 1);
}

TEST(KeyUsage, RestoredCountsApplyOnlyInTheirWindow) {
  base::ManualClock clock(kLeapThursday);
  const UsagePlan plan{"plan", "p1", std::nullopt, PlanQuota{5, QuotaPeriod::kMonth}};
  KeyUsage usage;
  usage.restore({quota_window_start(QuotaPeriod::kMonth, kLeapThursday), 5});
  EXPECT_EQ(usage.admit(plan, clock), KeyUsage::Verdict::kQuotaExceeded);
  KeyUsage stale;
  stale.restore({quota_window_start(QuotaPeriod::kMonth, kLeapThursday) - kDayMs * 40, 5});  // December's count
  EXPECT_EQ(stale.admit(plan, clock), KeyUsage::Verdict::kAllowed);
}

TEST(KeyUsage, KeepsItsBucketWhileTheThrottleIsUnchanged) {
  base::ManualClock clock(0);
  KeyUsage usage;
  const UsagePlan plan{"plan", "p1", PlanThrottle{1, 1}, std::nullopt};
  usage.set_throttle(plan.throttle, clock);
  EXPECT_EQ(usage.admit(plan, clock), KeyUsage::Verdict::kAllowed);
  usage.set_throttle(plan.throttle, clock);  // a reload with the same plan: still empty
  EXPECT_EQ(usage.admit(plan, clock), KeyUsage::Verdict::kThrottled);
  usage.set_throttle(PlanThrottle{1, 3}, clock);  // a new throttle: a new, full bucket
  EXPECT_EQ(usage.admit(plan, clock), KeyUsage::Verdict::kAllowed);
  usage.set_throttle(std::nullopt, clock);  // no throttle: never throttled
  for (int i = 0; i < 10; ++i) EXPECT_EQ(usage.admit(plan, clock), KeyUsage::Verdict::kAllowed);
}

}  // namespace
}  // namespace nimbus::gateway
