"""The peers bench/run measures nimbus against, on the same machine in the same run.

Each peer is a server process answering `POST /bench` with the hello answer

    {"message": "<greeting>", "input": {... "body": "<the request body>" ...}}

(serverless-offline runs nimbus's own examples/hello-node handler, so its
`input` is the whole API Gateway payload 2.0 event; the others answer
`input: {"body": ...}`). How each is installed: bench/peers/setup.

    sls-offline  serverless 3 + serverless-offline 13 (npm), `serverless offline
                 start`, the handler behind its HTTP API emulation, default mode
                 (handlers in worker threads, loaded on the first request, kept
                 warm; no --reloadHandler, no --useInProcess)
    workerd      Cloudflare's runtime (npm `workerd`), worker.js + config.capnp
    node-http    a bare node:http server (the Node floor)
    beast        a bare Boost.Beast server (the C++ floor, CMake target bench_peer_beast)

Standard library only. bench/run does the timing of warm rows (wrk) and the
tables; this module starts, probes and stops peers and times their cold starts.
"""

import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NODE_MODULES = os.path.join(HERE, "node_modules")

REQUEST_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


class PeerUnavailable(Exception):
    """The peer is not installed or cannot run here: reported, the run goes on."""


class PeerFailed(Exception):
    """An installed peer misbehaved (wrong answer, crashed, never answered): fails the run."""


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _term_when_parent_dies():
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _setup_hint():
    try:
        with open(os.path.join(HERE, ".setup-error")) as f:
            reason = f.read().strip()
        return f"bench/peers/setup failed: {reason}"
    except OSError:
        return "not installed (run bench/peers/setup)"


class Peer:
    """One peer: how to start it on a port and what it answers."""

    name = None
    greeting = None
    start_timeout_s = 20.0
    what = ""

    def __init__(self):
        self.proc = None
        self.port = None
        self.log_path = None
        self._log = None

    # -- per peer
    def check_installed(self):
        """Raises PeerUnavailable with the reason when the peer cannot run here."""
        raise NotImplementedError

    def command(self, port):
        """(argv, cwd, extra env) to serve POST /bench on 127.0.0.1:port."""
        raise NotImplementedError

    def version(self):
        return None

    # -- common
    def url(self):
        return f"http://127.0.0.1:{self.port}/bench"

    def start(self):
        """Spawns the peer on a free port; returns the perf_counter_ns of the spawn."""
        self.port = free_port()
        argv, cwd, env = self.command(self.port)
        fd, self.log_path = tempfile.mkstemp(prefix=f"nimbus-bench-{self.name}-", suffix=".log")
        self._log = os.fdopen(fd, "ab")
        full_env = dict(os.environ)
        full_env.update(env)
        t0 = time.perf_counter_ns()
        try:
            self.proc = subprocess.Popen(argv, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL, stdout=self._log,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=_term_when_parent_dies)
        except OSError as e:
            raise PeerUnavailable(f"cannot run {argv[0]}: {e}") from e
        return t0

    def wait_listening(self, t0_ns):
        """Polls until the port accepts a connection; returns perf_counter_ns then."""
        deadline = t0_ns + int(self.start_timeout_s * 1e9)
        while True:
            if self.proc.poll() is not None:
                raise PeerFailed(f"{self.name} exited with {self.proc.returncode} before listening\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                    return time.perf_counter_ns()
            except OSError:
                pass
            if time.perf_counter_ns() > deadline:
                raise PeerFailed(f"{self.name} did not listen on {self.port} within {self.start_timeout_s:.0f} s\n"
                                 f"{self.log_tail()}")
            time.sleep(0.001)

    def stop(self):
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        try:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            else:
                # The group may still hold children of a peer that exited.
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        except ProcessLookupError:
            proc.wait()
        finally:
            if self._log:
                self._log.close()
                self._log = None

    def discard_log(self):
        if self.log_path:
            try:
                os.unlink(self.log_path)
            except OSError:
                pass
            self.log_path = None

    def log_tail(self, size=3000):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except (OSError, TypeError):
            return "(no log)"
        return f"---- {self.name} log ({self.log_path}) ----\n" + data[-size:].decode("utf-8", "replace")

    # -- requests and answers
    def event(self, seq):
        nonce = secrets.token_hex(6)
        return {"name": f"{self.name}-{seq}-{nonce}", "seq": seq, "nonce": nonce,
                "nested": {"list": [1, 2.5, True, None, "é"]}}

    def check(self, event, status, data):
        """Raises PeerFailed unless `data` is this peer's hello answer to `event`."""
        where = f"{self.name} (seq {event.get('seq')})"
        if status != 200:
            raise PeerFailed(f"{where}: answered {status}: {data[:1000]!r}")
        try:
            body = json.loads(data)
            got = json.loads(body["input"]["body"])
        except (ValueError, KeyError, TypeError):
            raise PeerFailed(f"{where}: not the hello answer: {data[:1000]!r}") from None
        if body.get("message") != self.greeting or got != event:
            raise PeerFailed(f"{where}: wrong answer {data[:1000]!r} (want message {self.greeting!r} "
                             f"and input.body {event!r})")

    def post(self, conn, event):
        """POST one event on `conn`; returns elapsed ms after checking the answer."""
        body = json.dumps(event).encode("utf-8")
        t0 = time.perf_counter_ns()
        try:
            conn.request("POST", "/bench", body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            raise PeerFailed(f"{self.name}: POST /bench: {e!r}\n{self.log_tail()}") from e
        ms = (time.perf_counter_ns() - t0) / 1e6
        self.check(event, resp.status, data)
        return ms

    def connect(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def warm_up(self, clients, rounds=2):
        """`clients` threads, each on its own connection, post `rounds` checked requests at the
        same moment, so the peer has what it needs for that many concurrent requests (for
        serverless-offline: a warm handler worker per concurrent request, as Lambda scales)."""
        barrier = threading.Barrier(clients, timeout=REQUEST_TIMEOUT_S * 2)
        errors = []

        def worker(idx):
            conn = None
            try:
                conn = self.connect()
                for r in range(rounds):
                    barrier.wait()
                    self.post(conn, self.event(10000 + idx * rounds + r))
            except threading.BrokenBarrierError:
                pass  # another client failed; its error is recorded
            except BaseException as e:  # noqa: BLE001 - re-raised on the calling thread
                errors.append(e)
                barrier.abort()
            finally:
                if conn is not None:
                    conn.close()

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(REQUEST_TIMEOUT_S * (rounds + 2))
        if any(t.is_alive() for t in threads):
            raise PeerFailed(f"{self.name}: warm-up with {clients} clients did not finish\n{self.log_tail()}")
        if errors:
            e = errors[0]
            raise e if isinstance(e, PeerFailed) else PeerFailed(f"{self.name}: warm-up failed: {e!r}")

    def cold_sample(self, seq):
        """Starts the peer and sends its first request. Leaves it running.
        Returns (process start -> first answer ms, first request once listening ms)."""
        t0 = self.start()
        self.wait_listening(t0)
        conn = self.connect()
        try:
            first_ms = self.post(conn, self.event(seq))
        finally:
            conn.close()
        return (time.perf_counter_ns() - t0) / 1e6, first_ms


def _node():
    node = shutil.which("node")
    if node is None:
        raise PeerUnavailable("node is not installed")
    return node


def _npm_bin(name):
    path = os.path.join(NODE_MODULES, ".bin", name)
    if not os.path.exists(path):
        raise PeerUnavailable(_setup_hint())
    return path


def _package_version(package):
    try:
        with open(os.path.join(NODE_MODULES, package, "package.json")) as f:
            return json.load(f).get("version")
    except (OSError, ValueError):
        return None


class ServerlessOffline(Peer):
    name = "sls-offline"
    greeting = "Hello from Node!"
    start_timeout_s = 90.0  # the serverless CLI loads hundreds of modules
    what = "serverless offline, httpApi POST /bench -> examples/hello-node (worker threads, the default)"

    def check_installed(self):
        _node()
        _npm_bin("serverless")
        if not os.path.isdir(os.path.join(NODE_MODULES, "serverless-offline")):
            raise PeerUnavailable(_setup_hint())

    def command(self, port):
        lambda_port = free_port()
        argv = [_node(), _npm_bin("serverless"), "offline", "start", "--host", "127.0.0.1",
                "--httpPort", str(port), "--lambdaPort", str(lambda_port)]
        # No telemetry, update or dashboard calls: the run must not need the internet.
        env = {"SLS_TELEMETRY_DISABLED": "1", "SLS_NOTIFICATIONS_MODE": "off", "SLS_DEPRECATION_DISABLE": "*",
               "SLS_INTERACTIVE_SETUP_DISABLE": "1", "CI": "1"}
        return argv, os.path.join(HERE, "serverless"), env

    def version(self):
        return f"serverless {_package_version('serverless')}, serverless-offline {_package_version('serverless-offline')}"


class Workerd(Peer):
    name = "workerd"
    greeting = "Hello from Node!"
    what = "workerd serve config.capnp (worker.js, ES module)"

    def _bin(self):
        return _npm_bin("workerd")

    def check_installed(self):
        path = self._bin()
        try:
            p = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise PeerUnavailable(f"workerd does not run here: {e}") from e
        if p.returncode != 0:
            raise PeerUnavailable(f"workerd does not run here: {(p.stderr or p.stdout).strip()[:300]}")
        self._version = p.stdout.strip()

    def command(self, port):
        return [self._bin(), "serve", "config.capnp", "--socket-addr", f"http=127.0.0.1:{port}"], \
            os.path.join(HERE, "workerd"), {}

    def version(self):
        return f"npm workerd {_package_version('workerd')} ({getattr(self, '_version', '?')})"


class NodeHttp(Peer):
    name = "node-http"
    greeting = "Hello from Node!"
    what = "bare node:http server (floor)"

    def check_installed(self):
        _node()

    def command(self, port):
        return [_node(), os.path.join(HERE, "node-http", "server.mjs"), str(port)], HERE, {}

    def version(self):
        try:
            return "node " + subprocess.run([_node(), "--version"], capture_output=True, text=True,
                                            timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired, PeerUnavailable):
            return None


class Beast(Peer):
    name = "beast"
    greeting = "Hello from C++!"
    what = "bare Boost.Beast server, 1 thread per core (floor)"

    def __init__(self, path):
        super().__init__()
        self.path = path

    def check_installed(self):
        if not os.access(self.path, os.X_OK):
            shown = os.path.relpath(self.path, ROOT) if self.path.startswith(ROOT + os.sep) else self.path
            raise PeerUnavailable(f"no {shown} (build it: tools/build bench_peer_beast, or set BEAST_PEER_BIN)")

    def command(self, port):
        return [self.path, str(port)], HERE, {}

    def version(self):
        return os.path.relpath(self.path, ROOT) if self.path.startswith(ROOT) else self.path


def all_peers(beast_bin):
    return [ServerlessOffline(), Workerd(), NodeHttp(), Beast(beast_bin)]
