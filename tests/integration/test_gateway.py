"""Issue 5: the HTTP API gateway — routes, payload formats 2.0 and 1.0,
response mapping, function URLs, CORS, throttling, limits, access log and
metrics — driven over real HTTP (http.client, curl) against the real daemon."""

import base64
import json
import os
import socket
import subprocess
import time
import urllib.parse

from harness import HOST_CURL, DaemonTestCase, ExecutionTestCase, wait_until

# A function whose behaviour the request chooses (?mode=...): by default it
# echoes the event it got as a JSON body.
CTL_PY = r'''
import base64, json, time

def handler(event, context):
    q = event.get("queryStringParameters") or {}
    mode = q.get("mode")
    body = event.get("body")
    if body is not None and event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("latin-1")
    if mode == "raw":
        return json.loads(body)  # the request body is the function's output
    if mode == "raise":
        raise ValueError("boom")
    if mode == "sleep":
        time.sleep(float(q["s"]))
        return {"slept": True}
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(event)}
'''


class GatewayTestBase(ExecutionTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.create_function("ctl", {"app.py": CTL_PY}, Timeout=10)
        except BaseException:
            cls.tearDownClass()
            raise

    def add_route(self, key, function="ctl", expect=201, **extra):
        body = {"RouteKey": key, "FunctionName": function, **extra}
        r = self.daemon.request("POST", "/nimbus/v1/routes", json.dumps(body))
        self.assertEqual(r.status, expect, r)
        return r

    def remove_route(self, key):
        r = self.daemon.request("DELETE", "/nimbus/v1/routes", query={"RouteKey": key})
        self.assertEqual(r.status, 204, r)

    def gw(self, method, target, body=b"", headers=None):
        return self.daemon.gateway_request(method, target, body, headers)

    def event(self, method, target, body=b"", headers=None):
        """The event the echo mode of `ctl` received."""
        r = self.gw(method, target, body, headers)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def raw_out(self, target, output, method="POST"):
        """Makes `ctl` return `output` (any JSON value) for a request to target."""
        sep = "&" if "?" in target else "?"
        return self.gw(method, f"{target}{sep}mode=raw", json.dumps(output), {"Content-Type": "application/json"})


class GatewayRoutingTest(GatewayTestBase):

    def test_endpoints_json_names_the_gateway(self):
        with open(self.daemon.endpoints_path) as f:
            info = json.load(f)
        self.assertRegex(info["gateway"], r"^http://127\.0\.0\.1:\d+$")
        self.assertNotEqual(info["gateway"], info["api"])

    def test_v2_event_fields(self):
        self.add_route("GET /v2/items/{id}")
        e = self.event("GET", "/v2/items/a%20b?x=1&x=2&y=hello%20world&flag",
                       headers={"Cookie": "s=abc; t=1", "X-Multi": "v1", "User-Agent": "itest/1.0"})
        self.assertEqual(e["version"], "2.0")
        self.assertEqual(e["routeKey"], "GET /v2/items/{id}")
        self.assertEqual(e["rawPath"], "/v2/items/a%20b")
        self.assertEqual(e["rawQueryString"], "x=1&x=2&y=hello%20world&flag")
        self.assertEqual(e["cookies"], ["s=abc", "t=1"])
        self.assertNotIn("cookie", e["headers"])
        self.assertEqual(e["headers"]["x-multi"], "v1")
        self.assertEqual(e["headers"]["user-agent"], "itest/1.0")
        self.assertEqual(e["headers"]["x-forwarded-proto"], "http")
        self.assertEqual(e["headers"]["x-forwarded-for"], "127.0.0.1")
        self.assertEqual(e["headers"]["x-forwarded-port"], self.daemon.gateway.rsplit(":", 1)[1])
        self.assertEqual(e["queryStringParameters"], {"x": "1,2", "y": "hello world", "flag": ""})
        self.assertEqual(e["pathParameters"], {"id": "a b"})
        self.assertNotIn("body", e)
        self.assertNotIn("stageVariables", e)
        self.assertIs(e["isBase64Encoded"], False)
        rc = e["requestContext"]
        self.assertEqual(rc["http"], {"method": "GET", "path": "/v2/items/a%20b", "protocol": "HTTP/1.1",
                                      "sourceIp": "127.0.0.1", "userAgent": "itest/1.0"})
        self.assertEqual(rc["routeKey"], "GET /v2/items/{id}")
        self.assertEqual(rc["stage"], "$default")
        self.assertEqual(rc["accountId"], "000000000000")
        self.assertEqual(rc["domainName"], "127.0.0.1")
        self.assertRegex(rc["requestId"], r"^[A-Za-z0-9_-]{15}=$")
        self.assertRegex(rc["time"], r"^\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000$")
        self.assertIsInstance(rc["timeEpoch"], int)
        self.assertLess(abs(rc["timeEpoch"] / 1000 - time.time()), 60)

    def test_repeated_headers_are_comma_joined(self):
        self.add_route("GET /v2/dup")
        raw = self.daemon.gateway_exchange(
            b"GET /v2/dup HTTP/1.1\r\nHost: x\r\nX-Dup: a\r\nX-Dup: b\r\nConnection: close\r\n\r\n")
        head, _, body = raw.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), raw[:300])
        self.assertEqual(json.loads(body)["headers"]["x-dup"], "a,b")

    def test_request_id_header_matches_event(self):
        self.add_route("GET /v2/rid")
        r = self.gw("GET", "/v2/rid")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("apigw-requestid"), r.json()["requestContext"]["requestId"])

    def test_text_and_binary_bodies(self):
        self.add_route("POST /v2/body")
        e = self.event("POST", "/v2/body", b'{"a":1}', {"Content-Type": "application/json"})
        self.assertEqual((e["body"], e["isBase64Encoded"]), ('{"a":1}', False))
        data = bytes(range(256))
        e = self.event("POST", "/v2/body", data, {"Content-Type": "application/octet-stream"})
        self.assertIs(e["isBase64Encoded"], True)
        self.assertEqual(base64.b64decode(e["body"]), data)

    def test_v1_event_fields(self):
        self.add_route("POST /v1/things/{proxy+}", PayloadFormatVersion="1.0")
        e = self.event("POST", "/v1/things/a/b/?c=a&c=b&d=x%2By", b"hello",
                       {"Content-Type": "text/plain", "Cookie": "k=v"})
        self.assertEqual(e["version"], "1.0")
        self.assertEqual(e["resource"], "/v1/things/{proxy+}")
        self.assertEqual(e["path"], "/v1/things/a/b/")
        self.assertEqual(e["httpMethod"], "POST")
        self.assertEqual(e["headers"]["cookie"], "k=v")
        self.assertEqual(e["multiValueHeaders"]["content-type"], ["text/plain"])
        self.assertEqual(e["queryStringParameters"], {"c": "b", "d": "x+y"})
        self.assertEqual(e["multiValueQueryStringParameters"], {"c": ["a", "b"], "d": ["x+y"]})
        self.assertEqual(e["pathParameters"], {"proxy": "a/b"})
        self.assertIsNone(e["stageVariables"])
        self.assertEqual((e["body"], e["isBase64Encoded"]), ("hello", False))
        rc = e["requestContext"]
        self.assertEqual(rc["resourcePath"], "/v1/things/{proxy+}")
        self.assertEqual(rc["httpMethod"], "POST")
        self.assertEqual(rc["identity"]["sourceIp"], "127.0.0.1")
        self.assertEqual(rc["stage"], "$default")
        self.assertRegex(rc["requestTime"], r"^\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000$")
        self.assertEqual(rc["authorizer"], {"claims": None, "scopes": None})

    def test_v1_absent_things_are_null(self):
        self.add_route("GET /v1/plain", PayloadFormatVersion="1.0")
        e = self.event("GET", "/v1/plain")
        for key in ("body", "queryStringParameters", "multiValueQueryStringParameters", "pathParameters"):
            self.assertIsNone(e[key], key)

    def test_route_priority(self):
        for key in ("GET /prio/dog/1", "GET /prio/dog/{id}", "ANY /prio/dog/{id}", "GET /prio/{proxy+}",
                    "ANY /{proxy+}"):
            self.add_route(key)
        cases = [("GET", "/prio/dog/1", "GET /prio/dog/1"), ("GET", "/prio/dog/2", "GET /prio/dog/{id}"),
                 ("PUT", "/prio/dog/2", "ANY /prio/dog/{id}"), ("GET", "/prio/cat/1", "GET /prio/{proxy+}"),
                 ("PUT", "/prio/cat/1", "ANY /{proxy+}")]
        try:
            for method, path, key in cases:
                self.assertEqual(self.event(method, path)["routeKey"], key, (method, path))
            # Routes are listed in the order they are matched.
            listed = [r["RouteKey"] for r in self.daemon.request("GET", "/nimbus/v1/routes").json()["Routes"]]
            self.assertLess(listed.index("GET /prio/dog/1"), listed.index("GET /prio/dog/{id}"))
            self.assertLess(listed.index("GET /prio/{proxy+}"), listed.index("ANY /{proxy+}"))
        finally:
            self.remove_route("ANY /{proxy+}")

    def test_default_route_and_not_found(self):
        r = self.gw("GET", "/nothing/here")
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.json(), {"message": "Not Found"})
        self.add_route("$default")
        try:
            e = self.event("DELETE", "/nothing/here")
            self.assertEqual(e["routeKey"], "$default")
            self.assertNotIn("pathParameters", e)
        finally:
            self.remove_route("$default")
        self.assertEqual(self.gw("GET", "/nothing/here").status, 404)

    def test_function_url(self):
        out = self.client.create_function_url_config(FunctionName="ctl", AuthType="NONE")
        path = urllib.parse.urlsplit(out["FunctionUrl"]).path
        url_id = path.split("/")[2]
        e = self.event("GET", f"{path}some/path?q=1")
        self.assertEqual(e["rawPath"], "/some/path")
        self.assertEqual(e["routeKey"], "$default")
        self.assertEqual(e["requestContext"]["routeKey"], "$default")
        self.assertEqual(e["requestContext"]["apiId"], url_id)
        self.assertEqual(e["version"], "2.0")
        self.assertEqual(self.event("GET", path.rstrip("/"))["rawPath"], "/")
        # The host form Lambda uses reaches the same function, the whole path its own.
        e = self.event("GET", "/other?x=1", headers={"Host": f"{url_id}.lambda-url.us-east-1.on.aws"})
        self.assertEqual(e["rawPath"], "/other")
        self.assertEqual(e["requestContext"]["domainPrefix"], url_id)
        self.client.delete_function_url_config(FunctionName="ctl")
        self.assertEqual(self.gw("GET", path).status, 404)

    def test_head_has_no_body(self):
        self.add_route("HEAD /h")
        raw = self.daemon.gateway_exchange(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n"
                                           b"Connection: close\r\n\r\n")
        # Both answers come back on one connection: the HEAD one carried no body to confuse framing.
        self.assertTrue(raw.startswith(b"HTTP/1.1 200"), raw[:300])
        head, _, rest = raw.partition(b"\r\n\r\n")
        self.assertTrue(rest.startswith(b"HTTP/1.1 404"), raw)  # nothing between the two answers

    def test_keep_alive_serves_several_requests_on_one_connection(self):
        import http.client
        self.add_route("GET /ka")
        parsed = urllib.parse.urlsplit(self.daemon.gateway)
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        try:
            ports = set()
            for _ in range(3):
                conn.request("GET", "/ka")
                resp = conn.getresponse()
                resp.read()
                self.assertEqual(resp.status, 200)
                self.assertNotEqual((resp.getheader("Connection") or "").lower(), "close")
                ports.add(conn.sock.getsockname()[1])
            self.assertEqual(len(ports), 1)
        finally:
            conn.close()


class GatewayResponseTest(GatewayTestBase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for key, fmt in (("POST /r2", "2.0"), ("POST /r1", "1.0")):
            body = {"RouteKey": key, "FunctionName": "ctl", "PayloadFormatVersion": fmt}
            r = cls.daemon.request("POST", "/nimbus/v1/routes", json.dumps(body))
            assert r.status == 201, r

    def test_v2_structured(self):
        r = self.raw_out("/r2", {"statusCode": 201, "headers": {"x-one": "1", "content-type": "text/plain"},
                                 "cookies": ["a=1; Path=/", "b=2"], "body": "made"})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.body, b"made")
        self.assertEqual(r.header("x-one"), "1")
        self.assertEqual(r.header("content-type"), "text/plain")
        self.assertEqual(r.headers.get_all("set-cookie"), ["a=1; Path=/", "b=2"])

    def test_v2_base64_body(self):
        data = bytes(range(200))
        r = self.raw_out("/r2", {"statusCode": 200, "body": base64.b64encode(data).decode(), "isBase64Encoded": True,
                                 "headers": {"content-type": "application/octet-stream"}})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, data)

    def test_v2_inferred(self):
        r = self.raw_out("/r2", {"hello": "world"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("content-type"), "application/json")
        self.assertEqual(json.loads(r.body), {"hello": "world"})
        r = self.raw_out("/r2", "Hello, world!")
        self.assertEqual(r.body, b'"Hello, world!"')
        self.assertEqual(r.header("content-length"), "15")

    def test_v2_unusable_output_is_500(self):
        r = self.raw_out("/r2", {"statusCode": 200, "body": {"not": "a string"}})
        self.assertEqual(r.status, 500, r)
        self.assertEqual(r.json(), {"message": "Internal Server Error"})

    def test_function_error_is_500(self):
        for target in ("/r2?mode=raise", "/r1?mode=raise"):
            r = self.gw("POST", target)
            self.assertEqual(r.status, 500, r)
            self.assertEqual(r.json(), {"message": "Internal Server Error"})

    def test_v1_rules(self):
        r = self.raw_out("/r1", {"statusCode": 200})
        self.assertEqual((r.status, r.body, r.header("content-type")), (200, b"", "application/json"))
        self.assertEqual(self.raw_out("/r1", {"statusCode": "202", "body": "x"}).status, 202)
        r = self.raw_out("/r1", {"statusCode": 200, "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
                                 "headers": {"X-Flag": True}, "body": "ok"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get_all("set-cookie"), ["a=1", "b=2"])
        self.assertEqual(r.header("x-flag"), "true")
        r = self.raw_out("/r1", {"statusCode": 200, "headers": {"x-test": "value-solo"},
                                 "multiValueHeaders": {"X-Test": ["value-multi"]}})
        self.assertEqual(r.header("x-test"), "value-multi, value-solo")
        for bad in ({}, "justAString", {"statusCode": "test"}, {"statusCode": 200, "extra": 1},
                    {"statusCode": 200, "multiValueHeaders": {"a": "b"}}, {"statusCode": 200, "body": {"a": 1}}):
            r = self.raw_out("/r1", bad)
            self.assertEqual(r.status, 500, (bad, r))
            self.assertEqual(r.json(), {"message": "Internal Server Error"})

    def test_function_cannot_break_framing(self):
        r = self.raw_out("/r2", {"statusCode": 200, "headers": {"content-length": "9999", "x-ok": "1",
                                                                "transfer-encoding": "chunked"}, "body": "short"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"short")
        self.assertEqual(r.header("content-length"), "5")

    def test_deleted_function_is_500(self):
        self.create_function("gone", {"app.py": "def handler(e, c):\n    return 1\n"})
        self.add_route("GET /gone", function="gone")
        self.assertEqual(self.gw("GET", "/gone").status, 200)
        self.client.delete_function(FunctionName="gone")
        r = self.gw("GET", "/gone")
        self.assertEqual(r.status, 500, r)
        self.assertEqual(r.json(), {"message": "Internal Server Error"})


class GatewayControlTest(GatewayTestBase):

    def test_routes_need_a_signature(self):
        r = self.daemon.request("POST", "/nimbus/v1/routes", json.dumps({"RouteKey": "GET /x", "FunctionName": "ctl"}),
                                sign=False)
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.header("x-amzn-ErrorType"), "MissingAuthenticationTokenException")
        self.assertEqual(self.daemon.request("GET", "/nimbus/v1/routes", sign=False).status, 403)

    def test_bad_routes_get_lambda_errors(self):
        cases = [({"RouteKey": "FETCH /x", "FunctionName": "ctl"}, 400, "ValidationException"),
                 ({"RouteKey": "GET /{a+}/b", "FunctionName": "ctl"}, 400, "ValidationException"),
                 ({"RouteKey": "GET /x", "FunctionName": "ctl", "PayloadFormatVersion": "3.0"}, 400,
                  "ValidationException"),
                 ({"RouteKey": "GET /x", "FunctionName": "nope"}, 404, "ResourceNotFoundException"),
                 ({"RouteKey": "GET /x", "FunctionName": "ctl", "ThrottlingRateLimit": 5}, 400,
                  "ValidationException"),
                 ({"RouteKey": "GET /x"}, 400, "ValidationException")]
        for body, status, error_type in cases:
            r = self.daemon.request("POST", "/nimbus/v1/routes", json.dumps(body))
            self.assertEqual(r.status, status, (body, r))
            self.assertEqual(r.header("x-amzn-ErrorType"), error_type, (body, r))
            self.assertTrue(r.error_message(), r)
        r = self.daemon.request("POST", "/nimbus/v1/routes", "{not json")
        self.assertEqual(r.header("x-amzn-ErrorType"), "InvalidRequestContentException", r)
        r = self.daemon.request("DELETE", "/nimbus/v1/routes", query={"RouteKey": "GET /never-added"})
        self.assertEqual(r.status, 404, r)

    def test_cli_route_commands_and_deploy_http(self):
        src = self.write_file("hello/app.py", "def handler(event, context):\n"
                                              "    return {'statusCode': 200, 'body': 'hi ' + event['rawPath']}\n")
        rc, out, err = self.daemon.cli("deploy", os.path.dirname(src), "--name", "hello", "--runtime", "python3.12",
                                       "--handler", "app.handler", "--http", "GET /hello")
        self.assertEqual(rc, 0, err)
        self.assertIn("route: GET /hello", out)
        rc, out, err = self.daemon.cli("route", "add", "GET /products/{id}", "--function", "ctl",
                                       "--payload-format", "1.0", "--rate", "100", "--burst", "10")
        self.assertEqual(rc, 0, err)
        rc, out, err = self.daemon.cli("route", "ls")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"GET /products/\{id\}\s+ctl\s+1\.0\s+100 rps, burst 10")
        self.assertRegex(out, r"GET /hello\s+hello\s+2\.0")
        r = self.gw("GET", "/hello")
        self.assertEqual((r.status, r.body), (200, b"hi /hello"))
        self.assertEqual(self.event("GET", "/products/9")["pathParameters"], {"id": "9"})
        rc, out, err = self.daemon.cli("route", "rm", "GET /products/{id}")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.gw("GET", "/products/9").status, 404)
        rc, out, err = self.daemon.cli("route", "rm", "GET /products/{id}")
        self.assertNotEqual(rc, 0)
        self.assertIn("Route not found", err)
        rc, out, err = self.daemon.cli("route", "add", "GET /x/", "--function", "ctl")
        self.assertNotEqual(rc, 0)
        self.assertIn("Invalid route key", err)

    def test_access_log_and_metrics(self):
        self.add_route("GET /logged")
        before_2xx = self.daemon.metric("nimbus_gateway_requests_total", **{"class": "2xx"})
        before_4xx = self.daemon.metric("nimbus_gateway_requests_total", **{"class": "4xx"})
        before_count = self.daemon.metric("nimbus_gateway_request_duration_ms_count")
        before_integration = self.daemon.metric("nimbus_gateway_integration_duration_ms_count")
        r = self.gw("GET", "/logged", headers={"User-Agent": "logtest"})
        self.assertEqual(r.status, 200)
        self.assertEqual(self.gw("GET", "/not-logged-route").status, 404)
        self.assertEqual(self.daemon.metric("nimbus_gateway_requests_total", **{"class": "2xx"}), before_2xx + 1)
        self.assertEqual(self.daemon.metric("nimbus_gateway_requests_total", **{"class": "4xx"}), before_4xx + 1)
        self.assertEqual(self.daemon.metric("nimbus_gateway_request_duration_ms_count"), before_count + 2)
        self.assertEqual(self.daemon.metric("nimbus_gateway_integration_duration_ms_count"), before_integration + 1)
        path = os.path.join(self.daemon.data_dir, "logs", "gateway-access.log")
        lines = []

        def logged():  # the log is written in the background, within 0.1 s
            with open(path) as f:
                lines[:] = [json.loads(line) for line in f]
            return any(l["path"] == "/not-logged-route" for l in lines)
        self.assertTrue(wait_until(logged, 5), lines[-5:])
        mine = [l for l in lines if l["requestId"] == r.header("apigw-requestid")]
        self.assertEqual(len(mine), 1, lines[-5:])
        line = mine[0]
        self.assertEqual((line["httpMethod"], line["path"], line["routeKey"], line["status"], line["userAgent"],
                          line["functionName"], line["ip"]),
                         ("GET", "/logged", "GET /logged", 200, "logtest", "ctl", "127.0.0.1"))
        self.assertGreaterEqual(line["integrationLatency"], 0)
        self.assertGreaterEqual(line["responseLatency"], line["integrationLatency"])
        self.assertEqual(line["responseLength"], len(r.body))
        self.assertTrue(any(l["path"] == "/not-logged-route" and l["status"] == 404 and l["routeKey"] == "-"
                            for l in lines))


class GatewayCorsTest(GatewayTestBase):

    def test_cors(self):
        self.add_route("GET /cors")
        preflight = {"Origin": "https://app.test", "Access-Control-Request-Method": "GET"}
        # Without CORS, a preflight is an ordinary request (no OPTIONS route: 404).
        self.assertEqual(self.gw("OPTIONS", "/cors", headers=preflight).status, 404)
        rc, out, err = self.daemon.cli("gateway", "cors", "--allow-origin", "https://app.test", "--allow-methods",
                                       "GET", "POST", "--allow-headers", "content-type", "--expose-headers",
                                       "x-id", "--max-age", "600", "--allow-credentials")
        self.assertEqual(rc, 0, err)
        rc, out, err = self.daemon.cli("gateway", "cors")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["AllowOrigins"], ["https://app.test"])
        try:
            invocations = self.daemon.metric("nimbus_invocations_total", function="ctl")
            r = self.gw("OPTIONS", "/cors", headers=preflight)
            self.assertEqual(r.status, 204, r)
            self.assertEqual(r.header("access-control-allow-origin"), "https://app.test")
            self.assertEqual(r.header("access-control-allow-methods"), "GET,POST")
            self.assertEqual(r.header("access-control-allow-headers"), "content-type")
            self.assertEqual(r.header("access-control-max-age"), "600")
            self.assertEqual(r.header("access-control-allow-credentials"), "true")
            # Answered by the gateway itself, even for a path without routes.
            self.assertEqual(self.gw("OPTIONS", "/no/route", headers=preflight).status, 204)
            self.assertEqual(self.daemon.metric("nimbus_invocations_total", function="ctl"), invocations)
            r = self.gw("OPTIONS", "/cors", headers={"Origin": "https://evil.test",
                                                     "Access-Control-Request-Method": "GET"})
            self.assertEqual(r.status, 204)
            self.assertIsNone(r.header("access-control-allow-origin"))

            r = self.gw("GET", "/cors", headers={"Origin": "https://app.test"})
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("access-control-allow-origin"), "https://app.test")
            self.assertEqual(r.header("access-control-expose-headers"), "x-id")
            self.assertEqual(r.header("access-control-allow-credentials"), "true")
            self.assertIsNone(self.gw("GET", "/cors").header("access-control-allow-origin"))
            # The function's own CORS headers are replaced by the configured ones.
            self.add_route("POST /cors-raw")
            r = self.gw("POST", "/cors-raw?mode=raw", json.dumps({"statusCode": 200, "headers": {
                "Access-Control-Allow-Origin": "*"}}), {"Origin": "https://evil.test"})
            self.assertEqual(r.status, 200, r)
            self.assertIsNone(r.header("access-control-allow-origin"))
            # Bad configurations are refused with a Lambda-shaped error.
            r = self.daemon.request("PUT", "/nimbus/v1/gateway/cors",
                                    json.dumps({"AllowOrigins": ["*"], "AllowCredentials": True}))
            self.assertEqual(r.status, 400, r)
            self.assertEqual(r.header("x-amzn-ErrorType"), "ValidationException")
        finally:
            rc, out, err = self.daemon.cli("gateway", "cors", "--delete")
            self.assertEqual(rc, 0, err)
        self.assertEqual(self.gw("OPTIONS", "/cors", headers=preflight).status, 404)


class GatewayThrottleTest(GatewayTestBase):

    def test_route_throttle(self):
        self.add_route("GET /limited", ThrottlingRateLimit=0.01, ThrottlingBurstLimit=2)
        self.add_route("GET /unlimited")
        statuses = [self.gw("GET", "/limited").status for _ in range(4)]
        self.assertEqual(statuses, [200, 200, 429, 429])
        r = self.gw("GET", "/limited")
        self.assertEqual(r.json(), {"message": "Too Many Requests"})
        self.assertEqual(self.gw("GET", "/unlimited").status, 200)  # other routes are not affected
        self.assertGreaterEqual(self.daemon.metric("nimbus_gateway_throttled_total"), 3)



class GatewayGlobalThrottleTest(DaemonTestCase):
    # A daemon of its own: the gateway-wide limit applies to everything it serves.
    daemon_args = ("--gateway-rate", "0.01", "--gateway-burst", "3")

    def test_global_throttle(self):
        statuses = [self.daemon.gateway_request("GET", "/anything").status for _ in range(5)]
        self.assertEqual(statuses, [404, 404, 404, 429, 429])
        r = self.daemon.gateway_request("GET", "/anything")
        self.assertEqual(r.json(), {"message": "Too Many Requests"})


class GatewayLimitsTest(GatewayTestBase):

    daemon_args = ("--gateway-idle-timeout", "1", "--gateway-integration-timeout", "500")

    def test_body_over_10_mb_is_413_before_it_is_read(self):
        self.add_route("POST /big")
        raw = self.daemon.gateway_exchange(
            b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 10485761\r\n\r\n")
        self.assertTrue(raw.startswith(b"HTTP/1.1 413"), raw[:300])
        self.assertIn(b'{"message":"Request Entity Too Large"}', raw)

    def test_body_over_lambda_limit_is_413(self):
        self.add_route("POST /big2")
        r = self.gw("POST", "/big2", b"x" * (7 * 1024 * 1024), {"Content-Type": "text/plain"})
        self.assertEqual(r.status, 413, r)
        self.assertEqual(r.json(), {"message": "Request Entity Too Large"})

    def test_headers_over_limit_are_431(self):
        raw = self.daemon.gateway_exchange(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 11000 + b"\r\n\r\n")
        self.assertTrue(raw.startswith(b"HTTP/1.1 431"), raw[:300])

    def test_malformed_request_is_400(self):
        raw = self.daemon.gateway_exchange(b"GET / HTTP/1.1\r\nHost x\r\n\r\n")
        self.assertTrue(raw.startswith(b"HTTP/1.1 400"), raw[:300])
        self.assertIn(b'{"message":"Bad Request"}', raw)

    def test_path_traversal_never_matches(self):
        self.add_route("GET /public/{file}")
        self.add_route("GET /admin")
        self.add_route("GET /files/{proxy+}")
        for target in ("/public/../admin", "/public/%2e%2e/admin", "/public/%2E%2E%2Fadmin", "/files/a/../../admin",
                       "/public/.", "/files/..%2f..%2fadmin", "/public/%zz", "/public/a%00b"):
            r = self.gw("GET", target)
            self.assertEqual(r.status, 400, (target, r))
            self.assertEqual(r.json(), {"message": "Bad Request"})
        # curl without --path-as-is would normalise; with it the path goes as is.
        p = subprocess.run([HOST_CURL, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--path-as-is",
                            f"{self.daemon.gateway}/public/../admin"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.stdout, "400")
        self.assertEqual(self.gw("GET", "/public/..a").status, 200)  # only whole dot segments are refused

    def test_slow_headers_are_cut_off(self):
        parsed = urllib.parse.urlsplit(self.daemon.gateway)
        with socket.create_connection((parsed.hostname, parsed.port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\n")
            started = time.monotonic()
            closed = False
            for _ in range(40):  # a byte every 0.1 s: never finishes the headers
                try:
                    s.sendall(b"X")
                except OSError:
                    closed = True
                    break
                s.settimeout(0.1)
                try:
                    if s.recv(1024) == b"":
                        closed = True
                        break
                except socket.timeout:
                    pass
                except OSError:
                    closed = True
                    break
            self.assertTrue(closed, "the gateway kept a slow-header connection open")
            self.assertLess(time.monotonic() - started, 3.5)

    def test_integration_timeout_is_503(self):
        self.add_route("GET /slow")
        r = self.gw("GET", "/slow?mode=sleep&s=2")
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.json(), {"message": "Service Unavailable"})
        self.assertEqual(self.gw("GET", "/slow").status, 200)  # the gateway goes on serving


class GatewayPersistenceTest(GatewayTestBase):

    def test_routes_and_cors_survive_a_restart(self):
        d = self.daemon
        self.add_route("GET /kept", PayloadFormatVersion="1.0")
        r = d.request("PUT", "/nimbus/v1/gateway/cors", json.dumps({"AllowOrigins": ["*"]}))
        self.assertEqual(r.status, 200, r)
        d.stop()
        d.start()  # same data directory, new ports
        r = d.gateway_request("GET", "/kept", headers={"Origin": "https://o.test"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["version"], "1.0")
        self.assertEqual(r.header("access-control-allow-origin"), "*")
        listed = d.request("GET", "/nimbus/v1/routes").json()["Routes"]
        self.assertEqual(listed, [{"RouteKey": "GET /kept", "FunctionName": "ctl", "PayloadFormatVersion": "1.0"}])


