// The pure parts of SQS event source mappings: checks with Lambda's
// messages, the stored document, the visibility a batch is received with,
// the SQS event's exact shape, and the reading of partial batch responses.

#include <gtest/gtest.h>

#include "events/event_source_mapping.h"

namespace nimbus::events {
namespace {

using nlohmann::json;

EventSourceMapping applied(const MappingSpec& spec, bool fifo = false) {
  EventSourceMapping m;
  const auto status = apply_spec(spec, fifo, m);
  EXPECT_TRUE(status.ok()) << status.error().message;
  return m;
}

std::string error_of(const MappingSpec& spec, bool fifo = false) {
  EventSourceMapping m;
  const auto status = apply_spec(spec, fifo, m);
  return status.ok() ? std::string("ok") : status.error().message;
}

TEST(EventSourceMappingTest, DefaultsAreLambdas) {
  const EventSourceMapping m = applied(MappingSpec{});
  EXPECT_EQ(m.batch_size, 10);
  EXPECT_EQ(m.batching_window_s, 0);
  EXPECT_FALSE(m.report_batch_item_failures);
  EXPECT_FALSE(m.maximum_concurrency);
  EXPECT_TRUE(m.enabled);
}

TEST(EventSourceMappingTest, RangesAndCombinationsAreChecked) {
  MappingSpec spec;
  spec.batch_size = 0;
  EXPECT_NE(error_of(spec).find("'batchSize' failed to satisfy constraint: Member must have value greater than or "
                                "equal to 1"),
            std::string::npos);
  spec.batch_size = 10001;
  EXPECT_NE(error_of(spec).find("less than or equal to 10000"), std::string::npos);
  spec.batch_size = 11;
  EXPECT_EQ(error_of(spec),
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10");
  spec.batching_window_s = 1;
  EXPECT_EQ(error_of(spec), "ok");
  spec.batching_window_s = 301;
  EXPECT_NE(error_of(spec).find("'maximumBatchingWindowInSeconds'"), std::string::npos);

  MappingSpec fifo;
  fifo.batch_size = 11;
  fifo.batching_window_s = 1;
  EXPECT_NE(error_of(fifo, true).find("FIFO"), std::string::npos);
  fifo.batch_size = 10;
  EXPECT_NE(error_of(fifo, true).find("Batching window is not supported for FIFO queues"), std::string::npos);
  fifo.batching_window_s = 0;
  EXPECT_EQ(error_of(fifo, true), "ok");

  MappingSpec scaling;
  scaling.maximum_concurrency = std::optional<int>(1);
  EXPECT_NE(error_of(scaling).find("'scalingConfig.maximumConcurrency'"), std::string::npos);
  scaling.maximum_concurrency = std::optional<int>(1001);
  EXPECT_NE(error_of(scaling).find("less than or equal to 1000"), std::string::npos);

  MappingSpec types;
  types.function_response_types = std::vector<std::string>{"ReportBatchItemFailure"};
  EXPECT_NE(error_of(types).find("enum value set: [ReportBatchItemFailures]"), std::string::npos);
}

TEST(EventSourceMappingTest, UpdateKeepsWhatItDoesNotName) {
  MappingSpec create;
  create.batch_size = 5;
  create.function_response_types = std::vector<std::string>{"ReportBatchItemFailures"};
  create.maximum_concurrency = std::optional<int>(3);
  EventSourceMapping m = applied(create);
  MappingSpec update;
  update.enabled = false;
  ASSERT_TRUE(apply_spec(update, false, m).ok());
  EXPECT_EQ(m.batch_size, 5);
  EXPECT_TRUE(m.report_batch_item_failures);
  EXPECT_EQ(m.maximum_concurrency, 3);
  EXPECT_FALSE(m.enabled);
  // An empty list turns partial batch responses off; an empty ScalingConfig
  // removes the maximum.
  update.function_response_types = std::vector<std::string>{};
  update.maximum_concurrency = std::optional<int>();
  ASSERT_TRUE(apply_spec(update, false, m).ok());
  EXPECT_FALSE(m.report_batch_item_failures);
  EXPECT_FALSE(m.maximum_concurrency);
}

TEST(EventSourceMappingTest, DocumentRoundTrips) {
  EventSourceMapping m;
  m.uuid = "6f1d7c2e-0000-4000-8000-000000000001";
  m.event_source_arn = "arn:aws:sqs:us-east-1:000000000000:orders";
  m.queue = "orders";
  m.function = "work";
  m.qualifier = "live";
  m.batch_size = 100;
  m.batching_window_s = 2;
  m.report_batch_item_failures = true;
  m.maximum_concurrency = 7;
  m.enabled = false;
  m.last_modified_ms = 1700000000123;
  auto back = mapping_from_document(to_document(m));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->uuid, m.uuid);
  EXPECT_EQ(back->event_source_arn, m.event_source_arn);
  EXPECT_EQ(back->queue, "orders");
  EXPECT_EQ(back->function, "work");
  EXPECT_EQ(back->qualifier, "live");
  EXPECT_EQ(back->batch_size, 100);
  EXPECT_EQ(back->batching_window_s, 2);
  EXPECT_TRUE(back->report_batch_item_failures);
  EXPECT_EQ(back->maximum_concurrency, 7);
  EXPECT_FALSE(back->enabled);
  EXPECT_EQ(back->last_modified_ms, 1700000000123);
  EXPECT_FALSE(mapping_from_document("not json").ok());
  EXPECT_FALSE(mapping_from_document(R"({"uuid": 5, "queue": "q", "function": "f"})").ok());
}

TEST(EventSourceMappingTest, VisibilityCoversWindowPlusTimeout) {
  EXPECT_EQ(batch_visibility_s(30, 0, 3), 30);
  EXPECT_EQ(batch_visibility_s(30, 0, 30), 30);
  EXPECT_EQ(batch_visibility_s(30, 5, 30), 65);   // window + timeout + 30
  EXPECT_EQ(batch_visibility_s(10, 300, 900), 1230);
}

TEST(EventSourceMappingTest, SqsEventHasLambdasShape) {
  ReceivedMessage plain{"m-1", "handle-1", "hello", md5_of_body("hello"), {}, {}};
  plain.system_attributes = {{"ApproximateReceiveCount", "1"},
                             {"SentTimestamp", "1545082649183"},
                             {"SenderId", "000000000000"},
                             {"ApproximateFirstReceiveTimestamp", "1545082649185"}};
  ReceivedMessage with_attributes{"m-2", "handle-2", "{\"n\":1}", md5_of_body("{\"n\":1}"), {}, {}};
  with_attributes.attributes = {{"Author", {"String", "J"}}, {"Blob", {"Binary", std::string("\x00\x01", 2)}}};
  with_attributes.system_attributes = plain.system_attributes;
  with_attributes.system_attributes["MessageGroupId"] = "g";
  const std::vector<ReceivedMessage> batch{plain, with_attributes};
  const json event = sqs_event(batch, "arn:aws:sqs:us-east-1:000000000000:q", "us-east-1");
  ASSERT_EQ(event.size(), 1u);
  const json& records = event.at("Records");
  ASSERT_EQ(records.size(), 2u);
  const json& first = records[0];
  EXPECT_EQ(first.at("messageId"), "m-1");
  EXPECT_EQ(first.at("receiptHandle"), "handle-1");
  EXPECT_EQ(first.at("body"), "hello");
  EXPECT_EQ(first.at("attributes").at("ApproximateReceiveCount"), "1");
  EXPECT_TRUE(first.at("attributes").at("SentTimestamp").is_string());
  EXPECT_EQ(first.at("messageAttributes"), json::object());
  EXPECT_FALSE(first.contains("md5OfMessageAttributes"));  // absent without attributes
  EXPECT_EQ(first.at("md5OfBody"), "5d41402abc4b2a76b9719d911017c592");
  EXPECT_EQ(first.at("eventSource"), "aws:sqs");
  EXPECT_EQ(first.at("eventSourceARN"), "arn:aws:sqs:us-east-1:000000000000:q");
  EXPECT_EQ(first.at("awsRegion"), "us-east-1");
  EXPECT_EQ(first.size(), 9u);

  const json& second = records[1];
  EXPECT_EQ(second.at("body"), "{\"n\":1}");  // verbatim, not parsed
  EXPECT_EQ(second.at("attributes").at("MessageGroupId"), "g");
  EXPECT_EQ(second.at("messageAttributes").at("Author"),
            json({{"stringValue", "J"}, {"stringListValues", json::array()}, {"binaryListValues", json::array()},
                  {"dataType", "String"}}));
  EXPECT_EQ(second.at("messageAttributes").at("Blob").at("binaryValue"), "AAE=");
  EXPECT_FALSE(second.at("messageAttributes").at("Blob").contains("stringValue"));
  EXPECT_EQ(second.at("md5OfMessageAttributes"), md5_of_attributes(with_attributes.attributes));
  EXPECT_EQ(second.size(), 10u);
}

TEST(EventSourceMappingTest, PartialBatchResponses) {
  const std::set<std::string> ids{"a", "b", "c"};
  for (const char* success : {"", "null", "{}", R"({"batchItemFailures": []})", R"({"batchItemFailures": null})"}) {
    const BatchOutcome o = read_batch_response(success, ids);
    EXPECT_FALSE(o.whole_batch_failed) << success;
    EXPECT_TRUE(o.failed_ids.empty()) << success;
  }
  const BatchOutcome some =
      read_batch_response(R"({"batchItemFailures": [{"itemIdentifier": "b"}, {"itemIdentifier": "c"}]})", ids);
  EXPECT_FALSE(some.whole_batch_failed);
  EXPECT_EQ(some.failed_ids, (std::set<std::string>{"b", "c"}));
  for (const char* whole : {"not json", "[]", "\"ok\"", R"({"foo": []})", R"({"batchItemFailures": {}})",
                            R"({"batchItemFailures": [{"itemIdentifier": ""}]})",
                            R"({"batchItemFailures": [{"itemIdentifier": null}]})",
                            R"({"batchItemFailures": [{"itemIdentifier": "z"}]})",
                            R"({"batchItemFailures": ["a"]})"}) {
    const BatchOutcome o = read_batch_response(whole, ids);
    EXPECT_TRUE(o.whole_batch_failed) << whole;
    EXPECT_FALSE(o.reason.empty()) << whole;
    EXPECT_TRUE(o.failed_ids.empty()) << whole;
  }
}

}  // namespace
}  // namespace nimbus::events
