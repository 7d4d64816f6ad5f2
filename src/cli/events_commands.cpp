#include "cli/events_commands.h"

#include <ctime>

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

}  // namespace nimbus::cli
