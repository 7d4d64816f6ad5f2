#pragma once
// QueueStore: the narrow persistence seam of the queues (SQS-compatible).
// QueueService keeps the working set in memory and writes every change
// through this interface before it answers; a store only has to load what it
// holds at start and apply a batch of row operations atomically and durably.
// SqliteQueueStore is the embedded implementation (its own queues.db); a
// PostgreSQL one can follow behind the same two calls.
//
// Threads: load() once at start; apply() from the one group-commit writer
// thread. Implementations need not be re-entrant.

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "base/result.h"

namespace nimbus::events {

// A queue as stored: its name and its attributes as SQS shows them (strings).
struct QueueRow {
  std::string name;
  std::map<std::string, std::string> attributes;
  std::int64_t created_ms = 0;
  std::int64_t modified_ms = 0;
};

// A message as stored. `attributes` is the message attributes as JSON
// ({"name": {"DataType": .., "StringValue"|"BinaryValue"(base64): ..}}).
struct MessageRow {
  std::string queue;
  std::string id;
  std::uint64_t seq = 0;            // arrival order (FIFO SequenceNumber)
  std::string body;
  std::string attributes;
  std::int64_t sent_ms = 0;
  std::int64_t visible_at_ms = 0;   // hidden (delayed or in flight) until then
  std::int64_t receive_count = 0;
  std::int64_t first_receive_ms = 0;
  std::string group_id;             // FIFO
  std::string dedup_id;             // FIFO
  std::string source_arn;           // set when redriven to a dead-letter queue
};

// A FIFO deduplication record, kept for 5 minutes after the first send.
struct DedupRow {
  std::string queue;
  std::string dedup_id;
  std::string message_id;
  std::uint64_t seq = 0;
  std::int64_t expires_ms = 0;
};

// An event source mapping (a queue feeding a function), stored with the
// queues as a document the mapping service owns.
struct MappingRow {
  std::string uuid;
  std::string document;
};

namespace op {
struct PutQueue { QueueRow queue; };                 // insert or replace
struct DropQueue { std::string queue; };             // with its messages
struct Purge { std::string queue; };                 // all messages
struct InsertMessage { MessageRow message; };
struct UpdateMessage {                               // after a receive or visibility change
  std::string queue;
  std::string id;
  std::int64_t visible_at_ms = 0;
  std::int64_t receive_count = 0;
  std::int64_t first_receive_ms = 0;
};
struct DeleteMessage { std::string queue; std::string id; };
struct MoveMessage { std::string from; MessageRow message; };  // redrive: row now in message.queue
struct PutDedup { DedupRow dedup; };
struct ExpireDedup { std::int64_t before_ms = 0; };
struct PutMapping { MappingRow mapping; };           // insert or replace
struct DropMapping { std::string uuid; };
}  // namespace op

using QueueOp = std::variant<op::PutQueue, op::DropQueue, op::Purge, op::InsertMessage, op::UpdateMessage,
                             op::DeleteMessage, op::MoveMessage, op::PutDedup, op::ExpireDedup, op::PutMapping,
                             op::DropMapping>;

// Everything a store holds, read once at start.
struct QueueSnapshot {
  std::string secret;               // signs receipt handles; created on first open
  std::vector<QueueRow> queues;
  std::vector<MessageRow> messages; // in seq order
  std::vector<DedupRow> dedup;
  std::vector<MappingRow> mappings;
};

class QueueStore {
 public:
  virtual ~QueueStore() = default;
  // Reads everything (creating the schema and the secret on first use).
  [[nodiscard]] virtual base::Result<QueueSnapshot> load() = 0;
  // Applies `ops` in order in one transaction; when it returns Ok the change
  // survives a crash of the process or the machine. A full disk fails it.
  [[nodiscard]] virtual base::Status apply(std::span<const QueueOp> ops) = 0;
};

}  // namespace nimbus::events
