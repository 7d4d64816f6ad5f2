"""Versions, aliases and provisioned concurrency through boto3 and the aws CLI:
published versions keep their code and configuration, aliases route (with
weights) to versions, and provisioned instances are initialised before the
first call."""

import collections
import json
import time
import unittest

import botocore.exceptions

import os
import tempfile

from harness import (ExecutionTestCase, decode_log_result, function_arn, make_zip, report_line, running_daemon,
                     wait_until)

VERSIONED_PY = """
import os

def handler(event, context):
    return {"code": "%s",
            "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"],
            "init": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"],
            "arn": context.invoked_function_arn}
"""


def code(label):
    return make_zip({"app.py": VERSIONED_PY % label})


class VersionsTest(ExecutionTestCase):

    def make_versions(self, name):
        """Function `name` with version 1 running code "one" and version 2 (and $LATEST) running "two"."""
        self.create_function(name, zip_bytes=code("one"))
        v1 = self.client.publish_version(FunctionName=name, Description="first")
        self.assertEqual(v1["Version"], "1")
        self.client.update_function_code(FunctionName=name, ZipFile=code("two"))
        v2 = self.daemon.aws_json("lambda", "publish-version", "--function-name", name)
        self.assertEqual(v2["Version"], "2")
        return v1, v2

    def test_versions_keep_their_code_and_report_themselves(self):
        v1, v2 = self.make_versions("ver")
        self.assertEqual(v1["FunctionArn"], function_arn("ver", "1"))
        self.assertEqual(v1["Description"], "first")
        self.assertNotEqual(v1["CodeSha256"], v2["CodeSha256"])
        # Publishing again without a change gives the same version back.
        self.assertEqual(self.client.publish_version(FunctionName="ver")["Version"], "2")

        for qualifier, expected in (("1", "one"), ("2", "two"), ("$LATEST", "two"), (None, "two")):
            r, body = self.invoke_ok("ver", qualifier=qualifier, headers={"X-Amz-Log-Type": "Tail"})
            version = qualifier or "$LATEST"
            self.assertEqual(body["code"], expected, qualifier)
            self.assertEqual(body["version"], version)
            self.assertEqual(r.header("X-Amz-Executed-Version"), version)
            self.assertEqual(body["arn"], function_arn("ver", qualifier))
            self.assertIn(f"Version: {version}", decode_log_result(r.header("X-Amz-Log-Result")))

        listed = self.client.list_versions_by_function(FunctionName="ver")["Versions"]
        self.assertEqual([v["Version"] for v in listed], ["$LATEST", "1", "2"])
        self.assertEqual([v["FunctionArn"] for v in listed],
                         [function_arn("ver", q) for q in ("$LATEST", "1", "2")])
        pages = list(self.client.get_paginator("list_versions_by_function").paginate(
            FunctionName="ver", PaginationConfig={"PageSize": 1}))
        self.assertEqual(len(pages), 3)

        got = self.client.get_function(FunctionName="ver", Qualifier="1")["Configuration"]
        self.assertEqual((got["Version"], got["FunctionArn"], got["CodeSha256"]),
                         ("1", function_arn("ver", "1"), v1["CodeSha256"]))
        everything = self.client.list_functions(FunctionVersion="ALL")["Functions"]
        self.assertIn(function_arn("ver", "2"), [f["FunctionArn"] for f in everything])

        # A change to $LATEST does not reach a published version.
        self.client.update_function_configuration(FunctionName="ver", Timeout=9)
        self.assertEqual(self.client.get_function_configuration(FunctionName="ver", Qualifier="2")["Timeout"], 3)

        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            self.client.publish_version(FunctionName="ver", CodeSha256="bm9wZQ==")
        self.assertIn("is different from current CodeSHA256 in $LATEST", str(caught.exception))

        self.client.delete_function(FunctionName="ver", Qualifier="1")
        r = self.invoke("ver", qualifier="1")
        self.assertInvokeError(r, 404, "ResourceNotFoundException", "Function not found: " + function_arn("ver", "1"),
                               message_key="Message")
        self.assertEqual(self.invoke_ok("ver", qualifier="2")[1]["code"], "two")
        self.client.delete_function(FunctionName="ver")

    def test_aliases_route_and_split_traffic(self):
        self.make_versions("ali")
        created = self.daemon.aws_json("lambda", "create-alias", "--function-name", "ali", "--name", "live",
                                       "--function-version", "1")
        self.assertEqual(created["AliasArn"], function_arn("ali", "live"))
        r, body = self.invoke_ok("ali:live")
        self.assertEqual((body["code"], body["version"]), ("one", "1"))
        self.assertEqual(r.header("X-Amz-Executed-Version"), "1")
        self.assertEqual(body["arn"], function_arn("ali", "live"))

        got = self.client.get_function(FunctionName="ali", Qualifier="live")["Configuration"]
        self.assertEqual((got["FunctionArn"], got["Version"]), (function_arn("ali", "live"), "1"))

        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            self.client.update_alias(FunctionName="ali", Name="live", FunctionVersion="2", RevisionId="stale")
        self.assertEqual(caught.exception.response["Error"]["Code"], "PreconditionFailedException")

        updated = self.client.update_alias(FunctionName="ali", Name="live", RevisionId=created["RevisionId"],
                                           RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
        self.assertEqual(updated["RoutingConfig"]["AdditionalVersionWeights"], {"2": 0.5})
        seen = collections.Counter()
        for _ in range(40):
            r, body = self.invoke_ok("ali", qualifier="live")
            self.assertEqual(r.header("X-Amz-Executed-Version"), body["version"])
            seen[body["code"]] += 1
        # Both versions serve (all 40 on one side: probability 2^-39).
        self.assertEqual(set(seen), {"one", "two"}, seen)

        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            self.client.delete_function(FunctionName="ali", Qualifier="2")
        self.assertEqual(caught.exception.response["Error"]["Code"], "ResourceConflictException")
        self.assertIn("[live]", str(caught.exception))

        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            self.client.create_alias(FunctionName="ali", Name="live", FunctionVersion="2")
        self.assertEqual(caught.exception.response["Error"]["Message"],
                         "Alias already exists: " + function_arn("ali", "live"))
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            self.client.create_alias(FunctionName="ali", Name="split", FunctionVersion="$LATEST",
                                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}})
        self.assertIn("$LATEST is not supported", str(caught.exception))

        self.assertEqual([a["Name"] for a in self.client.list_aliases(FunctionName="ali")["Aliases"]], ["live"])
        self.assertEqual(self.client.list_aliases(FunctionName="ali", FunctionVersion="2")["Aliases"][0]["Name"],
                         "live")
        self.client.delete_alias(FunctionName="ali", Name="live")
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            self.client.get_alias(FunctionName="ali", Name="live")
        self.assertEqual(caught.exception.response["Error"]["Code"], "ResourceNotFoundException")
        r = self.invoke("ali:live")
        self.assertInvokeError(r, 404, "ResourceNotFoundException",
                               "Function not found: " + function_arn("ali", "live"), message_key="Message")
        self.client.delete_function(FunctionName="ali")

    def test_provisioned_instances_are_warm_before_the_first_call(self):
        self.make_versions("prov")
        self.client.create_alias(FunctionName="prov", Name="live", FunctionVersion="1")
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            self.client.put_provisioned_concurrency_config(FunctionName="prov", Qualifier="$LATEST",
                                                           ProvisionedConcurrentExecutions=1)
        self.assertIn("cannot be applied to unpublished function versions", str(caught.exception))
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            self.client.get_provisioned_concurrency_config(FunctionName="prov", Qualifier="live")
        self.assertEqual(caught.exception.response["Error"]["Code"], "ProvisionedConcurrencyConfigNotFoundException")

        put = self.client.put_provisioned_concurrency_config(FunctionName="prov", Qualifier="live",
                                                             ProvisionedConcurrentExecutions=2)
        self.assertEqual(put["RequestedProvisionedConcurrentExecutions"], 2)
        self.assertIn(put["Status"], ("IN_PROGRESS", "READY"))

        def ready():
            got = self.client.get_provisioned_concurrency_config(FunctionName="prov", Qualifier="live")
            return got if got["Status"] == "READY" else None
        status = wait_until(ready, timeout=30)
        self.assertTrue(status, "provisioned concurrency never became READY")
        self.assertEqual(status["AvailableProvisionedConcurrentExecutions"], 2)

        # The first call finds an initialised instance: no Init Duration.
        r, body = self.invoke_ok("prov", qualifier="live", headers={"X-Amz-Log-Type": "Tail"})
        self.assertEqual((body["code"], body["init"]), ("one", "provisioned-concurrency"))
        report = report_line(decode_log_result(r.header("X-Amz-Log-Result")), r.header("x-amzn-RequestId"))
        self.assertNotIn("Init Duration", report)
        # $LATEST has no provisioned instances: an on-demand cold start.
        r, body = self.invoke_ok("prov", headers={"X-Amz-Log-Type": "Tail"})
        self.assertEqual(body["init"], "on-demand")
        self.assertIn("Init Duration", report_line(decode_log_result(r.header("X-Amz-Log-Result")),
                                                   r.header("x-amzn-RequestId")))

        listed = self.client.list_provisioned_concurrency_configs(FunctionName="prov")["ProvisionedConcurrencyConfigs"]
        self.assertEqual([c["FunctionArn"] for c in listed], [function_arn("prov", "live")])
        self.assertEqual(self.daemon.metric("nimbus_instances", function="prov"), 3)

        self.client.delete_provisioned_concurrency_config(FunctionName="prov", Qualifier="live")
        with self.assertRaises(botocore.exceptions.ClientError):
            self.client.get_provisioned_concurrency_config(FunctionName="prov", Qualifier="live")
        self.client.delete_function(FunctionName="prov")
        self.assertTrue(wait_until(lambda: self.daemon.metric("nimbus_instances", function="prov") == 0, timeout=10))

    def test_gateway_routes_follow_an_alias(self):
        self.make_versions("gwa")
        self.client.create_alias(FunctionName="gwa", Name="live", FunctionVersion="1")
        rc, out, err = self.daemon.cli("route", "add", "GET /gwa", "--function", "gwa", "--qualifier", "live")
        self.assertEqual(rc, 0, err)
        r = self.daemon.gateway_request("GET", "/gwa")
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json()["code"], r.json()["arn"]), ("one", function_arn("gwa", "live")))
        self.client.update_alias(FunctionName="gwa", Name="live", FunctionVersion="2")
        self.assertEqual(self.daemon.gateway_request("GET", "/gwa").json()["code"], "two")
        rc, out, err = self.daemon.cli("route", "add", "GET /gwb", "--function", "gwa", "--qualifier", "nope")
        self.assertEqual(rc, 1)
        self.assertIn("Function not found: " + function_arn("gwa", "nope"), err)
        self.daemon.cli("route", "rm", "GET /gwa")
        self.client.delete_function(FunctionName="gwa")

    def test_cli_publishes_aliases_and_provisions(self):
        with tempfile.TemporaryDirectory() as src:
            with open(os.path.join(src, "app.py"), "w") as f:
                f.write(VERSIONED_PY % "cli")
            rc, out, err = self.daemon.cli("deploy", src, "--name", "clv", "--runtime", "python3.12",
                                           "--handler", "app.handler", "--publish")
        self.assertEqual(rc, 0, err)
        self.assertIn("published version 1", out)
        rc, out, err = self.daemon.cli("alias", "set", "clv", "live", "1")
        self.assertEqual(rc, 0, err)
        self.assertIn(function_arn("clv", "live"), out)
        rc, out, err = self.daemon.cli("alias", "ls", "clv")
        self.assertRegex(out, r"live\s+1")
        rc, out, err = self.daemon.cli("invoke", "clv:live")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["version"], "1")
        rc, out, err = self.daemon.cli("provision", "clv:live", "1")
        self.assertEqual(rc, 0, err)
        self.assertTrue(wait_until(lambda: self.client.get_provisioned_concurrency_config(
            FunctionName="clv", Qualifier="live")["Status"] == "READY", timeout=30))
        rc, out, err = self.daemon.cli("provision", "clv", "1")
        self.assertEqual(rc, 1)
        self.assertIn("expected NAME:VERSION or NAME:ALIAS", err)
        rc, out, err = self.daemon.cli("alias", "set", "clv", "bad", "7")
        self.assertEqual(rc, 1)
        self.assertIn("ResourceNotFoundException", err)
        rc, out, err = self.daemon.cli("provision", "clv:live", "0")
        self.assertEqual(rc, 0, err)
        rc, out, err = self.daemon.cli("alias", "rm", "clv", "live")
        self.assertEqual(rc, 0, err)
        self.client.delete_function(FunctionName="clv")


class ProvisionedRestartTest(unittest.TestCase):

    def test_provisioned_instances_come_back_after_a_restart(self):
        data_dir = tempfile.mkdtemp(prefix="nimbus-it-prov-")
        self.addCleanup(lambda: __import__("shutil").rmtree(data_dir, ignore_errors=True))
        with running_daemon(data_dir=data_dir) as d:
            client = d.boto3_client("lambda")
            client.create_function(FunctionName="pr", Runtime="python3.12", Role="arn:aws:iam::000000000000:role/r",
                                   Handler="app.handler", Code={"ZipFile": code("kept")}, Publish=True)
            client.put_provisioned_concurrency_config(FunctionName="pr", Qualifier="1",
                                                      ProvisionedConcurrentExecutions=1)
            client.close()
        with running_daemon(data_dir=data_dir) as d:
            client = d.boto3_client("lambda")
            self.addCleanup(client.close)
            self.assertTrue(wait_until(lambda: client.get_provisioned_concurrency_config(
                FunctionName="pr", Qualifier="1")["Status"] == "READY", timeout=30))
            r = d.invoke("pr", qualifier="1", headers={"X-Amz-Log-Type": "Tail"})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["init"], "provisioned-concurrency")
            self.assertNotIn("Init Duration", report_line(decode_log_result(r.header("X-Amz-Log-Result")),
                                                          r.header("x-amzn-RequestId")))


if __name__ == "__main__":
    unittest.main()
