#pragma once
// SqsApi: the SQS-compatible API on the control port, in both wire protocols
// real clients use — the JSON protocol (X-Amz-Target: AmazonSQS.<Action>,
// application/x-amz-json-1.0; current SDKs) and the query protocol (form
// POST Action=..., XML answers; awscli 2.9 / boto3 1.26). Requests are
// translated to events::QueueService calls; errors use each protocol's shape
// from base's SQS error table. Holds no state beyond its references.
//
// LambdaApi hands it the requests claims() accepts, after verifying SigV4 for
// service "sqs". Threads: handle() is a coroutine on the control listener's
// executor, re-entrant. Owned by the daemon; the service outlives it.

#include <string>

#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include "base/result.h"
#include "events/queue_service.h"
#include "http/types.h"

namespace nimbus::api {

class SqsApi {
 public:
  explicit SqsApi(events::QueueService& queues);

  // Whether `request` is an SQS request: an X-Amz-Target of AmazonSQS.*, or a
  // form-encoded POST / a GET carrying Action=.
  [[nodiscard]] static bool claims(const http::Request& request);
  [[nodiscard]] http::asio::awaitable<http::Response> handle(http::Request request);
  // An error in the request's protocol (auth failures found before handle()).
  [[nodiscard]] http::Response render_error(const base::Error& error, const http::Request& request) const;

 private:
  enum class Protocol { kJson, kQuery };
  struct Call {
    Protocol protocol;
    std::string action;
    nlohmann::json input;
    std::string host;
    std::string path;  // the request path (queue URL path for the query protocol)
  };
  using Reply = base::Result<nlohmann::json>;

  http::asio::awaitable<Reply> run(Call call);
  http::Response render(const Call& call, const Reply& reply, unsigned version) const;
  [[nodiscard]] base::Result<std::string> queue_name(const Call& call) const;
  [[nodiscard]] std::string queue_url(const Call& call, std::string_view name) const;

  http::asio::awaitable<Reply> create_queue(Call call);
  http::asio::awaitable<Reply> send_message(Call call);
  http::asio::awaitable<Reply> send_message_batch(Call call);
  http::asio::awaitable<Reply> receive_message(Call call);
  http::asio::awaitable<Reply> delete_message_batch(Call call);
  http::asio::awaitable<Reply> change_visibility_batch(Call call);
  http::asio::awaitable<Reply> simple(Call call);
  Reply list_queues(const Call& call) const;
  Reply get_queue_attributes(const Call& call) const;

  events::QueueService& queues_;
};

}  // namespace nimbus::api
