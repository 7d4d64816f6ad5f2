"""Issue 5 item 4: the gateway's API keys and usage plans (nimbus's extension
after API Gateway REST APIs) — x-api-key on routes that require one, 403 for
missing/unknown/disabled keys, the plan's throttle (429 Too Many Requests)
and quota (429 Limit Exceeded), the key in the 1.0 event, persistence —
driven over real HTTP (http.client, curl) and the nimbus CLI against the
real daemon."""

import json
import os
import subprocess
import time

from harness import HOST_CURL, wait_until
from test_gateway import GatewayTestBase

FORBIDDEN = {"message": "Forbidden"}


class ApiKeyTestBase(GatewayTestBase):

    def api(self, method, path, body=None, query=None, expect=None):
        """A control call under /nimbus/v1/gateway/; asserts the status when `expect` is given."""
        r = self.daemon.request(method, "/nimbus/v1/gateway/" + path,
                                json.dumps(body) if body is not None else b"", query=query)
        if expect is not None:
            self.assertEqual(r.status, expect, r)
        return r

    def add_key(self, name, **extra):
        return self.api("POST", "apikeys", {"Name": name, **extra}, expect=201).json()

    def add_plan(self, name, rate=None, burst=None, quota=None, period="DAY"):
        body = {"Name": name}
        if rate is not None:
            body["Throttle"] = {"RateLimit": rate, "BurstLimit": burst}
        if quota is not None:
            body["Quota"] = {"Limit": quota, "Period": period}
        return self.api("POST", "usage-plans", body, expect=201).json()

    def attach(self, plan, key, expect=200):
        return self.api("POST", "usage-plans/keys", {"UsagePlan": plan, "ApiKey": key}, expect=expect)

    def keyed_route(self, key, **extra):
        self.add_route(key, ApiKeyRequired=True, **extra)

    def with_key(self, target, value, method="GET"):
        return self.gw(method, target, headers={"x-api-key": value})

    def assertRefused(self, r, status, body):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.json(), body, r)


class ApiKeyEnforcementTest(ApiKeyTestBase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            for body in ({"Name": "open"}, {"Name": "slow", "Throttle": {"RateLimit": 0.05, "BurstLimit": 2}},
                         {"Name": "tiny", "Quota": {"Limit": 3, "Period": "DAY"}}):
                r = cls.daemon.request("POST", "/nimbus/v1/gateway/usage-plans", json.dumps(body))
                assert r.status == 201, r
        except BaseException:
            cls.tearDownClass()
            raise

    def test_missing_wrong_and_valid_keys(self):
        key = self.add_key("alpha")
        self.assertRegex(key["Value"], r"^[A-Za-z0-9]{40}$")
        self.assertRegex(key["Id"], r"^[a-z0-9]{10}$")
        self.attach("open", "alpha")
        self.keyed_route("GET /keyed/basic")
        self.add_route("GET /keyed/free")
        missing = self.daemon.metric("nimbus_gateway_api_key_refused_total", reason="missing")
        invalid = self.daemon.metric("nimbus_gateway_api_key_refused_total", reason="invalid")
        integration = self.daemon.metric("nimbus_gateway_integration_duration_ms_count")
        self.assertRefused(self.gw("GET", "/keyed/basic"), 403, FORBIDDEN)
        self.assertRefused(self.with_key("/keyed/basic", "x" * 40), 403, FORBIDDEN)
        self.assertRefused(self.with_key("/keyed/basic", key["Value"][:-1]), 403, FORBIDDEN)
        self.assertRefused(self.with_key("/keyed/basic", key["Value"].lower()), 403, FORBIDDEN)
        # Refused before the function: nothing was invoked.
        self.assertEqual(self.daemon.metric("nimbus_gateway_integration_duration_ms_count"), integration)
        self.assertEqual(self.daemon.metric("nimbus_gateway_api_key_refused_total", reason="missing"), missing + 1)
        self.assertEqual(self.daemon.metric("nimbus_gateway_api_key_refused_total", reason="invalid"), invalid + 3)
        r = self.gw("GET", "/keyed/basic", headers={"X-API-Key": key["Value"]})  # any header-name case
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["routeKey"], "GET /keyed/basic")
        self.assertEqual(self.gw("GET", "/keyed/free").status, 200)  # routes without the flag need no key

    def test_key_in_no_plan_is_forbidden(self):
        key = self.add_key("planless")
        self.keyed_route("GET /keyed/planless")
        self.assertRefused(self.with_key("/keyed/planless", key["Value"]), 403, FORBIDDEN)
        self.attach("open", "planless")
        self.assertEqual(self.with_key("/keyed/planless", key["Value"]).status, 200)
        self.api("DELETE", "usage-plans/keys", query={"UsagePlan": "open", "ApiKey": "planless"}, expect=204)
        self.assertRefused(self.with_key("/keyed/planless", key["Value"]), 403, FORBIDDEN)

    def test_disabled_key_is_forbidden_until_enabled(self):
        key = self.add_key("toggled", Value="ToggledKeyValue0123456789")
        self.attach("open", "toggled")
        self.keyed_route("GET /keyed/toggle")
        self.assertEqual(self.with_key("/keyed/toggle", key["Value"]).status, 200)
        rc, out, err = self.daemon.cli("apikey", "disable", "toggled")
        self.assertEqual(rc, 0, err)
        self.assertRefused(self.with_key("/keyed/toggle", key["Value"]), 403, FORBIDDEN)
        rc, out, err = self.daemon.cli("apikey", "enable", "toggled")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.with_key("/keyed/toggle", key["Value"]).status, 200)

    def test_throttle_is_per_key(self):
        first = self.add_key("fast1")
        second = self.add_key("fast2")
        self.attach("slow", "fast1")
        self.attach("slow", "fast2")
        self.keyed_route("GET /keyed/throttle")
        throttled = self.daemon.metric("nimbus_gateway_api_key_refused_total", reason="throttled")
        self.assertEqual(self.with_key("/keyed/throttle", first["Value"]).status, 200)
        self.assertEqual(self.with_key("/keyed/throttle", first["Value"]).status, 200)
        self.assertRefused(self.with_key("/keyed/throttle", first["Value"]), 429, {"message": "Too Many Requests"})
        # The other key of the same plan has a bucket of its own.
        self.assertEqual(self.with_key("/keyed/throttle", second["Value"]).status, 200)
        self.assertEqual(self.daemon.metric("nimbus_gateway_api_key_refused_total", reason="throttled"),
                         throttled + 1)

    def test_quota_is_limit_exceeded(self):
        first = self.add_key("quota1")
        second = self.add_key("quota2")
        self.attach("tiny", "quota1")
        self.attach("tiny", "quota2")
        self.keyed_route("GET /keyed/quota")
        for _ in range(3):
            self.assertEqual(self.with_key("/keyed/quota", first["Value"]).status, 200)
        self.assertRefused(self.with_key("/keyed/quota", first["Value"]), 429, {"message": "Limit Exceeded"})
        self.assertRefused(self.with_key("/keyed/quota", first["Value"]), 429, {"message": "Limit Exceeded"})
        self.assertEqual(self.with_key("/keyed/quota", second["Value"]).status, 200)
        self.assertEqual(self.daemon.metric("nimbus_gateway_api_key_refused_total", reason="quota"), 2)

    def test_key_in_the_v1_event_and_not_in_v2(self):
        key = self.add_key("eventkey")
        self.attach("open", "eventkey")
        self.keyed_route("GET /keyed/v1", PayloadFormatVersion="1.0")
        self.keyed_route("GET /keyed/v2")
        r = self.with_key("/keyed/v1", key["Value"])
        self.assertEqual(r.status, 200, r)
        identity = r.json()["requestContext"]["identity"]
        self.assertEqual(identity["apiKey"], key["Value"])
        self.assertEqual(identity["apiKeyId"], key["Id"])
        self.assertEqual(identity["sourceIp"], "127.0.0.1")
        # 2.0 has no identity block: the event's shape stays API Gateway's.
        r = self.with_key("/keyed/v2", key["Value"])
        self.assertEqual(r.status, 200, r)
        event = r.json()
        self.assertNotIn("identity", event["requestContext"])
        self.assertEqual(event["headers"]["x-api-key"], key["Value"])
        # A 1.0 route without the flag has null key fields.
        self.add_route("GET /keyed/v1-open", PayloadFormatVersion="1.0")
        identity = self.with_key("/keyed/v1-open", key["Value"]).json()["requestContext"]["identity"]
        self.assertIsNone(identity["apiKey"])
        self.assertIsNone(identity["apiKeyId"])

    def test_removing_a_key_takes_effect_at_once(self):
        key = self.add_key("doomed")
        self.attach("open", "doomed")
        self.keyed_route("GET /keyed/doomed")
        self.assertEqual(self.with_key("/keyed/doomed", key["Value"]).status, 200)
        rc, out, err = self.daemon.cli("apikey", "rm", "doomed")
        self.assertEqual(rc, 0, err)
        self.assertRefused(self.with_key("/keyed/doomed", key["Value"]), 403, FORBIDDEN)
        self.assertNotIn("doomed", [k["Name"] for k in self.api("GET", "apikeys").json()["ApiKeys"]])

    def test_access_log_names_the_key(self):
        key = self.add_key("logged")
        self.attach("open", "logged")
        self.keyed_route("GET /keyed/logged")
        self.assertEqual(self.with_key("/keyed/logged", key["Value"]).status, 200)
        self.assertEqual(self.gw("GET", "/keyed/logged").status, 403)
        path = os.path.join(self.daemon.data_dir, "logs", "gateway-access.log")
        lines = []

        def logged():
            with open(path) as f:
                lines[:] = [json.loads(l) for l in f if '"/keyed/logged"' in l]
            return len(lines) == 2
        self.assertTrue(wait_until(logged, 5), lines)
        self.assertEqual(lines[0]["apiKeyId"], key["Id"])
        self.assertEqual(lines[0]["status"], 200)
        self.assertNotIn("apiKeyId", lines[1])
        self.assertEqual(lines[1]["error"], "no x-api-key")
        self.assertNotIn(key["Value"], open(path).read())  # values never reach the log

    def test_curl_and_the_cli_end_to_end(self):
        rc, out, err = self.daemon.cli("apikey", "add", "clikey")
        self.assertEqual(rc, 0, err)
        value = out.split("value (shown once, keep it): ")[1].split()[0]
        self.assertRegex(value, r"^[A-Za-z0-9]{40}$")
        rc, out, err = self.daemon.cli("usage-plan", "add", "cliplan", "--rate", "100", "--burst", "10",
                                       "--quota", "1000", "--period", "month")
        self.assertEqual(rc, 0, err)
        rc, out, err = self.daemon.cli("usage-plan", "attach", "cliplan", "clikey")
        self.assertEqual(rc, 0, err)
        rc, out, err = self.daemon.cli("route", "add", "GET /keyed/cli", "--function", "ctl", "--api-key-required")
        self.assertEqual(rc, 0, err)
        self.assertIn("API key required", out)
        rc, out, err = self.daemon.cli("route", "ls")
        self.assertEqual(rc, 0, err)
        self.assertIn("API KEY", out)
        line = next(l for l in out.splitlines() if l.startswith("GET /keyed/cli "))
        self.assertIn(" yes ", line)
        rc, out, err = self.daemon.cli("apikey", "ls")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"clikey\s+[a-z0-9]{10}\s+yes\s+cliplan")
        self.assertNotIn(value, out)  # the value is shown once, at creation
        rc, out, err = self.daemon.cli("usage-plan", "ls")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"cliplan\s+[a-z0-9]{10}\s+100 rps, burst 10\s+1000 per MONTH\s+clikey")
        url = self.daemon.gateway + "/keyed/cli"
        codes = []
        for headers in ([], ["-H", "x-api-key: " + value], ["-H", "x-api-key: nope"]):
            p = subprocess.run([HOST_CURL, "-s", "-o", "/dev/null", "-w", "%{http_code}", *headers, url],
                               capture_output=True, text=True, timeout=30)
            codes.append(p.stdout)
        self.assertEqual(codes, ["403", "200", "403"])

    def test_bad_input_names_the_field(self):
        cases = [
            ("POST", "usage-plans", {"Name": "bad", "Throttle": {"RateLimit": -1, "BurstLimit": 1}}, 400,
             "Throttle.RateLimit must be a number above 0"),
            ("POST", "usage-plans", {"Name": "bad", "Quota": {"Limit": 5, "Period": "YEAR"}}, 400,
             "Quota.Period must be DAY, WEEK or MONTH"),
            ("POST", "usage-plans", {"Name": "bad", "Quota": {"Limit": 0, "Period": "DAY"}}, 400,
             "Quota.Limit must be an integer of at least 1"),
            ("POST", "apikeys", {"Name": "bad", "Value": "too-short"}, 400, "Value must be 20-128 letters and digits"),
            ("POST", "apikeys", {"Name": "bad key"}, 400, "Name is required: 1-128 letters, digits, '-', '_' or '.'"),
            ("POST", "usage-plans/keys", {"UsagePlan": "open", "ApiKey": "ghost"}, 404, "API key not found: ghost"),
            ("POST", "usage-plans/keys", {"UsagePlan": "ghost", "ApiKey": "ghost"}, 404, "Usage plan not found: ghost"),
            ("POST", "usage-plans/keys", {"UsagePlan": "open"}, 400, "ApiKey is required"),
            ("PUT", "apikeys", {"Name": "ghost", "Enabled": False}, 404, "API key not found: ghost"),
            ("PUT", "apikeys", {"Name": 7, "Enabled": False}, 400,
             "Name is required: 1-128 letters, digits, '-', '_' or '.'"),
            ("PUT", "apikeys", {"Name": "ghost", "Enabled": "no"}, 400, "Enabled must be true or false"),
            ("POST", "apikeys", {"Name": "mine", "Id": "abcdefghij"}, 400, "Id is chosen by nimbus; leave it out"),
            ("POST", "usage-plans", {"Name": "mine", "Id": "abcdefghij"}, 400, "Id is chosen by nimbus; leave it out"),
            ("POST", "usage-plans", {"Name": "mine", "Throttle": {"RateLimit": 1}}, 400,
             "Throttle.BurstLimit must be an integer of at least 1"),
            ("POST", "usage-plans", ["not", "an", "object"], 400, "The usage plan must be a JSON object"),
        ]
        for method, path, body, status, message in cases:
            with self.subTest(path=path, body=body):
                r = self.api(method, path, body)
                self.assertEqual(r.status, status, r)
                self.assertEqual(r.error_message(), message, r)
        self.assertEqual(self.api("DELETE", "apikeys", query={"Name": "ghost"}).status, 404)
        r = self.add_route("GET /keyed/bad", expect=400, ApiKeyRequired="yes")
        self.assertEqual(r.error_message(), "ApiKeyRequired must be true or false")

        self.add_key("dup", Value="DuplicateValue0123456789")
        self.assertEqual(self.api("POST", "apikeys", {"Name": "dup"}).status, 409)
        r = self.api("POST", "apikeys", {"Name": "dup2", "Value": "DuplicateValue0123456789"})
        self.assertEqual(r.status, 409, r)
        self.attach("open", "dup")
        r = self.attach("tiny", "dup", expect=409)
        self.assertEqual(r.error_message(), "API key dup is in usage plan open already; a key is in one usage plan")
        r = self.api("DELETE", "usage-plans", query={"Name": "open"})
        self.assertEqual(r.status, 409, r)
        self.assertIn("detach its keys first", r.error_message())

        for args, message in [
            (("usage-plan", "add", "p", "--rate=-1", "--burst", "1"), "nimbus: --rate must be a number above 0"),
            (("usage-plan", "add", "p", "--quota", "5", "--period", "YEAR"),
             "nimbus: --period must be DAY, WEEK or MONTH (got 'YEAR')"),
            (("usage-plan", "attach", "open", "ghost"), "nimbus: ResourceNotFoundException: API key not found: ghost"),
            (("apikey", "add", "short", "--value", "abc"), "nimbus: ValidationException: Value must be 20-128 letters and digits"),
        ]:
            with self.subTest(args=args):
                rc, out, err = self.daemon.cli(*args)
                self.assertEqual(rc, 1, out)
                self.assertEqual(err.strip(), message)
        self.assertTrue(self.daemon.alive())


class ApiKeyPersistenceTest(ApiKeyTestBase):

    def test_keys_plans_and_quota_counts_survive_a_restart(self):
        d = self.daemon
        key = self.add_key("kept")
        self.add_plan("keptplan", quota=3)
        self.attach("keptplan", "kept")
        self.keyed_route("GET /kept")
        self.assertEqual(self.with_key("/kept", key["Value"]).status, 200)
        self.assertEqual(self.with_key("/kept", key["Value"]).status, 200)
        d.stop()
        d.start()  # same data directory, new ports
        self.assertRefused(self.gw("GET", "/kept"), 403, FORBIDDEN)
        self.assertEqual(self.with_key("/kept", key["Value"]).status, 200)  # the third of three
        self.assertRefused(self.with_key("/kept", key["Value"]), 429, {"message": "Limit Exceeded"})
        keys = self.api("GET", "apikeys").json()["ApiKeys"]
        self.assertEqual(keys, [{"Name": "kept", "Id": key["Id"], "Enabled": True, "UsagePlan": "keptplan"}])
        plans = self.api("GET", "usage-plans").json()["UsagePlans"]
        self.assertEqual([(p["Name"], p["Quota"], p["ApiKeys"]) for p in plans],
                         [("keptplan", {"Limit": 3, "Period": "DAY"}, ["kept"])])

    def test_quota_counts_reach_the_store_without_a_clean_stop(self):
        # Counts are flushed every 10 s: after that a crash (SIGKILL) keeps them.
        d = self.daemon
        key = self.add_key("crashy")
        self.add_plan("crashplan", quota=2, period="MONTH")
        self.attach("crashplan", "crashy")
        self.keyed_route("GET /crashy")
        self.assertEqual(self.with_key("/crashy", key["Value"]).status, 200)
        self.assertEqual(self.with_key("/crashy", key["Value"]).status, 200)
        time.sleep(10.5)
        d.kill()
        d.start()
        self.assertRefused(self.with_key("/crashy", key["Value"]), 429, {"message": "Limit Exceeded"})


if __name__ == "__main__":
    import unittest
    unittest.main()
