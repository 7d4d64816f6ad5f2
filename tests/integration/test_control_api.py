"""The Lambda control API driven by Debian's aws CLI 2.9 (/usr/bin/aws)."""

import hashlib
import base64
import unittest
import urllib.request

from harness import (DaemonTestCase, LAST_MODIFIED_RE, ROLE, UUID_RE, function_arn, make_zip, python_zip,
                     sha256_b64)

# CLI 2.9 exit code for an error returned by the service ([doc]: 254).
CLI_SERVICE_ERROR = 254


class ControlApiCliTest(DaemonTestCase):

    def create(self, name, zip_bytes=None, *extra):
        zip_bytes = zip_bytes if zip_bytes is not None else python_zip()
        path = self.write_file(f"{name}.zip", zip_bytes)
        out = self.daemon.aws_json("lambda", "create-function", "--function-name", name, "--runtime", "python3.12",
                                   "--role", ROLE, "--handler", "app.handler", "--zip-file", f"fileb://{path}",
                                   *extra)
        return out, zip_bytes

    def download(self, location):
        self.assertTrue(location.startswith("http://"), location)
        with urllib.request.urlopen(location, timeout=10) as resp:
            self.assertEqual(resp.status, 200)
            return resp.read()

    def test_create_then_get_function_and_download_code(self):
        zip_bytes = python_zip(extra={"lib/util.py": "X = 1\n"})
        created, _ = self.create("cli-get", zip_bytes, "--description", "from the cli")
        self.assertEqual(created["FunctionName"], "cli-get")
        self.assertEqual(created["FunctionArn"], function_arn("cli-get"))
        self.assertEqual(created["Runtime"], "python3.12")
        self.assertEqual(created["Handler"], "app.handler")
        self.assertEqual(created["Role"], ROLE)
        self.assertEqual(created["Description"], "from the cli")
        self.assertEqual(created["CodeSize"], len(zip_bytes))
        self.assertEqual(created["CodeSha256"], sha256_b64(zip_bytes))
        self.assertEqual(created["Version"], "$LATEST")
        self.assertEqual(created["State"], "Active")
        self.assertRegex(created["LastModified"], LAST_MODIFIED_RE)
        self.assertRegex(created["RevisionId"], UUID_RE)

        got = self.daemon.aws_json("lambda", "get-function", "--function-name", "cli-get")
        # Reads add LastUpdateStatus, which Lambda's create answer lacks.
        self.assertNotIn("LastUpdateStatus", created)
        self.assertEqual(got["Configuration"]["LastUpdateStatus"], "Successful")
        self.assertEqual({k: v for k, v in got["Configuration"].items() if k != "LastUpdateStatus"}, created)
        self.assertEqual(got["Code"]["RepositoryType"], "S3")
        downloaded = self.download(got["Code"]["Location"])
        self.assertEqual(downloaded, zip_bytes)
        self.assertEqual(base64.b64encode(hashlib.sha256(downloaded).digest()).decode(),
                         got["Configuration"]["CodeSha256"])

        config = self.daemon.aws_json("lambda", "get-function-configuration", "--function-name", "cli-get")
        self.assertEqual(config, got["Configuration"])

        # The full ARN names the same function.
        by_arn = self.daemon.aws_json("lambda", "get-function-configuration", "--function-name",
                                      function_arn("cli-get"))
        self.assertEqual(by_arn["CodeSha256"], created["CodeSha256"])

    def test_list_functions_pages_through_every_function(self):
        names = ["cli-list-a", "cli-list-b", "cli-list-c"]
        for n in names:
            self.create(n)
        # --page-size 1 makes the CLI send MaxItems=1 and follow NextMarker.
        out = self.daemon.aws_json("lambda", "list-functions", "--page-size", "1")
        listed = [f["FunctionName"] for f in out["Functions"]]
        for n in names:
            self.assertEqual(listed.count(n), 1, listed)
        self.assertEqual(listed, sorted(listed))
        row = next(f for f in out["Functions"] if f["FunctionName"] == "cli-list-b")
        self.assertEqual(row["FunctionArn"], function_arn("cli-list-b"))
        self.assertEqual(row["Runtime"], "python3.12")
        self.assertEqual(row["MemorySize"], 128)
        # List rows omit State* and LastUpdateStatus* (reference §2.2).
        self.assertNotIn("State", row)
        self.assertNotIn("LastUpdateStatus", row)

    def test_update_function_configuration(self):
        created, _ = self.create("cli-config")
        out = self.daemon.aws_json("lambda", "update-function-configuration", "--function-name", "cli-config",
                                   "--timeout", "30", "--memory-size", "256", "--description", "updated",
                                   "--environment", "Variables={GREETING=hello,COLOR=blue}")
        self.assertEqual(out["Timeout"], 30)
        self.assertEqual(out["MemorySize"], 256)
        self.assertEqual(out["Description"], "updated")
        self.assertEqual(out["Environment"]["Variables"], {"GREETING": "hello", "COLOR": "blue"})
        self.assertRegex(out["RevisionId"], UUID_RE)
        self.assertNotEqual(out["RevisionId"], created["RevisionId"])
        self.assertRegex(out["LastModified"], LAST_MODIFIED_RE)
        self.assertGreaterEqual(out["LastModified"], created["LastModified"])
        self.assertEqual(out["CodeSha256"], created["CodeSha256"])

        config = self.daemon.aws_json("lambda", "get-function-configuration", "--function-name", "cli-config")
        for key in ("Timeout", "MemorySize", "Description", "Environment", "RevisionId", "LastModified"):
            self.assertEqual(config[key], out[key], key)
        self.assertEqual(config["LastUpdateStatus"], "Successful")

        # A given Environment replaces the whole map; other settings stay.
        again = self.daemon.aws_json("lambda", "update-function-configuration", "--function-name", "cli-config",
                                     "--environment", "Variables={ONLY=one}")
        self.assertEqual(again["Environment"]["Variables"], {"ONLY": "one"})
        self.assertEqual(again["Timeout"], 30)
        self.assertNotEqual(again["RevisionId"], out["RevisionId"])

    def test_update_function_code(self):
        created, old_zip = self.create("cli-code")
        new_zip = python_zip(body="return {'version': 2}")
        self.assertNotEqual(new_zip, old_zip)
        path = self.write_file("cli-code-v2.zip", new_zip)
        out = self.daemon.aws_json("lambda", "update-function-code", "--function-name", "cli-code",
                                   "--zip-file", f"fileb://{path}")
        self.assertEqual(out["CodeSha256"], sha256_b64(new_zip))
        self.assertNotEqual(out["CodeSha256"], created["CodeSha256"])
        self.assertEqual(out["CodeSize"], len(new_zip))
        self.assertNotEqual(out["RevisionId"], created["RevisionId"])
        self.assertRegex(out["LastModified"], LAST_MODIFIED_RE)

        got = self.daemon.aws_json("lambda", "get-function", "--function-name", "cli-code")
        self.assertEqual(got["Configuration"]["CodeSha256"], sha256_b64(new_zip))
        self.assertEqual(self.download(got["Code"]["Location"]), new_zip)

    def test_tags(self):
        self.create("cli-tags", None, "--tags", "team=core")
        arn = function_arn("cli-tags")
        self.assertEqual(self.daemon.aws_json("lambda", "list-tags", "--resource", arn), {"Tags": {"team": "core"}})

        self.assertIsNone(self.daemon.aws_json("lambda", "tag-resource", "--resource", arn,
                                               "--tags", "env=prod,owner=alice"))
        self.assertEqual(self.daemon.aws_json("lambda", "list-tags", "--resource", arn)["Tags"],
                         {"team": "core", "env": "prod", "owner": "alice"})

        self.assertIsNone(self.daemon.aws_json("lambda", "untag-resource", "--resource", arn,
                                               "--tag-keys", "team", "owner"))
        self.assertEqual(self.daemon.aws_json("lambda", "list-tags", "--resource", arn)["Tags"], {"env": "prod"})
        got = self.daemon.aws_json("lambda", "get-function", "--function-name", "cli-tags")
        self.assertEqual(got.get("Tags"), {"env": "prod"})

        rc, _, err = self.daemon.aws("lambda", "list-tags", "--resource", function_arn("cli-tags-missing"))
        self.assertEqual(rc, CLI_SERVICE_ERROR, err)
        self.assertIn("ResourceNotFoundException", err)

    def test_account_settings_count_functions_and_code(self):
        before = self.daemon.aws_json("lambda", "get-account-settings")
        self.assertEqual(before["AccountLimit"]["CodeSizeZipped"], 52428800)
        self.assertEqual(before["AccountLimit"]["CodeSizeUnzipped"], 262144000)
        created, zip_bytes = self.create("cli-account", make_zip({"app.py": "def handler(e, c):\n    pass\n",
                                                                  "pad.txt": "account " * 50}))
        after = self.daemon.aws_json("lambda", "get-account-settings")
        self.assertEqual(after["AccountUsage"]["FunctionCount"], before["AccountUsage"]["FunctionCount"] + 1)
        self.assertEqual(after["AccountUsage"]["TotalCodeSize"],
                         before["AccountUsage"]["TotalCodeSize"] + len(zip_bytes))
        self.daemon.aws_json("lambda", "delete-function", "--function-name", "cli-account")
        final = self.daemon.aws_json("lambda", "get-account-settings")
        self.assertEqual(final["AccountUsage"]["FunctionCount"], before["AccountUsage"]["FunctionCount"])

    def test_delete_function_then_get_is_not_found(self):
        self.create("cli-delete")
        rc, out, err = self.daemon.aws("lambda", "delete-function", "--function-name", "cli-delete")
        self.assertEqual((rc, out.strip()), (0, ""), err)

        rc, out, err = self.daemon.aws("lambda", "get-function", "--function-name", "cli-delete")
        self.assertEqual(rc, CLI_SERVICE_ERROR, (out, err))
        self.assertEqual(out, "")
        self.assertIn("An error occurred (ResourceNotFoundException) when calling the GetFunction operation", err)
        self.assertIn(f"Function not found: {function_arn('cli-delete')}", err)

        rc, _, err = self.daemon.aws("lambda", "delete-function", "--function-name", "cli-delete")
        self.assertEqual(rc, CLI_SERVICE_ERROR, err)
        self.assertIn("ResourceNotFoundException", err)
        self.assertNotIn("cli-delete", self.daemon.list_function_names())


if __name__ == "__main__":
    unittest.main()
