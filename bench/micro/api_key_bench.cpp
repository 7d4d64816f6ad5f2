// What the gateway's API key check costs per request on a route that requires
// a key: the value lookup among many keys, then the plan's bucket and quota
// count under the key's mutex (gateway/api_keys.h, KeyRing::check).

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "base/clock.h"
#include "gateway/api_keys.h"

namespace {

using namespace nimbus::gateway;

struct Keys {
  explicit Keys(std::size_t n, const nimbus::base::Clock& clock) {
    // Limits no run reaches: every check takes the full path.
    const auto plan = std::make_shared<const UsagePlan>(
        UsagePlan{"plan", "p", PlanThrottle{1e12, 1'000'000'000}, PlanQuota{1'000'000'000'000, QuotaPeriod::kMonth}});
    std::vector<KeyEntry> entries;
    for (std::size_t i = 0; i < n; ++i) {
      KeyEntry e;
      e.key = ApiKey{"k" + std::to_string(i), generate_resource_id(), generate_api_key_value(), true, "plan"};
      e.plan = plan;
      e.usage = std::make_shared<KeyUsage>();
      e.usage->set_throttle(plan->throttle, clock);
      values.push_back(e.key.value);
      entries.push_back(std::move(e));
    }
    ring = KeyRing(std::move(entries));
  }
  std::vector<std::string> values;
  KeyRing ring;
};

void BM_KeyCheckAllowed(benchmark::State& state) {
  const nimbus::base::SystemClock clock;
  const Keys keys(static_cast<std::size_t>(state.range(0)), clock);
  std::size_t i = 0;
  for (auto _ : state) {
    const KeyEntry* entry = nullptr;
    benchmark::DoNotOptimize(keys.ring.check(keys.values[i++ % keys.values.size()], clock, &entry));
    benchmark::DoNotOptimize(entry);
  }
}
BENCHMARK(BM_KeyCheckAllowed)->Arg(10)->Arg(10000);

void BM_KeyCheckUnknown(benchmark::State& state) {
  const nimbus::base::SystemClock clock;
  const Keys keys(10000, clock);
  const std::string stranger = generate_api_key_value();
  for (auto _ : state) {
    const KeyEntry* entry = nullptr;
    benchmark::DoNotOptimize(keys.ring.check(stranger, clock, &entry));
  }
}
BENCHMARK(BM_KeyCheckUnknown);

}  // namespace
