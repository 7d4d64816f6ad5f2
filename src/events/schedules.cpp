#include "events/schedules.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "base/crypto.h"

namespace nimbus::events {

namespace asio = boost::asio;
using base::ErrorCode;
using base::make_error;
using nlohmann::json;

namespace {

constexpr std::string_view kSchedulesPrefix = "/nimbus/v1/schedules";
constexpr std::size_t kMaxInputBytes = 8192;  // EventBridge's Target.Input limit

bool valid_name(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
  });
}

base::Result<std::string> optional_string(const json& body, const char* key) {
  const auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::string();
  if (!it->is_string()) return make_error(ErrorCode::kValidation, fmt::format("{} must be a string", key));
  return it->get<std::string>();
}

}  // namespace

FirePlan plan_fire(const store::ScheduleRow& row, const ScheduleExpression& expression, const TimeZone& zone,
                   std::int64_t now_ms) {
  FirePlan plan;
  plan.after = row;
  if (!row.enabled || row.next_fire_ms < 0 || row.next_fire_ms > now_ms) return plan;
  plan.fire = true;
  plan.scheduled_ms = row.next_fire_ms;
  plan.after.last_fire_ms = now_ms;
  if (expression.kind == ScheduleKind::kAt) {
    plan.after.enabled = false;
    plan.after.next_fire_ms = -1;
    return plan;
  }
  const auto following = next_fire_ms(expression, zone, row.next_fire_ms + 1, row.created_ms);
  plan.late = following && *following <= now_ms;
  const auto next = plan.late ? next_fire_ms(expression, zone, now_ms + 1, row.created_ms) : following;
  plan.after.next_fire_ms = next.value_or(-1);
  return plan;
}

Scheduler::Scheduler(asio::any_io_executor executor, store::Store& store, registry::Registry* registry,
                     telemetry::Registry& metrics, const base::Clock& clock, AsyncInvoke invoke, SchedulerConfig config)
    : strand_(asio::make_strand(executor)),
      store_(store),
      registry_(registry),
      metrics_(metrics),
      clock_(clock),
      invoke_(std::move(invoke)),
      config_(std::move(config)),
      timer_(strand_) {}

void Scheduler::start() {
  asio::co_spawn(strand_, run(), [](const std::exception_ptr& e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("scheduler: timer loop ended: {}", ex.what());
    }
  });
}

void Scheduler::stop() {
  asio::post(strand_, [this] {
    stopping_ = true;
    timer_.cancel();
  });
}

void Scheduler::wake() {
  asio::post(strand_, [this] { timer_.cancel(); });
}

asio::awaitable<void> Scheduler::run() {
  while (!stopping_) {
    auto next = fire_due();
    auto sleep = config_.max_sleep;
    if (!next.ok()) {
      spdlog::error("scheduler: {}", next.error().message);  // retried after max_sleep
    } else if (*next) {
      const double schedule_ms = static_cast<double>(**next - clock_.now_ms());
      const auto real_ms = static_cast<std::int64_t>(schedule_ms / config_.time_scale) + 1;
      sleep = std::clamp(std::chrono::milliseconds(real_ms), std::chrono::milliseconds(1), config_.max_sleep);
    }
    timer_.expires_after(sleep);
    auto [ec] = co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    (void)ec;  // cancelled: a schedule changed, or stop()
  }
}

base::Result<std::optional<std::int64_t>> Scheduler::fire_due() {
  std::lock_guard lock(mu_);
  auto rows = store_.list_schedules();
  if (!rows.ok()) return std::move(rows).error();
  const std::int64_t now = clock_.now_ms();
  std::optional<std::int64_t> earliest;
  for (const auto& row : *rows) {
    auto expression = parse_schedule_expression(row.expression);
    auto zone = TimeZone::load(row.timezone, config_.zoneinfo);
    if (!expression.ok() || !zone.ok()) {
      spdlog::error("scheduler: schedule {} cannot be evaluated: {}", row.name,
                    expression.ok() ? zone.error().message : expression.error().message);
      continue;
    }
    const FirePlan plan = plan_fire(row, *expression, *zone, now);
    if (plan.fire) {
      const std::string payload = row.input ? *row.input : scheduled_event(row.name, plan.scheduled_ms);
      // Handed over first, recorded second: a crash in between fires again
      // after restart (at least once). A store that cannot record keeps the
      // loop at its slowest pace (the error ends this pass).
      if (auto handed = invoke_(row.function, row.qualifier, payload); handed.ok()) {
        metrics_.fires(row.name).add();
      } else {
        metrics_.fire_errors(row.name).add();
        spdlog::error("scheduler: schedule {} could not invoke {}: {}", row.name, row.function,
                      handed.error().message);
      }
      if (plan.late) {
        metrics_.catch_up_fires(row.name).add();
        spdlog::info("scheduler: schedule {} fired late for {} (catch-up); next {}", row.name,
                     format_event_time(plan.scheduled_ms),
                     plan.after.next_fire_ms < 0 ? "never" : format_event_time(plan.after.next_fire_ms));
      }
      NIMBUS_TRY(store_.update_schedule(plan.after));
    }
    if (plan.after.enabled && plan.after.next_fire_ms >= 0) {
      earliest = std::min(earliest.value_or(plan.after.next_fire_ms), plan.after.next_fire_ms);
    }
  }
  return earliest;
}

std::string Scheduler::rule_arn(const std::string& schedule) const {
  return fmt::format("arn:aws:events:{}:{}:rule/{}", config_.region, config_.account_id, schedule);
}

std::string Scheduler::scheduled_event(const std::string& schedule, std::int64_t scheduled_ms) const {
  nlohmann::ordered_json event = {{"version", "0"},
                                  {"id", base::uuid4()},
                                  {"detail-type", "Scheduled Event"},
                                  {"source", "aws.events"},
                                  {"account", config_.account_id},
                                  {"time", format_event_time(scheduled_ms)},
                                  {"region", config_.region},
                                  {"resources", {rule_arn(schedule)}},
                                  {"detail", nlohmann::ordered_json::object()}};
  return event.dump();
}

base::Result<std::int64_t> Scheduler::first_fire(const store::ScheduleRow& row, std::int64_t from_ms) const {
  auto expression = parse_schedule_expression(row.expression);
  if (!expression.ok()) return std::move(expression).error();
  auto zone = TimeZone::load(row.timezone, config_.zoneinfo);
  if (!zone.ok()) return std::move(zone).error();
  return next_fire_ms(*expression, *zone, from_ms, row.created_ms).value_or(-1);
}

// --- control API --------------------------------------------------------------------

base::Result<ScheduleReply> Scheduler::control(http::Verb method, std::string_view path, const std::string& body) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  if (path == kSchedulesPrefix) {
    if (method == http::Verb::get) return list();
    if (method == http::Verb::post) return create(body);
  } else if (path.size() > kSchedulesPrefix.size() + 1 && path.substr(0, kSchedulesPrefix.size() + 1) == std::string(kSchedulesPrefix) + "/") {
    std::string_view rest = path.substr(kSchedulesPrefix.size() + 1);
    const auto slash = rest.find('/');
    const std::string name(rest.substr(0, slash));
    const std::string_view action = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (action.empty() && method == http::Verb::get) return get(name);
    if (action.empty() && method == http::Verb::delete_) return remove(name);
    if (action == "enable" && method == http::Verb::post) return set_enabled(name, true);
    if (action == "disable" && method == http::Verb::post) return set_enabled(name, false);
  }
  return make_error(ErrorCode::kNotImplemented,
                    fmt::format("{} {} is not an operation nimbus offers",
                                std::string(http::beast::http::to_string(method)), std::string(path)));
}

base::Result<ScheduleReply> Scheduler::create(const std::string& body) {
  const json parsed = json::parse(body, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return make_error(ErrorCode::kInvalidRequestContent, "The schedule body is not a JSON object");
  }
  store::ScheduleRow row;
  auto name = optional_string(parsed, "Name");
  if (!name.ok()) return std::move(name).error();
  if (!valid_name(*name)) {
    return make_error(ErrorCode::kValidation,
                      fmt::format("Name '{}' must be 1-64 letters, digits, '.', '-' or '_'", *name));
  }
  row.name = *name;
  auto expression_text = optional_string(parsed, "ScheduleExpression");
  if (!expression_text.ok()) return std::move(expression_text).error();
  if (expression_text->empty()) return make_error(ErrorCode::kValidation, "ScheduleExpression is required");
  auto expression = parse_schedule_expression(*expression_text);
  if (!expression.ok()) {
    return make_error(ErrorCode::kValidation,
                      fmt::format("Invalid Schedule Expression {}: {}", *expression_text, expression.error().message));
  }
  row.expression = *expression_text;
  auto zone_name = optional_string(parsed, "ScheduleExpressionTimezone");
  if (!zone_name.ok()) return std::move(zone_name).error();
  row.timezone = zone_name->empty() ? "UTC" : *zone_name;
  auto zone = TimeZone::load(row.timezone, config_.zoneinfo);
  if (!zone.ok()) return std::move(zone).error();
  auto function = optional_string(parsed, "FunctionName");
  if (!function.ok()) return std::move(function).error();
  if (function->empty()) return make_error(ErrorCode::kValidation, "FunctionName is required");
  row.function = *function;
  auto qualifier = optional_string(parsed, "Qualifier");
  if (!qualifier.ok()) return std::move(qualifier).error();
  row.qualifier = *qualifier == "$LATEST" ? std::string() : *qualifier;
  if (registry_ != nullptr) {
    if (auto fn = registry_->get_qualified(row.function, row.qualifier); !fn.ok()) {
      return make_error(ErrorCode::kResourceNotFound,
                        "Function not found: " + registry_->function_arn(row.function, row.qualifier));
    }
  }
  if (const auto it = parsed.find("Input"); it != parsed.end() && !it->is_null()) {
    // Target.Input is JSON text; an object or array is taken as is.
    std::string text = it->is_string() ? it->get<std::string>() : it->dump();
    const json input = json::parse(text, nullptr, false);
    if (input.is_discarded()) return make_error(ErrorCode::kValidation, "Input must be valid JSON text");
    if (text.size() > kMaxInputBytes) {
      return make_error(ErrorCode::kValidation, fmt::format("Input is {} bytes; at most {}", text.size(), kMaxInputBytes));
    }
    row.input = std::move(text);
  }
  auto state = optional_string(parsed, "State");
  if (!state.ok()) return std::move(state).error();
  if (!state->empty() && *state != "ENABLED" && *state != "DISABLED") {
    return make_error(ErrorCode::kValidation, fmt::format("State '{}' must be ENABLED or DISABLED", *state));
  }
  row.enabled = *state != "DISABLED";
  const std::int64_t now = clock_.now_ms();
  row.created_ms = now;
  // rate(): the first fire is now (as EventBridge); cron() and at(): the first matching time.
  row.next_fire_ms = next_fire_ms(*expression, *zone, now, now).value_or(-1);
  if (expression->kind == ScheduleKind::kAt && row.next_fire_ms < 0) {
    return make_error(ErrorCode::kValidation,
                      fmt::format("Invalid Schedule Expression {}: the time is in the past (it is now {} in {})",
                                  row.expression, format_event_time(now + zone->offset_at(now / 1000) * 1000LL)
                                                      .substr(0, 19),
                                  row.timezone));
  }
  {
    std::lock_guard lock(mu_);
    NIMBUS_TRY(store_.insert_schedule(row));
  }
  wake();
  return ScheduleReply{201, view(row)};
}

base::Result<ScheduleReply> Scheduler::list() {
  auto rows = store_.list_schedules();
  if (!rows.ok()) return std::move(rows).error();
  json items = json::array();
  for (const auto& row : *rows) items.push_back(view(row));
  return ScheduleReply{200, json{{"Schedules", std::move(items)}}};
}

base::Result<ScheduleReply> Scheduler::get(const std::string& name) {
  auto row = store_.get_schedule(name);
  if (!row.ok()) return std::move(row).error();
  return ScheduleReply{200, view(*row)};
}

base::Result<ScheduleReply> Scheduler::remove(const std::string& name) {
  {
    std::lock_guard lock(mu_);
    NIMBUS_TRY(store_.delete_schedule(name));
  }
  wake();
  return ScheduleReply{204, nullptr};
}

base::Result<ScheduleReply> Scheduler::set_enabled(const std::string& name, bool enabled) {
  store::ScheduleRow updated;
  {
    std::lock_guard lock(mu_);
    auto row = store_.get_schedule(name);
    if (!row.ok()) return std::move(row).error();
    if (row->enabled != enabled) {
      row->enabled = enabled;
      // Times that passed while disabled are not caught up: continue from now.
      if (enabled) {
        auto next = first_fire(*row, clock_.now_ms());
        if (!next.ok()) return std::move(next).error();
        row->next_fire_ms = *next;
      }
      NIMBUS_TRY(store_.update_schedule(*row));
    }
    updated = std::move(*row);
  }
  wake();
  return ScheduleReply{200, view(updated)};
}

json Scheduler::view(const store::ScheduleRow& row) const {
  const auto time_or_null = [](std::int64_t ms) { return ms < 0 ? json(nullptr) : json(format_event_time(ms)); };
  json v = {{"Name", row.name},
            {"Arn", rule_arn(row.name)},
            {"ScheduleExpression", row.expression},
            {"ScheduleExpressionTimezone", row.timezone},
            {"FunctionName", row.function},
            {"Qualifier", row.qualifier.empty() ? "$LATEST" : row.qualifier},
            {"State", row.enabled ? "ENABLED" : "DISABLED"},
            {"CreationDate", format_event_time(row.created_ms)},
            {"NextFireTime", row.enabled ? time_or_null(row.next_fire_ms) : json(nullptr)},
            {"LastFireTime", time_or_null(row.last_fire_ms)}};
  if (row.input) v["Input"] = *row.input;
  return v;
}

}  // namespace nimbus::events
