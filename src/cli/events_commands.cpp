#include "cli/events_commands.h"

#include <ctime>
#include <vector>

#include <fmt/format.h>

#include "cli/output.h"
#include "http/types.h"

namespace nimbus::cli {

using nlohmann::json;

namespace {

// 2026-11-23 14:15:40 UTC
std::string when(std::int64_t ms) {
  if (ms <= 0) return "-";
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string target_of(const json& inv) {
  std::string fn = inv.value("FunctionName", "");
  const std::string q = inv.value("Qualifier", "");
  return q.empty() ? fn : fn + ":" + q;
}

std::string schedule_path(const std::string& name) { return "/nimbus/v1/schedules/" + http::percent_encode(name); }

std::string next_fire_text(const json& s) {
  if (s.value("State", "") != "ENABLED") return "(disabled)";
  const auto& next = s.contains("NextFireTime") ? s["NextFireTime"] : json();
  return next.is_string() ? next.get<std::string>() : "never";
}

}  // namespace

int events_list(ControlClient& client, const EventsListOptions& o) {
  std::string target = fmt::format("/nimbus/v1/events?limit={}", o.limit);
  if (!o.function.empty()) target += "&function=" + http::percent_encode(o.function);
  if (!o.state.empty()) target += "&state=" + http::percent_encode(o.state);
  auto reply = client.call(http::Verb::get, target);
  if (!reply.ok()) return fail(reply.error().message);
  const json items = reply->body.value("Invocations", json::array());
  if (items.empty()) {
    fmt::print("no asynchronous invocations\n");
    return 0;
  }
  fmt::print("{:<36}  {:<24} {:<9} {:>8}  {:<19}  {}\n", "ID", "FUNCTION", "STATE", "ATTEMPTS", "CREATED (UTC)",
             "LAST ERROR");
  for (const auto& inv : items) {
    std::string error = inv.value("LastError", "");
    if (error.size() > 60) error = error.substr(0, 57) + "...";
    fmt::print("{:<36}  {:<24} {:<9} {:>8}  {:<19}  {}\n", inv.value("Id", ""), target_of(inv),
               inv.value("State", ""), inv.value("Attempts", 0), when(inv.value("CreatedMs", std::int64_t{0})),
               error.empty() ? "-" : error);
  }
  return 0;
}

int events_show(ControlClient& client, const std::string& id) {
  auto reply = client.call(http::Verb::get, "/nimbus/v1/events/" + http::percent_encode(id));
  if (!reply.ok()) return fail(reply.error().message);
  const json& inv = reply->body;
  fmt::print("id:            {}\n", inv.value("Id", ""));
  fmt::print("function:      {}\n", target_of(inv));
  fmt::print("kind:          {}\n", inv.value("Kind", ""));
  fmt::print("state:         {}\n", inv.value("State", ""));
  if (inv.contains("Condition")) fmt::print("condition:     {}\n", inv.value("Condition", ""));
  fmt::print("attempts:      {}\n", inv.value("Attempts", 0));
  fmt::print("created:       {} UTC\n", when(inv.value("CreatedMs", std::int64_t{0})));
  fmt::print("updated:       {} UTC\n", when(inv.value("UpdatedMs", std::int64_t{0})));
  if (inv.value("State", "") == "pending") {
    fmt::print("next attempt:  {} UTC\n", when(inv.value("NextAttemptMs", std::int64_t{0})));
  }
  if (inv.contains("Source")) fmt::print("record of:     {}\n", inv.value("Source", ""));
  if (inv.value("Redrives", 0) > 0) fmt::print("redrives:      {}\n", inv.value("Redrives", 0));
  const std::string error = inv.value("LastError", "");
  if (!error.empty()) fmt::print("last error:    {}\n", error);
  for (const auto& d : inv.value("Deliveries", json::array())) {
    std::string line = fmt::format("{} -> {}: {}", d.value("type", ""), d.value("target", ""), d.value("state", ""));
    if (d.contains("id")) line += " (" + d.value("id", "") + ")";
    if (d.contains("reason")) line += " (" + d.value("reason", "") + ")";
    fmt::print("delivery:      {}\n", line);
  }
  fmt::print("payload:       {}\n", inv.value("Payload", ""));
  if (inv.contains("LastResponse")) {
    fmt::print("last response: {}\n", inv["LastResponse"].value("payload", ""));
  }
  return 0;
}

int events_redrive(ControlClient& client, const std::string& id) {
  auto reply = client.call(http::Verb::post, "/nimbus/v1/events/" + http::percent_encode(id) + "/redrive",
                           json::object());
  if (!reply.ok()) return fail(reply.error().message);
  fmt::print("redriven {}: pending again\n", id);
  return 0;
}

// --- event source mappings -------------------------------------------------

namespace {

constexpr const char* kMappingsPath = "/2015-03-31/event-source-mappings/";

// A queue name becomes the ARN of that queue on this nimbus: region and
// account come from the function's ARN.
base::Result<std::string> queue_arn(ControlClient& client, const MappingOptions& o) {
  if (o.queue.starts_with("arn:")) return o.queue;
  const std::string function = o.function.substr(0, o.function.find(':'));
  auto reply = client.call(http::Verb::get,
                           "/2015-03-31/functions/" + http::percent_encode(function) + "/configuration");
  if (!reply.ok()) return std::move(reply).error();
  // arn:aws:lambda:REGION:ACCOUNT:function:NAME
  const std::string arn = reply->body.value("FunctionArn", "");
  std::vector<std::string> parts;
  for (std::size_t start = 0, colon = 0; colon != std::string::npos; start = colon + 1) {
    colon = arn.find(':', start);
    parts.push_back(arn.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
  }
  if (parts.size() < 5) {
    return base::make_error(base::ErrorCode::kService, fmt::format("unexpected FunctionArn '{}'", arn));
  }
  return fmt::format("arn:aws:sqs:{}:{}:{}", parts[3], parts[4], o.queue);
}

std::string queue_name(const std::string& arn) { return arn.substr(arn.rfind(':') + 1); }

void print_mapping(const json& m) {
  fmt::print("mapping {}: {} -> {} (batch {}, window {} s{}{}), {}\n", m.value("UUID", ""),
             queue_name(m.value("EventSourceArn", "")), m.value("FunctionArn", ""), m.value("BatchSize", 0),
             m.value("MaximumBatchingWindowInSeconds", 0),
             m.value("FunctionResponseTypes", json::array()).empty() ? "" : ", partial batch responses",
             m.contains("ScalingConfig")
                 ? fmt::format(", at most {} concurrent", m["ScalingConfig"].value("MaximumConcurrency", 0))
                 : "",
             m.value("State", ""));
}

}  // namespace

int mapping_add(ControlClient& client, const MappingOptions& o) {
  auto arn = queue_arn(client, o);
  if (!arn.ok()) return fail(arn.error().message);
  json body = {{"FunctionName", o.function}, {"EventSourceArn", *arn}, {"Enabled", !o.disabled}};
  if (o.batch_size > 0) body["BatchSize"] = o.batch_size;
  if (o.window_s >= 0) body["MaximumBatchingWindowInSeconds"] = o.window_s;
  if (o.report_failures) body["FunctionResponseTypes"] = json::array({"ReportBatchItemFailures"});
  if (o.max_concurrency > 0) body["ScalingConfig"] = {{"MaximumConcurrency", o.max_concurrency}};
  auto reply = client.call(http::Verb::post, kMappingsPath, body);
  if (!reply.ok()) return fail(reply.error().message);
  print_mapping(reply->body);
  return 0;
}

int mapping_list(ControlClient& client, const std::string& function) {
  std::string target = kMappingsPath;
  if (!function.empty()) target += "?FunctionName=" + http::percent_encode(function);
  json items = json::array();
  for (std::string marker;;) {
    const std::string page = marker.empty() ? target
                                            : target + (function.empty() ? "?" : "&") +
                                                  "Marker=" + http::percent_encode(marker);
    auto reply = client.call(http::Verb::get, page);
    if (!reply.ok()) return fail(reply.error().message);
    for (auto& m : reply->body.value("EventSourceMappings", json::array())) items.push_back(std::move(m));
    marker = reply->body.value("NextMarker", "");
    if (marker.empty()) break;
  }
  if (items.empty()) {
    fmt::print("no event source mappings (add one with `nimbus mapping add --queue Q --function F`)\n");
    return 0;
  }
  fmt::print("{:<36}  {:<20} {:<28} {:>5} {:>6}  {:<8}  {}\n", "UUID", "QUEUE", "FUNCTION", "BATCH", "WINDOW",
             "STATE", "LAST RESULT");
  for (const auto& m : items) {
    std::string function_arn = m.value("FunctionArn", "");
    const auto at = function_arn.find(":function:");
    if (at != std::string::npos) function_arn = function_arn.substr(at + 10);
    fmt::print("{:<36}  {:<20} {:<28} {:>5} {:>6}  {:<8}  {}\n", m.value("UUID", ""),
               queue_name(m.value("EventSourceArn", "")), function_arn, m.value("BatchSize", 0),
               m.value("MaximumBatchingWindowInSeconds", 0), m.value("State", ""),
               m.value("LastProcessingResult", ""));
  }
  return 0;
}

int mapping_remove(ControlClient& client, const std::string& id) {
  auto reply = client.call(http::Verb::delete_, kMappingsPath + http::percent_encode(id));
  if (!reply.ok()) return fail(reply.error().message);
  fmt::print("removed mapping {} ({} -> {})\n", id, queue_name(reply->body.value("EventSourceArn", "")),
             reply->body.value("FunctionArn", ""));
  return 0;
}

int mapping_set_enabled(ControlClient& client, const std::string& id, bool enabled) {
  auto reply = client.call(http::Verb::put, kMappingsPath + http::percent_encode(id), json{{"Enabled", enabled}});
  if (!reply.ok()) return fail(reply.error().message);
  print_mapping(reply->body);
  return 0;
}

int schedule_add(ControlClient& client, const ScheduleOptions& o) {
  json body = {{"Name", o.name}, {"ScheduleExpression", o.expression}};
  const auto colon = o.function.find(':');
  body["FunctionName"] = o.function.substr(0, colon);
  if (colon != std::string::npos) body["Qualifier"] = o.function.substr(colon + 1);
  if (!o.timezone.empty()) body["ScheduleExpressionTimezone"] = o.timezone;
  if (!o.input.empty()) body["Input"] = o.input;
  if (o.disabled) body["State"] = "DISABLED";
  auto reply = client.call(http::Verb::post, "/nimbus/v1/schedules", body);
  if (!reply.ok()) return fail(reply.error().message);
  const json& s = reply->body;
  fmt::print("schedule {} -> {}:{} {} ({}), next fire {}\n", s.value("Name", o.name), s.value("FunctionName", ""),
             s.value("Qualifier", ""), s.value("ScheduleExpression", ""), s.value("ScheduleExpressionTimezone", ""),
             next_fire_text(s));
  return 0;
}

int schedule_list(ControlClient& client) {
  auto reply = client.call(http::Verb::get, "/nimbus/v1/schedules");
  if (!reply.ok()) return fail(reply.error().message);
  const json schedules = reply->body.value("Schedules", json::array());
  if (schedules.empty()) {
    fmt::print("no schedules (add one with `nimbus schedule add NAME --function F --expression 'rate(5 minutes)'`)\n");
    return 0;
  }
  fmt::print("{:<24} {:<28} {:<16} {:<24} {:<8} {:<20} {}\n", "NAME", "EXPRESSION", "TIMEZONE", "FUNCTION", "STATE",
             "NEXT FIRE", "LAST FIRE");
  for (const auto& s : schedules) {
    const json& last = s.contains("LastFireTime") ? s["LastFireTime"] : json();
    fmt::print("{:<24} {:<28} {:<16} {:<24} {:<8} {:<20} {}\n", s.value("Name", ""), s.value("ScheduleExpression", ""),
               s.value("ScheduleExpressionTimezone", ""),
               s.value("FunctionName", "") + ":" + s.value("Qualifier", ""), s.value("State", ""), next_fire_text(s),
               last.is_string() ? last.get<std::string>() : "-");
  }
  return 0;
}

int schedule_remove(ControlClient& client, const std::string& name) {
  auto reply = client.call(http::Verb::delete_, schedule_path(name));
  if (!reply.ok()) return fail(reply.error().message);
  fmt::print("removed schedule {}\n", name);
  return 0;
}

int schedule_set_state(ControlClient& client, const std::string& name, std::string_view action) {
  auto reply = client.call(http::Verb::post, schedule_path(name) + "/" + std::string(action));
  if (!reply.ok()) return fail(reply.error().message);
  fmt::print("schedule {} {}, next fire {}\n", name, action == "enable" ? "enabled" : "disabled",
             next_fire_text(reply->body));
  return 0;
}

}  // namespace nimbus::cli
