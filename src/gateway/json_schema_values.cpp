// JSON Schema's view of values: types, numbers compared by value, a total
// order for enum/const/uniqueItems, and JSON pointer tokens.

#include <algorithm>
#include <cmath>
#include <cstdint>

#include <fmt/format.h>

#include "gateway/detail/json_schema.h"

namespace nimbus::gateway::detail {

using nlohmann::json;

namespace {

__extension__ typedef __int128 Wide;  // NOLINT(modernize-use-using): __extension__ needs typedef

Wide wide(const json& value) {
  return value.is_number_unsigned() ? static_cast<Wide>(value.get<std::uint64_t>())
                                    : static_cast<Wide>(value.get<std::int64_t>());
}

int sign(double d) { return d < 0 ? -1 : (d > 0 ? 1 : 0); }

// Compares an integer with a double exactly. NaN sorts after every number.
int compare_integer_double(Wide i, double d) {
  if (std::isnan(d)) return -1;
  if (d < -0x1p64) return 1;
  if (d >= 0x1p64) return -1;
  const double whole = std::trunc(d);
  const Wide w = static_cast<Wide>(whole);
  if (i != w) return i < w ? -1 : 1;
  return -sign(d - whole);
}

int type_rank(const json& value) {
  switch (value.type()) {
    case json::value_t::null: return 0;
    case json::value_t::boolean: return 1;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return 2;
    case json::value_t::string: return 3;
    case json::value_t::array: return 4;
    case json::value_t::object: return 5;
    default: return 6;
  }
}

}  // namespace

bool is_integral(const json& value) {
  if (value.is_number_integer()) return true;
  if (!value.is_number_float()) return false;
  const double d = value.get<double>();
  return std::isfinite(d) && std::trunc(d) == d;
}

unsigned type_bits(const json& value) {
  switch (value.type()) {
    case json::value_t::null: return kNullBit;
    case json::value_t::boolean: return kBooleanBit;
    case json::value_t::object: return kObjectBit;
    case json::value_t::array: return kArrayBit;
    case json::value_t::string: return kStringBit;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return is_integral(value) ? kNumberBit | kIntegerBit : kNumberBit;
    default: return 0;
  }
}

int compare_numbers(const json& a, const json& b) {
  if (!a.is_number_float() && !b.is_number_float()) {
    const Wide x = wide(a);
    const Wide y = wide(b);
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (!a.is_number_float()) return compare_integer_double(wide(a), b.get<double>());
  if (!b.is_number_float()) return -compare_integer_double(wide(b), a.get<double>());
  const double x = a.get<double>();
  const double y = b.get<double>();
  if (std::isnan(x) || std::isnan(y)) return std::isnan(x) == std::isnan(y) ? 0 : (std::isnan(x) ? 1 : -1);
  return x < y ? -1 : (x > y ? 1 : 0);
}

int compare(const json& a, const json& b) {
  const int ra = type_rank(a);
  const int rb = type_rank(b);
  if (ra != rb) return ra < rb ? -1 : 1;
  switch (ra) {
    case 1: return a.get<bool>() == b.get<bool>() ? 0 : (a.get<bool>() ? 1 : -1);
    case 2: return compare_numbers(a, b);
    case 3: {
      const int c = a.get_ref<const std::string&>().compare(b.get_ref<const std::string&>());
      return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    case 4:
    case 5: {
      if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
      if (ra == 4) {
        for (std::size_t i = 0; i < a.size(); ++i) {
          if (const int c = compare(a[i], b[i]); c != 0) return c;
        }
        return 0;
      }
      for (auto x = a.begin(), y = b.begin(); x != a.end(); ++x, ++y) {
        if (const int c = x.key().compare(y.key()); c != 0) return c < 0 ? -1 : 1;
        if (const int c = compare(x.value(), y.value()); c != 0) return c;
      }
      return 0;
    }
    default: return 0;
  }
}

bool is_multiple(const json& value, const json& divisor) {
  if (!value.is_number_float() && !divisor.is_number_float()) return wide(value) % wide(divisor) == 0;
  const double quotient = value.get<double>() / divisor.get<double>();
  if (!std::isfinite(quotient)) return false;
  return std::fabs(quotient - std::round(quotient)) <= 1e-9 * std::max(1.0, std::fabs(quotient));
}

std::string escape_token(std::string_view token) {
  std::string out;
  for (const char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<std::string> too_deep(const json& value, std::size_t limit, std::size_t depth) {
  if (!value.is_structured()) return std::nullopt;
  if (depth >= limit) return std::string();
  if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i) {
      if (auto inner = too_deep(value[i], limit, depth + 1)) return fmt::format("/{}{}", i, *inner);
    }
  } else {
    for (const auto& [key, item] : value.items()) {
      if (auto inner = too_deep(item, limit, depth + 1)) return "/" + escape_token(key) + *inner;
    }
  }
  return std::nullopt;
}

}  // namespace nimbus::gateway::detail
