// Fuzz target: the inspection every uploaded code package gets before
// anything is stored (entry names, types, links, sizes counted while reading).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "store/blob_store.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view zip(reinterpret_cast<const char*>(data), size);
  (void)nimbus::store::inspect_zip(zip, 64u << 20);
  return 0;
}
