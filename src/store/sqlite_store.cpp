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
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sqlite3_step(stmt_); }
  [[nodiscard]] std::string text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))) : std::string();
  }
  [[nodiscard]] std::int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }

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

base::Result<bool> SqliteStore::code_in_use(std::string_view code_sha256) {
  std::lock_guard lock(mu_);
  Statement st(db_, "SELECT 1 FROM functions WHERE code_sha256 = ?1 LIMIT 1");
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

base::Result<std::vector<RouteRow>> SqliteStore::list_routes() {
  std::lock_guard lock(mu_);
  Statement st(db_, "SELECT route_key, document, updated_ms FROM gateway_routes ORDER BY route_key");
  if (!st.prepared()) return sqlite_error("prepare list routes");
  std::vector<RouteRow> rows;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) rows.push_back(RouteRow{st.text(0), st.text(1), st.int64(2)});
  if (rc != SQLITE_DONE) return sqlite_error("list routes");
  return rows;
}

base::Status SqliteStore::delete_route(std::string_view route_key) {
  std::lock_guard lock(mu_);
  Statement st(db_, "DELETE FROM gateway_routes WHERE route_key = ?1");
  if (!st.prepared()) return sqlite_error("prepare delete route");
  st.bind(1, route_key);
  if (st.step() != SQLITE_DONE) return sqlite_error("delete route");
  if (sqlite3_changes(db_) == 0) {
    return make_error(ErrorCode::kResourceNotFound, "Route not found: " + std::string(route_key));
  }
  return base::Ok{};
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

}  // namespace nimbus::store
