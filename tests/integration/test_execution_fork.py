"""Fork of an initialised instance (docs/isolation.md): a Python function
whose init is slow gets a fork template, and its further instances are
forked from that template's initialised state instead of running init
again. Each forked instance must still be an instance of its own: its own
uid, /tmp, cgroup (memory limit), seccomp filter, environment and random
state. The function marks its init with a token made at import time: an
instance that ran init itself has a token of its own, forked instances
share their template's."""

import concurrent.futures
import json
import os
import signal
import time
import unittest

from harness import ExecutionTestCase, decode_log_result, host_processes_of_uid, report_line, wait_until

SLOW_INIT = r'''
import ctypes
import os
import random
import time
import uuid

time.sleep(0.5)  # a slow init: imports, clients, models...
TOKEN = uuid.uuid4().hex
INITIALISED_AS = os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE")
COUNTER = 0

def capabilities():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)

def try_unshare():
    libc = ctypes.CDLL(None, use_errno=True)
    # CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWIPC|CLONE_NEWUTS: what the template may do
    if libc.unshare(0x10000000 | 0x00020000 | 0x08000000 | 0x04000000) == 0:
        return "allowed"
    return os.strerror(ctypes.get_errno())

def handler(event, context):
    global COUNTER
    COUNTER += 1
    if event.get("allocate_mb") and event.get("spare_token") != TOKEN:
        hog = bytearray(event["allocate_mb"] << 20)
        for i in range(0, len(hog), 4096):
            hog[i] = 1
    if event.get("exit") is not None and event.get("spare_token") != TOKEN:
        os._exit(event["exit"])
    mark = "/tmp/" + context.aws_request_id
    with open(mark, "w") as f:
        f.write("x")
    time.sleep(event.get("hold", 0))
    return {"token": TOKEN, "uid": os.getuid(), "pid": os.getpid(), "counter": COUNTER,
            "sched": os.sched_getscheduler(0),
            "tmp": sorted(os.listdir("/tmp")), "mark": os.path.basename(mark),
            "random": random.random(), "initialised_as": INITIALISED_AS,
            "init_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"),
            "stream": os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME"),
            "caps": capabilities(), "unshare": try_unshare(), "cwd": os.getcwd(),
            "procs": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}
'''


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def namespaces_and_cgroup(pid):
    """{"user": inode, ..., "memory cgroup": path} of a host process."""
    found = {kind: os.stat(f"/proc/{pid}/ns/{kind}").st_ino for kind in ("user", "mnt", "pid", "ipc", "uts")}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if "memory" in controllers.split(",") or (controllers == "" and "memory cgroup" not in found):
                found["memory cgroup"] = path
    return found


def fork_templates(daemon, function=None):
    """pids of `daemon`'s fork templates (of `function`, if given): children
    of its launcher in a cgroup named template.N."""
    found = []
    for launcher in children(daemon.proc.pid):
        for pid in children(launcher):
            try:
                with open(f"/proc/{pid}/cgroup") as f:
                    if "/template." not in f.read():
                        continue
                with open(f"/proc/{pid}/environ", "rb") as f:
                    environment = f.read().split(b"\0")
            except OSError:
                continue
            if function is None or f"AWS_LAMBDA_FUNCTION_NAME={function}".encode() in environment:
                found.append(pid)
    return found


class ForkTestCase(ExecutionTestCase):
    def setUp(self):
        # The daemon says at start when the host cannot fork instances (no
        # user namespaces for unprivileged processes); nothing to test then.
        if "fork of initialised instances:" in self.daemon.log_text(tail=1 << 22):
            self.skipTest("this host cannot fork initialised instances (see the daemon's isolation warnings)")


class ForkTest(ForkTestCase):
    def invoke_many(self, name, payloads):
        with concurrent.futures.ThreadPoolExecutor(len(payloads)) as pool:
            futures = [pool.submit(self.invoke, name, json.dumps(p).encode(), headers={"X-Amz-Log-Type": "Tail"})
                       for p in payloads]
            responses = [f.result() for f in futures]
        for r in responses:
            self.assertEqual(r.status, 200, r)
        return responses

    def wait_for_spares(self, name, count=2):
        """While `name`'s template runs init (0.5 s) in the background, its
        new instances start fresh; once it is ready it forks its spares."""
        ready = wait_until(lambda: any(len(children(t)) >= count for t in fork_templates(self.daemon, name)), 15)
        self.assertTrue(ready, f"no fork template of {name} with {count} spares: {fork_templates(self.daemon)}")

    def forked(self, name):
        return self.daemon.metric("nimbus_cold_starts_forked_total", function=name) or 0

    def new_instances_after_the_template(self, name, count):
        """The first instance runs init itself and makes the version fork;
        then `count` more instances start while it is busy."""
        _, first = self.invoke_ok(name)
        self.wait_for_spares(name)
        responses = self.invoke_many(name, [{"hold": 1.5}] * (count + 1))
        return first, [r.json() for r in responses], responses

    def test_forked_instances_share_init_but_nothing_else(self):
        name = "fork-slow"
        self.create_function(name, {"app.py": SLOW_INIT}, MemorySize=128)
        first, bodies, responses = self.new_instances_after_the_template(name, 2)
        self.assertEqual(self.forked(name), 2, self.daemon.log_text())
        fresh = [b for b in bodies if b["token"] == first["token"]]
        forked = [b for b in bodies if b["token"] != first["token"]]
        self.assertEqual(len(fresh), 1, bodies)  # the first instance, warm
        self.assertEqual(len(forked), 2, bodies)
        # Init ran once for both: in their template, as SnapStart's does.
        self.assertEqual(forked[0]["token"], forked[1]["token"])
        self.assertEqual({b["initialised_as"] for b in forked}, {"snap-start"})
        self.assertEqual(first["initialised_as"], "on-demand")
        for b in forked:
            self.assertEqual(b["counter"], 1, b)  # a fresh copy of the initialised state
            self.assertEqual(b["init_type"], "snap-start", b)  # as in an environment SnapStart restored
            self.assertEqual(b["caps"], 0, b)
            self.assertEqual(b["sched"], os.SCHED_BATCH, b)  # the template's policy, inherited
            self.assertEqual(b["unshare"], "Operation not permitted", b)
            self.assertEqual(b["tmp"], [b["mark"]], b)  # its own /tmp
            self.assertEqual(b["cwd"], "/var/task", b)
            # Its own PID namespace, with a /proc of its own: it sees itself only.
            self.assertEqual(b["pid"], 1, b)
            self.assertEqual(b["procs"], [1], b)
        # From outside: each forked instance is a host process of its own uid,
        # in namespaces and a memory cgroup of its own (not its template's,
        # not its sibling's).
        templates = fork_templates(self.daemon, name)
        self.assertEqual(len(templates), 1, templates)
        seen = [namespaces_and_cgroup(templates[0])]
        for b in forked:
            pids = [pid for pid, comm in host_processes_of_uid(b["uid"]) if comm.startswith("python")]
            self.assertEqual(len(pids), 1, (b["uid"], host_processes_of_uid(b["uid"])))
            seen.append(namespaces_and_cgroup(pids[0]))
        for kind in ("user", "mnt", "pid", "ipc", "uts", "memory cgroup"):
            self.assertEqual(len({s[kind] for s in seen}), 3, (kind, seen))
        uids = {b["uid"] for b in bodies}
        self.assertEqual(len(uids), 3, bodies)
        self.assertNotIn(0, uids)
        self.assertEqual(len({b["stream"] for b in bodies}), 3, bodies)
        self.assertEqual(len({b["random"] for b in bodies}), 3, bodies)
        # Each forked start is a cold start with its own REPORT Init Duration.
        for r in responses:
            body = r.json()
            if body["token"] == first["token"]:
                continue
            report = report_line(decode_log_result(r.header("X-Amz-Log-Result")), r.header("x-amzn-RequestId"))
            self.assertIn("Init Duration", report)

    def test_forked_instance_keeps_its_memory_limit(self):
        name = "fork-memory"
        self.create_function(name, {"app.py": SLOW_INIT}, MemorySize=128)
        first, _, _ = self.new_instances_after_the_template(name, 1)
        self.assertEqual(self.forked(name), 1)
        # Three at once: the first instance, the forked one and a new forked
        # one. Only forked instances (another token) allocate 400 MB.
        event = {"allocate_mb": 400, "spare_token": first["token"], "hold": 1.0}
        responses = self.invoke_many(name, [event] * 3)
        self.assertEqual(self.forked(name), 2)
        errors = [r for r in responses if r.header("X-Amz-Function-Error")]
        self.assertEqual(len(errors), 2, [r.body for r in responses])
        for r in errors:
            self.assertEqual(r.json().get("errorType"), "Runtime.OutOfMemory", r.body)
        fine = [r.json() for r in responses if not r.header("X-Amz-Function-Error")]
        self.assertEqual([b["token"] for b in fine], [first["token"]])
        self.assertServes()

    def test_forked_instance_exit_status_is_reported(self):
        # Not the launcher's child (its template reaps it): the status comes
        # from its pidfd.
        name = "fork-exit"
        self.create_function(name, {"app.py": SLOW_INIT})
        first, _, _ = self.new_instances_after_the_template(name, 1)
        # One each for the first instance (which holds) and the forked one (which exits).
        responses = self.invoke_many(name, [{"exit": 3, "spare_token": first["token"], "hold": 1.0}] * 2)
        errors = [r for r in responses if r.header("X-Amz-Function-Error")]
        self.assertEqual(len(errors), 1, [r.body for r in responses])
        self.assertEqual(self.forked(name), 1)
        r = errors[0]
        request_id = r.header("x-amzn-RequestId")
        self.assertUnhandled(r, "Runtime.ExitError",
                             f"RequestId: {request_id} Error: Runtime exited with error: exit status 3")
        self.assertServes()

    def test_a_killed_template_is_replaced(self):
        name = "fork-killed"
        self.create_function(name, {"app.py": SLOW_INIT}, Tags={"nimbus:fork": "on"})
        first, bodies, _ = self.new_instances_after_the_template(name, 1)
        self.assertEqual(self.forked(name), 1)
        templates = fork_templates(self.daemon)
        self.assertEqual(len(templates), 1, templates)
        os.kill(templates[0], signal.SIGKILL)
        # Its forked instance lived in its PID namespace and is gone with it;
        # the first instance is not.
        self.assertTrue(wait_until(lambda: self.daemon.metric("nimbus_instances", function=name) == 1, 10))
        _, body = self.invoke_ok(name)
        self.assertEqual(body["token"], first["token"])
        self.assertTrue(wait_until(lambda: len(fork_templates(self.daemon)) == 0, 10))
        # The next new instance runs init itself (a fresh start) and brings
        # a new template...
        self.invoke_many(name, [{"hold": 1.0}] * 2)
        self.assertEqual(self.forked(name), 1)
        self.assertTrue(wait_until(lambda: len(fork_templates(self.daemon)) == 1, 10))
        self.assertNotIn(templates[0], fork_templates(self.daemon))
        # ...whose instances are forked again.
        self.wait_for_spares(name)
        bodies = [r.json() for r in self.invoke_many(name, [{"hold": 1.0}] * 3)]
        self.assertEqual(self.forked(name), 2, bodies)
        self.assertServes()

    def test_opt_out_tag_runs_init_every_time(self):
        name = "fork-off"
        self.create_function(name, {"app.py": SLOW_INIT}, Tags={"nimbus:fork": "off"})
        _, first = self.invoke_ok(name)
        time.sleep(1.5)  # what a template's init would take
        self.assertEqual(fork_templates(self.daemon, name), [])
        bodies = [r.json() for r in self.invoke_many(name, [{"hold": 1.5}] * 2)]
        self.assertEqual(self.forked(name), 0)
        self.assertEqual(len({b["token"] for b in bodies}), 2, bodies)
        self.assertIn(first["token"], {b["token"] for b in bodies})


class ForkKeepAliveTest(ForkTestCase):
    daemon_args = ("--keep-alive", "2")

    def test_template_goes_with_the_last_instance(self):
        name = "fork-idle"
        self.create_function(name, {"app.py": SLOW_INIT}, Tags={"nimbus:fork": "on"})
        self.invoke_ok(name)
        self.assertTrue(wait_until(lambda: len(fork_templates(self.daemon)) == 1, 10))
        # Keep-alive ends the only instance, and its template goes with it.
        self.assertTrue(wait_until(lambda: self.daemon.metric("nimbus_instances", function=name) == 0, 10))
        self.assertTrue(wait_until(lambda: not fork_templates(self.daemon), 5), fork_templates(self.daemon))
        # The next cold start runs init again, and the template comes back.
        _, body = self.invoke_ok(name)
        self.assertEqual(body["counter"], 1)
        self.assertTrue(wait_until(lambda: len(fork_templates(self.daemon)) == 1, 10))


if __name__ == "__main__":
    unittest.main()
