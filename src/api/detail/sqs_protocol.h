#pragma once
// The two wire forms of the SQS API (internal to the api part): the query
// protocol (form parameters in, XML out, botocore's "query" serializer and
// parser) translated to and from the JSON protocol's shapes, which SqsApi
// works in.

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "http/types.h"

namespace nimbus::api::detail {

// Form parameters of a query-protocol request (Action=..&Attribute.1.Name=..)
// as the JSON protocol's input shape: flattened lists become arrays
// ("AttributeName.1" -> "AttributeNames"), flattened maps objects
// ("Attribute.N.Name/Value" -> "Attributes", "MessageAttribute.N.*" ->
// "MessageAttributes"), batch entries "Entries". Values stay strings.
[[nodiscard]] nlohmann::json query_to_json(const http::Params& form);

// An action's result (JSON protocol output shape) as the query protocol's
// XML document, with <ResponseMetadata><RequestId>.
[[nodiscard]] std::string json_to_query_xml(std::string_view action, const nlohmann::json& result,
                                            std::string_view request_id);

// <ErrorResponse> with Type (Sender/Receiver), Code, Message and RequestId.
[[nodiscard]] std::string query_error_xml(std::string_view type, std::string_view code, std::string_view message,
                                          std::string_view request_id);

// XML text escaping as SQS does it (& < > " ' and CR).
[[nodiscard]] std::string xml_escape(std::string_view text);

}  // namespace nimbus::api::detail
