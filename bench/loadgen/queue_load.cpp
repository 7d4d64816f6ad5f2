// The load generator of bench/run's queue row: CLIENTS threads, each on one
// keep-alive connection, loop SendMessageBatch (10 messages), ReceiveMessage
// (up to 10, long poll 1 s) and DeleteMessageBatch over SQS's JSON protocol,
// and check every answer: ten successes per send, each MD5 as SQS defines it,
// no failed delete. Written in C++ so that the client side costs little of
// the two cores the daemon runs on; it uses no nimbus code, so it checks the
// daemon's MD5s independently.
//
//   nimbus-queue-load HOST PORT QUEUE_URL CLIENTS BATCHES
//
// Prints one JSON object: {"latencies_ms": [...per loop...], "deleted":
// [...bodies...], "error": null or the first failure}. Message bodies are
// "<client>-<batch>-<k>", so the caller can check each was deleted once.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using nlohmann::json;

std::string md5_hex(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &size, EVP_md5(), nullptr) != 1) {
    throw std::runtime_error("EVP_Digest(md5) failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < size; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0xf];
  }
  return hex;
}

// One keep-alive HTTP/1.1 connection; answers must carry Content-Length.
class Connection {
 public:
  Connection(const std::string& host, int port) : host_(host + ":" + std::to_string(port)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    if (fd_ < 0 || ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1 ||
        ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error("cannot connect to " + host_ + ": " + std::strerror(errno));
    }
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~Connection() { ::close(fd_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // POSTs one SQS JSON action; returns the parsed answer of a 200.
  json call(const std::string& action, const json& payload) {
    const std::string body = payload.dump();
    std::string request = "POST / HTTP/1.1\r\nHost: " + host_ +
                          "\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: AmazonSQS." + action +
                          "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    for (std::size_t sent = 0; sent < request.size();) {
      const ssize_t n = ::send(fd_, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error(action + ": send failed: " + std::strerror(errno));
      sent += static_cast<std::size_t>(n);
    }
    const auto header_end = read_until_headers();
    const std::string head = buffer_.substr(0, header_end);
    const int status = head.size() > 12 ? std::atoi(head.c_str() + 9) : 0;
    const std::size_t length = content_length(head);
    fill(header_end + 4 + length);
    std::string answer = buffer_.substr(header_end + 4, length);
    buffer_.erase(0, header_end + 4 + length);
    if (status != 200) throw std::runtime_error(action + " answered " + std::to_string(status) + ": " + answer);
    return json::parse(answer);
  }

 private:
  std::size_t read_until_headers() {
    for (;;) {
      if (const auto end = buffer_.find("\r\n\r\n"); end != std::string::npos) return end;
      read_more();
    }
  }
  void fill(std::size_t size) {
    while (buffer_.size() < size) read_more();
  }
  void read_more() {
    char chunk[16384];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) throw std::runtime_error(std::string("connection closed: ") + std::strerror(errno));
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }
  static std::size_t content_length(const std::string& head) {
    std::string lower(head);
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto at = lower.find("\r\ncontent-length:");
    if (at == std::string::npos) throw std::runtime_error("answer without Content-Length: " + head);
    return std::stoul(lower.substr(at + 17));
  }

  std::string host_;
  int fd_ = -1;
  std::string buffer_;
};

struct Results {
  std::mutex mu;
  std::vector<double> latencies_ms;
  std::vector<std::string> deleted;
  std::string error;
  std::atomic<bool> failed{false};
};

void run_client(const std::string& host, int port, const std::string& queue_url, int client, int batches,
                Results& results) {
  std::vector<double> latencies;
  std::vector<std::string> deleted;
  try {
    Connection c(host, port);
    for (int b = 0; b < batches && !results.failed; ++b) {
      const auto t0 = std::chrono::steady_clock::now();
      json entries = json::array();
      std::vector<std::string> bodies;
      for (int k = 0; k < 10; ++k) {
        bodies.push_back(std::to_string(client) + "-" + std::to_string(b) + "-" + std::to_string(k));
        entries.push_back({{"Id", "m" + std::to_string(k)}, {"MessageBody", bodies.back()}});
      }
      const json sent = c.call("SendMessageBatch", {{"QueueUrl", queue_url}, {"Entries", entries}});
      const json& ok = sent.at("Successful");
      if (ok.size() != 10) throw std::runtime_error("SendMessageBatch: " + sent.dump());
      for (const auto& e : ok) {
        const auto k = std::stoul(e.at("Id").get<std::string>().substr(1));
        if (e.at("MD5OfMessageBody").get<std::string>() != md5_hex(bodies.at(k))) {
          throw std::runtime_error("wrong MD5OfMessageBody for " + bodies.at(k));
        }
      }
      const json got = c.call("ReceiveMessage",
                              {{"QueueUrl", queue_url}, {"MaxNumberOfMessages", 10}, {"WaitTimeSeconds", 1}});
      const auto messages = got.find("Messages");
      if (messages != got.end() && !messages->empty()) {
        json handles = json::array();
        for (const auto& m : *messages) {
          const auto body = m.at("Body").get<std::string>();
          if (m.at("MD5OfBody").get<std::string>() != md5_hex(body)) {
            throw std::runtime_error("wrong MD5OfBody for " + body);
          }
          handles.push_back({{"Id", "d" + std::to_string(handles.size())}, {"ReceiptHandle", m.at("ReceiptHandle")}});
        }
        const json out = c.call("DeleteMessageBatch", {{"QueueUrl", queue_url}, {"Entries", handles}});
        if (const auto failed = out.find("Failed"); failed != out.end() && !failed->empty()) {
          throw std::runtime_error("DeleteMessageBatch failed: " + failed->dump());
        }
        for (const auto& m : *messages) deleted.push_back(m.at("Body").get<std::string>());
      }
      latencies.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
  } catch (const std::exception& e) {
    std::lock_guard lock(results.mu);
    if (!results.failed.exchange(true)) results.error = "client " + std::to_string(client) + ": " + e.what();
  }
  std::lock_guard lock(results.mu);
  results.latencies_ms.insert(results.latencies_ms.end(), latencies.begin(), latencies.end());
  results.deleted.insert(results.deleted.end(), deleted.begin(), deleted.end());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::cerr << "usage: nimbus-queue-load HOST PORT QUEUE_URL CLIENTS BATCHES\n";
    return 2;
  }
  const std::string host = argv[1];
  const int port = std::atoi(argv[2]);
  const std::string queue_url = argv[3];
  const int clients = std::atoi(argv[4]);
  const int batches = std::atoi(argv[5]);
  if (port <= 0 || clients <= 0 || batches <= 0) {
    std::cerr << "nimbus-queue-load: PORT, CLIENTS and BATCHES must be positive numbers\n";
    return 2;
  }
  Results results;
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back(run_client, host, port, queue_url, i, batches, std::ref(results));
  }
  for (auto& t : threads) t.join();
  json out{{"latencies_ms", results.latencies_ms},
           {"deleted", results.deleted},
           {"error", results.error.empty() ? json(nullptr) : json(results.error)}};
  std::cout << out.dump() << "\n";
  return 0;
}
