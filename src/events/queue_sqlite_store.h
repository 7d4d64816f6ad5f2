#pragma once
// SqliteQueueStore: QueueStore over its own SQLite file (queues.db in the data
// directory) so queue traffic never contends with the registry's nimbus.db.
// WAL, synchronous=FULL: a transaction that committed is on disk.
//
// Threads: one caller at a time (the group-commit writer after load()).
// Owned by the daemon (or a test) and outlives the QueueService using it.

#include <filesystem>

#include "events/queue_store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace nimbus::events {

class SqliteQueueStore final : public QueueStore {
 public:
  explicit SqliteQueueStore(std::filesystem::path db_path);
  ~SqliteQueueStore() override;
  SqliteQueueStore(const SqliteQueueStore&) = delete;
  SqliteQueueStore& operator=(const SqliteQueueStore&) = delete;

  [[nodiscard]] base::Status open();
  void close();

  [[nodiscard]] base::Result<QueueSnapshot> load() override;
  [[nodiscard]] base::Status apply(std::span<const QueueOp> ops) override;

 private:
  class Statements;
  [[nodiscard]] base::Error error(std::string_view what) const;
  [[nodiscard]] base::Status exec(const char* sql);
  [[nodiscard]] base::Status apply_one(const QueueOp& op);

  std::filesystem::path path_;
  sqlite3* db_ = nullptr;
  Statements* statements_ = nullptr;
};

}  // namespace nimbus::events
