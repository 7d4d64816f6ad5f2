"""Invoke errors with Lambda's exact shapes: function errors inside a 200
(handler exception, timeout, out of memory, runtime exit, import error) and
request errors (bad payload, too large, unknown function), plus the Invoke
headers (DryRun, Event, Tail, client context)."""

import base64
import json
import re
import time
import unittest

import botocore.exceptions

from harness import (INVOKE_PAYLOAD_LIMIT, ExecutionTestCase, decode_log_result, function_arn,
                     report_line, wait_until)

SLEEPER_PY = """
import time
import uuid

BOOT_ID = str(uuid.uuid4())

def handler(event, context):
    print("sleeping", event.get("sleep", 0))
    time.sleep(event.get("sleep", 0))
    return {"boot_id": BOOT_ID}
"""

# Touches every page (b"\\x01" * n is written byte by byte), so the memory is really used.
OOM_PY = """
def handler(event, context):
    hog = []
    for _ in range(event.get("mb", 300)):
        hog.append(b"\\x01" * (1 << 20))
    return {"survived_mb": len(hog)}
"""


class FunctionErrorsTest(ExecutionTestCase):

    def test_handler_exception(self):
        self.create_function("err-value", {"app.py": (
            "def helper(x):\n"
            "    raise ValueError(f'bad value {x}')\n"
            "def handler(event, context):\n"
            "    print('about to fail')\n"
            "    helper(event['x'])\n")})
        r = self.invoke("err-value", {"x": 42}, headers={"X-Amz-Log-Type": "Tail"})
        body = self.assertUnhandled(r, "ValueError", "bad value 42")
        self.assertEqual(r.header("X-Amz-Executed-Version"), "$LATEST")
        self.assertEqual(body["requestId"], r.header("x-amzn-RequestId"))
        self.assertEqual(len(body["stackTrace"]), 2, body)
        self.assertIn('File "/var/task/app.py", line 5, in handler', body["stackTrace"][0])
        self.assertIn('File "/var/task/app.py", line 2, in helper', body["stackTrace"][1])
        log = decode_log_result(r.header("X-Amz-Log-Result"))
        self.assertIn("about to fail", log)
        self.assertIn("[ERROR] ValueError: bad value 42", log)

        # boto3's view of the same.
        out = self.client.invoke(FunctionName="err-value", Payload=b'{"x": 1}')
        self.assertEqual((out["StatusCode"], out["FunctionError"]), (200, "Unhandled"))
        self.assertEqual(json.loads(out["Payload"].read())["errorMessage"], "bad value 1")

        # The instance survives a handler exception: no new cold start.
        self.assertEqual(self.daemon.metric("nimbus_cold_starts_total", function="err-value"), 1)
        self.assertGreaterEqual(self.daemon.metric("nimbus_invocation_errors_total", function="err-value"), 2)

        self.create_function("err-node", {"index.js": "exports.handler = async () => { throw new TypeError('nope'); };\n"},
                             runtime="nodejs20.x")
        body = self.assertUnhandled(self.invoke("err-node"), "TypeError", "nope")
        self.assertEqual(body["trace"][0], "TypeError: nope")

    def test_timeout(self):
        self.create_function("err-timeout", {"app.py": SLEEPER_PY}, Timeout=1)
        _, before = self.invoke_ok("err-timeout", {"sleep": 0})

        started = time.monotonic()
        r = self.invoke("err-timeout", {"sleep": 5}, headers={"X-Amz-Log-Type": "Tail"})
        elapsed = time.monotonic() - started
        request_id = r.header("x-amzn-RequestId")
        self.assertUnhandled(r, "Sandbox.Timedout", f"RequestId: {request_id} Error: Task timed out after 1.00 seconds")
        self.assertEqual(set(r.json()), {"errorType", "errorMessage"})
        self.assertLess(elapsed, 3.0, "the timeout was not enforced at 1 s")
        log = decode_log_result(r.header("X-Amz-Log-Result"))
        self.assertRegex(log, re.escape(request_id) + r" Task timed out after 1\.00 seconds")
        report = report_line(log, request_id)
        self.assertIsNotNone(report, log)
        self.assertIn("Status: timeout", report)
        self.assertEqual(self.daemon.metric("nimbus_timeouts_total", function="err-timeout"), 1)

        # The timed-out instance is gone; the next invoke gets a fresh one and works.
        r, after = self.invoke_ok("err-timeout", {"sleep": 0}, headers={"X-Amz-Log-Type": "Tail"})
        self.assertNotEqual(after["boot_id"], before["boot_id"])
        self.assertIn("Init Duration", report_line(decode_log_result(r.header("X-Amz-Log-Result")),
                                                   r.header("x-amzn-RequestId")))

    def test_out_of_memory(self):
        self.create_function("err-oom", {"app.py": OOM_PY}, MemorySize=128, Timeout=20)
        _, body = self.invoke_ok("err-oom", {"mb": 10})  # well under the limit
        self.assertEqual(body, {"survived_mb": 10})
        self.assertEqual(self.daemon.metric("nimbus_oom_kills_total", function="err-oom"), 0)

        r = self.invoke("err-oom", {"mb": 300}, headers={"X-Amz-Log-Type": "Tail"})
        request_id = r.header("x-amzn-RequestId")
        self.assertUnhandled(r, "Runtime.OutOfMemory",
                             f"RequestId: {request_id} Error: Runtime exited with error: signal: killed")
        report = report_line(decode_log_result(r.header("X-Amz-Log-Result")), request_id)
        self.assertIsNotNone(report)
        self.assertIn("Status: error\tError Type: Runtime.OutOfMemory", report)
        with self.subTest("REPORT shows the memory the instance reached"):
            used = int(re.search(r"\tMax Memory Used: (\d+) MB", report).group(1))
            self.assertGreaterEqual(used, 100, report)  # Lambda: "Max Memory Used: 128 MB" on an OOM kill
        self.assertEqual(self.daemon.metric("nimbus_oom_kills_total", function="err-oom"), 1)

        _, body = self.invoke_ok("err-oom", {"mb": 10})  # a fresh instance
        self.assertEqual(body, {"survived_mb": 10})
        self.assertServes()

    def test_runtime_exit(self):
        self.create_function("err-exit", {"app.py": "import os\ndef handler(event, context):\n    os._exit(3)\n"})
        r = self.invoke("err-exit", headers={"X-Amz-Log-Type": "Tail"})
        request_id = r.header("x-amzn-RequestId")
        self.assertUnhandled(r, "Runtime.ExitError",
                             f"RequestId: {request_id} Error: Runtime exited with error: exit status 3")
        report = report_line(decode_log_result(r.header("X-Amz-Log-Result")), request_id)
        self.assertIn("Status: error\tError Type: Runtime.ExitError", report)
        self.assertEqual(self.daemon.metric("nimbus_runtime_exits_total", function="err-exit"), 1)
        # Again: a new instance is started and exits the same way.
        r = self.invoke("err-exit")
        self.assertUnhandled(r, "Runtime.ExitError")
        self.assertEqual(self.daemon.metric("nimbus_runtime_exits_total", function="err-exit"), 2)
        self.assertServes()

    def test_import_error(self):
        self.create_function("err-import", {"app.py": "import no_such_module_xyz\n"
                                                      "def handler(event, context):\n    return 1\n"})
        body = self.assertUnhandled(self.invoke("err-import"), "Runtime.ImportModuleError",
                                    "Unable to import module 'app': No module named 'no_such_module_xyz'")
        self.assertEqual(body.get("stackTrace"), [])

        self.create_function("err-handler-missing", {"app.py": "def other(event, context):\n    return 1\n"})
        self.assertUnhandled(self.invoke("err-handler-missing"), "Runtime.HandlerNotFound",
                             "Handler 'handler' missing on module 'app'")

        self.create_function("err-syntax", {"app.py": "def handler(event, context)\n    return 1\n"})
        self.assertUnhandled(self.invoke("err-syntax"), "Runtime.UserCodeSyntaxError")
        self.assertServes()


class InvokeRequestTest(ExecutionTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.create_function("echo", {"app.py": (
                "def handler(event, context):\n"
                "    print('echo handler output', event)\n"
                "    cc = context.client_context\n"
                "    return {'event': event,\n"
                "            'custom': cc.custom if cc else None,\n"
                "            'env': cc.env if cc else None,\n"
                "            'installation_id': cc.client.installation_id if cc and cc.client else None}\n")})
        except BaseException:
            cls.tearDownClass()
            raise

    def invocations(self):
        return self.daemon.metric("nimbus_invocations_total", function="echo")

    def test_payload_not_json(self):
        before = self.invocations()
        r = self.invoke("echo", b"{not json")
        self.assertInvokeError(r, 400, "InvalidRequestContentException")
        self.assertTrue(r.json()["message"].startswith(
            "Could not parse request body into json: Could not parse payload into json: "), r)
        self.assertEqual(self.invocations(), before)

        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.client.invoke(FunctionName="echo", Payload=b"[1, 2")
        self.assertEqual(ctx.exception.response["Error"]["Code"], "InvalidRequestContentException")

        # Any JSON value is a payload, and an empty body is allowed.
        for payload in (b'"just a string"', b"[1, 2, 3]", b"17", b"null"):
            _, body = self.invoke_ok("echo", payload)
            self.assertEqual(body["event"], json.loads(payload))
        self.assertEqual(self.invoke("echo", b"").status, 200)

    def test_payload_too_large(self):
        before = self.invocations()
        big = b'"' + b"x" * (INVOKE_PAYLOAD_LIMIT - 1) + b'"'  # 6291457 bytes, valid JSON
        self.assertEqual(len(big), INVOKE_PAYLOAD_LIMIT + 1)
        self.assertInvokeError(self.invoke("echo", big), 413, "RequestEntityTooLargeException",
                               "Request must be smaller than 6291456 bytes for the InvokeFunction operation")
        self.assertEqual(self.invocations(), before)

        # Just under the limit goes through.
        fits = b'{"k": "' + b"y" * (INVOKE_PAYLOAD_LIMIT - 1024) + b'"}'
        r, body = self.invoke_ok("echo", fits)
        self.assertEqual(len(body["event"]["k"]), INVOKE_PAYLOAD_LIMIT - 1024)

    def test_unknown_function(self):
        message = "Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope:$LATEST"
        self.assertInvokeError(self.invoke("nope"), 404, "ResourceNotFoundException", message, message_key="Message")
        with self.assertRaises(self.client.exceptions.ResourceNotFoundException) as ctx:
            self.client.invoke(FunctionName="nope")
        self.assertEqual(ctx.exception.response["Error"]["Message"], message)
        # By ARN too.
        self.assertInvokeError(self.invoke(function_arn("nope")), 404, "ResourceNotFoundException", message,
                               message_key="Message")

    def test_dry_run(self):
        before = self.invocations()
        r = self.invoke("echo", headers={"X-Amz-Invocation-Type": "DryRun"})
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, b"")
        out = self.client.invoke(FunctionName="echo", InvocationType="DryRun")
        self.assertEqual(out["StatusCode"], 204)
        self.assertEqual(self.invocations(), before, "DryRun ran the function")
        self.assertInvokeError(self.invoke("nope", headers={"X-Amz-Invocation-Type": "DryRun"}), 404,
                               "ResourceNotFoundException")

    def test_event_invocation_is_accepted_and_runs_later(self):
        # The full asynchronous behaviour is in test_async.py.
        before = self.invocations()
        r = self.invoke("echo", {"async": True}, headers={"X-Amz-Invocation-Type": "Event"})
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.body, b"", r)
        self.assertTrue(wait_until(lambda: self.invocations() > before, 30), "the Event invoke never ran")

    def test_log_tail(self):
        r, body = self.invoke_ok("echo", {"tail": "me"}, headers={"X-Amz-Log-Type": "Tail"})
        request_id = r.header("x-amzn-RequestId")
        lines = decode_log_result(r.header("X-Amz-Log-Result")).splitlines()
        start = lines.index(f"START RequestId: {request_id} Version: $LATEST")
        output = lines.index("echo handler output {'tail': 'me'}")
        end = lines.index(f"END RequestId: {request_id}")
        report = [i for i, line in enumerate(lines) if line.startswith(f"REPORT RequestId: {request_id}\t")]
        self.assertEqual(len(report), 1, lines)
        self.assertTrue(start < output < end < report[0], lines)

        # Without Tail (or with None) there is no log header.
        self.assertIsNone(self.invoke_ok("echo")[0].header("X-Amz-Log-Result"))
        self.assertIsNone(self.invoke_ok("echo", headers={"X-Amz-Log-Type": "None"})[0].header("X-Amz-Log-Result"))

        # Only the last 4 KB of a long log.
        self.create_function("chatty", {"app.py": "def handler(event, context):\n"
                                                  "    for i in range(2000):\n"
                                                  "        print('line', i)\n"
                                                  "    return 1\n"})
        r, _ = self.invoke_ok("chatty", headers={"X-Amz-Log-Type": "Tail"})
        raw = base64.b64decode(r.header("X-Amz-Log-Result"))
        self.assertLessEqual(len(raw), 4096)
        self.assertGreater(len(raw), 3000)
        self.assertIn(b"line 1999", raw)
        self.assertIn(f"REPORT RequestId: {r.header('x-amzn-RequestId')}".encode(), raw)

    def test_client_context(self):
        ctx = {"custom": {"tenant": "t-1", "n": 3}, "env": {"locale": "en"}, "client": {"installation_id": "inst-9"}}
        encoded = base64.b64encode(json.dumps(ctx).encode()).decode()
        _, body = self.invoke_ok("echo", headers={"X-Amz-Client-Context": encoded})
        self.assertEqual(body["custom"], {"tenant": "t-1", "n": 3})
        self.assertEqual(body["env"], {"locale": "en"})
        self.assertEqual(body["installation_id"], "inst-9")

        out = self.client.invoke(FunctionName="echo", ClientContext=encoded)
        self.assertEqual(json.loads(out["Payload"].read())["custom"], {"tenant": "t-1", "n": 3})

        # Without the header the handler sees no client context.
        self.assertIsNone(self.invoke_ok("echo")[1]["custom"])


if __name__ == "__main__":
    unittest.main()
