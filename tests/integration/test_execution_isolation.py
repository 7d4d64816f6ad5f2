"""Isolation between functions, the core security claims of docs/isolation.md.

Function A runs a probe that tries to reach function B's code, environment,
processes, /tmp and Runtime API; every test here fails if that works. B is
kept warm (a live instance) while A probes, so there is something to find."""

import concurrent.futures
import glob
import json
import os
import subprocess
import time
import unittest
import urllib.parse
import uuid

from harness import ExecutionTestCase, running_daemon, wait_until, ROLE, make_zip, decode_log_result

# The probe (function A). mode "inspect": look around; "scan": knock on every
# listening TCP port's Runtime API for `seconds`; "api": an unsigned request to
# the control API.
PROBE_PY = r'''
import http.client
import os
import socket
import time

def listening_ports():
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[3] == "0A":  # TCP_LISTEN
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return sorted(ports)

def knock(port, method, path, timeout):
    """An HTTP exchange with 127.0.0.1:port: ("http", status, lambda headers, body) or ("error", name)."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request(method, path, body=b'{"stolen": true}' if method == "POST" else None,
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        body = resp.read(300).decode("utf-8", "replace")
        lambda_headers = {k: v for k, v in resp.getheaders() if k.lower().startswith("lambda-runtime")}
        conn.close()
        return ["http", resp.status, lambda_headers, body]
    except Exception as e:
        return ["error", type(e).__name__]

def try_open(path):
    try:
        if os.path.isdir(path):
            return "listed: " + ",".join(sorted(os.listdir(path)))
        with open(path, "rb") as f:
            return "read: " + f.read(200).decode("utf-8", "replace")
    except Exception as e:
        return "error: " + type(e).__name__

def inspect(event):
    out = {"uid": os.getuid(), "gid": os.getgid(), "euid": os.geteuid(), "pid": os.getpid(),
           "sched": os.sched_getscheduler(0),
           "groups": os.getgroups(), "root": sorted(os.listdir("/")), "var": sorted(os.listdir("/var")),
           "task": sorted(os.listdir("/var/task")), "tmp": sorted(os.listdir("/tmp"))}
    procs = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = {}
            try:
                with open(f"/proc/{entry}/status") as f:
                    for line in f:
                        if line.startswith("Uid:"):
                            info["uid"] = int(line.split()[1])
                with open(f"/proc/{entry}/environ", "rb") as f:
                    info["environ"] = f.read().decode("utf-8", "replace")
            except Exception as e:
                info["error"] = type(e).__name__
            procs[entry] = info
    out["procs"] = procs
    out["opened"] = {p: try_open(p) for p in event.get("paths", [])}
    out["exists"] = {p: os.path.exists(p) for p in event.get("paths", [])}
    with open("/proc/self/mountinfo") as f:
        task_sources = [line.split()[3] for line in f if line.split()[4] == "/var/task"]
    out["task_source"] = task_sources
    # The host directory around our own code, as named in mountinfo.
    out["task_source_parent"] = try_open(os.path.dirname(task_sources[0])) if task_sources else None
    if event.get("write_tmp"):
        with open("/tmp/" + event["write_tmp"], "w") as f:
            f.write("a's private data")
    return out

def scan(event):
    own = int(os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)[1])
    skip = {own, *event.get("skip", [])}
    targets = set(event.get("targets", []))
    answers, seen, rounds = {}, set(), 0
    deadline = time.monotonic() + event["seconds"]
    while time.monotonic() < deadline:
        rounds += 1
        for port in sorted((set(listening_ports()) | targets) - skip):
            seen.add(port)
            for method, path in (("GET", "/2018-06-01/runtime/invocation/next"),
                                 ("POST", "/2018-06-01/runtime/invocation/x/response"),
                                 ("GET", "/2018-06-01/runtime/invocation/next")):
                answers.setdefault(str(port), []).append(knock(port, method, path, 0.5))
    return {"own": own, "seen": sorted(seen), "rounds": rounds, "answers": answers, "uid": os.getuid()}

def api(event):
    return {"unsigned": knock(event["port"], "GET", "/2015-03-31/functions/", 2)}

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"inspect": inspect, "scan": scan, "api": api}[event["mode"]](event)
'''

SECRET = "b-secret-" + uuid.uuid4().hex
MARKER = "b-code-marker-" + uuid.uuid4().hex

# Function B: reports what it is and where its Runtime API is.
TARGET_PY = r'''
import os
import time

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"event": event, "uid": os.getuid(), "gid": os.getgid(), "secret": os.environ.get("SECRET"),
            "runtime_api": os.environ["AWS_LAMBDA_RUNTIME_API"], "tmp": sorted(os.listdir("/tmp")),
            "request_id": context.aws_request_id}
'''


def runtime_api_answers(answers, port):
    """The HTTP answers a probe got from `port` (a Runtime API must refuse the connection instead)."""
    return [a for a in answers.get(str(port), []) if a[0] == "http"]


def suspicious_answers(answers):
    """Answers from any port that look like a Runtime API accepted the request."""
    bad = {}
    for port, results in answers.items():
        for a in results:
            if a[0] != "http":
                continue
            status, lambda_headers, body = a[1], a[2], a[3]
            if 200 <= status < 300 or lambda_headers or "InvalidRequestID" in body or "errorType" in body:
                bad.setdefault(port, []).append(a)
    return bad


class IsolationTest(ExecutionTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.create_function("iso-a", {"app.py": PROBE_PY}, Timeout=15)
            cls.create_function("iso-b", {"app.py": TARGET_PY, "b_marker.txt": MARKER}, Timeout=15,
                                Environment={"Variables": {"SECRET": SECRET}})
        except BaseException:
            cls.tearDownClass()
            raise

    def warm_b(self):
        """Runs B once (so a B instance is alive and idle) and returns its result."""
        _, body = self.invoke_ok("iso-b", {"warm": True})
        self.assertEqual(body["secret"], SECRET)  # B itself does see its variable
        return body

    def probe(self, **event):
        _, body = self.invoke_ok("iso-a", event)
        return body

    def api_port(self):
        return urllib.parse.urlsplit(self.daemon.endpoint).port

    def test_code_of_another_function_is_invisible(self):
        self.warm_b()
        markers = glob.glob(os.path.join(self.daemon.data_dir, "code", "*", "b_marker.txt"))
        self.assertEqual(len(markers), 1, "B's code is not where the test expects it on the host")
        b_marker = markers[0]
        with open(b_marker) as f:
            self.assertEqual(f.read(), MARKER)
        b_dir = os.path.dirname(b_marker)
        paths = [b_marker, b_dir, os.path.join(self.daemon.data_dir, "code"), self.daemon.data_dir,
                 os.path.join(self.daemon.data_dir, "credentials")]
        out = self.probe(mode="inspect", paths=paths)
        for path in paths:
            self.assertTrue(out["opened"][path].startswith("error: "), (path, out["opened"][path]))
            self.assertFalse(out["exists"][path], path)
        self.assertEqual(out["task"], ["app.py"])  # only its own code under /var/task
        self.assertEqual(out["var"], ["runtime", "task"])
        for forbidden in ("root", "home", "work", "srv", "mnt", "opt", "media"):
            self.assertNotIn(forbidden, out["root"])
        # Even knowing the host path of its own code, A cannot list its siblings.
        self.assertEqual(len(out["task_source"]), 1, out["task_source"])
        self.assertTrue(out["task_source"][0].startswith(os.path.join(self.daemon.data_dir, "code")), out)
        self.assertTrue(out["task_source_parent"].startswith("error: "), out["task_source_parent"])

    def test_environment_and_processes_of_another_function_are_invisible(self):
        b = self.warm_b()
        self.assertEqual(self.daemon.metric("nimbus_instances", function="iso-b"), 1)
        out = self.probe(mode="inspect")
        self.assertEqual(out["pid"], 1, "the runtime is not PID 1 of its own PID namespace")
        self.assertIn("1", out["procs"])
        for pid, info in out["procs"].items():
            self.assertEqual(info.get("uid"), out["uid"], f"A sees pid {pid} of another user: {info}")
            self.assertNotIn(SECRET, info.get("environ", ""), f"A read B's environment through /proc/{pid}")
        # The probe can read environ (of a primed runtime, the block it was started with).
        self.assertIn("LAMBDA_TASK_ROOT=/var/task", out["procs"]["1"]["environ"])
        self.assertNotIn("SECRET=", out["procs"]["1"]["environ"])
        self.assertNotEqual(out["uid"], b["uid"])

    def test_tmp_is_private(self):
        name = "a-only-" + uuid.uuid4().hex
        first = self.probe(mode="inspect", write_tmp=name)
        self.assertNotIn(name, first["tmp"])
        again = self.probe(mode="inspect")
        self.assertIn(name, again["tmp"])  # A's own warm instance keeps it
        b = self.warm_b()
        self.assertNotIn(name, b["tmp"])
        self.assertFalse(os.path.exists(os.path.join("/tmp", name)), "A's /tmp is the host's /tmp")
        # A's second instance (running next to the first) has its own empty /tmp.
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            outs = list(pool.map(lambda _: self.probe(mode="inspect", sleep=1.0), range(2)))
        self.assertEqual(len({o["uid"] for o in outs}), 2, "expected two A instances")
        self.assertEqual(sorted(name in o["tmp"] for o in outs), [False, True], outs)

    def test_instances_run_as_distinct_unprivileged_users(self):
        b = self.warm_b()
        a = self.probe(mode="inspect")
        self.assertNotEqual(a["uid"], 0)
        self.assertNotEqual(b["uid"], 0)
        self.assertEqual(a["euid"], a["uid"])
        self.assertNotEqual(a["uid"], b["uid"])
        self.assertNotEqual(a["gid"], b["gid"])
        self.assertNotIn(0, a["groups"])
        self.assertNotEqual(a["uid"], os.getuid())
        # Batch scheduling: an instance the daemon wakes does not preempt it.
        self.assertEqual(a["sched"], os.SCHED_BATCH)

    def test_cannot_take_another_functions_invocations(self):
        before = self.daemon.metric("nimbus_invocations_total", function="iso-b")
        b = self.warm_b()
        b_port = int(b["runtime_api"].rsplit(":", 1)[1])
        api_port = self.api_port()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            scan = pool.submit(self.probe, mode="scan", seconds=2.5, skip=[api_port], targets=[b_port])
            time.sleep(0.3)  # let the scan start (bounded: the scan runs 2.5 s)
            # B keeps answering its own invocations while A knocks on its port.
            for i in range(4):
                _, got = self.invoke_ok("iso-b", {"i": i, "sleep": 0.2})
                self.assertEqual(got["event"], {"i": i, "sleep": 0.2})
                self.assertEqual(got["runtime_api"], b["runtime_api"])  # the same, warm B instance
            result = scan.result(timeout=20)
        self.assertIn(b_port, result["seen"])
        self.assertGreaterEqual(result["rounds"], 2)
        self.assertEqual(runtime_api_answers(result["answers"], b_port), [],
                         "B's Runtime API answered function A")
        self.assertEqual(suspicious_answers(result["answers"]), {})
        self.assertEqual(self.daemon.metric("nimbus_invocations_total", function="iso-b"), before + 5)

    def test_control_api_is_reachable_but_needs_a_signature(self):
        out = self.probe(mode="api", port=self.api_port())
        self.assertEqual(out["unsigned"][0], "http", out)
        self.assertEqual(out["unsigned"][1], 403, out)


NETWORK_PY = """
import json, socket


def handler(event, context):
    devices = [line.split(":")[0].strip() for line in open("/proc/net/dev").read().splitlines()[2:]]
    try:
        socket.create_connection(("127.0.0.1", int(event["port"])), timeout=1).close()
        reached = "connected"
    except OSError as e:
        reached = type(e).__name__
    return {"devices": devices, "reached": reached}
"""


def _children(pid):
    """Direct children of `pid` (every thread's list)."""
    out = []
    for path in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            with open(path) as f:
                out += [int(p) for p in f.read().split()]
        except OSError:
            pass
    return out


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def _launcher_children(daemon):
    """(pid, comm) of every child of the daemon's launcher process."""
    launchers = [p for p in _children(daemon.proc.pid) if _comm(p) == "nimbus-launcher"]
    return [(c, _comm(c)) for launcher in launchers for c in _children(launcher)]


def _waiting_sandboxes(daemon):
    return [pid for pid, comm in _launcher_children(daemon) if comm == "nimbus-sandbox"]


def _cgroup_of(pid):
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            return f.read()
    except OSError:
        return ""


def _waiting_primed(daemon, comm_prefix=""):
    """Primed runtimes not yet given an instance (their group is primed.N until then)."""
    return [pid for pid, comm in _launcher_children(daemon)
            if "/primed." in _cgroup_of(pid) and comm.startswith(comm_prefix)]


def _ready(pid):
    """A primed runtime blocked in read(3, ...): it has sent its ready byte
    and waits for an instance (x86-64 syscall 0 = read)."""
    try:
        with open(f"/proc/{pid}/syscall") as f:
            fields = f.read().split()
    except OSError:
        return False
    return len(fields) > 1 and fields[0] == "0" and fields[1] == "0x3"


def _memory_limit_of(pid):
    """memory.limit_in_bytes of the v1 memory group of `pid`; None on cgroup v2."""
    for line in _cgroup_of(pid).splitlines():
        if line.split(":")[1] == "memory":
            with open(f"/sys/fs/cgroup/memory{line.split(':', 2)[2]}/memory.limit_in_bytes") as f:
                return int(f.read())
    return None


HOST_VIEW_PY = """
import os
def handler(event, context):
    with open('/proc/self/cgroup') as f:
        cgroup = f.read()
    return {'hostname': os.uname().nodename, 'uid': os.getuid(), 'cgroup': cgroup, 'sched': os.sched_getscheduler(0),
            'task': sorted(os.listdir('/var/task')), 'tmp_writable': os.access('/tmp', os.W_OK)}
"""


class SandboxPoolTest(ExecutionTestCase):
    """Cold starts take sandboxes made ahead of time (--sandbox-pool, default 2)
    and get exactly what a sandbox built from scratch gives."""

    def test_cold_start_takes_a_pooled_sandbox_with_the_functions_limits(self):
        self.assertEqual(len(wait_until(lambda: len(_waiting_sandboxes(self.daemon)) == 2 and
                                        _waiting_sandboxes(self.daemon), 10)), 2)
        self.create_function("pooled", {"app.py": HOST_VIEW_PY}, MemorySize=256)
        _, body = self.invoke_ok("pooled")
        self.assertEqual(self.daemon.metric("nimbus_cold_starts_total", function="pooled"), 1)
        self.assertEqual(self.daemon.metric("nimbus_cold_starts_pooled_total", function="pooled"), 1)
        # Inside: the same sandbox as ever.
        self.assertEqual(body["hostname"], "nimbus")
        self.assertNotEqual(body["uid"], 0)
        self.assertEqual(body["task"], ["app.py"])
        self.assertTrue(body["tmp_writable"])
        self.assertEqual(body["sched"], os.SCHED_BATCH)
        self.assertTrue(all(line.endswith(":/") for line in body["cgroup"].split()), body["cgroup"])
        # Outside: the instance's memory group carries the function's limit,
        # not the pool's placeholder (128 MB).
        # Waited for: the primed runtime that replaces the one the instance
        # took may be between its start and its own group for a moment.
        def instances():
            found = [pid for pid, comm in _launcher_children(self.daemon)
                     if comm.startswith("python") and pid not in _waiting_primed(self.daemon)]
            return found if len(found) == 1 else None
        instances = wait_until(instances, 10)
        self.assertIsNotNone(instances, _launcher_children(self.daemon))
        limit = _memory_limit_of(instances[0])
        if limit is not None:  # cgroup v1 (this machine); v2 keeps memory.max in the one group
            self.assertEqual(limit, 256 << 20)
        # And the pool is full again.
        self.assertEqual(len(wait_until(lambda: len(_waiting_sandboxes(self.daemon)) == 2 and
                                        _waiting_sandboxes(self.daemon), 10)), 2)

    def test_no_pool_builds_each_sandbox_from_scratch(self):
        with running_daemon(extra_args=["--sandbox-pool", "0"]) as d:
            time.sleep(0.3)  # a pool, were there one, would be filling now
            self.assertEqual(_waiting_sandboxes(d), [])
            d.boto3_client("lambda").create_function(
                FunctionName="fresh", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                Code={"ZipFile": make_zip({"app.py": HOST_VIEW_PY})})
            r = d.invoke("fresh", b"{}")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["hostname"], "nimbus")
            self.assertEqual(d.metric("nimbus_cold_starts_total", function="fresh"), 1)
            self.assertEqual(d.metric("nimbus_cold_starts_pooled_total", function="fresh"), 0)


PRIMED_VIEW_PY = """
import os, sys
print("log line from", os.environ["AWS_LAMBDA_FUNCTION_NAME"])
def handler(event, context):
    st = os.statvfs('/tmp')
    return {'name': os.environ['AWS_LAMBDA_FUNCTION_NAME'], 'mine': os.environ.get('MINE'),
            'primed_fd': os.environ.get('NIMBUS_PRIMED_FD'), 'cwd': os.getcwd(), 'uid': os.getuid(),
            'pid': os.getpid(), 'task': sorted(os.listdir('/var/task')), 'tmp_mb': st.f_blocks * st.f_frsize >> 20,
            'sched': os.sched_getscheduler(0),
            'handler_file': sys.modules[__name__].__file__, 'memory': context.memory_limit_in_mb}
"""

PRIMED_VIEW_MJS = """
import fs from 'node:fs';
console.log('log line from', process.env.AWS_LAMBDA_FUNCTION_NAME);
export const handler = async () => {
  const st = fs.statfsSync('/tmp');
  return {name: process.env.AWS_LAMBDA_FUNCTION_NAME, mine: process.env.MINE ?? null,
          primed_fd: process.env.NIMBUS_PRIMED_FD ?? null, cwd: process.cwd(), uid: process.getuid(),
          pid: process.pid, task: fs.readdirSync('/var/task').sort(), tmp_mb: Number(BigInt(st.blocks) * BigInt(st.bsize) >> 20n)};
};
"""


class PrimedRuntimeTest(ExecutionTestCase):
    """Python and Node cold starts take a runtime started ahead of time
    (--primed-runtimes, default 1 per interpreter) and give the function
    exactly what a fresh process gives it."""

    def check_primed(self, runtime, files, handler, memory_key):
        first, second = f"primed-first-{memory_key}", f"primed-second-{memory_key}"
        self.create_function(first, files, runtime=runtime, handler=handler)
        _, a = self.invoke_ok(first)
        # The first cold start of an interpreter has none ready; from then on one is kept.
        self.assertEqual(self.daemon.metric("nimbus_cold_starts_primed_total", function=first), 0)
        interpreter = "python" if memory_key == "python" else "node"
        waiting = wait_until(lambda: [p for p in _waiting_primed(self.daemon, interpreter) if _ready(p)], 15)
        self.assertTrue(waiting, _launcher_children(self.daemon))
        self.create_function(second, files, runtime=runtime, handler=handler, MemorySize=256,
                             EphemeralStorage={"Size": 600}, Environment={"Variables": {"MINE": "yes"}})
        r, b = self.invoke_ok(second, headers={"X-Amz-Log-Type": "Tail"})
        self.assertEqual(self.daemon.metric("nimbus_cold_starts_primed_total", function=second), 1)
        self.assertIn(b["pid"], [1], b)
        self.assertEqual((b["name"], b["mine"], b["primed_fd"], b["cwd"]), (second, "yes", None, "/var/task"))
        self.assertEqual(b["task"], sorted(files))
        self.assertNotIn(b["uid"], (0, a["uid"]))
        self.assertEqual(b["tmp_mb"], 600)
        if memory_key == "python":
            self.assertEqual(b["sched"], os.SCHED_BATCH)
        # Its output is the instance's: the init log line is in the tail.
        self.assertIn(f"log line from {second}", decode_log_result(r.header("X-Amz-Log-Result")))
        # From outside: the waiting process became the instance, with the function's memory limit.
        instance = [pid for pid in waiting if pid in [p for p, _ in _launcher_children(self.daemon)]
                    and pid not in _waiting_primed(self.daemon)]
        self.assertEqual(len(instance), 1, (waiting, _launcher_children(self.daemon)))
        limit = _memory_limit_of(instance[0])
        if limit is not None:
            self.assertEqual(limit, 256 << 20)
        # A function that sets what an interpreter reads at start gets a fresh one.
        own = f"primed-own-{memory_key}"
        start_var = "PYTHONDONTWRITEBYTECODE" if memory_key == "python" else "NODE_OPTIONS"
        self.create_function(own, files, runtime=runtime, handler=handler,
                             Environment={"Variables": {start_var: "1" if memory_key == "python" else "--no-warnings"}})
        _, c = self.invoke_ok(own)
        self.assertEqual(c["name"], own)
        self.assertEqual(self.daemon.metric("nimbus_cold_starts_primed_total", function=own), 0)

    def test_python_instances_start_from_a_primed_runtime(self):
        self.check_primed("python3.12", {"app.py": PRIMED_VIEW_PY}, "app.handler", "python")

    def test_node_instances_start_from_a_primed_runtime(self):
        self.check_primed("nodejs20.x", {"index.mjs": PRIMED_VIEW_MJS}, "index.handler", "node")

    def test_primed_runtimes_can_be_turned_off(self):
        with running_daemon(extra_args=["--primed-runtimes", "0"]) as d:
            d.boto3_client("lambda").create_function(
                FunctionName="plain", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                Code={"ZipFile": make_zip({"app.py": HOST_VIEW_PY})})
            self.assertEqual(d.invoke("plain", b"{}").status, 200)
            time.sleep(0.5)  # primed runtimes, were they on, would be starting now
            self.assertEqual(_waiting_primed(d), [])


class NetworkOptOutTest(ExecutionTestCase):
    """The tag nimbus:network=none gives a function a network of its own."""

    def api_port(self):
        return int(self.daemon.endpoint.rsplit(":", 1)[1])

    def test_tagged_function_has_only_loopback_and_still_runs(self):
        self.create_function("net-open", {"app.py": NETWORK_PY})
        self.create_function("net-none", {"app.py": NETWORK_PY}, Tags={"nimbus:network": "none"})
        payload = json.dumps({"port": self.api_port()}).encode()
        _, open_ = self.invoke_ok("net-open", payload)
        self.assertEqual(open_["reached"], "connected", open_)
        self.assertGreater(len(open_["devices"]), 1, open_)
        for _ in range(2):  # cold, then warm: its Runtime API works inside its own network
            _, closed = self.invoke_ok("net-none", payload)
            self.assertEqual(closed["devices"], ["lo"], closed)
            self.assertEqual(closed["reached"], "ConnectionRefusedError", closed)
        self.assertEqual(self.daemon.metric("nimbus_cold_starts_total", function="net-none"), 1)


def align_next_pid(remainder, modulus, limit=1024):
    """Forks /bin/true until the next new process will likely get a pid ≡ remainder (mod modulus)."""
    for _ in range(limit):
        p = subprocess.Popen(["/bin/true"])
        p.wait()
        if (p.pid + 1) % modulus == remainder:
            return


class CrossDaemonIsolationTest(ExecutionTestCase):
    """Two daemons on one host (e.g. two data directories): their instances
    must not share uids either, or the Runtime API's uid check lets one
    daemon's function talk to the other daemon's instance."""

    def test_instances_of_two_daemons_do_not_share_uids(self):
        self.create_function("x-b", {"app.py": TARGET_PY}, Timeout=15)
        b = self.invoke_ok("x-b", {"warm": True})[1]
        b_port = int(b["runtime_api"].rsplit(":", 1)[1])
        # The worst case for a uid range derived from the daemon's pid: the
        # second daemon's pid equals the first's modulo 64 (nimbus picks a
        # block by pid % 64). Any scheme must give distinct uids here too.
        align_next_pid(self.daemon.proc.pid % 64, 64)
        with running_daemon() as other:
            self.extra_daemons = [other]
            client = other.boto3_client()
            self.addCleanup(client.close)
            client.create_function(FunctionName="x-a", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                                   Code={"ZipFile": make_zip({"app.py": PROBE_PY})}, Timeout=15)
            api_ports = [urllib.parse.urlsplit(d.endpoint).port for d in (self.daemon, other)]
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                scan = pool.submit(other.invoke, "x-a", {"mode": "scan", "seconds": 2.0, "skip": api_ports,
                                                         "targets": [b_port]})
                time.sleep(0.3)
                results = [self.daemon.invoke("x-b", {"i": i, "sleep": 0.2}) for i in range(3)]
                r = scan.result(timeout=20)
            self.assertEqual(r.status, 200, r)
            result = r.json()
            b_results = [(res.status, res.header("X-Amz-Function-Error"), res.json()) for res in results]
            talked = runtime_api_answers(result["answers"], b_port)
            details = (f"daemon pids {self.daemon.proc.pid} and {other.proc.pid}; "
                       f"uid of B (daemon 1) {b['uid']}, uid of A (daemon 2) {result['uid']}; "
                       f"B's results while A knocked: {b_results}; A's answers from B's Runtime API: {talked[:4]}")
            self.assertNotEqual(result["uid"], b["uid"], "two daemons gave live instances the same uid: " + details)
            self.assertEqual(talked, [], "an instance of another daemon talked to B's Runtime API: " + details)
            for i, (status, function_error, body) in enumerate(b_results):
                self.assertEqual((status, function_error), (200, None), details)
                self.assertEqual(body["event"], {"i": i, "sleep": 0.2}, details)


class DaemonsSharingAHostTest(unittest.TestCase):
    """Two daemons on one host: each keeps its own cgroup parent, so one
    stopping never breaks the other's instances."""

    def test_stopping_one_daemon_leaves_the_other_serving(self):
        code = make_zip({"app.py": "def handler(event, context):\n    return {'pong': event}\n"})
        with running_daemon() as first:
            # No instance of `first` lives while `second` stops: an empty
            # shared parent would be removed from under it.
            first.boto3_client("lambda").create_function(FunctionName="two", Runtime="python3.12", Role=ROLE,
                                                         Handler="app.handler", Code={"ZipFile": code})
            with running_daemon() as second:
                second.boto3_client("lambda").create_function(FunctionName="two", Runtime="python3.12", Role=ROLE,
                                                              Handler="app.handler", Code={"ZipFile": code})
                r = second.invoke("two", {"n": 1})
                self.assertEqual((r.status, r.json()), (200, {"pong": {"n": 1}}), r)
            r = first.invoke("two", {"n": 2})
            self.assertEqual((r.status, r.json()), (200, {"pong": {"n": 2}}), r)

if __name__ == "__main__":
    unittest.main()
