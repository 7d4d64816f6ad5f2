#include "events/schedules.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>

#include "store/sqlite_store.h"

namespace nimbus::events {
namespace {

using nlohmann::json;

std::int64_t utc_ms(int y, unsigned mo, unsigned d, unsigned h = 0, unsigned mi = 0, unsigned s = 0) {
  return (days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s) * 1000;
}

struct Fire {
  std::string function, qualifier;
  json payload;
};

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("nimbus-sched-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    store_ = std::make_unique<store::SqliteStore>(dir_ / "n.db");
    ASSERT_TRUE(store_->open().ok());
    scheduler_ = make_scheduler();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A scheduler as after a (re)start on the same store.
  std::unique_ptr<Scheduler> make_scheduler() {
    SchedulerConfig config;
    config.region = "eu-west-3";
    config.account_id = "123456789012";
    return std::make_unique<Scheduler>(
        io_.get_executor(), *store_, nullptr, metrics_, clock_,
        [this](const std::string& f, const std::string& q, std::string payload) -> base::Status {
          fires_.push_back(Fire{f, q, json::parse(payload)});
          if (refuse_) return base::make_error(base::ErrorCode::kService, "queue full");
          return base::Ok{};
        },
        config);
  }

  json create(const json& body, unsigned want_status = 201) {
    auto reply = scheduler_->control(http::Verb::post, "/nimbus/v1/schedules", body.dump());
    EXPECT_TRUE(reply.ok()) << (reply.ok() ? "" : reply.error().message);
    if (!reply.ok()) return nullptr;
    EXPECT_EQ(reply->status, want_status);
    return reply->body;
  }
  base::Error create_error(const json& body) {
    auto reply = scheduler_->control(http::Verb::post, "/nimbus/v1/schedules", body.dump());
    EXPECT_FALSE(reply.ok());
    return reply.ok() ? base::Error{} : reply.error();
  }
  json get(const std::string& name) {
    auto reply = scheduler_->control(http::Verb::get, "/nimbus/v1/schedules/" + name, "");
    EXPECT_TRUE(reply.ok());
    return reply.ok() ? reply->body : json();
  }
  void fire_due() { ASSERT_TRUE(scheduler_->fire_due().ok()); }
  std::uint64_t counter(const std::string& family, const std::string& schedule) {
    return metrics_.labelled_counter(family, "", "schedule", schedule).value();
  }

  std::filesystem::path dir_;
  boost::asio::io_context io_;
  std::unique_ptr<store::SqliteStore> store_;
  telemetry::Registry metrics_;
  base::ManualClock clock_{utc_ms(2026, 11, 23, 10, 30)};
  std::vector<Fire> fires_;
  bool refuse_ = false;
  std::unique_ptr<Scheduler> scheduler_;
};

TEST_F(SchedulerTest, RateFiresAtCreationThenEveryPeriodWithTheScheduledEvent) {
  const json view = create({{"Name", "tick"}, {"ScheduleExpression", "rate(1 minute)"}, {"FunctionName", "report"}});
  EXPECT_EQ(view["Name"], "tick");
  EXPECT_EQ(view["Arn"], "arn:aws:events:eu-west-3:123456789012:rule/tick");
  EXPECT_EQ(view["State"], "ENABLED");
  EXPECT_EQ(view["Qualifier"], "$LATEST");
  EXPECT_EQ(view["ScheduleExpressionTimezone"], "UTC");
  EXPECT_EQ(view["NextFireTime"], "2026-11-23T10:30:00Z");
  EXPECT_TRUE(view["LastFireTime"].is_null());
  EXPECT_FALSE(view.contains("Input"));

  fire_due();
  ASSERT_EQ(fires_.size(), 1u);
  EXPECT_EQ(fires_[0].function, "report");
  EXPECT_EQ(fires_[0].qualifier, "");
  const json& event = fires_[0].payload;
  EXPECT_EQ(event["version"], "0");
  EXPECT_EQ(event["detail-type"], "Scheduled Event");
  EXPECT_EQ(event["source"], "aws.events");
  EXPECT_EQ(event["account"], "123456789012");
  EXPECT_EQ(event["time"], "2026-11-23T10:30:00Z");
  EXPECT_EQ(event["region"], "eu-west-3");
  EXPECT_EQ(event["resources"], json::array({"arn:aws:events:eu-west-3:123456789012:rule/tick"}));
  EXPECT_EQ(event["detail"], json::object());
  EXPECT_EQ(event["id"].get<std::string>().size(), 36u);
  EXPECT_EQ(event.size(), 9u);
  EXPECT_EQ(counter("nimbus_schedule_fires_total", "tick"), 1u);

  clock_.advance_ms(30'000);
  fire_due();
  EXPECT_EQ(fires_.size(), 1u);
  clock_.advance_ms(30'000);
  fire_due();
  ASSERT_EQ(fires_.size(), 2u);
  EXPECT_EQ(fires_[1].payload["time"], "2026-11-23T10:31:00Z");
  EXPECT_NE(fires_[1].payload["id"], fires_[0].payload["id"]);
  EXPECT_EQ(get("tick")["LastFireTime"], "2026-11-23T10:31:00Z");
  EXPECT_EQ(get("tick")["NextFireTime"], "2026-11-23T10:32:00Z");
}

TEST_F(SchedulerTest, MissedTimesFireOnceOnRestartThenContinueFromNow) {
  create({{"Name", "hourly"}, {"ScheduleExpression", "cron(0 * * * ? *)"}, {"FunctionName", "report"}});
  EXPECT_EQ(get("hourly")["NextFireTime"], "2026-11-23T11:00:00Z");
  // The daemon is down from 10:30 to 15:20: 11:00 ... 15:00 are missed.
  scheduler_.reset();
  clock_.advance_ms(4 * 3600'000LL + 50 * 60'000LL);
  scheduler_ = make_scheduler();
  fire_due();
  ASSERT_EQ(fires_.size(), 1u);
  EXPECT_EQ(fires_[0].payload["time"], "2026-11-23T11:00:00Z");  // the first time it missed
  EXPECT_EQ(counter("nimbus_schedule_catch_up_fires_total", "hourly"), 1u);
  EXPECT_EQ(get("hourly")["NextFireTime"], "2026-11-23T16:00:00Z");
  EXPECT_EQ(get("hourly")["LastFireTime"], "2026-11-23T15:20:00Z");
  fire_due();
  EXPECT_EQ(fires_.size(), 1u);
  clock_.advance_ms(40 * 60'000LL);
  fire_due();
  ASSERT_EQ(fires_.size(), 2u);
  EXPECT_EQ(fires_[1].payload["time"], "2026-11-23T16:00:00Z");
  EXPECT_EQ(counter("nimbus_schedule_catch_up_fires_total", "hourly"), 1u);
}

TEST_F(SchedulerTest, OneMissedTimeIsAnOrdinaryFire) {
  create({{"Name", "daily"}, {"ScheduleExpression", "cron(0 12 * * ? *)"}, {"FunctionName", "report"}});
  clock_.advance_ms(2 * 3600'000LL);  // 12:30: one time passed, the next is tomorrow
  fire_due();
  ASSERT_EQ(fires_.size(), 1u);
  EXPECT_EQ(fires_[0].payload["time"], "2026-11-23T12:00:00Z");
  EXPECT_EQ(counter("nimbus_schedule_catch_up_fires_total", "daily"), 0u);
  EXPECT_EQ(get("daily")["NextFireTime"], "2026-11-24T12:00:00Z");
}

TEST_F(SchedulerTest, RateKeepsItsPhaseAfterCatchUp) {
  create({{"Name", "five"}, {"ScheduleExpression", "rate(5 minutes)"}, {"FunctionName", "report"}});
  fire_due();  // 10:30 (creation)
  clock_.advance_ms(23 * 60'000LL);  // 10:53: 10:35 ... 10:50 missed
  fire_due();
  ASSERT_EQ(fires_.size(), 2u);
  EXPECT_EQ(fires_[1].payload["time"], "2026-11-23T10:35:00Z");
  EXPECT_EQ(get("five")["NextFireTime"], "2026-11-23T10:55:00Z");
}

TEST_F(SchedulerTest, AtFiresOnceAndDisablesItself) {
  create({{"Name", "once"},
          {"ScheduleExpression", "at(2026-11-23T12:00:00)"},
          {"ScheduleExpressionTimezone", "Europe/Paris"},
          {"FunctionName", "report"},
          {"Qualifier", "live"}});
  EXPECT_EQ(get("once")["NextFireTime"], "2026-11-23T11:00:00Z");
  clock_.advance_ms(31 * 60'000LL);
  fire_due();
  ASSERT_EQ(fires_.size(), 1u);
  EXPECT_EQ(fires_[0].qualifier, "live");
  EXPECT_EQ(fires_[0].payload["time"], "2026-11-23T11:00:00Z");
  const json after = get("once");
  EXPECT_EQ(after["State"], "DISABLED");
  EXPECT_TRUE(after["NextFireTime"].is_null());
  clock_.advance_ms(86'400'000LL);
  fire_due();
  EXPECT_EQ(fires_.size(), 1u);
  // Enabling it again does not bring a past time back.
  auto enabled = scheduler_->control(http::Verb::post, "/nimbus/v1/schedules/once/enable", "");
  ASSERT_TRUE(enabled.ok());
  EXPECT_TRUE(enabled->body["NextFireTime"].is_null());
  fire_due();
  EXPECT_EQ(fires_.size(), 1u);
}

TEST_F(SchedulerTest, FixedInputReplacesTheEvent) {
  create({{"Name", "fixed"},
          {"ScheduleExpression", "rate(1 day)"},
          {"FunctionName", "report"},
          {"Input", R"({"report":"daily","n":1})"}});
  create({{"Name", "object"}, {"ScheduleExpression", "rate(1 day)"}, {"FunctionName", "report"},
          {"Input", {{"k", "v"}}}});
  fire_due();
  ASSERT_EQ(fires_.size(), 2u);
  EXPECT_EQ(fires_[0].payload, (json{{"report", "daily"}, {"n", 1}}));
  EXPECT_EQ(fires_[1].payload, (json{{"k", "v"}}));
  EXPECT_EQ(get("fixed")["Input"], R"({"report":"daily","n":1})");
}

TEST_F(SchedulerTest, DisableStopsFiresAndEnableContinuesFromNow) {
  create({{"Name", "m"}, {"ScheduleExpression", "cron(* * * * ? *)"}, {"FunctionName", "report"}});
  auto disabled = scheduler_->control(http::Verb::post, "/nimbus/v1/schedules/m/disable", "");
  ASSERT_TRUE(disabled.ok());
  EXPECT_EQ(disabled->body["State"], "DISABLED");
  EXPECT_TRUE(disabled->body["NextFireTime"].is_null());
  clock_.advance_ms(10 * 60'000LL);
  fire_due();
  EXPECT_TRUE(fires_.empty());
  clock_.advance_ms(30'000);  // 10:40:30
  auto enabled = scheduler_->control(http::Verb::post, "/nimbus/v1/schedules/m/enable", "");
  ASSERT_TRUE(enabled.ok());
  EXPECT_EQ(enabled->body["NextFireTime"], "2026-11-23T10:41:00Z");
  fire_due();
  EXPECT_TRUE(fires_.empty());
  clock_.advance_ms(30'000);
  fire_due();
  ASSERT_EQ(fires_.size(), 1u);
  EXPECT_EQ(fires_[0].payload["time"], "2026-11-23T10:41:00Z");
  // Created disabled.
  create({{"Name", "off"}, {"ScheduleExpression", "rate(1 minute)"}, {"FunctionName", "f"}, {"State", "DISABLED"}});
  fire_due();
  EXPECT_EQ(fires_.size(), 1u);
}

TEST_F(SchedulerTest, RefusedFiresAreCountedAndTheScheduleMovesOn) {
  refuse_ = true;
  create({{"Name", "r"}, {"ScheduleExpression", "rate(1 hour)"}, {"FunctionName", "report"}});
  fire_due();
  EXPECT_EQ(fires_.size(), 1u);
  EXPECT_EQ(counter("nimbus_schedule_fire_errors_total", "r"), 1u);
  EXPECT_EQ(counter("nimbus_schedule_fires_total", "r"), 0u);
  EXPECT_EQ(get("r")["NextFireTime"], "2026-11-23T11:30:00Z");
}

TEST_F(SchedulerTest, FireDueReportsTheEarliestNextTime) {
  auto none = scheduler_->fire_due();
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, std::nullopt);
  create({{"Name", "a"}, {"ScheduleExpression", "cron(0 12 * * ? *)"}, {"FunctionName", "f"}});
  create({{"Name", "b"}, {"ScheduleExpression", "cron(15 11 * * ? *)"}, {"FunctionName", "f"}});
  create({{"Name", "never"}, {"ScheduleExpression", "cron(0 0 30 2 ? *)"}, {"FunctionName", "f"}});
  EXPECT_TRUE(get("never")["NextFireTime"].is_null());
  auto next = scheduler_->fire_due();
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, utc_ms(2026, 11, 23, 11, 15));
}

TEST_F(SchedulerTest, ControlErrors) {
  auto e = create_error({{"Name", "bad"}, {"ScheduleExpression", "cron(61 * * * ? *)"}, {"FunctionName", "f"}});
  EXPECT_EQ(e.code, base::ErrorCode::kValidation);
  EXPECT_EQ(e.message, "Invalid Schedule Expression cron(61 * * * ? *): Minutes field value 61 is out of range 0-59");
  e = create_error({{"Name", "bad"}, {"ScheduleExpression", "cron(0 1 * * * *)"}, {"FunctionName", "f"}});
  EXPECT_EQ(e.message,
            "Invalid Schedule Expression cron(0 1 * * * *): exactly one of Day-of-month and Day-of-week must be '?' "
            "(use '?' in Day-of-month to pick days by weekday, or in Day-of-week to pick them by date)");
  e = create_error({{"Name", "bad"}, {"ScheduleExpression", "rate(1 minute)"}, {"FunctionName", "f"},
                    {"ScheduleExpressionTimezone", "Mars/Olympus"}});
  EXPECT_EQ(e.message, "Unknown time zone 'Mars/Olympus': expected an IANA name such as UTC or Europe/Paris");
  e = create_error({{"Name", "bad"}, {"ScheduleExpression", "at(2020-01-01T00:00:00)"}, {"FunctionName", "f"}});
  EXPECT_EQ(e.message,
            "Invalid Schedule Expression at(2020-01-01T00:00:00): the time is in the past (it is now "
            "2026-11-23T10:30:00 in UTC)");
  e = create_error({{"Name", "bad name"}, {"ScheduleExpression", "rate(1 minute)"}, {"FunctionName", "f"}});
  EXPECT_EQ(e.message, "Name 'bad name' must be 1-64 letters, digits, '.', '-' or '_'");
  e = create_error({{"Name", "x"}, {"FunctionName", "f"}});
  EXPECT_EQ(e.message, "ScheduleExpression is required");
  e = create_error({{"Name", "x"}, {"ScheduleExpression", "rate(1 minute)"}});
  EXPECT_EQ(e.message, "FunctionName is required");
  e = create_error({{"Name", "x"}, {"ScheduleExpression", "rate(1 minute)"}, {"FunctionName", "f"}, {"Input", "{"}});
  EXPECT_EQ(e.message, "Input must be valid JSON text");
  e = create_error({{"Name", "x"}, {"ScheduleExpression", "rate(1 minute)"}, {"FunctionName", "f"}, {"State", "ON"}});
  EXPECT_EQ(e.message, "State 'ON' must be ENABLED or DISABLED");
  e = create_error({{"Name", 5}, {"ScheduleExpression", "rate(1 minute)"}, {"FunctionName", "f"}});
  EXPECT_EQ(e.message, "Name must be a string");
  auto not_json = scheduler_->control(http::Verb::post, "/nimbus/v1/schedules", "{nope");
  ASSERT_FALSE(not_json.ok());
  EXPECT_EQ(not_json.error().code, base::ErrorCode::kInvalidRequestContent);

  create({{"Name", "x"}, {"ScheduleExpression", "rate(1 minute)"}, {"FunctionName", "f"}});
  e = create_error({{"Name", "x"}, {"ScheduleExpression", "rate(1 minute)"}, {"FunctionName", "f"}});
  EXPECT_EQ(e.code, base::ErrorCode::kResourceConflict);
  auto deleted = scheduler_->control(http::Verb::delete_, "/nimbus/v1/schedules/x", "");
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(deleted->status, 204u);
  for (auto [verb, path] : {std::pair{http::Verb::get, "/nimbus/v1/schedules/x"},
                            std::pair{http::Verb::delete_, "/nimbus/v1/schedules/x"},
                            std::pair{http::Verb::post, "/nimbus/v1/schedules/x/enable"}}) {
    auto r = scheduler_->control(verb, path, "");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, base::ErrorCode::kResourceNotFound);
    EXPECT_EQ(r.error().message, "Schedule not found: x");
  }
  auto unknown = scheduler_->control(http::Verb::put, "/nimbus/v1/schedules/x/pause", "");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, base::ErrorCode::kNotImplemented);
  auto list = scheduler_->control(http::Verb::get, "/nimbus/v1/schedules", "");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->body["Schedules"], json::array());
}

TEST(PlanFire, Policy) {
  auto hourly = parse_schedule_expression("cron(0 * * * ? *)");
  ASSERT_TRUE(hourly.ok());
  store::ScheduleRow row;
  row.created_ms = utc_ms(2026, 1, 1);
  row.next_fire_ms = utc_ms(2026, 1, 1, 1);
  // Not yet due.
  EXPECT_FALSE(plan_fire(row, *hourly, TimeZone(), utc_ms(2026, 1, 1, 0, 59)).fire);
  // Due on time.
  auto on_time = plan_fire(row, *hourly, TimeZone(), utc_ms(2026, 1, 1, 1, 0, 1));
  EXPECT_TRUE(on_time.fire);
  EXPECT_FALSE(on_time.late);
  EXPECT_EQ(on_time.scheduled_ms, utc_ms(2026, 1, 1, 1));
  EXPECT_EQ(on_time.after.next_fire_ms, utc_ms(2026, 1, 1, 2));
  // Days late: one fire, then the first time after now.
  auto late = plan_fire(row, *hourly, TimeZone(), utc_ms(2026, 1, 9, 7, 30));
  EXPECT_TRUE(late.fire);
  EXPECT_TRUE(late.late);
  EXPECT_EQ(late.scheduled_ms, utc_ms(2026, 1, 1, 1));
  EXPECT_EQ(late.after.next_fire_ms, utc_ms(2026, 1, 9, 8));
  EXPECT_EQ(late.after.last_fire_ms, utc_ms(2026, 1, 9, 7, 30));
  // Disabled or never: nothing.
  row.enabled = false;
  EXPECT_FALSE(plan_fire(row, *hourly, TimeZone(), utc_ms(2026, 1, 9)).fire);
  row.enabled = true;
  row.next_fire_ms = -1;
  EXPECT_FALSE(plan_fire(row, *hourly, TimeZone(), utc_ms(2026, 1, 9)).fire);
  // The last fire of a bounded cron leaves it with no next time.
  auto bounded = parse_schedule_expression("cron(0 0 1 1 ? 2027)");
  ASSERT_TRUE(bounded.ok());
  row.next_fire_ms = utc_ms(2027, 1, 1);
  auto last = plan_fire(row, *bounded, TimeZone(), utc_ms(2027, 1, 1, 0, 0, 5));
  EXPECT_TRUE(last.fire);
  EXPECT_EQ(last.after.next_fire_ms, -1);
  EXPECT_TRUE(last.after.enabled);
}

}  // namespace
}  // namespace nimbus::events
