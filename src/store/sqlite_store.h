#pragma once
// SqliteStore: the embedded Store. One SQLite database in WAL mode
// (<data-dir>/nimbus.db), schema brought up to date by numbered migrations at
// open(), synchronous=FULL so a committed write survives a crash.
// Threads: one connection, serialised by a mutex; safe from any thread.

#include <filesystem>
#include <mutex>

#include "store/store.h"

struct sqlite3;

namespace nimbus::store {

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(std::filesystem::path db_path);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // Opens (creating if needed) and migrates. Errors name the path.
  [[nodiscard]] base::Status open();
  void close();
  // Schema version after open() (number of migrations applied).
  [[nodiscard]] int schema_version();

  base::Status insert_function(const FunctionRow& row) override;
  base::Result<FunctionRow> get_function(std::string_view name) override;
  base::Result<std::vector<FunctionRow>> list_functions(std::string_view after,
                                                        std::size_t limit) override;
  base::Status update_function(const FunctionRow& row, std::string_view expected_revision) override;
  base::Status delete_function(std::string_view name) override;
  base::Status publish_version(const FunctionRow& function, std::string_view expected_revision,
                              const VersionRow& version) override;
  base::Result<VersionRow> get_version(std::string_view function, std::int64_t version) override;
  base::Result<std::vector<VersionRow>> list_versions(std::string_view function, std::int64_t after,
                                                      std::size_t limit) override;
  base::Status delete_version(std::string_view function, std::int64_t version) override;
  base::Status insert_resource(const ResourceRow& row) override;
  base::Status put_resource(const ResourceRow& row) override;
  base::Result<ResourceRow> get_resource(ResourceKind kind, std::string_view function,
                                         std::string_view key) override;
  base::Result<std::vector<ResourceRow>> list_resources(ResourceKind kind, std::string_view function,
                                                        std::string_view after, std::size_t limit) override;
  base::Result<std::vector<ResourceRow>> all_resources(ResourceKind kind) override;
  base::Status update_resource(const ResourceRow& row, std::string_view expected_revision) override;
  base::Status delete_resource(ResourceKind kind, std::string_view function, std::string_view key) override;
  base::Result<bool> code_in_use(std::string_view code_sha256) override;
  base::Result<UsageTotals> usage() override;
  base::Status put_route(const RouteRow& row) override;
  base::Result<std::vector<RouteRow>> list_routes() override;
  base::Status delete_route(std::string_view route_key) override;
  base::Status put_gateway_setting(std::string_view name, std::string_view document) override;
  base::Result<std::string> get_gateway_setting(std::string_view name) override;
  base::Status write_async(const AsyncWriteBatch& batch) override;
  base::Result<std::vector<AsyncInvocationRow>> claim_async(std::int64_t now_ms, std::size_t limit) override;
  base::Result<std::int64_t> requeue_running_async() override;
  base::Result<AsyncInvocationRow> get_async(std::string_view id) override;
  base::Result<std::vector<AsyncInvocationRow>> list_async(std::string_view function, std::string_view state,
                                                           std::int64_t before, std::size_t limit) override;
  base::Result<std::vector<std::pair<std::string, std::int64_t>>> count_async() override;
  base::Result<std::int64_t> prune_async(std::int64_t succeeded_before_ms, std::int64_t failed_before_ms,
                                         std::size_t limit) override;
  base::Status insert_schedule(const ScheduleRow& row) override;
  base::Status update_schedule(const ScheduleRow& row) override;
  base::Result<ScheduleRow> get_schedule(std::string_view name) override;
  base::Result<std::vector<ScheduleRow>> list_schedules() override;
  base::Status delete_schedule(std::string_view name) override;

 private:
  class Statement;
  base::Status migrate();
  // update_function's body; the caller holds mu_.
  base::Status update_function_locked(const FunctionRow& row, std::string_view expected_revision);
  enum class ResourceWrite { kInsert, kReplace };
  base::Status write_resource_locked(const ResourceRow& row, ResourceWrite mode);
  base::Status write_async_locked(const AsyncWriteBatch& batch);
  base::Status write_schedule(const ScheduleRow& row, bool replace);
  // Every row `sql` selects, each made by `read(statement)`.
  template <typename Row, typename Read>
  base::Result<std::vector<Row>> select_all(const std::string& sql, std::string_view what, Read read);
  // Deletes the row whose key (?1) is `key`; kResourceNotFound "<what> not found: <key>" when none.
  base::Status delete_one(const char* sql, std::string_view key, std::string_view what);
  base::Status exec(const char* sql);
  base::Error sqlite_error(std::string_view what) const;

  std::filesystem::path path_;
  std::mutex mu_;
  sqlite3* db_ = nullptr;  // GUARDED_BY(mu_)
};

}  // namespace nimbus::store
