// Fuzz target: schedule expressions (rate, cron, at) as `nimbus schedule`
// and the control API take them, with the next fire times they give, and
// POSIX TZ rules as TZif footers carry them.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "events/schedule_expression.h"
#include "events/schedule_timezone.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  (void)nimbus::events::parse_posix_tz(input);
  auto expression = nimbus::events::parse_schedule_expression(input);
  if (!expression.ok()) return 0;
  const nimbus::events::TimeZone utc;
  std::int64_t now = 1700000000000;
  for (int i = 0; i < 4; ++i) {
    const auto next = nimbus::events::next_fire_ms(*expression, utc, now, 1700000000000);
    if (!next) break;
    now = *next;
  }
  return 0;
}
