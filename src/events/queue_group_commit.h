#pragma once
// GroupCommit: the one writer of a QueueStore. Callers submit a batch of row
// operations with a completion; the writer thread takes everything that
// arrived while the previous transaction was being synced and commits it as
// one transaction, then completes every caller with the outcome. fsync is paid
// once per group, not once per request.
//
// Threads: submit() from any thread; completions run on the writer thread
// (callers hop back to their own executor). start()/stop() from the owner.
// Owned by QueueService; the store outlives it.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "events/queue_store.h"

namespace nimbus::events {

class GroupCommit {
 public:
  using Completion = std::function<void(const base::Status&)>;

  explicit GroupCommit(QueueStore& store);
  ~GroupCommit();
  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;

  void start();
  // Commits what was submitted, then ends the writer; later submits fail.
  void stop();
  void submit(std::vector<QueueOp> ops, Completion done);

  // Transactions and operations committed so far (for metrics and benches).
  [[nodiscard]] std::uint64_t transactions() const;
  [[nodiscard]] std::uint64_t requests() const;

 private:
  struct Pending {
    std::vector<QueueOp> ops;
    Completion done;
  };
  void run();

  QueueStore& store_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Pending> pending_;
  bool stopping_ = false;
  bool running_ = false;
  std::uint64_t transactions_ = 0;
  std::uint64_t requests_ = 0;
  std::thread writer_;
};

}  // namespace nimbus::events
