#include "runtime_api/runtime_api.h"

#include "http/peer.h"

#include <unistd.h>

#include <cstring>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace nimbus::runtime_api {

namespace asio = http::asio;

namespace {
constexpr std::string_view kPrefix = "/2018-06-01/runtime/";

http::Response not_found(unsigned version, std::string_view path) {
  http::Response res{http::Status::not_found, version};
  res.set(http::Field::content_type, "application/json");
  res.body() = nlohmann::json{{"errorType", "InvalidRequest"},
                              {"errorMessage", "no such Runtime API path: " + std::string(path)}}
                   .dump();
  return res;
}
}  // namespace

RuntimeApi::RuntimeApi(asio::any_io_executor executor, RuntimeApiConfig config)
    : executor_(std::move(executor)), config_(std::move(config)) {
  http::ServerConfig server_config;
  server_config.host = config_.host;
  server_config.body_limit = config_.body_limit;
  server_config.idle_timeout = std::chrono::hours(24);  // /next may wait for hours
  server_config.name = "runtime-api";
  // A runtime that sends its result and its next /next in one write gets the
  // 202 with the next event: one wakeup per invocation instead of two.
  server_config.hold_answers_to_pipelined = true;
  server_config.connection_executor = config_.connection_executor;
  server_config.accept_filter = [this](std::uint64_t id, const asio::ip::tcp::endpoint& local,
                                       const asio::ip::tcp::endpoint& peer) {
    return accept_peer(id, local, peer);
  };
  server_ = std::make_unique<http::Server>(
      executor_, server_config,
      [this](http::Request r, http::RequestContext c) { return handle(std::move(r), c); },
      [](const base::Error& e, unsigned version) {
        http::Response res{e.code == base::ErrorCode::kRequestTooLarge ? http::Status::payload_too_large
                                                                        : http::Status::internal_server_error,
                           version};
        res.set(http::Field::content_type, "application/json");
        res.body() = nlohmann::json{{"errorType", "RequestEntityTooLarge"}, {"errorMessage", e.message}}.dump();
        return res;
      });
}

RuntimeApi::~RuntimeApi() { stop(); }

void RuntimeApi::stop() {
  if (server_) server_->stop();
  std::lock_guard lock(mu_);
  for (auto& [id, entry] : sessions_) entry.session->fail();
}

base::Result<OpenedSession> RuntimeApi::open(std::optional<unsigned> expected_uid) {
  auto session = std::make_shared<RuntimeSession>();
  std::uint64_t id;
  {
    std::lock_guard lock(mu_);
    id = next_id_++;
    sessions_[id] = Entry{session, expected_uid};
  }
  auto endpoint = server_->add_listener(config_.host, 0, id);
  if (!endpoint.ok()) {
    std::lock_guard lock(mu_);
    sessions_.erase(id);
    return std::move(endpoint).error();
  }
  return OpenedSession{id, endpoint->port(), std::move(session)};
}

base::Result<OpenedSession> RuntimeApi::adopt(int listen_fd) {
  auto session = std::make_shared<RuntimeSession>();
  std::uint64_t id;
  {
    std::lock_guard lock(mu_);
    id = next_id_++;
    sessions_[id] = Entry{session, std::nullopt};  // the namespace is the boundary
  }
  if (auto adopted = server_->adopt_listener(listen_fd, id); !adopted.ok()) {
    std::lock_guard lock(mu_);
    sessions_.erase(id);
    return std::move(adopted).error();
  }
  return OpenedSession{id, 0, std::move(session)};
}

void RuntimeApi::close(std::uint64_t id) {
  std::shared_ptr<RuntimeSession> session;
  {
    std::lock_guard lock(mu_);
    const auto it = sessions_.find(id);
    if (it == sessions_.end()) return;
    session = it->second.session;
    sessions_.erase(it);
  }
  session->fail();
  server_->remove_listener(id);
}

bool RuntimeApi::accept_peer(std::uint64_t id, const asio::ip::tcp::endpoint& local,
                             const asio::ip::tcp::endpoint& peer) {
  std::optional<unsigned> expected;
  {
    std::lock_guard lock(mu_);
    const auto it = sessions_.find(id);
    if (it == sessions_.end()) return false;
    expected = it->second.uid;
  }
  if (!expected) return true;
  const auto owner = http::socket_owner_uid(local, peer);
  if (owner && *owner == *expected) return true;
  rejected_.fetch_add(1);
  spdlog::warn("runtime-api: refused a connection to instance listener {} from {} (uid {}, expected {})", id,
               peer.port(), owner ? std::to_string(*owner) : "unknown", *expected);
  return false;
}

std::shared_ptr<RuntimeSession> RuntimeApi::find(std::uint64_t id) {
  std::lock_guard lock(mu_);
  const auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second.session;
}

asio::awaitable<http::Response> RuntimeApi::handle(http::Request request, http::RequestContext context) {
  const unsigned version = request.version();
  auto session = find(context.listener);
  const auto [path, query] = http::split_target(request.target());
  if (!session) co_return not_found(version, path);
  if (!path.starts_with(kPrefix)) co_return not_found(version, path);
  const std::string_view rest = path.substr(kPrefix.size());
  const auto method = request.method();
  if (method == http::Verb::get && rest == "invocation/next") co_return co_await session->next(version);
  if (method == http::Verb::post && rest == "init/error") {
    co_return session->post_init_error(std::move(request));
  }
  constexpr std::string_view kInvocation = "invocation/";
  if (method == http::Verb::post && rest.starts_with(kInvocation)) {
    const std::string_view tail = rest.substr(kInvocation.size());
    const auto slash = tail.find('/');
    if (slash != std::string_view::npos) {
      std::string id(tail.substr(0, slash));
      const std::string_view what = tail.substr(slash + 1);
      if (what == "response") co_return session->post_response(id, std::move(request));
      if (what == "error") co_return session->post_error(id, std::move(request));
    }
  }
  co_return not_found(version, path);
}

}  // namespace nimbus::runtime_api
