// Fuzz target: the gateway's request validation — a JSON Schema (the part of
// the input before the first NUL byte) compiled, then an instance (the rest)
// validated against it. Both are what a route's owner and its callers send.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "gateway/validation.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto split = input.find('\0');
  const std::string_view schema_text = input.substr(0, split);
  const std::string_view instance_text = split == std::string_view::npos ? "null" : input.substr(split + 1);
  const nlohmann::json schema = nlohmann::json::parse(schema_text, nullptr, false);
  if (schema.is_discarded()) return 0;
  auto compiled = nimbus::gateway::JsonSchema::compile(schema);
  if (!compiled.ok()) return 0;
  const nlohmann::json instance = nlohmann::json::parse(instance_text, nullptr, false);
  if (instance.is_discarded()) return 0;
  (void)compiled->validate(instance);
  return 0;
}
