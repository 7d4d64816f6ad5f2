"""Issue 5: the gateway over HTTPS (--gateway-tls-cert/--gateway-tls-key) and
JWT authorizer keys fetched over https, against the real daemon with real
clients (curl, Python's http.client and ssl). Certificates are made by the
openssl command in a temporary directory."""

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.parse

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from harness import HOST_CURL, NIMBUS_BIN, _clean_env, running_daemon, wait_until
from test_gateway import GatewayTestBase
from test_gateway_auth import JwksServer, jwk_of

ISSUER_AUDIENCE = "orders-api"
IDLE_TIMEOUT_S = 2


def make_cert(directory, name, alt_names="DNS:localhost,IP:127.0.0.1"):
    """A self-signed P-256 certificate (its own CA) and its key; returns (cert, key) paths."""
    cert = os.path.join(directory, f"{name}-cert.pem")
    key = os.path.join(directory, f"{name}-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN=nimbus {name}",
                    "-addext", f"subjectAltName={alt_names}"], check=True, capture_output=True)
    return cert, key


def peer_certificate(port, cafile, host="localhost"):
    """The DER certificate the gateway presents to a new connection."""
    context = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            return tls.getpeercert(binary_form=True)


class GatewayTlsTest(GatewayTestBase):

    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="nimbus-it-tls-")
        cls.cert, cls.key = make_cert(cls.certs, "gateway")
        cls.daemon_args = ("--gateway-tls-cert", cls.cert, "--gateway-tls-key", cls.key,
                           "--gateway-idle-timeout", str(IDLE_TIMEOUT_S))
        try:
            super().setUpClass()
        except BaseException:
            shutil.rmtree(cls.certs, ignore_errors=True)
            raise
        cls.port = urllib.parse.urlsplit(cls.daemon.gateway).port

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.certs, ignore_errors=True)

    def https(self, cafile=None):
        context = ssl.create_default_context(cafile=cafile or self.cert)
        return http.client.HTTPSConnection("localhost", self.port, context=context, timeout=30)

    def https_get(self, target, headers=None):
        conn = self.https()
        try:
            conn.request("GET", target, headers=dict(headers or {}))
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def failed_handshakes(self):
        return self.daemon.metric("nimbus_gateway_tls_handshake_failures_total")

    # -- the listener ------------------------------------------------------

    def test_endpoints_and_startup_line_name_an_https_gateway(self):
        self.assertEqual(self.daemon.gateway, f"https://127.0.0.1:{self.port}")
        self.assertIn(f"HTTP gateway listening on 127.0.0.1:{self.port} (https://127.0.0.1:{self.port})",
                      self.daemon.log_text())

    def test_curl_sees_forwarded_proto_https(self):
        self.add_route("GET /tls/{id}")
        out = subprocess.run([HOST_CURL, "-sS", "--cacert", self.cert, "--max-time", "30",
                              f"https://localhost:{self.port}/tls/7?x=1", "-H", "X-Forwarded-Proto: http"],
                             check=True, capture_output=True)
        event = json.loads(out.stdout)
        self.assertEqual(event["headers"]["x-forwarded-proto"], "https")
        self.assertEqual(event["headers"]["x-forwarded-port"], str(self.port))
        self.assertEqual(event["pathParameters"], {"id": "7"})
        self.assertEqual(event["requestContext"]["domainName"], "localhost")
        # curl without the CA refuses the self-signed certificate.
        refused = subprocess.run([HOST_CURL, "-sS", "--max-time", "30", f"https://localhost:{self.port}/tls/7"],
                                 capture_output=True)
        self.assertNotEqual(refused.returncode, 0)

    def test_python_client_keeps_the_connection_alive_with_both_payload_formats(self):
        self.add_route("GET /v2/one")
        self.add_route("GET /v1/one", PayloadFormatVersion="1.0")
        conn = self.https()
        try:
            sockets = set()
            for target in ("/v2/one", "/v1/one", "/v2/one?again=1"):
                conn.request("GET", target)
                resp = conn.getresponse()
                body = resp.read()
                self.assertEqual(resp.status, 200, body)
                sockets.add(id(conn.sock))
                event = json.loads(body)
                self.assertEqual(event["headers"]["x-forwarded-proto"], "https", target)
                if target == "/v1/one":
                    self.assertEqual(event["multiValueHeaders"]["x-forwarded-proto"], ["https"])
                    self.assertEqual(event["multiValueHeaders"]["x-forwarded-port"], [str(self.port)])
            self.assertEqual(len(sockets), 1)  # one TLS connection served all three
            self.assertEqual(conn.sock.version() in ("TLSv1.2", "TLSv1.3"), True)
        finally:
            conn.close()
        # Python refuses a gateway whose certificate it cannot verify.
        other_cert, _ = make_cert(self.certs, "stranger")
        with self.assertRaises(ssl.SSLCertVerificationError):
            self.https(cafile=other_cert).request("GET", "/v2/one")

    def test_plain_http_to_the_tls_port_fails_without_harm(self):
        self.add_route("GET /plain")
        before = self.failed_handshakes()
        answer = self.daemon.gateway_exchange(b"GET /plain HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.assertFalse(answer.startswith(b"HTTP/"), answer)
        self.assertTrue(wait_until(lambda: self.failed_handshakes() > before, 5))
        self.assertEqual(self.https_get("/plain")[0], 200)

    def test_stalled_and_silent_handshakes_are_cut_after_the_idle_timeout(self):
        self.add_route("GET /alive")
        before = self.failed_handshakes()
        half_hello = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03])
        for first_bytes in (half_hello, b""):
            with socket.create_connection(("127.0.0.1", self.port), timeout=IDLE_TIMEOUT_S + 8) as s:
                started = time.monotonic()
                if first_bytes:
                    s.sendall(first_bytes)
                try:
                    data = s.recv(1)
                except ConnectionResetError:
                    data = b""
                waited = time.monotonic() - started
            self.assertEqual(data, b"")
            self.assertGreater(waited, IDLE_TIMEOUT_S - 0.5, first_bytes)
            self.assertLess(waited, IDLE_TIMEOUT_S + 4, first_bytes)
        self.assertTrue(wait_until(lambda: self.failed_handshakes() >= before + 2, 5))
        self.assertEqual(self.https_get("/alive")[0], 200)

    def test_an_idle_kept_alive_tls_connection_is_closed(self):
        self.add_route("GET /idle")
        conn = self.https()
        try:
            conn.request("GET", "/idle")
            resp = conn.getresponse()
            resp.read()
            self.assertEqual(resp.status, 200)
            conn.sock.settimeout(IDLE_TIMEOUT_S + 8)
            started = time.monotonic()
            try:
                self.assertEqual(conn.sock.recv(1), b"")
            except (ConnectionResetError, ssl.SSLEOFError):
                pass
            self.assertLess(time.monotonic() - started, IDLE_TIMEOUT_S + 4)
        finally:
            conn.close()

    # -- JWT keys over https ---------------------------------------------

    def jwt_setup(self, name, server, **extra):
        body = {"Name": name, "AuthorizerType": "JWT",
                "JwtConfiguration": {"Issuer": server.origin, "Audience": [ISSUER_AUDIENCE]}, **extra}
        return self.daemon.request("POST", "/nimbus/v1/gateway/authorizers", json.dumps(body))

    def token(self, key, issuer, kid="r1"):
        now = int(time.time())
        return jwt.encode({"iss": issuer, "aud": ISSUER_AUDIENCE, "sub": "ada", "iat": now, "exp": now + 300},
                          key, algorithm="RS256", headers={"kid": kid})

    def test_jwt_keys_over_https_with_a_private_ca_and_discovery(self):
        issuer_cert, issuer_key = make_cert(self.certs, "issuer")
        server = JwksServer(tls=(issuer_cert, issuer_key))
        self.addCleanup(server.close)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        server.document = {"keys": [jwk_of(key, "r1")]}
        server.documents["/.well-known/openid-configuration"] = {"issuer": server.origin,
                                                                 "jwks_uri": server.origin + "/keys.json"}
        # An explicit https JwksUri, and OpenID discovery over https.
        r = self.jwt_setup("https-keys", server, JwksUri=server.origin + "/keys.json", JwksCaFile=issuer_cert)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json().get("JwksCaFile"), issuer_cert)
        r = self.jwt_setup("https-discovery", server, JwksCaFile=issuer_cert)
        self.assertEqual(r.status, 201, r)
        self.add_route("GET /orders-tls", Authorizer="https-keys")
        self.add_route("GET /orders-oidc", Authorizer="https-discovery")
        for target in ("/orders-tls", "/orders-oidc"):
            status, body = self.https_get(target, {"Authorization": "Bearer " + self.token(key, server.origin)})
            self.assertEqual(status, 200, body)
            self.assertEqual(json.loads(body)["requestContext"]["authorizer"]["jwt"]["claims"]["sub"], "ada")
            self.assertEqual(self.https_get(target, {"Authorization": "Bearer nope"})[0], 401)

        # Without the private CA the issuer's certificate is not trusted.
        r = self.jwt_setup("untrusted", server, JwksUri=server.origin + "/keys.json")
        self.assertEqual(r.status, 400, r)
        self.assertIn("TLS certificate not accepted", r.error_message())
        r = self.jwt_setup("relative-ca", server, JwksCaFile="issuer-cert.pem")
        self.assertEqual(r.status, 400, r)
        self.assertIn("JwksCaFile", r.error_message())

    def test_jwt_keys_from_a_host_the_certificate_does_not_name_are_refused(self):
        wrong_cert, wrong_key = make_cert(self.certs, "wrong-host", "DNS:id.example.com")
        server = JwksServer(tls=(wrong_cert, wrong_key))
        self.addCleanup(server.close)
        for host in ("localhost", "127.0.0.1"):
            r = self.jwt_setup(f"mismatch-{host.replace('.', '-')}", server,
                               JwksUri=f"https://{host}:{server.port}/keys.json", JwksCaFile=wrong_cert)
            self.assertEqual(r.status, 400, r)
            self.assertIn("mismatch", r.error_message())
            self.assertIn(f"{host}:{server.port}", r.error_message())
        self.assertEqual(server.fetches, 0)


class GatewayTlsStartTest(unittest.TestCase):
    """Bad TLS flags refuse to start; SIGHUP reloads renewed files."""

    def serve_refused(self, *args):
        data_dir = tempfile.mkdtemp(prefix="nimbus-it-")
        self.addCleanup(shutil.rmtree, data_dir, True)
        out = subprocess.run([NIMBUS_BIN, "serve", "--data-dir", data_dir, "--listen", "127.0.0.1:0",
                              "--gateway-listen", "127.0.0.1:0", *args],
                             capture_output=True, timeout=60, env=_clean_env(), stdin=subprocess.DEVNULL)
        self.assertNotEqual(out.returncode, 0, out)
        self.assertNotIn(b"Segmentation", out.stderr)
        self.assertFalse(os.path.exists(os.path.join(data_dir, "endpoints.json")))
        return out.stderr.decode()

    def test_bad_tls_flags_refuse_to_start_with_a_message(self):
        certs = tempfile.mkdtemp(prefix="nimbus-it-tls-")
        self.addCleanup(shutil.rmtree, certs, True)
        cert, key = make_cert(certs, "a")
        _, other_key = make_cert(certs, "b")
        missing = os.path.join(certs, "missing.pem")
        self.assertIn("--gateway-tls-cert needs --gateway-tls-key", self.serve_refused("--gateway-tls-cert", cert))
        self.assertIn("--gateway-tls-key needs --gateway-tls-cert", self.serve_refused("--gateway-tls-key", key))
        self.assertIn(f"TLS certificate {missing}: cannot read it (No such file or directory)",
                      self.serve_refused("--gateway-tls-cert", missing, "--gateway-tls-key", key))
        self.assertIn(f"TLS key {missing}: cannot read it",
                      self.serve_refused("--gateway-tls-cert", cert, "--gateway-tls-key", missing))
        self.assertIn(f"TLS certificate {key}: not a PEM certificate",
                      self.serve_refused("--gateway-tls-cert", key, "--gateway-tls-key", key))
        self.assertIn(f"TLS key {other_key} does not match the certificate {cert}",
                      self.serve_refused("--gateway-tls-cert", cert, "--gateway-tls-key", other_key))

    def test_sighup_reloads_a_renewed_certificate(self):
        certs = tempfile.mkdtemp(prefix="nimbus-it-tls-")
        self.addCleanup(shutil.rmtree, certs, True)
        cert, key = make_cert(certs, "live")
        with running_daemon(extra_args=("--gateway-tls-cert", cert, "--gateway-tls-key", key)) as d:
            port = urllib.parse.urlsplit(d.gateway).port
            first = peer_certificate(port, cert)
            first_ca = shutil.copy(cert, os.path.join(certs, "first-ca.pem"))
            # A broken renewal is logged and the current certificate stays.
            with open(cert, "w") as f:
                f.write("garbage\n")
            d.proc.send_signal(signal.SIGHUP)
            self.assertTrue(wait_until(lambda: "not reloaded" in d.log_text(), 10))
            self.assertTrue(d.alive())
            renewed_cert, renewed_key = make_cert(certs, "renewed")
            shutil.copy(renewed_cert, cert)
            shutil.copy(renewed_key, key)
            self.assertEqual(peer_certificate(port, first_ca), first)  # nothing changes before the signal
            d.proc.send_signal(signal.SIGHUP)
            self.assertTrue(wait_until(lambda: "certificate reloaded" in d.log_text(), 10))
            second = peer_certificate(port, cert)
            self.assertNotEqual(first, second)
            self.assertTrue(d.alive())

