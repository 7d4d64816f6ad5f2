#include "store/sqlite_store.h"

#include <sqlite3.h>

#include <fmt/format.h>

#include "store/migrations.h"

namespace nimbus::store {

using base::ErrorCode;
using base::make_error;

// RAII prepared statement bound to a connection.
class SqliteStore::Statement {
 public:
  Statement(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  [[nodiscard]] bool prepared() const { return rc_ == SQLITE_OK; }
  void bind(int i, std::string_view text) {
    sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  }
  void bind(int i, std::int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void bind_optional(int i, const std::optional<std::string>& text) {
    if (text) {
      bind(i, std::string_view(*text));
    } else {
      sqlite3_bind_null(stmt_, i);
    }
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sqlite3_step(stmt_); }
  // Ready to run again with new bindings.
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  [[nodiscard]] std::string text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))) : std::string();
  }
  [[nodiscard]] std::int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }

  [[nodiscard]] std::optional<std::string> optional_text(int col) const {
    if (sqlite3_column_type(stmt_, col) == SQLITE_NULL) return std::nullopt;
    return text(col);
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

namespace {
constexpr const char* kSelectColumns =
    "SELECT name, document, revision_id, code_sha256, code_size, created_ms, updated_ms FROM functions";

FunctionRow read_row(const auto& st) {
  return FunctionRow{st.text(0), st.text(1), st.text(2), st.text(3), st.int64(4), st.int64(5),
                     st.int64(6)};
}

constexpr const char* kVersionColumns =
    "SELECT function, version, document, code_sha256, code_size, created_ms FROM versions";

VersionRow read_version(const auto& st) {
  return VersionRow{st.text(0), st.int64(1), st.text(2), st.text(3), st.int64(4), st.int64(5)};
}

constexpr const char* kResourceColumns =
    "SELECT function, key, document, revision_id FROM function_resources";

std::string_view kind_name(ResourceKind kind) {
  switch (kind) {
    case ResourceKind::kAlias:
      return "alias";
    case ResourceKind::kProvisionedConcurrency:
      return "provisioned-concurrency";
    case ResourceKind::kEventInvokeConfig:
      return "event-invoke-config";
    case ResourceKind::kFunctionUrl:
      return "function-url";
  }
  return "unknown";
}

constexpr const char* kAsyncColumns =
    "SELECT seq, id, function, qualifier, payload, state, attempts, next_attempt_ms, created_ms, updated_ms, "
    "last_error, document FROM async_invocations";

AsyncInvocationRow read_async(const auto& st) {
  return AsyncInvocationRow{st.int64(0), st.text(1), st.text(2),  st.text(3),  st.text(4),  st.text(5),
                            st.int64(6), st.int64(7), st.int64(8), st.int64(9), st.text(10), st.text(11)};
}

ResourceRow read_resource(const auto& st, ResourceKind kind) {
  return ResourceRow{st.text(0), kind, st.text(1), st.text(2), st.text(3)};
}
constexpr const char* kScheduleColumns =
    "SELECT name, expression, timezone, function, qualifier, input, enabled, created_ms, next_fire_ms, last_fire_ms "
    "FROM schedules";

ScheduleRow read_schedule(const auto& st) {
  return ScheduleRow{st.text(0),          st.text(1),     st.text(2),     st.text(3),     st.text(4),
                     st.optional_text(5), st.int64(6) != 0, st.int64(7), st.int64(8), st.int64(9)};
}
}  // namespace

SqliteStore::SqliteStore(std::filesystem::path db_path) : path_(std::move(db_path)) {}

SqliteStore::~SqliteStore() { close(); }

base::Error SqliteStore::sqlite_error(std::string_view what) const {
  return make_error(ErrorCode::kService,
                    fmt::format("store {}: {} ({})", path_.string(), what,
                                db_ ? sqlite3_errmsg(db_) : "not open"));
}

base::Status SqliteStore::open() {
  std::lock_guard lock(mu_);
  if (db_) return base::Ok{};
  const int rc = sqlite3_open_v2(path_.c_str(), &db_,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    base::Error e = sqlite_error("open");
    sqlite3_close(db_);
    db_ = nullptr;
    return e;
  }
  sqlite3_busy_timeout(db_, 5000);
  NIMBUS_TRY(exec("PRAGMA journal_mode=WAL"));
  NIMBUS_TRY(exec("PRAGMA synchronous=FULL"));
  NIMBUS_TRY(exec("PRAGMA foreign_keys=ON"));
  return migrate();
}

void SqliteStore::close() {
  std::lock_guard lock(mu_);
  if (db_) {
    sqlite3_close(db_);
    db_ = nullptr;
  }
}

base::Status SqliteStore::exec(const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string text = msg ? msg : "unknown error";
    sqlite3_free(msg);
    return make_error(ErrorCode::kService, fmt::format("store {}: {}", path_.string(), text));
  }
  return base::Ok{};
}

int SqliteStore::schema_version() {
  std::lock_guard lock(mu_);
  Statement st(db_, "PRAGMA user_version");
  return st.step() == SQLITE_ROW ? static_cast<int>(st.int64(0)) : -1;
}

base::Status SqliteStore::migrate() {
  int version = 0;
  {
    Statement st(db_, "PRAGMA user_version");
    if (st.step() != SQLITE_ROW) return sqlite_error("read schema version");
    version = static_cast<int>(st.int64(0));
  }
  if (version > static_cast<int>(kMigrations.size())) {
    return make_error(ErrorCode::kService,
                      fmt::format("store {}: schema version {} is newer than this nimbus ({}); "
                                  "upgrade nimbus",
                                  path_.string(), version, kMigrations.size()));
  }
  for (int v = version; v < static_cast<int>(kMigrations.size()); ++v) {
    NIMBUS_TRY(exec("BEGIN IMMEDIATE"));
    base::Status applied = exec(kMigrations[static_cast<std::size_t>(v)]);
    if (applied.ok()) applied = exec(fmt::format("PRAGMA user_version={}", v + 1).c_str());
    if (!applied.ok()) {
      (void)exec("ROLLBACK");
      return applied;
    }
    NIMBUS_TRY(exec("COMMIT"));
  }
  return base::Ok{};
}

base::Status SqliteStore::insert_function(const FunctionRow& row) {
  std::lock_guard lock(mu_);
  Statement st(db_,
               "INSERT INTO functions (name, document, revision_id, code_sha256, code_size, "
               "created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  if (!st.prepared()) return sqlite_error("prepare insert");
  st.bind(1, row.name);
  st.bind(2, row.document);
  st.bind(3, row.revision_id);
  st.bind(4, row.code_sha256);
  st.bind(5, row.code_size);
  st.bind(6, row.created_ms);
  st.bind(7, row.updated_ms);
  const int rc = st.step();
  if (rc == SQLITE_CONSTRAINT) {
    return make_error(ErrorCode::kResourceConflict, "Function already exist: " + row.name);
  }
  if (rc != SQLITE_DONE) return sqlite_error("insert function");
  return base::Ok{};
}

base::Result<FunctionRow> SqliteStore::get_function(std::string_view name) {
  std::lock_guard lock(mu_);
  Statement st(db_, fmt::format("{} WHERE name = ?1", kSelectColumns).c_str());
  if (!st.prepared()) return sqlite_error("prepare get");
  st.bind(1, name);
  const int rc = st.step();
  if (rc == SQLITE_DONE) {
    return make_error(ErrorCode::kResourceNotFound, "Function not found: " + std::string(name));
  }
  if (rc != SQLITE_ROW) return sqlite_error("get function");
  return read_row(st);
}

base::Result<std::vector<FunctionRow>> SqliteStore::list_functions(std::string_view after,
                                                                   std::size_t limit) {
  std::lock_guard lock(mu_);
  Statement st(db_, fmt::format("{} WHERE name > ?1 ORDER BY name LIMIT ?2", kSelectColumns).c_str());
  if (!st.prepared()) return sqlite_error("prepare list");
  st.bind(1, after);
  st.bind(2, static_cast<std::int64_t>(limit));
  std::vector<FunctionRow> rows;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) rows.push_back(read_row(st));
  if (rc != SQLITE_DONE) return sqlite_error("list functions");
  return rows;
}

base::Status SqliteStore::update_function(const FunctionRow& row, std::string_view expected_revision) {
  std::lock_guard lock(mu_);
  return update_function_locked(row, expected_revision);
}

base::Status SqliteStore::update_function_locked(const FunctionRow& row, std::string_view expected_revision) {
  Statement st(db_,
               "UPDATE functions SET document = ?2, revision_id = ?3, code_sha256 = ?4, "
               "code_size = ?5, updated_ms = ?6 WHERE name = ?1 AND revision_id = ?7");
  if (!st.prepared()) return sqlite_error("prepare update");
  st.bind(1, row.name);
  st.bind(2, row.document);
  st.bind(3, row.revision_id);
  st.bind(4, row.code_sha256);
  st.bind(5, row.code_size);
  st.bind(6, row.updated_ms);
  st.bind(7, expected_revision);
  if (st.step() != SQLITE_DONE) return sqlite_error("update function");
  if (sqlite3_changes(db_) == 1) return base::Ok{};
  // Nothing changed: tell a vanished row from a moved-on revision.
  Statement probe(db_, "SELECT 1 FROM functions WHERE name = ?1");
  probe.bind(1, row.name);
  if (probe.step() == SQLITE_ROW) {
    return make_error(ErrorCode::kPreconditionFailed,
                      "The Revision Id provided does not match the latest Revision Id. Call the "
                      "GetFunction/GetAlias API to retrieve the latest Revision Id");
  }
  return make_error(ErrorCode::kResourceNotFound, "Function not found: " + row.name);
}

base::Status SqliteStore::delete_function(std::string_view name) {
  std::lock_guard lock(mu_);
  Statement st(db_, "DELETE FROM functions WHERE name = ?1");
  if (!st.prepared()) return sqlite_error("prepare delete");
  st.bind(1, name);
  if (st.step() != SQLITE_DONE) return sqlite_error("delete function");
  if (sqlite3_changes(db_) == 0) {
    return make_error(ErrorCode::kResourceNotFound, "Function not found: " + std::string(name));
  }
  return base::Ok{};
}

base::Status SqliteStore::publish_version(const FunctionRow& function, std::string_view expected_revision,
                                          const VersionRow& version) {
  std::lock_guard lock(mu_);
  NIMBUS_TRY(exec("BEGIN IMMEDIATE"));
  auto status = update_function_locked(function, expected_revision);
  if (status.ok()) {
    Statement st(db_,
                 "INSERT INTO versions (function, version, document, code_sha256, code_size, created_ms) "
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    if (!st.prepared()) {
      status = sqlite_error("prepare publish");
    } else {
      st.bind(1, version.function);
      st.bind(2, version.version);
      st.bind(3, version.document);
      st.bind(4, version.code_sha256);
      st.bind(5, version.code_size);
      st.bind(6, version.created_ms);
      const int rc = st.step();
      if (rc == SQLITE_CONSTRAINT) {
        status = make_error(ErrorCode::kResourceConflict,
                            fmt::format("Version {} of {} already exists", version.version, version.function));
      } else if (rc != SQLITE_DONE) {
        status = sqlite_error("insert version");
      }
    }
  }
  if (!status.ok()) {
    (void)exec("ROLLBACK");
    return status;
  }
  return exec("COMMIT");
}

base::Result<VersionRow> SqliteStore::get_version(std::string_view function, std::int64_t version) {
  std::lock_guard lock(mu_);
  Statement st(db_, fmt::format("{} WHERE function = ?1 AND version = ?2", kVersionColumns).c_str());
  if (!st.prepared()) return sqlite_error("prepare get version");
  st.bind(1, function);
  st.bind(2, version);
  const int rc = st.step();
  if (rc == SQLITE_DONE) {
    return make_error(ErrorCode::kResourceNotFound, fmt::format("Version {} of {} not found", version, function));
  }
  if (rc != SQLITE_ROW) return sqlite_error("get version");
  return read_version(st);
}

base::Result<std::vector<VersionRow>> SqliteStore::list_versions(std::string_view function, std::int64_t after,
                                                                 std::size_t limit) {
  std::lock_guard lock(mu_);
  Statement st(db_, fmt::format("{} WHERE function = ?1 AND version > ?2 ORDER BY version LIMIT ?3",
                                kVersionColumns)
                        .c_str());
  if (!st.prepared()) return sqlite_error("prepare list versions");
  st.bind(1, function);
  st.bind(2, after);
  st.bind(3, static_cast<std::int64_t>(limit));
  std::vector<VersionRow> rows;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) rows.push_back(read_version(st));
  if (rc != SQLITE_DONE) return sqlite_error("list versions");
  return rows;
}

base::Status SqliteStore::delete_version(std::string_view function, std::int64_t version) {
  std::lock_guard lock(mu_);
  Statement st(db_, "DELETE FROM versions WHERE function = ?1 AND version = ?2");
  if (!st.prepared()) return sqlite_error("prepare delete version");
  st.bind(1, function);
  st.bind(2, version);
  if (st.step() != SQLITE_DONE) return sqlite_error("delete version");
  if (sqlite3_changes(db_) == 0) {
    return make_error(ErrorCode::kResourceNotFound, fmt::format("Version {} of {} not found", version, function));
  }
  return base::Ok{};
}

base::Status SqliteStore::write_resource_locked(const ResourceRow& row, ResourceWrite mode) {
  Statement st(db_, mode == ResourceWrite::kInsert
                        ? "INSERT INTO function_resources (function, kind, key, document, revision_id) "
                          "VALUES (?1, ?2, ?3, ?4, ?5)"
                        : "INSERT OR REPLACE INTO function_resources (function, kind, key, document, revision_id) "
                          "VALUES (?1, ?2, ?3, ?4, ?5)");
  if (!st.prepared()) return sqlite_error("prepare write resource");
  st.bind(1, row.function);
  st.bind(2, kind_name(row.kind));
  st.bind(3, row.key);
  st.bind(4, row.document);
  st.bind(5, row.revision_id);
  const int rc = st.step();
  if (rc == SQLITE_CONSTRAINT) {
    // Either the key is taken (insert only) or the function is gone (foreign key).
    Statement probe(db_, "SELECT 1 FROM functions WHERE name = ?1");
    probe.bind(1, row.function);
    if (mode == ResourceWrite::kReplace || probe.step() != SQLITE_ROW) {
      return make_error(ErrorCode::kResourceNotFound, "Function not found: " + row.function);
    }
    return make_error(ErrorCode::kResourceConflict,
                      fmt::format("{} {} of {} already exists", kind_name(row.kind), row.key, row.function));
  }
  if (rc != SQLITE_DONE) return sqlite_error("write resource");
  return base::Ok{};
}

base::Status SqliteStore::insert_resource(const ResourceRow& row) {
  std::lock_guard lock(mu_);
  return write_resource_locked(row, ResourceWrite::kInsert);
}

base::Status SqliteStore::put_resource(const ResourceRow& row) {
  std::lock_guard lock(mu_);
  return write_resource_locked(row, ResourceWrite::kReplace);
}

base::Result<ResourceRow> SqliteStore::get_resource(ResourceKind kind, std::string_view function,
                                                    std::string_view key) {
  std::lock_guard lock(mu_);
  Statement st(db_, fmt::format("{} WHERE function = ?1 AND kind = ?2 AND key = ?3", kResourceColumns).c_str());
  if (!st.prepared()) return sqlite_error("prepare get resource");
  st.bind(1, function);
  st.bind(2, kind_name(kind));
  st.bind(3, key);
  const int rc = st.step();
  if (rc == SQLITE_DONE) {
    return make_error(ErrorCode::kResourceNotFound,
                      fmt::format("{} {} of {} not found", kind_name(kind), key, function));
  }
  if (rc != SQLITE_ROW) return sqlite_error("get resource");
  return read_resource(st, kind);
}

base::Result<std::vector<ResourceRow>> SqliteStore::list_resources(ResourceKind kind, std::string_view function,
                                                                   std::string_view after, std::size_t limit) {
  std::lock_guard lock(mu_);
  Statement st(db_, fmt::format("{} WHERE function = ?1 AND kind = ?2 AND key > ?3 ORDER BY key LIMIT ?4",
                                kResourceColumns)
                        .c_str());
  if (!st.prepared()) return sqlite_error("prepare list resources");
  st.bind(1, function);
  st.bind(2, kind_name(kind));
  st.bind(3, after);
  st.bind(4, static_cast<std::int64_t>(limit));
  std::vector<ResourceRow> rows;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) rows.push_back(read_resource(st, kind));
  if (rc != SQLITE_DONE) return sqlite_error("list resources");
  return rows;
}

base::Result<std::vector<ResourceRow>> SqliteStore::all_resources(ResourceKind kind) {
  std::lock_guard lock(mu_);
  Statement st(db_, fmt::format("{} WHERE kind = ?1 ORDER BY function, key", kResourceColumns).c_str());
  if (!st.prepared()) return sqlite_error("prepare all resources");
  st.bind(1, kind_name(kind));
  std::vector<ResourceRow> rows;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) rows.push_back(read_resource(st, kind));
  if (rc != SQLITE_DONE) return sqlite_error("all resources");
  return rows;
}

base::Status SqliteStore::update_resource(const ResourceRow& row, std::string_view expected_revision) {
  std::lock_guard lock(mu_);
  Statement st(db_,
               "UPDATE function_resources SET document = ?4, revision_id = ?5 "
               "WHERE function = ?1 AND kind = ?2 AND key = ?3 AND revision_id = ?6");
  if (!st.prepared()) return sqlite_error("prepare update resource");
  st.bind(1, row.function);
  st.bind(2, kind_name(row.kind));
  st.bind(3, row.key);
  st.bind(4, row.document);
  st.bind(5, row.revision_id);
  st.bind(6, expected_revision);
  if (st.step() != SQLITE_DONE) return sqlite_error("update resource");
  if (sqlite3_changes(db_) == 1) return base::Ok{};
  Statement probe(db_, "SELECT 1 FROM function_resources WHERE function = ?1 AND kind = ?2 AND key = ?3");
  probe.bind(1, row.function);
  probe.bind(2, kind_name(row.kind));
  probe.bind(3, row.key);
  if (probe.step() == SQLITE_ROW) {
    return make_error(ErrorCode::kPreconditionFailed,
                      "The Revision Id provided does not match the latest Revision Id. Call the "
                      "GetFunction/GetAlias API to retrieve the latest Revision Id");
  }
  return make_error(ErrorCode::kResourceNotFound,
                    fmt::format("{} {} of {} not found", kind_name(row.kind), row.key, row.function));
}

base::Status SqliteStore::delete_resource(ResourceKind kind, std::string_view function, std::string_view key) {
  std::lock_guard lock(mu_);
  Statement st(db_, "DELETE FROM function_resources WHERE function = ?1 AND kind = ?2 AND key = ?3");
  if (!st.prepared()) return sqlite_error("prepare delete resource");
  st.bind(1, function);
  st.bind(2, kind_name(kind));
  st.bind(3, key);
  if (st.step() != SQLITE_DONE) return sqlite_error("delete resource");
  if (sqlite3_changes(db_) == 0) {
    return make_error(ErrorCode::kResourceNotFound,
                      fmt::format("{} {} of {} not found", kind_name(kind), key, function));
  }
  return base::Ok{};
}

base::Result<bool> SqliteStore::code_in_use(std::string_view code_sha256) {
  std::lock_guard lock(mu_);
  Statement st(db_,
               "SELECT 1 FROM functions WHERE code_sha256 = ?1 "
               "UNION ALL SELECT 1 FROM versions WHERE code_sha256 = ?1 LIMIT 1");
  if (!st.prepared()) return sqlite_error("prepare code_in_use");
  st.bind(1, code_sha256);
  const int rc = st.step();
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sqlite_error("code_in_use");
  return rc == SQLITE_ROW;
}

base::Result<UsageTotals> SqliteStore::usage() {
  std::lock_guard lock(mu_);
  Statement st(db_, "SELECT count(*), coalesce(sum(code_size), 0) FROM functions");
  if (!st.prepared() || st.step() != SQLITE_ROW) return sqlite_error("usage");
  return UsageTotals{st.int64(0), st.int64(1)};
}

// --- gateway routes and settings ---------------------------------------------

base::Status SqliteStore::put_route(const RouteRow& row) {
  std::lock_guard lock(mu_);
  Statement st(db_,
               "INSERT INTO gateway_routes (route_key, document, updated_ms) VALUES (?1, ?2, ?3) "
               "ON CONFLICT(route_key) DO UPDATE SET document = excluded.document, updated_ms = excluded.updated_ms");
  if (!st.prepared()) return sqlite_error("prepare put route");
  st.bind(1, row.route_key);
  st.bind(2, row.document);
  st.bind(3, row.updated_ms);
  if (st.step() != SQLITE_DONE) return sqlite_error("put route");
  return base::Ok{};
}

template <typename Row, typename Read>
base::Result<std::vector<Row>> SqliteStore::select_all(const std::string& sql, std::string_view what, Read read) {
  std::lock_guard lock(mu_);
  Statement st(db_, sql.c_str());
  if (!st.prepared()) return sqlite_error(fmt::format("prepare {}", what));
  std::vector<Row> rows;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) rows.push_back(read(st));
  if (rc != SQLITE_DONE) return sqlite_error(what);
  return rows;
}

base::Status SqliteStore::delete_one(const char* sql, std::string_view key, std::string_view what) {
  std::lock_guard lock(mu_);
  Statement st(db_, sql);
  if (!st.prepared()) return sqlite_error(fmt::format("prepare delete {}", what));
  st.bind(1, key);
  if (st.step() != SQLITE_DONE) return sqlite_error(fmt::format("delete {}", what));
  if (sqlite3_changes(db_) == 0) return make_error(ErrorCode::kResourceNotFound, fmt::format("{} not found: {}", what, key));
  return base::Ok{};
}

base::Result<std::vector<RouteRow>> SqliteStore::list_routes() {
  return select_all<RouteRow>("SELECT route_key, document, updated_ms FROM gateway_routes ORDER BY route_key",
                              "list routes", [](const Statement& st) {
                                return RouteRow{st.text(0), st.text(1), st.int64(2)};
                              });
}

base::Status SqliteStore::delete_route(std::string_view route_key) {
  return delete_one("DELETE FROM gateway_routes WHERE route_key = ?1", route_key, "Route");
}

base::Status SqliteStore::put_gateway_setting(std::string_view name, std::string_view document) {
  std::lock_guard lock(mu_);
  Statement st(db_, document.empty()
                        ? "DELETE FROM gateway_settings WHERE name = ?1"
                        : "INSERT INTO gateway_settings (name, document) VALUES (?1, ?2) "
                          "ON CONFLICT(name) DO UPDATE SET document = excluded.document");
  if (!st.prepared()) return sqlite_error("prepare put gateway setting");
  st.bind(1, name);
  if (!document.empty()) st.bind(2, document);
  if (st.step() != SQLITE_DONE) return sqlite_error("put gateway setting");
  return base::Ok{};
}

base::Result<std::string> SqliteStore::get_gateway_setting(std::string_view name) {
  std::lock_guard lock(mu_);
  Statement st(db_, "SELECT document FROM gateway_settings WHERE name = ?1");
  if (!st.prepared()) return sqlite_error("prepare get gateway setting");
  st.bind(1, name);
  const int rc = st.step();
  if (rc == SQLITE_DONE) return std::string();
  if (rc != SQLITE_ROW) return sqlite_error("get gateway setting");
  return st.text(0);
}

// --- asynchronous invocations -------------------------------------------------

base::Status SqliteStore::write_async(const AsyncWriteBatch& batch) {
  if (batch.inserts.empty() && batch.updates.empty()) return base::Ok{};
  std::lock_guard lock(mu_);
  NIMBUS_TRY(exec("BEGIN IMMEDIATE"));
  base::Status status = write_async_locked(batch);
  if (status.ok()) status = exec("COMMIT");
  if (!status.ok()) (void)exec("ROLLBACK");
  return status;
}

base::Status SqliteStore::write_async_locked(const AsyncWriteBatch& batch) {
  if (!batch.inserts.empty()) {
    Statement st(db_,
                 "INSERT INTO async_invocations (id, function, qualifier, payload, state, attempts, "
                 "next_attempt_ms, created_ms, updated_ms, last_error, document) "
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
    if (!st.prepared()) return sqlite_error("prepare insert async invocation");
    for (const auto& row : batch.inserts) {
      st.reset();
      st.bind(1, row.id);
      st.bind(2, row.function);
      st.bind(3, row.qualifier);
      st.bind(4, row.payload);
      st.bind(5, row.state);
      st.bind(6, row.attempts);
      st.bind(7, row.next_attempt_ms);
      st.bind(8, row.created_ms);
      st.bind(9, row.updated_ms);
      st.bind(10, row.last_error);
      st.bind(11, row.document);
      const int rc = st.step();
      if (rc == SQLITE_CONSTRAINT) {
        return make_error(ErrorCode::kResourceConflict, "Asynchronous invocation already exists: " + row.id);
      }
      if (rc != SQLITE_DONE) return sqlite_error("insert async invocation");
    }
  }
  if (!batch.updates.empty()) {
    Statement st(db_,
                 "UPDATE async_invocations SET state = ?2, attempts = ?3, next_attempt_ms = ?4, updated_ms = ?5, "
                 "last_error = ?6, document = ?7 WHERE id = ?1");
    if (!st.prepared()) return sqlite_error("prepare update async invocation");
    for (const auto& row : batch.updates) {
      st.reset();
      st.bind(1, row.id);
      st.bind(2, row.state);
      st.bind(3, row.attempts);
      st.bind(4, row.next_attempt_ms);
      st.bind(5, row.updated_ms);
      st.bind(6, row.last_error);
      st.bind(7, row.document);
      if (st.step() != SQLITE_DONE) return sqlite_error("update async invocation");
    }
  }
  return base::Ok{};
}

base::Result<std::vector<AsyncInvocationRow>> SqliteStore::claim_async(std::int64_t now_ms, std::size_t limit) {
  std::lock_guard lock(mu_);
  std::vector<AsyncInvocationRow> rows;
  {
    // A read first: an idle poll finds nothing and writes nothing.
    Statement st(db_, fmt::format("{} WHERE state = 'pending' AND next_attempt_ms <= ?1 "
                                  "ORDER BY next_attempt_ms, seq LIMIT ?2",
                                  kAsyncColumns)
                          .c_str());
    if (!st.prepared()) return sqlite_error("prepare claim async invocations");
    st.bind(1, now_ms);
    st.bind(2, static_cast<std::int64_t>(limit));
    int rc;
    while ((rc = st.step()) == SQLITE_ROW) rows.push_back(read_async(st));
    if (rc != SQLITE_DONE) return sqlite_error("claim async invocations");
  }
  if (rows.empty()) return rows;
  NIMBUS_TRY(exec("BEGIN IMMEDIATE"));
  Statement st(db_, "UPDATE async_invocations SET state = 'running', updated_ms = ?2 WHERE id = ?1");
  base::Status status = st.prepared() ? base::Status(base::Ok{}) : sqlite_error("prepare claim");
  for (auto& row : rows) {
    if (!status.ok()) break;
    st.reset();
    st.bind(1, row.id);
    st.bind(2, now_ms);
    if (st.step() != SQLITE_DONE) status = sqlite_error("claim async invocation");
    row.state = "running";
    row.updated_ms = now_ms;
  }
  if (status.ok()) status = exec("COMMIT");
  if (!status.ok()) {
    (void)exec("ROLLBACK");
    return std::move(status).error();
  }
  return rows;
}

base::Result<std::int64_t> SqliteStore::requeue_running_async() {
  std::lock_guard lock(mu_);
  NIMBUS_TRY(exec("UPDATE async_invocations SET state = 'pending' WHERE state = 'running'"));
  return static_cast<std::int64_t>(sqlite3_changes(db_));
}

base::Result<AsyncInvocationRow> SqliteStore::get_async(std::string_view id) {
  std::lock_guard lock(mu_);
  Statement st(db_, fmt::format("{} WHERE id = ?1", kAsyncColumns).c_str());
  if (!st.prepared()) return sqlite_error("prepare get async invocation");
  st.bind(1, id);
  const int rc = st.step();
  if (rc == SQLITE_DONE) {
    return make_error(ErrorCode::kResourceNotFound, "Asynchronous invocation not found: " + std::string(id));
  }
  if (rc != SQLITE_ROW) return sqlite_error("get async invocation");
  return read_async(st);
}

base::Result<std::vector<AsyncInvocationRow>> SqliteStore::list_async(std::string_view function,
                                                                      std::string_view state, std::int64_t before,
                                                                      std::size_t limit) {
  std::lock_guard lock(mu_);
  Statement st(db_, fmt::format("{} WHERE (?1 = '' OR function = ?1) AND (?2 = '' OR state = ?2) "
                                "AND (?3 = 0 OR seq < ?3) ORDER BY seq DESC LIMIT ?4",
                                kAsyncColumns)
                        .c_str());
  if (!st.prepared()) return sqlite_error("prepare list async invocations");
  st.bind(1, function);
  st.bind(2, state);
  st.bind(3, before);
  st.bind(4, static_cast<std::int64_t>(limit));
  std::vector<AsyncInvocationRow> rows;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) rows.push_back(read_async(st));
  if (rc != SQLITE_DONE) return sqlite_error("list async invocations");
  return rows;
}

base::Result<std::vector<std::pair<std::string, std::int64_t>>> SqliteStore::count_async() {
  std::lock_guard lock(mu_);
  Statement st(db_, "SELECT state, count(*) FROM async_invocations GROUP BY state");
  if (!st.prepared()) return sqlite_error("prepare count async invocations");
  std::vector<std::pair<std::string, std::int64_t>> counts;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) counts.emplace_back(st.text(0), st.int64(1));
  if (rc != SQLITE_DONE) return sqlite_error("count async invocations");
  return counts;
}

base::Result<std::int64_t> SqliteStore::prune_async(std::int64_t succeeded_before_ms, std::int64_t failed_before_ms,
                                                     std::size_t limit) {
  std::lock_guard lock(mu_);
  Statement st(db_,
               "DELETE FROM async_invocations WHERE seq IN (SELECT seq FROM async_invocations "
               "WHERE state = ?1 AND updated_ms < ?2 ORDER BY updated_ms LIMIT ?3)");
  if (!st.prepared()) return sqlite_error("prepare prune async invocations");
  std::int64_t pruned = 0;
  for (const auto& [state, before] : {std::pair{"succeeded", succeeded_before_ms}, {"failed", failed_before_ms}}) {
    if (static_cast<std::size_t>(pruned) >= limit) break;
    st.reset();
    st.bind(1, std::string_view(state));
    st.bind(2, before);
    st.bind(3, static_cast<std::int64_t>(limit) - pruned);
    if (st.step() != SQLITE_DONE) return sqlite_error("prune async invocations");
    pruned += sqlite3_changes(db_);
  }
  return pruned;
}

// --- schedules -------------------------------------------------------------------

base::Status SqliteStore::insert_schedule(const ScheduleRow& row) { return write_schedule(row, false); }

base::Status SqliteStore::update_schedule(const ScheduleRow& row) { return write_schedule(row, true); }

// One writer for both: INSERT (conflict when present) or UPDATE (not found when absent).
base::Status SqliteStore::write_schedule(const ScheduleRow& row, bool replace) {
  std::lock_guard lock(mu_);
  Statement st(db_, replace ? "UPDATE schedules SET expression = ?2, timezone = ?3, function = ?4, qualifier = ?5, "
                              "input = ?6, enabled = ?7, created_ms = ?8, next_fire_ms = ?9, last_fire_ms = ?10 "
                              "WHERE name = ?1"
                            : "INSERT INTO schedules (name, expression, timezone, function, qualifier, input, "
                              "enabled, created_ms, next_fire_ms, last_fire_ms) "
                              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
  if (!st.prepared()) return sqlite_error("prepare write schedule");
  st.bind(1, row.name);
  st.bind(2, row.expression);
  st.bind(3, row.timezone);
  st.bind(4, row.function);
  st.bind(5, row.qualifier);
  st.bind_optional(6, row.input);
  st.bind(7, std::int64_t{row.enabled ? 1 : 0});
  st.bind(8, row.created_ms);
  st.bind(9, row.next_fire_ms);
  st.bind(10, row.last_fire_ms);
  const int rc = st.step();
  if (rc == SQLITE_CONSTRAINT) return make_error(ErrorCode::kResourceConflict, "Schedule already exists: " + row.name);
  if (rc != SQLITE_DONE) return sqlite_error("write schedule");
  if (replace && sqlite3_changes(db_) == 0) {
    return make_error(ErrorCode::kResourceNotFound, "Schedule not found: " + row.name);
  }
  return base::Ok{};
}

base::Result<ScheduleRow> SqliteStore::get_schedule(std::string_view name) {
  std::lock_guard lock(mu_);
  Statement st(db_, fmt::format("{} WHERE name = ?1", kScheduleColumns).c_str());
  if (!st.prepared()) return sqlite_error("prepare get schedule");
  st.bind(1, name);
  const int rc = st.step();
  if (rc == SQLITE_DONE) return make_error(ErrorCode::kResourceNotFound, "Schedule not found: " + std::string(name));
  if (rc != SQLITE_ROW) return sqlite_error("get schedule");
  return read_schedule(st);
}

base::Result<std::vector<ScheduleRow>> SqliteStore::list_schedules() {
  return select_all<ScheduleRow>(fmt::format("{} ORDER BY name", kScheduleColumns), "list schedules",
                                 [](const Statement& st) { return read_schedule(st); });
}

base::Status SqliteStore::delete_schedule(std::string_view name) {
  return delete_one("DELETE FROM schedules WHERE name = ?1", name, "Schedule");
}

}  // namespace nimbus::store
