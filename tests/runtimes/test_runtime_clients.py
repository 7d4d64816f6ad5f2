"""Tests for nimbus's runtime clients (runtimes/python/bootstrap.py, runtimes/node/index.mjs).

Each test starts a fake Lambda Runtime API (http.server on 127.0.0.1:0 in a
thread) that hands out queued events on /next with Lambda's headers and
records what the client posts, then runs a runtime client as a subprocess in a
temporary task directory, exactly as the platform starts it.

    /usr/bin/python3 -m unittest discover -s tests/runtimes -v

Standard library only. Every wait is bounded; subprocesses are killed in tearDown.
The last test prints (does not assert) each client's start-up time: process
start to its first GET /next, median of 5.
"""

import base64
import http.server
import json
import os
import queue
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON_CLIENT = os.path.join(REPO, "runtimes", "python", "bootstrap.py")
NODE_CLIENT = os.path.join(REPO, "runtimes", "node", "index.mjs")
PYTHON = "/usr/bin/python3"
NODE = "/usr/bin/node"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:000000000000:function:fn"
TIMEOUT = 10.0  # upper bound for any single wait


# ---------------------------------------------------------------------------
# Output capture that can be drained on demand, so the fake server can record
# exactly what was in the client's pipes when a response arrived.


class PipeCapture:
    def __init__(self, pipe):
        self.pipe = pipe
        self.fd = pipe.fileno()
        os.set_blocking(self.fd, False)
        self.lock = threading.Lock()
        self.data = bytearray()
        self.eof = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def drain(self):
        with self.lock:
            while not self.eof:
                try:
                    chunk = os.read(self.fd, 65536)
                except BlockingIOError:
                    break
                except OSError:
                    self.eof = True
                    break
                if not chunk:
                    self.eof = True
                    break
                self.data += chunk
            return self.data.decode("utf-8", "replace")

    def _run(self):
        while not self.eof:
            try:
                select.select([self.fd], [], [], 0.05)
            except (OSError, ValueError):
                return
            self.drain()

    def text(self):
        return self.drain()


# ---------------------------------------------------------------------------
# Fake Runtime API


class Posted:
    def __init__(self, kind, request_id, body, headers, stdout, pipelined=False):
        self.kind = kind  # "response" | "error" | "init_error"
        self.pipelined = pipelined  # the client's next request was already on the connection
        self.request_id = request_id
        self.body = body
        self.headers = headers  # lower-case names
        self.stdout = stdout  # client stdout at the moment the post arrived
        self.time = time.monotonic()

    def json(self):
        return json.loads(self.body)


class FakeRuntimeAPI:
    def __init__(self, close_after_post=False, next_framing="length"):
        self.events = queue.Queue()
        self.next_framing = next_framing  # how /next bodies are framed: "length", "chunked" or "close"
        self.posts = []
        self.next_times = []
        self.cond = threading.Condition()
        self.stopping = False
        self.close_after_post = close_after_post
        self.stdout_capture = None
        self.connections = set()
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                with api.cond:
                    api.connections.add(self.client_address)

            def _reply(self, status, body=b'{"status":"OK"}', headers=None, close=False):
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                if close:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != "/2018-06-01/runtime/invocation/next":
                    return self._reply(404, b'{"errorType":"NotFound"}')
                with api.cond:
                    api.next_times.append(time.monotonic())
                    api.cond.notify_all()
                while True:
                    if api.stopping:
                        self.close_connection = True
                        return
                    try:
                        ev = api.events.get(timeout=0.05)
                        break
                    except queue.Empty:
                        continue
                headers = {
                    "Lambda-Runtime-Aws-Request-Id": ev["id"],
                    "Lambda-Runtime-Deadline-Ms": str(ev["deadline_ms"]),
                    "Lambda-Runtime-Invoked-Function-Arn": ev.get("arn", FUNCTION_ARN),
                    "Content-Type": ev.get("content_type", "application/json"),
                }
                if ev.get("trace_id"):
                    headers["Lambda-Runtime-Trace-Id"] = ev["trace_id"]
                if ev.get("client_context") is not None:  # raw UTF-8 bytes on the wire, as Lambda sends them
                    headers["Lambda-Runtime-Client-Context"] = ev["client_context"].encode().decode("latin-1")
                if ev.get("cognito_identity") is not None:
                    headers["Lambda-Runtime-Cognito-Identity"] = ev["cognito_identity"]
                if api.next_framing == "length":
                    return self._reply(200, ev["body"], headers)
                self.send_response(200)
                for name, value in headers.items():
                    self.send_header(name, value)
                if api.next_framing == "chunked":
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    half = len(ev["body"]) // 2
                    for part in (ev["body"][:half], ev["body"][half:], b""):
                        self.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(part), part))
                else:  # the body ends with the connection
                    self.send_header("Connection", "close")
                    self.close_connection = True
                    self.end_headers()
                    self.wfile.write(ev["body"])

            def _read_body(self):
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    out, trailers = [], {}
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while True:
                                line = self.rfile.readline()
                                if line in (b"\r\n", b"\n", b""):
                                    return b"".join(out), trailers
                                name, _, value = line.decode("latin-1").partition(":")
                                trailers[name.strip().lower()] = value.strip()
                        out.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length), {}

            def _next_request_waiting(self):
                """Whether the client sent its next request before this answer (pipelining)."""
                def peek():
                    self.connection.setblocking(False)
                    try:
                        return len(self.rfile.peek(1)) > 0
                    except OSError:
                        return False
                    finally:
                        self.connection.setblocking(True)
                # A request sent behind the post may be one packet later.
                return peek() or (bool(select.select([self.connection], [], [], 0.2)[0]) and peek())

            def do_POST(self):
                body, trailers = self._read_body()
                m = re.fullmatch(r"/2018-06-01/runtime/invocation/([^/]+)/(response|error)", self.path)
                if m:
                    kind, rid = m.group(2), m.group(1)
                elif self.path == "/2018-06-01/runtime/init/error":
                    kind, rid = "init_error", None
                else:
                    return self._reply(404, b'{"errorType":"NotFound"}')
                headers = {k.lower(): v for k, v in self.headers.items()}
                headers.update({"trailer:" + k: v for k, v in trailers.items()})
                stdout = api.stdout_capture.drain() if api.stdout_capture else ""
                pipelined = kind != "init_error" and self._next_request_waiting()
                with api.cond:
                    api.posts.append(Posted(kind, rid, body, headers, stdout, pipelined))
                    api.cond.notify_all()
                self._reply(202, close=api.close_after_post)

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                if not isinstance(sys.exc_info()[1], ConnectionError):  # clients are killed mid-request
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.address = "127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def invoke(self, event=None, *, body=None, timeout_ms=3000, **extra):
        rid = str(uuid.uuid4())
        if body is None:
            body = json.dumps({} if event is None else event).encode()
        ev = {"id": rid, "body": body, "deadline_ms": int(time.time() * 1000) + timeout_ms}
        ev.update(extra)
        self.events.put(ev)
        return rid

    def wait_for(self, predicate, timeout=TIMEOUT, what="condition"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                value = predicate()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("timed out waiting for %s" % what)
                self.cond.wait(min(remaining, 0.1))

    def result(self, rid, timeout=TIMEOUT):
        return self.wait_for(
            lambda: next((p for p in self.posts if p.request_id == rid), None), timeout, "a post for %s" % rid
        )

    def init_error(self, timeout=TIMEOUT):
        return self.wait_for(
            lambda: next((p for p in self.posts if p.kind == "init_error"), None), timeout, "an init error"
        )

    def stop(self):
        self.stopping = True
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------
# Harness


class RuntimeTestCase(unittest.TestCase):
    def setUp(self):
        self.api = None
        self.proc = None
        self.stdout = self.stderr = None
        self.taskdir = tempfile.mkdtemp(prefix="nimbus-task-")

    def tearDown(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            for pipe in (self.proc.stdout, self.proc.stderr):
                try:
                    pipe.close()
                except Exception:
                    pass
        if self.api is not None:
            self.api.stop()
        shutil.rmtree(self.taskdir, ignore_errors=True)

    def start(self, lang, handler, files, env=None, close_after_post=False, handler_in_argv=False, cmd=None,
              next_framing="length"):
        for name, content in files.items():
            p = os.path.join(self.taskdir, name)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write(textwrap.dedent(content))
        self.api = FakeRuntimeAPI(close_after_post=close_after_post, next_framing=next_framing)
        full_env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "AWS_LAMBDA_RUNTIME_API": self.api.address,
            "_HANDLER": "" if handler_in_argv else handler,
            "LAMBDA_TASK_ROOT": self.taskdir,
            "AWS_LAMBDA_FUNCTION_NAME": "fn",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2024/01/01/[$LATEST]0123456789abcdef0123456789abcdef",
            "AWS_REGION": "us-east-1",
        }
        full_env.update(env or {})
        if cmd is not None:
            cmd = [c.replace("{taskdir}", self.taskdir) for c in cmd]
        elif lang == "python":
            cmd = [PYTHON, "-u", PYTHON_CLIENT]
        else:
            cmd = [NODE, NODE_CLIENT]
        if handler_in_argv:
            cmd.append(handler)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            cmd, cwd=self.taskdir, env=full_env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.stdout = PipeCapture(self.proc.stdout)
        self.stderr = PipeCapture(self.proc.stderr)
        self.api.stdout_capture = self.stdout
        return self.api

    def wait_exit(self, timeout=TIMEOUT):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.fail("runtime did not exit; stderr: %s" % self.stderr.text())

    def diag(self):
        return "\nstdout:\n%s\nstderr:\n%s" % (self.stdout.text(), self.stderr.text())

    def assert_posts_are_pipelined(self):
        """Results and handled errors ({"fail": true}) arrive with the next /next right behind them."""
        for n in range(2):
            self.assertTrue(self.invoke_ok({"n": n}).pipelined)
        error = self.api.result(self.api.invoke({"fail": True}))
        self.assertEqual(error.kind, "error")
        self.assertTrue(error.pipelined)

    def assert_echoes_events_of_every_framing(self, lang, handler, files):
        """/next bodies chunked, or ending with the connection, reach an echoing handler whole."""
        for framing in ("chunked", "close"):
            with self.subTest(framing=framing):
                self.start(lang, handler, files, next_framing=framing)
                for n in range(2):
                    self.assertEqual(self.invoke_ok({"n": n, "s": "x" * 100_000}).json(), {"n": n, "s": "x" * 100_000})
                self.tearDown()
                self.setUp()

    def invoke_ok(self, event=None, timeout=TIMEOUT, **kw):
        rid = self.api.invoke(event, **kw)
        post = self.api.result(rid, timeout)
        self.assertEqual(post.kind, "response", post.body.decode(errors="replace") + self.diag())
        return post


# ---------------------------------------------------------------------------
# Python client


class PythonClientTest(RuntimeTestCase):
    def test_result_returned(self):
        self.start("python", "app.handler", {"app.py": """
            def handler(event, context):
                return {"echo": event, "ok": True}
        """})
        post = self.invoke_ok({"a": 1, "s": "é"})
        self.assertEqual(post.json(), {"echo": {"a": 1, "s": "é"}, "ok": True})
        self.assertEqual(post.headers.get("content-type"), "application/json")

    def test_handler_from_argv(self):
        self.start("python", "app.handler", {"app.py": """
            def handler(event, context):
                return "argv"
        """}, handler_in_argv=True)
        self.assertEqual(self.invoke_ok().json(), "argv")

    def test_context_fields(self):
        self.start("python", "app.handler", {"app.py": """
            import os
            def handler(event, context):
                return {
                    "function_name": context.function_name,
                    "function_version": context.function_version,
                    "invoked_function_arn": context.invoked_function_arn,
                    "memory_limit_in_mb": context.memory_limit_in_mb,
                    "aws_request_id": context.aws_request_id,
                    "log_group_name": context.log_group_name,
                    "log_stream_name": context.log_stream_name,
                    "identity": [context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id],
                    "client_context": None if context.client_context is None else {
                        "custom": context.client_context.custom,
                        "env": context.client_context.env,
                        "app_title": context.client_context.client.app_title,
                    },
                    "remaining": context.get_remaining_time_in_millis(),
                    "tenant_id": context.tenant_id,
                    "trace": os.environ.get("_X_AMZN_TRACE_ID"),
                }
        """})
        rid = self.api.invoke({}, timeout_ms=3000, trace_id="Root=1-abc;Parent=def;Sampled=1")
        ctx = self.api.result(rid).json()
        self.assertEqual(ctx["function_name"], "fn")
        self.assertEqual(ctx["function_version"], "$LATEST")
        self.assertEqual(ctx["invoked_function_arn"], FUNCTION_ARN)
        self.assertEqual(ctx["memory_limit_in_mb"], "128")
        self.assertEqual(ctx["aws_request_id"], rid)
        self.assertEqual(ctx["log_group_name"], "/aws/lambda/fn")
        self.assertTrue(ctx["log_stream_name"].startswith("2024/01/01/[$LATEST]"))
        self.assertEqual(ctx["identity"], [None, None])
        self.assertIsNone(ctx["client_context"])
        self.assertIsNone(ctx["tenant_id"])
        self.assertGreater(ctx["remaining"], 0)
        self.assertLessEqual(ctx["remaining"], 3000)
        self.assertEqual(ctx["trace"], "Root=1-abc;Parent=def;Sampled=1")

        # Second invoke: client context + cognito identity; trace id absent => env var removed.
        cc = {"client": {"app_title": "t"}, "custom": {"k": "vé€"}, "env": {"e": "1"}}
        ci = {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}
        rid = self.api.invoke({}, client_context=json.dumps(cc, ensure_ascii=False), cognito_identity=json.dumps(ci))
        ctx = self.api.result(rid).json()
        self.assertEqual(ctx["client_context"], {"custom": {"k": "vé€"}, "env": {"e": "1"}, "app_title": "t"})
        self.assertEqual(ctx["identity"], ["id-1", "pool-1"])
        self.assertIsNone(ctx["trace"])

    def test_globals_survive_between_invocations(self):
        self.start("python", "app.handler", {"app.py": """
            counter = 0
            def handler(event, context):
                global counter
                counter += 1
                return counter
        """})
        self.assertEqual([self.invoke_ok().json() for _ in range(3)], [1, 2, 3])

    def test_exception_becomes_error(self):
        self.start("python", "app.handler", {"app.py": """
            def handler(event, context):
                raise ValueError("bad value")
        """})
        rid = self.api.invoke({})
        post = self.api.result(rid)
        self.assertEqual(post.kind, "error")
        body = post.json()
        self.assertEqual(body["errorType"], "ValueError")
        self.assertEqual(body["errorMessage"], "bad value")
        self.assertEqual(body["requestId"], rid)
        self.assertIsInstance(body["stackTrace"], list)
        self.assertIn("app.py", body["stackTrace"][0])
        self.assertIn('raise ValueError("bad value")', body["stackTrace"][0])
        self.assertFalse(any("bootstrap.py" in frame for frame in body["stackTrace"]))
        self.assertNotIn("lambda-runtime-function-error-type", post.headers)
        self.assertIn("[ERROR] ValueError: bad value\rTraceback (most recent call last):\r", post.stdout)
        # The runtime keeps serving after a function error.
        self.assertEqual(self.api.result(self.api.invoke({})).kind, "error")

    def test_missing_module_is_init_error(self):
        self.start("python", "nosuch.handler", {"app.py": "def handler(e, c): return 1\n"})
        post = self.api.init_error()
        body = post.json()
        self.assertEqual(body["errorType"], "Runtime.ImportModuleError")
        self.assertEqual(body["errorMessage"], "Unable to import module 'nosuch': No module named 'nosuch'")
        self.assertEqual(body["stackTrace"], [])
        self.assertEqual(post.headers.get("lambda-runtime-function-error-type"), "Runtime.ImportModuleError")
        self.assertEqual(self.wait_exit(), 1)
        self.assertIn("[ERROR] Runtime.ImportModuleError: Unable to import module 'nosuch'", self.stdout.text())

    def test_missing_function_is_handler_not_found(self):
        self.start("python", "app.nope", {"app.py": "def handler(e, c): return 1\n"})
        body = self.api.init_error().json()
        self.assertEqual(body["errorType"], "Runtime.HandlerNotFound")
        self.assertEqual(body["errorMessage"], "Handler 'nope' missing on module 'app'")
        self.assertEqual(self.wait_exit(), 1)

    def test_malformed_handler_name(self):
        self.start("python", "app", {"app.py": "def handler(e, c): return 1\n"})
        body = self.api.init_error().json()
        self.assertEqual(body["errorType"], "Runtime.MalformedHandlerName")
        self.assertEqual(self.wait_exit(), 1)

    def test_syntax_error(self):
        self.start("python", "app.handler", {"app.py": "def handler(e, c)\n    return 1\n"})
        body = self.api.init_error().json()
        self.assertEqual(body["errorType"], "Runtime.UserCodeSyntaxError")
        self.assertIn("Syntax error in module 'app'", body["errorMessage"])
        self.assertIn("app.py", body["stackTrace"][0])
        self.assertEqual(self.wait_exit(), 1)

    def test_exception_at_import_is_init_error(self):
        self.start("python", "app.handler", {"app.py": "x = 1 / 0\n"})
        body = self.api.init_error().json()
        self.assertEqual(body["errorType"], "ZeroDivisionError")
        self.assertTrue(any("app.py" in f for f in body["stackTrace"]))
        self.assertEqual(self.wait_exit(), 1)

    def test_handler_in_subdirectory(self):
        self.start("python", "src/app.handler", {
            "src/app.py": """
                from . import helper
                def handler(event, context):
                    return helper.VALUE
            """,
            "src/__init__.py": "",
            "src/helper.py": "VALUE = 'from src'\n",
        })
        self.assertEqual(self.invoke_ok().json(), "from src")

    def test_unserialisable_result_is_marshal_error(self):
        self.start("python", "app.handler", {"app.py": """
            def handler(event, context):
                return {"s": {1, 2}}
        """})
        post = self.api.result(self.api.invoke({}))
        self.assertEqual(post.kind, "error")
        body = post.json()
        self.assertEqual(body["errorType"], "Runtime.MarshalError")
        self.assertIn("Unable to marshal response", body["errorMessage"])

    def test_bytes_and_decimal_results(self):
        self.start("python", "app.handler", {"app.py": """
            import decimal
            def handler(event, context):
                if event.get("bytes"):
                    return b"\\x00raw"
                return {"d": decimal.Decimal("1.5"), "i": decimal.Decimal("3"), "none": None}
        """})
        post = self.invoke_ok({"bytes": True})
        self.assertEqual(post.body, b"\x00raw")
        self.assertEqual(post.headers.get("content-type"), "application/unknown")
        self.assertEqual(self.invoke_ok({}).json(), {"d": 1.5, "i": 3, "none": None})

    def test_none_result_is_null(self):
        self.start("python", "app.handler", {"app.py": "def handler(e, c):\n    pass\n"})
        self.assertEqual(self.invoke_ok().body, b"null")

    def test_non_json_content_type_gives_raw_bytes(self):
        self.start("python", "app.handler", {"app.py": """
            def handler(event, context):
                return repr(event)
        """})
        post = self.invoke_ok(body=b'{"a": 1}', content_type="application/json; charset=utf-8")
        self.assertEqual(post.json(), "b'{\"a\": 1}'")

    def test_invalid_json_event_is_unmarshal_error(self):
        self.start("python", "app.handler", {"app.py": "def handler(e, c): return e\n"})
        post = self.api.result(self.api.invoke(body=b"{not json"))
        self.assertEqual(post.kind, "error")
        self.assertEqual(post.json()["errorType"], "Runtime.UnmarshalError")

    def test_print_output_is_in_pipe_before_response(self):
        self.start("python", "app.handler", {"app.py": """
            import sys
            def handler(event, context):
                print("hello from print", event["n"])
                sys.stderr.write("to stderr\\n")
                return "done"
        """})
        for n in range(3):
            post = self.invoke_ok({"n": n})
            self.assertIn("hello from print %d" % n, post.stdout)

    def test_logging_format(self):
        self.start("python", "app.handler", {"app.py": """
            import logging
            logger = logging.getLogger()
            def handler(event, context):
                logger.warning("warn line")
                logger.info("info line")
                logging.getLogger("child").error("multi\\nline")
                return "ok"
        """})
        rid = self.api.invoke({})
        post = self.api.result(rid)
        out = post.stdout
        ts = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
        self.assertRegex(out, r"(?m)^\[WARNING\]\t%s\t%s\twarn line$" % (ts, re.escape(rid)))
        self.assertRegex(out, r"(?m)^\[ERROR\]\t%s\t%s\tmulti\nline$" % (ts, re.escape(rid)))
        # As on AWS, the root logger stays at WARNING unless AWS_LAMBDA_LOG_LEVEL is set.
        self.assertNotIn("info line", out)

    def test_logging_level_from_env(self):
        self.start("python", "app.handler", {"app.py": """
            import logging
            def handler(event, context):
                logging.debug("debug line")
                logging.info("info line")
                return "ok"
        """}, env={"AWS_LAMBDA_LOG_LEVEL": "INFO"})
        rid = self.api.invoke({})
        out = self.api.result(rid).stdout
        self.assertRegex(out, r"(?m)^\[INFO\]\t\S+Z\t%s\tinfo line$" % re.escape(rid))
        self.assertNotIn("debug line", out)

    def test_json_log_format(self):
        self.start("python", "app.handler", {"app.py": """
            import logging
            def handler(event, context):
                logging.getLogger("x").warning("hello %s", "json")
                return "ok"
        """}, env={"AWS_LAMBDA_LOG_FORMAT": "JSON"})
        rid = self.api.invoke({})
        out = self.api.result(rid).stdout
        line = next(l for l in out.splitlines() if "hello json" in l)
        record = json.loads(line)
        self.assertEqual(record["level"], "WARNING")
        self.assertEqual(record["requestId"], rid)
        self.assertEqual(record["logger"], "x")
        self.assertEqual(record["message"], "hello json")

    def test_large_payloads(self):
        self.start("python", "app.handler", {"app.py": "def handler(e, c):\n    return {'n': len(e['s']), 's': e['s'][::-1]}\n"})
        big = "abcdefghij" * 500_000  # 5 MB
        # Reversing 5 MB takes a while on a busy 2-core machine: a longer bound.
        post = self.invoke_ok({"s": big}, timeout=60)
        self.assertEqual(post.json(), {"n": len(big), "s": big[::-1]})

    def test_chunked_and_close_delimited_events(self):
        self.assert_echoes_events_of_every_framing("python", "app.handler", {"app.py": "def handler(e, c): return e\n"})

    def test_reconnects_when_server_closes_connection(self):
        self.start("python", "app.handler", {"app.py": "def handler(e, c): return e\n"}, close_after_post=True)
        for n in range(3):
            self.assertEqual(self.invoke_ok({"n": n}).json(), {"n": n})

    def test_result_and_next_request_go_out_together(self):
        self.start("python", "app.handler", {"app.py": "def handler(e, c):\n    if e.get('fail'):\n        raise ValueError('x')\n    return e\n"})
        self.assert_posts_are_pipelined()


# ---------------------------------------------------------------------------
# Node client


class NodeClientTest(RuntimeTestCase):
    def test_commonjs_async_handler(self):
        self.start("node", "index.handler", {"index.js": """
            exports.handler = async (event, context) => ({ echo: event, id: context.awsRequestId });
        """})
        rid = self.api.invoke({"a": [1, 2]})
        post = self.api.result(rid)
        self.assertEqual(post.kind, "response", post.body)
        self.assertEqual(post.json(), {"echo": {"a": [1, 2]}, "id": rid})

    def test_handler_from_argv_and_nested_property(self):
        self.start("node", "index.api.handler", {"index.js": """
            exports.api = { handler: async () => 'nested' };
        """}, handler_in_argv=True)
        self.assertEqual(self.invoke_ok().json(), "nested")

    def test_esm_mjs_handler(self):
        self.start("node", "app.handler", {"app.mjs": """
            export const handler = async (event) => ({ esm: true, n: event.n });
        """})
        self.assertEqual(self.invoke_ok({"n": 5}).json(), {"esm": True, "n": 5})

    def test_package_json_type_module(self):
        self.start("node", "lib/app.handler", {
            "package.json": '{"type": "module"}',
            "lib/app.js": """
                import { value } from './dep.js';
                export async function handler() { return value; }
            """,
            "lib/dep.js": "export const value = 'esm via package.json';\n",
        })
        self.assertEqual(self.invoke_ok().json(), "esm via package.json")

    def test_cjs_extension(self):
        self.start("node", "app.handler", {"app.cjs": "module.exports.handler = async () => 'cjs';\n"})
        self.assertEqual(self.invoke_ok().json(), "cjs")

    def test_callback_waits_for_empty_event_loop(self):
        self.start("node", "index.handler", {"index.js": """
            exports.handler = (event, context, callback) => {
                setTimeout(() => console.log('timer fired'), 300);
                callback(null, { waited: context.callbackWaitsForEmptyEventLoop });
            };
        """})
        post = self.invoke_ok()
        self.assertEqual(post.json(), {"waited": True})
        self.assertIn("timer fired", post.stdout)  # posted only after the timer ran

    def test_callback_without_waiting_for_event_loop(self):
        self.start("node", "index.handler", {"index.js": """
            exports.handler = (event, context, callback) => {
                context.callbackWaitsForEmptyEventLoop = false;
                setTimeout(() => console.log('late timer'), 3000);
                callback(null, 'immediate');
            };
        """})
        t0 = time.monotonic()
        post = self.invoke_ok()
        self.assertEqual(post.json(), "immediate")
        self.assertLess(post.time - t0, 2.0)
        self.assertNotIn("late timer", post.stdout)
        # The runtime is back on /next while the timer is still pending.
        self.assertEqual(self.invoke_ok().json(), "immediate")

    def test_callback_error(self):
        self.start("node", "index.handler", {"index.js": """
            exports.handler = (event, context, callback) => callback(new RangeError('out of range'));
        """})
        post = self.api.result(self.api.invoke({}))
        self.assertEqual(post.kind, "error")
        self.assertEqual(post.json()["errorType"], "RangeError")

    def test_context_succeed_first_call_wins(self):
        self.start("node", "index.handler", {"index.js": """
            exports.handler = (event, context, callback) => {
                context.succeed('first');
                context.fail(new Error('ignored'));
                callback(null, 'also ignored');
            };
        """})
        post = self.invoke_ok()
        self.assertEqual(post.json(), "first")
        self.assertEqual(len([p for p in self.api.posts if p.request_id == post.request_id]), 1)

    def test_context_done_with_error_string(self):
        self.start("node", "index.handler", {"index.js": """
            exports.handler = (event, context) => { context.done('plain string'); };
        """})
        body = self.api.result(self.api.invoke({})).json()
        self.assertEqual(body, {"errorType": "string", "errorMessage": "plain string", "trace": []})

    def test_sync_handler_without_callback_posts_null(self):
        self.start("node", "index.handler", {"index.js": """
            exports.handler = (event, context) => { setTimeout(() => {}, 100); };
        """})
        self.assertEqual(self.invoke_ok().body, b"null")

    def test_thrown_errors(self):
        self.start("node", "index.handler", {"index.js": """
            exports.handler = async (event) => {
                if (event.kind === 'type') null.x;
                throw new Error('plain failure');
            };
        """})
        body = self.api.result(self.api.invoke({"kind": "plain"})).json()
        self.assertEqual(body["errorType"], "Error")
        self.assertEqual(body["errorMessage"], "plain failure")
        self.assertIsInstance(body["trace"], list)
        self.assertEqual(body["trace"][0], "Error: plain failure")
        self.assertTrue(any("index.js" in line for line in body["trace"]))
        post = self.api.result(self.api.invoke({"kind": "type"}))
        self.assertEqual(post.json()["errorType"], "TypeError")
        self.assertRegex(post.stdout, r"\tERROR\tInvoke Error \t\{\"errorType\":\"TypeError\"")

    def test_rejected_promise(self):
        self.start("node", "index.handler", {"index.js": """
            exports.handler = () => Promise.reject(new SyntaxError('rejected'));
        """})
        body = self.api.result(self.api.invoke({})).json()
        self.assertEqual(body["errorType"], "SyntaxError")
        self.assertEqual(body["errorMessage"], "rejected")

    def test_unhandled_rejection_posts_error_and_exits_128(self):
        self.start("node", "index.handler", {"index.js": """
            exports.handler = async () => {
                Promise.reject(new Error('nobody catches me'));
                await new Promise((r) => setTimeout(r, 5000));
                return 'unreachable';
            };
        """})
        post = self.api.result(self.api.invoke({}))
        self.assertEqual(post.kind, "error")
        body = post.json()
        self.assertEqual(body["errorType"], "Runtime.UnhandledPromiseRejection")
        self.assertEqual(body["errorMessage"], "Error: nobody catches me")
        self.assertEqual(self.wait_exit(), 128)

    def test_uncaught_exception_posts_error_and_exits_129(self):
        self.start("node", "index.handler", {"index.js": """
            exports.handler = (event, context, callback) => {
                setTimeout(() => { throw new TypeError('thrown from a timer'); }, 10);
            };
        """})
        post = self.api.result(self.api.invoke({}))
        self.assertEqual(post.kind, "error")
        self.assertEqual(post.json()["errorType"], "TypeError")
        self.assertEqual(self.wait_exit(), 129)

    def test_async_handler_that_never_settles(self):
        self.start("node", "index.handler", {"index.js": """
            exports.handler = async () => new Promise(() => {});
        """})
        post = self.api.result(self.api.invoke({}))
        self.assertEqual(post.kind, "error")
        self.assertEqual(post.json()["errorType"], "Runtime.NodeJsExit")

    def test_global_counter(self):
        self.start("node", "index.handler", {"index.js": """
            let counter = 0;
            exports.handler = async () => ++counter;
        """})
        self.assertEqual([self.invoke_ok().json() for _ in range(3)], [1, 2, 3])

    def test_console_format(self):
        self.start("node", "index.handler", {"index.js": """
            console.log('at init');
            exports.handler = async (event, context) => {
                console.log('hello %s', 'world', {a: 1});
                console.warn('two\\nlines');
                console.error(new Error('logged error'));
                process.env.SEEN_TRACE = process.env._X_AMZN_TRACE_ID;
                return process.env._X_AMZN_TRACE_ID ?? null;
            };
        """})
        rid = self.api.invoke({}, trace_id="Root=1-xyz")
        post = self.api.result(rid)
        self.assertEqual(post.json(), "Root=1-xyz")
        ts = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
        out = post.stdout
        self.assertRegex(out, r"(?m)^%s\tundefined\tINFO\tat init$" % ts)
        self.assertRegex(out, r"(?m)^%s\t%s\tINFO\thello world \{ a: 1 \}$" % (ts, re.escape(rid)))
        self.assertRegex(out, r"(?m)^%s\t%s\tWARN\ttwo\rlines$" % (ts, re.escape(rid)))
        self.assertRegex(out, r"(?m)^%s\t%s\tERROR\tError: logged error\r    at " % (ts, re.escape(rid)))
        # No trace id on the next invoke => the variable is removed.
        self.assertEqual(self.invoke_ok().json(), None)

    def test_context_fields_and_client_context(self):
        self.start("node", "index.handler", {"index.js": """
            exports.handler = async (event, context) => ({
                functionName: context.functionName,
                functionVersion: context.functionVersion,
                invokedFunctionArn: context.invokedFunctionArn,
                memoryLimitInMB: context.memoryLimitInMB,
                awsRequestId: context.awsRequestId,
                logGroupName: context.logGroupName,
                logStreamName: context.logStreamName,
                identity: context.identity ?? 'undefined',
                clientContext: context.clientContext ?? 'undefined',
                waits: context.callbackWaitsForEmptyEventLoop,
                remaining: context.getRemainingTimeInMillis(),
            });
        """})
        cc = {"client": {"installation_id": "i"}, "custom": {"k": "vé€"}, "env": {"platform": "x"}}
        rid = self.api.invoke({}, client_context=json.dumps(cc, ensure_ascii=False), cognito_identity=json.dumps({"cognitoIdentityId": "c1"}))
        ctx = self.api.result(rid).json()
        self.assertEqual(ctx["functionName"], "fn")
        self.assertEqual(ctx["functionVersion"], "$LATEST")
        self.assertEqual(ctx["invokedFunctionArn"], FUNCTION_ARN)
        self.assertEqual(ctx["memoryLimitInMB"], "128")
        self.assertEqual(ctx["awsRequestId"], rid)
        self.assertEqual(ctx["logGroupName"], "/aws/lambda/fn")
        self.assertEqual(ctx["clientContext"], cc)
        self.assertEqual(ctx["identity"], {"cognitoIdentityId": "c1"})
        self.assertIs(ctx["waits"], True)
        self.assertGreater(ctx["remaining"], 0)
        self.assertLessEqual(ctx["remaining"], 3000)
        ctx = self.invoke_ok().json()
        self.assertEqual(ctx["clientContext"], "undefined")
        self.assertEqual(ctx["identity"], "undefined")

    def test_missing_export_is_handler_not_found(self):
        self.start("node", "index.handler", {"index.js": "exports.other = async () => 1;\n"})
        post = self.api.init_error()
        body = post.json()
        self.assertEqual(body["errorType"], "Runtime.HandlerNotFound")
        self.assertEqual(body["errorMessage"], "index.handler is undefined or not exported")
        self.assertEqual(post.headers.get("lambda-runtime-function-error-type"), "Runtime.HandlerNotFound")
        self.assertNotEqual(self.wait_exit(), 0)

    def test_missing_module_is_import_error(self):
        self.start("node", "nosuch.handler", {"index.js": "exports.handler = async () => 1;\n"})
        body = self.api.init_error().json()
        self.assertEqual(body["errorType"], "Runtime.ImportModuleError")
        self.assertIn("Cannot find module 'nosuch'", body["errorMessage"])
        self.assertEqual(self.wait_exit(), 129)

    def test_syntax_error_is_user_code_syntax_error(self):
        self.start("node", "index.handler", {"index.js": "exports.handler = async () => {;\n"})
        body = self.api.init_error().json()
        self.assertEqual(body["errorType"], "Runtime.UserCodeSyntaxError")
        self.assertNotEqual(self.wait_exit(), 0)

    def test_malformed_handler(self):
        self.start("node", "../index.handler", {"index.js": "exports.handler = async () => 1;\n"})
        self.assertEqual(self.api.init_error().json()["errorType"], "Runtime.MalformedHandlerName")

    def test_unserialisable_result(self):
        self.start("node", "index.handler", {"index.js": """
            exports.handler = async () => ({ big: 10n });
        """})
        post = self.api.result(self.api.invoke({}))
        self.assertEqual(post.kind, "error")
        self.assertEqual(post.json()["errorMessage"], "Unable to stringify response body")

    def test_streaming_response(self):
        self.start("node", "index.handler", {"index.js": """
            exports.handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
                responseStream.setContentType('text/plain');
                responseStream.write('hello ');
                responseStream.write('stream');
                responseStream.end();
            });
        """})
        post = self.invoke_ok()
        self.assertEqual(post.body, b"hello stream")
        self.assertEqual(post.headers.get("lambda-runtime-function-response-mode"), "streaming")
        self.assertEqual(post.headers.get("content-type"), "text/plain")
        self.assertEqual(self.invoke_ok().body, b"hello stream")

    def test_streaming_error_uses_trailers(self):
        self.start("node", "index.handler", {"index.js": """
            exports.handler = awslambda.streamifyResponse(async (event, responseStream) => {
                responseStream.write('partial');
                throw new Error('mid-stream');
            });
        """})
        post = self.api.result(self.api.invoke({}))
        self.assertEqual(post.body, b"partial")
        self.assertEqual(post.headers.get("trailer:lambda-runtime-function-error-type"), "Error")
        err = json.loads(base64.b64decode(post.headers["trailer:lambda-runtime-function-error-body"]))
        self.assertEqual(err["errorMessage"], "mid-stream")

    def test_large_payloads(self):
        self.start("node", "index.handler", {"index.js": "exports.handler = async (e) => ({ n: e.s.length, s: [...e.s].reverse().join('') });\n"})
        big = "abcdefghij" * 500_000  # 5 MB
        # Reversing 5 MB takes a while on a busy 2-core machine: a longer bound.
        post = self.invoke_ok({"s": big}, timeout=60)
        self.assertEqual(post.json(), {"n": len(big), "s": big[::-1]})

    def test_chunked_and_close_delimited_events(self):
        self.assert_echoes_events_of_every_framing("node", "index.handler", {"index.js": "exports.handler = async (e) => e;\n"})

    def test_reconnects_when_server_closes_connection(self):
        self.start("node", "index.handler", {"index.js": "exports.handler = async (e) => e;\n"}, close_after_post=True)
        for n in range(3):
            self.assertEqual(self.invoke_ok({"n": n}).json(), {"n": n})

    def test_result_and_next_request_go_out_together(self):
        # Node's http agent waits for each answer; the client's own connection
        # sends the next /next right behind a result or a handled error.
        self.start("node", "index.handler", {"index.js": "exports.handler = async (e) => { if (e.fail) throw new Error('x'); return e; };\n"})
        self.assert_posts_are_pipelined()


# ---------------------------------------------------------------------------
# Start-up time (printed, not asserted)


# Reference programs: the least an interpreter must do to reach GET /next.
MINIMAL_PYTHON_NEXT = """
import _socket, os
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)
s = _socket.socket()
s.connect((host, int(port)))
s.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
s.recv(1)
"""
MINIMAL_NODE_NEXT = """
import http from 'node:http';
const [hostname, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(':');
http.get({ hostname, port, path: '/2018-06-01/runtime/invocation/next' });
"""


class StartupTimeTest(RuntimeTestCase):
    RUNS = 5

    def _first_next_ms(self, lang, handler, files, cmd=None):
        self.start(lang, handler, files, cmd=cmd)
        try:
            first = self.api.wait_for(lambda: self.api.next_times[:1], what="first /next")[0]
            return (first - self.started) * 1000
        finally:
            self.tearDown()
            self.setUp()

    def test_zz_startup_time(self):
        variants = {
            "python": ("python", "app.handler", {"app.py": "def handler(e, c):\n    return e\n"}, None),
            "node": ("node", "index.handler", {"index.js": "exports.handler = async (e) => e;\n"}, None),
            "python_ref": ("python", "x.y", {"ref.py": MINIMAL_PYTHON_NEXT}, [PYTHON, "-u", "{taskdir}/ref.py"]),
            "node_ref": ("node", "x.y", {"ref.mjs": MINIMAL_NODE_NEXT}, [NODE, "{taskdir}/ref.mjs"]),
        }
        samples = {name: [] for name in variants}
        for _ in range(self.RUNS):  # interleaved, so load changes hit every variant alike
            for name, (lang, handler, files, cmd) in variants.items():
                samples[name].append(self._first_next_ms(lang, handler, files, cmd))
        m = {name: statistics.median(v) for name, v in samples.items()}
        sys.stderr.write(
            "\n  process start to first GET /next, median of %d:\n"
            "    python client %.1f ms (minimal python GET /next: %.1f ms, client overhead %.1f ms)\n"
            "    node client   %.1f ms (minimal node GET /next:   %.1f ms, client overhead %.1f ms)\n"
            % (self.RUNS, m["python"], m["python_ref"], m["python"] - m["python_ref"],
               m["node"], m["node_ref"], m["node"] - m["node_ref"])
        )


if __name__ == "__main__":
    unittest.main()
