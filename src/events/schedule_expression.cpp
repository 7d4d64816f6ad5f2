#include "events/schedule_expression.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <vector>

#include <fmt/format.h>

namespace nimbus::events {

using base::ErrorCode;
using base::make_error;

namespace {

constexpr int kMinYear = 1970;
constexpr int kMaxYear = 2199;

enum class FieldId { kMinutes, kHours, kDayOfMonth, kMonth, kDayOfWeek, kYear };

struct FieldInfo {
  const char* name;
  int lo, hi;
  const char* names_hint;  // what a non-number may be, or nullptr
};

constexpr std::array<FieldInfo, 6> kFields = {{
    {"Minutes", 0, 59, nullptr},
    {"Hours", 0, 23, nullptr},
    {"Day-of-month", 1, 31, nullptr},
    {"Month", 1, 12, "a month name (JAN-DEC)"},
    {"Day-of-week", 1, 7, "a day name (SUN-SAT)"},
    {"Year", kMinYear, kMaxYear, nullptr},
}};

constexpr std::array<std::string_view, 12> kMonthNames = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<std::string_view, 7> kDayNames = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

base::Error invalid(std::string message) { return make_error(ErrorCode::kValidation, std::move(message)); }

std::optional<int> parse_int(std::string_view s) {
  if (s.empty() || s.size() > 9 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  int v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// Parses one cron field.
class FieldParser {
 public:
  explicit FieldParser(FieldId id) : id_(id), info_(kFields[static_cast<std::size_t>(id)]) {}

  base::Result<CronField> parse(std::string_view text) {
    CronField field;
    if (text == "?") {
      if (id_ != FieldId::kDayOfMonth && id_ != FieldId::kDayOfWeek) {
        return invalid(fmt::format("{} field: '?' is only allowed in Day-of-month or Day-of-week", info_.name));
      }
      field.any = true;
      return field;
    }
    std::size_t start = 0;
    for (;;) {
      const auto comma = text.find(',', start);
      const std::string_view item = text.substr(start, comma == std::string_view::npos ? text.npos : comma - start);
      if (item.empty()) return invalid(fmt::format("{} field '{}' has an empty list item", info_.name, text));
      NIMBUS_TRY(parse_item(item, field));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    return field;
  }

 private:
  base::Status parse_item(std::string_view item, CronField& field) {
    const bool dom = id_ == FieldId::kDayOfMonth;
    const bool dow = id_ == FieldId::kDayOfWeek;
    if (item == "?") {
      return invalid(fmt::format("{} field '?' cannot be combined with other values", info_.name));
    }
    if (item.find('#') != std::string_view::npos) {
      if (!dow) return invalid(fmt::format("{} field: '#' is only allowed in Day-of-week", info_.name));
      if (field.nth != 0) return invalid("Day-of-week field: only one '#' expression is allowed");
      const auto hash = item.find('#');
      auto day = value(item.substr(0, hash));
      if (!day.ok()) return std::move(day).error();
      const auto n = parse_int(item.substr(hash + 1));
      if (!n || *n < 1 || *n > 5) {
        return invalid(fmt::format("Day-of-week field value {}: the occurrence after '#' must be 1-5", item));
      }
      field.nth_day = *day;
      field.nth = *n;
      return base::Ok{};
    }
    const std::string up = upper(item);
    if (up == "L") {
      if (dom) {
        field.last = true;
      } else if (dow) {
        field.values.set(6);  // the last day of the week: SAT
      } else {
        return invalid(fmt::format("{} field: 'L' is only allowed in Day-of-month or Day-of-week", info_.name));
      }
      return base::Ok{};
    }
    if (up == "LW") {
      if (!dom) return invalid(fmt::format("{} field: 'LW' is only allowed in Day-of-month", info_.name));
      field.last_weekday = true;
      return base::Ok{};
    }
    if (up.size() > 1 && up.back() == 'W' && std::isdigit(static_cast<unsigned char>(up.front()))) {
      if (!dom) return invalid(fmt::format("{} field: 'W' is only allowed in Day-of-month", info_.name));
      auto day = value(item.substr(0, item.size() - 1));
      if (!day.ok()) return std::move(day).error();
      field.nearest_weekday.set(static_cast<std::size_t>(*day - 1));
      return base::Ok{};
    }
    if (dow && up.size() > 1 && up.back() == 'L') {
      auto day = value(item.substr(0, item.size() - 1));
      if (!day.ok()) return std::move(day).error();
      field.last_of.set(static_cast<std::size_t>(*day - 1));
      return base::Ok{};
    }
    // [*|a|a-b][/step]
    std::string_view base_part = item;
    int step = 1;
    bool stepped = false;
    if (const auto slash = item.find('/'); slash != std::string_view::npos) {
      base_part = item.substr(0, slash);
      const auto s = parse_int(item.substr(slash + 1));
      const int max_step = info_.hi - info_.lo + 1;
      if (!s || *s < 1 || *s > max_step) {
        return invalid(fmt::format("{} field value {}: the step after '/' must be a number 1-{}", info_.name, item,
                                   max_step));
      }
      step = *s;
      stepped = true;
    }
    int from = info_.lo;
    int to = info_.hi;
    if (base_part != "*") {
      const auto dash = base_part.find('-');
      auto a = value(base_part.substr(0, dash));
      if (!a.ok()) return std::move(a).error();
      from = *a;
      if (dash != std::string_view::npos) {
        auto b = value(base_part.substr(dash + 1));
        if (!b.ok()) return std::move(b).error();
        to = *b;
        if (to < from && id_ == FieldId::kYear) {
          return invalid(fmt::format("Year field range {} goes backwards", base_part));
        }
      } else if (!stepped) {
        to = from;
      }
    }
    // A range whose end is below its start wraps (FRI-MON, 22-2).
    const int span = info_.hi - info_.lo + 1;
    const int count = (to >= from ? to - from : to + span - from) + 1;
    for (int i = 0; i < count; i += step) {
      const int v = (from - info_.lo + i) % span;
      field.values.set(static_cast<std::size_t>(v));
    }
    return base::Ok{};
  }

  // A single value: a number in range, or a month/day name where allowed.
  base::Result<int> value(std::string_view text) const {
    if (text.empty()) return invalid(fmt::format("{} field has an empty value", info_.name));
    if (const auto n = parse_int(text)) {
      if (*n < info_.lo || *n > info_.hi) {
        return invalid(fmt::format("{} field value {} is out of range {}-{}", info_.name, text, info_.lo, info_.hi));
      }
      return *n;
    }
    const std::string up = upper(text);
    if (id_ == FieldId::kMonth) {
      const auto it = std::find(kMonthNames.begin(), kMonthNames.end(), up);
      if (it != kMonthNames.end()) return static_cast<int>(it - kMonthNames.begin()) + 1;
    } else if (id_ == FieldId::kDayOfWeek) {
      const auto it = std::find(kDayNames.begin(), kDayNames.end(), up);
      if (it != kDayNames.end()) return static_cast<int>(it - kDayNames.begin()) + 1;
    }
    if (info_.names_hint != nullptr) {
      return invalid(fmt::format("{} field value {} is not a number ({}-{}) or {}", info_.name, text, info_.lo,
                                 info_.hi, info_.names_hint));
    }
    return invalid(fmt::format("{} field value {} is not a number ({}-{})", info_.name, text, info_.lo, info_.hi));
  }

  FieldId id_;
  const FieldInfo& info_;
};

std::optional<std::string_view> inside(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size() + 1 || text.substr(0, prefix.size()) != prefix || text.back() != ')') {
    return std::nullopt;
  }
  return text.substr(prefix.size(), text.size() - prefix.size() - 1);
}

base::Result<ScheduleExpression> parse_rate(std::string_view text, std::string_view body) {
  const auto fail = [](std::string_view why) { return invalid(std::string(why)); };
  const auto space = body.find(' ');
  if (space == std::string_view::npos || body.find(' ', space + 1) != std::string_view::npos) {
    return fail("expected rate(value unit), e.g. rate(5 minutes)");
  }
  const std::string_view number = body.substr(0, space);
  const std::string_view unit = body.substr(space + 1);
  const auto value = parse_int(number);
  if (!value || *value < 1) {
    if (number.size() > 9 && std::all_of(number.begin(), number.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return fail(fmt::format("the value {} is too large", number));
    }
    return fail(fmt::format("the value must be a positive whole number, not '{}'", number));
  }
  struct Unit {
    std::string_view singular, plural;
    std::int64_t ms;
  };
  static constexpr std::array<Unit, 3> kUnits = {{
      {"minute", "minutes", 60'000}, {"hour", "hours", 3'600'000}, {"day", "days", 86'400'000}}};
  for (const auto& u : kUnits) {
    if (unit != u.singular && unit != u.plural) continue;
    if (*value == 1 && unit == u.plural) {
      return fail(fmt::format("the unit must be '{}' (singular) when the value is 1", u.singular));
    }
    if (*value != 1 && unit == u.singular) {
      return fail(fmt::format("the unit must be '{}' (plural) when the value is not 1", u.plural));
    }
    ScheduleExpression e;
    e.kind = ScheduleKind::kRate;
    e.text = std::string(text);
    e.rate_ms = *value * u.ms;
    return e;
  }
  return fail(fmt::format("the unit '{}' is not one of minute(s), hour(s) or day(s)", unit));
}

base::Result<ScheduleExpression> parse_cron(std::string_view text, std::string_view body) {
  std::vector<std::string_view> parts;
  std::size_t pos = 0;
  while (pos <= body.size()) {
    const auto space = body.find(' ', pos);
    parts.push_back(body.substr(pos, space == std::string_view::npos ? body.npos : space - pos));
    if (space == std::string_view::npos) break;
    pos = space + 1;
  }
  if (std::any_of(parts.begin(), parts.end(), [](std::string_view p) { return p.empty(); }) || parts.size() != 6) {
    return invalid("expected 6 fields separated by single spaces (Minutes Hours Day-of-month Month Day-of-week "
                   "Year), e.g. cron(0 9 * * ? *)");
  }
  ScheduleExpression e;
  e.kind = ScheduleKind::kCron;
  e.text = std::string(text);
  CronField* fields[] = {&e.cron.minutes, &e.cron.hours, &e.cron.day_of_month,
                         &e.cron.month,   &e.cron.day_of_week, &e.cron.year};
  for (std::size_t i = 0; i < 6; ++i) {
    auto field = FieldParser(static_cast<FieldId>(i)).parse(parts[i]);
    if (!field.ok()) return std::move(field).error();
    *fields[i] = *field;
  }
  if (e.cron.day_of_month.any == e.cron.day_of_week.any) {
    return invalid(
        "exactly one of Day-of-month and Day-of-week must be '?' (use '?' in Day-of-month to pick days by weekday, "
        "or in Day-of-week to pick them by date)");
  }
  return e;
}

base::Result<ScheduleExpression> parse_at(std::string_view text, std::string_view body) {
  // yyyy-mm-ddThh:mm:ss
  const auto shape_ok = [&] {
    if (body.size() != 19) return false;
    for (std::size_t i = 0; i < body.size(); ++i) {
      const char c = body[i];
      const char want = i == 4 || i == 7 ? '-' : i == 10 ? 'T' : i == 13 || i == 16 ? ':' : '0';
      if (want == '0' ? !(c >= '0' && c <= '9') : c != want) return false;
    }
    return true;
  };
  if (!shape_ok()) {
    return invalid("expected at(yyyy-mm-ddThh:mm:ss), a local time without zone or offset, e.g. "
                   "at(2030-01-31T09:00:00)");
  }
  const auto num = [&](std::size_t at, std::size_t len) { return *parse_int(body.substr(at, len)); };
  const int year = num(0, 4), month = num(5, 2), day = num(8, 2), hour = num(11, 2), minute = num(14, 2),
            second = num(17, 2);
  const auto range = [&](const char* what, int v, int lo, int hi) -> base::Status {
    if (v < lo || v > hi) return invalid(fmt::format("{} {} is out of range {}-{}", what, v, lo, hi));
    return base::Ok{};
  };
  NIMBUS_TRY(range("year", year, kMinYear, kMaxYear));
  NIMBUS_TRY(range("month", month, 1, 12));
  NIMBUS_TRY(range("day", day, 1, static_cast<int>(days_in_month(year, static_cast<unsigned>(month)))));
  NIMBUS_TRY(range("hour", hour, 0, 23));
  NIMBUS_TRY(range("minute", minute, 0, 59));
  NIMBUS_TRY(range("second", second, 0, 59));
  ScheduleExpression e;
  e.kind = ScheduleKind::kAt;
  e.text = std::string(text);
  e.at_local_seconds = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
                       hour * 3600 + minute * 60 + second;
  return e;
}

// --- next fire ------------------------------------------------------------------

unsigned nearest_weekday(int year, unsigned month, unsigned day, unsigned dim) {
  const unsigned wd = weekday_of(year, month, day);
  if (wd == 6) return day == 1 ? 3 : day - 1;      // Saturday: Friday, or Monday the 3rd
  if (wd == 0) return day == dim ? day - 2 : day + 1;  // Sunday: Monday, or Friday before the month's end
  return day;
}

bool day_matches(const CronSpec& c, int year, unsigned month, unsigned day, unsigned dim) {
  if (!c.day_of_month.any) {
    const CronField& f = c.day_of_month;
    if (f.values.test(day - 1)) return true;
    if (f.last && day == dim) return true;
    if (f.last_weekday && day == nearest_weekday(year, month, dim, dim)) return true;
    for (unsigned n = 1; n <= dim; ++n) {
      if (f.nearest_weekday.test(n - 1) && nearest_weekday(year, month, n, dim) == day) return true;
    }
    return false;
  }
  const CronField& f = c.day_of_week;
  const unsigned wd = weekday_of(year, month, day);  // 0 = Sunday = field value 1
  if (f.values.test(wd)) return true;
  if (f.last_of.test(wd) && day + 7 > dim) return true;
  return f.nth != 0 && static_cast<unsigned>(f.nth_day - 1) == wd && (day - 1) / 7 + 1 == static_cast<unsigned>(f.nth);
}

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return a / b + ((a % b != 0) && ((a > 0) == (b > 0))); }

std::optional<std::int64_t> next_cron(const CronSpec& c, const TimeZone& zone, std::int64_t from_ms) {
  const std::int64_t from_s = ceil_div(from_ms, 1000);
  const CivilTime start = civil_from_seconds(from_s + zone.offset_at(from_s));
  if (start.year > kMaxYear) return std::nullopt;
  const bool before_range = start.year < kMinYear;
  for (int year = std::max(start.year, kMinYear); year <= kMaxYear; ++year) {
    if (!c.year.values.test(static_cast<std::size_t>(year - kMinYear))) continue;
    const bool at_year = !before_range && year == start.year;
    for (unsigned month = at_year ? start.month : 1; month <= 12; ++month) {
      if (!c.month.values.test(month - 1)) continue;
      const bool at_month = at_year && month == start.month;
      const unsigned dim = days_in_month(year, month);
      for (unsigned day = at_month ? start.day : 1; day <= dim; ++day) {
        if (!day_matches(c, year, month, day, dim)) continue;
        const bool at_day = at_month && day == start.day;
        const std::int64_t midnight = days_from_civil(year, month, day) * 86400;
        for (unsigned hour = at_day ? start.hour : 0; hour < 24; ++hour) {
          if (!c.hours.values.test(hour)) continue;
          const bool at_hour = at_day && hour == start.hour;
          for (unsigned minute = at_hour ? start.minute : 0; minute < 60; ++minute) {
            if (!c.minutes.values.test(minute)) continue;
            const auto instants = zone.resolve(midnight + hour * 3600 + minute * 60);
            if (instants.empty()) continue;  // a DST gap: this wall-clock minute does not happen
            // The first occurrence only: in an overlap the repeat is not a new fire.
            if (instants.front() * 1000 >= from_ms) return instants.front() * 1000;
          }
        }
      }
    }
  }
  return std::nullopt;
}

}  // namespace

base::Result<ScheduleExpression> parse_schedule_expression(std::string_view text) {
  if (auto body = inside(text, "rate(")) return parse_rate(text, *body);
  if (auto body = inside(text, "cron(")) return parse_cron(text, *body);
  if (auto body = inside(text, "at(")) return parse_at(text, *body);
  return invalid("expected rate(value unit), cron(Minutes Hours Day-of-month Month Day-of-week Year) or "
                 "at(yyyy-mm-ddThh:mm:ss)");
}

std::optional<std::int64_t> next_fire_ms(const ScheduleExpression& expression, const TimeZone& zone,
                                         std::int64_t from_ms, std::int64_t anchor_ms) {
  switch (expression.kind) {
    case ScheduleKind::kRate: {
      if (from_ms <= anchor_ms) return anchor_ms;
      return anchor_ms + ceil_div(from_ms - anchor_ms, expression.rate_ms) * expression.rate_ms;
    }
    case ScheduleKind::kCron:
      return next_cron(expression.cron, zone, from_ms);
    case ScheduleKind::kAt: {
      auto instants = zone.resolve(expression.at_local_seconds);
      // In a gap the wall-clock time does not exist: fire as far past the
      // jump as the time was past its start (02:30 in a 02:00->03:00 gap: 03:30).
      const std::int64_t at_s = instants.empty()
                                    ? expression.at_local_seconds - zone.offset_at(expression.at_local_seconds - 86400)
                                    : instants.front();
      if (at_s * 1000 < from_ms) return std::nullopt;
      return at_s * 1000;
    }
  }
  return std::nullopt;
}

std::string format_event_time(std::int64_t epoch_ms) {
  const CivilTime t = civil_from_seconds(epoch_ms >= 0 ? epoch_ms / 1000 : -ceil_div(-epoch_ms, 1000));
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", t.year, t.month, t.day, t.hour, t.minute, t.second);
}

}  // namespace nimbus::events
