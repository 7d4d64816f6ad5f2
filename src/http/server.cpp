#include "http/server.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_range.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <fcntl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>
#include <tuple>
#include <unistd.h>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <spdlog/spdlog.h>

#include "http/detail/awaitable.h"
#include "http/peer.h"

namespace nimbus::http {

namespace {
using detail::kUseTuple;

// Room each connection's read buffer starts with. Beast reads what the
// buffer's free capacity holds (512 bytes at least), so a buffer that starts
// empty takes a 1 kB request in three reads; with this, one read takes a
// typical request whole (a runtime's result with its pipelined /next, an API
// call), at 4 kB per open connection.
constexpr std::size_t kReadBufferBytes = 4096;

// How long the accept loop waits after the process or the system ran out of
// descriptors: doubling from the first to the last, back to the first after
// an accept succeeds.
constexpr std::chrono::milliseconds kFirstAcceptBackoff{5};
constexpr std::chrono::milliseconds kLastAcceptBackoff{500};
// At most one log line per this interval for failing accepts, with a count.
constexpr std::chrono::seconds kAcceptLogInterval{10};

bool out_of_descriptors(const boost::system::error_code& ec) {
  return ec == boost::system::errc::too_many_files_open ||
         ec == boost::system::errc::too_many_files_open_in_system ||
         ec == boost::system::errc::no_buffer_space || ec == boost::system::errc::not_enough_memory;
}

// Who a connection comes from, as the connection limits see it.
struct Client {
  std::string key;     // what it counts against in max_connections_per_client
  bool guest = false;  // a function instance (ServerConfig::guest_uids)
};

Client client_of(const ServerConfig& config, const asio::ip::tcp::endpoint& local,
                 const asio::ip::tcp::endpoint& peer) {
  Client client{peer.address().to_string()};
  if (config.client_key == ClientKey::kAddressAndLocalUid && peer.address().is_loopback()) {
    if (const auto uid = socket_owner_uid(local, peer)) {
      client.key += "/uid=" + std::to_string(*uid);
      client.guest = *uid >= config.guest_uids.first && *uid - config.guest_uids.first < config.guest_uids.count;
    }
  }
  return client;
}

// A read failed because the client sent something that is not HTTP (or too
// much of it), not because the connection closed or timed out.
bool malformed(const boost::system::error_code& ec) {
  return ec.category() == beast::http::make_error_code(beast::http::error::bad_method).category() &&
         ec != beast::http::error::end_of_stream && ec != beast::http::error::partial_message;
}

// Appends `response` as it goes on the wire, head and body.
void append_wire(std::string& out, Response& response) {
  beast::http::serializer<false, beast::http::string_body> serializer{response};
  boost::system::error_code ec;
  while (!ec && !serializer.is_done()) {
    serializer.next(ec, [&](boost::system::error_code&, const auto& buffers) {
      for (const auto piece : beast::buffers_range_ref(buffers)) {
        out.append(static_cast<const char*>(piece.data()), piece.size());
      }
      serializer.consume(beast::buffer_bytes(buffers));
    });
  }
}

// Writes the answers a connection held back (hold_answers_to_pipelined), if any.
template <class Stream>
asio::awaitable<boost::system::error_code> write_held(Stream& stream, std::string& held) {
  if (held.empty()) co_return boost::system::error_code{};
  auto [ec, n] = co_await asio::async_write(stream, asio::buffer(held), kUseTuple);
  held.clear();
  co_return ec;
}

// Never asks for a passphrase (OpenSSL's default would prompt on the terminal).
int no_passphrase(char*, int, int, void*) { return 0; }

// "" when `path` can be opened for reading, else why not.
std::string unreadable(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return std::strerror(errno);
  std::fclose(f);
  return {};
}

// A server context for TLS 1.2+ with the chain and key of `files`; errors
// name the file and what is wrong with it.
base::Result<std::shared_ptr<asio::ssl::context>> load_tls_context(const TlsFiles& files) {
  const auto fail = [](std::string message) {
    ERR_clear_error();
    return base::make_error(base::ErrorCode::kInvalidParameterValue, std::move(message));
  };
  if (files.cert_file.empty() || files.key_file.empty()) {
    return fail("TLS needs both a certificate file and a key file");
  }
  if (auto why = unreadable(files.cert_file); !why.empty()) {
    return fail("TLS certificate " + files.cert_file + ": cannot read it (" + why + ")");
  }
  if (auto why = unreadable(files.key_file); !why.empty()) {
    return fail("TLS key " + files.key_file + ": cannot read it (" + why + ")");
  }
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1 |
                   asio::ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_default_passwd_cb(native, no_passphrase);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(files.cert_file, ec);
  if (ec) return fail("TLS certificate " + files.cert_file + ": not a PEM certificate (" + ec.message() + ")");
  std::FILE* f = std::fopen(files.key_file.c_str(), "rb");
  EVP_PKEY* key = f == nullptr ? nullptr : PEM_read_PrivateKey(f, nullptr, no_passphrase, nullptr);
  if (f != nullptr) std::fclose(f);
  if (key == nullptr) {
    return fail("TLS key " + files.key_file + ": not an unencrypted PEM private key");
  }
  const bool matches = SSL_CTX_use_PrivateKey(native, key) == 1 && SSL_CTX_check_private_key(native) == 1;
  EVP_PKEY_free(key);
  if (!matches) {
    return fail("TLS key " + files.key_file + " does not match the certificate " + files.cert_file);
  }
  return ctx;
}
}  // namespace

// Connections and listeners of a Server (this file only).
namespace server_internal {

using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using AnyStream = std::variant<beast::tcp_stream, TlsStream>;

inline AnyStream make_stream(asio::ip::tcp::socket s, asio::ssl::context* tls) {
  if (tls != nullptr) return AnyStream(std::in_place_index<1>, std::move(s), *tls);
  return AnyStream(std::in_place_index<0>, std::move(s));
}

struct Connection {
  Connection(asio::ip::tcp::socket s, std::uint64_t tag, asio::ip::tcp::endpoint from,
             std::shared_ptr<asio::ssl::context> context)
      : tls(std::move(context)), stream(make_stream(std::move(s), tls.get())), listener(tag), peer(std::move(from)) {}
  // The transport under either kind of stream (timeouts, cancel, close).
  beast::tcp_stream& tcp() {
    return std::visit([](auto& s) -> beast::tcp_stream& { return beast::get_lowest_layer(s); }, stream);
  }
  std::shared_ptr<asio::ssl::context> tls;  // outlives the TLS stream made with it
  AnyStream stream;
  std::uint64_t listener;
  asio::ip::tcp::endpoint peer;
  std::string client;  // what it counts against in max_connections_per_client
  bool guest = false;  // counts against max_guest_connections instead of max_connections
  std::atomic<bool> busy{false};
};

struct Listener {
  Listener(asio::any_io_executor ex, std::uint64_t t) : acceptor(asio::make_strand(ex)), tag(t) {}
  asio::ip::tcp::acceptor acceptor;
  std::uint64_t tag;
};

}  // namespace server_internal

using server_internal::Connection;
using server_internal::Listener;
using server_internal::TlsStream;

struct Server::Core : std::enable_shared_from_this<Core> {
  Core(asio::any_io_executor executor, ServerConfig config, Handler handler, ErrorRenderer render_error)
      : executor_(std::move(executor)),
        config_(std::move(config)),
        handler_(std::move(handler)),
        render_error_(std::move(render_error)) {}

  base::Result<std::shared_ptr<Listener>> bind(const std::string& host, std::uint16_t port, std::uint64_t tag);
  base::Result<asio::ip::tcp::endpoint> listen();
  void start();
  base::Result<asio::ip::tcp::endpoint> add_listener(const std::string& host, std::uint16_t port, std::uint64_t tag);
  void remove_listener(std::uint64_t tag);
  base::Status adopt_listener(int fd, std::uint64_t tag);
  void start_accepting(std::shared_ptr<Listener> listener);
  asio::awaitable<void> accept_loop(std::shared_ptr<Core> self, std::shared_ptr<Listener> listener);
  bool admit(asio::ip::tcp::socket& socket, const std::shared_ptr<Connection>& conn);
  void forget(const std::shared_ptr<Connection>& conn);
  void refuse(asio::ip::tcp::socket& socket, Refusal why, const std::string& client);
  asio::awaitable<void> back_off_accepting(Listener& listener, const boost::system::error_code& ec,
                                           std::chrono::milliseconds& backoff);
  asio::awaitable<void> serve(std::shared_ptr<Core> self, std::shared_ptr<Connection> conn);
  template <class Stream>
  asio::awaitable<void> serve_on(std::shared_ptr<Core> self, std::shared_ptr<Connection> conn, Stream& stream);
  template <class Stream>
  asio::awaitable<void> close_on(Connection& conn, Stream& stream);
  base::Status reload_tls();
  std::shared_ptr<asio::ssl::context> tls_context();
  void stop();
  bool drain(std::chrono::milliseconds deadline);

  asio::any_io_executor executor_;
  ServerConfig config_;
  Handler handler_;
  ErrorRenderer render_error_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> in_flight_{0};
  std::atomic<std::uint64_t> served_{0};
  std::atomic<std::uint64_t> handshake_failures_{0};
  std::mutex mu_;
  std::shared_ptr<asio::ssl::context> tls_;                                  // GUARDED_BY(mu_); null: plain
  std::unordered_set<std::shared_ptr<Connection>> connections_;             // GUARDED_BY(mu_)
  std::unordered_map<std::uint64_t, std::shared_ptr<Listener>> listeners_;  // GUARDED_BY(mu_)
  std::unordered_map<std::string, std::size_t> clients_;                     // GUARDED_BY(mu_): open per client
  std::size_t guests_ = 0;                                                   // GUARDED_BY(mu_): open guest connections
  std::atomic<std::uint64_t> body_bytes_{0};  // counted bodies being read or handled (max_body_bytes_in_flight)
  // A descriptor held in reserve: when accepts fail for want of descriptors,
  // it is given up for a moment to take one waiting connection off the
  // backlog and close it, so clients are refused instead of left hanging.
  std::atomic<int> spare_fd_{-1};
  // Failed accepts since the last log line about them, and when that was.
  std::mutex log_mu_;
  std::uint64_t accept_failures_ = 0;                         // GUARDED_BY(log_mu_)
  std::chrono::steady_clock::time_point accept_logged_{};     // GUARDED_BY(log_mu_)
};

Server::Server(asio::any_io_executor executor, ServerConfig config, Handler handler, ErrorRenderer render_error)
    : core_(std::make_shared<Core>(std::move(executor), std::move(config), std::move(handler),
                                   std::move(render_error))) {}

Server::~Server() {
  core_->stop();
  if (const int fd = core_->spare_fd_.exchange(-1); fd >= 0) ::close(fd);
}

std::string_view to_string(Refusal refusal) {
  switch (refusal) {
    case Refusal::kServerFull: return "server_full";
    case Refusal::kClientFull: return "client_full";
    case Refusal::kNoDescriptors: return "no_descriptors";
  }
  return "unknown";
}

base::Result<asio::ip::tcp::endpoint> Server::listen() { return core_->listen(); }
void Server::start() { core_->start(); }
base::Result<asio::ip::tcp::endpoint> Server::add_listener(const std::string& host, std::uint16_t port,
                                                           std::uint64_t tag) {
  return core_->add_listener(host, port, tag);
}
void Server::remove_listener(std::uint64_t tag) { core_->remove_listener(tag); }
base::Status Server::adopt_listener(int fd, std::uint64_t tag) { return core_->adopt_listener(fd, tag); }
void Server::stop() { core_->stop(); }
bool Server::drain(std::chrono::milliseconds deadline) { return core_->drain(deadline); }
std::uint64_t Server::requests_served() const { return core_->served_.load(); }
std::size_t Server::open_connections() const {
  std::lock_guard lock(core_->mu_);
  return core_->connections_.size();
}
base::Status Server::reload_tls() { return core_->reload_tls(); }
std::uint64_t Server::tls_handshake_failures() const { return core_->handshake_failures_.load(); }

base::Status Server::Core::reload_tls() {
  if (!config_.tls) return base::Ok{};
  auto ctx = load_tls_context(*config_.tls);
  if (!ctx.ok()) return std::move(ctx).error();
  std::lock_guard lock(mu_);
  tls_ = std::move(*ctx);
  return base::Ok{};
}

std::shared_ptr<asio::ssl::context> Server::Core::tls_context() {
  std::lock_guard lock(mu_);
  return tls_;
}

base::Result<std::shared_ptr<Listener>> Server::Core::bind(const std::string& host, std::uint16_t port,
                                                             std::uint64_t tag) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) {
    return base::make_error(base::ErrorCode::kInvalidParameterValue,
                            "invalid listen address '" + host + "': " + ec.message());
  }
  auto listener = std::make_shared<Listener>(executor_, tag);
  auto& acceptor = listener->acceptor;
  const asio::ip::tcp::endpoint endpoint(address, port);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return base::make_error(base::ErrorCode::kService, "listen on " + host + ":" + std::to_string(port) +
                                                           " (" + config_.name + "): " + ec.message());
  }
  std::lock_guard lock(mu_);
  listeners_[tag] = listener;
  return listener;
}

base::Result<asio::ip::tcp::endpoint> Server::Core::listen() {
  NIMBUS_TRY(reload_tls());
  auto listener = bind(config_.host, config_.port, 0);
  if (!listener.ok()) return std::move(listener).error();
  return (*listener)->acceptor.local_endpoint();
}

void Server::Core::start() {
  std::shared_ptr<Listener> main;
  {
    std::lock_guard lock(mu_);
    const auto it = listeners_.find(0);
    if (it == listeners_.end()) return;
    main = it->second;
  }
  start_accepting(std::move(main));
}

base::Result<asio::ip::tcp::endpoint> Server::Core::add_listener(const std::string& host, std::uint16_t port,
                                                                 std::uint64_t tag) {
  auto listener = bind(host, port, tag);
  if (!listener.ok()) return std::move(listener).error();
  auto endpoint = (*listener)->acceptor.local_endpoint();
  start_accepting(std::move(*listener));
  return endpoint;
}

base::Status Server::Core::adopt_listener(int fd, std::uint64_t tag) {
  auto listener = std::make_shared<Listener>(executor_, tag);
  boost::system::error_code ec;
  listener->acceptor.assign(asio::ip::tcp::v4(), fd, ec);
  if (ec) {
    ::close(fd);
    return base::make_error(base::ErrorCode::kService, "adopt listening socket (" + config_.name + "): " + ec.message());
  }
  {
    std::lock_guard lock(mu_);
    listeners_[tag] = listener;
  }
  start_accepting(std::move(listener));
  return base::Ok{};
}

void Server::Core::remove_listener(std::uint64_t tag) {
  std::lock_guard lock(mu_);
  if (const auto it = listeners_.find(tag); it != listeners_.end()) {
    auto listener = it->second;
    asio::post(listener->acceptor.get_executor(), [listener] {
      boost::system::error_code ignored;
      listener->acceptor.close(ignored);
    });
    listeners_.erase(it);
  }
  for (const auto& conn : connections_) {
    if (conn->listener != tag) continue;
    asio::post(conn->tcp().get_executor(), [conn] { conn->tcp().socket().close(); });
  }
}

void Server::Core::start_accepting(std::shared_ptr<Listener> listener) {
  if (spare_fd_.load() < 0) {
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    int none = -1;
    if (fd >= 0 && !spare_fd_.compare_exchange_strong(none, fd)) ::close(fd);
  }
  auto executor = listener->acceptor.get_executor();
  asio::co_spawn(executor, accept_loop(shared_from_this(), std::move(listener)), [name = config_.name](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("{}: accept loop ended: {}", name, ex.what());
    }
  });
}

asio::awaitable<void> Server::Core::accept_loop(std::shared_ptr<Core> self, std::shared_ptr<Listener> listener) {
  std::chrono::milliseconds backoff = kFirstAcceptBackoff;
  while (!stopping_) {
    const asio::any_io_executor home =
        config_.connection_executor ? config_.connection_executor() : asio::make_strand(executor_);
    auto [ec, socket] = co_await listener->acceptor.async_accept(home, kUseTuple);
    if (ec) {
      if (stopping_ || ec == asio::error::operation_aborted || !listener->acceptor.is_open()) break;
      co_await back_off_accepting(*listener, ec, backoff);
      continue;  // keep serving the connections we have
    }
    backoff = kFirstAcceptBackoff;
    auto peer = socket.remote_endpoint(ec);
    const auto local = socket.local_endpoint(ec);
    if (config_.accept_filter && !config_.accept_filter(listener->tag, local, peer)) {
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    socket.set_option(asio::ip::tcp::no_delay(true), ec);
    Client client;
    if (config_.max_connections_per_client > 0 || config_.max_guest_connections > 0) {
      client = client_of(config_, local, peer);
    }
    auto conn = std::make_shared<Connection>(std::move(socket), listener->tag, peer, tls_context());
    conn->client = std::move(client.key);
    conn->guest = client.guest;
    if (!admit(conn->tcp().socket(), conn)) continue;
    asio::co_spawn(conn->tcp().get_executor(), serve(self, conn), [self, conn, name = config_.name](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          spdlog::warn("{}: connection ended: {}", name, ex.what());
        }
      }
      self->forget(conn);
    });
  }
}

// Counts `conn` as open, or refuses it when a limit is reached.
bool Server::Core::admit(asio::ip::tcp::socket& socket, const std::shared_ptr<Connection>& conn) {
  std::optional<Refusal> refused;
  {
    std::lock_guard lock(mu_);
    const std::size_t open = conn->guest ? guests_ : connections_.size() - guests_;
    const std::size_t cap = conn->guest ? config_.max_guest_connections : config_.max_connections;
    if (cap > 0 && open >= cap) {
      refused = Refusal::kServerFull;
    } else if (config_.max_connections_per_client > 0 &&
               clients_[conn->client] >= config_.max_connections_per_client) {
      refused = Refusal::kClientFull;
    } else {
      connections_.insert(conn);
      if (conn->guest) ++guests_;
      if (config_.max_connections_per_client > 0) ++clients_[conn->client];
    }
  }
  if (!refused) return true;
  refuse(socket, *refused, conn->client);
  return false;
}

void Server::Core::forget(const std::shared_ptr<Connection>& conn) {
  std::lock_guard lock(mu_);
  if (connections_.erase(conn) == 0) return;
  if (conn->guest) --guests_;
  if (config_.max_connections_per_client == 0) return;
  if (const auto it = clients_.find(conn->client); it != clients_.end() && --it->second == 0) clients_.erase(it);
}

// Answers a refused connection in one non-blocking write, then closes it.
void Server::Core::refuse(asio::ip::tcp::socket& socket, Refusal why, const std::string& client) {
  if (config_.on_connection_refused) config_.on_connection_refused(why);
  if (why != Refusal::kNoDescriptors) {
    const bool server_full = why == Refusal::kServerFull;
    Response answer = render_error_(
        base::Error{base::ErrorCode::kTooManyRequests,
                    server_full ? "The server has too many open connections; try again later"
                                : "Too many open connections from " + client + " (at most " +
                                      std::to_string(config_.max_connections_per_client) + ")"},
        11);
    answer.result(server_full ? Status::service_unavailable : Status::too_many_requests);
    answer.keep_alive(false);
    answer.prepare_payload();
    std::string wire;
    append_wire(wire, answer);
    [[maybe_unused]] const auto sent =
        ::send(socket.native_handle(), wire.data(), wire.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  }
  boost::system::error_code ignored;
  socket.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

// After a failed accept: when descriptors ran out, takes one waiting
// connection off the backlog with the spare descriptor and closes it; then
// waits (doubling up to kLastAcceptBackoff) so a full process does not spin.
// Logs at most once per kAcceptLogInterval, with the count since the last line.
asio::awaitable<void> Server::Core::back_off_accepting(Listener& listener, const boost::system::error_code& ec,
                                                       std::chrono::milliseconds& backoff) {
  const bool no_descriptors = out_of_descriptors(ec);
  if (no_descriptors) {
    if (const int spare = spare_fd_.exchange(-1); spare >= 0) {
      ::close(spare);
      const int shed = ::accept4(listener.acceptor.native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (shed >= 0) {
        if (config_.on_connection_refused) config_.on_connection_refused(Refusal::kNoDescriptors);
        ::close(shed);
      }
      const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      int none = -1;
      if (fd >= 0 && !spare_fd_.compare_exchange_strong(none, fd)) ::close(fd);
    }
  }
  {
    std::lock_guard lock(log_mu_);
    ++accept_failures_;
    const auto now = std::chrono::steady_clock::now();
    if (now - accept_logged_ >= kAcceptLogInterval) {
      spdlog::warn("{}: accept failed {} time(s) since the last report: {}{}", config_.name, accept_failures_,
                   ec.message(), no_descriptors ? "; new connections are refused until descriptors are free" : "");
      accept_failures_ = 0;
      accept_logged_ = now;
    }
  }
  asio::steady_timer timer(listener.acceptor.get_executor(), no_descriptors ? backoff : kFirstAcceptBackoff);
  co_await timer.async_wait(kUseTuple);
  if (no_descriptors) backoff = std::min(backoff * 2, kLastAcceptBackoff);
}

asio::awaitable<void> Server::Core::serve(std::shared_ptr<Core> self, std::shared_ptr<Connection> conn) {
  if (auto* plain = std::get_if<beast::tcp_stream>(&conn->stream)) {
    co_await serve_on(self, conn, *plain);
    co_return;
  }
  auto& tls = std::get<TlsStream>(conn->stream);
  // The handshake gets the header timeout: a client that stalls in it is a slowloris too.
  conn->tcp().expires_after(config_.idle_timeout);
  auto [ec] = co_await tls.async_handshake(asio::ssl::stream_base::server, kUseTuple);
  if (ec) {
    if (stopping_) co_return;  // stop() cut it short
    handshake_failures_.fetch_add(1);
    if (config_.on_tls_handshake_failure) config_.on_tls_handshake_failure();
    spdlog::debug("{}: TLS handshake with {} failed: {}", config_.name, conn->peer.address().to_string(),
                  ec.message());
    boost::system::error_code ignored;
    conn->tcp().socket().close(ignored);
    co_return;
  }
  co_await serve_on(self, conn, tls);
}

// Ends a connection after its last response: TLS says close_notify first
// (without waiting long for the peer's), then the write side is shut.
template <class Stream>
asio::awaitable<void> Server::Core::close_on(Connection& conn, Stream& stream) {
  if constexpr (std::is_same_v<Stream, TlsStream>) {
    conn.tcp().expires_after(std::chrono::seconds(1));
    co_await stream.async_shutdown(kUseTuple);
  }
  boost::system::error_code ignored;
  conn.tcp().socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
}

template <class Stream>
asio::awaitable<void> Server::Core::serve_on(std::shared_ptr<Core> self, std::shared_ptr<Connection> conn,
                                             Stream& stream) {
  beast::flat_buffer buffer;
  buffer.reserve(kReadBufferBytes);
  std::string held;  // answers held back behind a pipelined request, serialized (append_wire)
  for (;;) {
    beast::http::request_parser<beast::http::string_body> parser;
    // No limit while reading the header, so an oversize Content-Length is
    // answered with a 413 below instead of a dropped connection.
    parser.body_limit(boost::none);
    parser.header_limit(config_.header_limit);
    conn->tcp().expires_after(config_.idle_timeout);
    auto [ec, n] = co_await beast::http::async_read_header(stream, buffer, parser, kUseTuple);
    if (ec) {
      // Closed or timed out: nothing to answer. Too large or malformed: say so, then close.
      const bool header_too_large = ec == beast::http::error::header_limit;
      if (!malformed(ec)) {
        co_await write_held(stream, held);
        co_return;
      }
      Response answer = render_error_(
          base::Error{header_too_large ? base::ErrorCode::kRequestTooLarge : base::ErrorCode::kInvalidRequestContent,
                      header_too_large ? "Request header fields are too large" : "Malformed HTTP request"},
          11);
      answer.result(header_too_large ? Status::request_header_fields_too_large : Status::bad_request);
      answer.keep_alive(false);
      answer.prepare_payload();
      conn->tcp().expires_after(std::chrono::seconds(10));
      append_wire(held, answer);
      co_await write_held(stream, held);
      co_await close_on(*conn, stream);
      co_return;
    }
    conn->busy = true;
    in_flight_.fetch_add(1);
    struct Done {
      Core* s;  // kept alive by `self`, a parameter of this frame
      Connection* c;
      bool finished = false;
      void finish() {
        if (std::exchange(finished, true)) return;
        c->busy = false;
        s->in_flight_.fetch_sub(1);
      }
      ~Done() { finish(); }
    } done{self.get(), conn.get()};

    Response response;
    bool keep_alive = parser.get().keep_alive();
    const unsigned version = parser.get().version();
    const auto length = parser.content_length();
    // What this body may hold, counted against max_body_bytes_in_flight until the handler returns.
    struct BodyBudget {
      std::atomic<std::uint64_t>* total = nullptr;
      std::uint64_t held = 0;
      ~BodyBudget() {
        if (held > 0) total->fetch_sub(held);
      }
    } budget{&body_bytes_};
    const std::uint64_t body_bytes = length ? *length : parser.chunked() ? config_.body_limit : 0;
    bool over_budget = false;
    if (config_.max_body_bytes_in_flight > 0 && body_bytes > ServerConfig::kSmallBody &&
        body_bytes <= config_.body_limit) {
      const std::uint64_t before = body_bytes_.fetch_add(body_bytes);
      budget.held = body_bytes;
      over_budget = before + body_bytes > config_.max_body_bytes_in_flight;
    }
    if (over_budget) {
      response = render_error_(base::Error{base::ErrorCode::kTooManyRequests,
                                           "The server is reading too many request bodies at once; try again later"},
                               version);
      response.result(Status::service_unavailable);
      keep_alive = false;  // the body stays unread
    } else if (length && *length > config_.body_limit) {
      response = render_error_(base::Error{base::ErrorCode::kRequestTooLarge,
                                           "Request must be smaller than " +
                                               std::to_string(config_.body_limit) + " bytes"},
                               version);
      keep_alive = false;  // the unread body makes the stream unusable
    } else {
      parser.body_limit(config_.body_limit);
      if (parser.get()[Field::expect] == "100-continue") {
        if (co_await write_held(stream, held)) co_return;  // the interim answer must not overtake them
        beast::http::response<beast::http::empty_body> cont{Status::continue_, version};
        auto [wec, wn] = co_await beast::http::async_write(stream, cont, kUseTuple);
        if (wec) co_return;
      }
      conn->tcp().expires_after(config_.body_timeout);
      std::tie(ec, n) = co_await beast::http::async_read(stream, buffer, parser, kUseTuple);
      if (ec == beast::http::error::body_limit) {
        response = render_error_(base::Error{base::ErrorCode::kRequestTooLarge,
                                             "Request must be smaller than " +
                                                 std::to_string(config_.body_limit) + " bytes"},
                                 version);
        keep_alive = false;
      } else if (ec && !malformed(ec)) {
        co_await write_held(stream, held);  // closed or timed out: nobody to answer
        co_return;
      } else if (ec) {
        response = render_error_(base::Error{base::ErrorCode::kInvalidRequestContent, "Malformed HTTP request body"},
                                 version);
        response.result(Status::bad_request);
        keep_alive = false;  // where the next request would start is unknown
      } else {
        conn->tcp().expires_never();
        try {
          response = co_await handler_(parser.release(), RequestContext{conn->listener, conn->peer});
        } catch (const std::exception& ex) {
          spdlog::error("{}: handler threw: {}", config_.name, ex.what());
          response = render_error_(base::Error{base::ErrorCode::kService, "internal error"}, version);
        }
      }
    }
    if (stopping_) keep_alive = false;
    response.version(version);
    response.keep_alive(keep_alive);
    // HTTP allows no body on these; Beast refuses to frame one.
    const unsigned code = response.result_int();
    if (code < 200 || code == 204 || code == 304) response.body().clear();
    response.prepare_payload();
    served_.fetch_add(1);
    if (config_.hold_answers_to_pipelined && keep_alive && buffer.size() > 0) {
      append_wire(held, response);  // goes out with the answer to the request behind it
      continue;
    }
    conn->tcp().expires_after(config_.body_timeout);
    boost::system::error_code wec;
    if (held.empty()) {
      std::tie(wec, std::ignore) = co_await beast::http::async_write(stream, response, kUseTuple);
    } else {
      append_wire(held, response);
      wec = co_await write_held(stream, held);
    }
    if (wec || !keep_alive) {
      done.finish();  // answered: a drain need not wait for the goodbye
      co_await close_on(*conn, stream);
      co_return;
    }
  }
}

void Server::Core::stop() {
  if (stopping_.exchange(true)) return;
  std::lock_guard lock(mu_);
  for (const auto& [tag, listener] : listeners_) {
    asio::post(listener->acceptor.get_executor(), [listener = listener] {
      boost::system::error_code ignored;
      listener->acceptor.close(ignored);
    });
  }
  for (const auto& conn : connections_) {
    if (conn->busy) continue;  // closes itself after its response
    asio::post(conn->tcp().get_executor(), [conn] { conn->tcp().cancel(); });
  }
}

bool Server::Core::drain(std::chrono::milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (in_flight_.load() > 0) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace nimbus::http
