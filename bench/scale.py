"""bench/run's scale-out and density scenarios (issue 7).

Both run on a daemon of their own, started by bench/run after the peers and
before the main daemon, with `--concurrency` raised above the instance counts
they need (the registry keeps 100 of the account's concurrency unreserved, so
1,000 provisioned instances need at least 1,100):

  scale-out   N concurrent Invokes (100; --quick 5) released at once at a
              function deployed just before (no instance of it exists), whose
              handler holds each invocation for --scale-hold-ms (1000), so
              every request needs an instance of its own. Reported: the time
              until all N answered; the scale-out time, i.e. when the last
              request's handler started (its answer time minus its own REPORT
              Duration, from the release); new instances/s = N / scale-out
              time; p50/p99/max of the per-request latency minus its handler
              Duration (what a request waited for its new instance); and how
              many distinct instances served the burst (a response whose
              REPORT carries an Init Duration came from a new instance, and
              Python's warm_invocations must then be 1; one without waited in
              line past the hold and took an instance another request freed,
              nimbus serve --max-parallel-starts; nimbus_cold_starts_total /
              nimbus_instances are read from /metrics). C++ is examples/hello-cpp with
              HELLO_CPP_DELAY_MS; Python and Node wrap the unmodified hello
              handlers in a module that sleeps first.
  density     N idle initialised instances of examples/hello-python (100 and
              1,000; --quick 5), made with provisioned concurrency on a
              published version; once all are ready and their CPU use has
              settled, the PSS (/proc/<pid>/smaps_rollup) of every process
              under the sandbox launcher is summed, plus what the daemon and
              the launcher grew by since before the instances existed, and
              the host's MemAvailable drop as a cross-check that includes the
              kernel's share (page tables, cgroups, sockets). Reported: MiB
              per instance and how many such instances fit in 8 GiB. Then a
              few concurrent Invokes of the version check the answers.

Every response body is checked; a wrong answer fails the run (BenchError).
Only the Python standard library.
"""

import json
import os
import signal
import sys
import threading
import time

GIB = 1024 * 1024 * 1024
MIB = 1024 * 1024

# Handlers that hold each invocation, then answer as the unmodified examples do.
PYTHON_HOLD = b'''"""bench/run scale-out: hold each invocation, then answer as examples/hello-python."""
import os
import time

import app

HOLD_S = int(os.environ.get("BENCH_HOLD_MS", "0")) / 1000.0


def handler(event, context):
    time.sleep(HOLD_S)
    return app.handler(event, context)
'''

NODE_HOLD = b'''// bench/run scale-out: hold each invocation, then answer as examples/hello-node.
import { handler as hello } from "./index.mjs";

const holdMs = Number(process.env.BENCH_HOLD_MS || 0);

export const handler = async (event, context) => {
  await new Promise((resolve) => setTimeout(resolve, holdMs));
  return hello(event, context);
};
'''


class ScaleSettings:
    """What the scale phase runs; from bench/run's arguments."""

    def __init__(self, args):
        self.enabled = not args.no_scale
        self.burst = args.scale_burst or (5 if args.quick else 100)
        self.hold_ms = args.scale_hold_ms
        if args.density:
            self.density = [int(n) for n in args.density.split(",") if n]
        else:
            self.density = [5] if args.quick else [100, 1000]
        self.runtimes = [r for r in args.runtimes.split(",") if r]
        self.memory_mb = args.memory
        self.settle_s = 0.2 if args.quick else 2.0
        self.concurrency = max([self.burst] + self.density) + 200
        self.daemon_threads = args.daemon_threads

    def as_dict(self):
        return dict(vars(self))


# ---------------------------------------------------------------------------
# /proc


def _children_map():
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def descendants(pid, children=None):
    children = _children_map() if children is None else children
    out, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        out.extend(kids)
        todo.extend(kids)
    return out


def pss_kib(pid):
    """Proportional set size of one process (kB, from smaps_rollup), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def cpu_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        fields = stat[stat.rfind(b")") + 2:].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return 0


def mem_available_kib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return None


def memory_snapshot(daemon):
    """PSS of the daemon, of its launcher, and of everything under the launcher
    (the instances, plus any sandboxes the pool holds ready)."""
    children = _children_map()
    launchers = children.get(daemon.proc.pid, [])
    under = [p for l in launchers for p in descendants(l, children)]
    snap = {"daemon_kib": pss_kib(daemon.proc.pid) or 0,
            "launcher_kib": sum(pss_kib(p) or 0 for p in launchers),
            "instance_processes": 0, "instances_kib": 0,
            "mem_available_kib": mem_available_kib()}
    for p in under:
        k = pss_kib(p)
        if k is not None:
            snap["instance_processes"] += 1
            snap["instances_kib"] += k
    return snap


def wait_cpu_quiet(daemon, timeout_s, window_s=0.5, max_busy=0.05):
    """Waits until the daemon and everything under it use less than `max_busy`
    of one CPU over `window_s`; returns (seconds waited, quiet reached)."""
    hz = os.sysconf("SC_CLK_TCK")
    t0 = time.monotonic()

    def total():
        return sum(cpu_ticks(p) for p in [daemon.proc.pid] + descendants(daemon.proc.pid))

    last = total()
    while time.monotonic() - t0 < timeout_s:
        time.sleep(window_s)
        now = total()
        if (now - last) / hz < max_busy * window_s:
            return time.monotonic() - t0, True
        last = now
    return time.monotonic() - t0, False


# ---------------------------------------------------------------------------
# Scenarios


def hold_target(h, key, hold_ms, cpp_bin):
    """The function of the scale-out burst for one runtime, and its environment."""
    root = h.ROOT
    if key == "python":
        z = h.zip_bytes({"app.py": (h.read(os.path.join(root, "examples/hello-python/app.py")), 0o644),
                         "hold.py": (PYTHON_HOLD, 0o644)})
        t = h.Target(key, "bench-scale-python", "python3.12", "hold.handler", z)
        env = {"BENCH_HOLD_MS": str(hold_ms)}
    elif key == "node":
        z = h.zip_bytes({"index.mjs": (h.read(os.path.join(root, "examples/hello-node/index.mjs")), 0o644),
                         "hold.mjs": (NODE_HOLD, 0o644)})
        t = h.Target(key, "bench-scale-node", "nodejs20.x", "hold.handler", z)
        env = {"BENCH_HOLD_MS": str(hold_ms)}
    elif key == "cpp":
        z = h.zip_bytes({"bootstrap": (h.read(cpp_bin), 0o755)})
        t = h.Target(key, "bench-scale-cpp", "provided.al2023", "bootstrap", z)
        env = {"HELLO_CPP_DELAY_MS": str(hold_ms)}
    else:
        raise h.BenchError(f"unknown runtime {key!r} (python, node, cpp)")
    return t, env


def metric_or_zero(h, client, metric, name):
    v = h.function_metric(client, metric, name)
    return 0 if v is None else v


def burst(h, endpoint, path, target, n, timeout_s, headers=None):
    """n concurrent Invokes released by one barrier, each on a connection
    opened beforehand. Returns (release ns, [(event, send ns, done ns, status,
    headers, body)] in request order)."""
    clients = [h.Client(endpoint) for _ in range(n)]
    events = [target.event(i) for i in range(n)]
    bodies = [json.dumps(e) for e in events]
    results = [None] * n
    errors = []
    release = [None]

    def mark():
        release[0] = time.perf_counter_ns()

    barrier = threading.Barrier(n, action=mark, timeout=timeout_s)

    def worker(i):
        try:
            barrier.wait()
            sent = time.perf_counter_ns()
            status, hdrs, data, _, _ = clients[i].request("POST", path, bodies[i], headers)
            results[i] = (events[i], sent, time.perf_counter_ns(), status, hdrs, data)
        except threading.BrokenBarrierError:
            pass
        except BaseException as e:  # noqa: BLE001 - re-raised on the main thread
            errors.append(e)
            barrier.abort()

    try:
        for c in clients:
            c._open()  # connect before the clock: the burst measures instances, not TCP handshakes
        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + timeout_s
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in threads):
            raise h.BenchError(f"{target.name}: a burst of {n} Invokes did not finish within {timeout_s:.0f} s")
        if errors:
            e = errors[0]
            raise e if isinstance(e, h.BenchError) else h.BenchError(f"{target.name}: burst client failed: {e!r}")
        if any(r is None for r in results):
            raise h.BenchError(f"{target.name}: the burst's barrier broke (a client did not start in time)")
        return release[0], results
    finally:
        for c in clients:
            c.close()


def scenario_scale_out(h, daemon, control, key, ss, cpp_bin, log):
    target, env = hold_target(h, key, ss.hold_ms, cpp_bin)
    n = ss.burst
    h.deploy(control, target, ss, env=env, timeout_s=ss.hold_ms // 1000 + 10)
    cold_before = metric_or_zero(h, control, "nimbus_cold_starts_total", target.name)
    if h.instances_of(control, target.name):
        raise h.BenchError(f"{target.name}: instances exist before the burst")
    release, results = burst(h, daemon.endpoint, h.invoke_path(target), target, n,
                             timeout_s=h.REQUEST_TIMEOUT_S + 10.0 + ss.hold_ms / 1000.0,
                             headers={"X-Amz-Log-Type": "Tail"})
    latency, waited, started, answered, durations, inits, reused = [], [], [], [], [], [], []
    for event, sent, done, status, headers, data in results:
        body = target.check(event, status, headers, data)
        d, init_ms = h.parse_report(headers.get("X-Amz-Log-Result"))
        if d is None:
            raise h.BenchError(f"{target.name}: burst answer without a REPORT line in X-Amz-Log-Result")
        if init_ms is None:
            # It waited in line longer than the hold and took an instance
            # another request freed (--max-parallel-starts): served, but not
            # a new instance.
            ms = (done - sent) / 1e6
            latency.append(ms)
            waited.append(ms - d)
            answered.append((done - release) / 1e6)
            reused.append(event["seq"])
            continue
        if key == "python" and body.get("warm_invocations") != 1:
            raise h.BenchError(f"{target.name}: request {event['seq']} ran on a used instance "
                               f"(warm_invocations={body.get('warm_invocations')})")
        if d < ss.hold_ms * 0.9:
            raise h.BenchError(f"{target.name}: the handler was not held ({d:.1f} ms < {ss.hold_ms} ms): "
                               "is the hold (HELLO_CPP_DELAY_MS / BENCH_HOLD_MS) supported by this build?")
        ms = (done - sent) / 1e6
        latency.append(ms)
        waited.append(ms - d)
        answered.append((done - release) / 1e6)
        started.append((done - release) / 1e6 - d)
        durations.append(d)
        inits.append(init_ms)
    all_answered_ms = max(answered)
    scale_ms = max(started)
    cold = metric_or_zero(h, control, "nimbus_cold_starts_total", target.name) - cold_before
    live = h.instances_of(control, target.name)
    sends = [r[1] for r in results]
    s = h.summary(waited)
    s.update({
        "burst": n, "hold_ms": ss.hold_ms,
        "all_answered_ms": all_answered_ms,
        "scale_out_ms": scale_ms,
        "instances_per_s": len(started) / (scale_ms / 1000.0) if scale_ms > 0 else None,
        "distinct_instances": len(started),  # answers with an Init Duration: each its instance's first
        "served_by_freed_instances": len(reused),
        "cold_starts_metric": cold, "instances_metric": live,
        "send_spread_ms": (max(sends) - release) / 1e6,
        "latency_ms": h.summary(latency), "init_duration_ms": h.summary(inits),
        "samples_ms": latency, "waited_samples_ms": waited, "started_samples_ms": started,
        "duration_samples_ms": durations, "init_samples_ms": inits,
    })
    notes = (f"{n} Invokes at once from cold, each held {ss.hold_ms} ms: all answered after {all_answered_ms:.0f} ms, "
             f"{len(started)} new instances all running after {scale_ms:.0f} ms (Init Duration on their answers; "
             f"cold starts +{cold}, {live} live), {len(reused)} served by an instance another freed; "
             f"raw latency p50 {s['latency_ms']['p50_ms']:.0f} ms, "
             f"p99 {s['latency_ms']['p99_ms']:.0f} ms")
    log(f"  scale-out {key}: {len(started)} instances in {scale_ms:.0f} ms ({s['instances_per_s']:.0f}/s), "
        f"{len(reused)} requests served by freed instances, all answered in {all_answered_ms:.0f} ms")
    control.json_call("DELETE", f"/2015-03-31/functions/{target.name}", expect=(204,))
    s["teardown_s"] = daemon.wait_quiet(60.0 + n * 0.2, f"delete {target.name}")
    return s, notes


def wait_provisioned(h, control, name, version, n, timeout_s):
    path = f"/2019-09-30/functions/{name}/provisioned-concurrency?Qualifier={version}"
    deadline = time.monotonic() + timeout_s
    cfg = None
    while time.monotonic() < deadline:
        cfg = control.json_call("GET", path)
        if cfg.get("Status") == "READY" and cfg.get("AvailableProvisionedConcurrentExecutions") == n:
            return cfg
        time.sleep(0.2)
    raise h.BenchError(f"{name}:{version}: {n} provisioned instances not ready within {timeout_s:.0f} s: {cfg!r}")


def scenario_density(h, daemon, control, n, ss, log):
    root = h.ROOT
    z = h.zip_bytes({"app.py": (h.read(os.path.join(root, "examples/hello-python/app.py")), 0o644)})
    target = h.Target("python", f"bench-density-{n}", "python3.12", "app.handler", z)
    h.deploy(control, target, ss)
    version = control.json_call("POST", f"/2015-03-31/functions/{target.name}/versions", {},
                                expect=(201,))["Version"]
    wait_cpu_quiet(daemon, 10.0)
    before = memory_snapshot(daemon)
    t0 = time.monotonic()
    control.json_call("PUT", f"/2019-09-30/functions/{target.name}/provisioned-concurrency?Qualifier={version}",
                      {"ProvisionedConcurrentExecutions": n}, expect=(202,))
    wait_provisioned(h, control, target.name, version, n, timeout_s=60.0 + n * 0.25)
    ready_s = time.monotonic() - t0
    time.sleep(ss.settle_s)
    quiet_s, quiet = wait_cpu_quiet(daemon, 30.0)
    after = memory_snapshot(daemon)
    live = h.instances_of(control, f"{target.name}")

    inst_kib = after["instances_kib"] - before["instances_kib"]
    daemon_growth_kib = (after["daemon_kib"] + after["launcher_kib"]) - (before["daemon_kib"] + before["launcher_kib"])
    per_kib = (inst_kib + daemon_growth_kib) / n
    avail_drop_kib = before["mem_available_kib"] - after["mem_available_kib"]
    per_avail_kib = avail_drop_kib / n
    fixed_kib = before["daemon_kib"] + before["launcher_kib"]
    fits = int((8 * GIB / 1024 - fixed_kib) / per_kib) if per_kib > 0 else None
    fits_avail = int((8 * GIB / 1024 - fixed_kib) / per_avail_kib) if per_avail_kib > 0 else None

    # The answers: concurrent Invokes of the version, served by the idle
    # instances (no instance may start for them).
    k = min(n, 10)
    cold_before = metric_or_zero(h, control, "nimbus_cold_starts_total", target.name)
    _, results = burst(h, daemon.endpoint, h.invoke_path(target) + f"?Qualifier={version}", target, k,
                       timeout_s=h.REQUEST_TIMEOUT_S)
    for event, _, _, status, headers, data in results:
        target.check(event, status, headers, data)
    started = metric_or_zero(h, control, "nimbus_cold_starts_total", target.name) - cold_before
    if started:
        raise h.BenchError(f"{target.name}:{version}: {started} instance(s) started for {k} Invokes although "
                           f"{n} provisioned instances were idle")

    s = {"n": n, "p50_ms": None, "p99_ms": None, "max_ms": None,
         "instances": n, "instances_metric": live, "ready_s": ready_s, "cpu_quiet_after_s": quiet_s,
         "cpu_quiet": quiet, "before": before, "after": after,
         "instance_processes": after["instance_processes"] - before["instance_processes"],
         "instances_pss_mib": inst_kib / 1024, "daemon_growth_mib": daemon_growth_kib / 1024,
         "mib_per_instance": per_kib / 1024, "mem_available_drop_mib": avail_drop_kib / 1024,
         "mib_per_instance_mem_available": per_avail_kib / 1024,
         "fit_in_8gib": fits, "fit_in_8gib_mem_available": fits_avail, "checked_invokes": k}
    notes = (f"{n} idle provisioned instances, {s['instance_processes']} processes, ready in {ready_s:.1f} s: "
             f"PSS {s['instances_pss_mib']:.1f} MiB + daemon {s['daemon_growth_mib']:+.1f} MiB = "
             f"{s['mib_per_instance']:.2f} MiB each -> {fits} in 8 GiB; MemAvailable {-s['mem_available_drop_mib']:+.1f} MiB "
             f"= {s['mib_per_instance_mem_available']:.2f} MiB each -> {'-' if fits_avail is None else fits_avail}")
    if not quiet:
        notes += "; CPU had not settled after 30 s"
    log(f"  density {n}: {s['mib_per_instance']:.2f} MiB/instance (PSS), "
        f"{s['mib_per_instance_mem_available']:.2f} MiB (MemAvailable); ready in {ready_s:.1f} s")
    control.json_call("DELETE", f"/2015-03-31/functions/{target.name}", expect=(204,))
    s["teardown_s"] = daemon.wait_quiet(60.0 + n * 0.2, f"delete {target.name}")
    return s, notes


def run_scale(h, ss, nimbus_bin, cpp_bin, keep_data, log):
    """The scale phase on its own daemon. Returns (rows, details)."""
    rows, details = [], {"settings": ss.as_dict()}
    daemon = h.Daemon(nimbus_bin, 3600, keep_data,
                      extra_args=["--concurrency", str(ss.concurrency), *h.daemon_args(ss.daemon_threads)])
    log(f"bench: scale: starting a daemon with --concurrency {ss.concurrency} (data dir {daemon.data_dir})")
    failed = True
    try:
        daemon.start()
        control = h.Client(daemon.endpoint)
        for key in ss.runtimes:
            log(f"bench: scale-out {key}: {ss.burst} concurrent Invokes, each held {ss.hold_ms} ms")
            s, notes = scenario_scale_out(h, daemon, control, key, ss, cpp_bin, log)
            details[f"scale_out_{key}"] = s
            rows.append(h.row("scale-out", key, s, notes, rps=s["instances_per_s"]))
        for n in ss.density:
            if not daemon.alive():
                raise h.BenchError("the scale daemon died\n" + daemon.log_tail())
            log(f"bench: density: {n} idle Python instances (provisioned concurrency)")
            s, notes = scenario_density(h, daemon, control, n, ss, log)
            details[f"density_{n}"] = s
            rows.append(h.row(f"density {n}", "python", s, notes))
        control.close()
        failed = False
    finally:
        # The daemon's stop is bounded (STOP_TIMEOUT_S); keep signals out of it,
        # then give the run back its time limit.
        remaining = signal.alarm(0)
        handlers = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGTERM, signal.SIGINT)}
        t_stop = time.monotonic()
        try:
            rc = daemon.stop()
            if failed or keep_data:
                print(f"bench: scale daemon log kept at {daemon.log_path}", file=sys.stderr)
            else:
                daemon.cleanup()
        finally:
            for sig, old in handlers.items():
                signal.signal(sig, old)
            if remaining:
                signal.alarm(max(1, remaining - int(time.monotonic() - t_stop)))
    details["daemon_exit_code"] = rc
    if rc not in (0, None):
        raise h.BenchError(f"the scale daemon exited with {rc} after SIGTERM (want 0)")
    return rows, details
