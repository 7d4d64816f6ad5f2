"""SQS event source mappings: a queue feeds a function in batches.

Driven by boto3 (lambda and sqs), the Debian aws CLI and the nimbus CLI:
Lambda's SQS event field by field, CRUD and its errors, whole-batch failure
and partial batch responses (ReportBatchItemFailures) with the queue's
redrive policy, disable/enable, the concurrency bound, and a crash test:
SIGKILL of the daemon, repeatedly, under a load of queue messages and
asynchronous invokes, after which every acknowledged item was processed.
"""

import hashlib
import json
import os
import shutil
import signal
import tempfile
import threading
import time
import unittest

import botocore.exceptions

from harness import ACCOUNT_ID, REGION, UUID_RE, Daemon, ExecutionTestCase, make_zip, wait_until

# Prints every record it gets on one line each, then answers per BEHAVIOUR.
RECORDER_PY = (
    "import json, os, time\n"
    "def handler(event, context):\n"
    "    for r in event['Records']:\n"
    "        print('RECORD ' + json.dumps(r))\n"
    "    print('BATCH ' + json.dumps({'size': len(event['Records']), 'keys': sorted(event)}))\n"
    "    mode = os.environ.get('BEHAVIOUR', 'ok')\n"
    "    if mode == 'fail-first' and any(r['attributes']['ApproximateReceiveCount'] == '1' for r in event['Records']):\n"
    "        raise RuntimeError('first attempt fails')\n"
    "    if mode == 'partial':\n"
    "        return {'batchItemFailures': [{'itemIdentifier': r['messageId']} for r in event['Records']\n"
    "                                      if r['body'].startswith('bad')]}\n"
    "    if mode == 'slow':\n"
    "        start = time.time()\n"
    "        time.sleep(0.3)\n"
    "        print('SPAN %f %f' % (start, time.time()))\n"
    "    return {}\n"
)


def md5_text(text):
    return hashlib.md5(text.encode()).hexdigest()


def queue_arn(name):
    return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"


class MappingTestCase(ExecutionTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sqs = cls.daemon.boto3_client("sqs")

    def log_lines(self, function):
        r = self.daemon.request("GET", f"/nimbus/v1/functions/{function}/logs", query={"limit": "10000"})
        self.assertEqual(r.status, 200, r)
        return [line["text"] for line in r.json()["lines"]]

    def records(self, function):
        return [json.loads(t[len("RECORD "):]) for t in self.log_lines(function) if t.startswith("RECORD ")]

    def wait_records(self, function, count, timeout=60):
        ok = wait_until(lambda: len(self.records(function)) >= count, timeout, interval=0.2)
        self.assertTrue(ok, f"{function} got {len(self.records(function))} records, want {count}: "
                            f"{self.log_lines(function)[-20:]}")
        return self.records(function)

    def make_queue(self, name, **attributes):
        url = self.sqs.create_queue(QueueName=name, Attributes={k: str(v) for k, v in attributes.items()})["QueueUrl"]
        return url

    def queue_counts(self, url):
        a = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])

    def recorder(self, name, behaviour="ok", timeout=1):
        self.create_function(name, {"app.py": RECORDER_PY}, Timeout=timeout,
                             Environment={"Variables": {"BEHAVIOUR": behaviour}})

    def map(self, queue, function, **kwargs):
        m = self.client.create_event_source_mapping(EventSourceArn=queue_arn(queue), FunctionName=function, **kwargs)
        self.addCleanup(self.delete_quietly, m["UUID"])
        return m

    def raw_mapping(self, method, path="", body=None):
        """A signed request the Debian botocore cannot make (ScalingConfig is newer than its model)."""
        data = json.dumps(body).encode() if body is not None else b""
        return self.daemon.request(method, "/2015-03-31/event-source-mappings/" + path, body=data)

    def delete_quietly(self, uuid):
        try:
            self.client.delete_event_source_mapping(UUID=uuid)
        except botocore.exceptions.ClientError:
            pass

    def assertLambdaError(self, ctx, code, message_part, status=400):
        err = ctx.exception.response
        self.assertEqual(err["Error"]["Code"], code, err)
        self.assertEqual(err["ResponseMetadata"]["HTTPStatusCode"], status, err)
        self.assertIn(message_part, err["Error"]["Message"], err)


class EventShapeTest(MappingTestCase):

    def test_a_batch_reaches_the_function_as_lambdas_sqs_event_and_is_deleted(self):
        url = self.make_queue("shape")
        self.recorder("shape-fn")
        sent = {}
        for i, body in enumerate(["plain text", '{"n": 1}', "with attributes"]):
            extra = {}
            if i == 2:
                extra["MessageAttributes"] = {"Author": {"DataType": "String", "StringValue": "J"},
                                              "Blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}}
            r = self.sqs.send_message(QueueUrl=url, MessageBody=body, **extra)
            sent[r["MessageId"]] = (body, r)
        m = self.map("shape", "shape-fn", BatchSize=10)
        self.assertEqual(m["ResponseMetadata"]["HTTPStatusCode"], 202)
        self.assertEqual(m["State"], "Creating")
        records = self.wait_records("shape-fn", 3)
        self.assertEqual({r["messageId"] for r in records}, set(sent))
        for r in records:
            body, send = sent[r["messageId"]]
            self.assertEqual(r["body"], body)  # verbatim, never parsed
            self.assertEqual(r["md5OfBody"], md5_text(body))
            self.assertEqual(r["eventSource"], "aws:sqs")
            self.assertEqual(r["eventSourceARN"], queue_arn("shape"))
            self.assertEqual(r["awsRegion"], REGION)
            self.assertTrue(r["receiptHandle"])
            attrs = r["attributes"]
            self.assertEqual(attrs["ApproximateReceiveCount"], "1")
            self.assertEqual(attrs["SenderId"], ACCOUNT_ID)
            for key in ("SentTimestamp", "ApproximateFirstReceiveTimestamp"):
                self.assertIsInstance(attrs[key], str)
                self.assertTrue(attrs[key].isdigit(), attrs)
            if body == "with attributes":
                self.assertEqual(r["messageAttributes"]["Author"],
                                 {"stringValue": "J", "stringListValues": [], "binaryListValues": [],
                                  "dataType": "String"})
                self.assertEqual(r["messageAttributes"]["Blob"]["binaryValue"], "AAE=")
                self.assertEqual(r["md5OfMessageAttributes"], send["MD5OfMessageAttributes"])
            else:
                self.assertEqual(r["messageAttributes"], {})
                self.assertNotIn("md5OfMessageAttributes", r)
        batches = [json.loads(t[6:]) for t in self.log_lines("shape-fn") if t.startswith("BATCH ")]
        self.assertTrue(all(b["keys"] == ["Records"] for b in batches), batches)
        # Success deletes the batch.
        self.assertTrue(wait_until(lambda: self.queue_counts(url) == (0, 0), 10), self.queue_counts(url))
        # The result is recorded once the delete is committed, a moment after
        # the queue's counts show it (a race the slower ASan build lost).
        self.assertTrue(wait_until(
            lambda: self.client.get_event_source_mapping(UUID=m["UUID"])["LastProcessingResult"] == "OK", 10))
        got = self.client.get_event_source_mapping(UUID=m["UUID"])
        self.assertEqual(got["State"], "Enabled")
        self.assertEqual(got["LastProcessingResult"], "OK")

    def test_filter_criteria_deliver_only_matching_messages_and_delete_the_rest(self):
        url = self.make_queue("filtered")
        self.recorder("filtered-fn")
        bodies = ['{"kind": "order", "total": 40}', '{"kind": "refund", "total": 5}', "plain text",
                  '{"kind": "order", "total": 3}', "urgent: call back"]
        for body in bodies:
            self.sqs.send_message(QueueUrl=url, MessageBody=body)
        m = self.map("filtered", "filtered-fn", BatchSize=10, FilterCriteria={"Filters": [
            {"Pattern": '{"body": {"kind": ["order"], "total": [{"numeric": [">", 10]}]}}'},
            {"Pattern": '{"body": [{"prefix": "urgent"}]}'}]})
        self.assertEqual(len(m["FilterCriteria"]["Filters"]), 2)
        self.assertTrue(wait_until(lambda: self.queue_counts(url) == (0, 0), 30), self.queue_counts(url))
        got = [r["body"] for r in self.wait_records("filtered-fn", 2)]
        self.assertCountEqual(got, ['{"kind": "order", "total": 40}', "urgent: call back"])
        self.assertEqual(self.daemon.metric("nimbus_esm_filtered_total", function="filtered-fn"), 3)
        # An empty FilterCriteria removes the filters.
        up = self.client.update_event_source_mapping(UUID=m["UUID"], FilterCriteria={})
        self.assertNotIn("FilterCriteria", up)
        self.sqs.send_message(QueueUrl=url, MessageBody="anything now")
        self.assertIn("anything now", [r["body"] for r in self.wait_records("filtered-fn", 3)])

    def test_fifo_queue_records_carry_group_and_sequence(self):
        url = self.make_queue("order.fifo", FifoQueue="true", ContentBasedDeduplication="true")
        self.recorder("fifo-fn")
        for i in range(4):
            self.sqs.send_message(QueueUrl=url, MessageBody=f"step-{i}", MessageGroupId="g1")
        self.map("order.fifo", "fifo-fn", BatchSize=2)
        records = self.wait_records("fifo-fn", 4)
        self.assertEqual([r["body"] for r in records], [f"step-{i}" for i in range(4)])  # in order
        for r in records:
            self.assertEqual(r["attributes"]["MessageGroupId"], "g1")
            self.assertTrue(r["attributes"]["SequenceNumber"].isdigit())
            self.assertTrue(r["attributes"]["MessageDeduplicationId"])


class CrudTest(MappingTestCase):

    def test_crud_with_boto3(self):
        self.make_queue("crud")
        self.recorder("crud-fn")
        m = self.map("crud", "crud-fn", BatchSize=5, FunctionResponseTypes=["ReportBatchItemFailures"])
        self.assertRegex(m["UUID"], UUID_RE)
        self.assertEqual(m["EventSourceArn"], queue_arn("crud"))
        self.assertEqual(m["FunctionArn"], f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:crud-fn")
        self.assertEqual(m["BatchSize"], 5)
        self.assertEqual(m["MaximumBatchingWindowInSeconds"], 0)
        self.assertEqual(m["FunctionResponseTypes"], ["ReportBatchItemFailures"])
        self.assertNotIn("ScalingConfig", m)
        r = self.raw_mapping("PUT", m["UUID"], {"ScalingConfig": {"MaximumConcurrency": 4}})
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.json()["ScalingConfig"], {"MaximumConcurrency": 4})
        self.assertEqual(m["StateTransitionReason"], "USER_INITIATED")
        raw = self.raw_mapping("GET", m["UUID"]).json()  # newer than the Debian botocore's model
        self.assertEqual(raw["EventSourceMappingArn"],
                         f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:event-source-mapping:{m['UUID']}")
        self.assertEqual(raw["LastProcessingResult"], "No records processed")
        self.assertTrue(hasattr(m["LastModified"], "timestamp"), m)  # botocore parsed a timestamp

        listed = self.client.list_event_source_mappings(FunctionName="crud-fn")["EventSourceMappings"]
        self.assertEqual([x["UUID"] for x in listed], [m["UUID"]])
        self.assertEqual(self.client.list_event_source_mappings(EventSourceArn=queue_arn("nope"))["EventSourceMappings"],
                         [])

        up = self.client.update_event_source_mapping(UUID=m["UUID"], BatchSize=50, MaximumBatchingWindowInSeconds=2,
                                                     FunctionResponseTypes=[])
        self.assertEqual(up["ResponseMetadata"]["HTTPStatusCode"], 202)
        self.assertEqual((up["BatchSize"], up["MaximumBatchingWindowInSeconds"], up["FunctionResponseTypes"]),
                         (50, 2, []))
        self.assertEqual(self.raw_mapping("GET", m["UUID"]).json()["ScalingConfig"], {"MaximumConcurrency": 4})  # kept
        off = self.client.update_event_source_mapping(UUID=m["UUID"], Enabled=False)
        self.assertEqual(off["State"], "Disabling")
        self.assertEqual(self.client.get_event_source_mapping(UUID=m["UUID"])["State"], "Disabled")

        gone = self.client.delete_event_source_mapping(UUID=m["UUID"])
        self.assertEqual(gone["ResponseMetadata"]["HTTPStatusCode"], 202)
        self.assertEqual(gone["State"], "Deleting")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.client.get_event_source_mapping(UUID=m["UUID"])
        self.assertLambdaError(ctx, "ResourceNotFoundException", "The resource you requested does not exist.", 404)

    def test_aws_cli_create_get_list_delete(self):
        self.make_queue("cli-q")
        self.recorder("cli-fn")
        created = self.daemon.aws_json("lambda", "create-event-source-mapping", "--function-name", "cli-fn",
                                       "--event-source-arn", queue_arn("cli-q"), "--batch-size", "3")
        self.assertEqual(created["BatchSize"], 3)
        uuid = created["UUID"]
        got = self.daemon.aws_json("lambda", "get-event-source-mapping", "--uuid", uuid)
        self.assertEqual(got["State"], "Enabled")
        listed = self.daemon.aws_json("lambda", "list-event-source-mappings", "--event-source-arn", queue_arn("cli-q"))
        self.assertEqual([x["UUID"] for x in listed["EventSourceMappings"]], [uuid])
        self.daemon.aws_json("lambda", "delete-event-source-mapping", "--uuid", uuid)
        listed = self.daemon.aws_json("lambda", "list-event-source-mappings", "--function-name", "cli-fn")
        self.assertEqual(listed["EventSourceMappings"], [])

    def test_errors_name_what_is_wrong(self):
        self.make_queue("errs")
        self.make_queue("errs.fifo", FifoQueue="true")
        self.recorder("errs-fn")
        cases = [
            (dict(EventSourceArn=queue_arn("errs"), FunctionName="no-such-fn"),
             "InvalidParameterValueException", "Function does not exist"),
            (dict(EventSourceArn=queue_arn("missing"), FunctionName="errs-fn"),
             "InvalidParameterValueException", "NonExistentQueue"),
            (dict(EventSourceArn="arn:aws:kinesis:us-east-1:000000000000:stream/s", FunctionName="errs-fn"),
             "InvalidParameterValueException", "is not an SQS queue ARN"),
            (dict(EventSourceArn=queue_arn("errs"), FunctionName="errs-fn", BatchSize=11),
             "InvalidParameterValueException",
             "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10"),
            (dict(EventSourceArn=queue_arn("errs"), FunctionName="errs-fn", BatchSize=10001,
                  MaximumBatchingWindowInSeconds=1), "ValidationException", "'batchSize'"),
            (dict(EventSourceArn=queue_arn("errs.fifo"), FunctionName="errs-fn", MaximumBatchingWindowInSeconds=5),
             "InvalidParameterValueException", "FIFO"),
            (dict(EventSourceArn=queue_arn("errs"), FunctionName="errs-fn", StartingPosition="LATEST"),
             "InvalidParameterValueException", "StartingPosition is not supported for SQS event sources"),
            (dict(EventSourceArn=queue_arn("errs"), FunctionName="errs-fn",
                  FilterCriteria={"Filters": [{"Pattern": '{"body": [{"regex": "x"}]}'}]}),
             "InvalidParameterValueException", "Invalid filter pattern definition: unknown operator 'regex'"),
            (dict(EventSourceArn=queue_arn("errs"), FunctionName="errs-fn",
                  FilterCriteria={"Filters": [{"Pattern": '{"a": ["x"]}'}] * 6}),
             "InvalidParameterValueException", "at most 5"),
        ]
        for params, code, message in cases:
            with self.subTest(params=params):
                with self.assertRaises(botocore.exceptions.ClientError) as ctx:
                    self.client.create_event_source_mapping(**params)
                self.assertLambdaError(ctx, code, message)
        r = self.raw_mapping("POST", body={"EventSourceArn": queue_arn("errs"), "FunctionName": "errs-fn",
                                           "ScalingConfig": {"MaximumConcurrency": 1}})
        self.assertEqual((r.status, r.header("x-amzn-ErrorType")), (400, "ValidationException"), r)
        self.assertIn("scalingConfig.maximumConcurrency", r.error_message())
        first = self.map("errs", "errs-fn")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.client.create_event_source_mapping(EventSourceArn=queue_arn("errs"), FunctionName="errs-fn")
        self.assertLambdaError(ctx, "ResourceConflictException",
                               f"already exists. Please update or delete the existing mapping with UUID "
                               f"{first['UUID']}", 409)
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.client.update_event_source_mapping(UUID="00000000-0000-4000-8000-000000000000", BatchSize=1)
        self.assertLambdaError(ctx, "ResourceNotFoundException", "does not exist", 404)
        # Raw garbage gets Lambda's error shape, and the daemon keeps serving.
        r = self.daemon.request("POST", "/2015-03-31/event-source-mappings/", body=b"{not json")
        self.assertEqual(r.status, 400, r)
        self.assertTrue(r.error_message(), r)
        self.assertEqual(self.client.get_event_source_mapping(UUID=first["UUID"])["UUID"], first["UUID"])

    def test_nimbus_cli(self):
        self.make_queue("cli-nimbus")
        self.recorder("cli-nimbus-fn")
        rc, out, err = self.daemon.cli("mapping", "add", "--queue", "cli-nimbus", "--function", "cli-nimbus-fn",
                                       "--batch-size", "4", "--report-failures")
        self.assertEqual(rc, 0, err)
        self.assertIn("cli-nimbus -> ", out)
        self.assertIn("batch 4", out)
        uuid = self.client.list_event_source_mappings(FunctionName="cli-nimbus-fn")["EventSourceMappings"][0]["UUID"]
        rc, out, err = self.daemon.cli("mapping", "ls")
        self.assertEqual(rc, 0, err)
        self.assertIn(uuid, out)
        rc, out, err = self.daemon.cli("mapping", "disable", uuid)
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.client.get_event_source_mapping(UUID=uuid)["State"], "Disabled")
        rc, out, err = self.daemon.cli("mapping", "add", "--queue", "cli-nimbus", "--function", "cli-nimbus-fn")
        self.assertEqual(rc, 1)
        self.assertIn("already exists", err)
        rc, out, err = self.daemon.cli("mapping", "rm", uuid)
        self.assertEqual(rc, 0, err)
        rc, out, err = self.daemon.cli("mapping", "rm", uuid)
        self.assertEqual(rc, 1)
        self.assertIn("does not exist", err)


class FailureTest(MappingTestCase):

    def test_a_function_error_leaves_the_whole_batch_for_another_attempt(self):
        url = self.make_queue("retry", VisibilityTimeout=2)
        self.recorder("retry-fn", behaviour="fail-first")
        for body in ("one", "two", "three"):
            self.sqs.send_message(QueueUrl=url, MessageBody=body)
        # A window gathers all three into one batch.
        self.map("retry", "retry-fn", BatchSize=3, MaximumBatchingWindowInSeconds=1)
        records = self.wait_records("retry-fn", 6, timeout=60)
        by_body = {}
        for r in records:
            by_body.setdefault(r["body"], []).append(r["attributes"]["ApproximateReceiveCount"])
        self.assertEqual(by_body, {"one": ["1", "2"], "two": ["1", "2"], "three": ["1", "2"]})
        self.assertTrue(wait_until(lambda: self.queue_counts(url) == (0, 0), 10))
        self.assertGreaterEqual(self.daemon.metric("nimbus_esm_failed_batches_total", function="retry-fn"), 1)

    def test_partial_batch_response_keeps_only_reported_messages_until_the_dead_letter_queue(self):
        dlq_url = self.make_queue("partial-dlq")
        url = self.make_queue("partial", VisibilityTimeout=2,
                              RedrivePolicy=json.dumps({"deadLetterTargetArn": queue_arn("partial-dlq"),
                                                        "maxReceiveCount": "2"}))
        self.recorder("partial-fn", behaviour="partial")
        for body in ("good-1", "bad-1", "good-2"):
            self.sqs.send_message(QueueUrl=url, MessageBody=body)
        self.map("partial", "partial-fn", BatchSize=3, MaximumBatchingWindowInSeconds=1,
                 FunctionResponseTypes=["ReportBatchItemFailures"])
        # bad-1 comes back once more, then the queue moves it to its DLQ.
        self.wait_records("partial-fn", 4)
        moved = []
        ok = wait_until(lambda: moved.extend(self.sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1)
                                             .get("Messages", [])) or moved, 30)
        self.assertTrue(ok, "bad-1 never reached the dead-letter queue")
        self.assertEqual([m["Body"] for m in moved], ["bad-1"])
        bodies = [r["body"] for r in self.records("partial-fn")]
        self.assertEqual(bodies.count("good-1"), 1, bodies)
        self.assertEqual(bodies.count("good-2"), 1, bodies)
        self.assertEqual(bodies.count("bad-1"), 2, bodies)
        self.assertEqual(self.queue_counts(url), (0, 0))
        self.assertGreaterEqual(self.daemon.metric("nimbus_esm_item_failures_total", function="partial-fn"), 2)

    def test_disabled_mapping_leaves_messages_on_the_queue_until_enabled(self):
        url = self.make_queue("paused")
        self.recorder("paused-fn")
        m = self.map("paused", "paused-fn", Enabled=False)
        self.assertEqual(self.client.get_event_source_mapping(UUID=m["UUID"])["State"], "Disabled")
        self.sqs.send_message(QueueUrl=url, MessageBody="wait for me")
        time.sleep(1.5)
        self.assertEqual(self.records("paused-fn"), [])
        self.assertEqual(self.queue_counts(url), (1, 0))
        self.client.update_event_source_mapping(UUID=m["UUID"], Enabled=True)
        self.assertEqual([r["body"] for r in self.wait_records("paused-fn", 1)], ["wait for me"])

    def test_maximum_concurrency_bounds_parallel_batches(self):
        url = self.make_queue("wide")
        self.recorder("wide-fn", behaviour="slow", timeout=5)
        entries = [{"Id": str(i), "MessageBody": f"m{i}"} for i in range(10)]
        for _ in range(3):
            self.sqs.send_message_batch(QueueUrl=url, Entries=entries)
        r = self.raw_mapping("POST", body={"EventSourceArn": queue_arn("wide"), "FunctionName": "wide-fn",
                                           "BatchSize": 1, "ScalingConfig": {"MaximumConcurrency": 3}})
        self.assertEqual(r.status, 202, r)
        self.addCleanup(self.delete_quietly, r.json()["UUID"])
        self.wait_records("wide-fn", 30, timeout=90)
        spans = [tuple(map(float, t.split()[1:3])) for t in self.log_lines("wide-fn") if t.startswith("SPAN ")]
        self.assertEqual(len(spans), 30)
        events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda x: (x[0], x[1]))
        running = peak = 0
        for _, delta in events:
            running += delta
            peak = max(peak, running)
        self.assertLessEqual(peak, 3)
        self.assertGreaterEqual(peak, 2, "the mapping never scaled past one poller")


class DurabilityTest(unittest.TestCase):
    """The daemon is killed (-9) three times while clients send queue messages
    (fed to a function by a mapping) and asynchronous invokes; after the last
    restart every acknowledged message and invocation has reached the function
    at least once, and the mapping came back with the daemon. The function
    appends to a host file, so the daemon runs without isolation here."""

    ROUNDS = 3
    PER_ROUND = 40
    CODE = ("import os\n"
            "def handler(event, context):\n"
            "    items = [r['body'] for r in event['Records']] if 'Records' in event else [event['m']]\n"
            "    with open(os.environ['SEEN_FILE'], 'a') as f:\n"
            "        f.write(''.join(i + '\\n' for i in items))\n"
            "    return {}\n")

    def test_every_acknowledged_message_and_event_is_processed_across_sigkills(self):
        data_dir = tempfile.mkdtemp(prefix="nimbus-it-esm-")
        seen_dir = tempfile.mkdtemp(prefix="nimbus-it-esm-seen-")
        os.chmod(seen_dir, 0o777)
        seen_file = os.path.join(seen_dir, "seen.log")
        self.addCleanup(shutil.rmtree, data_dir, True)
        self.addCleanup(shutil.rmtree, seen_dir, True)
        args = ("--no-isolation",)
        acked = []
        lock = threading.Lock()
        d = Daemon(data_dir=data_dir, extra_args=args).start()
        try:
            client = d.boto3_client("lambda")
            sqs = d.boto3_client("sqs")
            client.create_function(FunctionName="durable", Runtime="python3.12",
                                   Role="arn:aws:iam::000000000000:role/x", Handler="app.handler",
                                   Code={"ZipFile": make_zip({"app.py": self.CODE})},
                                   Environment={"Variables": {"SEEN_FILE": seen_file}})
            # Messages a killed daemon had handed to the function come back after
            # the visibility timeout: a short one keeps the test short.
            url = sqs.create_queue(QueueName="durable-q", Attributes={"VisibilityTimeout": "3"})["QueueUrl"]
            client.create_event_source_mapping(EventSourceArn=queue_arn("durable-q"), FunctionName="durable",
                                               BatchSize=5)
            client.close()
            sqs.close()
            for round_no in range(self.ROUNDS):
                if round_no > 0:
                    d = Daemon(data_dir=data_dir, extra_args=args).start()
                stop = threading.Event()

                def send_messages(daemon=d, round_no=round_no):
                    q = daemon.boto3_client("sqs")
                    try:
                        for i in range(self.PER_ROUND):
                            body = f"msg-{round_no}-{i}"
                            if stop.is_set():
                                return
                            q.send_message(QueueUrl=url, MessageBody=body)
                            with lock:
                                acked.append(body)
                    except Exception:  # the daemon is gone: not acknowledged
                        return
                    finally:
                        q.close()

                def send_events(daemon=d, round_no=round_no):
                    for i in range(self.PER_ROUND):
                        marker = f"evt-{round_no}-{i}"
                        if stop.is_set():
                            return
                        try:
                            r = daemon.invoke("durable", json.dumps({"m": marker}).encode(),
                                              headers={"X-Amz-Invocation-Type": "Event"})
                        except OSError:
                            return
                        if r.status == 202:
                            with lock:
                                acked.append(marker)

                threads = [threading.Thread(target=send_messages), threading.Thread(target=send_events)]
                for t in threads:
                    t.start()
                base = len(acked)
                wait_until(lambda: len(acked) >= base + self.PER_ROUND // 2, 30)
                os.kill(d.proc.pid, signal.SIGKILL)
                stop.set()
                for t in threads:
                    t.join(60)
                d.kill()
            self.assertGreater(len(acked), self.ROUNDS * self.PER_ROUND // 2)
            d = Daemon(data_dir=data_dir, extra_args=args).start()

            def seen():
                try:
                    with open(seen_file) as f:
                        return set(f.read().split())
                except FileNotFoundError:
                    return set()

            ok = wait_until(lambda: set(acked) <= seen(), 90, interval=0.2)
            missing = sorted(set(acked) - seen())
            self.assertTrue(ok, f"{len(missing)} acknowledged items never processed: {missing[:10]}")
            self.assertTrue(any(a.startswith("msg-") for a in acked) and any(a.startswith("evt-") for a in acked))
            # The mapping came back with the daemon.
            after = d.boto3_client("lambda")
            mappings = after.list_event_source_mappings()["EventSourceMappings"]
            after.close()
            self.assertEqual(len(mappings), 1)
        finally:
            d.stop()
