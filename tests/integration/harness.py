"""Shared harness for the nimbus integration tests.

Starts the real `nimbus serve` binary on port 0 with a temporary data
directory and drives it with boto3, Debian's `aws` CLI 2.9, the `nimbus` CLI
and raw (optionally SigV4-signed) HTTP. Run by Debian's /usr/bin/python3,
which has python3-boto3; only the standard library and boto3/botocore are used.

    NIMBUS_BIN=/work/main/build/src/nimbus /usr/bin/python3 -m unittest \
        discover -s tests/integration -p 'test_*.py' -v
"""

import base64
import configparser
import contextlib
import hashlib
import http.client
import io
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import types
import unittest
import unittest.mock
import urllib.parse
import zipfile

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials

NIMBUS_BIN = os.environ.get("NIMBUS_BIN", "/work/main/build/src/nimbus")
# Debian's aws CLI 2.9 (the `aws` on PATH may be another install).
AWS_CLI = "/usr/bin/aws"
REGION = "us-east-1"
ACCOUNT_ID = "000000000000"
ROLE = "arn:aws:iam::000000000000:role/nimbus-test"

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
SUBPROCESS_TIMEOUT_S = 60.0

# Lambda's FunctionConfiguration.LastModified form.
LAST_MODIFIED_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def function_arn(name, qualifier=None):
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
    return arn + (f":{qualifier}" if qualifier else "")


def sha256_b64(data):
    """Lambda's CodeSha256: standard padded base64 of the SHA-256 digest."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


# A fixed timestamp keeps the zips byte-for-byte reproducible.
_ZIP_DATE = (2024, 1, 1, 0, 0, 0)


def make_zip(files=None, symlinks=None, raw_names=None):
    """Builds a zip in memory and returns its bytes.

    files: {name: str|bytes} regular files (mode 0644).
    symlinks: {name: target} entries whose Unix mode is a symlink (content = target).
    raw_names: {name: str|bytes} written under exactly that name (e.g. "../evil.py").
    """
    if files is None and symlinks is None and raw_names is None:
        files = {"app.py": "def handler(event, context):\n    return {'ok': True}\n"}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, content in (files or {}).items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, content)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.create_system = 3  # Unix, so external_attr carries the mode
            info.external_attr = 0o120777 << 16
            zf.writestr(info, target)
        for name, content in (raw_names or {}).items():
            info = zipfile.ZipInfo(date_time=_ZIP_DATE)
            info.filename = name  # bypass ZipInfo's path normalisation
            info.orig_filename = name
            info.external_attr = 0o100644 << 16
            zf.writestr(info, content)
    return buf.getvalue()


def python_zip(body="return {'ok': True}", module="app", extra=None):
    files = {f"{module}.py": f"def handler(event, context):\n    {body}\n"}
    files.update(extra or {})
    return make_zip(files)


class HttpResponse:
    """A finished raw HTTP exchange: status, headers (case-insensitive), body."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # http.client.HTTPMessage
        self.body = body

    def header(self, name):
        return self.headers.get(name) if self.headers is not None else None

    def json(self):
        return json.loads(self.body.decode("utf-8")) if self.body else None

    def error_message(self):
        body = self.json() or {}
        return body.get("message", body.get("Message", ""))

    def __repr__(self):
        hdrs = dict(self.headers.items()) if self.headers is not None else {}
        return f"HttpResponse({self.status}, {hdrs}, {self.body[:2000]!r})"


class Daemon:
    """One `nimbus serve` process on 127.0.0.1:0 with its own data directory.

    The daemon's stdout and stderr go to <data_dir>/daemon.log (appended across
    restarts on the same data directory).
    """

    def __init__(self, data_dir=None, extra_args=(), log_name="daemon.log"):
        self.owns_data_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="nimbus-it-")
        self.extra_args = list(extra_args)
        self.log_path = os.path.join(self.data_dir, log_name)
        self.proc = None
        self.endpoint = None
        self.gateway = None
        self.pid = None
        self.credentials = None
        self._log = None

    # -- lifecycle ---------------------------------------------------------

    @property
    def endpoints_path(self):
        return os.path.join(self.data_dir, "endpoints.json")

    def start(self):
        if not os.access(NIMBUS_BIN, os.X_OK):
            raise RuntimeError(f"nimbus binary not found or not executable: {NIMBUS_BIN} (set NIMBUS_BIN)")
        self._log = open(self.log_path, "ab")
        # Each daemon gets its own free gateway port (the default 8080 would collide).
        cmd = [NIMBUS_BIN, "serve", "--data-dir", self.data_dir, "--listen", "127.0.0.1:0",
               "--gateway-listen", "127.0.0.1:0", *self.extra_args]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=_clean_env())
        deadline = time.monotonic() + START_TIMEOUT_S
        info = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nimbus serve exited with {self.proc.returncode} before listening\n"
                                   + self.log_text())
            try:
                with open(self.endpoints_path) as f:
                    info = json.load(f)
                # A stale file left by a killed daemon names another pid.
                if info.get("api") and info.get("pid") == self.proc.pid:
                    break
            except (FileNotFoundError, json.JSONDecodeError):
                pass  # not written yet, or mid-write
            info = None
            time.sleep(0.02)
        if info is None:
            self.kill()
            raise RuntimeError(f"nimbus serve wrote no endpoints.json within {START_TIMEOUT_S} s\n" + self.log_text())
        self.endpoint = info["api"].rstrip("/")
        self.gateway = (info.get("gateway") or "").rstrip("/")
        self.pid = info.get("pid")
        self.credentials = self._read_credentials()
        return self

    def _read_credentials(self):
        path = os.path.join(self.data_dir, "credentials")
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            parser = configparser.ConfigParser()
            try:
                parser.read(path)
                key = parser["default"]["aws_access_key_id"].strip()
                secret = parser["default"]["aws_secret_access_key"].strip()
                return key, secret
            except KeyError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no usable credentials in {path}\n" + self.log_text())
                time.sleep(0.02)

    def stop(self, test=None):
        """SIGTERM, wait; the daemon must exit 0 and remove endpoints.json."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        try:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError(f"nimbus serve did not stop within {STOP_TIMEOUT_S} s of SIGTERM\n"
                                     + self.log_text())
        finally:
            if self._log:
                self._log.close()
                self._log = None
        if rc != 0:
            raise AssertionError(f"nimbus serve exited with {rc} after SIGTERM (want 0)\n" + self.log_text())
        if os.path.exists(self.endpoints_path):
            raise AssertionError("endpoints.json still present after a clean stop\n" + self.log_text())

    def kill(self):
        """Best-effort cleanup (no assertions) for error paths."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None
        if self._log:
            self._log.close()
            self._log = None

    def remove_data_dir(self):
        # NIMBUS_IT_KEEP_DATA=1 keeps it (and daemon.log) for a post-mortem.
        if self.owns_data_dir and not os.environ.get("NIMBUS_IT_KEEP_DATA"):
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self, tail=20000):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except OSError:
            return "(no daemon log)"
        text = data[-tail:].decode("utf-8", "replace")
        return f"---- {self.log_path} (last {min(len(data), tail)} bytes) ----\n{text}\n---- end of daemon log ----"

    # -- clients -----------------------------------------------------------

    def boto3_client(self, service="lambda", credentials=None, **config_kwargs):
        key, secret = credentials or self.credentials
        cfg = {"retries": {"max_attempts": 1}, "connect_timeout": 5, "read_timeout": 60}
        cfg.update(config_kwargs)
        return boto3.session.Session().client(
            service, endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=key, aws_secret_access_key=secret,
            config=botocore.config.Config(**cfg))

    def aws(self, *args, credentials=None):
        """Runs Debian's aws CLI against this daemon; returns (rc, stdout, stderr)."""
        key, secret = credentials or self.credentials
        env = _clean_env()
        env.update({
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_PAGER": "",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        })
        cmd = [AWS_CLI, *args, "--endpoint-url", self.endpoint, "--output", "json"]
        p = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=SUBPROCESS_TIMEOUT_S)
        return p.returncode, p.stdout, p.stderr

    def aws_json(self, *args):
        """aws(...) that must succeed; returns the parsed JSON output (None if empty)."""
        rc, out, err = self.aws(*args)
        if rc != 0:
            raise AssertionError(f"aws {' '.join(args)} exited {rc}\nstdout: {out}\nstderr: {err}")
        return json.loads(out) if out.strip() else None

    def cli(self, *args, data_dir=True, env=None):
        """Runs `nimbus <args> --data-dir <dir>`; returns (rc, stdout, stderr).

        The environment has no AWS_* or NIMBUS_* variables except those in `env`."""
        cmd = [NIMBUS_BIN, *args]
        if data_dir:
            cmd += ["--data-dir", self.data_dir]
        full_env = _clean_env()
        full_env.update(env or {})
        p = subprocess.run(cmd, env=full_env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=SUBPROCESS_TIMEOUT_S)
        return p.returncode, p.stdout, p.stderr

    def request(self, method, path, body=b"", headers=None, sign=True, credentials=None, query=None,
                signed_at=None, send_body=None):
        """One raw HTTP request; SigV4-signed (botocore's signer) unless sign=False.

        signed_at: a naive UTC datetime to sign with instead of now.
        send_body: bytes sent instead of the signed body (to tamper with it).
        """
        if isinstance(body, str):
            body = body.encode("utf-8")
        url = self.endpoint + path
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True, quote_via=urllib.parse.quote)
        hdrs = dict(headers or {})
        if body and not any(k.lower() == "content-type" for k in hdrs):
            hdrs["Content-Type"] = "application/json"
        if sign:
            key, secret = credentials or self.credentials
            req = botocore.awsrequest.AWSRequest(method=method, url=url, data=body, headers=hdrs)
            signer = botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret), "lambda", REGION)
            if signed_at is None:
                signer.add_auth(req)
            else:
                shim = types.SimpleNamespace(datetime=types.SimpleNamespace(utcnow=lambda: signed_at))
                with unittest.mock.patch.object(botocore.auth, "datetime", shim):
                    signer.add_auth(req)
            hdrs = dict(req.headers.items())
        if send_body is not None:
            body = send_body
        parsed = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        try:
            target = parsed.path + (("?" + parsed.query) if parsed.query else "")
            conn.request(method, target, body=body or None, headers=hdrs)
            resp = conn.getresponse()
            return HttpResponse(resp.status, resp.headers, resp.read())
        finally:
            conn.close()

    def gateway_request(self, method, target, body=b"", headers=None, timeout=60):
        """One request to the HTTP gateway; `target` is sent exactly as given (no normalisation)."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        parsed = urllib.parse.urlsplit(self.gateway)
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
        try:
            conn.request(method, target, body=body or None, headers=dict(headers or {}))
            resp = conn.getresponse()
            return HttpResponse(resp.status, resp.headers, resp.read())
        finally:
            conn.close()

    def gateway_exchange(self, data, timeout=10.0):
        """Writes bytes to the gateway on a fresh TCP connection and reads until the peer closes."""
        return _exchange(self.gateway, data, timeout)

    def raw_exchange(self, data, timeout=10.0):
        """Writes bytes to the Lambda API on a fresh TCP connection and reads until the peer closes."""
        return _exchange(self.endpoint, data, timeout)

    def list_function_names(self):
        """All function names via signed raw ListFunctions, following NextMarker."""
        names, marker = [], None
        for _ in range(1000):
            query = {"Marker": marker} if marker else None
            r = self.request("GET", "/2015-03-31/functions/", query=query)
            if r.status != 200:
                raise AssertionError(f"ListFunctions failed: {r!r}")
            out = r.json()
            names += [f["FunctionName"] for f in out["Functions"]]
            marker = out.get("NextMarker")
            if not marker:
                return names
        raise AssertionError("ListFunctions never stopped paginating")

    # -- running functions ---------------------------------------------------

    def invoke(self, name, payload=b"{}", headers=None, qualifier=None, sign=True):
        """A raw (signed) Invoke; returns the HttpResponse. payload: bytes, str or a JSON-able dict/list."""
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload)
        query = {"Qualifier": qualifier} if qualifier else None
        return self.request("POST", f"/2015-03-31/functions/{urllib.parse.quote(name, safe='')}/invocations",
                            body=payload, headers=headers, query=query, sign=sign)

    def metrics(self):
        """GET /metrics (unsigned), parsed with parse_metrics."""
        r = self.request("GET", "/metrics", sign=False)
        if r.status != 200:
            raise AssertionError(f"GET /metrics failed: {r!r}")
        return parse_metrics(r.body.decode("utf-8"))

    def metric(self, name, **labels):
        """One sample of GET /metrics; 0.0 when the series is absent."""
        return self.metrics().get((name, tuple(sorted(labels.items()))), 0.0)


def _exchange(url, data, timeout):
    """Writes bytes to `url`'s host and port on a fresh TCP connection and reads until the peer closes."""
    parsed = urllib.parse.urlsplit(url)
    with socket.create_connection((parsed.hostname, parsed.port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        with contextlib.suppress(ConnectionResetError, socket.timeout):
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
    return b"".join(chunks)


def _clean_env():
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("AWS_") or k.startswith("NIMBUS_"):
            del env[k]
    return env


def create_function_body(name, zip_bytes=None, **overrides):
    """A CreateFunction JSON body (dict) with sensible defaults."""
    body = {
        "FunctionName": name,
        "Runtime": "python3.12",
        "Role": ROLE,
        "Handler": "app.handler",
        "Code": {"ZipFile": base64.b64encode(zip_bytes if zip_bytes is not None else python_zip()).decode()},
    }
    body.update(overrides)
    return body


class DaemonTestCase(unittest.TestCase):
    """Each test class gets a fresh daemon (setUpClass) stopped cleanly in
    tearDownClass. On a failing test the daemon log is printed to stderr."""

    daemon_args = ()
    daemon = None
    client = None  # a boto3 Lambda client for `daemon`

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.workdir = tempfile.mkdtemp(prefix="nimbus-it-work-")
        cls.daemon = Daemon(extra_args=cls.daemon_args)
        try:
            cls.daemon.start()
        except BaseException:
            cls.daemon.kill()
            sys.stderr.write(cls.daemon.log_text() + "\n")
            cls.daemon.remove_data_dir()
            shutil.rmtree(cls.workdir, ignore_errors=True)
            raise
        cls.client = cls.daemon.boto3_client("lambda")

    @classmethod
    def tearDownClass(cls):
        try:
            if getattr(cls, "client", None) is not None:
                cls.client.close()
            if cls.daemon is not None:
                try:
                    cls.daemon.stop()
                except AssertionError:
                    cls.daemon.kill()
                    raise
                cls.daemon.remove_data_dir()
        finally:
            shutil.rmtree(cls.workdir, ignore_errors=True)
            super().tearDownClass()

    def run(self, result=None):
        result = result or self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        out = super().run(result)
        if len(result.failures) + len(result.errors) > before:
            for d in self.daemons_to_dump():
                sys.stderr.write(f"\n[{self.id()} failed; daemon log follows]\n{d.log_text()}\n")
        return out

    def daemons_to_dump(self):
        return [d for d in [type(self).daemon, *getattr(self, "extra_daemons", [])] if d is not None]

    def write_file(self, name, data):
        path = os.path.join(self.workdir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        return path

    def assertLambdaTime(self, value):
        self.assertRegex(value, LAST_MODIFIED_RE)

    def assertNoFunction(self, name):
        r = self.daemon.request("GET", f"/2015-03-31/functions/{urllib.parse.quote(name, safe='')}")
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.header("x-amzn-ErrorType"), "ResourceNotFoundException", r)


@contextlib.contextmanager
def running_daemon(data_dir=None, extra_args=()):
    """A daemon for one `with` block; stopped cleanly (asserted) on exit."""
    d = Daemon(data_dir=data_dir, extra_args=extra_args)
    try:
        d.start()
    except BaseException:
        d.kill()
        sys.stderr.write(d.log_text() + "\n")
        if data_dir is None:
            d.remove_data_dir()
        raise
    ok = False
    try:
        yield d
        ok = True
    finally:
        if ok:
            d.stop()
        else:
            sys.stderr.write(d.log_text() + "\n")
            d.kill()
        if data_dir is None:
            d.remove_data_dir()


# ---------------------------------------------------------------------------
# Helpers for the execution tests (test_execution_*.py): running functions,
# reading metrics and logs, looking at host processes.
# ---------------------------------------------------------------------------

HOST_CURL = "/usr/bin/curl"
# Lambda's sync Invoke payload limit (the body may be at most this long).
INVOKE_PAYLOAD_LIMIT = 6291456


def make_zip_modes(files):
    """Like make_zip, but files = {name: (content, mode)} with Unix modes (e.g. 0o755)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, (content, mode) in files.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.create_system = 3  # Unix, so external_attr carries the mode
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, content)
    return buf.getvalue()


def provided_zip(bootstrap, extra=None):
    """A provided.* package: an executable `bootstrap` plus extra {name: content} files."""
    files = {"bootstrap": (bootstrap, 0o755)}
    for name, content in (extra or {}).items():
        files[name] = content if isinstance(content, tuple) else (content, 0o644)
    return make_zip_modes(files)


def decode_log_result(value):
    """The text of an X-Amz-Log-Result / LogResult (base64)."""
    return base64.b64decode(value).decode("utf-8", "replace") if value else ""


def report_line(log_text, request_id):
    """The REPORT line of one request in a log text, or None."""
    for line in log_text.splitlines():
        if line.startswith(f"REPORT RequestId: {request_id}"):
            return line
    return None


_METRIC_LINE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
_METRIC_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text → {(name, ((label, value), ...)): float}, labels sorted."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _METRIC_LINE_RE.match(line.strip())
        if not m:
            raise AssertionError(f"unparsable metrics line: {line!r}")
        labels = tuple(sorted(_METRIC_LABEL_RE.findall(m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def host_processes_of_uid(uid):
    """[(pid, comm)] of host processes whose real uid is `uid` (read from /proc/*/status)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                status = f.read()
            with open(f"/proc/{entry}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue  # exited meanwhile
        for line in status.splitlines():
            if line.startswith("Uid:") and int(line.split()[1]) == uid:
                found.append((int(entry), comm))
    return found


def wait_until(predicate, timeout, interval=0.05):
    """Polls predicate() until it returns a truthy value or `timeout` s pass; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


class LineReader:
    """Reads a pipe line by line on a thread so tests can wait for a line with a deadline."""

    def __init__(self, stream):
        self.lines = []
        self._queue = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream):
        for line in iter(stream.readline, ""):
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, predicate, timeout):
        """Returns the first line (already read or new) matching predicate, or None at the deadline/EOF."""
        for line in self.lines:
            if predicate(line):
                return line
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                return None
            self.lines.append(line)
            if predicate(line):
                return line


class ExecutionTestCase(DaemonTestCase):
    """A DaemonTestCase with helpers for creating and invoking functions.

    `healthy` is a Python function created in setUpClass; assertServes()
    invokes it to show the daemon still runs functions after a fault."""

    HEALTHY = "healthy"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.create_function(cls.HEALTHY, {"app.py": "def handler(event, context):\n"
                                                        "    return {'healthy': event}\n"})
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def create_function(cls, name, files=None, zip_bytes=None, runtime="python3.12", handler=None, **kwargs):
        """CreateFunction through boto3. files: {name: content} (0644) for make_zip, or zip_bytes."""
        if zip_bytes is None:
            zip_bytes = make_zip(files)
        if handler is None:
            handler = "index.handler" if runtime.startswith("nodejs") else "app.handler"
        params = dict(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler, Code={"ZipFile": zip_bytes})
        params.update(kwargs)
        return cls.client.create_function(**params)

    def invoke(self, name, payload=b"{}", **kwargs):
        return self.daemon.invoke(name, payload, **kwargs)

    def invoke_ok(self, name, payload=b"{}", **kwargs):
        """Invoke that must succeed without a function error; returns (HttpResponse, parsed body)."""
        r = self.daemon.invoke(name, payload, **kwargs)
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.header("X-Amz-Function-Error"), r)
        return r, r.json()

    def assertUnhandled(self, r, error_type, message=None):
        """A 200 Invoke carrying a function error; returns the error body."""
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Amz-Function-Error"), "Unhandled", r)
        self.assertRegex(r.header("x-amzn-RequestId") or "", UUID_RE, r)
        body = r.json()
        self.assertEqual(body.get("errorType"), error_type, r)
        if message is not None:
            self.assertEqual(body.get("errorMessage"), message, r)
        return body

    def assertInvokeError(self, r, status, error_type, message=None, message_key="message"):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.header("x-amzn-ErrorType"), error_type, r)
        self.assertRegex(r.header("x-amzn-RequestId") or "", UUID_RE, r)
        body = r.json()
        self.assertEqual(body.get("Type"), "User", r)
        if message is not None:
            self.assertEqual(body.get(message_key), message, r)
        return body

    def assertServes(self):
        """The daemon is alive and still runs a healthy function."""
        self.assertTrue(self.daemon.alive(), "nimbus serve died")
        marker = {"still": "serving", "t": time.time()}
        _, body = self.invoke_ok(self.HEALTHY, marker)
        self.assertEqual(body, {"healthy": marker})
