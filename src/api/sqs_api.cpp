#include "api/sqs_api.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "api/detail/sqs_protocol.h"
#include "base/crypto.h"

namespace nimbus::api {

using base::ErrorCode;
using base::make_error;
using nlohmann::json;

namespace {

constexpr std::string_view kTargetPrefix = "AmazonSQS.";
constexpr std::string_view kJsonContentType = "application/x-amz-json-1.0";

base::Error missing(std::string_view name) {
  return make_error(ErrorCode::kMissingParameter, fmt::format("The request must contain the parameter {}.", name));
}

// A string member, or "" when absent.
std::string text(const json& in, const char* key) {
  const auto it = in.find(key);
  return it != in.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// An integer member sent as a JSON number or (query protocol) a string.
base::Result<std::optional<std::int64_t>> integer(const json& in, const char* key) {
  const auto it = in.find(key);
  if (it == in.end() || it->is_null()) return std::optional<std::int64_t>{};
  if (it->is_number_integer()) return std::optional<std::int64_t>{it->get<std::int64_t>()};
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    std::int64_t v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (!s.empty() && ec == std::errc() && p == s.data() + s.size()) return std::optional<std::int64_t>{v};
  }
  return make_error(ErrorCode::kInvalidParameterValue,
                    fmt::format("Value {} for parameter {} is invalid. Reason: must be an integer.",
                                it->is_string() ? it->get<std::string>() : it->dump(), key));
}

std::vector<std::string> strings(const json& in, const char* key) {
  std::vector<std::string> out;
  const auto it = in.find(key);
  if (it == in.end() || !it->is_array()) return out;
  for (const auto& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

base::Result<events::MessageAttributeMap> message_attributes(const json& in) {
  events::MessageAttributeMap out;
  const auto it = in.find("MessageAttributes");
  if (it == in.end() || !it->is_object()) return out;
  for (const auto& [name, v] : it->items()) {
    if (!v.is_object()) continue;
    events::MessageAttributeValue attr{text(v, "DataType"), {}};
    if (attr.binary()) {
      const auto decoded = base::base64_decode(text(v, "BinaryValue"));
      if (!decoded) {
        return make_error(ErrorCode::kInvalidParameterValue,
                          fmt::format("The message attribute '{}' has an invalid BinaryValue (not base64).", name));
      }
      attr.value = *decoded;
    } else {
      attr.value = text(v, "StringValue");
    }
    out.emplace(name, std::move(attr));
  }
  return out;
}

base::Result<events::SendRequest> send_request(const json& in) {
  events::SendRequest r;
  r.body = text(in, "MessageBody");
  auto delay = integer(in, "DelaySeconds");
  if (!delay.ok()) return std::move(delay).error();
  r.delay_s = *delay;
  auto attrs = message_attributes(in);
  if (!attrs.ok()) return std::move(attrs).error();
  r.attributes = std::move(*attrs);
  r.group_id = text(in, "MessageGroupId");
  r.dedup_id = text(in, "MessageDeduplicationId");
  return r;
}

json send_result(const events::SendResult& r) {
  json out = {{"MessageId", r.message_id}, {"MD5OfMessageBody", r.md5_of_body}};
  if (!r.md5_of_attributes.empty()) out["MD5OfMessageAttributes"] = r.md5_of_attributes;
  if (!r.sequence_number.empty()) out["SequenceNumber"] = r.sequence_number;
  return out;
}

json failed_entry(const std::string& id, const base::Error& e) {
  const auto& shape = base::sqs_shape_of(e.code);
  return {{"Id", id}, {"SenderFault", shape.sender_fault}, {"Code", shape.query_code}, {"Message", e.message}};
}

bool valid_entry_id(std::string_view id) {
  if (id.empty() || id.size() > 80) return false;
  for (char c : id) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '-' && c != '_') return false;
  }
  return true;
}

// The batch-level checks every *Batch action shares; the entries' ids.
base::Result<std::vector<std::string>> batch_ids(const json& in, std::string_view entry_name) {
  const auto it = in.find("Entries");
  const std::size_t n = it != in.end() && it->is_array() ? it->size() : 0;
  if (n == 0) {
    return make_error(ErrorCode::kEmptyBatchRequest,
                      fmt::format("There should be at least one {} in the request.", entry_name));
  }
  if (n > events::kMaxBatchEntries) {
    return make_error(ErrorCode::kTooManyEntriesInBatch,
                      fmt::format("Maximum number of entries per request are 10. You have sent {}.", n));
  }
  std::vector<std::string> ids;
  std::set<std::string> seen;
  for (const auto& e : *it) {
    std::string id = e.is_object() ? text(e, "Id") : std::string();
    if (!valid_entry_id(id)) {
      return make_error(ErrorCode::kInvalidBatchEntryId,
                        "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It "
                        "can be at most 80 letters long.");
    }
    if (!seen.insert(id).second) {
      return make_error(ErrorCode::kBatchEntryIdsNotDistinct, fmt::format("Id {} repeated.", id));
    }
    ids.push_back(std::move(id));
  }
  return ids;
}

// Whether a message attribute name is selected by MessageAttributeNames.
bool selected(const std::vector<std::string>& names, const std::string& name) {
  for (const auto& n : names) {
    if (n == "All" || n == ".*" || n == name) return true;
    if (n.ends_with(".*") && name.starts_with(n.substr(0, n.size() - 1))) return true;
  }
  return false;
}

}  // namespace

SqsApi::SqsApi(events::QueueService& queues) : queues_(queues) {}

bool SqsApi::claims(const http::Request& request) {
  if (request["X-Amz-Target"].starts_with(kTargetPrefix)) return true;
  // The query protocol posts forms to "/" or to a queue URL (/<account>/<name>);
  // no Lambda route has either shape.
  const auto [path, query] = http::split_target(request.target());
  const auto slash = path.find('/', 1);
  const bool queue_path = slash != std::string_view::npos && slash > 1 &&
                          path.find('/', slash + 1) == std::string_view::npos &&
                          std::all_of(path.begin() + 1, path.begin() + static_cast<std::ptrdiff_t>(slash),
                                      [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; });
  if (path != "/" && !queue_path) return false;
  if (request.method() == http::Verb::post &&
      request[http::Field::content_type].starts_with("application/x-www-form-urlencoded")) {
    return true;
  }
  return request.method() == http::Verb::get &&
         (query.starts_with("Action=") || query.find("&Action=") != std::string_view::npos);
}

base::Result<std::string> SqsApi::queue_name(const Call& call) const {
  std::string url = text(call.input, "QueueUrl");
  if (url.empty()) url = call.path;
  const auto slash = url.rfind('/');
  std::string name = slash == std::string::npos ? url : url.substr(slash + 1);
  if (name.empty()) return missing("QueueUrl");
  if (auto s = queues_.queue_exists(name); !s.ok()) return std::move(s).error();
  return name;
}

std::string SqsApi::queue_url(const Call& call, std::string_view name) const {
  return fmt::format("http://{}/{}/{}", call.host, queues_.config().account_id, name);
}

http::asio::awaitable<http::Response> SqsApi::handle(http::Request request) {
  Call call{Protocol::kQuery, {}, json::object(), std::string(request[http::Field::host]), {}};
  if (call.host.empty()) call.host = "localhost";
  const auto [path, raw_query] = http::split_target(request.target());
  call.path = std::string(path);
  const auto target = request["X-Amz-Target"];
  if (target.starts_with(kTargetPrefix)) {
    call.protocol = Protocol::kJson;
    call.action = std::string(target.substr(kTargetPrefix.size()));
    call.input = json::parse(request.body().empty() ? std::string("{}") : request.body(), nullptr, false);
    if (!call.input.is_object()) {
      co_return render(call, make_error(ErrorCode::kInvalidRequestContent, "The request body is not valid JSON."),
                       request.version());
    }
  } else {
    http::Params form = http::parse_query(raw_query);
    if (request.method() == http::Verb::post) {
      for (auto& p : http::parse_query(request.body())) form.push_back(std::move(p));
    }
    call.input = detail::query_to_json(form);
    call.action = text(call.input, "Action");
  }
  Reply reply = make_error(ErrorCode::kService, "internal error");
  try {
    reply = co_await run(call);
  } catch (const std::exception& e) {
    spdlog::error("sqs: {}: {}", call.action, e.what());
  }
  co_return render(call, reply, request.version());
}

http::Response SqsApi::render(const Call& call, const Reply& reply, unsigned version) const {
  const std::string request_id = base::uuid4();
  http::Response res{http::Status::ok, version};
  res.set("x-amzn-RequestId", request_id);
  if (reply.ok()) {
    if (call.protocol == Protocol::kJson) {
      res.set(http::Field::content_type, kJsonContentType);
      res.body() = reply->dump(-1, ' ', false, json::error_handler_t::replace);
    } else {
      res.set(http::Field::content_type, "text/xml");
      res.body() = detail::json_to_query_xml(call.action, *reply, request_id);
    }
    return res;
  }
  const base::Error& e = reply.error();
  const auto& shape = base::sqs_shape_of(e.code);
  res.result(static_cast<http::Status>(shape.http_status));
  const std::string_view fault = shape.sender_fault ? "Sender" : "Receiver";
  if (call.protocol == Protocol::kJson) {
    res.set(http::Field::content_type, kJsonContentType);
    res.set("x-amzn-query-error", fmt::format("{};{}", shape.query_code, fault));
    res.body() = json{{"__type", fmt::format("com.amazonaws.sqs#{}", shape.json_shape)}, {"message", e.message}}
                     .dump(-1, ' ', false, json::error_handler_t::replace);
  } else {
    res.set(http::Field::content_type, "text/xml");
    res.body() = detail::query_error_xml(fault, shape.query_code, e.message, request_id);
  }
  return res;
}

http::Response SqsApi::render_error(const base::Error& error, const http::Request& request) const {
  const bool json_protocol = request["X-Amz-Target"].starts_with(kTargetPrefix);
  Call call{json_protocol ? Protocol::kJson : Protocol::kQuery, "Error", json::object(), {}, {}};
  return render(call, error, request.version());
}

http::asio::awaitable<SqsApi::Reply> SqsApi::run(Call call) {
  const std::string& a = call.action;
  if (a.empty()) co_return missing("Action");
  if (a == "CreateQueue") co_return co_await create_queue(std::move(call));
  if (a == "SendMessage") co_return co_await send_message(std::move(call));
  if (a == "SendMessageBatch") co_return co_await send_message_batch(std::move(call));
  if (a == "ReceiveMessage") co_return co_await receive_message(std::move(call));
  if (a == "DeleteMessageBatch") co_return co_await delete_message_batch(std::move(call));
  if (a == "ChangeMessageVisibilityBatch") co_return co_await change_visibility_batch(std::move(call));
  if (a == "ListQueues") co_return list_queues(call);
  if (a == "GetQueueAttributes") co_return get_queue_attributes(call);
  if (a == "GetQueueUrl" || a == "DeleteQueue" || a == "PurgeQueue" || a == "SetQueueAttributes" ||
      a == "DeleteMessage" || a == "ChangeMessageVisibility") {
    co_return co_await simple(std::move(call));
  }
  co_return make_error(ErrorCode::kInvalidAction,
                       fmt::format("The action {} is not valid for this endpoint.", a));
}

http::asio::awaitable<SqsApi::Reply> SqsApi::create_queue(Call call) {
  const std::string name = text(call.input, "QueueName");
  if (name.empty()) co_return missing("QueueName");
  events::AttributeMap attributes;
  if (const auto it = call.input.find("Attributes"); it != call.input.end() && it->is_object()) {
    for (const auto& [k, v] : it->items()) attributes[k] = v.is_string() ? v.get<std::string>() : v.dump();
  }
  if (auto s = co_await queues_.create_queue(name, std::move(attributes)); !s.ok()) co_return s.error();
  co_return json{{"QueueUrl", queue_url(call, name)}};
}

http::asio::awaitable<SqsApi::Reply> SqsApi::simple(Call call) {
  const std::string& a = call.action;
  if (a == "GetQueueUrl") {
    const std::string name = text(call.input, "QueueName");
    if (name.empty()) co_return missing("QueueName");
    if (auto s = queues_.queue_exists(name); !s.ok()) co_return s.error();
    co_return json{{"QueueUrl", queue_url(call, name)}};
  }
  auto name = queue_name(call);
  if (!name.ok()) co_return std::move(name).error();
  base::Status status = base::Ok{};
  if (a == "DeleteQueue") {
    status = co_await queues_.delete_queue(*name);
  } else if (a == "PurgeQueue") {
    status = co_await queues_.purge(*name);
  } else if (a == "SetQueueAttributes") {
    events::AttributeMap attributes;
    if (const auto it = call.input.find("Attributes"); it != call.input.end() && it->is_object()) {
      for (const auto& [k, v] : it->items()) attributes[k] = v.is_string() ? v.get<std::string>() : v.dump();
    }
    status = co_await queues_.set_attributes(*name, std::move(attributes));
  } else if (a == "DeleteMessage") {
    const std::string handle = text(call.input, "ReceiptHandle");
    if (handle.empty()) co_return missing("ReceiptHandle");
    std::vector<std::string> handles{handle};
    auto results = co_await queues_.delete_messages(*name, std::move(handles));
    status = results.ok() ? results->front() : base::Status(results.error());
  } else {  // ChangeMessageVisibility
    const std::string handle = text(call.input, "ReceiptHandle");
    if (handle.empty()) co_return missing("ReceiptHandle");
    auto timeout = integer(call.input, "VisibilityTimeout");
    if (!timeout.ok()) co_return std::move(timeout).error();
    if (!*timeout) co_return missing("VisibilityTimeout");
    std::vector<events::VisibilityChange> changes{events::VisibilityChange{handle, **timeout}};
    auto results = co_await queues_.change_visibility(*name, std::move(changes));
    status = results.ok() ? results->front() : base::Status(results.error());
  }
  if (!status.ok()) co_return status.error();
  co_return json::object();
}

SqsApi::Reply SqsApi::list_queues(const Call& call) const {
  auto max = integer(call.input, "MaxResults");
  if (!max.ok()) return std::move(max).error();
  if (*max && (**max < 1 || **max > 1000)) {
    return make_error(ErrorCode::kInvalidParameterValue,
                      fmt::format("Value {} for parameter MaxResults is invalid. Reason: MaxResults must be an "
                                  "integer between 1 and 1000.",
                                  **max));
  }
  const std::string token = text(call.input, "NextToken");
  std::string after;
  if (!token.empty()) {
    const auto decoded = base::base64_decode(token);
    if (!decoded) return make_error(ErrorCode::kInvalidParameterValue, "Invalid NextToken value.");
    after = *decoded;
  }
  const std::size_t limit = max->value_or(1000);
  auto names = queues_.list_queues(text(call.input, "QueueNamePrefix"), after, limit + 1);
  json out = json::object();
  const bool more = names.size() > limit;
  if (more) names.pop_back();
  if (!names.empty()) {
    json urls = json::array();
    for (const auto& n : names) urls.push_back(queue_url(call, n));
    out["QueueUrls"] = std::move(urls);
  }
  if (more && *max) out["NextToken"] = base::base64_encode(names.back());
  return out;
}

SqsApi::Reply SqsApi::get_queue_attributes(const Call& call) const {
  auto name = queue_name(call);
  if (!name.ok()) return std::move(name).error();
  auto attrs = queues_.get_attributes(*name, strings(call.input, "AttributeNames"));
  if (!attrs.ok()) return std::move(attrs).error();
  json out = json::object();
  if (!attrs->empty()) out["Attributes"] = *attrs;
  return out;
}

http::asio::awaitable<SqsApi::Reply> SqsApi::send_message(Call call) {
  auto name = queue_name(call);
  if (!name.ok()) co_return std::move(name).error();
  if (!call.input.contains("MessageBody")) co_return missing("MessageBody");
  auto request = send_request(call.input);
  if (!request.ok()) co_return std::move(request).error();
  std::vector<events::SendRequest> requests;
  requests.push_back(std::move(*request));
  auto results = co_await queues_.send(*name, std::move(requests));
  if (!results.ok()) co_return std::move(results).error();
  auto& r = results->front();
  if (!r.ok()) co_return r.error();
  co_return send_result(*r);
}

http::asio::awaitable<SqsApi::Reply> SqsApi::send_message_batch(Call call) {
  auto name = queue_name(call);
  if (!name.ok()) co_return std::move(name).error();
  auto ids = batch_ids(call.input, "SendMessageBatchRequestEntry");
  if (!ids.ok()) co_return std::move(ids).error();
  json failed = json::array();
  std::vector<events::SendRequest> requests;
  std::vector<std::string> request_ids;
  std::size_t total = 0;
  const json& entries = call.input["Entries"];
  for (std::size_t i = 0; i < entries.size(); ++i) {
    auto r = send_request(entries[i]);
    if (!r.ok()) {
      failed.push_back(failed_entry((*ids)[i], r.error()));
      continue;
    }
    total += r->body.size() + events::attributes_size(r->attributes);
    requests.push_back(std::move(*r));
    request_ids.push_back((*ids)[i]);
  }
  if (total > events::kMaxBatchBytes) {
    co_return make_error(ErrorCode::kBatchRequestTooLong,
                         fmt::format("Batch requested message too long. Total size of the batch must be at most "
                                     "{} bytes; it is {}.",
                                     events::kMaxBatchBytes, total));
  }
  auto results = co_await queues_.send(*name, std::move(requests));
  if (!results.ok()) co_return std::move(results).error();
  json successful = json::array();
  for (std::size_t i = 0; i < results->size(); ++i) {
    const auto& r = (*results)[i];
    if (r.ok()) {
      json entry = send_result(*r);
      entry["Id"] = request_ids[i];
      successful.push_back(std::move(entry));
    } else {
      failed.push_back(failed_entry(request_ids[i], r.error()));
    }
  }
  co_return json{{"Successful", std::move(successful)}, {"Failed", std::move(failed)}};
}

http::asio::awaitable<SqsApi::Reply> SqsApi::receive_message(Call call) {
  auto name = queue_name(call);
  if (!name.ok()) co_return std::move(name).error();
  events::ReceiveRequest request;
  auto max = integer(call.input, "MaxNumberOfMessages");
  auto wait = integer(call.input, "WaitTimeSeconds");
  auto visibility = integer(call.input, "VisibilityTimeout");
  for (auto* r : {&max, &wait, &visibility}) {
    if (!r->ok()) co_return std::move(*r).error();
  }
  request.max_messages = static_cast<int>(max->value_or(1));
  request.wait_s = *wait;
  request.visibility_s = *visibility;
  auto system_names = strings(call.input, "AttributeNames");
  for (auto& n : strings(call.input, "MessageSystemAttributeNames")) system_names.push_back(std::move(n));
  const auto attribute_names = strings(call.input, "MessageAttributeNames");
  auto messages = co_await queues_.receive(*name, request);
  if (!messages.ok()) co_return std::move(messages).error();
  json out = json::object();
  if (messages->empty()) co_return out;
  json list = json::array();
  const bool all_system = std::find(system_names.begin(), system_names.end(), "All") != system_names.end();
  for (const auto& m : *messages) {
    json msg = {{"MessageId", m.message_id},
                {"ReceiptHandle", m.receipt_handle},
                {"MD5OfBody", m.md5_of_body},
                {"Body", m.body}};
    json sys = json::object();
    for (const auto& [k, v] : m.system_attributes) {
      if (all_system || std::find(system_names.begin(), system_names.end(), k) != system_names.end()) sys[k] = v;
    }
    if (!sys.empty()) msg["Attributes"] = std::move(sys);
    events::MessageAttributeMap chosen;
    for (const auto& [k, v] : m.attributes) {
      if (selected(attribute_names, k)) chosen.emplace(k, v);
    }
    if (!chosen.empty()) {
      json attrs = json::object();
      for (const auto& [k, v] : chosen) {
        attrs[k] = v.binary() ? json{{"DataType", v.data_type}, {"BinaryValue", base::base64_encode(v.value)}}
                              : json{{"DataType", v.data_type}, {"StringValue", v.value}};
      }
      msg["MessageAttributes"] = std::move(attrs);
      msg["MD5OfMessageAttributes"] = events::md5_of_attributes(chosen);
    }
    list.push_back(std::move(msg));
  }
  out["Messages"] = std::move(list);
  co_return out;
}

http::asio::awaitable<SqsApi::Reply> SqsApi::delete_message_batch(Call call) {
  auto name = queue_name(call);
  if (!name.ok()) co_return std::move(name).error();
  auto ids = batch_ids(call.input, "DeleteMessageBatchRequestEntry");
  if (!ids.ok()) co_return std::move(ids).error();
  std::vector<std::string> handles;
  for (const auto& e : call.input["Entries"]) handles.push_back(text(e, "ReceiptHandle"));
  auto results = co_await queues_.delete_messages(*name, handles);
  if (!results.ok()) co_return std::move(results).error();
  json successful = json::array();
  json failed = json::array();
  for (std::size_t i = 0; i < results->size(); ++i) {
    if ((*results)[i].ok()) {
      successful.push_back(json{{"Id", (*ids)[i]}});
    } else {
      failed.push_back(failed_entry((*ids)[i], (*results)[i].error()));
    }
  }
  co_return json{{"Successful", std::move(successful)}, {"Failed", std::move(failed)}};
}

http::asio::awaitable<SqsApi::Reply> SqsApi::change_visibility_batch(Call call) {
  auto name = queue_name(call);
  if (!name.ok()) co_return std::move(name).error();
  auto ids = batch_ids(call.input, "ChangeMessageVisibilityBatchRequestEntry");
  if (!ids.ok()) co_return std::move(ids).error();
  std::vector<events::VisibilityChange> changes;
  json failed = json::array();
  std::vector<std::string> change_ids;
  const json& entries = call.input["Entries"];
  for (std::size_t i = 0; i < entries.size(); ++i) {
    auto timeout = integer(entries[i], "VisibilityTimeout");
    if (!timeout.ok() || !*timeout) {
      failed.push_back(failed_entry((*ids)[i], timeout.ok() ? missing("VisibilityTimeout") : timeout.error()));
      continue;
    }
    changes.push_back(events::VisibilityChange{text(entries[i], "ReceiptHandle"), **timeout});
    change_ids.push_back((*ids)[i]);
  }
  auto results = co_await queues_.change_visibility(*name, std::move(changes));
  if (!results.ok()) co_return std::move(results).error();
  json successful = json::array();
  for (std::size_t i = 0; i < results->size(); ++i) {
    if ((*results)[i].ok()) {
      successful.push_back(json{{"Id", change_ids[i]}});
    } else {
      failed.push_back(failed_entry(change_ids[i], (*results)[i].error()));
    }
  }
  co_return json{{"Successful", std::move(successful)}, {"Failed", std::move(failed)}};
}

}  // namespace nimbus::api
