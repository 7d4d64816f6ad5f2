"""The Lambda control API driven by boto3 (Debian's python3-boto3)."""

import concurrent.futures
import json
import re
import unittest
import urllib.error
import urllib.parse
import urllib.request

import botocore.exceptions

from harness import (DaemonTestCase, LAST_MODIFIED_RE, ROLE, UUID_RE, create_function_body, function_arn, make_zip,
                     python_zip, sha256_b64)

ARN_RE = re.compile(r"^arn:aws:lambda:us-east-1:\d{12}:function:[a-zA-Z0-9-_]+$")


def create(client, name, zip_bytes=None, **kwargs):
    params = dict(FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.handler",
                  Code={"ZipFile": zip_bytes if zip_bytes is not None else python_zip()})
    params.update(kwargs)
    return client.create_function(**params)


class Boto3LifecycleTest(DaemonTestCase):

    def assertClientError(self, ctx, code, status, message_part=None):
        err = ctx.exception.response
        self.assertEqual(err["Error"]["Code"], code, err)
        self.assertEqual(err["ResponseMetadata"]["HTTPStatusCode"], status, err)
        self.assertTrue(err["ResponseMetadata"].get("RequestId"), err)
        if message_part is not None:
            self.assertIn(message_part, err["Error"]["Message"])

    def test_create_defaults_arn_and_code_digest(self):
        zip_bytes = make_zip({"app.py": "def handler(event, context):\n    return 1\n", "README": "x" * 300})
        out = create(self.client, "b3-defaults", zip_bytes)
        self.assertEqual(out["ResponseMetadata"]["HTTPStatusCode"], 201)
        self.assertRegex(out["ResponseMetadata"]["RequestId"], UUID_RE)
        self.assertRegex(out["FunctionArn"], ARN_RE)
        self.assertEqual(out["FunctionArn"], "arn:aws:lambda:us-east-1:000000000000:function:b3-defaults")
        self.assertEqual(out["CodeSha256"], sha256_b64(zip_bytes))
        self.assertEqual(len(out["CodeSha256"]), 44)
        self.assertEqual(out["CodeSize"], len(zip_bytes))
        self.assertEqual(out["Timeout"], 3)
        self.assertEqual(out["MemorySize"], 128)
        self.assertEqual(out["EphemeralStorage"], {"Size": 512})
        self.assertEqual(out["Architectures"], ["x86_64"])
        self.assertEqual(out["PackageType"], "Zip")
        self.assertEqual(out["Version"], "$LATEST")
        self.assertEqual(out["Description"], "")
        self.assertEqual(out["TracingConfig"], {"Mode": "PassThrough"})
        self.assertEqual(out["State"], "Active")
        # Lambda's CreateFunction answer has no LastUpdateStatus yet (reference §3).
        self.assertNotIn("LastUpdateStatus", out)
        self.assertRegex(out["LastModified"], LAST_MODIFIED_RE)
        self.assertRegex(out["RevisionId"], UUID_RE)
        self.assertNotIn("Environment", out)

        got = self.client.get_function_configuration(FunctionName="b3-defaults")
        for key in ("FunctionArn", "CodeSha256", "CodeSize", "Timeout", "MemorySize", "EphemeralStorage",
                    "Architectures", "PackageType", "Version", "RevisionId", "LastModified"):
            self.assertEqual(got[key], out[key], key)

    def test_create_with_settings(self):
        out = create(self.client, "b3-settings", Timeout=900, MemorySize=10240, Description="d" * 256,
                     Environment={"Variables": {"MODE": "test", "EMPTY": ""}}, Architectures=["arm64"],
                     EphemeralStorage={"Size": 1024}, Tags={"a": "1"})
        self.assertEqual(out["Timeout"], 900)
        self.assertEqual(out["MemorySize"], 10240)
        self.assertEqual(out["Description"], "d" * 256)
        self.assertEqual(out["Environment"]["Variables"], {"MODE": "test", "EMPTY": ""})
        self.assertEqual(out["Architectures"], ["arm64"])
        self.assertEqual(out["EphemeralStorage"], {"Size": 1024})
        self.assertEqual(self.client.list_tags(Resource=out["FunctionArn"])["Tags"], {"a": "1"})

    def test_full_lifecycle(self):
        zip1 = python_zip()
        created = create(self.client, "b3-life", zip1)

        got = self.client.get_function(FunctionName="b3-life")
        self.assertEqual(got["Configuration"]["FunctionArn"], function_arn("b3-life"))
        self.assertEqual(got["Configuration"]["RevisionId"], created["RevisionId"])
        with urllib.request.urlopen(got["Code"]["Location"], timeout=10) as resp:
            self.assertEqual(resp.read(), zip1)

        # Qualifier=$LATEST gives the qualified ARN.
        latest = self.client.get_function(FunctionName="b3-life", Qualifier="$LATEST")
        self.assertEqual(latest["Configuration"]["FunctionArn"], function_arn("b3-life", "$LATEST"))

        updated = self.client.update_function_configuration(
            FunctionName="b3-life", Timeout=60, MemorySize=512, Description="v2",
            Environment={"Variables": {"K1": "v1"}})
        self.assertEqual((updated["Timeout"], updated["MemorySize"], updated["Description"]), (60, 512, "v2"))
        self.assertEqual(updated["Environment"], {"Variables": {"K1": "v1"}})
        self.assertNotEqual(updated["RevisionId"], created["RevisionId"])
        self.assertRegex(updated["LastModified"], LAST_MODIFIED_RE)

        zip2 = python_zip(body="return 2")
        code = self.client.update_function_code(FunctionName="b3-life", ZipFile=zip2)
        self.assertEqual(code["CodeSha256"], sha256_b64(zip2))
        self.assertNotEqual(code["CodeSha256"], created["CodeSha256"])
        self.assertEqual(code["CodeSize"], len(zip2))
        self.assertNotEqual(code["RevisionId"], updated["RevisionId"])
        # Configuration survives a code update.
        self.assertEqual((code["Timeout"], code["MemorySize"]), (60, 512))

        arn = function_arn("b3-life")
        self.client.tag_resource(Resource=arn, Tags={"x": "1", "y": "2"})
        self.assertEqual(self.client.list_tags(Resource=arn)["Tags"], {"x": "1", "y": "2"})
        self.client.untag_resource(Resource=arn, TagKeys=["x"])
        self.assertEqual(self.client.list_tags(Resource=arn)["Tags"], {"y": "2"})

        deleted = self.client.delete_function(FunctionName="b3-life")
        self.assertIn(deleted["ResponseMetadata"]["HTTPStatusCode"], (200, 204))
        with self.assertRaises(self.client.exceptions.ResourceNotFoundException) as ctx:
            self.client.get_function(FunctionName="b3-life")
        self.assertClientError(ctx, "ResourceNotFoundException", 404, f"Function not found: {arn}")
        # The modeled member keeps Lambda's casing (reference §1.4).
        self.assertIn("Message", ctx.exception.response)
        with self.assertRaises(self.client.exceptions.ResourceNotFoundException):
            self.client.get_function_configuration(FunctionName="b3-life")
        with self.assertRaises(self.client.exceptions.ResourceNotFoundException):
            self.client.delete_function(FunctionName="b3-life")

    def test_code_location_needs_its_token(self):
        zip_bytes = python_zip(body="return 'secret code'")
        create(self.client, "b3-location", zip_bytes)
        location = self.client.get_function(FunctionName="b3-location")["Code"]["Location"]
        with urllib.request.urlopen(location, timeout=10) as resp:
            self.assertEqual(resp.read(), zip_bytes)
        parts = urllib.parse.urlsplit(location)
        query = urllib.parse.parse_qs(parts.query)
        self.assertIn("token", query)
        tampered = dict(query, token=["0" * len(query["token"][0])])
        for bad in (urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(tampered, doseq=True))),
                    urllib.parse.urlunsplit(parts._replace(query=""))):
            with self.assertRaises(urllib.error.HTTPError) as ctx:
                urllib.request.urlopen(bad, timeout=10)
            self.assertEqual(ctx.exception.code, 403, bad)
        # The link of a deleted function serves nothing.
        self.client.delete_function(FunctionName="b3-location")
        with self.assertRaises(urllib.error.HTTPError) as ctx:
            urllib.request.urlopen(location, timeout=10)
        self.assertEqual(ctx.exception.code, 404)

    def test_concurrent_creates_of_one_name(self):
        body = json.dumps(create_function_body("b3-race"))
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            statuses = sorted(pool.map(lambda _: self.daemon.request("POST", "/2015-03-31/functions", body).status,
                                       range(8)))
        self.assertEqual(statuses, [201] + [409] * 7)
        self.assertEqual(self.daemon.list_function_names().count("b3-race"), 1)

    def test_stale_revision_id_is_rejected(self):
        created = create(self.client, "b3-revision")
        self.client.update_function_configuration(FunctionName="b3-revision", Timeout=10,
                                                  RevisionId=created["RevisionId"])
        with self.assertRaises(self.client.exceptions.PreconditionFailedException) as ctx:
            self.client.update_function_configuration(FunctionName="b3-revision", Timeout=20,
                                                      RevisionId=created["RevisionId"])
        self.assertClientError(ctx, "PreconditionFailedException", 412)
        self.assertEqual(self.client.get_function_configuration(FunctionName="b3-revision")["Timeout"], 10)

    def test_update_missing_function_is_not_found(self):
        with self.assertRaises(self.client.exceptions.ResourceNotFoundException) as ctx:
            self.client.update_function_configuration(FunctionName="b3-nope", Timeout=5)
        self.assertClientError(ctx, "ResourceNotFoundException", 404, "b3-nope")
        with self.assertRaises(self.client.exceptions.ResourceNotFoundException):
            self.client.update_function_code(FunctionName="b3-nope", ZipFile=python_zip())

    def test_waiters(self):
        create(self.client, "b3-wait")
        fast = {"Delay": 1, "MaxAttempts": 2}
        self.client.get_waiter("function_exists").wait(FunctionName="b3-wait", WaiterConfig=fast)
        self.client.get_waiter("function_active_v2").wait(FunctionName="b3-wait", WaiterConfig=fast)
        self.client.get_waiter("function_active").wait(FunctionName="b3-wait", WaiterConfig=fast)
        self.client.update_function_configuration(FunctionName="b3-wait", Timeout=7)
        self.client.get_waiter("function_updated_v2").wait(FunctionName="b3-wait", WaiterConfig=fast)
        with self.assertRaises(botocore.exceptions.WaiterError):
            self.client.get_waiter("function_exists").wait(FunctionName="b3-wait-missing",
                                                           WaiterConfig={"Delay": 1, "MaxAttempts": 1})

    def test_account_settings(self):
        before = self.client.get_account_settings()
        zip_bytes = python_zip(body="return 'account'")
        create(self.client, "b3-account", zip_bytes)
        after = self.client.get_account_settings()
        self.assertEqual(after["AccountUsage"]["FunctionCount"], before["AccountUsage"]["FunctionCount"] + 1)
        self.assertEqual(after["AccountUsage"]["TotalCodeSize"],
                         before["AccountUsage"]["TotalCodeSize"] + len(zip_bytes))
        self.assertEqual(after["AccountLimit"]["TotalCodeSize"], 80530636800)
        self.assertEqual(after["AccountLimit"]["CodeSizeZipped"], 52428800)
        self.assertGreaterEqual(after["AccountLimit"]["ConcurrentExecutions"], 1)


class Boto3PaginationTest(DaemonTestCase):
    """A fresh daemon holding exactly the seven functions below."""

    NAMES = ["page-g", "page-c", "page-a", "page-e", "page-b", "page-f", "page-d"]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for n in cls.NAMES:
            create(cls.client, n)

    def test_list_by_hand_with_max_items(self):
        pages, marker = [], None
        for _ in range(10):
            kwargs = {"MaxItems": 3}
            if marker:
                kwargs["Marker"] = marker
            out = self.client.list_functions(**kwargs)
            pages.append([f["FunctionName"] for f in out["Functions"]])
            marker = out.get("NextMarker")
            if not marker:
                break
        self.assertEqual([len(p) for p in pages], [3, 3, 1], pages)
        flat = [n for p in pages for n in p]
        self.assertEqual(flat, sorted(self.NAMES))

    def test_list_without_max_items_returns_everything_on_one_page(self):
        out = self.client.list_functions()
        self.assertEqual([f["FunctionName"] for f in out["Functions"]], sorted(self.NAMES))
        self.assertFalse(out.get("NextMarker"))
        row = out["Functions"][0]
        self.assertEqual(row["FunctionArn"], function_arn("page-a"))
        self.assertEqual(row["CodeSha256"], sha256_b64(python_zip()))

    def test_paginator(self):
        pages = list(self.client.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 3}))
        self.assertEqual([len(p["Functions"]) for p in pages], [3, 3, 1])
        names = [f["FunctionName"] for p in pages for f in p["Functions"]]
        self.assertEqual(names, sorted(self.NAMES))
        # MaxItems on the paginator limits the total, with a resume token.
        first = self.client.get_paginator("list_functions").paginate(
            PaginationConfig={"PageSize": 2, "MaxItems": 5}).build_full_result()
        self.assertEqual([f["FunctionName"] for f in first["Functions"]], sorted(self.NAMES)[:5])
        self.assertIn("NextToken", first)
        rest = self.client.get_paginator("list_functions").paginate(
            PaginationConfig={"PageSize": 2, "StartingToken": first["NextToken"]}).build_full_result()
        self.assertEqual([f["FunctionName"] for f in rest["Functions"]], sorted(self.NAMES)[5:])

    def test_collection_paths_with_and_without_trailing_slash(self):
        # CLI 2.9/botocore 1.29 send the slash, JS v3 and newer botocore do not (reference §1.1).
        for path in ("/2015-03-31/functions", "/2015-03-31/functions/"):
            r = self.daemon.request("GET", path)
            self.assertEqual(r.status, 200, r)
            self.assertEqual([f["FunctionName"] for f in r.json()["Functions"]], sorted(self.NAMES))
        for path in ("/2016-08-19/account-settings", "/2016-08-19/account-settings/"):
            r = self.daemon.request("GET", path)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["AccountUsage"]["FunctionCount"], len(self.NAMES))

    def test_function_version_all_qualifies_arns(self):
        out = self.client.list_functions(FunctionVersion="ALL")
        arns = sorted(f["FunctionArn"] for f in out["Functions"])
        self.assertEqual(arns, [function_arn(n, "$LATEST") for n in sorted(self.NAMES)])


class Boto3PageCapTest(DaemonTestCase):
    """ListFunctions returns at most 50 per page whatever MaxItems says."""

    COUNT = 53

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        zip_bytes = python_zip()
        cls.names = sorted(f"cap-{i:03d}" for i in range(cls.COUNT))
        for n in cls.names:
            create(cls.client, n, zip_bytes)

    def test_page_is_capped_at_50(self):
        for kwargs in ({}, {"MaxItems": 1000}):
            first = self.client.list_functions(**kwargs)
            self.assertEqual(len(first["Functions"]), 50, kwargs)
            self.assertTrue(first.get("NextMarker"), kwargs)
            second = self.client.list_functions(Marker=first["NextMarker"], **kwargs)
            self.assertEqual(len(second["Functions"]), self.COUNT - 50)
            self.assertFalse(second.get("NextMarker"))
            names = [f["FunctionName"] for f in first["Functions"] + second["Functions"]]
            self.assertEqual(names, self.names)

    def test_invalid_max_items_is_rejected(self):
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.client.list_functions(MaxItems=10001)  # botocore checks only minimums
        self.assertEqual(ctx.exception.response["Error"]["Code"], "ValidationException")
        self.assertEqual(ctx.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)
        self.assertIn("maxItems", ctx.exception.response["Error"]["Message"])
        r = self.daemon.request("GET", "/2015-03-31/functions/", query={"MaxItems": "0"})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.header("x-amzn-ErrorType"), "ValidationException", r)
        self.assertIn("maxItems", r.error_message())


if __name__ == "__main__":
    unittest.main()
