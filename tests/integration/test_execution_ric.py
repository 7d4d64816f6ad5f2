"""AWS's own Node.js runtime interface client (npm `aws-lambda-ric`) in a
provided.al2023 function: an unmodified official runtime client must work
against nimbus's Runtime API.

The package builds native code on install (curl and aws-lambda-cpp from
bundled sources, then a node-gyp addon): it needs npm, network access to the
npm registry, g++, make, cmake, autoconf, automake, libtool and python3. The
install takes minutes, so the files the function needs are cached in
$NIMBUS_IT_CACHE (default ~/.cache/nimbus-it) and reused by later runs.
The test skips only when npm is missing or the registry cannot be reached;
any other install failure fails it."""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from harness import ExecutionTestCase, decode_log_result, function_arn, provided_zip

# 4.x declares engines node >= 22; Debian 12's node is 18 and the test hosts run 20.
RIC_SPEC = "aws-lambda-ric@3"
RIC_FILES = ("package.json", "bin/index.mjs", "dist/index.mjs", "dist/rapid-client.node")
NPM_INSTALL_TIMEOUT_S = 1500
# npm's own error code lines ("npm error code ENOTFOUND", "code: 'ECONNREFUSED'"), not text from the native build.
NETWORK_ERRORS = re.compile(r"\b(?:code|errno):?\s+'?(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|"
                            r"EHOSTUNREACH|ERR_SOCKET_TIMEOUT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT\w*)\b")

BOOTSTRAP = '#!/bin/sh\nexec /usr/bin/node /var/task/node_modules/aws-lambda-ric/bin/index.mjs "$_HANDLER"\n'

HANDLER_MJS = """
let invocations = 0;
export const handler = async (event, context) => {
  invocations += 1;
  console.log('ric handler got', JSON.stringify(event));
  if (event.fail) {
    throw new RangeError('ric says no');
  }
  return {
    event, invocations,
    id: context.awsRequestId,
    name: context.functionName,
    version: context.functionVersion,
    mem: context.memoryLimitInMB,
    arn: context.invokedFunctionArn,
    left: context.getRemainingTimeInMillis(),
    clientContext: context.clientContext ?? null,
  };
};
"""


def cache_dir():
    root = os.environ.get("NIMBUS_IT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "nimbus-it")
    return os.path.join(root, RIC_SPEC.replace("@", "-"))


class RicUnavailable(Exception):
    pass


def ensure_ric():
    """Returns a directory holding RIC_FILES of the built package, installing it on first use."""
    target = cache_dir()
    if os.path.exists(os.path.join(target, ".complete")):
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise RicUnavailable("npm is not installed (Debian: the nodejs package of the NodeSource repository "
                             "ships it; Debian's own nodejs needs the npm package)")
    work = tempfile.mkdtemp(prefix="nimbus-it-ric-")
    try:
        cmd = [npm, "install", "--prefix", work, "--no-audit", "--no-fund", "--loglevel=error", RIC_SPEC]
        started = time.monotonic()
        # Use both cores for the bundled native builds, and the installed Node
        # headers (there is no internet to download them from).
        env = dict(os.environ, MAKEFLAGS="-j2", JOBS="2")
        if os.path.exists("/usr/include/node/node.h"):
            env["npm_config_nodedir"] = "/usr"
        try:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=NPM_INSTALL_TIMEOUT_S, env=env)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"`{' '.join(cmd)}` did not finish within {NPM_INSTALL_TIMEOUT_S} s")
        took = time.monotonic() - started
        sys.stderr.write(f"\n[{RIC_SPEC}: npm install took {took:.0f} s (rc {p.returncode})]\n")
        output = p.stdout + p.stderr
        if p.returncode != 0:
            network = NETWORK_ERRORS.search(output)
            if network:
                raise RicUnavailable(f"the npm registry cannot be reached ({network.group(1)}): {output[-600:]}")
            hint = ""
            if "autoreconf: not found" in output or "autoreconf: command not found" in output:
                hint = " (autoreconf is missing: install the Debian packages autoconf automake libtool)"
            raise AssertionError(f"`{' '.join(cmd)}` failed with {p.returncode}{hint}:\n{output[-4000:]}")
        package = os.path.join(work, "node_modules", "aws-lambda-ric")
        staging = target + ".tmp"
        shutil.rmtree(staging, ignore_errors=True)
        for rel in RIC_FILES:
            src = os.path.join(package, rel)
            if not os.path.exists(src):
                raise AssertionError(f"{RIC_SPEC} installed without {rel}: the native build did not run?\n"
                                     f"{output[-4000:]}")
            os.makedirs(os.path.dirname(os.path.join(staging, rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(staging, rel))
        with open(os.path.join(package, "package.json")) as f:
            version = json.load(f)["version"]
        with open(os.path.join(staging, ".complete"), "w") as f:
            f.write(f"{version}\n{took:.0f} s\n")
        shutil.rmtree(target, ignore_errors=True)
        os.rename(staging, target)
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


class AwsLambdaRicTest(ExecutionTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ric_dir = cls.ric_error = None
        try:
            cls.ric_dir = ensure_ric()
        except RicUnavailable as e:
            cls.ric_error = str(e)

    def setUp(self):
        if self.ric_error:
            self.skipTest(f"{RIC_SPEC} unavailable: {self.ric_error}")
        files = {"index.mjs": HANDLER_MJS}
        for rel in RIC_FILES:
            with open(os.path.join(self.ric_dir, rel), "rb") as f:
                mode = 0o755 if rel.endswith(".node") else 0o644
                files[f"node_modules/aws-lambda-ric/{rel}"] = (f.read(), mode)
        self.zip_bytes = provided_zip(BOOTSTRAP, files)

    def test_official_node_runtime_client(self):
        self.create_function("ric-node", zip_bytes=self.zip_bytes, runtime="provided.al2023", handler="index.handler",
                             Timeout=10)
        r, body = self.invoke_ok("ric-node", {"hello": "ric"}, headers={"X-Amz-Log-Type": "Tail"})
        request_id = r.header("x-amzn-RequestId")
        self.assertEqual(body["event"], {"hello": "ric"})
        self.assertEqual(body["id"], request_id)
        self.assertEqual((body["name"], body["version"], body["mem"]), ("ric-node", "$LATEST", "128"))
        self.assertEqual(body["arn"], function_arn("ric-node"))
        self.assertTrue(0 < body["left"] <= 10000, body)
        self.assertIsNone(body["clientContext"])
        log = decode_log_result(r.header("X-Amz-Log-Result"))
        # Printed by aws-lambda-ric's own bin/index.mjs: it is AWS's client that runs.
        self.assertIn("Executing 'index.handler' in function directory '/var/task'", log)
        self.assertRegex(log, re.escape(request_id) + r"\tINFO\tric handler got \{\"hello\":\"ric\"\}")

        # Warm, with a client context.
        ctx = base64.b64encode(json.dumps({"custom": {"k": "v"}}).encode()).decode()
        _, body = self.invoke_ok("ric-node", {"n": 2}, headers={"X-Amz-Client-Context": ctx})
        self.assertEqual(body["invocations"], 2)
        self.assertEqual(body["clientContext"]["custom"], {"k": "v"})

        # A handler error in aws-lambda-ric's shape.
        r = self.invoke("ric-node", {"fail": True})
        err = self.assertUnhandled(r, "RangeError", "ric says no")
        self.assertEqual(err["trace"][0], "RangeError: ric says no")
        _, body = self.invoke_ok("ric-node", {"n": 4})
        self.assertEqual(body["invocations"], 4)  # the error did not cost the instance
        self.assertEqual(self.daemon.metric("nimbus_cold_starts_total", function="ric-node"), 1)

    def test_missing_handler_module(self):
        self.create_function("ric-missing", zip_bytes=self.zip_bytes, runtime="provided.al2023",
                             handler="nothere.handler")
        self.assertUnhandled(self.invoke("ric-missing"), "Runtime.ImportModuleError")
        self.assertServes()


if __name__ == "__main__":
    unittest.main()
