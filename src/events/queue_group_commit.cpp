#include "events/queue_group_commit.h"

namespace nimbus::events {

GroupCommit::GroupCommit(QueueStore& store) : store_(store) {}

GroupCommit::~GroupCommit() { stop(); }

void GroupCommit::start() {
  std::lock_guard lock(mu_);
  if (running_) return;
  running_ = true;
  stopping_ = false;
  writer_ = std::thread([this] { run(); });
}

void GroupCommit::stop() {
  {
    std::lock_guard lock(mu_);
    if (!running_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  writer_.join();
  std::lock_guard lock(mu_);
  running_ = false;
}

void GroupCommit::submit(std::vector<QueueOp> ops, Completion done) {
  {
    std::lock_guard lock(mu_);
    if (running_ && !stopping_) {
      pending_.push_back(Pending{std::move(ops), std::move(done)});
      cv_.notify_one();
      return;
    }
  }
  done(base::make_error(base::ErrorCode::kService, "queue store: the daemon is shutting down"));
}

std::uint64_t GroupCommit::transactions() const {
  std::lock_guard lock(mu_);
  return transactions_;
}

std::uint64_t GroupCommit::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

void GroupCommit::run() {
  std::vector<Pending> group;
  std::vector<QueueOp> ops;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
      if (pending_.empty()) return;  // stopping, nothing left
      group.swap(pending_);
    }
    ops.clear();
    for (auto& p : group) {
      for (auto& op : p.ops) ops.push_back(std::move(op));
    }
    const base::Status status = store_.apply(ops);
    {
      std::lock_guard lock(mu_);
      ++transactions_;
      requests_ += group.size();
    }
    for (auto& p : group) p.done(status);
    group.clear();
  }
}

}  // namespace nimbus::events
