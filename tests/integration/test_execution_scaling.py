"""Scaling and limits: one instance per concurrent invocation, reserved
concurrency (429 with Lambda's Reason), the keep-alive that stops idle
instances, and the adaptive keep-alive that shortens it and pre-warms."""

import concurrent.futures
import json
import threading
import time
import unittest

import botocore.exceptions

from harness import ExecutionTestCase, decode_log_result, host_processes_of_uid, report_line, wait_until

SLEEP_1S_PY = """
import os
import time
import uuid

BOOT_ID = str(uuid.uuid4())

def handler(event, context):
    time.sleep(event.get("sleep", 1))
    return {"boot_id": BOOT_ID, "uid": os.getuid(), "i": event.get("i")}
"""


class ScalingTest(ExecutionTestCase):

    def no_retry_client(self):
        # total_max_attempts 1: a 429 is reported at once, never retried by botocore.
        client = self.daemon.boto3_client(retries={"total_max_attempts": 1}, max_pool_connections=16)
        self.addCleanup(client.close)
        return client

    def invoke_concurrently(self, client, name, count, payload_of=lambda i: {"i": i, "sleep": 1}):
        """`count` boto3 invokes released together; returns [(result dict | ClientError)] in order."""
        barrier = threading.Barrier(count)

        def one(i):
            barrier.wait(timeout=10)
            try:
                out = client.invoke(FunctionName=name, Payload=json.dumps(payload_of(i)).encode())
                return {"status": out["StatusCode"], "error": out.get("FunctionError"),
                        "body": json.loads(out["Payload"].read())}
            except botocore.exceptions.ClientError as e:
                return e

        with concurrent.futures.ThreadPoolExecutor(count) as pool:
            return list(pool.map(one, range(count)))

    def test_concurrent_invokes_run_in_parallel_instances(self):
        self.create_function("par", {"app.py": SLEEP_1S_PY}, Timeout=10)
        client = self.no_retry_client()
        started = time.monotonic()
        results = self.invoke_concurrently(client, "par", 4)
        wall = time.monotonic() - started
        for i, res in enumerate(results):
            self.assertIsInstance(res, dict, res)
            self.assertEqual((res["status"], res["error"], res["body"]["i"]), (200, None, i), res)
        self.assertLess(wall, 3.5, f"4 invocations of 1 s took {wall:.2f} s: not run in parallel")
        self.assertEqual(len({res["body"]["boot_id"] for res in results}), 4, "expected 4 distinct instances")
        self.assertEqual(len({res["body"]["uid"] for res in results}), 4, "instances must not share a uid")
        self.assertEqual(self.daemon.metric("nimbus_cold_starts_total", function="par"), 4)
        self.assertEqual(self.daemon.metric("nimbus_instances", function="par"), 4)
        self.assertEqual(self.daemon.metric("nimbus_invocations_total", function="par"), 4)

        # All 4 are warm now: 4 more concurrent invokes start no new instance.
        results = self.invoke_concurrently(client, "par", 4, lambda i: {"i": i, "sleep": 0.3})
        self.assertTrue(all(isinstance(res, dict) and res["error"] is None for res in results), results)
        self.assertEqual(self.daemon.metric("nimbus_cold_starts_total", function="par"), 4)

    def test_reserved_concurrency_throttles_beyond_the_limit(self):
        self.create_function("reserved", {"app.py": SLEEP_1S_PY}, Timeout=10)
        out = self.client.put_function_concurrency(FunctionName="reserved", ReservedConcurrentExecutions=2)
        self.assertEqual(out["ReservedConcurrentExecutions"], 2)
        client = self.no_retry_client()
        throttles_before = self.daemon.metric("nimbus_throttles_total", function="reserved")

        results = self.invoke_concurrently(client, "reserved", 4)
        ok = [res for res in results if isinstance(res, dict)]
        throttled = [res for res in results if isinstance(res, botocore.exceptions.ClientError)]
        self.assertEqual(len(ok), 2, results)
        self.assertEqual(len(throttled), 2, results)
        for res in ok:
            self.assertEqual((res["status"], res["error"]), (200, None), res)
        for err in throttled:
            resp = err.response
            self.assertEqual(resp["ResponseMetadata"]["HTTPStatusCode"], 429, resp)
            self.assertEqual(resp["Error"]["Code"], "TooManyRequestsException", resp)
            self.assertEqual(resp["Reason"], "ReservedFunctionConcurrentInvocationLimitExceeded", resp)
            self.assertEqual(resp["Type"], "User", resp)
            self.assertEqual(resp["ResponseMetadata"]["RetryAttempts"], 0, resp)
        self.assertEqual(self.daemon.metric("nimbus_throttles_total", function="reserved") - throttles_before, 2)
        self.assertLessEqual(self.daemon.metric("nimbus_instances", function="reserved"), 2)

    def test_reserved_zero_blocks_every_invoke(self):
        self.create_function("blocked", {"app.py": SLEEP_1S_PY})
        self.invoke_ok("blocked", {"sleep": 0})  # a warm instance exists and is idle
        self.client.put_function_concurrency(FunctionName="blocked", ReservedConcurrentExecutions=0)
        invocations = self.daemon.metric("nimbus_invocations_total", function="blocked")
        for _ in range(3):
            r = self.invoke("blocked", {"sleep": 0})
            body = self.assertInvokeError(r, 429, "TooManyRequestsException", "Rate Exceeded.")
            self.assertEqual(body["Reason"], "ReservedFunctionConcurrentInvocationLimitExceeded", r)
        self.assertEqual(self.daemon.metric("nimbus_invocations_total", function="blocked"), invocations)
        # Other functions are not affected.
        self.assertServes()

    def test_function_concurrency_round_trip(self):
        self.create_function("conc-rt", {"app.py": SLEEP_1S_PY})
        self.assertNotIn("ReservedConcurrentExecutions", self.client.get_function_concurrency(FunctionName="conc-rt"))
        self.client.put_function_concurrency(FunctionName="conc-rt", ReservedConcurrentExecutions=0)
        self.assertEqual(self.client.get_function_concurrency(FunctionName="conc-rt")["ReservedConcurrentExecutions"], 0)
        self.assertEqual(self.invoke("conc-rt", {"sleep": 0}).status, 429)
        self.assertEqual(self.client.get_function(FunctionName="conc-rt")["Concurrency"],
                         {"ReservedConcurrentExecutions": 0})

        out = self.client.delete_function_concurrency(FunctionName="conc-rt")
        self.assertEqual(out["ResponseMetadata"]["HTTPStatusCode"], 204)
        self.assertNotIn("ReservedConcurrentExecutions", self.client.get_function_concurrency(FunctionName="conc-rt"))
        self.invoke_ok("conc-rt", {"sleep": 0})

        # The aws CLI sees the same.
        out = self.daemon.aws_json("lambda", "put-function-concurrency", "--function-name", "conc-rt",
                                   "--reserved-concurrent-executions", "3")
        self.assertEqual(out, {"ReservedConcurrentExecutions": 3})
        self.assertEqual(self.daemon.aws_json("lambda", "get-function-concurrency", "--function-name", "conc-rt"),
                         {"ReservedConcurrentExecutions": 3})
        self.assertIsNone(self.daemon.aws_json("lambda", "delete-function-concurrency", "--function-name", "conc-rt"))
        self.assertIn(self.daemon.aws_json("lambda", "get-function-concurrency", "--function-name", "conc-rt"),
                      (None, {}))


class KeepAliveTest(ExecutionTestCase):
    daemon_args = ("--keep-alive", "1")

    def test_idle_instance_stops_after_keep_alive(self):
        self.create_function("ka", {"app.py": SLEEP_1S_PY})
        r, first = self.invoke_ok("ka", {"sleep": 0}, headers={"X-Amz-Log-Type": "Tail"})
        self.assertIn("Init Duration", report_line(decode_log_result(r.header("X-Amz-Log-Result")),
                                                   r.header("x-amzn-RequestId")))
        self.assertEqual(self.daemon.metric("nimbus_instances", function="ka"), 1)

        gone = wait_until(lambda: self.daemon.metric("nimbus_instances", function="ka") == 0, timeout=4.0)
        self.assertTrue(gone, "the idle instance was not stopped within 4 s with --keep-alive 1")
        # Its uid is free again: no host process runs as it.
        self.assertEqual(wait_until(lambda: not host_processes_of_uid(first["uid"]), 2.0), True,
                         host_processes_of_uid(first["uid"]))

        r, second = self.invoke_ok("ka", {"sleep": 0}, headers={"X-Amz-Log-Type": "Tail"})
        report = report_line(decode_log_result(r.header("X-Amz-Log-Result")), r.header("x-amzn-RequestId"))
        self.assertIn("Init Duration", report, "the invoke after keep-alive expiry was not a cold start")
        self.assertNotEqual(first["boot_id"], second["boot_id"])
        self.assertEqual(self.daemon.metric("nimbus_cold_starts_total", function="ka"), 2)

    def test_busy_instance_is_not_stopped(self):
        # An invocation longer than the keep-alive is not cut short, and the
        # instance is warm right after it.
        self.create_function("ka-busy", {"app.py": SLEEP_1S_PY}, Timeout=10)
        _, first = self.invoke_ok("ka-busy", {"sleep": 2.5})
        _, second = self.invoke_ok("ka-busy", {"sleep": 0})
        self.assertEqual(first["boot_id"], second["boot_id"])
        self.assertEqual(self.daemon.metric("nimbus_cold_starts_total", function="ka-busy"), 1)


class AdaptiveKeepAliveTest(ExecutionTestCase):
    """The adaptive keep-alive (docs/scaling.md) on a compressed time scale:
    windows between --keep-alive-min 0.3 s and --keep-alive 5 s."""
    daemon_args = ("--keep-alive", "5", "--keep-alive-min", "0.3")

    def invoke_with_gaps(self, name, count, gap_s):
        for _ in range(count):
            self.invoke_ok(name, {"sleep": 0})
            time.sleep(gap_s)

    def test_short_steady_gaps_shrink_the_window(self):
        self.create_function("ka-steady", {"app.py": SLEEP_1S_PY})
        self.invoke_with_gaps("ka-steady", 10, 0.05)
        window = self.daemon.metric("nimbus_keep_alive_ms", function="ka-steady")
        self.assertGreaterEqual(window, 300)
        self.assertLess(window, 1000)
        # With the fixed window it would stay 5 s.
        gone = wait_until(lambda: self.daemon.metric("nimbus_instances", function="ka-steady") == 0, timeout=2.5)
        self.assertTrue(gone, "the idle instance outlived the adapted window")

    def test_predictable_gaps_release_the_instance_and_prewarm_one(self):
        self.create_function("ka-cron", {"app.py": SLEEP_1S_PY})
        self.invoke_with_gaps("ka-cron", 10, 0.8)
        _, before = self.invoke_ok("ka-cron", {"sleep": 0})
        prewarms = self.daemon.metric("nimbus_prewarms_total", function="ka-cron")
        inits = self.daemon.metric("nimbus_init_duration_ms_count", function="ka-cron")
        self.assertGreaterEqual(prewarms, 1, "no pre-warm during the regular gaps")
        # Right after the invocation the instance is released, then one is
        # started ahead of the next expected arrival.
        self.assertTrue(wait_until(lambda: self.daemon.metric("nimbus_instances", function="ka-cron") == 0, 1.0),
                        "the idle instance was kept through a predicted gap")
        self.assertTrue(wait_until(lambda: self.daemon.metric("nimbus_prewarms_total", function="ka-cron") > prewarms,
                                   2.0), "no instance was pre-warmed")
        self.assertTrue(wait_until(lambda: self.daemon.metric("nimbus_instances", function="ka-cron") == 1, 2.0))
        # It has finished its init before the next arrival.
        self.assertTrue(wait_until(
            lambda: self.daemon.metric("nimbus_init_duration_ms_count", function="ka-cron") > inits, 5.0))
        r, after = self.invoke_ok("ka-cron", {"sleep": 0}, headers={"X-Amz-Log-Type": "Tail"})
        report = report_line(decode_log_result(r.header("X-Amz-Log-Result")), r.header("x-amzn-RequestId"))
        self.assertNotIn("Init Duration", report, "the invoke after the pre-warm was a cold start")
        self.assertNotEqual(before["boot_id"], after["boot_id"])


if __name__ == "__main__":
    unittest.main()
