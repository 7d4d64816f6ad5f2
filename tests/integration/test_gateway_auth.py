"""Issue 5: the gateway's Lambda and JWT authorizers and request validation,
driven over real HTTP against the real daemon. JWTs are signed with PyJWT and
keys made by cryptography (Debian python3-jwt, python3-cryptography)."""

import base64
import http.server
import json
import os
import ssl
import threading
import time

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from test_gateway import GatewayTestBase

# A Lambda authorizer whose answer the token chooses. `calls` counts the
# invocations this instance served, so a cached decision shows the old count.
AUTHZ_PY = r'''
import json, time
calls = 0

def handler(event, context):
    global calls
    calls += 1
    token = (event.get("identitySource") or [""])[0]
    if token == "garbage":
        return "not a decision"
    if token == "raise":
        raise RuntimeError("authorizer broke")
    if token == "slow":
        time.sleep(12)
    return {"isAuthorized": token.startswith("allow"),
            "context": {"user": "ada", "calls": calls, "admin": True, "routeArn": event["routeArn"]}}
'''

# An authorizer answering IAM policies (payload 1.0): GET only.
POLICY_PY = r'''
def handler(event, context):
    arn = event["methodArn"]
    prefix = arn.split("/")[0]
    return {"principalId": "user-" + event["authorizationToken"],
            "policyDocument": {"Version": "2012-10-17", "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": prefix + "/$default/GET/*"}]},
            "context": {"tier": "gold", "level": 3}}
'''

ISSUER = "https://id.nimbus.test"


def jwk_of(key, kid):
    public = key.public_key()
    if isinstance(key, rsa.RSAPrivateKey):
        doc = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public))
    else:
        # Full-size coordinates (RFC 7518 6.2.1.2); Debian's PyJWT 2.6 drops
        # leading zero bytes, one key in 128.
        numbers = public.public_numbers()
        size = (public.curve.key_size + 7) // 8
        coordinate = lambda n: base64.urlsafe_b64encode(n.to_bytes(size, "big")).rstrip(b"=").decode()  # noqa: E731
        doc = {"kty": "EC", "crv": "P-256", "x": coordinate(numbers.x), "y": coordinate(numbers.y)}
    doc["kid"] = kid
    return doc


class LambdaAuthorizerTest(GatewayTestBase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.create_function("authz", {"app.py": AUTHZ_PY}, Timeout=15)
            cls.create_function("policy", {"app.py": POLICY_PY})
        except BaseException:
            cls.tearDownClass()
            raise

    def put_authorizer(self, expect=201, **body):
        r = self.daemon.request("POST", "/nimbus/v1/gateway/authorizers", json.dumps(body))
        self.assertEqual(r.status, expect, r)
        return r

    def simple_authorizer(self, name, ttl):
        self.put_authorizer(Name=name, AuthorizerType="REQUEST", FunctionName="authz",
                            AuthorizerPayloadFormatVersion="2.0", EnableSimpleResponses=True,
                            IdentitySource=["$request.header.Authorization"], AuthorizerResultTtlInSeconds=ttl)

    def test_simple_responses_allow_deny_and_reach_the_event(self):
        self.simple_authorizer("simple", 0)
        self.add_route("GET /simple/{id}", Authorizer="simple")
        r = self.gw("GET", "/simple/7", headers={"Authorization": "allow-1"})
        self.assertEqual(r.status, 200, r)
        auth = r.json()["requestContext"]["authorizer"]["lambda"]
        self.assertEqual(auth["user"], "ada")
        self.assertIs(auth["admin"], True)  # JSON types kept in 2.0
        self.assertRegex(auth["routeArn"], r"^arn:aws:execute-api:us-east-1:\d{12}:[^/]+/\$default/GET/simple/7$")
        denied = self.gw("GET", "/simple/7", headers={"Authorization": "deny"})
        self.assertEqual((denied.status, denied.json()), (403, {"message": "Forbidden"}))

    def test_missing_identity_is_401_without_invoking_the_authorizer(self):
        self.simple_authorizer("strict", 0)
        self.add_route("GET /strict", Authorizer="strict")
        before = self.daemon.metric("nimbus_invocations_total", function="authz")
        for headers in ({}, {"Authorization": ""}):
            r = self.gw("GET", "/strict", headers=headers)
            self.assertEqual((r.status, r.json()), (401, {"message": "Unauthorized"}))
        self.assertEqual(self.daemon.metric("nimbus_invocations_total", function="authz"), before)

    def test_decisions_are_cached_by_identity_for_the_ttl(self):
        self.simple_authorizer("cached", 300)
        self.add_route("GET /cached", Authorizer="cached")
        calls = lambda: self.daemon.metric("nimbus_invocations_total", function="authz")  # noqa: E731
        before = calls()
        self.assertEqual(self.gw("GET", "/cached", headers={"Authorization": "allow-cache"}).status, 200)
        self.assertEqual(calls(), before + 1)
        self.assertEqual(self.gw("GET", "/cached", headers={"Authorization": "allow-cache"}).status, 200)
        self.assertEqual(calls(), before + 1)  # answered from the cache
        self.assertEqual(self.gw("GET", "/cached", headers={"Authorization": "allow-other"}).status, 200)
        self.assertEqual(calls(), before + 2)
        self.assertGreaterEqual(self.daemon.metric("nimbus_gateway_authorizer_cache_hits_total"), 1)

    def test_authorizer_failures_are_500(self):
        self.simple_authorizer("fragile", 0)
        self.add_route("GET /fragile", Authorizer="fragile")
        before = self.daemon.metric("nimbus_invocations_total", function="ctl")
        for token in ("garbage", "raise"):
            r = self.gw("GET", "/fragile", headers={"Authorization": token})
            self.assertEqual((r.status, r.json()), (500, {"message": "Internal Server Error"}), token)
        self.assertEqual(self.daemon.metric("nimbus_invocations_total", function="ctl"), before)

    def test_an_authorizer_that_times_out_is_500(self):
        self.simple_authorizer("sleepy", 0)
        self.add_route("GET /sleepy", Authorizer="sleepy")
        started = time.monotonic()
        r = self.gw("GET", "/sleepy", headers={"Authorization": "slow"})
        self.assertEqual(r.status, 500, r)
        self.assertLess(time.monotonic() - started, 12)

    def test_iam_policy_replies_with_payload_1_0(self):
        self.put_authorizer(Name="iam", AuthorizerType="REQUEST", FunctionName="policy",
                            AuthorizerPayloadFormatVersion="1.0", IdentitySource=["$request.querystring.who"])
        self.add_route("ANY /iam/{proxy+}", Authorizer="iam", PayloadFormatVersion="1.0")
        r = self.gw("GET", "/iam/a/b?who=ada")
        self.assertEqual(r.status, 200, r)
        auth = r.json()["requestContext"]["authorizer"]
        self.assertEqual(auth["principalId"], "user-ada")
        self.assertEqual(auth["tier"], "gold")
        self.assertEqual(auth["level"], "3")  # 1.0 flattens to strings
        self.assertIn("integrationLatency", auth)
        self.assertEqual(self.gw("POST", "/iam/a/b?who=ada").status, 403)

    def test_configuration_errors_and_removal(self):
        r = self.put_authorizer(expect=400, Name="bad", AuthorizerType="REQUEST", FunctionName="authz",
                                AuthorizerPayloadFormatVersion="2.0", IdentitySource=["Authorization"])
        self.assertIn("Identity source 'Authorization'", r.error_message())
        r = self.put_authorizer(expect=404, Name="ghost", AuthorizerType="REQUEST", FunctionName="nope",
                                AuthorizerPayloadFormatVersion="2.0")
        self.assertIn("Function not found", r.error_message())
        r = self.add_route("GET /nobody", expect=404, Authorizer="missing")
        self.assertIn("Authorizer not found: missing", r.error_message())
        self.simple_authorizer("inuse", 0)
        self.add_route("GET /inuse", Authorizer="inuse")
        r = self.daemon.request("DELETE", "/nimbus/v1/gateway/authorizers", query={"Name": "inuse"})
        self.assertEqual(r.status, 409, r)
        self.assertIn("GET /inuse", r.error_message())
        self.remove_route("GET /inuse")
        r = self.daemon.request("DELETE", "/nimbus/v1/gateway/authorizers", query={"Name": "inuse"})
        self.assertEqual(r.status, 204, r)

    def test_cli_authorizer_and_validated_route(self):
        rc, out, err = self.daemon.cli("authorizer", "add", "clia", "--function", "authz", "--simple",
                                       "--identity-source", "$request.header.x-token", "--ttl", "60")
        self.assertEqual(rc, 0, err)
        self.assertIn("simple responses", out)
        schema = self.write_file("product.json", json.dumps({
            "type": "object", "required": ["name"],
            "properties": {"name": {"type": "string"}, "price": {"type": "number", "minimum": 0}}}))
        rc, out, err = self.daemon.cli("route", "add", "POST /products", "--function", "ctl", "--authorizer", "clia",
                                       "--require", "method.request.querystring.store", "--body-schema", "@" + schema)
        self.assertEqual(rc, 0, err)
        self.assertIn("clia", self.daemon.cli("route", "ls")[1])
        self.assertIn("clia", self.daemon.cli("authorizer", "ls")[1])
        h = {"x-token": "allow-cli", "Content-Type": "application/json"}
        r = self.gw("POST", "/products", json.dumps({"name": "pen"}), h)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["message"], "Missing required request parameters: [store]")
        r = self.gw("POST", "/products?store=1", json.dumps({"price": -1}), h)
        self.assertEqual(r.status, 400, r)
        self.assertIn("Invalid request body", r.json()["message"])
        self.assertIn("name", r.json()["message"])
        self.assertIn("minimum", r.json()["message"])
        r = self.gw("POST", "/products?store=1", "{not json", h)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(self.gw("POST", "/products?store=1", json.dumps({"name": "pen"}), h).status, 200)
        # Authorization comes first: a stranger learns nothing about the schema.
        self.assertEqual(self.gw("POST", "/products", "{}", {"x-token": "deny"}).status, 403)
        rc, _, err = self.daemon.cli("authorizer", "rm", "clia")
        self.assertNotEqual(rc, 0)
        self.assertIn("POST /products", err)
        rc, _, err = self.daemon.cli("authorizer", "add", "x")
        self.assertNotEqual(rc, 0)
        self.assertIn("--function", err)


class JwksServer:
    """Serves a mutable JWKS document over loopback HTTP (or HTTPS with
    tls=(cert, key)) and counts fetches. `documents` overrides it per path."""

    def __init__(self, tls=None):
        self.document = {"keys": []}
        self.documents = {}
        self.fetches = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                owner.fetches += 1
                body = json.dumps(owner.documents.get(self.path, owner.document)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.origin = f"{'https' if tls else 'http'}://localhost:{self.port}"
        self.url = f"http://127.0.0.1:{self.port}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class JwtAuthorizerTest(GatewayTestBase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cls.ec = ec.generate_private_key(ec.SECP256R1())
        cls.stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def token(self, key=None, kid="r1", alg="RS256", **claims):
        now = int(time.time())
        body = {"iss": ISSUER, "aud": "orders-api", "sub": "ada", "iat": now, "exp": now + 300,
                "scope": "orders:read"}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key or self.rsa, algorithm=alg, headers={"kid": kid})

    def jwt_authorizer(self, name, jwks_uri):
        r = self.daemon.request("POST", "/nimbus/v1/gateway/authorizers", json.dumps({
            "Name": name, "AuthorizerType": "JWT", "JwksUri": jwks_uri,
            "JwtConfiguration": {"Issuer": ISSUER, "Audience": ["orders-api"]}}))
        self.assertEqual(r.status, 201, r)

    def test_tokens_from_a_key_file(self):
        path = self.write_file("jwks.json", json.dumps({"keys": [jwk_of(self.rsa, "r1"), jwk_of(self.ec, "e1")]}))
        self.jwt_authorizer("file", path)
        self.add_route("GET /orders", Authorizer="file")
        self.add_route("DELETE /orders", Authorizer="file", AuthorizationScopes=["orders:admin"])
        for tok in (self.token(), "Bearer " + self.token(key=self.ec, kid="e1", alg="ES256")):
            r = self.gw("GET", "/orders", headers={"Authorization": tok})
            self.assertEqual(r.status, 200, r)
            auth = r.json()["requestContext"]["authorizer"]["jwt"]
            self.assertEqual(auth["claims"]["sub"], "ada")
            self.assertIsInstance(auth["claims"]["exp"], str)
            self.assertEqual(auth["scopes"], ["orders:read"])
        self.assertEqual(self.gw("DELETE", "/orders", headers={"Authorization": self.token()}).status, 403)
        admin = self.token(scope="orders:admin")
        self.assertEqual(self.gw("DELETE", "/orders", headers={"Authorization": admin}).status, 200)

        before = self.daemon.metric("nimbus_invocations_total", function="ctl")
        header, payload, _ = self.token().split(".")
        unsigned = jwt.encode({"iss": ISSUER, "aud": "orders-api", "exp": int(time.time()) + 60}, None,
                              algorithm="none", headers={"kid": "r1"})
        bad = {
            "expired": self.token(exp=int(time.time()) - 5),
            "not yet valid": self.token(nbf=int(time.time()) + 600),
            "wrong audience": self.token(aud="someone-else"),
            "wrong issuer": self.token(iss="https://evil.test"),
            "no exp": self.token(exp=None),
            "signed by a stranger": self.token(key=self.stranger),
            "alg none": unsigned,
            "tampered": f"{header}.{payload}x.{self.token().split('.')[2]}",
            "garbage": "not-a-token",
        }
        for why, tok in bad.items():
            r = self.gw("GET", "/orders", headers={"Authorization": tok})
            self.assertEqual((r.status, r.json()), (401, {"message": "Unauthorized"}), why)
        self.assertEqual(self.gw("GET", "/orders").status, 401)
        self.assertEqual(self.daemon.metric("nimbus_invocations_total", function="ctl"), before)

    def test_keys_from_a_url_refresh_for_a_new_kid(self):
        server = JwksServer()
        self.addCleanup(server.close)
        server.document = {"keys": [jwk_of(self.rsa, "r1")]}
        self.jwt_authorizer("url", server.url)
        self.add_route("GET /rotating", Authorizer="url")
        self.assertEqual(self.gw("GET", "/rotating", headers={"Authorization": self.token()}).status, 200)
        # The issuer rotates to a new key: the first token with its kid fetches the set again.
        server.document = {"keys": [jwk_of(self.rsa, "r1"), jwk_of(self.ec, "e2")]}
        fetched = server.fetches
        rotated = self.token(key=self.ec, kid="e2", alg="ES256")
        self.assertEqual(self.gw("GET", "/rotating", headers={"Authorization": rotated}).status, 200)
        self.assertEqual(server.fetches, fetched + 1)
        # Unknown kids cannot make the gateway hammer the issuer.
        for _ in range(3):
            r = self.gw("GET", "/rotating", headers={"Authorization": self.token(kid="nope")})
            self.assertEqual(r.status, 401)
        self.assertLessEqual(server.fetches, fetched + 2)

    def test_unreachable_keys_are_refused_at_configuration(self):
        r = self.daemon.request("POST", "/nimbus/v1/gateway/authorizers", json.dumps({
            "Name": "nokeys", "AuthorizerType": "JWT", "JwksUri": os.path.join(self.daemon.data_dir, "none.json"),
            "JwtConfiguration": {"Issuer": ISSUER, "Audience": ["a"]}}))
        self.assertEqual(r.status, 400, r)
        self.assertIn("none.json", r.error_message())
