// The line of invocations waiting for an instance (InvokerConfig::
// max_parallel_starts): hand-over of freed instances, leave to start,
// callers that gave up. Every function here runs under Invoker::mu_ (the
// *_locked ones) or takes it.
#include <boost/asio/post.hpp>

#include <algorithm>

#include "invoker/detail/instance.h"
#include "invoker/invoker.h"

namespace nimbus::invoker {

void Invoker::wake_locked(const std::shared_ptr<Waiter>& waiter) {
  waiter->woken = true;
  asio::post(waiter->timer.get_executor(), [waiter] { waiter->timer.cancel(); });
}

bool Invoker::hand_off_locked(const Pool& pool, const std::shared_ptr<Instance>& inst) {
  abandon_waiting_locked();
  const auto it = std::find_if(waiters_.begin(), waiters_.end(), [&](const auto& w) {
    return w->pool == &pool && w->revision == inst->revision;
  });
  if (it == waiters_.end()) return false;
  std::shared_ptr<Waiter> waiter = *it;
  waiters_.erase(it);
  inst->state = InstanceState::kBusy;
  waiter->instance = inst;
  if (inst->metrics != nullptr) inst->metrics->handed_over.add();
  wake_locked(waiter);
  return true;
}

void Invoker::grant_starts_locked() {
  abandon_waiting_locked();
  // The newest first: the oldest are next in line for an instance that frees up.
  while (starting_ < max_parallel_starts_ && !waiters_.empty()) {
    std::shared_ptr<Waiter> waiter = waiters_.back();
    waiters_.pop_back();
    waiter->may_start = true;
    ++starting_;
    wake_locked(waiter);
  }
}

void Invoker::abandon_waiting_locked() {
  std::erase_if(waiters_, [](const std::shared_ptr<Waiter>& waiter) {
    if (!waiter->given_up()) return false;
    wake_locked(waiter);  // with neither an instance nor leave to start: it leaves the line
    return true;
  });
}

void Invoker::leave_locked(FunctionState& function, bool reserved) {
  --function.in_flight;
  if (!reserved) --unreserved_in_flight_;
  function.metrics.concurrent.set(function.in_flight);
  if (function.in_flight == 0) {
    function.idle_start = SteadyClock::now();
    function.prewarmed = false;
  }
}

void Invoker::abandon_waiting() {
  std::lock_guard lock(mu_);
  abandon_waiting_locked();
}

}  // namespace nimbus::invoker
