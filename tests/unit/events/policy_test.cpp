#include "events/policy.h"

#include <gtest/gtest.h>

#include "events/dispatcher.h"
#include "events/invoke_config.h"

namespace nimbus::events {
namespace {

using Kind = Decision::Kind;

TEST(PolicyTest, FunctionErrorsAreRetriedTwiceAfterOneAndTwoMinutes) {
  const RetryLimits limits;  // defaults: 2 retries, 6 h
  const Decision first = decide(AttemptOutcome::kFunctionError, 1, 1, 0, limits);
  EXPECT_EQ(first.kind, Kind::kRetry);
  EXPECT_EQ(first.delay_ms, 60'000);
  const Decision second = decide(AttemptOutcome::kFunctionError, 2, 2, 60'000, limits);
  EXPECT_EQ(second.kind, Kind::kRetry);
  EXPECT_EQ(second.delay_ms, 120'000);
  const Decision third = decide(AttemptOutcome::kFunctionError, 3, 3, 180'000, limits);
  EXPECT_EQ(third.kind, Kind::kFinish);
  EXPECT_EQ(third.condition, Condition::kRetriesExhausted);
}

TEST(PolicyTest, MaximumRetryAttemptsZeroFailsAtOnce) {
  RetryLimits limits;
  limits.maximum_retry_attempts = 0;
  const Decision d = decide(AttemptOutcome::kFunctionError, 1, 1, 0, limits);
  EXPECT_EQ(d.kind, Kind::kFinish);
  EXPECT_EQ(d.condition, Condition::kRetriesExhausted);
}

TEST(PolicyTest, SuccessFinishesWithSuccess) {
  const Decision d = decide(AttemptOutcome::kSuccess, 3, 2, 0, RetryLimits{});
  EXPECT_EQ(d.kind, Kind::kFinish);
  EXPECT_EQ(d.condition, Condition::kSuccess);
  EXPECT_EQ(condition_name(d.condition), "Success");
}

TEST(PolicyTest, ThrottlesBackOffExponentiallyUpToFiveMinutes) {
  EXPECT_EQ(backoff_delay_ms(1), 1000);
  EXPECT_EQ(backoff_delay_ms(2), 2000);
  EXPECT_EQ(backoff_delay_ms(5), 16000);
  EXPECT_EQ(backoff_delay_ms(9), 256000);
  EXPECT_EQ(backoff_delay_ms(10), 300000);
  EXPECT_EQ(backoff_delay_ms(60), 300000);
  // Throttles do not use up the function-error retries.
  const Decision d = decide(AttemptOutcome::kThrottled, 7, 2, 1000, RetryLimits{});
  EXPECT_EQ(d.kind, Kind::kRetry);
  EXPECT_EQ(d.delay_ms, backoff_delay_ms(5));
  const Decision platform = decide(AttemptOutcome::kPlatformError, 1, 0, 0, RetryLimits{});
  EXPECT_EQ(platform.kind, Kind::kRetry);
  EXPECT_EQ(platform.delay_ms, 1000);
}

TEST(PolicyTest, RetriesStopAtTheMaximumEventAge) {
  RetryLimits limits;
  limits.maximum_event_age_s = 60;
  // A throttle retry that would start after 60 s is not made.
  const Decision d = decide(AttemptOutcome::kThrottled, 3, 0, 59'500, limits);
  EXPECT_EQ(d.kind, Kind::kFinish);
  EXPECT_EQ(d.condition, Condition::kEventAgeExceeded);
  // Nor is a function-error retry due after the age limit.
  const Decision f = decide(AttemptOutcome::kFunctionError, 1, 1, 10'000, limits);
  EXPECT_EQ(f.kind, Kind::kFinish);
  EXPECT_EQ(f.condition, Condition::kEventAgeExceeded);
  EXPECT_FALSE(expired(60'000, limits));
  EXPECT_TRUE(expired(60'001, limits));
}

TEST(PolicyTest, AGoneFunctionIsNotRetried) {
  const Decision d = decide(AttemptOutcome::kFunctionGone, 1, 0, 0, RetryLimits{});
  EXPECT_EQ(d.kind, Kind::kFinish);
  EXPECT_EQ(d.condition, Condition::kRetriesExhausted);
}

TEST(PolicyTest, TimeScaleConvertsEventTimeToRealTime) {
  EXPECT_EQ(to_real_ms(60'000, 1000), 60);
  EXPECT_EQ(to_real_ms(60'000, 1), 60'000);
  EXPECT_EQ(to_real_ms(1, 1000), 1);  // never rounds a delay to zero
  EXPECT_EQ(to_event_ms(60, 1000), 60'000);
  EXPECT_EQ(to_event_ms(60, 0.5), 60);  // below 1 means real time
}

TEST(DestinationTest, FunctionAndQueueArnsAreParsed) {
  auto f = parse_destination("arn:aws:lambda:us-east-1:000000000000:function:sink");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->kind, Destination::Kind::kFunction);
  EXPECT_EQ(f->function, "sink");
  EXPECT_EQ(f->qualifier, "");
  auto q = parse_destination("arn:aws:lambda:us-east-1:000000000000:function:sink:prod");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->qualifier, "prod");
  auto sqs = parse_destination("arn:aws:sqs:us-east-1:000000000000:failures");
  ASSERT_TRUE(sqs.ok());
  EXPECT_EQ(sqs->kind, Destination::Kind::kQueue);
}

TEST(DestinationTest, OtherKindsAndMalformedArnsAreRefused) {
  auto sns = parse_destination("arn:aws:sns:us-east-1:000000000000:topic");
  ASSERT_FALSE(sns.ok());
  EXPECT_EQ(sns.error().code, base::ErrorCode::kInvalidParameterValue);
  auto bad = parse_destination("not-an-arn");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, base::ErrorCode::kValidation);
  EXPECT_NE(bad.error().message.find("Member must satisfy regular expression pattern"), std::string::npos);
}

TEST(DestinationTest, DeadLetterTargetsMustBeQueues) {
  EXPECT_TRUE(check_dead_letter_target("").ok());
  EXPECT_TRUE(check_dead_letter_target("arn:aws:sqs:us-east-1:000000000000:dlq").ok());
  EXPECT_EQ(check_dead_letter_target("arn:aws:sns:us-east-1:000000000000:t").error().code,
            base::ErrorCode::kInvalidParameterValue);
  EXPECT_EQ(check_dead_letter_target("dlq").error().code, base::ErrorCode::kValidation);
}

TEST(RecordTest, FailureRecordHasLambdasShape) {
  AttemptResponse response{200, "$LATEST", true, R"({"errorMessage":"boom","errorType":"Exception"})"};
  const auto record = invocation_record("req-1", "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST",
                                        Condition::kRetriesExhausted, 3, R"({"n":1})", response, 1573755365568);
  EXPECT_EQ(record["version"], "1.0");
  EXPECT_EQ(record["timestamp"], "2019-11-14T18:16:05.568Z");
  EXPECT_EQ(record["requestContext"]["requestId"], "req-1");
  EXPECT_EQ(record["requestContext"]["condition"], "RetriesExhausted");
  EXPECT_EQ(record["requestContext"]["approximateInvokeCount"], 3);
  EXPECT_EQ(record["requestPayload"]["n"], 1);
  EXPECT_EQ(record["responseContext"]["statusCode"], 200);
  EXPECT_EQ(record["responseContext"]["executedVersion"], "$LATEST");
  EXPECT_EQ(record["responseContext"]["functionError"], "Unhandled");
  EXPECT_EQ(record["responsePayload"]["errorMessage"], "boom");
}

TEST(RecordTest, SuccessRecordHasNoFunctionError) {
  AttemptResponse response{200, "1", false, R"("done")"};
  const auto record = invocation_record("r", "arn", Condition::kSuccess, 1, "{}", response, 0);
  EXPECT_EQ(record["requestContext"]["condition"], "Success");
  EXPECT_FALSE(record["responseContext"].contains("functionError"));
  EXPECT_EQ(record["responsePayload"], "done");
}

}  // namespace
}  // namespace nimbus::events
