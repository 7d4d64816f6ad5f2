// http::Server with TLS and http::send over https, against each other on
// loopback, with certificates made here by OpenSSL.

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "http/client.h"
#include "http/server.h"

namespace nimbus::http {
namespace {

namespace fs = std::filesystem;

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return out;
}

void add_extension(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  ASSERT_NE(ext, nullptr) << value;
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

struct Pem {
  std::string cert;
  std::string key;
};

// A self-signed P-256 certificate (its own CA) for the given subjectAltName.
Pem self_signed(const char* alt_names) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  unsigned char serial[8];
  RAND_bytes(serial, sizeof serial);
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("nimbus test"), -1, -1,
                             0);
  X509_set_issuer_name(cert, name);
  add_extension(cert, NID_basic_constraints, "critical,CA:TRUE");
  add_extension(cert, NID_subject_alt_name, alt_names);
  X509_sign(cert, key, EVP_sha256());
  BIO* cert_bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(cert_bio, cert);
  BIO* key_bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(key_bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  X509_free(cert);
  EVP_PKEY_free(key);
  return Pem{bio_text(cert_bio), bio_text(key_bio)};
}

asio::awaitable<Response> hello(Request request, RequestContext) {
  Response response{Status::ok, request.version()};
  response.body() = "hello " + std::string(request.target());
  co_return response;
}

Response render(const base::Error& error, unsigned version) {
  Response response{Status::bad_request, version};
  response.body() = error.message;
  return response;
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("nimbus-tls-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    const Pem local = self_signed("DNS:localhost,IP:127.0.0.1");
    write("cert.pem", local.cert);
    write("key.pem", local.key);
    const Pem other = self_signed("DNS:other.example");
    write("other-cert.pem", other.cert);
    write("other-key.pem", other.key);
    write("garbage.pem", "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n");
  }
  void TearDown() override {
    if (server_) server_->stop();
    io_.stop();
    if (thread_.joinable()) thread_.join();
    server_.reset();
    fs::remove_all(dir_);
  }

  std::string path(const char* name) const { return (dir_ / name).string(); }
  void write(const char* name, const std::string& text) const { std::ofstream(dir_ / name) << text; }

  ServerConfig config(const char* cert, const char* key) const {
    ServerConfig c;
    c.idle_timeout = std::chrono::seconds(1);
    c.tls = TlsFiles{path(cert), path(key)};
    return c;
  }

  // Starts a server; returns its port.
  std::uint16_t serve(ServerConfig c) {
    server_ = std::make_unique<Server>(io_.get_executor(), std::move(c), hello, render);
    auto endpoint = server_->listen();
    EXPECT_TRUE(endpoint.ok()) << endpoint.error().message;
    if (!endpoint.ok()) return 0;
    server_->start();
    thread_ = std::thread([this] { io_.run(); });
    return endpoint->port();
  }

  static base::Result<Response> get(const std::string& host, std::uint16_t port, Scheme scheme,
                                    const std::string& ca_file, const char* target = "/x") {
    return send(Endpoint{host, port, scheme, ca_file}, Request{Verb::get, target, 11}, std::chrono::seconds(5));
  }

  fs::path dir_;
  asio::io_context io_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

TEST_F(TlsTest, BadFilesAreRefusedNamingTheFile) {
  const auto refused = [&](ServerConfig c, const std::string& expected) {
    Server server(io_.get_executor(), std::move(c), hello, render);
    auto endpoint = server.listen();
    ASSERT_FALSE(endpoint.ok());
    EXPECT_NE(endpoint.error().message.find(expected), std::string::npos) << endpoint.error().message;
  };
  refused(config("missing.pem", "key.pem"), path("missing.pem") + ": cannot read it (No such file or directory)");
  refused(config("cert.pem", "missing.pem"), path("missing.pem") + ": cannot read it");
  refused(config("garbage.pem", "key.pem"), path("garbage.pem") + ": not a PEM certificate");
  refused(config("cert.pem", "cert.pem"), path("cert.pem") + ": not an unencrypted PEM private key");
  refused(config("cert.pem", "other-key.pem"),
          path("other-key.pem") + " does not match the certificate " + path("cert.pem"));
}

TEST_F(TlsTest, HttpsRoundTripVerifiesTheServer) {
  const auto port = serve(config("cert.pem", "key.pem"));
  for (const char* host : {"127.0.0.1", "localhost"}) {
    auto ok = get(host, port, Scheme::kHttps, path("cert.pem"), "/over-tls");
    ASSERT_TRUE(ok.ok()) << host << ": " << ok.error().message;
    EXPECT_EQ(ok->result(), Status::ok);
    EXPECT_EQ(ok->body(), "hello /over-tls");
  }
  // Not trusted: the system store does not know this CA.
  auto untrusted = get("127.0.0.1", port, Scheme::kHttps, "");
  ASSERT_FALSE(untrusted.ok());
  EXPECT_NE(untrusted.error().message.find("TLS certificate not accepted"), std::string::npos)
      << untrusted.error().message;
  auto no_ca = get("127.0.0.1", port, Scheme::kHttps, path("missing.pem"));
  ASSERT_FALSE(no_ca.ok());
  EXPECT_NE(no_ca.error().message.find("missing.pem"), std::string::npos) << no_ca.error().message;
  // The untrusted client hung up mid-handshake (the server notices a moment later).
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (server_->tls_handshake_failures() == 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(server_->tls_handshake_failures(), 1u);
}

TEST_F(TlsTest, ACertificateForAnotherNameIsRefused) {
  const auto port = serve(config("other-cert.pem", "other-key.pem"));
  auto by_name = get("localhost", port, Scheme::kHttps, path("other-cert.pem"));
  ASSERT_FALSE(by_name.ok());
  EXPECT_NE(by_name.error().message.find("hostname mismatch"), std::string::npos) << by_name.error().message;
  auto by_address = get("127.0.0.1", port, Scheme::kHttps, path("other-cert.pem"));
  ASSERT_FALSE(by_address.ok());
  EXPECT_NE(by_address.error().message.find("IP address mismatch"), std::string::npos)
      << by_address.error().message;
}

TEST_F(TlsTest, PlainHttpAndStalledHandshakesCloseOnlyTheirConnection) {
  const auto port = serve(config("cert.pem", "key.pem"));
  EXPECT_FALSE(get("127.0.0.1", port, Scheme::kHttp, "").ok());

  // Half a ClientHello, then silence: cut after the 1 s handshake timeout.
  asio::io_context client;
  asio::ip::tcp::socket socket(client);
  socket.connect({asio::ip::make_address("127.0.0.1"), port});
  const timeval five{5, 0};
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &five, sizeof five);
  const char partial[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01};
  asio::write(socket, asio::buffer(partial, sizeof partial));
  const auto start = std::chrono::steady_clock::now();
  char byte = 0;
  boost::system::error_code ec;
  socket.read_some(asio::buffer(&byte, 1), ec);
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  EXPECT_GE(waited, std::chrono::milliseconds(500));
  EXPECT_LT(waited, std::chrono::milliseconds(4000));

  auto ok = get("127.0.0.1", port, Scheme::kHttps, path("cert.pem"));
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(server_->tls_handshake_failures(), 2u);
  EXPECT_EQ(server_->requests_served(), 1u);
}

TEST_F(TlsTest, ReloadSwapsTheCertificateForNewConnections) {
  const auto port = serve(config("cert.pem", "key.pem"));
  ASSERT_TRUE(get("localhost", port, Scheme::kHttps, path("cert.pem")).ok());
  // A renewal that is broken keeps the current certificate.
  fs::copy_file(path("garbage.pem"), path("cert.pem"), fs::copy_options::overwrite_existing);
  EXPECT_FALSE(server_->reload_tls().ok());
  // The other pair written over the configured files takes over.
  fs::copy_file(path("other-cert.pem"), path("cert.pem"), fs::copy_options::overwrite_existing);
  fs::copy_file(path("other-key.pem"), path("key.pem"), fs::copy_options::overwrite_existing);
  // Before the reload the server still presents the first certificate.
  ASSERT_FALSE(get("localhost", port, Scheme::kHttps, path("other-cert.pem")).ok());
  ASSERT_TRUE(server_->reload_tls().ok());
  auto renewed = get("localhost", port, Scheme::kHttps, path("other-cert.pem"));
  ASSERT_FALSE(renewed.ok());  // the new one names other.example only
  EXPECT_NE(renewed.error().message.find("hostname mismatch"), std::string::npos) << renewed.error().message;
}

TEST_F(TlsTest, ASilentServerTimesOut) {
  // Listening, so connects succeed, but nobody ever accepts or answers.
  asio::io_context silent;
  asio::ip::tcp::acceptor acceptor(silent, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = acceptor.local_endpoint().port();
  for (const Scheme scheme : {Scheme::kHttp, Scheme::kHttps}) {
    const auto start = std::chrono::steady_clock::now();
    auto answer =
        send(Endpoint{"127.0.0.1", port, scheme, path("cert.pem")}, Request{Verb::get, "/", 11}, std::chrono::seconds(1));
    const auto waited = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(answer.ok());
    EXPECT_NE(answer.error().message.find("cannot reach 127.0.0.1:" + std::to_string(port)), std::string::npos)
        << answer.error().message;
    EXPECT_LT(waited, std::chrono::seconds(3));
  }
}

TEST_F(TlsTest, PlainServersAreUnchanged) {
  ServerConfig c;
  const auto port = serve(c);
  auto ok = get("127.0.0.1", port, Scheme::kHttp, "", "/plain");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->body(), "hello /plain");
  EXPECT_TRUE(server_->reload_tls().ok());
}

}  // namespace
}  // namespace nimbus::http
