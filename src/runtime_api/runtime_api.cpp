#include "runtime_api/runtime_api.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
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

std::optional<unsigned> socket_owner_uid(const asio::ip::tcp::endpoint& local, const asio::ip::tcp::endpoint& peer) {
  if (!local.address().is_v4() || !peer.address().is_v4()) return std::nullopt;
  const int fd = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return std::nullopt;
  struct {
    nlmsghdr header;
    inet_diag_req_v2 request;
  } message{};
  message.header.nlmsg_len = sizeof message;
  message.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  message.header.nlmsg_flags = NLM_F_REQUEST;
  message.request.sdiag_family = AF_INET;
  message.request.sdiag_protocol = IPPROTO_TCP;
  message.request.idiag_states = ~0u;
  // The connecting socket: its source is the peer, its destination us.
  message.request.id.idiag_sport = htons(peer.port());
  message.request.id.idiag_dport = htons(local.port());
  const auto src = peer.address().to_v4().to_bytes();
  const auto dst = local.address().to_v4().to_bytes();
  std::memcpy(&message.request.id.idiag_src[0], src.data(), 4);
  std::memcpy(&message.request.id.idiag_dst[0], dst.data(), 4);
  message.request.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  message.request.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  std::optional<unsigned> uid;
  if (::sendto(fd, &message, sizeof message, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) ==
      static_cast<ssize_t>(sizeof message)) {
    alignas(nlmsghdr) char buffer[8192];
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    // The answer to an exact match is one message (or an error).
    if (n >= static_cast<ssize_t>(sizeof(nlmsghdr))) {
      const auto* h = reinterpret_cast<const nlmsghdr*>(buffer);
      if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY && h->nlmsg_len <= static_cast<std::size_t>(n) &&
          h->nlmsg_len >= NLMSG_LENGTH(sizeof(inet_diag_msg))) {
        const auto* diag = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
        uid = diag->idiag_uid;
      }
    }
  }
  ::close(fd);
  return uid;
}

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
  const auto owner = socket_owner_uid(local, peer);
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
