// Fuzz target: SigV4 verification of a request whose method, target,
// headers and body come from the input ("METHOD TARGET\nName: value\n...\n\nbody"):
// the Authorization header's parse, the canonical request and string to sign.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "api/sigv4.h"
#include "http/types.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto line_end = input.find('\n');
  if (line_end == std::string_view::npos) return 0;
  const std::string_view first = input.substr(0, line_end);
  const auto space = first.find(' ');
  if (space == std::string_view::npos || space == 0) return 0;
  nimbus::http::Request request;
  request.method_string(first.substr(0, space));
  request.target(first.substr(space + 1));
  request.version(11);
  input.remove_prefix(line_end + 1);
  while (!input.empty()) {
    const auto end = input.find('\n');
    const std::string_view line = input.substr(0, end);
    input.remove_prefix(end == std::string_view::npos ? input.size() : end + 1);
    if (line.empty()) break;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    request.set(line.substr(0, colon), value);
  }
  request.body() = std::string(input);
  const auto lookup = [](std::string_view akid) -> std::optional<std::string> {
    if (akid == "AKIDEXAMPLE") return std::string("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    return std::nullopt;
  };
  // 2015-08-30T12:36:00Z, the date of AWS's test suite.
  (void)nimbus::api::verify_sigv4(request, lookup, "lambda", 1440938160000);
  return 0;
}
