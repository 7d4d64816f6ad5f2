#include "events/schedule_timezone.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>

#include <fmt/format.h>

namespace nimbus::events {

using base::ErrorCode;
using base::make_error;

// --- civil dates (Howard Hinnant's algorithms) --------------------------------

std::int64_t days_from_civil(int year, unsigned month, unsigned day) {
  const std::int64_t y = static_cast<std::int64_t>(year) - (month <= 2 ? 1 : 0);
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

namespace {
std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }
bool is_leap(int year) { return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0); }
}  // namespace

CivilTime civil_from_seconds(std::int64_t seconds) {
  const std::int64_t days = floor_div(seconds, 86400);
  const auto secs = static_cast<unsigned>(seconds - days * 86400);
  const std::int64_t z = days + 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  const auto y = static_cast<int>(static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0));
  const auto weekday = static_cast<unsigned>(((days % 7) + 11) % 7);  // 1970-01-01 was a Thursday (4)
  return CivilTime{y, m, d, secs / 3600, secs / 60 % 60, secs % 60, weekday};
}

unsigned days_in_month(int year, unsigned month) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month == 2 && is_leap(year)) return 29;
  return kDays[month - 1];
}

unsigned weekday_of(int year, unsigned month, unsigned day) {
  const std::int64_t days = days_from_civil(year, month, day);
  return static_cast<unsigned>(((days % 7) + 11) % 7);
}

// --- POSIX TZ strings -----------------------------------------------------------

namespace {

class TzCursor {
 public:
  explicit TzCursor(std::string_view text) : text_(text) {}
  [[nodiscard]] bool done() const { return pos_ >= text_.size(); }
  [[nodiscard]] char peek() const { return done() ? '\0' : text_[pos_]; }
  bool eat(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  // A zone abbreviation: <...> or three or more letters.
  bool name() {
    if (eat('<')) {
      const auto close = text_.find('>', pos_);
      if (close == std::string_view::npos) return false;
      pos_ = close + 1;
      return true;
    }
    const std::size_t start = pos_;
    while (!done() && std::isalpha(static_cast<unsigned char>(peek()))) ++pos_;
    return pos_ - start >= 3;
  }
  bool number(int& out, int max_digits) {
    int digits = 0;
    out = 0;
    while (!done() && std::isdigit(static_cast<unsigned char>(peek())) && digits < max_digits) {
      out = out * 10 + (peek() - '0');
      ++pos_;
      ++digits;
    }
    return digits > 0;
  }
  // [+-]hh[:mm[:ss]] in seconds, sign as written.
  bool hms(std::int32_t& out) {
    int sign = 1;
    if (eat('-')) {
      sign = -1;
    } else {
      eat('+');
    }
    int h = 0, m = 0, s = 0;
    if (!number(h, 3)) return false;
    if (eat(':')) {
      if (!number(m, 2)) return false;
      if (eat(':') && !number(s, 2)) return false;
    }
    out = sign * (h * 3600 + m * 60 + s);
    return true;
  }
  bool rule(TimeZone::Rule& r) {
    if (eat('M')) {
      r.kind = TimeZone::Rule::Kind::kMonthWeekDay;
      if (!number(r.month, 2) || !eat('.') || !number(r.week, 1) || !eat('.') || !number(r.day, 1)) return false;
      if (r.month < 1 || r.month > 12 || r.week < 1 || r.week > 5 || r.day > 6) return false;
    } else if (eat('J')) {
      r.kind = TimeZone::Rule::Kind::kJulian1;
      if (!number(r.day, 3) || r.day < 1 || r.day > 365) return false;
    } else {
      r.kind = TimeZone::Rule::Kind::kJulian0;
      if (!number(r.day, 3) || r.day > 365) return false;
    }
    r.time = 7200;
    if (eat('/')) return hms(r.time);
    return true;
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

// Local (wall-clock) seconds of the day a rule names in `year`, at 00:00.
std::int64_t rule_day_seconds(const TimeZone::Rule& r, int year) {
  const std::int64_t jan1 = days_from_civil(year, 1, 1);
  std::int64_t day = 0;
  switch (r.kind) {
    case TimeZone::Rule::Kind::kJulian1:
      day = jan1 + r.day - 1 + ((is_leap(year) && r.day >= 60) ? 1 : 0);
      break;
    case TimeZone::Rule::Kind::kJulian0:
      day = jan1 + r.day;
      break;
    case TimeZone::Rule::Kind::kMonthWeekDay: {
      const auto month = static_cast<unsigned>(r.month);
      const unsigned first = weekday_of(year, month, 1);
      unsigned dom = 1 + (static_cast<unsigned>(r.day) + 7 - first) % 7 + static_cast<unsigned>(r.week - 1) * 7;
      while (dom > days_in_month(year, month)) dom -= 7;
      day = days_from_civil(year, month, dom);
      break;
    }
  }
  return day * 86400;
}

std::uint32_t be32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}
std::int64_t be64(const unsigned char* p) {
  return static_cast<std::int64_t>((std::uint64_t{be32(p)} << 32) | be32(p + 4));
}

bool valid_zone_name(std::string_view name) {
  if (name.empty() || name.size() > 128 || name.front() == '/' || name.find("..") != std::string_view::npos) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' || c == '-' || c == '+';
  });
}

}  // namespace

base::Result<TimeZone::PosixTz> parse_posix_tz(std::string_view text) {
  const auto bad = [&] { return make_error(ErrorCode::kValidation, fmt::format("bad POSIX TZ rule '{}'", text)); };
  TzCursor c(text);
  TimeZone::PosixTz tz;
  std::int32_t offset = 0;
  if (!c.name() || !c.hms(offset)) return bad();
  tz.std_offset = -offset;  // POSIX counts west of UTC
  if (c.done()) return tz;
  if (!c.name()) return bad();
  tz.has_dst = true;
  tz.dst_offset = tz.std_offset + 3600;
  if (c.peek() != ',' && !c.done()) {
    if (!c.hms(offset)) return bad();
    tz.dst_offset = -offset;
  }
  if (c.done()) {  // no rules: the US default
    tz.start = TimeZone::Rule{TimeZone::Rule::Kind::kMonthWeekDay, 0, 2, 3, 7200};
    tz.end = TimeZone::Rule{TimeZone::Rule::Kind::kMonthWeekDay, 0, 1, 11, 7200};
    return tz;
  }
  if (!c.eat(',') || !c.rule(tz.start) || !c.eat(',') || !c.rule(tz.end) || !c.done()) return bad();
  return tz;
}

base::Result<TimeZone> TimeZone::load(std::string_view name, const std::filesystem::path& zoneinfo) {
  const auto unknown = [&] {
    return make_error(ErrorCode::kValidation,
                      fmt::format("Unknown time zone '{}': expected an IANA name such as UTC or Europe/Paris", name));
  };
  if (!valid_zone_name(name)) return unknown();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(zoneinfo / std::string(name), ec)) return unknown();
  std::ifstream in(zoneinfo / std::string(name), std::ios::binary);
  if (!in) return unknown();
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  const auto corrupt = [&](std::string_view why) {
    return make_error(ErrorCode::kValidation, fmt::format("Time zone file for '{}' is unreadable: {}", name, why));
  };
  if (data.size() < 44 || data.compare(0, 4, "TZif") != 0) return unknown();

  struct Counts {
    std::uint32_t isut, isstd, leap, time, type, chars;
  };
  const auto counts_at = [&](std::size_t off) {
    const unsigned char* p = bytes + off + 20;
    return Counts{be32(p), be32(p + 4), be32(p + 8), be32(p + 12), be32(p + 16), be32(p + 20)};
  };
  const char version = data[4];
  Counts c = counts_at(0);
  std::size_t pos = 44;
  std::size_t time_size = 4;
  if (version >= '2') {
    pos += std::size_t{c.time} * 5 + std::size_t{c.type} * 6 + c.chars + std::size_t{c.leap} * 8 + c.isstd + c.isut;
    if (data.size() < pos + 44 || data.compare(pos, 4, "TZif") != 0) return corrupt("no version 2 header");
    c = counts_at(pos);
    pos += 44;
    time_size = 8;
  }
  const std::size_t need = std::size_t{c.time} * (time_size + 1) + std::size_t{c.type} * 6 + c.chars +
                           std::size_t{c.leap} * (time_size + 4) + c.isstd + c.isut;
  if (c.type == 0 || data.size() < pos + need) return corrupt("truncated");

  TimeZone tz;
  tz.name_ = std::string(name);
  const unsigned char* times = bytes + pos;
  const unsigned char* indices = times + std::size_t{c.time} * time_size;
  const unsigned char* types = indices + c.time;
  const auto type_offset = [&](std::size_t i) { return static_cast<std::int32_t>(be32(types + i * 6)); };
  tz.initial_offset_ = type_offset(0);
  for (std::uint32_t i = 0; i < c.time; ++i) {
    const std::int64_t t = time_size == 8 ? be64(times + std::size_t{i} * 8)
                                          : static_cast<std::int32_t>(be32(times + std::size_t{i} * 4));
    if (indices[i] >= c.type) return corrupt("bad type index");
    tz.transitions_.push_back(t);
    tz.offsets_after_.push_back(type_offset(indices[i]));
  }
  if (version >= '2') {
    const std::size_t footer = pos + need;
    if (footer < data.size() && data[footer] == '\n') {
      const auto end = data.find('\n', footer + 1);
      if (end != std::string::npos && end > footer + 1) {
        auto rule = parse_posix_tz(std::string_view(data).substr(footer + 1, end - footer - 1));
        if (rule.ok()) {
          tz.has_footer_ = true;
          tz.footer_ = *rule;
        }
      }
    }
  }
  return tz;
}

std::int32_t TimeZone::footer_offset(std::int64_t utc_seconds) const {
  if (!footer_.has_dst) return footer_.std_offset;
  const int year = civil_from_seconds(utc_seconds + footer_.std_offset).year;
  const std::int64_t start = rule_day_seconds(footer_.start, year) + footer_.start.time - footer_.std_offset;
  const std::int64_t end = rule_day_seconds(footer_.end, year) + footer_.end.time - footer_.dst_offset;
  const bool dst = start < end ? (utc_seconds >= start && utc_seconds < end)
                               : !(utc_seconds >= end && utc_seconds < start);
  return dst ? footer_.dst_offset : footer_.std_offset;
}

std::int32_t TimeZone::offset_at(std::int64_t utc_seconds) const {
  if (transitions_.empty() || utc_seconds >= transitions_.back()) {
    if (has_footer_) return footer_offset(utc_seconds);
    return transitions_.empty() ? initial_offset_ : offsets_after_.back();
  }
  const auto it = std::upper_bound(transitions_.begin(), transitions_.end(), utc_seconds);
  if (it == transitions_.begin()) return initial_offset_;
  return offsets_after_[static_cast<std::size_t>(it - transitions_.begin() - 1)];
}

std::vector<std::int64_t> TimeZone::resolve(std::int64_t local_seconds) const {
  // Offsets in force a day either side cover any one transition near this time.
  std::vector<std::int64_t> out;
  for (const std::int64_t probe : {local_seconds - 86400, local_seconds, local_seconds + 86400}) {
    const std::int32_t offset = offset_at(probe);
    const std::int64_t utc = local_seconds - offset;
    if (offset_at(utc) == offset && std::find(out.begin(), out.end(), utc) == out.end()) out.push_back(utc);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace nimbus::events
