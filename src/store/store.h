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
#include <string>
#include <string_view>
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
  // Whether any function still refers to the code blob `code_sha256`.
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
};

}  // namespace nimbus::store
