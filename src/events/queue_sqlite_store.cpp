#include "events/queue_sqlite_store.h"

#include <sqlite3.h>

#include <array>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/crypto.h"

namespace nimbus::events {

using base::ErrorCode;
using base::make_error;

namespace {

// Schema of queues.db; PRAGMA user_version = entries applied.
constexpr std::array<const char*, 2> kMigrations = {
    R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE queues(name TEXT PRIMARY KEY, attributes TEXT NOT NULL,
                    created_ms INTEGER NOT NULL, modified_ms INTEGER NOT NULL);
CREATE TABLE messages(queue TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL,
                      body BLOB NOT NULL, attributes TEXT NOT NULL, sent_ms INTEGER NOT NULL,
                      visible_at_ms INTEGER NOT NULL, receive_count INTEGER NOT NULL,
                      first_receive_ms INTEGER NOT NULL, group_id TEXT NOT NULL,
                      dedup_id TEXT NOT NULL, source_arn TEXT NOT NULL,
                      PRIMARY KEY(queue, id)) WITHOUT ROWID;
CREATE TABLE dedup(queue TEXT NOT NULL, dedup_id TEXT NOT NULL, message_id TEXT NOT NULL,
                   seq INTEGER NOT NULL, expires_ms INTEGER NOT NULL,
                   PRIMARY KEY(queue, dedup_id)) WITHOUT ROWID;
)sql",
    R"sql(
CREATE TABLE event_source_mappings(uuid TEXT PRIMARY KEY, document TEXT NOT NULL) WITHOUT ROWID;
)sql",
};

class Stmt {
 public:
  Stmt() = default;
  base::Status prepare(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) != SQLITE_OK) {
      return make_error(ErrorCode::kService, fmt::format("queue store: prepare: {}", sqlite3_errmsg(db)));
    }
    return base::Ok{};
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt& bind(int i, std::string_view text) {
    sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& blob(int i, std::string_view bytes) {
    sqlite3_bind_blob(stmt_, i, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  // Runs a statement that returns no rows; SQLITE_DONE or the error code.
  int run() {
    const int rc = sqlite3_step(stmt_);
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    return rc;
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

std::string column_text(sqlite3_stmt* st, int col) {
  const auto* p = static_cast<const char*>(sqlite3_column_blob(st, col));
  return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(st, col))) : std::string();
}

}  // namespace

class SqliteQueueStore::Statements {
 public:
  Stmt put_queue, drop_queue, drop_queue_messages, drop_queue_dedup, purge, insert, update, remove, move,
      put_dedup, expire_dedup, put_mapping, drop_mapping;
  base::Status prepare(sqlite3* db) {
    NIMBUS_TRY(put_queue.prepare(db, "INSERT OR REPLACE INTO queues VALUES(?1,?2,?3,?4)"));
    NIMBUS_TRY(drop_queue.prepare(db, "DELETE FROM queues WHERE name=?1"));
    NIMBUS_TRY(drop_queue_messages.prepare(db, "DELETE FROM messages WHERE queue=?1"));
    NIMBUS_TRY(drop_queue_dedup.prepare(db, "DELETE FROM dedup WHERE queue=?1"));
    NIMBUS_TRY(purge.prepare(db, "DELETE FROM messages WHERE queue=?1"));
    NIMBUS_TRY(insert.prepare(db, "INSERT OR REPLACE INTO messages VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)"));
    NIMBUS_TRY(update.prepare(db,
                              "UPDATE messages SET visible_at_ms=?3, receive_count=?4, first_receive_ms=?5 "
                              "WHERE queue=?1 AND id=?2"));
    NIMBUS_TRY(remove.prepare(db, "DELETE FROM messages WHERE queue=?1 AND id=?2"));
    NIMBUS_TRY(move.prepare(db, "DELETE FROM messages WHERE queue=?1 AND id=?2"));
    NIMBUS_TRY(put_dedup.prepare(db, "INSERT OR REPLACE INTO dedup VALUES(?1,?2,?3,?4,?5)"));
    NIMBUS_TRY(expire_dedup.prepare(db, "DELETE FROM dedup WHERE expires_ms < ?1"));
    NIMBUS_TRY(put_mapping.prepare(db, "INSERT OR REPLACE INTO event_source_mappings VALUES(?1,?2)"));
    NIMBUS_TRY(drop_mapping.prepare(db, "DELETE FROM event_source_mappings WHERE uuid=?1"));
    return base::Ok{};
  }
};

SqliteQueueStore::SqliteQueueStore(std::filesystem::path db_path) : path_(std::move(db_path)) {}

SqliteQueueStore::~SqliteQueueStore() { close(); }

base::Error SqliteQueueStore::error(std::string_view what) const {
  return make_error(ErrorCode::kService, fmt::format("queue store {}: {} ({})", path_.string(), what,
                                                     db_ ? sqlite3_errmsg(db_) : "not open"));
}

base::Status SqliteQueueStore::exec(const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string text = msg ? msg : "unknown error";
    sqlite3_free(msg);
    return make_error(ErrorCode::kService, fmt::format("queue store {}: {}", path_.string(), text));
  }
  return base::Ok{};
}

base::Status SqliteQueueStore::open() {
  if (db_) return base::Ok{};
  if (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    base::Error e = error("open");
    close();
    return e;
  }
  sqlite3_busy_timeout(db_, 5000);
  // Only this daemon opens queues.db: an exclusive lock keeps the WAL index
  // in memory and saves the shared-memory lock calls of every transaction
  // (a second daemon on the same data directory fails here, as it should).
  NIMBUS_TRY(exec("PRAGMA locking_mode=EXCLUSIVE"));
  NIMBUS_TRY(exec("PRAGMA journal_mode=WAL"));
  NIMBUS_TRY(exec("PRAGMA synchronous=FULL"));
  int version = 0;
  {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db_, "PRAGMA user_version", -1, &st, nullptr);
    if (sqlite3_step(st) == SQLITE_ROW) version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
  }
  if (version > static_cast<int>(kMigrations.size())) {
    return make_error(ErrorCode::kService,
                      fmt::format("queue store {}: schema version {} is newer than this nimbus ({}); upgrade nimbus",
                                  path_.string(), version, kMigrations.size()));
  }
  for (int v = version; v < static_cast<int>(kMigrations.size()); ++v) {
    NIMBUS_TRY(exec("BEGIN IMMEDIATE"));
    auto step = exec(kMigrations[static_cast<std::size_t>(v)]);
    if (step.ok()) step = exec(fmt::format("PRAGMA user_version={}", v + 1).c_str());
    if (!step.ok()) {
      (void)exec("ROLLBACK");
      return step;
    }
    NIMBUS_TRY(exec("COMMIT"));
  }
  statements_ = new Statements();
  return statements_->prepare(db_);
}

void SqliteQueueStore::close() {
  delete statements_;
  statements_ = nullptr;
  if (db_) {
    sqlite3_close(db_);
    db_ = nullptr;
  }
}

base::Result<QueueSnapshot> SqliteQueueStore::load() {
  if (!db_) return error("load");
  QueueSnapshot snap;
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_, "SELECT value FROM meta WHERE key='receipt_secret'", -1, &st, nullptr);
  if (sqlite3_step(st) == SQLITE_ROW) snap.secret = column_text(st, 0);
  sqlite3_finalize(st);
  if (snap.secret.empty()) {
    snap.secret = base::to_hex(base::random_bytes(32));
    NIMBUS_TRY(exec(fmt::format("INSERT INTO meta VALUES('receipt_secret','{}')", snap.secret).c_str()));
  }
  sqlite3_prepare_v2(db_, "SELECT name, attributes, created_ms, modified_ms FROM queues", -1, &st, nullptr);
  while (sqlite3_step(st) == SQLITE_ROW) {
    QueueRow q{column_text(st, 0), {}, sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3)};
    const auto attrs = nlohmann::json::parse(column_text(st, 1), nullptr, false);
    if (attrs.is_object()) {
      for (const auto& [k, v] : attrs.items()) {
        if (v.is_string()) q.attributes[k] = v.get<std::string>();
      }
    }
    snap.queues.push_back(std::move(q));
  }
  sqlite3_finalize(st);
  sqlite3_prepare_v2(db_,
                     "SELECT queue, id, seq, body, attributes, sent_ms, visible_at_ms, receive_count, "
                     "first_receive_ms, group_id, dedup_id, source_arn FROM messages ORDER BY seq",
                     -1, &st, nullptr);
  while (sqlite3_step(st) == SQLITE_ROW) {
    MessageRow m;
    m.queue = column_text(st, 0);
    m.id = column_text(st, 1);
    m.seq = static_cast<std::uint64_t>(sqlite3_column_int64(st, 2));
    m.body = column_text(st, 3);
    m.attributes = column_text(st, 4);
    m.sent_ms = sqlite3_column_int64(st, 5);
    m.visible_at_ms = sqlite3_column_int64(st, 6);
    m.receive_count = sqlite3_column_int64(st, 7);
    m.first_receive_ms = sqlite3_column_int64(st, 8);
    m.group_id = column_text(st, 9);
    m.dedup_id = column_text(st, 10);
    m.source_arn = column_text(st, 11);
    snap.messages.push_back(std::move(m));
  }
  sqlite3_finalize(st);
  sqlite3_prepare_v2(db_, "SELECT queue, dedup_id, message_id, seq, expires_ms FROM dedup", -1, &st, nullptr);
  while (sqlite3_step(st) == SQLITE_ROW) {
    snap.dedup.push_back(DedupRow{column_text(st, 0), column_text(st, 1), column_text(st, 2),
                                  static_cast<std::uint64_t>(sqlite3_column_int64(st, 3)),
                                  sqlite3_column_int64(st, 4)});
  }
  sqlite3_finalize(st);
  sqlite3_prepare_v2(db_, "SELECT uuid, document FROM event_source_mappings ORDER BY uuid", -1, &st, nullptr);
  while (sqlite3_step(st) == SQLITE_ROW) snap.mappings.push_back(MappingRow{column_text(st, 0), column_text(st, 1)});
  sqlite3_finalize(st);
  return snap;
}

namespace {
int insert_row(Stmt& st, const MessageRow& m) {
  return st.bind(1, m.queue)
      .bind(2, m.id)
      .bind(3, static_cast<std::int64_t>(m.seq))
      .blob(4, m.body)
      .bind(5, m.attributes)
      .bind(6, m.sent_ms)
      .bind(7, m.visible_at_ms)
      .bind(8, m.receive_count)
      .bind(9, m.first_receive_ms)
      .bind(10, m.group_id)
      .bind(11, m.dedup_id)
      .bind(12, m.source_arn)
      .run();
}
}  // namespace

base::Status SqliteQueueStore::apply_one(const QueueOp& op) {
  Statements& s = *statements_;
  int rc = SQLITE_DONE;
  if (const auto* o = std::get_if<op::PutQueue>(&op)) {
    rc = s.put_queue.bind(1, o->queue.name)
             .bind(2, nlohmann::json(o->queue.attributes).dump())
             .bind(3, o->queue.created_ms)
             .bind(4, o->queue.modified_ms)
             .run();
  } else if (const auto* drop = std::get_if<op::DropQueue>(&op)) {
    rc = s.drop_queue.bind(1, drop->queue).run();
    if (rc == SQLITE_DONE) rc = s.drop_queue_messages.bind(1, drop->queue).run();
    if (rc == SQLITE_DONE) rc = s.drop_queue_dedup.bind(1, drop->queue).run();
  } else if (const auto* purge = std::get_if<op::Purge>(&op)) {
    rc = s.purge.bind(1, purge->queue).run();
  } else if (const auto* ins = std::get_if<op::InsertMessage>(&op)) {
    rc = insert_row(s.insert, ins->message);
  } else if (const auto* up = std::get_if<op::UpdateMessage>(&op)) {
    rc = s.update.bind(1, up->queue)
             .bind(2, up->id)
             .bind(3, up->visible_at_ms)
             .bind(4, up->receive_count)
             .bind(5, up->first_receive_ms)
             .run();
  } else if (const auto* del = std::get_if<op::DeleteMessage>(&op)) {
    rc = s.remove.bind(1, del->queue).bind(2, del->id).run();
  } else if (const auto* mv = std::get_if<op::MoveMessage>(&op)) {
    rc = s.move.bind(1, mv->from).bind(2, mv->message.id).run();
    if (rc == SQLITE_DONE) rc = insert_row(s.insert, mv->message);
  } else if (const auto* dd = std::get_if<op::PutDedup>(&op)) {
    rc = s.put_dedup.bind(1, dd->dedup.queue)
             .bind(2, dd->dedup.dedup_id)
             .bind(3, dd->dedup.message_id)
             .bind(4, static_cast<std::int64_t>(dd->dedup.seq))
             .bind(5, dd->dedup.expires_ms)
             .run();
  } else if (const auto* ex = std::get_if<op::ExpireDedup>(&op)) {
    rc = s.expire_dedup.bind(1, ex->before_ms).run();
  } else if (const auto* pm = std::get_if<op::PutMapping>(&op)) {
    rc = s.put_mapping.bind(1, pm->mapping.uuid).bind(2, pm->mapping.document).run();
  } else if (const auto* dm = std::get_if<op::DropMapping>(&op)) {
    rc = s.drop_mapping.bind(1, dm->uuid).run();
  }
  if (rc != SQLITE_DONE) return error("write");
  return base::Ok{};
}

base::Status SqliteQueueStore::apply(std::span<const QueueOp> ops) {
  if (!db_) return error("apply");
  if (ops.empty()) return base::Ok{};
  NIMBUS_TRY(exec("BEGIN IMMEDIATE"));
  for (const auto& op : ops) {
    if (auto s = apply_one(op); !s.ok()) {
      (void)exec("ROLLBACK");
      return s;
    }
  }
  if (auto s = exec("COMMIT"); !s.ok()) {
    (void)exec("ROLLBACK");
    return s;
  }
  return base::Ok{};
}

}  // namespace nimbus::events
