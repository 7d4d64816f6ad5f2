#pragma once
// Store: the narrow persistence interface of nimbus. SqliteStore is the
// embedded implementation; a PostgreSQL one can follow behind the same calls.
// Rows carry documents (JSON text) that the owning part interprets; the store
// knows columns it must index or compare, never business rules.
//
// Threads: every method may be called from any thread; implementations
// serialise internally. Calls block (file I/O): keep them off the invoke path.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace nimbus::store {

// One function ($LATEST) as stored: the registry's document plus the columns
// it is looked up, paginated and locked by.
struct FunctionRow {
  std::string name;
  std::string document;        // JSON, owned by the registry
  std::string revision_id;     // optimistic lock
  std::string code_sha256;     // hex digest of the code blob
  std::int64_t code_size = 0;  // zipped bytes
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
};

// One published version: an immutable snapshot of a function's document.
struct VersionRow {
  std::string function;
  std::int64_t version = 0;    // 1, 2, 3, ... never reused
  std::string document;        // JSON, owned by the registry
  std::string code_sha256;     // hex digest of the code blob it runs
  std::int64_t code_size = 0;
  std::int64_t created_ms = 0;
};

// Small documents that belong to one function and are deleted with it.
enum class ResourceKind { kAlias, kProvisionedConcurrency, kEventInvokeConfig, kFunctionUrl };

struct ResourceRow {
  std::string function;
  ResourceKind kind = ResourceKind::kAlias;
  std::string key;             // alias name, qualifier, ...
  std::string document;        // JSON, owned by the registry
  std::string revision_id;     // optimistic lock
};

struct UsageTotals {
  std::int64_t function_count = 0;
  std::int64_t total_code_size = 0;
};

// One HTTP gateway route as stored: the gateway's document under its key.
struct RouteRow {
  std::string route_key;   // "GET /pets/{id}", "$default"
  std::string document;    // JSON, owned by the gateway
  std::int64_t updated_ms = 0;
};

// One asynchronous invocation (or destination delivery) as stored: the
// columns the dispatcher claims and lists by, and the events part's document.
struct AsyncInvocationRow {
  std::int64_t seq = 0;            // assigned on insert; list order
  std::string id;                  // request id (uuid), unique
  std::string function;
  std::string qualifier;           // as invoked; resolved again per attempt
  std::string payload;             // the event, JSON text
  std::string state;               // pending | running | succeeded | failed
  std::int64_t attempts = 0;       // invocations made so far
  std::int64_t next_attempt_ms = 0;
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
  std::string last_error;
  std::string document;            // JSON, owned by the events part
};

// What one group commit writes: new rows and rewritten rows, all or nothing.
struct AsyncWriteBatch {
  std::vector<AsyncInvocationRow> inserts;
  std::vector<AsyncInvocationRow> updates;  // matched by id; every mutable column replaced
};

// One schedule (events part): what fires, when it fires next, when it last did.
struct ScheduleRow {
  std::string name;
  std::string expression;         // rate(...), cron(...), at(...)
  std::string timezone = "UTC";   // IANA name
  std::string function;
  std::string qualifier;          // "" = $LATEST
  std::optional<std::string> input;  // fixed JSON payload; none: the Scheduled Event
  bool enabled = true;
  std::int64_t created_ms = 0;
  std::int64_t next_fire_ms = -1;  // -1: never again
  std::int64_t last_fire_ms = -1;  // -1: not yet
};

class Store {
 public:
  virtual ~Store() = default;

  // kResourceConflict when a function of that name exists.
  [[nodiscard]] virtual base::Status insert_function(const FunctionRow& row) = 0;
  // kResourceNotFound when absent.
  [[nodiscard]] virtual base::Result<FunctionRow> get_function(std::string_view name) = 0;
  // Up to `limit` rows with name > `after`, in name order.
  [[nodiscard]] virtual base::Result<std::vector<FunctionRow>> list_functions(std::string_view after,
                                                                              std::size_t limit) = 0;
  // Replaces the row only if its stored revision is `expected_revision`:
  // kPreconditionFailed when it moved on, kResourceNotFound when it is gone.
  [[nodiscard]] virtual base::Status update_function(const FunctionRow& row,
                                                     std::string_view expected_revision) = 0;
  // kResourceNotFound when absent.
  [[nodiscard]] virtual base::Status delete_function(std::string_view name) = 0;
  // Replaces the function row (compare-and-swap on `expected_revision`, as
  // update_function) and inserts `version`, in one transaction.
  // kResourceConflict when that version number exists.
  [[nodiscard]] virtual base::Status publish_version(const FunctionRow& function,
                                                     std::string_view expected_revision,
                                                     const VersionRow& version) = 0;
  // kResourceNotFound when absent.
  [[nodiscard]] virtual base::Result<VersionRow> get_version(std::string_view function,
                                                             std::int64_t version) = 0;
  // Up to `limit` versions numbered above `after`, ascending.
  [[nodiscard]] virtual base::Result<std::vector<VersionRow>> list_versions(std::string_view function,
                                                                            std::int64_t after,
                                                                            std::size_t limit) = 0;
  // kResourceNotFound when absent.
  [[nodiscard]] virtual base::Status delete_version(std::string_view function, std::int64_t version) = 0;

  // kResourceConflict when (function, kind, key) exists; kResourceNotFound
  // when the function does not.
  [[nodiscard]] virtual base::Status insert_resource(const ResourceRow& row) = 0;
  // Inserts or replaces; kResourceNotFound when the function does not exist.
  [[nodiscard]] virtual base::Status put_resource(const ResourceRow& row) = 0;
  // kResourceNotFound when absent.
  [[nodiscard]] virtual base::Result<ResourceRow> get_resource(ResourceKind kind, std::string_view function,
                                                               std::string_view key) = 0;
  // Up to `limit` rows of one function with key > `after`, in key order.
  [[nodiscard]] virtual base::Result<std::vector<ResourceRow>> list_resources(ResourceKind kind,
                                                                              std::string_view function,
                                                                              std::string_view after,
                                                                              std::size_t limit) = 0;
  // Every row of a kind, across functions (loaded once at start).
  [[nodiscard]] virtual base::Result<std::vector<ResourceRow>> all_resources(ResourceKind kind) = 0;
  // Replaces the row only if its revision is `expected_revision`:
  // kPreconditionFailed when it moved on, kResourceNotFound when it is gone.
  [[nodiscard]] virtual base::Status update_resource(const ResourceRow& row,
                                                     std::string_view expected_revision) = 0;
  // kResourceNotFound when absent.
  [[nodiscard]] virtual base::Status delete_resource(ResourceKind kind, std::string_view function,
                                                     std::string_view key) = 0;

  // Whether any function or version still refers to the code blob `code_sha256`.
  [[nodiscard]] virtual base::Result<bool> code_in_use(std::string_view code_sha256) = 0;
  [[nodiscard]] virtual base::Result<UsageTotals> usage() = 0;

  // Gateway routes. put_route inserts or replaces the row of its key.
  [[nodiscard]] virtual base::Status put_route(const RouteRow& row) = 0;
  // Every route, in key order.
  [[nodiscard]] virtual base::Result<std::vector<RouteRow>> list_routes() = 0;
  // kResourceNotFound when absent.
  [[nodiscard]] virtual base::Status delete_route(std::string_view route_key) = 0;
  // Gateway settings documents by name ("cors"); an empty document deletes.
  // get returns an empty string when the setting is absent.
  [[nodiscard]] virtual base::Status put_gateway_setting(std::string_view name, std::string_view document) = 0;
  [[nodiscard]] virtual base::Result<std::string> get_gateway_setting(std::string_view name) = 0;

  // Asynchronous invocations (the events part). write_async commits the
  // whole batch in one transaction or nothing (the error says why).
  [[nodiscard]] virtual base::Status write_async(const AsyncWriteBatch& batch) = 0;
  // Marks up to `limit` pending rows due at `now_ms` running (oldest due
  // first) and returns them, in one transaction.
  [[nodiscard]] virtual base::Result<std::vector<AsyncInvocationRow>> claim_async(std::int64_t now_ms,
                                                                                  std::size_t limit) = 0;
  // Puts every running row back to pending (after a restart: at least once).
  [[nodiscard]] virtual base::Result<std::int64_t> requeue_running_async() = 0;
  // kResourceNotFound when absent.
  [[nodiscard]] virtual base::Result<AsyncInvocationRow> get_async(std::string_view id) = 0;
  // Newest first: up to `limit` rows with seq < `before` (0: from the newest),
  // filtered by function and state when those are not empty.
  [[nodiscard]] virtual base::Result<std::vector<AsyncInvocationRow>> list_async(std::string_view function,
                                                                                 std::string_view state,
                                                                                 std::int64_t before,
                                                                                 std::size_t limit) = 0;
  // Rows per state ("pending" -> 3, ...).
  [[nodiscard]] virtual base::Result<std::vector<std::pair<std::string, std::int64_t>>> count_async() = 0;
  // Deletes up to `limit` ended rows, oldest first: succeeded ones whose
  // last update is before `succeeded_before_ms`, then failed ones before
  // `failed_before_ms`. Returns how many went.
  [[nodiscard]] virtual base::Result<std::int64_t> prune_async(std::int64_t succeeded_before_ms,
                                                               std::int64_t failed_before_ms, std::size_t limit) = 0;
  // Schedules. kResourceConflict when one of that name exists.
  [[nodiscard]] virtual base::Status insert_schedule(const ScheduleRow& row) = 0;
  // Replaces the row; kResourceNotFound when absent.
  [[nodiscard]] virtual base::Status update_schedule(const ScheduleRow& row) = 0;
  // kResourceNotFound when absent.
  [[nodiscard]] virtual base::Result<ScheduleRow> get_schedule(std::string_view name) = 0;
  // Every schedule, in name order.
  [[nodiscard]] virtual base::Result<std::vector<ScheduleRow>> list_schedules() = 0;
  // kResourceNotFound when absent.
  [[nodiscard]] virtual base::Status delete_schedule(std::string_view name) = 0;
};

}  // namespace nimbus::store
