#pragma once
// QueueService: SQS-compatible queues (standard and FIFO) — the semantics
// behind both wire protocols in api/: queues and their attributes, send with
// delay and deduplication, receive with long polling and visibility timeouts,
// receipt handles that cannot be forged, redrive to a dead-letter queue,
// FIFO order per message group.
//
// The working set lives in memory under one mutex; every change is written
// through GroupCommit to the QueueStore and is durable before the awaitable
// completes, so an acknowledged send survives kill -9. start() loads what the
// store holds; in-flight messages keep their stored visibility deadline.
//
// Threads: every method may be called from any thread; the coroutines resume
// on the caller's executor. The lock is never held across co_await. Owned by
// the daemon; the store and the clock outlive it.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "base/clock.h"
#include "base/result.h"
#include "events/queue_attributes.h"
#include "events/queue_group_commit.h"
#include "events/message_sink.h"
#include "events/queue_message.h"
#include "events/queue_store.h"

namespace nimbus::events {

namespace asio = boost::asio;

struct QueueServiceConfig {
  std::string region = "us-east-1";
  std::string account_id = "000000000000";
  std::int64_t dedup_window_ms = 5 * 60 * 1000;
};

// Limits SQS sets on requests.
inline constexpr std::size_t kMaxBatchEntries = 10;
inline constexpr std::size_t kMaxBatchBytes = 262144;
inline constexpr int kMaxReceiveMessages = 10;
inline constexpr std::int64_t kMaxWaitSeconds = 20;
inline constexpr std::int64_t kMaxVisibilitySeconds = 43200;

struct SendRequest {
  std::string body;
  std::optional<std::int64_t> delay_s;  // queue default when absent
  MessageAttributeMap attributes;
  std::string group_id;                 // FIFO
  std::string dedup_id;                 // FIFO
};

struct SendResult {
  std::string message_id;
  std::string md5_of_body;
  std::string md5_of_attributes;        // empty without attributes
  std::string sequence_number;          // FIFO only
};

struct ReceiveRequest {
  int max_messages = 1;                       // 1..10
  std::optional<std::int64_t> wait_s;         // queue's ReceiveMessageWaitTimeSeconds when absent
  std::optional<std::int64_t> visibility_s;   // queue's VisibilityTimeout when absent
  // false: answer before the receive (count, visibility) is durable. At
  // least once still holds — after a crash the messages are visible again —
  // and it saves an fsync on the way to the function (event source mappings).
  bool await_commit = true;
  // true: standard queues also hand out messages whose send is still being
  // committed, and a send wakes this receive as soon as its write is queued,
  // before the fsync. Nothing acknowledged can be lost that way (the sender's
  // answer still waits for the commit), but a message whose commit then fails,
  // or that a crash takes before its commit, may have been delivered once
  // although its sender was told it was not sent: a duplicate if the sender
  // retries, as at-least-once allows. Event source mappings take them: it
  // saves the send's fsync on the way to the function.
  bool take_uncommitted = false;
};

struct ReceivedMessage {
  std::string message_id;
  std::string receipt_handle;
  std::string body;
  std::string md5_of_body;
  MessageAttributeMap attributes;
  // Every system attribute SQS knows for this message (SentTimestamp,
  // ApproximateReceiveCount, ...); the API returns the ones asked for.
  std::map<std::string, std::string> system_attributes;
};

struct VisibilityChange {
  std::string receipt_handle;
  std::int64_t timeout_s = 0;
};

class QueueService {
 public:
  QueueService(QueueStore& store, const base::Clock& clock, QueueServiceConfig config);
  ~QueueService();
  QueueService(const QueueService&) = delete;
  QueueService& operator=(const QueueService&) = delete;

  // Loads the store and starts the commit writer.
  [[nodiscard]] base::Status start();
  // Ends every long poll now (they answer with what they have) and every
  // later one at once, so the listener drains quickly on shutdown.
  void release_waiters();
  // Commits what is pending and stops the writer; later changes fail.
  void stop();

  // arn:aws:sqs:<region>:<account>:<name>
  [[nodiscard]] std::string queue_arn(std::string_view name) const;
  // The queue name an ARN of this region and account names, or kQueueDoesNotExist.
  [[nodiscard]] base::Result<std::string> name_from_arn(std::string_view arn) const;
  [[nodiscard]] const QueueServiceConfig& config() const { return config_; }

  // CreateQueue: idempotent with the same attribute values, kQueueAlreadyExists otherwise.
  asio::awaitable<base::Status> create_queue(std::string name, AttributeMap attributes);
  asio::awaitable<base::Status> delete_queue(std::string name);
  [[nodiscard]] base::Status queue_exists(std::string_view name) const;
  // Names in order; `after` is the last name of the previous page.
  [[nodiscard]] std::vector<std::string> list_queues(std::string_view prefix, std::string_view after,
                                                     std::size_t max) const;
  // `names` may hold "All". Unknown names: kInvalidAttributeName.
  [[nodiscard]] base::Result<AttributeMap> get_attributes(std::string_view name,
                                                          const std::vector<std::string>& names) const;
  asio::awaitable<base::Status> set_attributes(std::string name, AttributeMap attributes);
  asio::awaitable<base::Status> purge(std::string name);

  // One result per request, committed in one group; the queue-level error
  // (unknown queue) fails the whole call.
  asio::awaitable<base::Result<std::vector<base::Result<SendResult>>>> send(std::string name,
                                                                            std::vector<SendRequest> requests);
  asio::awaitable<base::Result<std::vector<ReceivedMessage>>> receive(std::string name, ReceiveRequest request);
  // One status per handle (deleting a message that is gone succeeds).
  asio::awaitable<base::Result<std::vector<base::Status>>> delete_messages(std::string name,
                                                                           std::vector<std::string> handles);
  asio::awaitable<base::Result<std::vector<base::Status>>> change_visibility(std::string name,
                                                                             std::vector<VisibilityChange> changes);

  // Sends one message to the queue an ARN names (destinations and dead-letter
  // targets of async invokes). Blocks until committed: call it from a thread
  // that may block, never from an io thread.
  [[nodiscard]] base::Result<SendResult> send_to_arn_blocking(std::string_view arn, std::string body,
                                                              MessageAttributeMap attributes = {});

  // Event source mappings are stored with the queues, as documents their
  // service owns: what the store held at start(), and durable writes.
  [[nodiscard]] std::vector<MappingRow> stored_mappings() const;
  asio::awaitable<base::Status> put_mapping(MappingRow row);
  asio::awaitable<base::Status> drop_mapping(std::string uuid);

  // Commit groups written and requests they carried (benches, metrics).
  [[nodiscard]] std::uint64_t commit_transactions() const { return commit_.transactions(); }
  [[nodiscard]] std::uint64_t commit_requests() const { return commit_.requests(); }

 private:
  struct Queue;
  struct Message;
  struct Waiter;
  struct PreparedSend;
  struct Claim;

  // `queued` runs once the writer has the operations, before they are committed.
  asio::awaitable<base::Status> commit(std::vector<QueueOp> ops, std::function<void()> queued = {});
  asio::awaitable<void> wait_for_messages(std::string name, std::int64_t until_ms, bool takes_uncommitted);
  void wake(Queue& q, std::vector<std::shared_ptr<Waiter>>& out);
  // Once a send's write is queued: its messages become visible to the
  // receivers that take uncommitted ones, and those waiting are woken.
  void offer_uncommitted(const std::string& name, const std::vector<std::uint64_t>& seqs);
  static void fire(std::vector<std::shared_ptr<Waiter>>& waiters);

  // The synchronous halves (under mu_), shared by the coroutines and the blocking path.
  base::Result<PreparedSend> prepare_send(const std::string& name, std::vector<SendRequest>& requests);
  void finish_send(const std::string& name, const PreparedSend& prepared, const base::Status& committed);
  base::Result<Claim> claim(const std::string& name, const ReceiveRequest& request);
  void index(Queue& q, Message& m);
  void unindex(Queue& q, const Message& m);
  std::string receipt_handle(const std::string& queue, const Message& m) const;
  struct HandleParts {
    std::string queue;
    std::string id;
    std::int64_t receive_count = 0;
  };
  base::Result<HandleParts> parse_handle(std::string_view handle) const;
  Queue* find(std::string_view name) const;
  base::Status check_redrive_target(const AttributeMap& attributes, bool fifo) const;

  QueueStore& store_;
  const base::Clock& clock_;
  QueueServiceConfig config_;
  GroupCommit commit_;
  std::string secret_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Queue>, std::less<>> queues_;
  std::uint64_t next_seq_ = 1;
  bool releasing_ = false;  // guarded by mu_
  std::vector<MappingRow> stored_mappings_;  // guarded by mu_; as loaded
};

// MessageSink over the queues: how async invokes reach queue destinations
// and dead-letter queues (a missing queue is kResourceNotFound). send()
// blocks until the message is committed; the writer is its own thread, so
// io threads may call it. Owned by the daemon; the service outlives it.
class QueueMessageSink final : public MessageSink {
 public:
  explicit QueueMessageSink(QueueService& queues) : queues_(queues) {}
  [[nodiscard]] base::Status send(std::string_view queue_arn, std::string_view body,
                                  const MessageAttributes& attributes) override;

 private:
  QueueService& queues_;
};

}  // namespace nimbus::events
