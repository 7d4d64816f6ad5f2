// Fuzz target: event source mapping filter patterns (before the first NUL
// byte) and the events they are matched against (after it).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "events/event_filter.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto split = input.find('\0');
  auto filter = nimbus::events::EventFilter::parse(input.substr(0, split));
  if (!filter.ok() || split == std::string_view::npos) return 0;
  const nlohmann::json event = nlohmann::json::parse(input.substr(split + 1), nullptr, false);
  if (event.is_discarded()) return 0;
  (void)filter->matches(event);
  if (event.is_object()) (void)filter->matches(nimbus::events::filterable_sqs_record(event));
  return 0;
}
