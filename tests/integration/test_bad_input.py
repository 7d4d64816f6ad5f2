"""Bad requests and authentication, over raw HTTP (SigV4-signed with botocore's
signer) and boto3. Every rejected request must leave no trace and the daemon
must keep answering."""

import base64
import datetime
import io
import json
import os
import re
import unittest
import zipfile

import botocore
import botocore.exceptions

from harness import (DaemonTestCase, ROLE, create_function_body, function_arn, make_zip, python_zip, sha256_b64)

FUNCTIONS = "/2015-03-31/functions"
CREATE_LIMIT = 70167211  # bytes, CreateFunction request
ZIPPED_LIMIT = 52428800  # bytes, Code.ZipFile after base64 decoding


class BadInputTestBase(DaemonTestCase):

    def assertErrorResponse(self, r, status, error_type, *fragments, message_key="message"):
        """Status, x-amzn-ErrorType, x-amzn-RequestId and a JSON body whose message has every fragment."""
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.header("x-amzn-ErrorType"), error_type, r)
        self.assertTrue(r.header("x-amzn-RequestId"), r)
        self.assertTrue((r.header("Content-Type") or "").startswith("application/json"), r)
        body = r.json()
        self.assertIsInstance(body, dict, r)
        self.assertEqual(body.get("Type"), "User", r)
        self.assertIn(message_key, body, r)
        for fragment in fragments:
            self.assertIn(fragment, body[message_key], r)
        return body[message_key]

    def rejected(self, method, path, body, status, error_type, *fragments, message_key="message", **kwargs):
        """Sends one bad request; asserts the error, that nothing was created, and that the daemon still answers."""
        before = self.daemon.list_function_names()
        if isinstance(body, dict):
            body = json.dumps(body)
        r = self.daemon.request(method, path, body, **kwargs)
        message = self.assertErrorResponse(r, status, error_type, *fragments, message_key=message_key)
        self.assertTrue(self.daemon.alive(), "daemon exited after a bad request")
        self.assertEqual(self.daemon.list_function_names(), before, "a rejected request changed the function list")
        return message

    def rejected_create(self, body, status, error_type, *fragments, **kwargs):
        message = self.rejected("POST", FUNCTIONS, body, status, error_type, *fragments, **kwargs)
        if isinstance(body, dict) and isinstance(body.get("FunctionName"), str) and body["FunctionName"]:
            name = body["FunctionName"]
            if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
                self.assertNoFunction(name)
        return message


class CreateFunctionBadInputTest(BadInputTestBase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.existing_zip = python_zip(body="return 'existing'")
        cls.existing = cls.client.create_function(FunctionName="existing", Runtime="python3.12", Role=ROLE,
                                                  Handler="app.handler", Code={"ZipFile": cls.existing_zip})

    # -- body shape ----------------------------------------------------------

    def test_malformed_json(self):
        self.rejected_create('{"FunctionName": "mal", ', 400, "InvalidRequestContentException",
                             "Could not parse request body into json")
        self.rejected_create("{bad", 400, "InvalidRequestContentException", "Could not parse request body into json")

    def test_json_that_is_not_an_object(self):
        self.rejected_create("[1, 2]", 400, "InvalidRequestContentException")

    def test_wrong_member_type_names_the_member(self):
        # Member names in Lambda's validation messages are camelCase: 'timeout' (reference §4.1).
        self.rejected_create(create_function_body("wrongtype", Timeout="abc"), 400, "ValidationException",
                             "'timeout'")

    def test_wrong_nested_type(self):
        message = self.rejected_create(create_function_body("wrongenv", Environment={"Variables": {"K1": 5}}),
                                       400, "ValidationException")
        self.assertIn("environment.variables", message.lower())

    def test_body_that_is_not_utf8(self):
        # Not JSON text (RFC 8259 requires UTF-8): a client error, not a 500 the SDKs would retry.
        self.rejected_create(b'{"FunctionName": "\xff\xfe"}', 400, "InvalidRequestContentException")
        self.rejected("PUT", f"{FUNCTIONS}/existing/configuration", b'{"Description": "\xff"}', 400,
                      "InvalidRequestContentException")

    def test_errors_quoting_non_ascii_values(self):
        # The messages quote (and shorten) the offending value; multi-byte text must survive that.
        self.rejected_create(create_function_body("utf8type", Timeout="a" + "\u00e9" * 100), 400,
                             "ValidationException")
        self.rejected_create(create_function_body("utf8desc", Description="a" + "\u00e9" * 300), 400,
                             "ValidationException", "'description'")

    def test_description_length_counts_characters(self):
        # Description is 0-256 characters; 200 two-byte characters are within it.
        text = "\u00e9" * 200
        r = self.daemon.request("POST", FUNCTIONS, json.dumps(create_function_body("desc-chars", Description=text)))
        self.assertEqual(r.status, 201, r)
        self.addCleanup(self.client.delete_function, FunctionName="desc-chars")
        self.assertEqual(r.json()["Description"], text)

    def test_unknown_top_level_field_is_named(self):
        self.rejected_create(create_function_body("unknownfield", NotAMember=True), 400,
                             "InvalidRequestContentException", "NotAMember")

    def test_missing_required_members(self):
        body = create_function_body("norole")
        del body["Role"]
        self.rejected_create(body, 400, "ValidationException", "'role'")
        body = create_function_body("nocode")
        del body["Code"]
        self.rejected_create(body, 400, "ValidationException", "'code'")

    # -- code package --------------------------------------------------------

    def test_invalid_base64_zip_file(self):
        body = create_function_body("badb64")
        body["Code"]["ZipFile"] = "!!!this is not base64!!!"
        self.rejected_create(body, 400, "InvalidParameterValueException", "base64")

    def test_corrupt_zip(self):
        good = python_zip(extra={"data.txt": "hello world " * 200})
        flipped = bytearray(good)
        start = good.index(b"data.txt") + 40
        for i in range(start, start + 20):
            flipped[i] ^= 0xFF
        for name, data in (("notzip", b"this is not a zip file at all"),
                           ("truncated", good[: len(good) // 2]),
                           ("flipped", bytes(flipped)),
                           ("fakeheader", b"PK\x03\x04" + b"\x00" * 100)):
            with self.subTest(name=name):
                self.rejected_create(create_function_body(f"corrupt-{name}", data), 400,
                                     "InvalidParameterValueException",
                                     "Could not unzip uploaded file. Please check your file, then try to upload "
                                     "again.")

    def test_zip_slip_entry_is_named(self):
        for entry in ("../evil.py", "lib/../../evil.py", "/abs/evil.py"):
            with self.subTest(entry=entry):
                zip_bytes = make_zip(files={"app.py": "x = 1\n"}, raw_names={entry: "print('pwned')\n"})
                self.rejected_create(create_function_body("zipslip", zip_bytes), 400,
                                     "InvalidParameterValueException", entry)
        self.assertFalse(os.path.exists(os.path.join(os.path.dirname(self.daemon.data_dir), "evil.py")))

    def test_symlink_entry_pointing_outside(self):
        for target in ("/etc/passwd", "../../../etc/passwd"):
            with self.subTest(target=target):
                zip_bytes = make_zip(files={"app.py": "x = 1\n"}, symlinks={"passwd": target})
                self.rejected_create(create_function_body("symlink", zip_bytes), 400,
                                     "InvalidParameterValueException", "passwd")
        # A symlink that stays inside the package is fine.
        inside = make_zip(files={"app.py": "x = 1\n"}, symlinks={"link.py": "app.py"})
        r = self.daemon.request("POST", FUNCTIONS, json.dumps(create_function_body("symlink-inside", inside)))
        self.assertEqual(r.status, 201, r)
        self.client.delete_function(FunctionName="symlink-inside")

    def test_zip_file_over_50_mb_is_too_large(self):
        # A valid stored zip whose only fault is its size.
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr("app.py", "def handler(event, context):\n    pass\n")
            zf.writestr("blob.bin", os.urandom(ZIPPED_LIMIT + 1024 - 200))
        big = buf.getvalue()
        self.assertGreater(len(big), ZIPPED_LIMIT)
        body = json.dumps(create_function_body("toolarge", big))
        self.assertLess(len(body), CREATE_LIMIT)
        self.rejected_create(body, 413, "RequestEntityTooLargeException",
                             f"Zipped size must be smaller than {ZIPPED_LIMIT} bytes")

    def test_content_length_over_the_request_limit(self):
        # The server must answer 413 from the header alone, before reading the body.
        before = self.daemon.list_function_names()
        raw = self.daemon.raw_exchange(
            ("POST /2015-03-31/functions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             f"Content-Length: {CREATE_LIMIT + 1}\r\n\r\n").encode() + b"{}")
        self.assertTrue(raw.startswith(b"HTTP/1.1 413 "), raw[:500])
        head, _, payload = raw.partition(b"\r\n\r\n")
        self.assertIn(b"x-amzn-errortype: requestentitytoolargeexception", head.lower(), raw[:500])
        self.assertIn(str(CREATE_LIMIT).encode(), payload, raw[:500])
        self.assertEqual(self.daemon.list_function_names(), before)

    # -- configuration limits ------------------------------------------------

    def test_timeout_and_memory_out_of_range(self):
        cases = [
            ({"Timeout": 901}, "'901' at 'timeout'", "less than or equal to 900"),
            ({"Timeout": 0}, "'0' at 'timeout'", "greater than or equal to 1"),
            ({"MemorySize": 64}, "'64' at 'memorySize'", "greater than or equal to 128"),
            ({"MemorySize": 20000}, "'20000' at 'memorySize'", "less than or equal to 10240"),
        ]
        for overrides, member, rule in cases:
            with self.subTest(**overrides):
                self.rejected_create(create_function_body("range", **overrides), 400, "ValidationException",
                                     "1 validation error detected", member, rule)

    def test_unknown_runtime_lists_supported(self):
        self.rejected_create(create_function_body("cobolfn", Runtime="cobol85"), 400,
                             "InvalidParameterValueException", "cobol85", "'runtime'", "python3.12")

    def test_environment_over_4kb(self):
        self.rejected_create(create_function_body("bigenv", Environment={"Variables": {"BIG": "x" * 4100}}), 400,
                             "InvalidParameterValueException", "exceeded the 4KB limit")
        # Many small variables adding up count too.
        many = {f"VAR_{i:03d}": "v" * 40 for i in range(100)}
        self.rejected_create(create_function_body("manyenv", Environment={"Variables": many}), 400,
                             "InvalidParameterValueException", "4KB")

    def test_reserved_environment_key(self):
        self.rejected_create(create_function_body("reserved", Environment={"Variables": {"AWS_REGION": "x"}}), 400,
                             "InvalidParameterValueException", "AWS_REGION")

    def test_duplicate_name_conflicts(self):
        self.rejected("POST", FUNCTIONS, create_function_body("existing", python_zip(body="return 'other'")), 409,
                      "ResourceConflictException", "existing")
        # The original is untouched.
        config = self.client.get_function_configuration(FunctionName="existing")
        self.assertEqual(config["CodeSha256"], sha256_b64(self.existing_zip))
        self.assertEqual(config["RevisionId"], self.existing["RevisionId"])

    def test_bad_function_names(self):
        for name in ("bad name", "bad/name", "bad.name", "x" * 65, "ünïcode"):
            with self.subTest(name=name):
                self.rejected_create(create_function_body(name), 400, "ValidationException", "'functionName'")
        self.assertNotIn("x" * 64, self.daemon.list_function_names())

    # -- updates leave the function as it was --------------------------------

    def test_bad_updates_leave_the_function_unchanged(self):
        path = f"{FUNCTIONS}/existing"
        before = self.client.get_function_configuration(FunctionName="existing")
        self.rejected("PUT", path + "/configuration", {"Timeout": 901}, 400, "ValidationException", "'timeout'")
        self.rejected("PUT", path + "/configuration", {"MemorySize": 64}, 400, "ValidationException",
                      "'memorySize'")
        self.rejected("PUT", path + "/configuration", {"Runtime": "cobol85"}, 400,
                      "InvalidParameterValueException", "cobol85")
        self.rejected("PUT", path + "/configuration", {"Environment": {"Variables": {"AWS_REGION": "x"}}}, 400,
                      "InvalidParameterValueException", "AWS_REGION")
        self.rejected("PUT", path + "/configuration", "{nope", 400, "InvalidRequestContentException")
        self.rejected("PUT", path + "/code", {"ZipFile": base64.b64encode(b"not a zip").decode()}, 400,
                      "InvalidParameterValueException", "Could not unzip uploaded file")
        self.rejected("PUT", path + "/code", {"ZipFile": "%%%"}, 400, "InvalidParameterValueException", "base64")
        slip = make_zip(raw_names={"../evil.py": "x"})
        self.rejected("PUT", path + "/code", {"ZipFile": base64.b64encode(slip).decode()}, 400,
                      "InvalidParameterValueException", "../evil.py")
        after = self.client.get_function_configuration(FunctionName="existing")
        before.pop("ResponseMetadata")
        after.pop("ResponseMetadata")
        self.assertEqual(after, before)

    def test_unknown_function_errors(self):
        self.rejected("GET", f"{FUNCTIONS}/no-such-fn", b"", 404, "ResourceNotFoundException",
                      f"Function not found: {function_arn('no-such-fn')}", message_key="Message")
        self.rejected("PUT", f"{FUNCTIONS}/no-such-fn/configuration", {"Timeout": 5}, 404,
                      "ResourceNotFoundException", message_key="Message")
        self.rejected("DELETE", f"{FUNCTIONS}/no-such-fn", b"", 404, "ResourceNotFoundException",
                      message_key="Message")

    # -- the same through boto3 ----------------------------------------------

    def test_boto3_sees_modeled_errors(self):
        def create(**overrides):
            params = dict(FunctionName="b3bad", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                          Code={"ZipFile": python_zip()})
            params.update(overrides)
            return self.client.create_function(**params)

        with self.assertRaises(self.client.exceptions.InvalidParameterValueException) as ctx:
            create(Runtime="cobol85")
        self.assertEqual(ctx.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)
        self.assertIn("python3.12", ctx.exception.response["Error"]["Message"])
        # The modeled member keeps its casing (reference §1.4).
        self.assertIn("message", ctx.exception.response)

        with self.assertRaises(self.client.exceptions.InvalidParameterValueException) as ctx:
            create(Code={"ZipFile": b"garbage"})
        self.assertIn("Could not unzip", ctx.exception.response["Error"]["Message"])

        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            create(Timeout=901)
        self.assertEqual(ctx.exception.response["Error"]["Code"], "ValidationException")

        with self.assertRaises(self.client.exceptions.ResourceConflictException) as ctx:
            create(FunctionName="existing")
        self.assertEqual(ctx.exception.response["ResponseMetadata"]["HTTPStatusCode"], 409)

        self.assertNoFunction("b3bad")


class AuthTest(BadInputTestBase):

    def test_unsigned_request_is_rejected(self):
        r = self.daemon.request("GET", FUNCTIONS + "/", sign=False)
        self.assertErrorResponse(r, 403, "MissingAuthenticationTokenException")
        self.rejected_create(create_function_body("unsigned"), 403, "MissingAuthenticationTokenException",
                             sign=False)

    def test_wrong_secret_is_rejected(self):
        key, _ = self.daemon.credentials
        wrong = (key, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
        self.rejected_create(create_function_body("wrongsecret"), 403, "InvalidSignatureException",
                             "The request signature we calculated does not match", credentials=wrong)
        client = self.daemon.boto3_client("lambda", credentials=wrong)
        self.addCleanup(client.close)
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            client.list_functions()
        self.assertEqual(ctx.exception.response["Error"]["Code"], "InvalidSignatureException")
        self.assertEqual(ctx.exception.response["ResponseMetadata"]["HTTPStatusCode"], 403)

    def test_unknown_access_key_is_rejected(self):
        unknown = ("AKIDUNKNOWNKEY000000", self.daemon.credentials[1])
        self.rejected_create(create_function_body("unknownkey"), 403, "UnrecognizedClientException",
                             "The security token included in the request is invalid.", credentials=unknown)
        client = self.daemon.boto3_client("lambda", credentials=unknown)
        self.addCleanup(client.close)
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            client.get_account_settings()
        self.assertEqual(ctx.exception.response["Error"]["Code"], "UnrecognizedClientException")
        rc, _, err = self.daemon.aws("lambda", "list-functions", credentials=unknown)
        self.assertEqual(rc, 254, err)
        self.assertIn("UnrecognizedClientException", err)

    def test_tampered_body_is_rejected(self):
        signed = json.dumps(create_function_body("tampered", Timeout=3))
        sent = json.dumps(create_function_body("tampered", Timeout=9))
        self.rejected_create(signed, 403, "InvalidSignatureException", send_body=sent.encode())

    def test_stale_signature_is_rejected(self):
        an_hour_ago = datetime.datetime.utcnow() - datetime.timedelta(hours=1)
        r = self.daemon.request("GET", FUNCTIONS + "/", signed_at=an_hour_ago)
        self.assertErrorResponse(r, 403, "InvalidSignatureException")
        # Within the allowed skew it passes.
        recent = datetime.datetime.utcnow() - datetime.timedelta(seconds=30)
        self.assertEqual(self.daemon.request("GET", FUNCTIONS + "/", signed_at=recent).status, 200)

    def test_signed_request_succeeds(self):
        r = self.daemon.request("GET", FUNCTIONS + "/")
        self.assertEqual(r.status, 200, r)
        self.assertIn("Functions", r.json())


class InsecureNoAuthTest(BadInputTestBase):
    daemon_args = ("--insecure-no-auth",)

    def test_unsigned_requests_succeed(self):
        r = self.daemon.request("POST", FUNCTIONS, json.dumps(create_function_body("open-fn")), sign=False)
        self.assertEqual(r.status, 201, r)
        r = self.daemon.request("GET", f"{FUNCTIONS}/open-fn", sign=False)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["Configuration"]["FunctionName"], "open-fn")
        client = self.daemon.boto3_client("lambda", signature_version=botocore.UNSIGNED)
        self.addCleanup(client.close)
        self.assertIn("open-fn", [f["FunctionName"] for f in client.list_functions()["Functions"]])
        client.delete_function(FunctionName="open-fn")
        self.assertNoFunction("open-fn")

    def test_validation_still_applies(self):
        self.rejected_create(create_function_body("open-bad", Timeout=901), 400, "ValidationException",
                             "'timeout'", sign=False)


if __name__ == "__main__":
    unittest.main()
