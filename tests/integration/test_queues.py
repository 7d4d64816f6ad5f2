"""SQS-compatible queues driven by the real aws CLI and boto3 (query protocol)
and by raw signed JSON-protocol requests (X-Amz-Target: AmazonSQS.*)."""

import base64
import concurrent.futures
import hashlib
import http.client
import json
import struct
import threading
import time
import urllib.parse

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.exceptions

from harness import REGION, DaemonTestCase, running_daemon, wait_until


def md5_of_attributes(attrs):
    """SQS's MD5OfMessageAttributes, computed independently of nimbus."""
    if not attrs:
        return None
    h = hashlib.md5()
    for name in sorted(attrs):
        a = attrs[name]
        h.update(struct.pack(">I", len(name.encode())) + name.encode())
        dt = a["DataType"].encode()
        h.update(struct.pack(">I", len(dt)) + dt)
        if "StringValue" in a:
            v = a["StringValue"].encode()
            h.update(b"\x01" + struct.pack(">I", len(v)) + v)
        else:
            v = a["BinaryValue"]
            if isinstance(v, str):
                v = base64.b64decode(v)
            h.update(b"\x02" + struct.pack(">I", len(v)) + v)
    return h.hexdigest()


def md5(text):
    return hashlib.md5(text.encode()).hexdigest()


def sqs_json(daemon, action, payload, sign=True):
    """One JSON-protocol request signed for service sqs; (status, headers, parsed body)."""
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"AmazonSQS.{action}"}
    url = daemon.endpoint + "/"
    if sign:
        key, secret = daemon.credentials
        req = botocore.awsrequest.AWSRequest(method="POST", url=url, data=body, headers=headers)
        botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret), "sqs", REGION).add_auth(req)
        headers = dict(req.headers.items())
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    try:
        conn.request("POST", "/", body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, resp.headers, json.loads(data) if data else {}
    finally:
        conn.close()


class QueueQueryProtocolTest(DaemonTestCase):
    """boto3 (query protocol, XML) and the aws CLI."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sqs = cls.daemon.boto3_client("sqs")

    def assertSqsError(self, ctx, code, message_part=None):
        err = ctx.exception.response
        self.assertEqual(err["Error"]["Code"], code, err)
        self.assertEqual(err["ResponseMetadata"]["HTTPStatusCode"], 400, err)
        if message_part:
            self.assertIn(message_part, err["Error"]["Message"])

    def test_create_list_get_url_delete(self):
        url = self.sqs.create_queue(QueueName="life-a")["QueueUrl"]
        self.assertEqual(url, f"{self.daemon.endpoint}/000000000000/life-a")
        self.sqs.create_queue(QueueName="life-b", Attributes={"VisibilityTimeout": "40"})
        # Idempotent with the same attributes, refused with others.
        self.assertEqual(self.sqs.create_queue(QueueName="life-b", Attributes={"VisibilityTimeout": "40"})["QueueUrl"],
                         f"{self.daemon.endpoint}/000000000000/life-b")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.sqs.create_queue(QueueName="life-b", Attributes={"VisibilityTimeout": "41"})
        self.assertSqsError(ctx, "QueueAlreadyExists", "VisibilityTimeout")
        urls = self.sqs.list_queues(QueueNamePrefix="life-")["QueueUrls"]
        self.assertEqual([u.rsplit("/", 1)[1] for u in urls], ["life-a", "life-b"])
        self.assertEqual(self.sqs.get_queue_url(QueueName="life-a")["QueueUrl"], url)
        attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        self.assertEqual(attrs["QueueArn"], "arn:aws:sqs:us-east-1:000000000000:life-a")
        self.assertEqual(attrs["VisibilityTimeout"], "30")
        self.assertEqual(attrs["ApproximateNumberOfMessages"], "0")
        self.assertAlmostEqual(int(attrs["CreatedTimestamp"]), time.time(), delta=60)
        self.sqs.delete_queue(QueueUrl=url)
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.sqs.get_queue_url(QueueName="life-a")
        self.assertSqsError(ctx, "AWS.SimpleQueueService.NonExistentQueue")

    def test_send_receive_delete_with_attributes_and_md5(self):
        url = self.sqs.create_queue(QueueName="attrs")["QueueUrl"]
        attrs = {"City": {"DataType": "String", "StringValue": "Any City"},
                 "Population": {"DataType": "Number", "StringValue": "1250800"},
                 "Greeting": {"DataType": "Binary", "BinaryValue": b"Hello, \x00World!"}}
        sent = self.sqs.send_message(QueueUrl=url, MessageBody="héllo <&> world", MessageAttributes=attrs)
        self.assertEqual(sent["MD5OfMessageBody"], md5("héllo <&> world"))
        self.assertEqual(sent["MD5OfMessageAttributes"], md5_of_attributes(attrs))
        got = self.sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], AttributeNames=["All"])
        [m] = got["Messages"]
        self.assertEqual(m["Body"], "héllo <&> world")
        self.assertEqual(m["MessageId"], sent["MessageId"])
        self.assertEqual(m["MD5OfBody"], md5(m["Body"]))
        self.assertEqual(m["MessageAttributes"]["Greeting"]["BinaryValue"], b"Hello, \x00World!")
        self.assertEqual(m["MD5OfMessageAttributes"], md5_of_attributes(m["MessageAttributes"]))
        self.assertEqual(m["Attributes"]["ApproximateReceiveCount"], "1")
        self.assertAlmostEqual(int(m["Attributes"]["SentTimestamp"]) / 1000, time.time(), delta=60)
        # Only the asked-for attributes (and the MD5 over those).
        self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
        again = self.sqs.receive_message(QueueUrl=url, MessageAttributeNames=["City"])["Messages"][0]
        self.assertEqual(list(again["MessageAttributes"]), ["City"])
        self.assertEqual(again["MD5OfMessageAttributes"], md5_of_attributes({"City": attrs["City"]}))
        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"])
        self.assertNotIn("Messages", self.sqs.receive_message(QueueUrl=url))

    def test_long_poll_is_woken_by_a_send(self):
        url = self.sqs.create_queue(QueueName="longpoll")["QueueUrl"]
        other = self.daemon.boto3_client("sqs")
        timer = threading.Timer(0.5, lambda: other.send_message(QueueUrl=url, MessageBody="wake"))
        started = time.monotonic()
        timer.start()
        got = self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10)
        elapsed = time.monotonic() - started
        timer.join()
        self.assertEqual(got["Messages"][0]["Body"], "wake")
        self.assertGreater(elapsed, 0.4)
        self.assertLess(elapsed, 5)
        # Nothing to wake it: it returns empty after the wait.
        started = time.monotonic()
        self.assertNotIn("Messages", self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1))
        self.assertGreater(time.monotonic() - started, 0.9)

    def test_visibility_timeout_expiry_and_receive_count(self):
        url = self.sqs.create_queue(QueueName="vis")["QueueUrl"]
        self.sqs.send_message(QueueUrl=url, MessageBody="again")
        first = self.sqs.receive_message(QueueUrl=url, VisibilityTimeout=1, AttributeNames=["All"])["Messages"][0]
        self.assertNotIn("Messages", self.sqs.receive_message(QueueUrl=url))
        attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        self.assertEqual(attrs["ApproximateNumberOfMessagesNotVisible"], "1")
        second = self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, AttributeNames=["All"])["Messages"][0]
        self.assertEqual(second["MessageId"], first["MessageId"])
        self.assertEqual(second["Attributes"]["ApproximateReceiveCount"], "2")
        self.assertEqual(second["Attributes"]["ApproximateFirstReceiveTimestamp"],
                         first["Attributes"]["ApproximateFirstReceiveTimestamp"])
        # The first handle is stale now; the second deletes.
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
        self.assertSqsError(ctx, "ReceiptHandleIsInvalid", "expired")
        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=second["ReceiptHandle"])

    def test_redrive_to_dead_letter_queue(self):
        dlq = self.sqs.create_queue(QueueName="dead")["QueueUrl"]
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
        src = self.sqs.create_queue(QueueName="src", Attributes={"RedrivePolicy": policy})["QueueUrl"]
        got = self.sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["RedrivePolicy"])["Attributes"]
        self.assertEqual(json.loads(got["RedrivePolicy"]), {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
        mid = self.sqs.send_message(QueueUrl=src, MessageBody="poison")["MessageId"]
        for _ in range(2):
            [m] = self.sqs.receive_message(QueueUrl=src, VisibilityTimeout=0)["Messages"]
            self.assertEqual(m["MessageId"], mid)
        self.assertNotIn("Messages", self.sqs.receive_message(QueueUrl=src))
        [dead] = self.sqs.receive_message(QueueUrl=dlq, AttributeNames=["All"])["Messages"]
        self.assertEqual(dead["MessageId"], mid)
        self.assertEqual(dead["Body"], "poison")
        self.assertEqual(dead["Attributes"]["DeadLetterQueueSourceArn"],
                         "arn:aws:sqs:us-east-1:000000000000:src")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.sqs.set_queue_attributes(QueueUrl=src, Attributes={"RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:nope", "maxReceiveCount": 3})})
        self.assertSqsError(ctx, "InvalidParameterValue", "Dead letter target does not exist")

    def test_fifo_order_groups_and_dedup(self):
        url = self.sqs.create_queue(QueueName="orders.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        seqs = []
        for i in range(3):
            for g in ("a", "b"):
                out = self.sqs.send_message(QueueUrl=url, MessageBody=f"{g}{i}", MessageGroupId=g,
                                            MessageDeduplicationId=f"{g}-{i}")
                seqs.append(int(out["SequenceNumber"]))
        self.assertEqual(seqs, sorted(seqs))
        dup = self.sqs.send_message(QueueUrl=url, MessageBody="a0 again", MessageGroupId="a",
                                    MessageDeduplicationId="a-0")
        got = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
        self.assertEqual([m["Body"] for m in got], ["a0", "b0", "a1", "b1", "a2", "b2"])
        self.assertEqual(dup["MessageId"], got[0]["MessageId"])
        self.assertEqual(got[0]["Attributes"]["MessageGroupId"], "a")
        # While group a's messages are in flight, nothing of a is delivered.
        self.sqs.send_message(QueueUrl=url, MessageBody="a3", MessageGroupId="a", MessageDeduplicationId="a-3")
        self.sqs.send_message(QueueUrl=url, MessageBody="c0", MessageGroupId="c", MessageDeduplicationId="c-0")
        more = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        self.assertEqual([m["Body"] for m in more], ["c0"])
        # Content-based dedup needs the attribute, else a MessageDeduplicationId.
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="a")
        self.assertSqsError(ctx, "InvalidParameterValue", "ContentBasedDeduplication")
        cb = self.sqs.create_queue(QueueName="cb.fifo", Attributes={"FifoQueue": "true",
                                                                     "ContentBasedDeduplication": "true"})["QueueUrl"]
        one = self.sqs.send_message(QueueUrl=cb, MessageBody="same", MessageGroupId="g")
        two = self.sqs.send_message(QueueUrl=cb, MessageBody="same", MessageGroupId="g")
        self.assertEqual(one["MessageId"], two["MessageId"])
        self.assertEqual(len(self.sqs.receive_message(QueueUrl=cb, MaxNumberOfMessages=10)["Messages"]), 1)

    def test_batches_with_partial_failures(self):
        url = self.sqs.create_queue(QueueName="batch")["QueueUrl"]
        out = self.sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": "ok1", "MessageBody": "one"},
            {"Id": "bad", "MessageBody": "two", "DelaySeconds": 901},
            {"Id": "ok2", "MessageBody": "three", "MessageAttributes": {"n": {"DataType": "Number",
                                                                           "StringValue": "7"}}}])
        self.assertEqual(sorted(e["Id"] for e in out["Successful"]), ["ok1", "ok2"])
        [failed] = out["Failed"]
        self.assertEqual(failed["Id"], "bad")
        self.assertEqual(failed["Code"], "InvalidParameterValue")
        self.assertTrue(failed["SenderFault"])
        ok2 = [e for e in out["Successful"] if e["Id"] == "ok2"][0]
        self.assertEqual(ok2["MD5OfMessageAttributes"], md5_of_attributes({"n": {"DataType": "Number",
                                                                                 "StringValue": "7"}}))
        msgs = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        self.assertEqual(sorted(m["Body"] for m in msgs), ["one", "three"])
        entries = [{"Id": f"e{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)]
        entries.append({"Id": "forged", "ReceiptHandle": "Zm9yZ2Vk.0123456789"})
        out = self.sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        self.assertEqual(sorted(e["Id"] for e in out["Successful"]), ["e0", "e1"])
        self.assertEqual(out["Failed"][0]["Code"], "ReceiptHandleIsInvalid")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": f"i{i}", "MessageBody": "x"}
                                                               for i in range(11)])
        self.assertSqsError(ctx, "AWS.SimpleQueueService.TooManyEntriesInBatchRequest")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "same", "MessageBody": "x"},
                                                               {"Id": "same", "MessageBody": "y"}])
        self.assertSqsError(ctx, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct")

    def test_errors(self):
        url = self.sqs.create_queue(QueueName="errs")["QueueUrl"]
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.sqs.send_message(QueueUrl=url.replace("errs", "missing"), MessageBody="x")
        self.assertSqsError(ctx, "AWS.SimpleQueueService.NonExistentQueue")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "43201"})
        self.assertSqsError(ctx, "InvalidAttributeValue", "VisibilityTimeout")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.sqs.create_queue(QueueName="bad-delay", Attributes={"DelaySeconds": "-1"})
        self.assertSqsError(ctx, "InvalidAttributeValue", "DelaySeconds")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.sqs.send_message(QueueUrl=url, MessageBody="x" * 262145)
        self.assertSqsError(ctx, "InvalidParameterValue", "262144")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=11)
        self.assertSqsError(ctx, "InvalidParameterValue", "MaxNumberOfMessages")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.sqs.delete_message(QueueUrl=url, ReceiptHandle="bm90IGEgaGFuZGxl.deadbeef")
        self.assertSqsError(ctx, "ReceiptHandleIsInvalid", "not a valid receipt handle")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["NoSuchThing"])
        self.assertSqsError(ctx, "InvalidAttributeName")

    def test_aws_cli(self):
        url = self.daemon.aws_json("sqs", "create-queue", "--queue-name", "cli-q")["QueueUrl"]
        sent = self.daemon.aws_json("sqs", "send-message", "--queue-url", url, "--message-body", "from the cli",
                                    "--message-attributes", json.dumps({"k": {"DataType": "String",
                                                                              "StringValue": "v"}}))
        self.assertEqual(sent["MD5OfMessageBody"], md5("from the cli"))
        got = self.daemon.aws_json("sqs", "receive-message", "--queue-url", url, "--message-attribute-names", "All",
                                   "--wait-time-seconds", "1")
        self.assertEqual(got["Messages"][0]["Body"], "from the cli")
        self.daemon.aws_json("sqs", "delete-message", "--queue-url", url, "--receipt-handle",
                             got["Messages"][0]["ReceiptHandle"])
        urls = self.daemon.aws_json("sqs", "list-queues", "--queue-name-prefix", "cli-")["QueueUrls"]
        self.assertEqual(urls, [url])
        rc, out, err = self.daemon.aws("sqs", "get-queue-url", "--queue-name", "cli-nope")
        self.assertNotEqual(rc, 0)
        self.assertIn("AWS.SimpleQueueService.NonExistentQueue", err)


class QueueJsonProtocolTest(DaemonTestCase):
    """The JSON protocol current SDKs (@aws-sdk/client-sqs) speak."""

    def call(self, action, payload):
        status, headers, body = sqs_json(self.daemon, action, payload)
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["Content-Type"], "application/x-amz-json-1.0")
        return body

    def test_round_trip(self):
        url = self.call("CreateQueue", {"QueueName": "json-q", "Attributes": {"VisibilityTimeout": "5"}})["QueueUrl"]
        attrs = {"a": {"DataType": "String", "StringValue": "b"},
                 "bin": {"DataType": "Binary", "BinaryValue": base64.b64encode(b"\x01\x02").decode()}}
        sent = self.call("SendMessage", {"QueueUrl": url, "MessageBody": "hi", "MessageAttributes": attrs})
        self.assertEqual(sent["MD5OfMessageBody"], md5("hi"))
        self.assertEqual(sent["MD5OfMessageAttributes"], md5_of_attributes(attrs))
        batch = self.call("SendMessageBatch", {"QueueUrl": url, "Entries": [
            {"Id": "x", "MessageBody": "two"}, {"Id": "y", "MessageBody": ""}]})
        self.assertEqual([e["Id"] for e in batch["Successful"]], ["x"])
        self.assertEqual(batch["Failed"][0]["Code"], "MissingParameter")
        got = self.call("ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 10,
                                           "MessageAttributeNames": ["All"],
                                           "MessageSystemAttributeNames": ["ApproximateReceiveCount"]})
        self.assertEqual(sorted(m["Body"] for m in got["Messages"]), ["hi", "two"])
        hi = [m for m in got["Messages"] if m["Body"] == "hi"][0]
        self.assertEqual(hi["MessageAttributes"], attrs)
        self.assertEqual(hi["MD5OfMessageAttributes"], md5_of_attributes(attrs))
        self.assertEqual(hi["Attributes"], {"ApproximateReceiveCount": "1"})
        out = self.call("DeleteMessageBatch", {"QueueUrl": url, "Entries": [
            {"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got["Messages"])]})
        self.assertEqual(len(out["Successful"]), 2)
        attrs = self.call("GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["ApproximateNumberOfMessages",
                                                                                     "VisibilityTimeout"]})
        self.assertEqual(attrs["Attributes"], {"ApproximateNumberOfMessages": "0", "VisibilityTimeout": "5"})
        self.assertEqual(self.call("ListQueues", {"QueueNamePrefix": "json-q"})["QueueUrls"], [url])
        self.call("PurgeQueue", {"QueueUrl": url})
        self.call("DeleteQueue", {"QueueUrl": url})

    def assertJsonError(self, action, payload, shape, query_code, message_part=None):
        status, headers, body = sqs_json(self.daemon, action, payload)
        self.assertEqual(status, 400, body)
        self.assertEqual(body["__type"], f"com.amazonaws.sqs#{shape}", body)
        self.assertEqual(headers["x-amzn-query-error"], f"{query_code};Sender")
        if message_part:
            self.assertIn(message_part, body["message"])

    def test_errors(self):
        url = self.call("CreateQueue", {"QueueName": "json-errs"})["QueueUrl"]
        self.assertJsonError("GetQueueUrl", {"QueueName": "nope"}, "QueueDoesNotExist",
                             "AWS.SimpleQueueService.NonExistentQueue")
        self.assertJsonError("CreateQueue", {"QueueName": "json-errs", "Attributes": {"DelaySeconds": "5"}},
                             "QueueNameExists", "QueueAlreadyExists")
        self.assertJsonError("SetQueueAttributes", {"QueueUrl": url, "Attributes": {"MessageRetentionPeriod": "59"}},
                             "InvalidAttributeValue", "InvalidAttributeValue", "MessageRetentionPeriod")
        self.assertJsonError("SendMessageBatch", {"QueueUrl": url, "Entries": [
            {"Id": str(i), "MessageBody": "x"} for i in range(11)]}, "TooManyEntriesInBatchRequest",
            "AWS.SimpleQueueService.TooManyEntriesInBatchRequest")
        self.assertJsonError("SendMessageBatch", {"QueueUrl": url, "Entries": []}, "EmptyBatchRequest",
                             "AWS.SimpleQueueService.EmptyBatchRequest")
        self.assertJsonError("SendMessageBatch", {"QueueUrl": url, "Entries": [
            {"Id": "a", "MessageBody": "x" * 200000}, {"Id": "b", "MessageBody": "y" * 200000}]},
            "BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong")
        self.assertJsonError("SendMessage", {"QueueUrl": url, "MessageBody": "x" * 262145}, "InvalidParameterValue",
                             "InvalidParameterValue")
        self.assertJsonError("ChangeMessageVisibility", {"QueueUrl": url, "ReceiptHandle": "Zm9v.bar",
                                                         "VisibilityTimeout": 1},
                             "ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid")
        self.assertJsonError("NoSuchAction", {}, "InvalidAction", "InvalidAction")
        # Unsigned: refused in the JSON error shape.
        status, headers, body = sqs_json(self.daemon, "ListQueues", {}, sign=False)
        self.assertEqual(status, 403, body)
        self.assertIn("__type", body)


class QueueShutdownTest(DaemonTestCase):
    """A long poll in flight does not hold up a clean stop."""

    def test_sigterm_answers_long_polls_at_once(self):
        with running_daemon() as d:
            sqs = d.boto3_client("sqs")
            url = sqs.create_queue(QueueName="stopping")["QueueUrl"]
            result = {}

            def poll():
                try:
                    result["out"] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20)
                except Exception as e:  # noqa: BLE001 - recorded
                    result["error"] = e

            t = threading.Thread(target=poll)
            t.start()
            time.sleep(0.5)
            started = time.monotonic()
            d.stop()  # asserts exit 0
            self.assertLess(time.monotonic() - started, 5)
            t.join(10)
            self.assertNotIn("error", result, result)
            self.assertNotIn("Messages", result["out"])


class QueueDurabilityTest(DaemonTestCase):
    """Acknowledged sends survive kill -9; in-flight messages come back after restart."""

    def test_sigkill_loses_no_acknowledged_send(self):
        with running_daemon() as first:
            sqs = first.boto3_client("sqs")
            url = sqs.create_queue(QueueName="durable")["QueueUrl"]
            acked = set()
            stop = threading.Event()

            def sender(worker):
                client = first.boto3_client("sqs")
                i = 0
                while not stop.is_set():
                    entries = [{"Id": f"m{k}", "MessageBody": f"{worker}-{i}-{k}"} for k in range(10)]
                    try:
                        out = client.send_message_batch(QueueUrl=url, Entries=entries)
                    except Exception:  # the daemon died mid-request: not acknowledged
                        return
                    for e in out["Successful"]:
                        acked.add(f"{worker}-{i}-{e['Id'][1:]}")
                    i += 1

            # One message is in flight at the kill, with 1 s of visibility left.
            sqs.send_message(QueueUrl=url, MessageBody="inflight")
            inflight = sqs.receive_message(QueueUrl=url, VisibilityTimeout=2)["Messages"][0]
            acked.discard("inflight")
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                futures = [pool.submit(sender, w) for w in range(4)]
                # Kill mid-load, once some sends are acknowledged (however slow the machine).
                wait_until(lambda: len(acked) > 60, 60)
                first.proc.kill()  # SIGKILL
                first.proc.wait()
                stop.set()
                for f in futures:
                    f.result()
            self.assertGreater(len(acked), 50)
            data_dir = first.data_dir
            first.proc = None
            with running_daemon(data_dir=data_dir) as second:
                sqs2 = second.boto3_client("sqs")
                url2 = sqs2.get_queue_url(QueueName="durable")["QueueUrl"]
                seen = set()
                inflight_seen = False
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    got = sqs2.receive_message(QueueUrl=url2, MaxNumberOfMessages=10, WaitTimeSeconds=1)
                    msgs = got.get("Messages", [])
                    if not msgs and acked <= seen and inflight_seen:
                        break
                    for m in msgs:
                        if m["Body"] == "inflight":
                            inflight_seen = True
                            self.assertEqual(m["MessageId"], inflight["MessageId"])
                        else:
                            seen.add(m["Body"])
                    if msgs:
                        sqs2.delete_message_batch(QueueUrl=url2, Entries=[
                            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
                self.assertEqual(acked - seen, set())
                self.assertTrue(inflight_seen)
