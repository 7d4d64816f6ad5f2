#pragma once
// RuntimeApi: the Lambda Runtime API (/2018-06-01/runtime/...) that code
// inside instances talks to. Every instance gets its own listening port on
// 127.0.0.1 (its AWS_LAMBDA_RUNTIME_API); a request on that port can only
// reach that instance's RuntimeSession. When instances run under their own
// uids, a connection is also accepted only if the kernel says the connecting
// socket belongs to the instance's uid (sock_diag), so no other process — not
// another instance, not another function — can fetch or answer its events.
//
// Threads: open()/close() from any thread; requests are served on the
// executor's threads. Owned by the daemon; outlives every session it opened.

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "http/server.h"
#include "runtime_api/session.h"

namespace nimbus::runtime_api {

struct RuntimeApiConfig {
  std::string host = "127.0.0.1";
  // Responses above kMaxResponseBytes are refused by the session (413); this
  // bounds what the listener reads at all.
  std::uint64_t body_limit = 32ull << 20;
  // Optional: where each instance's connection runs (http::ServerConfig's).
  std::function<http::asio::any_io_executor()> connection_executor;
};

struct OpenedSession {
  std::uint64_t id;                          // pass back to close()
  std::uint16_t port;                        // AWS_LAMBDA_RUNTIME_API = host:port
  std::shared_ptr<RuntimeSession> session;
};

class RuntimeApi {
 public:
  RuntimeApi(http::asio::any_io_executor executor, RuntimeApiConfig config);
  ~RuntimeApi();

  // A new session with its own listener. `expected_uid`: only sockets owned
  // by this uid may connect (nullopt: anyone on this host — degraded mode).
  [[nodiscard]] base::Result<OpenedSession> open(std::optional<unsigned> expected_uid);
  // A new session on a listening socket opened elsewhere (inside the
  // instance's own network namespace, where only the instance can connect);
  // takes ownership of `listen_fd`. `port` is 0.
  [[nodiscard]] base::Result<OpenedSession> adopt(int listen_fd);
  // Closes the listener and its connections, fails the session.
  void close(std::uint64_t id);
  void stop();

  [[nodiscard]] const std::string& host() const { return config_.host; }
  // Connections refused because the peer was not the instance (a metric).
  [[nodiscard]] std::uint64_t rejected_peers() const { return rejected_.load(); }

 private:
  struct Entry {
    std::shared_ptr<RuntimeSession> session;
    std::optional<unsigned> uid;
  };
  http::asio::awaitable<http::Response> handle(http::Request request, http::RequestContext context);
  bool accept_peer(std::uint64_t id, const http::asio::ip::tcp::endpoint& local,
                   const http::asio::ip::tcp::endpoint& peer);
  std::shared_ptr<RuntimeSession> find(std::uint64_t id);

  http::asio::any_io_executor executor_;
  RuntimeApiConfig config_;
  std::unique_ptr<http::Server> server_;
  std::mutex mu_;
  std::unordered_map<std::uint64_t, Entry> sessions_;  // GUARDED_BY(mu_)
  std::uint64_t next_id_ = 1;                           // GUARDED_BY(mu_)
  std::atomic<std::uint64_t> rejected_{0};
};

}  // namespace nimbus::runtime_api
