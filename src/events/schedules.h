#pragma once
// Scheduler: the rate/cron/at schedules of nimbus. Keeps them in the store
// (they survive restarts), fires each due one as an asynchronous invocation of
// its target function with EventBridge's "Scheduled Event" (or the
// schedule's fixed input), and serves /nimbus/v1/schedules on the control API.
//
// Catch-up policy: a schedule whose time passed while nothing could fire it
// (daemon down, timer late) fires ONCE, with the time it was due, and then
// continues with its first time after now; the missed times in between are
// skipped. at() schedules disable themselves after their one fire.
//
// Threads: the timer loop runs on a strand of the io executor; control() is
// called by the control API's threads. Both serialise their store
// read-modify-writes of schedules on one mutex, never held across co_await.
// Owned by the daemon, which keeps the store, registry and metrics alive
// longer; stop() before destruction.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "base/result.h"
#include "events/schedule_expression.h"
#include "events/schedule_metrics.h"
#include "http/types.h"
#include "registry/registry.h"
#include "store/store.h"

namespace nimbus::events {

// Hands one fire to the asynchronous invocation path; an error means the fire
// was not accepted (it is logged and counted, and not retried by the
// scheduler). The daemon provides it.
using AsyncInvoke =
    std::function<base::Status(const std::string& function, const std::string& qualifier, std::string payload)>;

struct SchedulerConfig {
  std::string region = "us-east-1";
  std::string account_id = "000000000000";
  // Schedule seconds per real second: how fast the injected clock runs
  // compared to the steady clock the timer sleeps on (test-only time scale).
  double time_scale = 1;
  // The longest the loop sleeps (real time) before it looks at the store again.
  std::chrono::milliseconds max_sleep{1000};
  std::filesystem::path zoneinfo = "/usr/share/zoneinfo";
};

// A control-API answer: status and JSON body (null: no body).
struct ScheduleReply {
  unsigned status = 200;
  nlohmann::json body;
};

// What one due schedule does now (pure; see the catch-up policy above).
struct FirePlan {
  bool fire = false;
  std::int64_t scheduled_ms = -1;  // the time it was due: the event's "time"
  bool late = false;               // at least one later time has passed too (a catch-up)
  store::ScheduleRow after;        // the row once fired
};
[[nodiscard]] FirePlan plan_fire(const store::ScheduleRow& row, const ScheduleExpression& expression,
                                 const TimeZone& zone, std::int64_t now_ms);

class Scheduler {
 public:
  // `registry` may be null (tests): targets are then not checked at creation.
  Scheduler(boost::asio::any_io_executor executor, store::Store& store, registry::Registry* registry,
            telemetry::Registry& metrics, const base::Clock& clock, AsyncInvoke invoke, SchedulerConfig config);

  // Starts the timer loop; its first pass applies the catch-up policy to
  // schedules missed while the daemon was down.
  void start();
  void stop();

  // One pass: fires every schedule due at the clock's now and records each
  // one's next time. Returns the earliest next fire time of enabled
  // schedules (nullopt: none). The loop calls it; tests may too.
  [[nodiscard]] base::Result<std::optional<std::int64_t>> fire_due();

  // The control API: GET|POST /nimbus/v1/schedules, GET|DELETE
  // /nimbus/v1/schedules/NAME, POST /nimbus/v1/schedules/NAME/enable|disable.
  [[nodiscard]] base::Result<ScheduleReply> control(http::Verb method, std::string_view path,
                                                    const std::string& body);

  // The Scheduled Event a fire of `schedule` due at `scheduled_ms` sends.
  [[nodiscard]] std::string scheduled_event(const std::string& schedule, std::int64_t scheduled_ms) const;
  [[nodiscard]] std::string rule_arn(const std::string& schedule) const;

 private:
  boost::asio::awaitable<void> run();
  void wake();
  base::Result<ScheduleReply> create(const std::string& body);
  base::Result<ScheduleReply> list();
  base::Result<ScheduleReply> get(const std::string& name);
  base::Result<ScheduleReply> remove(const std::string& name);
  base::Result<ScheduleReply> set_enabled(const std::string& name, bool enabled);
  [[nodiscard]] nlohmann::json view(const store::ScheduleRow& row) const;
  // The row's first fire time at or after `from_ms` (-1: never).
  base::Result<std::int64_t> first_fire(const store::ScheduleRow& row, std::int64_t from_ms) const;

  boost::asio::strand<boost::asio::any_io_executor> strand_;
  store::Store& store_;
  registry::Registry* registry_;
  ScheduleMetrics metrics_;
  const base::Clock& clock_;
  AsyncInvoke invoke_;
  SchedulerConfig config_;
  boost::asio::steady_timer timer_;  // on strand_
  bool stopping_ = false;            // on strand_
  std::mutex mu_;                    // serialises schedule read-modify-writes
};

}  // namespace nimbus::events
