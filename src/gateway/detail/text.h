#pragma once
// Small text helpers shared by the gateway's files (internal to the part).

#include <string>
#include <string_view>

namespace nimbus::gateway::detail {

// ASCII lower case: header names, methods and identity sources are compared
// case-insensitively; bytes outside A-Z stay as they are.
inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace nimbus::gateway::detail
