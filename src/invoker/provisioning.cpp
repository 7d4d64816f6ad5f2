// Invoker: provisioned concurrency. A reconciler polls the registry's
// provisioned configs and keeps that many initialised instances per version.

#include <boost/asio/co_spawn.hpp>
#include <map>

#include <spdlog/spdlog.h>

#include "invoker/detail/instance.h"
#include "invoker/invoker.h"

namespace nimbus::invoker {

using detail::kUseTuple;
using detail::pool_key;

Invoker::ProvisionedState Invoker::provisioned_state(const registry::FunctionConfig& config) {
  std::lock_guard lock(mu_);
  ProvisionedState out;
  const auto it = pools_.find(pool_key(config.name, config.version));
  if (it == pools_.end()) return out;
  for (const auto& inst : it->second->instances) {
    if (inst->provisioned && (inst->state == InstanceState::kIdle || inst->state == InstanceState::kBusy)) ++out.ready;
  }
  out.failure = it->second->provisioned_failure;
  return out;
}

asio::awaitable<void> Invoker::keep_provisioned() {
  for (;;) {
    provisioner_->expires_after(config_.provisioning_period);
    auto [ec] = co_await provisioner_->async_wait(kUseTuple);
    if (ec) co_return;
    reconcile_provisioned();
  }
}

void Invoker::reconcile_provisioned() {
  // What the registry asks for, per version: an alias and the version it
  // points at add up.
  struct Want {
    registry::FunctionConfig config;
    int count = 0;
  };
  std::map<std::string, Want> wanted;
  for (const auto& p : registry_.provisioned_all()) {
    auto config = registry_.get_qualified(p.function, p.qualifier);
    if (!config.ok()) continue;
    auto& want = wanted[pool_key(config->name, config->version)];
    want.config = std::move(*config);
    want.count += p.requested;
  }
  std::vector<std::pair<std::shared_ptr<Instance>, registry::FunctionConfig>> to_start;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    const auto now = SteadyClock::now();
    for (auto& [key, pool] : pools_) {
      if (wanted.count(key) == 0) pool->provisioned_target = 0;
    }
    for (auto& [key, want] : wanted) pool_for(want.config).provisioned_target = want.count;
    for (auto& [key, pool] : pools_) {
      const auto w = wanted.find(key);
      int have = 0;
      for (auto& inst : pool->instances) {
        const bool live = inst->state != InstanceState::kDraining && inst->state != InstanceState::kDead &&
                          (w == wanted.end() || inst->revision == w->second.config.revision_id);
        if (!inst->provisioned || !live) continue;
        if (have < pool->provisioned_target) {
          ++have;
        } else {
          inst->provisioned = false;  // surplus: ages out like any on-demand instance
          inst->idle_since = now;
        }
      }
      if (w == wanted.end() || have >= pool->provisioned_target) continue;
      // After a failed start, wait a little before the next attempt.
      if (!pool->provisioned_failure.empty() && now - pool->failed_at < std::chrono::seconds(2)) continue;
      for (; have < pool->provisioned_target; ++have) {
        auto inst = new_instance(*pool, w->second.config);
        inst->provisioned = true;
        to_start.emplace_back(std::move(inst), w->second.config);
      }
    }
  }
  for (auto& [inst, config] : to_start) {
    asio::co_spawn(executor_, start_provisioned(std::move(inst), std::move(config)), [](std::exception_ptr e) {
      if (e) spdlog::error("invoker: a provisioned start ended with an exception");
    });
  }
}

asio::awaitable<void> Invoker::start_provisioned(std::shared_ptr<Instance> inst, registry::FunctionConfig config) {
  // Provisioned instances, and pre-warmed ones (the adaptive keep-alive).
  bool provisioned = false;
  {
    std::lock_guard lock(mu_);
    provisioned = inst->provisioned;
  }
  const std::string request_id = (provisioned ? "provisioned-" : "prewarm-") + inst->id;
  auto started = co_await start_instance(inst, config, request_id);
  const std::string output = inst->output ? drain_output(*inst) : std::string();
  if (!output.empty()) logs_.append(config.name, clock_.now_ms(), output.back() == '\n' ? output : output + "\n");
  bool kill = !started.ok();
  {
    std::lock_guard lock(mu_);
    const auto it = pools_.find(inst->pool);
    if (it != pools_.end() && inst->provisioned) {
      if (started.ok()) {
        it->second->provisioned_failure.clear();
      } else {
        it->second->provisioned_failure = started.error().message;
        it->second->failed_at = SteadyClock::now();
      }
    }
    if (started.ok() && inst->state == InstanceState::kStarting && !stopping_) {
      inst->state = InstanceState::kIdle;
      inst->idle_since = SteadyClock::now();
    } else {
      kill = true;
    }
  }
  if (!started.ok()) {
    spdlog::warn("invoker: {}: {} instance failed to start: {}", config.name,
                 provisioned ? "provisioned" : "pre-warmed", started.error().message);
  }
  if (kill) destroy(inst);
}

}  // namespace nimbus::invoker
