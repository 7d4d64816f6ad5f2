// The SQS query protocol's flattened lists and maps, as clients index them.
#include "api/detail/sqs_protocol.h"

#include <gtest/gtest.h>

namespace nimbus::api::detail {
namespace {

TEST(SqsQueryProtocol, IndexesAreOrderedByValue) {
  const http::Params form = {{"Action", "ReceiveMessage"},
                             {"AttributeName.10", "c"},
                             {"AttributeName.2", "b"},
                             {"AttributeName.01", "a"}};
  EXPECT_EQ(query_to_json(form)["AttributeNames"], (nlohmann::json{"a", "b", "c"}));
}

// Found by tools/fuzz (sqs_query): an index past `long` threw out_of_range
// from std::stol, and the request got a 500.
TEST(SqsQueryProtocol, AnIndexTooLongForAnyIntegerIsStillAnIndex) {
  const http::Params form = {{"Action", "ReceiveMessage"},
                             {"AttributeName.1555555555555555555555555555555555555555555", "All"},
                             {"AttributeName.2", "First"}};
  nlohmann::json call;
  ASSERT_NO_THROW(call = query_to_json(form));
  EXPECT_EQ(call["AttributeNames"], (nlohmann::json{"First", "All"}));
}

}  // namespace
}  // namespace nimbus::api::detail
