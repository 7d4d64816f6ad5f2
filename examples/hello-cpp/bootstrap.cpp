// hello-cpp: a Lambda custom runtime (`provided.al2023`) in one dependency-free
// C++ file. nimbus (or AWS Lambda) runs it as /var/task/bootstrap with
// AWS_LAMBDA_RUNTIME_API=host:port in the environment; it then loops
//
//   GET  /2018-06-01/runtime/invocation/next            -> event + request id
//   POST /2018-06-01/runtime/invocation/{id}/response   <- {"message":"Hello from C++!","input":<event>}
//
// over one keep-alive HTTP/1.1 connection, reconnecting when the server closes
// it. An empty event is echoed as `null`; an event that is not valid JSON is
// answered on /invocation/{id}/error (Runtime.UnmarshalError) instead. The process exits 1 after three
// consecutive failed /next calls or when the server answers 5xx (the Runtime
// API's "exit promptly"), which is what the platform expects of a runtime.
//
// Only POSIX sockets: no curl, no JSON library, no threads.

#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

constexpr std::string_view kApiVersion = "/2018-06-01";
constexpr int kConnectTimeoutMs = 1000;         // what the official clients use
constexpr std::size_t kMaxHeaderBytes = 64 * 1024;
constexpr std::size_t kMaxBodyBytes = 16 * 1024 * 1024;  // events are <= 6 MB
constexpr int kMaxNextFailures = 3;              // as aws-lambda-cpp's loop
constexpr int kMaxJsonDepth = 512;

void log_error(const std::string& what) { std::fprintf(stderr, "[hello-cpp bootstrap] %s\n", what.c_str()); }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Parses a non-negative decimal (or hex, for chunk sizes) number; nullopt on junk or overflow.
std::optional<std::size_t> parse_size(std::string_view s, int base) {
  if (s.empty()) return std::nullopt;
  std::size_t value = 0;
  for (char c : s) {
    int digit;
    if (c >= '0' && c <= '9') digit = c - '0';
    else if (base == 16 && c >= 'a' && c <= 'f') digit = c - 'a' + 10;
    else if (base == 16 && c >= 'A' && c <= 'F') digit = c - 'A' + 10;
    else return std::nullopt;
    if (value > (kMaxBodyBytes * 16)) return std::nullopt;  // far past any limit we accept
    value = value * static_cast<std::size_t>(base) + static_cast<std::size_t>(digit);
  }
  return value;
}

// ---------------------------------------------------------------------------
// A minimal JSON validator: tells whether `text` is exactly one JSON value
// (RFC 8259), so the response we build around it is valid JSON too.

class JsonValidator {
 public:
  explicit JsonValidator(std::string_view text) : s_(text) {}

  bool valid() {
    skip_ws();
    if (!value(0)) return false;
    skip_ws();
    return pos_ == s_.size();
  }

 private:
  bool value(int depth) {
    if (depth > kMaxJsonDepth || pos_ >= s_.size()) return false;
    switch (s_[pos_]) {
      case '{': return object(depth + 1);
      case '[': return array(depth + 1);
      case '"': return string();
      case 't': return literal("true");
      case 'f': return literal("false");
      case 'n': return literal("null");
      default: return number();
    }
  }

  bool object(int depth) {
    ++pos_;  // '{'
    skip_ws();
    if (peek() == '}') return ++pos_, true;
    for (;;) {
      skip_ws();
      if (peek() != '"' || !string()) return false;
      skip_ws();
      if (peek() != ':') return false;
      ++pos_;
      skip_ws();
      if (!value(depth)) return false;
      skip_ws();
      if (peek() == ',') { ++pos_; continue; }
      if (peek() == '}') return ++pos_, true;
      return false;
    }
  }

  bool array(int depth) {
    ++pos_;  // '['
    skip_ws();
    if (peek() == ']') return ++pos_, true;
    for (;;) {
      skip_ws();
      if (!value(depth)) return false;
      skip_ws();
      if (peek() == ',') { ++pos_; continue; }
      if (peek() == ']') return ++pos_, true;
      return false;
    }
  }

  bool string() {
    ++pos_;  // opening quote
    while (pos_ < s_.size()) {
      const auto c = static_cast<unsigned char>(s_[pos_++]);
      if (c == '"') return true;
      if (c < 0x20) return false;
      if (c == '\\') {
        if (pos_ >= s_.size()) return false;
        const char e = s_[pos_++];
        if (e == 'u') {
          for (int i = 0; i < 4; ++i, ++pos_) {
            if (pos_ >= s_.size() || !std::isxdigit(static_cast<unsigned char>(s_[pos_]))) return false;
          }
        } else if (std::strchr("\"\\/bfnrt", e) == nullptr || e == '\0') {
          return false;
        }
      }
    }
    return false;
  }

  bool number() {
    const std::size_t start = pos_;
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
    } else if (digits() == 0) {
      return false;
    }
    if (peek() == '.') {
      ++pos_;
      if (digits() == 0) return false;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (digits() == 0) return false;
    }
    return pos_ > start;
  }

  std::size_t digits() {
    std::size_t n = 0;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_, ++n;
    return n;
  }

  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }

  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }

  std::string_view s_;
  std::size_t pos_ = 0;
};

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// HTTP/1.1 over one reusable TCP connection.

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  const std::string* header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (iequals(k, name)) return &v;
    }
    return nullptr;
  }
};

// Why a request failed; `kStale` = the server closed a reused connection
// before answering, so one retry on a fresh connection is safe.
enum class Failure { kNone, kConnect, kStale, kIo, kProtocol };

class Connection {
 public:
  Connection(std::string host, std::string port) : host_(std::move(host)), port_(std::move(port)) {}
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() { close(); }

  // Sends one request and reads its response. Reuses the open connection if
  // there is one; on a stale reused connection retries once on a new one.
  //
  // `then_get`, when given, is a GET sent right behind the request in the
  // same write (HTTP/1.1 pipelining); its response is left on the connection
  // for the next request() of that GET, which then only reads. A runtime
  // posts a result and asks for the next event at once that way: one write,
  // and the Runtime API reads both requests in one go.
  std::optional<HttpResponse> request(std::string_view method, const std::string& target, std::string_view body,
                                      std::string_view extra_headers, std::string* error,
                                      const std::string& then_get = {}) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      const bool reused = fd_ >= 0;
      HttpResponse res;
      const Failure f = exchange(method, target, body, extra_headers, res, error, then_get);
      if (f == Failure::kNone) return res;
      close();
      if (!(f == Failure::kStale && reused)) return std::nullopt;
    }
    return std::nullopt;
  }

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    buf_.clear();
    sent_get_.clear();
  }

 private:
  Failure exchange(std::string_view method, const std::string& target, std::string_view body,
                   std::string_view extra_headers, HttpResponse& res, std::string* error,
                   const std::string& then_get) {
    if (fd_ >= 0 && method == "GET" && !sent_get_.empty() && target == sent_get_) {
      sent_get_.clear();  // already on its way, behind the previous request
      return read_response(res, error);
    }
    if (fd_ < 0 && !connect(error)) return Failure::kConnect;

    std::string req;
    req.reserve(512 + body.size());
    append_request(req, method, target, body, extra_headers);
    if (!then_get.empty()) append_request(req, "GET", then_get, {}, {});
    if (!send_all(req)) {
      *error = std::string("send: ") + std::strerror(errno);
      return Failure::kStale;  // nothing was answered: safe to retry once
    }
    sent_get_ = then_get;
    return read_response(res, error);
  }

  void append_request(std::string& req, std::string_view method, std::string_view target, std::string_view body,
                      std::string_view extra_headers) const {
    req.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
    req.append("Host: ").append(host_).append(":").append(port_).append("\r\n");
    req.append("User-Agent: hello-cpp-bootstrap/1.0\r\n");
    req.append(extra_headers);
    if (method != "GET") req.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
    req.append("\r\n");
    req.append(body);
  }

  // The Runtime API is always at a numeric address (Lambda: 127.0.0.1:9001),
  // so there is no resolver here: that keeps the binary free of glibc's NSS
  // and lets it link statically (-static), which starts fastest.
  bool connect(std::string* error) {
    sockaddr_storage address{};
    socklen_t length = 0;
    const unsigned long port = std::strtoul(port_.c_str(), nullptr, 10);
    if (port == 0 || port > 65535) {
      *error = "bad port '" + port_ + "' in AWS_LAMBDA_RUNTIME_API";
      return false;
    }
    auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
    if (::inet_pton(AF_INET, host_.c_str(), &v4->sin_addr) == 1) {
      v4->sin_family = AF_INET;
      v4->sin_port = htons(static_cast<std::uint16_t>(port));
      length = sizeof *v4;
    } else if (::inet_pton(AF_INET6, host_.c_str(), &v6->sin6_addr) == 1) {
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(static_cast<std::uint16_t>(port));
      length = sizeof *v6;
    } else {
      *error = "AWS_LAMBDA_RUNTIME_API host '" + host_ + "' is not a numeric IPv4 or IPv6 address";
      return false;
    }
    const int fd = ::socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      *error = std::string("socket: ") + std::strerror(errno);
      return false;
    }
    std::string why;
    if (!connect_with_timeout(fd, reinterpret_cast<const sockaddr*>(&address), length, &why)) {
      ::close(fd);
      *error = "connect " + host_ + ":" + port_ + ": " + why;
      return false;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fd_ = fd;
    return true;
  }

  static bool connect_with_timeout(int fd, const sockaddr* addr, socklen_t len, std::string* error) {
    const int flags = ::fcntl(fd, F_GETFL, 0);
    ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    int rc = ::connect(fd, addr, len);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      do rc = ::poll(&p, 1, kConnectTimeoutMs);
      while (rc < 0 && errno == EINTR);
      if (rc == 0) {
        *error = "timed out";
        return false;
      }
      int so_error = 0;
      socklen_t so_len = sizeof so_error;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &so_len);
      if (rc < 0 || so_error != 0) {
        *error = std::strerror(rc < 0 ? errno : so_error);
        return false;
      }
    } else if (rc != 0) {
      *error = std::strerror(errno);
      return false;
    }
    ::fcntl(fd, F_SETFL, flags);  // back to blocking: /next may wait forever
    return true;
  }

  bool send_all(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Appends more bytes from the socket to buf_; false on EOF or error.
  bool fill() {
    char chunk[16 * 1024];
    for (;;) {
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      buf_.append(chunk, static_cast<std::size_t>(n));
      return true;
    }
  }

  // Reads through the next CRLF; the line without it.
  bool read_line(std::string& line, std::size_t limit) {
    for (;;) {
      if (const auto eol = buf_.find("\r\n"); eol != std::string::npos) {
        line.assign(buf_, 0, eol);
        buf_.erase(0, eol + 2);
        return true;
      }
      if (buf_.size() > limit || !fill()) return false;
    }
  }

  bool read_exact(std::string& out, std::size_t n) {
    while (buf_.size() < n) {
      if (!fill()) return false;
    }
    out.append(buf_, 0, n);
    buf_.erase(0, n);
    return true;
  }

  Failure read_response(HttpResponse& res, std::string* error) {
    bool keep_alive = true;
    for (;;) {  // skips any 1xx interim responses
      res = HttpResponse{};
      std::string line;
      if (!read_line(line, kMaxHeaderBytes)) {
        const bool nothing = buf_.empty();
        *error = nothing ? "connection closed before a response" : "malformed status line";
        return nothing ? Failure::kStale : Failure::kProtocol;
      }
      // "HTTP/1.1 200 OK"
      if (line.size() < 12 || line.compare(0, 5, "HTTP/") != 0 || line[8] != ' ') {
        *error = "malformed status line: " + line.substr(0, 80);
        return Failure::kProtocol;
      }
      keep_alive = line.compare(0, 8, "HTTP/1.0") != 0;
      const auto status = parse_size(std::string_view(line).substr(9, 3), 10);
      if (!status || *status < 100 || *status > 599) {
        *error = "bad status code: " + line.substr(0, 80);
        return Failure::kProtocol;
      }
      res.status = static_cast<int>(*status);
      std::size_t header_bytes = 0;
      for (;;) {
        if (!read_line(line, kMaxHeaderBytes)) {
          *error = "connection closed inside the response headers";
          return Failure::kIo;
        }
        if (line.empty()) break;
        header_bytes += line.size();
        if (header_bytes > kMaxHeaderBytes) {
          *error = "response headers too large";
          return Failure::kProtocol;
        }
        const auto colon = line.find(':');
        if (colon == std::string::npos) {
          *error = "malformed header line";
          return Failure::kProtocol;
        }
        res.headers.emplace_back(std::string(trim(std::string_view(line).substr(0, colon))),
                                 std::string(trim(std::string_view(line).substr(colon + 1))));
      }
      if (res.status >= 200) break;
    }

    if (const auto* c = res.header("Connection")) {
      if (iequals(*c, "close")) keep_alive = false;
      if (iequals(*c, "keep-alive")) keep_alive = true;
    }
    const auto* te = res.header("Transfer-Encoding");
    const auto* cl = res.header("Content-Length");
    if (te != nullptr && !iequals(*te, "identity")) {
      if (!iequals(*te, "chunked")) {
        *error = "unsupported Transfer-Encoding: " + *te;
        return Failure::kProtocol;
      }
      if (const Failure f = read_chunked(res.body, error); f != Failure::kNone) return f;
    } else if (cl != nullptr) {
      const auto len = parse_size(trim(*cl), 10);
      if (!len || *len > kMaxBodyBytes) {
        *error = "bad or too large Content-Length: " + *cl;
        return Failure::kProtocol;
      }
      if (!read_exact(res.body, *len)) {
        *error = "connection closed inside the response body";
        return Failure::kIo;
      }
    } else if (res.status != 204 && res.status != 304) {
      // No length: the body runs to the end of the connection.
      while (fill()) {
        if (buf_.size() > kMaxBodyBytes) {
          *error = "response body too large";
          return Failure::kProtocol;
        }
      }
      res.body = std::move(buf_);
      keep_alive = false;
    }
    if (!keep_alive) close();
    return Failure::kNone;
  }

  Failure read_chunked(std::string& body, std::string* error) {
    std::string line;
    for (;;) {
      if (!read_line(line, 1024)) {
        *error = "bad chunk header";
        return Failure::kIo;
      }
      const auto size = parse_size(trim(std::string_view(line).substr(0, line.find(';'))), 16);
      if (!size || body.size() + *size > kMaxBodyBytes) {
        *error = "bad or too large chunk";
        return Failure::kProtocol;
      }
      if (*size == 0) break;
      std::string crlf;
      if (!read_exact(body, *size) || !read_exact(crlf, 2) || crlf != "\r\n") {
        *error = "truncated chunk";
        return Failure::kIo;
      }
    }
    for (;;) {  // trailers, up to the empty line
      if (!read_line(line, kMaxHeaderBytes)) {
        *error = "truncated trailers";
        return Failure::kIo;
      }
      if (line.empty()) return Failure::kNone;
    }
  }

  std::string host_;
  std::string port_;
  int fd_ = -1;
  std::string buf_;  // bytes read but not yet consumed
  std::string sent_get_;  // a pipelined GET whose response is still to be read
};

// ---------------------------------------------------------------------------
// The runtime loop.

// "127.0.0.1:9001", "localhost:9001" or "[::1]:9001" -> host, port.
bool split_host_port(std::string_view api, std::string& host, std::string& port) {
  if (!api.empty() && api.front() == '[') {
    const auto close = api.find(']');
    if (close == std::string_view::npos || close + 1 >= api.size() || api[close + 1] != ':') return false;
    host = std::string(api.substr(1, close - 1));
    port = std::string(api.substr(close + 2));
  } else {
    const auto colon = api.rfind(':');
    if (colon == std::string_view::npos) return false;
    host = std::string(api.substr(0, colon));
    port = std::string(api.substr(colon + 1));
  }
  return !host.empty() && !port.empty() && port.find_first_not_of("0123456789") == std::string::npos;
}

// The function itself: what this runtime answers for one event.
std::string handle(std::string_view event) {
  std::string out;
  out.reserve(event.size() + 48);
  out.append(R"({"message":"Hello from C++!","input":)");
  out.append(event);
  out.append("}");
  return out;
}

std::string error_body(std::string_view type, std::string_view message) {
  return R"({"errorMessage":")" + json_escape(message) + R"(","errorType":")" + json_escape(type) +
         R"(","stackTrace":[]})";
}

// Posts to /runtime/invocation/{id}/{kind}; false when the runtime should exit.
// The GET /next for the following event goes out in the same write.
bool post_result(Connection& conn, const std::string& id, std::string_view kind, const std::string& body,
                 const std::string& next_target) {
  std::string error;
  const std::string target = std::string(kApiVersion) + "/runtime/invocation/" + id + "/" + std::string(kind);
  const auto res = conn.request("POST", target, body, "Content-Type: application/json\r\n", &error, next_target);
  if (!res) {
    log_error("POST " + std::string(kind) + " for " + id + " failed: " + error);
    return true;  // the next /next call decides whether the server is still there
  }
  if (res->status >= 200 && res->status < 300) return true;
  log_error("POST " + std::string(kind) + " for " + id + " answered " + std::to_string(res->status) + ": " +
            res->body.substr(0, 512));
  return res->status < 500;  // 5xx: the platform wants us gone
}

// HELLO_CPP_DELAY_MS (0-60000, default 0): how long each invocation is held
// before it is answered, so that concurrent requests each need an instance of
// their own (bench/run's scale-out scenario). Anything else counts as 0.
long delay_ms_from_env() {
  const char* text = std::getenv("HELLO_CPP_DELAY_MS");
  if (text == nullptr || *text == '\0') return 0;
  char* end = nullptr;
  const long ms = std::strtol(text, &end, 10);
  return (*end == '\0' && ms > 0 && ms <= 60000) ? ms : 0;
}

void hold(long ms) {
  timespec left{ms / 1000, (ms % 1000) * 1000000L};
  while (::nanosleep(&left, &left) != 0 && errno == EINTR) {
  }
}

int run() {
  const long delay_ms = delay_ms_from_env();
  const char* api = std::getenv("AWS_LAMBDA_RUNTIME_API");
  std::string host, port;
  if (api == nullptr || !split_host_port(api, host, port)) {
    log_error(std::string("AWS_LAMBDA_RUNTIME_API must be host:port, got '") + (api ? api : "(unset)") + "'");
    return 1;
  }
  Connection conn(host, port);
  const std::string next_target = std::string(kApiVersion) + "/runtime/invocation/next";
  int failures = 0;
  for (;;) {
    std::string error;
    const auto next = conn.request("GET", next_target, {}, {}, &error);
    if (!next || next->status != 200) {
      if (next) {
        error = "status " + std::to_string(next->status) + ": " + next->body.substr(0, 512);
        if (next->status >= 500) {
          log_error("GET /next " + error + "; exiting");
          return 1;
        }
      }
      log_error("GET /next failed: " + error);
      if (++failures >= kMaxNextFailures) return 1;
      ::usleep(100 * 1000);
      continue;
    }
    const std::string* id = next->header("Lambda-Runtime-Aws-Request-Id");
    if (id == nullptr || id->empty() || id->find_first_of("/?# \r\n") != std::string::npos) {
      log_error("GET /next answered 200 without a usable Lambda-Runtime-Aws-Request-Id");
      if (++failures >= kMaxNextFailures) return 1;
      continue;
    }
    failures = 0;
    if (delay_ms > 0) hold(delay_ms);

    bool keep_going;
    if (trim(next->body).find_first_not_of("\r\n") == std::string_view::npos) {
      keep_going = post_result(conn, *id, "response", handle("null"), next_target);  // no payload at all
    } else if (JsonValidator(next->body).valid()) {
      keep_going = post_result(conn, *id, "response", handle(next->body), next_target);
    } else {
      keep_going = post_result(conn, *id, "error",
                               error_body("Runtime.UnmarshalError", "the event is not valid JSON (" +
                                                                        std::to_string(next->body.size()) + " bytes)"),
                               next_target);
    }
    if (!keep_going) return 1;
  }
}

}  // namespace

int main() {
  std::signal(SIGPIPE, SIG_IGN);
  return run();
}
