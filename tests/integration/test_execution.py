"""Running functions: handler results and context for every runtime, warm
reuse, code updates, the aws CLI and `nimbus invoke`, and `nimbus logs`.

Errors are in test_execution_errors.py, scaling and limits in
test_execution_scaling.py, isolation in test_execution_isolation.py, runtime
faults in test_execution_faults.py, AWS's own Node.js runtime client in
test_execution_ric.py."""

import base64
import json
import os
import re
import subprocess
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from harness import (HOST_CURL, NIMBUS_BIN, UUID_RE, ExecutionTestCase, LineReader, _clean_env,
                     decode_log_result, function_arn, make_zip, provided_zip, report_line, wait_until)

CONTEXT_PY = """
import os
import uuid

BOOT_ID = str(uuid.uuid4())  # one per instance (module import)
COUNTER = 0

def handler(event, context):
    global COUNTER
    COUNTER += 1
    print("context-handler ran", COUNTER, event.get("marker"))
    return {
        "event": event,
        "counter": COUNTER,
        "boot_id": BOOT_ID,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "invoked_function_arn": context.invoked_function_arn,
        "aws_request_id": context.aws_request_id,
        "log_group_name": context.log_group_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "env_function_name": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
    }
"""

# A Runtime API client in POSIX sh + curl: the provided.al2023 contract.
SHELL_BOOTSTRAP = r"""#!/bin/sh
set -eu
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
echo "shell bootstrap starting for $_HANDLER"
COUNT=0
while true; do
  EVENT=$(/usr/bin/curl -sS -D /tmp/headers "$API/invocation/next")
  RID=$(sed -n 's/^[Ll]ambda-[Rr]untime-[Aa]ws-[Rr]equest-[Ii]d: *\([^[:space:]]*\).*/\1/p' /tmp/headers)
  ARN=$(sed -n 's/^[Ll]ambda-[Rr]untime-[Ii]nvoked-[Ff]unction-[Aa]rn: *\([^[:space:]]*\).*/\1/p' /tmp/headers)
  COUNT=$((COUNT + 1))
  echo "shell handled $RID"
  /usr/bin/curl -sS -o /dev/null -X POST "$API/invocation/$RID/response" \
    -d "{\"echo\":$EVENT,\"request_id\":\"$RID\",\"arn\":\"$ARN\",\"handler\":\"$_HANDLER\",\"count\":$COUNT,\"cwd\":\"$(pwd)\"}"
done
"""


class ExecutionBasicsTest(ExecutionTestCase):

    def test_python_result_and_context(self):
        self.create_function("py-context", {"app.py": CONTEXT_PY}, Timeout=5)
        r, body = self.invoke_ok("py-context", {"marker": "m1", "n": [1, 2]}, headers={"X-Amz-Log-Type": "Tail"})
        self.assertEqual(r.header("X-Amz-Executed-Version"), "$LATEST")
        self.assertEqual(r.header("Content-Type"), "application/json")
        self.assertEqual(body["event"], {"marker": "m1", "n": [1, 2]})
        self.assertEqual(body["function_name"], "py-context")
        self.assertEqual(body["env_function_name"], "py-context")
        self.assertEqual(body["function_version"], "$LATEST")
        self.assertEqual(body["memory_limit_in_mb"], "128")
        self.assertEqual(body["invoked_function_arn"], function_arn("py-context"))
        self.assertEqual(body["log_group_name"], "/aws/lambda/py-context")
        self.assertGreater(body["remaining_ms"], 0)
        self.assertLessEqual(body["remaining_ms"], 5000)

        # One request id everywhere: the handler's, the response header's, the REPORT line's.
        request_id = r.header("x-amzn-RequestId")
        self.assertRegex(request_id, UUID_RE)
        self.assertEqual(body["aws_request_id"], request_id)
        log = decode_log_result(r.header("X-Amz-Log-Result"))
        self.assertIsNotNone(report_line(log, request_id), log)

        # boto3 sees the same thing.
        out = self.client.invoke(FunctionName="py-context", Payload=b'{"marker": "m2"}')
        self.assertEqual(out["StatusCode"], 200)
        self.assertEqual(out["ExecutedVersion"], "$LATEST")
        self.assertNotIn("FunctionError", out)
        got = json.loads(out["Payload"].read())
        self.assertEqual(got["event"], {"marker": "m2"})
        self.assertEqual(got["aws_request_id"], out["ResponseMetadata"]["RequestId"])

    def test_warm_instance_keeps_module_globals(self):
        self.create_function("py-warm", {"app.py": CONTEXT_PY})
        bodies = [self.invoke_ok("py-warm", {"i": i})[1] for i in range(3)]
        self.assertEqual([b["counter"] for b in bodies], [1, 2, 3])
        self.assertEqual(len({b["boot_id"] for b in bodies}), 1)
        self.assertEqual(len({b["aws_request_id"] for b in bodies}), 3)
        self.assertEqual(self.daemon.metric("nimbus_cold_starts_total", function="py-warm"), 1)
        self.assertEqual(self.daemon.metric("nimbus_invocations_total", function="py-warm"), 3)
        self.assertEqual(self.daemon.metric("nimbus_instances", function="py-warm"), 1)

    def test_python_client_loads_precompiled_bytecode(self):
        # The runtime client is a module whose bytecode nimbus compiled at
        # build time; the interpreter inside the instance must accept it
        # (same magic number, unchecked-hash flags), or every cold start
        # compiles 800 lines again.
        code = (
            "import importlib.util, sys\n"
            "def handler(event, context):\n"
            "    m = sys.modules['nimbus_lambda_runtime']\n"
            "    data = open(m.__cached__, 'rb').read(16)\n"
            "    return {'cached': m.__cached__, 'magic_ok': data[:4] == importlib.util.MAGIC_NUMBER,\n"
            "            'flags': int.from_bytes(data[4:8], 'little')}\n"
        )
        self.create_function("py-bytecode", {"app.py": code})
        _, body = self.invoke_ok("py-bytecode", {})
        self.assertTrue(body["cached"].startswith("/var/runtime/python/__pycache__/nimbus_lambda_runtime."), body)
        self.assertTrue(body["magic_ok"], body)
        self.assertEqual(body["flags"], 0b01, body)  # hash-based, not checked against the source

    def test_node_commonjs_async_handler(self):
        self.create_function("node-cjs", {"index.js": (
            "let count = 0;\n"
            "exports.handler = async (event, context) => {\n"
            "  count += 1;\n"
            "  console.log('cjs handler', count);\n"
            "  return {event, count, cjs: typeof require === 'function' && typeof module === 'object',\n"
            "          name: context.functionName, mem: context.memoryLimitInMB, id: context.awsRequestId,\n"
            "          arn: context.invokedFunctionArn, left: context.getRemainingTimeInMillis()};\n"
            "};\n")}, runtime="nodejs20.x")
        r, body = self.invoke_ok("node-cjs", {"a": 1})
        self.assertEqual(body["event"], {"a": 1})
        self.assertTrue(body["cjs"])
        self.assertEqual((body["name"], body["mem"], body["arn"]), ("node-cjs", "128", function_arn("node-cjs")))
        self.assertEqual(body["id"], r.header("x-amzn-RequestId"))
        self.assertTrue(0 < body["left"] <= 3000, body)
        _, body = self.invoke_ok("node-cjs", {"a": 2})
        self.assertEqual(body["count"], 2)  # warm: module state kept

    def test_node_esm_handler(self):
        self.create_function("node-esm", {"index.mjs": (
            "import { createHash } from 'node:crypto';\n"
            "export const handler = async (event, context) => ({\n"
            "  esm: typeof require === 'undefined',\n"
            "  sha: createHash('sha256').update(event.text).digest('hex'),\n"
            "  id: context.awsRequestId,\n"
            "});\n")}, runtime="nodejs20.x")
        r, body = self.invoke_ok("node-esm", {"text": "abc"})
        self.assertEqual(body, {"esm": True, "id": r.header("x-amzn-RequestId"),
                                "sha": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"})

    def test_node_callback_handler(self):
        self.create_function("node-cb", {"index.js": (
            "exports.handler = function (event, context, callback) {\n"
            "  setTimeout(() => callback(null, {callback: true, doubled: event.n * 2, id: context.awsRequestId}), 20);\n"
            "};\n")}, runtime="nodejs20.x")
        r, body = self.invoke_ok("node-cb", {"n": 21})
        self.assertEqual(body, {"callback": True, "doubled": 42, "id": r.header("x-amzn-RequestId")})

        self.create_function("node-cb-err", {"index.js": (
            "exports.handler = (event, context, callback) => callback(new RangeError('out of range'));\n")},
            runtime="nodejs20.x")
        err = self.assertUnhandled(self.invoke("node-cb-err"), "RangeError")
        self.assertEqual(err["errorMessage"], "out of range")

    def test_provided_shell_bootstrap(self):
        if not os.access(HOST_CURL, os.X_OK):
            self.skipTest(f"{HOST_CURL} is not installed on the host, so the sandbox (which binds the host /usr) "
                          "has no curl for the shell bootstrap")
        self.create_function("sh-runtime", zip_bytes=provided_zip(SHELL_BOOTSTRAP), runtime="provided.al2023",
                             handler="function.handler")
        for i in (1, 2):
            r, body = self.invoke_ok("sh-runtime", {"i": i}, headers={"X-Amz-Log-Type": "Tail"})
            self.assertEqual(body, {"echo": {"i": i}, "request_id": r.header("x-amzn-RequestId"),
                                    "arn": function_arn("sh-runtime"), "handler": "function.handler",
                                    "count": i, "cwd": "/var/task"})
            log = decode_log_result(r.header("X-Amz-Log-Result"))
            self.assertIn(f"shell handled {body['request_id']}", log)
        self.assertEqual(self.daemon.metric("nimbus_cold_starts_total", function="sh-runtime"), 1)

    def test_update_code_runs_new_code(self):
        self.create_function("py-update", {"app.py": "def handler(event, context):\n    return 'v1'\n"})
        self.assertEqual(self.invoke_ok("py-update")[1], "v1")  # leaves a warm v1 instance
        self.client.update_function_code(
            FunctionName="py-update", ZipFile=make_zip({"app.py": "def handler(event, context):\n    return 'v2'\n"}))
        self.assertEqual(self.invoke_ok("py-update")[1], "v2")
        self.assertEqual(self.invoke_ok("py-update")[1], "v2")

        # A configuration change reaches the next invoke too.
        self.client.update_function_configuration(FunctionName="py-update", Handler="other.handler")
        self.client.update_function_code(FunctionName="py-update", ZipFile=make_zip(
            {"other.py": "import os\ndef handler(event, context):\n    return os.environ['_HANDLER']\n"}))
        self.assertEqual(self.invoke_ok("py-update")[1], "other.handler")

    def test_delete_during_an_invocation_keeps_the_code_until_the_instance_ends(self):
        # The instance mounts the function's unpacked code: deleting the
        # function must not take the files from under a running (or starting)
        # instance. They go when the instance does.
        code = ("import time\n"
                "def handler(event, context):\n"
                "    time.sleep(2)\n"
                "    with open('/var/task/data.txt') as f:\n"
                "        return f.read()\n")
        created = self.create_function("py-deleted", {"app.py": code, "data.txt": "still here"})
        code_dir = os.path.join(self.daemon.data_dir, "code", base64.b64decode(created["CodeSha256"]).hex())
        self.assertTrue(os.path.isdir(code_dir), code_dir)
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(self.invoke, "py-deleted")
            self.assertTrue(wait_until(lambda: self.daemon.metric("nimbus_instances", function="py-deleted") >= 1, 20))
            time.sleep(0.3)
            self.client.delete_function(FunctionName="py-deleted")
            self.assertTrue(os.path.isdir(code_dir), "the code went while its instance ran")
            r = pending.result(60)
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.header("X-Amz-Function-Error"), r)
        self.assertEqual(r.json(), "still here")
        self.assertTrue(wait_until(lambda: not os.path.exists(code_dir), 15), f"{code_dir} outlived its instance")

    def test_aws_cli_invoke_with_tail(self):
        self.create_function("cli-invoke", {"app.py": CONTEXT_PY})
        outfile = os.path.join(self.workdir, "cli-invoke-out.json")
        out = self.daemon.aws_json("lambda", "invoke", "--function-name", "cli-invoke",
                                   "--cli-binary-format", "raw-in-base64-out", "--payload", '{"marker": "from-cli"}',
                                   "--log-type", "Tail", outfile)
        self.assertEqual(out["StatusCode"], 200)
        self.assertEqual(out["ExecutedVersion"], "$LATEST")
        self.assertNotIn("FunctionError", out)
        with open(outfile) as f:
            result = json.load(f)
        self.assertEqual(result["event"], {"marker": "from-cli"})
        log = decode_log_result(out["LogResult"])
        request_id = result["aws_request_id"]
        self.assertIn(f"START RequestId: {request_id} Version: $LATEST", log)
        self.assertIn("context-handler ran 1 from-cli", log)
        self.assertIn(f"END RequestId: {request_id}", log)
        self.assertIsNotNone(report_line(log, request_id), log)

        # A function error: the CLI still exits 0 and reports FunctionError.
        self.create_function("cli-invoke-err", {"app.py": "def handler(event, context):\n    raise KeyError('k')\n"})
        out = self.daemon.aws_json("lambda", "invoke", "--function-name", "cli-invoke-err", outfile)
        self.assertEqual((out["StatusCode"], out["FunctionError"]), (200, "Unhandled"))
        with open(outfile) as f:
            self.assertEqual(json.load(f)["errorType"], "KeyError")

    def test_nimbus_invoke_cli(self):
        self.create_function("nimbus-invoke", {"app.py": CONTEXT_PY})
        rc, out, err = self.daemon.cli("invoke", "nimbus-invoke", "--payload", '{"marker": "nimbus-cli"}')
        self.assertEqual(rc, 0, f"stdout: {out}\nstderr: {err}")
        result = json.loads(out)
        self.assertEqual(result["event"], {"marker": "nimbus-cli"})
        self.assertIn(f"REPORT RequestId: {result['aws_request_id']}", err)
        self.assertIn("Duration:", err)

        payload_file = self.write_file("payload.json", '{"marker": "from-file"}')
        rc, out, err = self.daemon.cli("invoke", "nimbus-invoke", "--payload", "@" + payload_file)
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["event"], {"marker": "from-file"})

        self.create_function("nimbus-invoke-err",
                             {"app.py": "def handler(event, context):\n    raise ValueError('cli sees this')\n"})
        rc, out, err = self.daemon.cli("invoke", "nimbus-invoke-err")
        self.assertEqual(rc, 2, f"stdout: {out}\nstderr: {err}")
        body = json.loads(out)
        self.assertEqual((body["errorType"], body["errorMessage"]), ("ValueError", "cli sees this"))
        self.assertIn("REPORT RequestId: ", err)

        rc, out, err = self.daemon.cli("invoke", "no-such-function")
        self.assertEqual(rc, 1, f"stdout: {out}\nstderr: {err}")
        self.assertIn("ResourceNotFoundException", err)


class LogsTest(ExecutionTestCase):

    PRINTER_PY = "def handler(event, context):\n    print('printed:', event['marker'])\n    return event\n"

    def test_logs_show_an_invocation(self):
        self.create_function("logs-show", {"app.py": self.PRINTER_PY})
        r, _ = self.invoke_ok("logs-show", {"marker": "logged-line-1"})
        request_id = r.header("x-amzn-RequestId")
        rc, out, err = self.daemon.cli("logs", "logs-show")
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        start = lines.index(f"START RequestId: {request_id} Version: $LATEST")
        printed = lines.index("printed: logged-line-1")
        end = lines.index(f"END RequestId: {request_id}")
        report = [i for i, line in enumerate(lines) if line.startswith(f"REPORT RequestId: {request_id}\t")]
        self.assertEqual(len(report), 1, out)
        self.assertLess(start, printed)
        self.assertLess(printed, end)
        self.assertLess(end, report[0])
        self.assertRegex(lines[report[0]], r"\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\tMemory Size: 128 MB\t"
                                           r"Max Memory Used: \d+ MB\tInit Duration: [\d.]+ ms")

        # The data-dir log file holds it too (written in the background).
        path = os.path.join(self.daemon.data_dir, "logs", "logs-show.log")
        self.assertIn("printed: logged-line-1", wait_for_text(path, "printed: logged-line-1"))

        rc, out, err = self.daemon.cli("logs", "no-such-function")
        self.assertNotEqual(rc, 0, out)

    def test_report_max_memory_used_follows_a_warm_instance(self):
        # Max Memory Used is the instance's peak so far, read after each invocation.
        self.create_function("logs-peak", {"app.py": (
            "import os\n"
            "BOOT_ID = os.urandom(8).hex()\n"
            "def handler(event, context):\n"
            "    hog = bytearray(event['mb'] << 20)\n"
            "    for i in range(0, len(hog), 4096):\n"
            "        hog[i] = 1\n"
            "    return BOOT_ID\n")}, MemorySize=256)
        used = []
        boots = set()
        for mb in (1, 80, 1):
            r, boot = self.invoke_ok("logs-peak", {"mb": mb}, headers={"X-Amz-Log-Type": "Tail"})
            boots.add(boot)
            report = report_line(decode_log_result(r.header("X-Amz-Log-Result")), r.header("x-amzn-RequestId"))
            used.append(int(re.search(r"\tMax Memory Used: (\d+) MB", report).group(1)))
        self.assertEqual(len(boots), 1, "one warm instance served all three")
        self.assertGreater(used[0], 0, used)
        self.assertGreaterEqual(used[1], used[0] + 70, used)  # the 80 MB touched, less what the runtime gave back
        self.assertEqual(used[2], used[1], used)  # a peak does not go down

    def test_logs_follow_shows_later_invocations(self):
        self.create_function("logs-follow", {"app.py": self.PRINTER_PY})
        r, _ = self.invoke_ok("logs-follow", {"marker": "before-follow"})
        env = _clean_env()
        proc = subprocess.Popen([NIMBUS_BIN, "logs", "logs-follow", "-f", "--data-dir", self.daemon.data_dir],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)
        try:
            reader = LineReader(proc.stdout)
            # It first prints what is kept, so once that is out it is following.
            self.assertIsNotNone(reader.wait_for(lambda l: l == "printed: before-follow", 10),
                                 f"history not printed: {reader.lines}")
            r, _ = self.invoke_ok("logs-follow", {"marker": "after-follow"})
            request_id = r.header("x-amzn-RequestId")
            self.assertIsNotNone(reader.wait_for(lambda l: l == "printed: after-follow", 10),
                                 f"new line not followed: {reader.lines}")
            self.assertIsNotNone(reader.wait_for(lambda l: l.startswith(f"REPORT RequestId: {request_id}"), 10),
                                 f"REPORT not followed: {reader.lines}")
            self.assertIsNone(proc.poll(), "nimbus logs -f exited on its own")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()


def wait_for_text(path, text, timeout=5.0):
    """The file's text once it contains `text`, or whatever it holds after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                data = f.read()
        except FileNotFoundError:
            data = ""
        if text in data or time.monotonic() > deadline:
            return data
        time.sleep(0.05)


if __name__ == "__main__":
    unittest.main()
