// Fuzz target: the TZif reader behind a schedule's time zone, given the file
// (written to a private zoneinfo directory, as the loader reads files).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "events/schedule_timezone.h"

namespace {
const std::filesystem::path& zoneinfo() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("nimbus-tzif-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d / "Fuzz");
    return d;
  }();
  return dir;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  {
    std::ofstream out(zoneinfo() / "Fuzz" / "Zone", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  auto zone = nimbus::events::TimeZone::load("Fuzz/Zone", zoneinfo());
  if (!zone.ok()) return 0;
  for (const std::int64_t t : {std::int64_t{-2000000000}, std::int64_t{0}, std::int64_t{1700000000},
                               std::int64_t{4102444800}}) {
    (void)zone->offset_at(t);
    (void)zone->resolve(t);
  }
  return 0;
}
