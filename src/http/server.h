#pragma once
// Server: one HTTP/1.1 listener (keep-alive, sequential pipelining) that hands
// each complete request to a Handler coroutine and writes its response.
// Shared by the control API, the gateway and the runtime API.
//
// Threads: the accept loop runs as a coroutine on the executor given to the
// constructor, and each connection on config.connection_executor's pick (or a
// strand of that executor); each connection is sequential, so a handler is
// never entered twice for one connection at a time. start()/stop() may be
// called from any thread.
// Lifetime: owned by the daemon; stop() and drain() before destruction.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "base/result.h"
#include "http/types.h"

namespace nimbus::http {

// How connections are told apart for ServerConfig::max_connections_per_client.
enum class ClientKey {
  kAddress,            // the peer's IP address
  kAddressAndLocalUid  // likewise, and a peer on this host (loopback) also by the uid owning its
                       // socket (sock_diag), so each function instance (own uid) is a client of its own
};

// Why a connection was closed right after it was accepted.
enum class Refusal {
  kServerFull,     // max_connections open already
  kClientFull,     // max_connections_per_client open already from that client
  kNoDescriptors,  // the process (EMFILE) or the system (ENFILE) is out of file descriptors
};
[[nodiscard]] std::string_view to_string(Refusal refusal);

// Which listener a request arrived on and from where.
struct RequestContext {
  std::uint64_t listener = 0;   // the tag given to add_listener (0: the main one)
  asio::ip::tcp::endpoint peer;
};

using Handler = std::function<asio::awaitable<Response>(Request, RequestContext)>;
// Decides whether to keep a freshly accepted connection (e.g. verify the
// peer); false closes it before anything is read.
using AcceptFilter = std::function<bool(std::uint64_t listener, const asio::ip::tcp::endpoint& local,
                                        const asio::ip::tcp::endpoint& peer)>;
// Renders a failure found before a handler ran (body too large, malformed
// request) in the listener owner's error shape.
using ErrorRenderer = std::function<Response(const base::Error&, unsigned version)>;

// The certificate chain and private key (PEM files) of an HTTPS listener.
struct TlsFiles {
  std::string cert_file;  // the server certificate first, then intermediates
  std::string key_file;   // the private key of the first certificate, unencrypted
};

struct ServerConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;                       // 0 picks a free port
  std::uint64_t body_limit = 6 * 1024 * 1024;   // larger bodies get 413
  std::uint32_t header_limit = 64 * 1024;       // request line + headers; larger gets 431
  std::chrono::seconds idle_timeout{75};        // keep-alive idle, and the whole header read
  std::chrono::seconds body_timeout{300};       // reading the body, and writing the response
  std::string name = "http";                    // for logs
  AcceptFilter accept_filter;                   // optional
  // Set: every listener of this server speaks HTTPS only (TLS 1.2 or newer);
  // the handshake must finish within idle_timeout. listen() loads the files.
  std::optional<TlsFiles> tls;
  std::function<void()> on_tls_handshake_failure;  // optional: counts them (any io thread)
  // Optional: the executor each accepted connection runs on, e.g. the next
  // of IoThreads' single-threaded io_contexts. Unset: a strand of the
  // server's executor.
  std::function<asio::any_io_executor()> connection_executor;
  // Set: an answer is held back while the client's next request (HTTP/1.1
  // pipelining) already waits in the read buffer, and goes out in one write
  // with the answer to that request; answers keep their order, and a held one
  // is written before the connection ends for any reason. For clients that
  // pipeline a request whose answer may wait long behind a short one (a
  // runtime's result and its next /next): one write and one wakeup of the
  // client instead of two. Other clients never notice: without pipelined
  // bytes in the buffer nothing is held.
  bool hold_answers_to_pipelined = false;
  // Connection limits, so that no single client, and no flood of idle
  // connections, takes the listener or the process's file descriptors from
  // everyone else (0: no limit). A connection over a limit is answered at
  // once with the owner's kTooManyRequests error (429 for a client over its
  // share, 503 for a full server) and closed, before anything is read.
  std::size_t max_connections = 0;             // open at once, over every listener
  std::size_t max_connections_per_client = 0;  // open at once from one client (client_key)
  ClientKey client_key = ClientKey::kAddress;
  // With kAddressAndLocalUid: connections from a loopback peer whose socket
  // a uid in [first, first + count) owns (the function instances) are guests;
  // they share max_guest_connections of their own instead of max_connections,
  // so instances can never take the connections an operator needs.
  struct UidRange {
    unsigned first = 0;
    unsigned count = 0;
  };
  UidRange guest_uids;
  std::size_t max_guest_connections = 0;
  std::function<void(Refusal)> on_connection_refused;  // optional: counts them (any io thread)
  // Request bodies being read or handled at once may hold at most this many
  // bytes together (0: no bound), so slow uploads on many connections cannot
  // take the daemon's memory: a body counts with its Content-Length (a
  // chunked one with body_limit) from before it is read until its handler
  // returns. Bodies of at most kSmallBody bytes are not counted, so small
  // calls (an operator's) always get through. One that does not fit is
  // answered with the owner's kTooManyRequests error as 503, unread, and
  // the connection closed.
  std::uint64_t max_body_bytes_in_flight = 0;
  static constexpr std::uint64_t kSmallBody = 64 * 1024;
};

class Server {
 public:
  Server(asio::any_io_executor executor, ServerConfig config, Handler handler,
         ErrorRenderer render_error);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds config.host:config.port as listener 0; returns the bound endpoint.
  // With config.tls, first loads the certificate and key (an error names the
  // file and what is wrong with it: unreadable, not PEM, key not matching).
  [[nodiscard]] base::Result<asio::ip::tcp::endpoint> listen();
  // Starts accepting on listener 0 (after listen()).
  void start();
  // Binds another listener with its own tag (non-zero) and starts accepting
  // on it at once; requests from it carry the tag in RequestContext.
  [[nodiscard]] base::Result<asio::ip::tcp::endpoint> add_listener(const std::string& host,
                                                                   std::uint16_t port,
                                                                   std::uint64_t tag);
  // Accepts on a socket that is already listening (e.g. one opened inside
  // another network namespace); takes ownership of `fd`.
  [[nodiscard]] base::Status adopt_listener(int fd, std::uint64_t tag);
  // Closes a listener and every connection accepted on it, busy or not.
  void remove_listener(std::uint64_t tag);
  // Stops accepting and closes idle connections; requests in flight finish.
  void stop();
  // Waits until no request is in flight or the deadline passes; true if drained.
  bool drain(std::chrono::milliseconds deadline);

  // Loads config.tls's files again (after they were renewed): connections
  // accepted from now on use them, open ones keep theirs. On an error the
  // current certificate stays. A server without TLS has nothing to reload.
  [[nodiscard]] base::Status reload_tls();

  [[nodiscard]] std::uint64_t requests_served() const;
  [[nodiscard]] std::size_t open_connections() const;
  // TLS handshakes that failed or timed out (each closed only its connection).
  [[nodiscard]] std::uint64_t tls_handshake_failures() const;

 private:
  // Everything the coroutines touch lives here, shared by them and the
  // Server, so a connection frame destroyed after the Server (when its
  // io_context goes away) still finds its state.
  struct Core;
  std::shared_ptr<Core> core_;
};

}  // namespace nimbus::http
