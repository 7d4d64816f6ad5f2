"""The `nimbus` command (deploy, ls, describe, rm, --help) and durability
of functions across daemon restarts."""

import io
import json
import os
import re
import signal
import unittest
import urllib.error
import urllib.request
import zipfile

from harness import Daemon, DaemonTestCase, function_arn, make_zip, sha256_b64

APP_PY = "def handler(event, context):\n    return {'hello': event.get('name', 'world')}\n"
HELPER_PY = "GREETING = 'hi'\n"


class NimbusCliTest(DaemonTestCase):

    def make_dir(self, name, files=None):
        files = files or {"app.py": APP_PY, "pkg/helper.py": HELPER_PY}
        for rel, content in files.items():
            self.write_file(os.path.join(name, rel), content)
        return os.path.join(self.workdir, name)

    def deploy(self, path, name, *extra, expect_rc=0):
        rc, out, err = self.daemon.cli("deploy", path, "--name", name, *extra)
        self.assertEqual(rc, expect_rc, f"stdout: {out}\nstderr: {err}")
        return out, err

    def test_deploy_directory_creates_then_updates(self):
        src = self.make_dir("deploy-src")
        out, _ = self.deploy(src, "cli-deploy", "--runtime", "python3.12", "--handler", "app.handler")
        self.assertIn("cli-deploy", out)
        first = self.client.get_function(FunctionName="cli-deploy")
        config = first["Configuration"]
        self.assertEqual((config["Runtime"], config["Handler"]), ("python3.12", "app.handler"))
        self.assertEqual((config["MemorySize"], config["Timeout"]), (128, 3))
        self.assertIn(config["CodeSha256"], out)

        # The zip holds the directory's files under their relative paths.
        with urllib.request.urlopen(first["Code"]["Location"], timeout=10) as resp:
            zip_bytes = resp.read()
        self.assertEqual(sha256_b64(zip_bytes), config["CodeSha256"])
        with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
            self.assertEqual(sorted(zf.namelist()), ["app.py", "pkg/helper.py"])
            self.assertEqual(zf.read("app.py").decode(), APP_PY)
            self.assertEqual(zf.read("pkg/helper.py").decode(), HELPER_PY)

        # Same directory again with new settings: an update, same deterministic zip.
        out, _ = self.deploy(src, "cli-deploy", "--runtime", "python3.12", "--handler", "app.handler",
                             "--memory", "256", "--timeout", "20", "--env", "COLOR=blue", "--env", "SIZE=10",
                             "--description", "second deploy")
        self.assertIn("updated", out)
        second = self.client.get_function_configuration(FunctionName="cli-deploy")
        self.assertEqual(second["MemorySize"], 256)
        self.assertEqual(second["Timeout"], 20)
        self.assertEqual(second["Environment"]["Variables"], {"COLOR": "blue", "SIZE": "10"})
        self.assertEqual(second["Description"], "second deploy")
        self.assertEqual(second["Runtime"], "python3.12")
        self.assertEqual(second["Handler"], "app.handler")
        self.assertEqual(second["CodeSha256"], config["CodeSha256"])
        self.assertNotEqual(second["RevisionId"], config["RevisionId"])

        # Changed code: a new CodeSha256.
        self.write_file("deploy-src/app.py", APP_PY + "# v2\n")
        self.deploy(src, "cli-deploy", "--runtime", "python3.12", "--handler", "app.handler")
        third = self.client.get_function_configuration(FunctionName="cli-deploy")
        self.assertNotEqual(third["CodeSha256"], config["CodeSha256"])
        self.assertEqual(third["MemorySize"], 256)

    def test_deploy_with_a_function_url(self):
        src = self.make_dir("url-src", {"app.py": "def handler(e, c):\n    return {'statusCode': 200, 'body': 'by url'}\n"})
        out, _ = self.deploy(src, "cli-url", "--runtime", "python3.12", "--handler", "app.handler", "--url", "none")
        url = re.search(r"url: (http://\S+) \(auth NONE\)", out)
        self.assertIsNotNone(url, out)
        with urllib.request.urlopen(url.group(1) + "x", timeout=10) as resp:
            self.assertEqual(resp.read(), b"by url")
        # Deployed again with iam: the same URL, now refusing unsigned requests.
        out, _ = self.deploy(src, "cli-url", "--runtime", "python3.12", "--handler", "app.handler", "--url", "iam")
        self.assertIn(f"url: {url.group(1)} (auth AWS_IAM)", out)
        with self.assertRaises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url.group(1) + "x", timeout=10)
        self.assertEqual(refused.exception.code, 403)

    def test_deploy_directory_with_symlink(self):
        src = self.make_dir("symlink-src")
        os.symlink("app.py", os.path.join(src, "alias.py"))
        self.deploy(src, "cli-symlink", "--runtime", "python3.12", "--handler", "alias.handler")
        got = self.client.get_function(FunctionName="cli-symlink")
        with urllib.request.urlopen(got["Code"]["Location"], timeout=10) as resp:
            zip_bytes = resp.read()
        with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
            names = zf.namelist()
            self.assertEqual(sorted(names), ["alias.py", "app.py", "pkg/helper.py"], names)
            link = zf.getinfo("alias.py")
            if (link.external_attr >> 16) & 0o170000 == 0o120000:
                self.assertEqual(zf.read(link), b"app.py")  # stored as a symlink
            else:
                self.assertEqual(zf.read(link).decode(), APP_PY)  # or as the file it points to

    def test_redeploy_without_runtime_and_handler_updates(self):
        # `deploy --help`: --runtime and --handler are "required on create" only.
        src = self.make_dir("redeploy-src")
        self.deploy(src, "cli-redeploy", "--runtime", "python3.12", "--handler", "app.handler")
        before = self.client.get_function_configuration(FunctionName="cli-redeploy")
        out, _ = self.deploy(src, "cli-redeploy", "--memory", "1024")
        self.assertIn("updated", out)
        after = self.client.get_function_configuration(FunctionName="cli-redeploy")
        self.assertEqual(after["MemorySize"], 1024)
        self.assertEqual((after["Runtime"], after["Handler"]), ("python3.12", "app.handler"))
        self.assertEqual(after["CodeSha256"], before["CodeSha256"])

    def test_deploy_zip_file_uploads_it_as_is(self):
        zip_bytes = make_zip({"index.js": "exports.handler = async () => 1;\n"})
        path = self.write_file("node.zip", zip_bytes)
        self.deploy(path, "cli-zip", "--runtime", "nodejs20.x", "--handler", "index.handler")
        config = self.client.get_function_configuration(FunctionName="cli-zip")
        self.assertEqual(config["CodeSha256"], sha256_b64(zip_bytes))
        self.assertEqual(config["CodeSize"], len(zip_bytes))
        self.assertEqual(config["Runtime"], "nodejs20.x")

    def test_deploy_of_a_large_zip_then_update_through_boto3(self):
        # Megabytes of base64 in the JSON body: the CLI writes it and the
        # daemon reads it past the JSON lexer (base::parse_json); the code
        # must arrive byte for byte either way.
        app = "import os\ndef handler(event, context):\n    return os.path.getsize('blob.bin')\n"
        first = make_zip({"app.py": app, "blob.bin": os.urandom(3 << 20)})
        path = self.write_file("large.zip", first)
        self.deploy(path, "cli-large", "--runtime", "python3.12", "--handler", "app.handler")
        config = self.client.get_function_configuration(FunctionName="cli-large")
        self.assertEqual((config["CodeSha256"], config["CodeSize"]), (sha256_b64(first), len(first)))
        self.assertEqual(self.daemon.invoke("cli-large").json(), 3 << 20)

        second = make_zip({"app.py": app, "blob.bin": os.urandom(2 << 20)})
        out = self.client.update_function_code(FunctionName="cli-large", ZipFile=second)
        self.assertEqual((out["CodeSha256"], out["CodeSize"]), (sha256_b64(second), len(second)))
        self.assertEqual(self.daemon.invoke("cli-large").json(), 2 << 20)
        location = self.client.get_function(FunctionName="cli-large")["Code"]["Location"]
        with urllib.request.urlopen(location) as r:
            self.assertEqual(r.read(), second)

    def test_ls_shows_functions(self):
        src = self.make_dir("ls-src")
        self.deploy(src, "cli-ls-one", "--runtime", "python3.12", "--handler", "app.handler")
        self.deploy(src, "cli-ls-two", "--runtime", "nodejs20.x", "--handler", "app.handler", "--memory", "512")
        rc, out, err = self.daemon.cli("ls")
        self.assertEqual(rc, 0, err)
        lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
        self.assertIn("cli-ls-one", lines)
        self.assertIn("cli-ls-two", lines)
        self.assertIn("python3.12", lines["cli-ls-one"])
        self.assertIn("nodejs20.x", lines["cli-ls-two"])
        self.assertIn("512", lines["cli-ls-two"])

    def test_describe_prints_json(self):
        src = self.make_dir("describe-src")
        self.deploy(src, "cli-describe", "--runtime", "python3.12", "--handler", "app.handler", "--timeout", "9")
        rc, out, err = self.daemon.cli("describe", "cli-describe")
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual(doc["Configuration"]["FunctionName"], "cli-describe")
        self.assertEqual(doc["Configuration"]["FunctionArn"], function_arn("cli-describe"))
        self.assertEqual(doc["Configuration"]["Timeout"], 9)
        self.assertTrue(doc["Code"]["Location"].startswith("http://"))
        expected = self.client.get_function_configuration(FunctionName="cli-describe")
        self.assertEqual(doc["Configuration"]["CodeSha256"], expected["CodeSha256"])

    def test_rm_deletes(self):
        src = self.make_dir("rm-src")
        self.deploy(src, "cli-rm", "--runtime", "python3.12", "--handler", "app.handler")
        rc, out, err = self.daemon.cli("rm", "cli-rm")
        self.assertEqual(rc, 0, err)
        self.assertIn("cli-rm", out)
        with self.assertRaises(self.client.exceptions.ResourceNotFoundException):
            self.client.get_function(FunctionName="cli-rm")
        rc, out, err = self.daemon.cli("ls")
        self.assertEqual(rc, 0, err)
        self.assertNotIn("cli-rm", out)
        rc, _, err = self.daemon.cli("rm", "cli-rm")
        self.assertEqual(rc, 1)
        self.assertTrue(err.startswith("nimbus: ResourceNotFoundException: "), err)

    def test_deploy_unknown_runtime_fails(self):
        src = self.make_dir("badrt-src")
        _, err = self.deploy(src, "cli-badrt", "--runtime", "cobol85", "--handler", "app.handler", expect_rc=1)
        self.assertTrue(err.startswith("nimbus: InvalidParameterValueException: "), err)
        self.assertIn("cobol85", err)
        self.assertNoFunction("cli-badrt")

    def test_deploy_out_of_range_memory_fails(self):
        src = self.make_dir("badmem-src")
        _, err = self.deploy(src, "cli-badmem", "--runtime", "python3.12", "--handler", "app.handler",
                             "--memory", "64", expect_rc=1)
        self.assertTrue(err.startswith("nimbus: ValidationException: "), err)
        self.assertIn("memorySize", err)
        self.assertNoFunction("cli-badmem")

    def test_describe_missing_fails(self):
        rc, out, err = self.daemon.cli("describe", "missing")
        self.assertEqual(rc, 1, out)
        self.assertTrue(err.startswith("nimbus: ResourceNotFoundException: "), err)
        self.assertIn(f"Function not found: {function_arn('missing')}", err)

    def test_endpoint_flag_with_environment_credentials(self):
        key, secret = self.daemon.credentials
        self.deploy(self.make_dir("ep-src"), "cli-endpoint", "--runtime", "python3.12", "--handler", "app.handler")
        rc, out, err = self.daemon.cli("ls", "--endpoint", self.daemon.endpoint, data_dir=False,
                                       env={"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret,
                                            "HOME": self.workdir})
        self.assertEqual(rc, 0, err)
        self.assertIn("cli-endpoint", out)
        # Wrong credentials are refused by the daemon and reported.
        rc, out, err = self.daemon.cli("ls", "--endpoint", self.daemon.endpoint, data_dir=False,
                                       env={"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": "x" * 40,
                                            "HOME": self.workdir})
        self.assertEqual(rc, 1, out)
        self.assertTrue(err.startswith("nimbus: InvalidSignatureException: "), err)

    def test_unreachable_endpoint_fails(self):
        rc, out, err = self.daemon.cli("ls", "--endpoint", "http://127.0.0.1:1", data_dir=False,
                                       env={"HOME": self.workdir})
        self.assertEqual(rc, 1, out)
        self.assertTrue(err.startswith("nimbus: "), err)

    def test_help(self):
        rc, out, err = self.daemon.cli("--help", data_dir=False)
        self.assertEqual(rc, 0, err)
        for word in ("serve", "deploy", "ls", "describe", "rm", "--endpoint", "--data-dir", "--region"):
            self.assertIn(word, out)
        rc, out, err = self.daemon.cli("deploy", "--help", data_dir=False)
        self.assertEqual(rc, 0, err)
        for option in ("--name", "--runtime", "--handler", "--memory", "--timeout", "--env", "--description",
                       "--role"):
            self.assertIn(option, out)
        for sub in ("serve", "ls", "describe", "rm"):
            with self.subTest(sub=sub):
                rc, out, err = self.daemon.cli(sub, "--help", data_dir=False)
                self.assertEqual(rc, 0, err)
                self.assertIn("Usage:", out)
        rc, out, err = self.daemon.cli("serve", "--help", data_dir=False)
        self.assertIn("--listen", out)
        self.assertIn("--insecure-no-auth", out)

    def test_bad_usage_exits_nonzero(self):
        rc, _, err = self.daemon.cli("deploy", data_dir=False)  # no path, no --name
        self.assertNotEqual(rc, 0)
        self.assertTrue(err.strip(), "no usage error on stderr")
        rc, _, _ = self.daemon.cli("no-such-subcommand", data_dir=False)
        self.assertNotEqual(rc, 0)


class DaemonRestartTest(DaemonTestCase):
    """Functions survive a clean stop and a SIGKILL; a restart reuses the credentials."""

    def restart(self, kill=False):
        old = type(self).daemon
        if kill:
            os.kill(old.proc.pid, signal.SIGKILL)
            old.proc.wait(timeout=10)
            old.kill()  # closes the log handle
        else:
            old.stop()
        self.client.close()
        new = Daemon(data_dir=old.data_dir)
        new.owns_data_dir = True  # tearDownClass removes it
        type(self).daemon = new
        try:
            new.start()
        except BaseException:
            new.kill()
            raise
        type(self).client = new.boto3_client("lambda")
        self.assertEqual(new.credentials, old.credentials)
        return new

    def test_functions_survive_restarts(self):
        zip_bytes = make_zip({"app.py": APP_PY})
        self.client.create_function(FunctionName="durable", Runtime="python3.12",
                                    Role="arn:aws:iam::000000000000:role/r", Handler="app.handler",
                                    Code={"ZipFile": zip_bytes}, Tags={"keep": "me"})
        updated = self.client.update_function_configuration(FunctionName="durable", MemorySize=384,
                                                            Environment={"Variables": {"K1": "v"}})

        daemon = self.restart()
        got = self.client.get_function(FunctionName="durable")
        config = got["Configuration"]
        for key in ("CodeSha256", "CodeSize", "MemorySize", "Environment", "RevisionId", "LastModified", "Role"):
            self.assertEqual(config[key], updated[key], key)
        self.assertEqual(got.get("Tags"), {"keep": "me"})
        self.assertTrue(got["Code"]["Location"].startswith(daemon.endpoint), got["Code"]["Location"])
        with urllib.request.urlopen(got["Code"]["Location"], timeout=10) as resp:
            self.assertEqual(resp.read(), zip_bytes)
        rc, out, err = daemon.cli("ls")
        self.assertEqual(rc, 0, err)
        self.assertIn("durable", out)
        rc, out, err = daemon.aws("lambda", "get-function", "--function-name", "durable")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["Configuration"]["CodeSha256"], sha256_b64(zip_bytes))

        # A function written just before a SIGKILL is there after the restart.
        self.client.create_function(FunctionName="before-kill", Runtime="python3.12",
                                    Role="arn:aws:iam::000000000000:role/r", Handler="app.handler",
                                    Code={"ZipFile": zip_bytes})
        self.restart(kill=True)
        names = [f["FunctionName"] for f in self.client.list_functions()["Functions"]]
        self.assertEqual(names, ["before-kill", "durable"])
        self.assertEqual(self.client.get_function_configuration(FunctionName="durable")["MemorySize"], 384)
        # And it still takes writes.
        self.client.delete_function(FunctionName="before-kill")
        self.assertEqual([f["FunctionName"] for f in self.client.list_functions()["Functions"]], ["durable"])


if __name__ == "__main__":
    unittest.main()
