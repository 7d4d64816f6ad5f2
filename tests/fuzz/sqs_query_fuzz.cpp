// Fuzz target: the SQS query protocol (form-encoded parameters, as the aws
// CLI and boto3 send them) turned into the JSON protocol's input, and a
// result rendered back as the query protocol's XML.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "api/detail/sqs_protocol.h"
#include "http/types.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const nimbus::http::Params form = nimbus::http::parse_query(input);
  const nlohmann::json call = nimbus::api::detail::query_to_json(form);
  const std::string* action = nimbus::http::find_param(form, "Action");
  (void)nimbus::api::detail::json_to_query_xml(action != nullptr ? *action : "SendMessage", call, "request-id");
  return 0;
}
