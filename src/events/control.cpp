#include "events/control.h"

#include <fmt/format.h>

namespace nimbus::events {

using base::ErrorCode;
using base::make_error;
using nlohmann::json;

namespace {
constexpr std::string_view kEventsPrefix = "/nimbus/v1/events";

bool known_state(std::string_view s) {
  return s == "pending" || s == "running" || s == "succeeded" || s == "failed";
}

std::string param(const http::Params& query, std::string_view name) {
  const std::string* v = http::find_param(query, name);
  return v ? *v : std::string();
}
}  // namespace

json render_invocation(const store::AsyncInvocationRow& row, bool full) {
  json doc = json::parse(row.document, nullptr, false);
  if (!doc.is_object()) doc = json::object();
  json out = {{"Id", row.id},
              {"Seq", row.seq},
              {"FunctionName", row.function},
              {"Qualifier", row.qualifier},
              {"Kind", doc.value("kind", "invoke")},
              {"State", row.state},
              {"Attempts", row.attempts},
              {"CreatedMs", row.created_ms},
              {"UpdatedMs", row.updated_ms},
              {"NextAttemptMs", row.next_attempt_ms},
              {"LastError", row.last_error}};
  if (doc.contains("condition")) out["Condition"] = doc["condition"];
  if (doc.contains("source")) out["Source"] = doc["source"];
  if (!full) return out;
  out["Payload"] = row.payload;
  if (doc.contains("last_response")) out["LastResponse"] = doc["last_response"];
  out["Deliveries"] = doc.value("deliveries", json::array());
  out["Redrives"] = doc.value("redrives", 0);
  return out;
}

EventsControl::EventsControl(store::Store& store, AsyncQueue& queue, Dispatcher* dispatcher, EventsMetrics& metrics,
                             const base::Clock& clock)
    : store_(store), queue_(queue), dispatcher_(dispatcher), metrics_(metrics), clock_(clock) {}

base::Result<ControlReply> EventsControl::control(http::Verb method, std::string_view path, const http::Params& query,
                                                  const std::string&) {
  if (!path.starts_with(kEventsPrefix)) return make_error(ErrorCode::kNotImplemented, "unknown events path");
  std::string_view rest = path.substr(kEventsPrefix.size());
  if (rest.empty() || rest == "/") {
    if (method != http::Verb::get) {
      return make_error(ErrorCode::kNotImplemented, "/nimbus/v1/events takes GET only");
    }
    return list(query);
  }
  rest.remove_prefix(1);
  const auto slash = rest.find('/');
  const std::string id(rest.substr(0, slash));
  const std::string_view action = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  if (action.empty() && method == http::Verb::get) {
    auto row = store_.get_async(id);
    if (!row.ok()) return std::move(row).error();
    return ControlReply{200, render_invocation(*row, true)};
  }
  if (action == "redrive" && method == http::Verb::post) return redrive(id);
  return make_error(ErrorCode::kNotImplemented,
                    fmt::format("{} is not an operation of /nimbus/v1/events", std::string(path)));
}

base::Result<ControlReply> EventsControl::list(const http::Params& query) {
  const std::string state = param(query, "state");
  if (!state.empty() && !known_state(state)) {
    return make_error(ErrorCode::kValidation,
                      fmt::format("1 validation error detected: Value '{}' at 'state' failed to satisfy constraint: "
                                  "Member must satisfy enum value set: [pending, running, succeeded, failed]",
                                  state));
  }
  std::int64_t limit = 50;
  std::int64_t before = 0;
  for (auto [name, target, low, high] : {std::tuple{"limit", &limit, 1LL, 1000LL},
                                         std::tuple{"before", &before, 0LL, static_cast<long long>(INT64_MAX)}}) {
    const std::string text = param(query, name);
    if (text.empty()) continue;
    char* end = nullptr;
    const long long v = std::strtoll(text.c_str(), &end, 10);
    if (*end != '\0' || v < low || v > high) {
      return make_error(ErrorCode::kValidation,
                        fmt::format("1 validation error detected: Value '{}' at '{}' failed to satisfy constraint: "
                                    "Member must have value between {} and {}",
                                    text, name, low, high));
    }
    *target = v;
  }
  auto rows = store_.list_async(param(query, "function"), state, before, static_cast<std::size_t>(limit));
  if (!rows.ok()) return std::move(rows).error();
  json items = json::array();
  for (const auto& row : *rows) items.push_back(render_invocation(row, false));
  json out = {{"Invocations", std::move(items)}};
  if (rows->size() == static_cast<std::size_t>(limit)) out["NextBefore"] = rows->back().seq;
  return ControlReply{200, std::move(out)};
}

base::Result<ControlReply> EventsControl::redrive(const std::string& id) {
  auto row = store_.get_async(id);
  if (!row.ok()) return std::move(row).error();
  if (row->state != "failed") {
    return make_error(ErrorCode::kResourceConflict,
                      fmt::format("Only failed invocations can be redriven; {} is {}", id, row->state));
  }
  json doc = json::parse(row->document, nullptr, false);
  if (!doc.is_object()) doc = json::object();
  const std::int64_t now = clock_.now_ms();
  // A redrive is a fresh start: new age, new retry budget; attempts keep counting.
  doc["age_base_ms"] = now;
  doc["function_errors"] = 0;
  doc["redrives"] = doc.value("redrives", 0) + 1;
  doc.erase("condition");
  row->state = "pending";
  row->next_attempt_ms = now;
  row->updated_ms = now;
  row->document = doc.dump(-1, ' ', false, json::error_handler_t::replace);
  store::AsyncWriteBatch batch;
  batch.updates.push_back(*row);
  NIMBUS_TRY(queue_.write_blocking(std::move(batch)));
  metrics_.queue_depth.add(1);
  if (dispatcher_) dispatcher_->wake();
  return ControlReply{200, render_invocation(*row, true)};
}

}  // namespace nimbus::events
