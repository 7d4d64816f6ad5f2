"""Faults stay inside the instance that made them: runtimes that break the
Runtime API protocol, never start, exit, leave processes behind or fill
/tmp. After each one the daemon still runs other functions."""

import os
import time
import unittest

from harness import (HOST_CURL, ExecutionTestCase, decode_log_result, host_processes_of_uid, provided_zip,
                     report_line, wait_until)

# Shell runtimes: POSIX sh + the host's curl (the sandbox sees the host /usr).
PRELUDE = r"""#!/bin/sh
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
next_event() {  # sets RID, writes the event to /tmp/event
  /usr/bin/curl -sS -D /tmp/headers -o /tmp/event "$API/invocation/next"
  RID=$(sed -n 's/^[Ll]ambda-[Rr]untime-[Aa]ws-[Rr]equest-[Ii]d: *\([^[:space:]]*\).*/\1/p' /tmp/headers)
}
post() {  # post ID BODY_FILE OUT_FILE -> prints the HTTP status
  /usr/bin/curl -sS -o "$3" -w '%{http_code}' -X POST "$API/invocation/$1/response" --data-binary "@$2"
}
"""

# Answers for a request id that is not the current one, then correctly.
WRONG_ID_BOOTSTRAP = PRELUDE + r"""
while true; do
  next_event
  echo '{"stolen": true}' > /tmp/wrong
  W=$(post 00000000-0000-0000-0000-000000000000 /tmp/wrong /tmp/wrong-answer)
  printf '{"event": %s, "wrong_status": %s, "wrong_answer": %s}' "$(cat /tmp/event)" "$W" "$(cat /tmp/wrong-answer)" > /tmp/right
  post "$RID" /tmp/right /dev/null > /dev/null
done
"""

# Answers every invocation twice; the next invocation reports what the second answer got.
TWICE_BOOTSTRAP = PRELUDE + r"""
echo '"none"' > /tmp/prev-status
echo '"none"' > /tmp/prev-answer
while true; do
  next_event
  printf '{"first": true, "event": %s, "prev_second_status": %s, "prev_second_answer": %s}' \
    "$(cat /tmp/event)" "$(cat /tmp/prev-status)" "$(cat /tmp/prev-answer)" > /tmp/first
  post "$RID" /tmp/first /dev/null > /dev/null
  echo '{"second": true}' > /tmp/second
  post "$RID" /tmp/second /tmp/prev-answer > /tmp/prev-status
done
"""

NEVER_READY_BOOTSTRAP = """#!/bin/sh
echo "never-ready uid=$(id -u)"
exec sleep 1000
"""

EXIT_AT_ONCE_BOOTSTRAP = """#!/bin/sh
echo "exiting at once"
exit 7
"""

INIT_ERROR_BOOTSTRAP = PRELUDE + r"""
/usr/bin/curl -sS -o /dev/null -X POST -H 'Lambda-Runtime-Function-Error-Type: Runtime.ConfigMissing' \
  "$API/init/error" -d '{"errorMessage": "no config found", "errorType": "Runtime.ConfigMissing"}'
exit 1
"""

LEAVES_CHILD_PY = """
import os
import subprocess
import time

def comm(pid):
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()

def handler(event, context):
    if event.get("exit"):
        os._exit(4)
    child = subprocess.Popen(["sleep", "1000"], start_new_session=True)  # outlives the handler
    deadline = time.monotonic() + 2
    while comm(child.pid) != "sleep" and time.monotonic() < deadline:
        time.sleep(0.01)  # Popen may return just before the kernel renames the exec'd child
    return {"uid": os.getuid(), "child_pid": child.pid, "child_comm": comm(child.pid)}
"""

FILL_TMP_PY = """
import errno
import os

def handler(event, context):
    written = 0
    chunk = b"\\0" * (1 << 20)
    try:
        with open("/tmp/fill", "wb") as f:
            while written < 2048 << 20:
                f.write(chunk)
                written += len(chunk)
                f.flush()
    except OSError as e:
        result = {"errno": errno.errorcode.get(e.errno), "error": str(e), "written": written}
    else:
        result = {"errno": None, "written": written}
    st = os.statvfs("/tmp")
    result["tmp_size"] = st.f_blocks * st.f_frsize
    os.unlink("/tmp/fill")
    with open("/tmp/after", "w") as f:  # space is back
        f.write("ok")
    return result
"""


class RuntimeFaultsTest(ExecutionTestCase):

    def setUp(self):
        if not os.access(HOST_CURL, os.X_OK):
            self.skipTest(f"{HOST_CURL} is not installed on the host, so the sandbox (which binds the host /usr) "
                          "has no curl for the shell runtimes")

    def create_shell(self, name, bootstrap, **kwargs):
        return self.create_function(name, zip_bytes=provided_zip(bootstrap), runtime="provided.al2023",
                                    handler="x.handler", **kwargs)

    def test_response_for_a_wrong_request_id_is_refused(self):
        self.create_shell("fault-wrong-id", WRONG_ID_BOOTSTRAP)
        for i in range(2):
            _, body = self.invoke_ok("fault-wrong-id", {"i": i})
            self.assertEqual(body["event"], {"i": i})
            self.assertEqual(body["wrong_status"], 400, body)
            self.assertEqual(body["wrong_answer"]["errorType"], "InvalidRequestID", body)
            self.assertNotIn("stolen", body)
        self.assertServes()

    def test_second_response_is_refused_and_the_first_wins(self):
        self.create_shell("fault-twice", TWICE_BOOTSTRAP)
        _, first = self.invoke_ok("fault-twice", {"n": 1})
        self.assertEqual(first, {"first": True, "event": {"n": 1}, "prev_second_status": "none",
                                 "prev_second_answer": "none"})
        _, second = self.invoke_ok("fault-twice", {"n": 2})
        self.assertEqual(second["event"], {"n": 2})
        self.assertEqual(second["prev_second_status"], 400, second)
        self.assertEqual(second["prev_second_answer"]["errorType"], "InvalidRequestID", second)
        self.assertEqual(self.daemon.metric("nimbus_cold_starts_total", function="fault-twice"), 1)
        self.assertServes()

    def test_runtime_that_never_asks_for_work_times_out_in_init(self):
        # Lambda gives init 10 s, then retries it inside the invoke under the
        # function's timeout; the caller sees the task timeout.
        self.create_shell("fault-never-ready", NEVER_READY_BOOTSTRAP, Timeout=1)
        started = time.monotonic()
        r = self.invoke("fault-never-ready", headers={"X-Amz-Log-Type": "Tail"})
        elapsed = time.monotonic() - started
        request_id = r.header("x-amzn-RequestId")
        body = self.assertUnhandled(r, "Sandbox.Timedout")
        self.assertEqual(body["errorMessage"], f"RequestId: {request_id} Error: Task timed out after 1.00 seconds")
        self.assertLessEqual(elapsed, 13.0)
        self.assertGreaterEqual(elapsed, 10.0)
        log = decode_log_result(r.header("X-Amz-Log-Result"))
        self.assertIn("Status: timeout", report_line(log, request_id))
        self.assertIn("never-ready uid=", log)
        uid = int(log.split("never-ready uid=")[1].split()[0])
        self.assertNotEqual(uid, 0)
        # The stuck instance is gone, all its processes with it.
        self.assertTrue(wait_until(lambda: not host_processes_of_uid(uid), 2.0), host_processes_of_uid(uid))
        self.assertEqual(self.daemon.metric("nimbus_instances", function="fault-never-ready"), 0)
        self.assertServes()

    def test_runtime_that_exits_at_once(self):
        self.create_shell("fault-exit", EXIT_AT_ONCE_BOOTSTRAP)
        r = self.invoke("fault-exit", headers={"X-Amz-Log-Type": "Tail"})
        request_id = r.header("x-amzn-RequestId")
        log = decode_log_result(r.header("X-Amz-Log-Result"))
        self.assertIn("exiting at once", log)
        self.assertIn("Status: error\tError Type: Runtime.ExitError", report_line(log, request_id))
        with self.subTest("error body as for an exit during an invocation"):
            self.assertUnhandled(r, "Runtime.ExitError",
                                 f"RequestId: {request_id} Error: Runtime exited with error: exit status 7")
        with self.subTest("counted as a runtime exit"):
            self.assertEqual(self.daemon.metric("nimbus_runtime_exits_total", function="fault-exit"), 1)
        self.assertServes()

    def test_init_error_is_the_invoke_result(self):
        self.create_shell("fault-init-error", INIT_ERROR_BOOTSTRAP)
        r = self.invoke("fault-init-error", headers={"X-Amz-Log-Type": "Tail"})
        self.assertUnhandled(r, "Runtime.ConfigMissing", "no config found")
        report = report_line(decode_log_result(r.header("X-Amz-Log-Result")), r.header("x-amzn-RequestId"))
        self.assertIn("Status: error\tError Type: Runtime.ConfigMissing", report)
        self.assertServes()

    def test_background_child_dies_with_its_instance(self):
        self.create_function("fault-child", {"app.py": LEAVES_CHILD_PY})
        _, body = self.invoke_ok("fault-child")
        uid = body["uid"]
        procs = host_processes_of_uid(uid)
        self.assertIn("sleep", [comm for _, comm in procs], f"the background child is not running: {procs}")

        r = self.invoke("fault-child", {"exit": True})
        self.assertUnhandled(r, "Runtime.ExitError",
                             f"RequestId: {r.header('x-amzn-RequestId')} Error: Runtime exited with error: exit status 4")
        self.assertTrue(wait_until(lambda: not host_processes_of_uid(uid), 2.0),
                        f"processes of uid {uid} outlived their instance: {host_processes_of_uid(uid)}")
        self.assertServes()

    def test_filling_tmp_hits_its_size_limit(self):
        # /tmp lives in memory and counts against MemorySize: give room for 512 MB of it.
        self.create_function("fault-fill-tmp", {"app.py": FILL_TMP_PY}, MemorySize=1024,
                             EphemeralStorage={"Size": 512}, Timeout=30)
        _, body = self.invoke_ok("fault-fill-tmp")
        self.assertEqual(body["errno"], "ENOSPC", body)
        self.assertEqual(body["tmp_size"], 512 << 20, body)
        self.assertGreaterEqual(body["written"], 500 << 20, body)
        self.assertLessEqual(body["written"], 512 << 20, body)
        # The instance is fine afterwards, and so is the daemon.
        _, again = self.invoke_ok("fault-fill-tmp")
        self.assertEqual(again["errno"], "ENOSPC")
        self.assertEqual(self.daemon.metric("nimbus_cold_starts_total", function="fault-fill-tmp"), 1)
        self.assertServes()


if __name__ == "__main__":
    unittest.main()
