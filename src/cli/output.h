#pragma once
// How every nimbus command reports a failure: one readable line on stderr
// ("nimbus: ..."), exit status 1.

#include <string>

#include <fmt/format.h>

namespace nimbus::cli {

inline int fail(const std::string& message) {
  fmt::print(stderr, "nimbus: {}\n", message);
  return 1;
}

}  // namespace nimbus::cli
