"""Asynchronous invocation (InvocationType Event): durable 202, retries with
Lambda's attempt count, destinations, dead-letter config, event invoke
configs, `nimbus events`, and a SIGKILL durability test.

The daemon runs with the test-only `--events-time-scale 1000`, so Lambda's
1- and 2-minute retry delays pass in 60 and 120 ms.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

import botocore.exceptions

from harness import (ACCOUNT_ID, REGION, UUID_RE, Daemon, ExecutionTestCase, function_arn, make_zip,
                     running_daemon, wait_until)

SCALE = "1000"

# Prints the event on one line so the test can read what it received.
RECORDER_PY = (
    "import json\n"
    "def handler(event, context):\n"
    "    print('RECORD ' + json.dumps(event))\n"
    "    return {'recorded': True}\n"
)
FAILING_PY = (
    "def handler(event, context):\n"
    "    print('ATTEMPT ' + context.aws_request_id)\n"
    "    raise RuntimeError('always fails')\n"
)
OK_PY = (
    "import json\n"
    "def handler(event, context):\n"
    "    print('GOT ' + json.dumps(event))\n"
    "    return {'doubled': event.get('n', 0) * 2}\n"
)
MODE_PY = (
    "import os\n"
    "def handler(event, context):\n"
    "    if os.environ.get('MODE') != 'ok':\n"
    "        raise ValueError('mode is not ok')\n"
    "    print('SUCCEEDED ' + event['m'])\n"
    "    return 'fine'\n"
)


def sqs_arn(name):
    return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"


class AsyncTestCase(ExecutionTestCase):
    daemon_args = ("--events-time-scale", SCALE)

    def log_lines(self, function):
        r = self.daemon.request("GET", f"/nimbus/v1/functions/{urllib.parse.quote(function)}/logs",
                                query={"limit": "10000"})
        self.assertEqual(r.status, 200, r)
        return [line["text"] for line in r.json()["lines"]]

    def records(self, function):
        return [json.loads(t[len("RECORD "):]) for t in self.log_lines(function) if t.startswith("RECORD ")]

    def wait_records(self, function, count=1, timeout=30):
        self.assertTrue(wait_until(lambda: len(self.records(function)) >= count, timeout),
                        f"{function} received {len(self.records(function))} records, want {count}")
        return self.records(function)

    def function_with_sink(self, name, code, sink, on, **config):
        """Creates `name` and a recorder `sink`, and makes `sink` its `on` (OnSuccess|OnFailure) destination."""
        self.create_function(name, {"app.py": code})
        self.create_function(sink, {"app.py": RECORDER_PY})
        self.client.put_function_event_invoke_config(
            FunctionName=name, DestinationConfig={on: {"Destination": function_arn(sink)}}, **config)

    def invoke_event(self, name, payload, qualifier=None):
        r = self.daemon.invoke(name, payload, headers={"X-Amz-Invocation-Type": "Event"}, qualifier=qualifier)
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.body, b"", r)
        request_id = r.header("x-amzn-RequestId")
        self.assertRegex(request_id or "", UUID_RE, r)
        return request_id

    def event(self, request_id):
        r = self.daemon.request("GET", f"/nimbus/v1/events/{request_id}")
        self.assertEqual(r.status, 200, r)
        return r.json()

    def wait_state(self, request_id, state, timeout=30):
        ok = wait_until(lambda: self.event(request_id)["State"] == state, timeout)
        self.assertTrue(ok, f"{request_id} is {self.event(request_id)}, want {state}")
        return self.event(request_id)


class AsyncInvokeTest(AsyncTestCase):

    def test_aws_cli_event_invoke_answers_202_and_the_function_runs(self):
        self.create_function("async-ok", {"app.py": OK_PY})
        out = os.path.join(self.workdir, "out.json")
        result = self.daemon.aws_json("lambda", "invoke", "--function-name", "async-ok", "--invocation-type", "Event",
                                      "--cli-binary-format", "raw-in-base64-out", "--payload", '{"n": 21}', out)
        self.assertEqual(result["StatusCode"], 202)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), b"")
        self.assertTrue(wait_until(lambda: 'GOT {"n": 21}' in self.log_lines("async-ok"), 30),
                        self.log_lines("async-ok"))
        listed = self.daemon.request("GET", "/nimbus/v1/events", query={"function": "async-ok"}).json()
        self.assertEqual(len(listed["Invocations"]), 1, listed)
        done = self.wait_state(listed["Invocations"][0]["Id"], "succeeded")
        self.assertEqual(done["Attempts"], 1)
        self.assertEqual(json.loads(done["LastResponse"]["payload"]), {"doubled": 42})

    def test_function_error_is_retried_twice_then_the_failure_destination_gets_the_record(self):
        self.function_with_sink("async-fails", FAILING_PY, "async-fail-sink", "OnFailure")
        reply = self.client.invoke(FunctionName="async-fails", InvocationType="Event", Payload=b'{"order": 7}')
        self.assertEqual(reply["StatusCode"], 202)
        request_id = reply["ResponseMetadata"]["RequestId"]
        record = self.wait_records("async-fail-sink")[0]
        self.assertEqual(record["version"], "1.0")
        self.assertRegex(record["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        ctx = record["requestContext"]
        self.assertEqual(ctx["requestId"], request_id)
        self.assertEqual(ctx["functionArn"], function_arn("async-fails") + ":$LATEST")
        self.assertEqual(ctx["condition"], "RetriesExhausted")
        self.assertEqual(ctx["approximateInvokeCount"], 3)
        self.assertEqual(record["requestPayload"], {"order": 7})
        self.assertEqual(record["responseContext"],
                         {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"})
        self.assertEqual(record["responsePayload"]["errorType"], "RuntimeError")
        self.assertEqual(record["responsePayload"]["errorMessage"], "always fails")
        # Exactly three executions: the first and two retries.
        attempts = [t for t in self.log_lines("async-fails") if t.startswith("ATTEMPT ")]
        self.assertEqual(len(attempts), 3, attempts)
        failed = self.wait_state(request_id, "failed")
        self.assertEqual(failed["Condition"], "RetriesExhausted")
        self.assertEqual(failed["Attempts"], 3)
        self.assertIn("RuntimeError: always fails", failed["LastError"])
        # The retries waited ~1 and ~2 minutes of event time (60 and 120 ms here).
        self.assertGreaterEqual(failed["UpdatedMs"] - failed["CreatedMs"], 180)
        self.assertEqual(failed["Deliveries"][0]["type"], "OnFailure")
        self.assertEqual(failed["Deliveries"][0]["state"], "queued")

    def test_success_destination_gets_the_result(self):
        self.function_with_sink("async-succeeds", OK_PY, "async-ok-sink", "OnSuccess")
        request_id = self.invoke_event("async-succeeds", {"n": 4})
        record = self.wait_records("async-ok-sink")[0]
        self.assertEqual(record["requestContext"]["condition"], "Success")
        self.assertEqual(record["requestContext"]["requestId"], request_id)
        self.assertEqual(record["requestContext"]["approximateInvokeCount"], 1)
        self.assertEqual(record["requestPayload"], {"n": 4})
        self.assertEqual(record["responseContext"], {"statusCode": 200, "executedVersion": "$LATEST"})
        self.assertEqual(record["responsePayload"], {"doubled": 8})

    def test_maximum_retry_attempts_zero_runs_once(self):
        self.function_with_sink("async-once", FAILING_PY, "async-once-sink", "OnFailure", MaximumRetryAttempts=0)
        request_id = self.invoke_event("async-once", {"x": 1})
        record = self.wait_records("async-once-sink")[0]
        self.assertEqual(record["requestContext"]["approximateInvokeCount"], 1)
        self.assertEqual(record["requestContext"]["condition"], "RetriesExhausted")
        self.assertEqual(self.wait_state(request_id, "failed")["Attempts"], 1)
        time.sleep(0.5)  # 500 s of event time: no late retry
        attempts = [t for t in self.log_lines("async-once") if t.startswith("ATTEMPT ")]
        self.assertEqual(len(attempts), 1, attempts)

    def test_throttled_event_ages_out_to_the_failure_destination(self):
        self.function_with_sink("async-throttled", FAILING_PY, "async-age-sink", "OnFailure",
                                MaximumEventAgeInSeconds=600)
        self.client.put_function_concurrency(FunctionName="async-throttled", ReservedConcurrentExecutions=0)
        request_id = self.invoke_event("async-throttled", {"late": True})
        record = self.wait_records("async-age-sink")[0]
        self.assertEqual(record["requestContext"]["condition"], "EventAgeExceeded")
        self.assertEqual(record["requestContext"]["requestId"], request_id)
        self.assertEqual(record["responseContext"]["statusCode"], 429)
        # Backoff 1, 2, 4, ... 256 s of event time (0.6 s real here), then the next retry would pass 600 s.
        self.assertGreaterEqual(record["requestContext"]["approximateInvokeCount"], 3)
        self.assertLessEqual(record["requestContext"]["approximateInvokeCount"], 11)
        failed = self.wait_state(request_id, "failed")
        self.assertEqual(failed["Condition"], "EventAgeExceeded")
        self.assertIn("EventAgeExceeded", failed["LastError"])
        # The function never ran.
        self.assertEqual([t for t in self.log_lines("async-throttled") if t.startswith("ATTEMPT ")], [])

    def test_payload_limit_is_256_kb(self):
        self.create_function("async-big", {"app.py": OK_PY})
        limit = 262144
        exact = b'"' + b"a" * (limit - 2) + b'"'
        self.invoke_event("async-big", exact)
        over = b'"' + b"a" * (limit - 1) + b'"'
        r = self.daemon.invoke("async-big", over, headers={"X-Amz-Invocation-Type": "Event"})
        self.assertInvokeError(r, 413, "RequestEntityTooLargeException",
                               f"{limit + 1} byte payload is too large for the Event invocation type "
                               f"(limit {limit} bytes)")
        # boto3 raises the same error type.
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            self.client.invoke(FunctionName="async-big", InvocationType="Event", Payload=over)
        self.assertEqual(caught.exception.response["Error"]["Code"], "RequestEntityTooLargeException")

    def test_unknown_function_and_bad_json_are_refused(self):
        r = self.daemon.invoke("async-nobody", b"{}", headers={"X-Amz-Invocation-Type": "Event"})
        self.assertInvokeError(r, 404, "ResourceNotFoundException",
                               f"Function not found: {function_arn('async-nobody')}:$LATEST", message_key="Message")
        self.create_function("async-json", {"app.py": OK_PY})
        r = self.daemon.invoke("async-json", b"{nope", headers={"X-Amz-Invocation-Type": "Event"})
        self.assertInvokeError(r, 400, "InvalidRequestContentException")
        listed = self.daemon.request("GET", "/nimbus/v1/events", query={"function": "async-json"}).json()
        self.assertEqual(listed["Invocations"], [])

    def test_dead_letter_config_is_validated_and_queue_targets_are_delivered(self):
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            self.create_function("async-dlq-sns", {"app.py": FAILING_PY},
                                 DeadLetterConfig={"TargetArn": f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:topic"})
        self.assertEqual(caught.exception.response["Error"]["Code"], "InvalidParameterValueException")
        self.assertIn("SQS queue ARN", caught.exception.response["Error"]["Message"])
        r = self.daemon.request("POST", "/2015-03-31/functions", body=json.dumps({
            "FunctionName": "async-dlq-bad", "Runtime": "python3.12", "Role": "arn:aws:iam::000000000000:role/x",
            "Handler": "app.handler", "Code": {"ZipFile": ""}, "DeadLetterConfig": {"TargetArn": "not an arn"}}))
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.header("x-amzn-ErrorType"), "ValidationException", r)
        self.assertNoFunction("async-dlq-bad")

        dlq = sqs_arn("async-dlq")
        created = self.create_function("async-dlq", {"app.py": FAILING_PY}, DeadLetterConfig={"TargetArn": dlq})
        self.assertEqual(created["DeadLetterConfig"], {"TargetArn": dlq})
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            self.client.update_function_configuration(
                FunctionName="async-dlq", DeadLetterConfig={"TargetArn": f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:t"})
        self.assertEqual(caught.exception.response["Error"]["Code"], "InvalidParameterValueException")
        self.client.put_function_event_invoke_config(FunctionName="async-dlq", MaximumRetryAttempts=0,
                                                     DestinationConfig={"OnFailure": {"Destination": sqs_arn("q")}})
        # The queues do not exist yet: both deliveries fail, naming the queue.
        request_id = self.invoke_event("async-dlq", {"to": "dlq"})
        failed = self.wait_state(request_id, "failed")
        deliveries = {d["type"]: d for d in failed["Deliveries"]}
        self.assertEqual(set(deliveries), {"OnFailure", "DeadLetter"}, failed)
        for d in deliveries.values():
            self.assertEqual(d["state"], "failed")
            self.assertIn("does not exist", d["reason"])
        self.assertEqual(deliveries["DeadLetter"]["target"], dlq)
        # With the queues there, the record and the original event arrive.
        sqs = self.daemon.boto3_client("sqs")
        dlq_url = sqs.create_queue(QueueName="async-dlq")["QueueUrl"]
        dest_url = sqs.create_queue(QueueName="q")["QueueUrl"]
        request_id = self.invoke_event("async-dlq", {"to": "dlq", "n": 2})
        failed = self.wait_state(request_id, "failed")
        self.assertEqual({d["type"]: d["state"] for d in failed["Deliveries"]},
                         {"OnFailure": "delivered", "DeadLetter": "delivered"}, failed)
        [dead] = sqs.receive_message(QueueUrl=dlq_url, MessageAttributeNames=["All"])["Messages"]
        self.assertEqual(json.loads(dead["Body"]), {"to": "dlq", "n": 2})
        self.assertEqual(dead["MessageAttributes"]["RequestID"]["StringValue"], request_id)
        [record] = sqs.receive_message(QueueUrl=dest_url)["Messages"]
        self.assertEqual(json.loads(record["Body"])["requestContext"]["condition"], "RetriesExhausted")

    def test_redrive_from_the_cli(self):
        self.create_function("async-redrive", {"app.py": MODE_PY}, Environment={"Variables": {"MODE": "fail"}})
        self.client.put_function_event_invoke_config(FunctionName="async-redrive", MaximumRetryAttempts=0)
        request_id = self.invoke_event("async-redrive", {"m": "again"})
        self.wait_state(request_id, "failed")

        rc, out, err = self.daemon.cli("events", "ls", "--function", "async-redrive", "--state", "failed")
        self.assertEqual(rc, 0, err)
        self.assertIn(request_id, out)
        self.assertIn("ValueError: mode is not ok", out)
        rc, out, err = self.daemon.cli("events", "show", request_id)
        self.assertEqual(rc, 0, err)
        self.assertIn("state:         failed", out)
        self.assertIn("condition:     RetriesExhausted", out)
        self.assertIn('payload:       {"m": "again"}', out)

        # Redriving a non-failed invocation is refused with a readable message.
        self.client.update_function_configuration(FunctionName="async-redrive",
                                                  Environment={"Variables": {"MODE": "ok"}})
        rc, out, err = self.daemon.cli("events", "redrive", request_id)
        self.assertEqual(rc, 0, err)
        self.assertIn("pending again", out)
        done = self.wait_state(request_id, "succeeded")
        self.assertEqual(done["Attempts"], 2)
        self.assertEqual(done["Redrives"], 1)
        self.assertIn("SUCCEEDED again", self.log_lines("async-redrive"))
        rc, out, err = self.daemon.cli("events", "redrive", request_id)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("Only failed invocations can be redriven", err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        rc, out, err = self.daemon.cli("events", "show", "no-such-id")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("not found", err)

    def test_events_api_rejects_a_bad_state(self):
        r = self.daemon.request("GET", "/nimbus/v1/events", query={"state": "done"})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.header("x-amzn-ErrorType"), "ValidationException", r)
        r = self.daemon.request("GET", "/nimbus/v1/events", sign=False)
        self.assertEqual(r.status, 403, r)

    def test_metrics_count_async_work(self):
        self.create_function("async-metrics", {"app.py": OK_PY})
        before = self.daemon.metric("nimbus_async_enqueued_total")
        done_before = self.daemon.metric("nimbus_async_succeeded_total")
        request_id = self.invoke_event("async-metrics", {"n": 1})
        self.wait_state(request_id, "succeeded")
        self.assertEqual(self.daemon.metric("nimbus_async_enqueued_total"), before + 1)
        self.assertTrue(wait_until(lambda: self.daemon.metric("nimbus_async_succeeded_total") >= done_before + 1, 10))
        self.assertIn(("nimbus_async_queue_depth", ()), self.daemon.metrics())


class AsyncRetentionTest(AsyncTestCase):
    # Event time: succeeded rows kept 10 minutes (0.6 s here), failed ones 2 hours (7.2 s).
    daemon_args = ("--events-time-scale", SCALE, "--events-keep-succeeded", "600", "--events-keep-failed", "7200")

    def gone(self, request_id):
        return self.daemon.request("GET", f"/nimbus/v1/events/{request_id}").status == 404

    def test_ended_invocations_are_deleted_after_their_keep_time(self):
        self.create_function("async-kept", {"app.py": MODE_PY}, Environment={"Variables": {"MODE": "fail"}})
        self.client.put_function_event_invoke_config(FunctionName="async-kept", MaximumRetryAttempts=0)
        failed = self.invoke_event("async-kept", {"m": "fails"})
        self.wait_state(failed, "failed")
        self.client.update_function_configuration(FunctionName="async-kept",
                                                  Environment={"Variables": {"MODE": "ok"}})
        succeeded = self.invoke_event("async-kept", {"m": "works"})
        self.wait_state(succeeded, "succeeded")
        pruned_before = self.daemon.metric("nimbus_async_pruned_total")

        self.assertTrue(wait_until(lambda: self.gone(succeeded), 15), f"{succeeded} was not deleted")
        # The failed one ended earlier but is kept longer: still there, still redrivable.
        self.assertEqual(self.event(failed)["State"], "failed")
        self.assertGreaterEqual(self.daemon.metric("nimbus_async_pruned_total"), pruned_before + 1)
        rc, out, err = self.daemon.cli("events", "show", succeeded)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("not found", err)

        self.assertTrue(wait_until(lambda: self.gone(failed), 30), f"{failed} was not deleted")


class EventInvokeConfigTest(AsyncTestCase):

    def test_crud_with_boto3(self):
        self.create_function("eic", {"app.py": OK_PY})
        self.create_function("eic-target", {"app.py": RECORDER_PY})
        target = function_arn("eic-target")
        put = self.client.put_function_event_invoke_config(FunctionName="eic", MaximumRetryAttempts=1,
                                                          DestinationConfig={"OnSuccess": {"Destination": target}})
        self.assertEqual(put["FunctionArn"], function_arn("eic") + ":$LATEST")
        self.assertEqual(put["MaximumRetryAttempts"], 1)
        self.assertNotIn("MaximumEventAgeInSeconds", put)
        self.assertEqual(put["DestinationConfig"], {"OnSuccess": {"Destination": target}, "OnFailure": {}})
        self.assertIsNotNone(put["LastModified"])
        got = self.client.get_function_event_invoke_config(FunctionName="eic")
        self.assertEqual(got["MaximumRetryAttempts"], 1)
        # Update merges; Put replaces.
        updated = self.client.update_function_event_invoke_config(FunctionName="eic", MaximumEventAgeInSeconds=600)
        self.assertEqual(updated["MaximumRetryAttempts"], 1)
        self.assertEqual(updated["MaximumEventAgeInSeconds"], 600)
        self.assertEqual(updated["DestinationConfig"]["OnSuccess"], {"Destination": target})
        replaced = self.client.put_function_event_invoke_config(FunctionName="eic", MaximumEventAgeInSeconds=120)
        self.assertNotIn("MaximumRetryAttempts", replaced)
        self.assertEqual(replaced["DestinationConfig"], {"OnSuccess": {}, "OnFailure": {}})
        # Per qualifier.
        self.client.publish_version(FunctionName="eic")
        self.client.put_function_event_invoke_config(FunctionName="eic", Qualifier="1", MaximumRetryAttempts=0)
        listed = self.client.list_function_event_invoke_configs(FunctionName="eic")["FunctionEventInvokeConfigs"]
        self.assertEqual(sorted(c["FunctionArn"] for c in listed),
                         sorted([function_arn("eic") + ":$LATEST", function_arn("eic") + ":1"]))
        self.client.delete_function_event_invoke_config(FunctionName="eic", Qualifier="1")
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            self.client.get_function_event_invoke_config(FunctionName="eic", Qualifier="1")
        self.assertEqual(caught.exception.response["Error"]["Code"], "ResourceNotFoundException")
        self.assertEqual(caught.exception.response["Error"]["Message"],
                         f"The function {function_arn('eic')}:1 doesn't have an EventInvokeConfig")
        # Deleting the function takes its configs along.
        self.client.delete_function(FunctionName="eic")
        self.create_function("eic", {"app.py": OK_PY})
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            self.client.get_function_event_invoke_config(FunctionName="eic")
        self.assertEqual(caught.exception.response["Error"]["Code"], "ResourceNotFoundException")

    def test_aws_cli_put_and_get(self):
        self.create_function("eic-cli", {"app.py": OK_PY})
        out = self.daemon.aws_json("lambda", "put-function-event-invoke-config", "--function-name", "eic-cli",
                                   "--maximum-retry-attempts", "2", "--maximum-event-age-in-seconds", "3600")
        self.assertEqual(out["MaximumEventAgeInSeconds"], 3600)
        got = self.daemon.aws_json("lambda", "get-function-event-invoke-config", "--function-name", "eic-cli")
        self.assertEqual(got["MaximumRetryAttempts"], 2)

    def put_raw(self, name, body, method="PUT"):
        return self.daemon.request(method, f"/2019-09-25/functions/{name}/event-invoke-config", body=json.dumps(body))

    def assertError(self, r, status, error_type, message=None):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.header("x-amzn-ErrorType"), error_type, r)
        if message is not None:
            body = r.json()
            self.assertEqual(body.get("message", body.get("Message")), message, r)

    def test_validation_errors(self):
        self.create_function("eic-bad", {"app.py": OK_PY})
        self.assertError(self.put_raw("eic-bad", {"MaximumRetryAttempts": 3}), 400, "ValidationException",
                         "1 validation error detected: Value '3' at 'maximumRetryAttempts' failed to satisfy "
                         "constraint: Member must have value less than or equal to 2")
        self.assertError(self.put_raw("eic-bad", {"MaximumEventAgeInSeconds": 59}), 400, "ValidationException",
                         "1 validation error detected: Value '59' at 'maximumEventAgeInSeconds' failed to satisfy "
                         "constraint: Member must have value greater than or equal to 60")
        self.assertError(self.put_raw("eic-bad", {"MaximumEventAgeInSeconds": 21601}), 400, "ValidationException")
        self.assertError(self.put_raw("eic-bad", {}), 400, "InvalidParameterValueException",
                         "You must specify at least one of error handling or destination setting.")
        self.assertError(self.put_raw("eic-bad", {"DestinationConfig": {"OnFailure": {
            "Destination": function_arn("eic-bad")}}}), 400, "InvalidParameterValueException",
            "You can't specify the function as a destination for itself.")
        self.assertError(self.put_raw("eic-bad", {"DestinationConfig": {"OnSuccess": {"Destination": "nope"}}}),
                         400, "ValidationException")
        self.assertError(self.put_raw("eic-bad", {"DestinationConfig": {"OnSuccess": {
            "Destination": f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:t"}}}), 400, "InvalidParameterValueException")
        self.assertError(self.put_raw("eic-bad", {"MaximumRetryAttempts": "two"}), 400, "ValidationException")
        self.assertError(self.put_raw("eic-bad", {"Unknown": 1}), 400, "InvalidRequestContentException")
        self.assertError(self.put_raw("eic-nobody", {"MaximumRetryAttempts": 1}), 404, "ResourceNotFoundException",
                         "The function doesn't exist.")
        self.assertError(self.daemon.request("GET", "/2019-09-25/functions/eic-bad/event-invoke-config"), 404,
                         "ResourceNotFoundException",
                         f"The function {function_arn('eic-bad')}:$LATEST doesn't have an EventInvokeConfig")
        # An SQS destination is accepted and kept.
        ok = self.put_raw("eic-bad", {"DestinationConfig": {"OnFailure": {"Destination": sqs_arn("failed")}}})
        self.assertEqual(ok.status, 200, ok)
        self.assertEqual(ok.json()["DestinationConfig"]["OnFailure"], {"Destination": sqs_arn("failed")})


DURABLE_PY = (
    "import os\n"
    "def handler(event, context):\n"
    "    with open(os.environ['SEEN_FILE'], 'a') as f:\n"
    "        f.write(event['m'] + '\\n')\n"
    "    return 'ok'\n"
)


class AsyncDurabilityTest(unittest.TestCase):
    """Async invokes under load while the daemon is SIGKILLed and restarted on
    the same data directory: every invocation answered 202 runs at least once.
    The function appends its marker to a host file, so the daemon runs without
    isolation here (isolation is not what this test is about)."""

    ROUNDS = 3
    PER_ROUND = 120
    CLIENTS = 8

    def test_every_acknowledged_invocation_runs_after_sigkill(self):
        data_dir = tempfile.mkdtemp(prefix="nimbus-it-durable-")
        seen_dir = tempfile.mkdtemp(prefix="nimbus-it-seen-")
        os.chmod(seen_dir, 0o777)
        seen_file = os.path.join(seen_dir, "seen.log")
        args = ("--no-isolation", "--events-time-scale", SCALE)
        acked = []
        lock = threading.Lock()
        try:
            d = Daemon(data_dir=data_dir, extra_args=args).start()
            try:
                client = d.boto3_client("lambda")
                client.create_function(FunctionName="durable", Runtime="python3.12", Role="arn:aws:iam::000000000000:role/x",
                                       Handler="app.handler", Code={"ZipFile": make_zip({"app.py": DURABLE_PY})},
                                       Environment={"Variables": {"SEEN_FILE": seen_file}})
                for round_no in range(self.ROUNDS):
                    if round_no > 0:
                        d = Daemon(data_dir=data_dir, extra_args=args).start()
                    markers = [f"r{round_no}-{i}" for i in range(self.PER_ROUND)]
                    stop = threading.Event()

                    def fire(chunk, daemon=d):
                        for m in chunk:
                            if stop.is_set():
                                return
                            try:
                                r = daemon.invoke("durable", {"m": m}, headers={"X-Amz-Invocation-Type": "Event"})
                            except OSError:
                                return  # the daemon is gone: unacknowledged
                            if r.status == 202:
                                with lock:
                                    acked.append(m)

                    threads = [threading.Thread(target=fire, args=(markers[i::self.CLIENTS],))
                               for i in range(self.CLIENTS)]
                    for t in threads:
                        t.start()
                    # Kill mid-load, once some work is acknowledged.
                    base = len(acked)
                    wait_until(lambda: len(acked) >= base + self.PER_ROUND // 3, 30)
                    os.kill(d.proc.pid, signal.SIGKILL)
                    stop.set()
                    for t in threads:
                        t.join(60)
                    d.kill()
                # A last daemon on the same data directory finishes the work.
                d = Daemon(data_dir=data_dir, extra_args=args).start()

                def missing():
                    try:
                        with open(seen_file) as f:
                            seen = set(f.read().split())
                    except FileNotFoundError:
                        seen = set()
                    return [m for m in acked if m not in seen]

                self.assertGreater(len(acked), self.ROUNDS * 10)
                ok = wait_until(lambda: not missing(), 120, interval=0.2)
                self.assertTrue(ok, f"{len(missing())} of {len(acked)} acknowledged invocations never ran: "
                                    f"{missing()[:10]}\n{d.log_text()}")
                d.stop()
            finally:
                d.kill()
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
            shutil.rmtree(seen_dir, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("mount"), "needs root to mount a small tmpfs")
class AsyncDiskFullTest(unittest.TestCase):
    """The data directory on a small tmpfs that is then filled up: an Event
    invoke whose row cannot be committed is answered 500 ServiceException,
    never 202, and the daemon keeps serving once there is room again."""

    def test_a_full_disk_fails_the_request_instead_of_acknowledging_it(self):
        mount_dir = tempfile.mkdtemp(prefix="nimbus-it-full-")
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", mount_dir]).returncode != 0:
            os.rmdir(mount_dir)
            self.skipTest("cannot mount a tmpfs here")
        filler = os.path.join(mount_dir, "filler")
        os.mkdir(os.path.join(mount_dir, "data"))
        try:
            with running_daemon(data_dir=os.path.join(mount_dir, "data"),
                                extra_args=("--events-time-scale", SCALE)) as d:
                client = d.boto3_client("lambda")
                client.create_function(FunctionName="full", Runtime="python3.12", Role="arn:aws:iam::000000000000:role/x",
                                       Handler="app.handler", Code={"ZipFile": make_zip({"app.py": OK_PY})})
                # Fill the file system to the last byte.
                with open(filler, "wb") as f:
                    try:
                        while True:
                            f.write(b"\0" * (64 * 1024))
                            f.flush()
                    except OSError:
                        pass
                big = json.dumps({"n": 1, "pad": "x" * 200000})
                answers = []
                for _ in range(5):
                    r = d.invoke("full", big, headers={"X-Amz-Invocation-Type": "Event"})
                    answers.append(r)
                    self.assertIn(r.status, (202, 500), r)
                refused = [r for r in answers if r.status == 500]
                self.assertTrue(refused, "every Event invoke was acknowledged on a full disk")
                for r in refused:
                    self.assertEqual(r.header("x-amzn-ErrorType"), "ServiceException", r)
                    self.assertIn("full", r.json()["Message"].lower(), r)
                os.unlink(filler)
                accepted = {r.header("x-amzn-RequestId") for r in answers if r.status == 202}
                later = d.invoke("full", {"n": 2}, headers={"X-Amz-Invocation-Type": "Event"})
                self.assertEqual(later.status, 202, later)
                accepted.add(later.header("x-amzn-RequestId"))

                def all_succeeded():
                    rows = d.request("GET", "/nimbus/v1/events", query={"function": "full"}).json()["Invocations"]
                    done = {row["Id"] for row in rows if row["State"] == "succeeded"}
                    return accepted <= done and len(rows) == len(accepted)

                self.assertTrue(wait_until(all_succeeded, 30),
                                d.request("GET", "/nimbus/v1/events", query={"function": "full"}).json())
                client.close()
        finally:
            subprocess.run(["umount", "-l", mount_dir])
            os.rmdir(mount_dir)
