"""Schedules (rate, cron, at) through the nimbus CLI and the control API, run
under the test-only time scale (--events-time-scale 1000: a schedule minute
passes in 60 ms): fires reach the function with EventBridge's Scheduled Event
or a fixed input, disable stops fires, a restart keeps schedules and fires a
missed one once, bad expressions are refused with the parser's message."""

import datetime
import json
import os
import re
import sqlite3
import sys
import time
import unittest

from harness import (ACCOUNT_ID, REGION, ROLE, UUID_RE, Daemon, ExecutionTestCase, make_zip, wait_until)

RECORDER_PY = """
import json

def handler(event, context):
    print("EVENT " + json.dumps({"event": event, "arn": context.invoked_function_arn}))
    return {"ok": True}
"""

TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def recorded(daemon, function):
    """What `function` received so far: [{"event": ..., "arn": ...}], oldest first."""
    r = daemon.request("GET", f"/nimbus/v1/functions/{function}/logs", query={"limit": "10000"})
    if r.status != 200:
        raise AssertionError(f"logs of {function}: {r!r}")
    out = []
    for line in r.json()["lines"]:
        text = line["text"]
        at = text.find("EVENT ")
        if at >= 0:
            out.append(json.loads(text[at + len("EVENT "):]))
    return out


def parse_time(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


class SchedulesTest(ExecutionTestCase):
    daemon_args = ("--events-time-scale", "1000")

    def make_recorder(self, name):
        self.create_function(name, {"app.py": RECORDER_PY})

    def schedule(self, name):
        r = self.daemon.request("GET", f"/nimbus/v1/schedules/{name}")
        self.assertEqual(r.status, 200, r)
        return r.json()

    def cli_ok(self, *args):
        rc, out, err = self.daemon.cli(*args)
        self.assertEqual(rc, 0, f"nimbus {' '.join(args)}: {out}{err}")
        return out

    def wait_recorded(self, function, count, timeout=30):
        got = wait_until(lambda: len(recorded(self.daemon, function)) >= count, timeout)
        self.assertTrue(got, f"{function} got {len(recorded(self.daemon, function))} events, want {count}\n"
                             + self.daemon.log_text())
        return recorded(self.daemon, function)

    def daemon_now(self):
        """The daemon's (scaled) schedule time, read from a throw-away schedule's CreationDate."""
        r = self.daemon.request("POST", "/nimbus/v1/schedules", json.dumps(
            {"Name": "clock-probe", "ScheduleExpression": "rate(1 day)", "FunctionName": self.HEALTHY,
             "State": "DISABLED"}))
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.daemon.request("DELETE", "/nimbus/v1/schedules/clock-probe").status, 204)
        return parse_time(r.json()["CreationDate"])

    def test_cron_schedule_fires_the_scheduled_event(self):
        self.make_recorder("cron-target")
        out = self.cli_ok("schedule", "add", "ten-minutes", "--function", "cron-target",
                          "--expression", "cron(0/10 * * * ? *)")
        self.assertRegex(out, r"^schedule ten-minutes -> cron-target:\$LATEST cron\(0/10 \* \* \* \? \*\) \(UTC\), "
                              r"next fire \d{4}-\d\d-\d\dT\d\d:\d0:00Z\n$")
        got = self.wait_recorded("cron-target", 3)
        self.cli_ok("schedule", "rm", "ten-minutes")
        times = []
        for record in got[:3]:
            event = record["event"]
            self.assertEqual(set(event), {"version", "id", "detail-type", "source", "account", "time", "region",
                                          "resources", "detail"}, event)
            self.assertEqual(event["version"], "0")
            self.assertRegex(event["id"], UUID_RE)
            self.assertEqual(event["detail-type"], "Scheduled Event")
            self.assertEqual(event["source"], "aws.events")
            self.assertEqual(event["account"], ACCOUNT_ID)
            self.assertRegex(event["time"], TIME_RE)
            self.assertEqual(event["region"], REGION)
            self.assertEqual(event["resources"], [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/ten-minutes"])
            self.assertEqual(event["detail"], {})
            self.assertEqual(record["arn"], f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:cron-target")
            t = parse_time(event["time"])
            self.assertEqual((t.minute % 10, t.second), (0, 0), event["time"])
            times.append(t)
        self.assertEqual(len({r["event"]["id"] for r in got}), len(got), "event ids repeat")
        self.assertEqual([b - a for a, b in zip(times, times[1:])], [datetime.timedelta(minutes=10)] * 2)
        self.assertGreaterEqual(self.daemon.metric("nimbus_schedule_fires_total", schedule="ten-minutes"), 3)

    def test_fixed_input_reaches_an_alias(self):
        self.make_recorder("fixed-target")
        self.client.publish_version(FunctionName="fixed-target")
        self.client.create_alias(FunctionName="fixed-target", Name="live", FunctionVersion="1")
        self.cli_ok("schedule", "add", "fixed", "--function", "fixed-target:live", "--expression",
                    "rate(5 minutes)", "--input", '{"job": "report", "n": 7}')
        view = self.schedule("fixed")
        self.assertEqual(view["Qualifier"], "live")
        self.assertEqual(json.loads(view["Input"]), {"job": "report", "n": 7})
        got = self.wait_recorded("fixed-target", 2)
        self.cli_ok("schedule", "rm", "fixed")
        for record in got:
            self.assertEqual(record["event"], {"job": "report", "n": 7})
            self.assertEqual(record["arn"], f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:fixed-target:live")

    def test_disable_stops_fires_and_enable_resumes(self):
        self.make_recorder("pausable")
        self.cli_ok("schedule", "add", "pausable", "--function", "pausable", "--expression", "rate(5 minutes)")
        self.wait_recorded("pausable", 2)
        out = self.cli_ok("schedule", "disable", "pausable")
        self.assertEqual(out, "schedule pausable disabled, next fire (disabled)\n")
        self.assertEqual(self.schedule("pausable")["State"], "DISABLED")
        time.sleep(1.0)  # fires handed over before the disable finish
        before = len(recorded(self.daemon, "pausable"))
        time.sleep(2.0)  # 33 schedule minutes: 6 fires if it still ran
        self.assertEqual(len(recorded(self.daemon, "pausable")), before)
        ls = self.cli_ok("schedule", "ls")
        self.assertRegex(ls, r"(?m)^pausable +rate\(5 minutes\) +UTC +pausable:\$LATEST +DISABLED +\(disabled\) ")
        out = self.cli_ok("schedule", "enable", "pausable")
        self.assertRegex(out, r"^schedule pausable enabled, next fire \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$")
        self.wait_recorded("pausable", before + 2)
        self.cli_ok("schedule", "rm", "pausable")

    def test_at_fires_once_in_its_time_zone(self):
        self.make_recorder("once-target")
        # 30 schedule minutes from now (1.8 s), written on Kolkata's wall clock (+05:30).
        fire = (self.daemon_now() + datetime.timedelta(minutes=30)).replace(second=0)
        local = fire + datetime.timedelta(hours=5, minutes=30)
        expression = f"at({local.strftime('%Y-%m-%dT%H:%M:%S')})"
        self.cli_ok("schedule", "add", "once", "--function", "once-target", "--expression", expression,
                    "--timezone", "Asia/Kolkata")
        self.assertEqual(self.schedule("once")["NextFireTime"], fire.strftime("%Y-%m-%dT%H:%M:%SZ"))
        got = self.wait_recorded("once-target", 1)
        self.assertEqual(got[0]["event"]["time"], fire.strftime("%Y-%m-%dT%H:%M:%SZ"))
        view = wait_until(lambda: (lambda v: v if v["State"] == "DISABLED" else None)(self.schedule("once")), 5)
        self.assertTrue(view, self.schedule("once"))
        self.assertIsNone(view["NextFireTime"])
        self.assertIsNotNone(view["LastFireTime"])
        time.sleep(1.0)
        self.assertEqual(len(recorded(self.daemon, "once-target")), 1)

    def test_bad_expressions_are_refused_with_the_parsers_message(self):
        cases = [
            ("cron(61 * * * ? *)", "Minutes field value 61 is out of range 0-59"),
            ("cron(0 1 * * * *)", "exactly one of Day-of-month and Day-of-week must be '?' (use '?' in "
                                  "Day-of-month to pick days by weekday, or in Day-of-week to pick them by date)"),
            ("cron(7 20 ? * NOT *)", "Day-of-week field value NOT is not a number (1-7) or a day name (SUN-SAT)"),
            ("cron(0 0 ? * 3#1,6#3 *)", "Day-of-week field: only one '#' expression is allowed"),
            ("rate(1 hours)", "the unit must be 'hour' (singular) when the value is 1"),
            ("rate(10 seconds)", "the unit 'seconds' is not one of minute(s), hour(s) or day(s)"),
            ("at(2021-12-31)", "expected at(yyyy-mm-ddThh:mm:ss), a local time without zone or offset, e.g. "
                               "at(2030-01-31T09:00:00)"),
        ]
        for expression, why in cases:
            with self.subTest(expression=expression):
                message = f"Invalid Schedule Expression {expression}: {why}"
                rc, out, err = self.daemon.cli("schedule", "add", "bad", "--function", self.HEALTHY,
                                               "--expression", expression)
                self.assertEqual(rc, 1)
                self.assertEqual(out, "")
                self.assertEqual(err, f"nimbus: ValidationException: {message}\n")
                r = self.daemon.request("POST", "/nimbus/v1/schedules", json.dumps(
                    {"Name": "bad", "ScheduleExpression": expression, "FunctionName": self.HEALTHY}))
                self.assertEqual(r.status, 400, r)
                self.assertEqual(r.header("x-amzn-ErrorType"), "ValidationException")
                self.assertEqual(r.json()["message"], message)
        rc, _, err = self.daemon.cli("schedule", "add", "bad", "--function", self.HEALTHY, "--expression",
                                     "rate(1 day)", "--timezone", "Mars/Olympus")
        self.assertEqual((rc, err), (1, "nimbus: ValidationException: Unknown time zone 'Mars/Olympus': expected "
                                        "an IANA name such as UTC or Europe/Paris\n"))
        rc, _, err = self.daemon.cli("schedule", "add", "bad", "--function", "no-such-function", "--expression",
                                     "rate(1 day)")
        self.assertEqual((rc, err), (1, "nimbus: ResourceNotFoundException: Function not found: "
                                        f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:no-such-function\n"))
        r = self.daemon.request("POST", "/nimbus/v1/schedules", "{not json")
        self.assertEqual((r.status, r.header("x-amzn-ErrorType")), (400, "InvalidRequestContentException"), r)
        rc, _, err = self.daemon.cli("schedule", "rm", "bad")
        self.assertEqual((rc, err), (1, "nimbus: ResourceNotFoundException: Schedule not found: bad\n"))
        r = self.daemon.request("GET", "/nimbus/v1/schedules")
        self.assertNotIn("bad", [s["Name"] for s in r.json()["Schedules"]])
        self.assertServes()


class ScheduleRestartTest(unittest.TestCase):
    """Real time (no scale): the store keeps schedules across restarts, and
    times missed while the daemon was down fire once."""

    def test_restart_keeps_schedules_and_fires_a_missed_time_once(self):
        first = Daemon()
        try:
            first.start()
            lam = first.boto3_client("lambda")
            lam.create_function(FunctionName="catch-up", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                                Code={"ZipFile": make_zip({"app.py": RECORDER_PY})})
            lam.close()
            rc, out, err = first.cli("schedule", "add", "hourly", "--function", "catch-up", "--expression",
                                     "cron(0 * * * ? *)")
            self.assertEqual(rc, 0, err)
            first.stop()
        except BaseException:
            sys.stderr.write(first.log_text() + "\n")
            first.kill()
            first.remove_data_dir()
            raise
        # Five hours pass with the daemon down: move the stored next fire back five hours.
        db = sqlite3.connect(os.path.join(first.data_dir, "nimbus.db"))
        (next_ms,) = db.execute("SELECT next_fire_ms FROM schedules WHERE name = 'hourly'").fetchone()
        db.execute("UPDATE schedules SET next_fire_ms = ? WHERE name = 'hourly'", (next_ms - 5 * 3600 * 1000,))
        db.commit()
        db.close()
        missed = datetime.datetime.fromtimestamp(next_ms / 1000 - 5 * 3600, datetime.timezone.utc)
        upcoming = datetime.datetime.fromtimestamp(next_ms / 1000, datetime.timezone.utc)

        second = Daemon(data_dir=first.data_dir)
        try:
            second.start()
            got = wait_until(lambda: recorded(second, "catch-up"), 30)
            self.assertEqual(len(got), 1, second.log_text())
            self.assertEqual(got[0]["event"]["time"], missed.strftime("%Y-%m-%dT%H:%M:%SZ"))
            self.assertEqual(got[0]["event"]["resources"], [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/hourly"])
            rc, ls, err = second.cli("schedule", "ls")
            self.assertEqual(rc, 0, err)
            self.assertRegex(ls, r"(?m)^hourly +cron\(0 \* \* \* \? \*\) +UTC +catch-up:\$LATEST +ENABLED +"
                                 + re.escape(upcoming.strftime("%Y-%m-%dT%H:%M:%SZ")) + r" +\d{4}-")
            self.assertEqual(second.metric("nimbus_schedule_catch_up_fires_total", schedule="hourly"), 1)
            time.sleep(2.0)
            self.assertEqual(len(recorded(second, "catch-up")), 1, "more than one catch-up fire")
            second.stop()
        except BaseException:
            sys.stderr.write(second.log_text() + "\n")
            second.kill()
            raise
        finally:
            first.remove_data_dir()


if __name__ == "__main__":
    unittest.main()
