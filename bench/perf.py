#!/usr/bin/python3
"""Scout's request path against this machine's ceiling, measured in the same run.

Starts, side by side in a temporary directory:
  - the ceiling: Debian's nginx on loopback answering every request with a fixed small JSON
    (`return 200 '{"ok":true}'`, default_type application/json, no access log, keep-alive without
    a request cap), --nginx-workers worker processes (default 2: one per core, what `auto` picks
    here; --calibrate-nginx measures 1, 2 and 4);
  - scoutd on the embedded store (SQLite in the temporary directory);
  - a password-protected redis-server (appendonly, everysec) and a second scoutd on it.

Each server is driven with wrk (keep-alive, -t2 -c64, 10 s, after a 2 s warm-up) through
bench/load.lua, with one fixed request per run:
  ceiling GET      GET / on nginx
  ceiling POST     POST / on nginx with the body of "fetch" (the yardstick of every ratio)
  fetch            POST /api/fetch_recommended_variant {"cb_model_id"} on a 4-variant Thompson test
  fetch+context    the same with a 5-feature context on a 4-variant LinUCB test whose features are
                   allow-listed (both tests are past their uniform warm-up before the load)
  update           POST /api/update_model/{id} with one reward
  update x100      the same with 100 rewards in one request
For each run it records requests/s, p50 and p99 latency, the CPU seconds the server spent per
1,000 requests (utime+stime from /proc/<pid>/stat before and after; nginx = master + workers;
on the Redis store scoutd and redis-server, both counted), and the peak RSS during the run
(VmHWM from /proc/<pid>/status, reset before each run through /proc/<pid>/clear_refs; nginx =
master + workers; on the Redis store scoutd's own, redis-server's shown beside it, since Redis
holds the decision records). Rounds are interleaved (every target once per round) so a disturbance on the
machine hits all of them alike; the table shows the median of --repeats rounds.

Decision records and Redis writes may trail the answers: a run ends when scoutd reports no
pending store writes (the time that takes counts in its rate) and the server's CPU is idle (so
its CPU figure includes that work).

Latency at half the peak rate: wrk2 is not in Debian, so the same 64 connections are paced with
wrk's delay() hook in bench/load.lua: each connection waits a mean pause between a response and
its next request, 64 / (rate / 2) less the timer overshoot that two warm-up runs measure, which
offers about half of that workload's median peak rate. The achieved rate is printed beside the
p99. (wrk times each request from when it is sent, so
these are service latencies of a closed loop, not wrk2's corrected open-loop figures.)

Targets of issue 9 are printed as met / not met with their numbers. --profile DIR records the
embedded scoutd under fetch, fetch+context and update with `perf record -e cpu-clock -g` and
prints the hottest functions.

Needs wrk, nginx and redis-server (Debian packages; perf from linux-perf for --profile). Python 3
standard library only. SCOUTD selects the binary (default build/scoutd).
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from redis_replicas import free_port, wait_port   # bench/: the same process helpers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCOUTD = os.environ.get("SCOUTD", os.path.join(REPO, "build", "scoutd"))
LOAD_LUA = os.path.join(REPO, "bench", "load.lua")
REDIS_PASSWORD = "bench-redis-password"   # a throwaway server on loopback, deleted after the run
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

FEATURES = ["device", "country", "age", "returning", "hour"]
CONTEXT = {"device": "mobile", "country": "de", "age": 34, "returning": True, "hour": 14}
VARIANTS = {"0": "A", "1": "B", "2": "C", "3": "D"}

# Targets of issue 9: workload -> minimum ratio of the ceiling's requests/s, per store.
RATE_TARGETS = {"fetch": {"embedded": 0.5, "redis": 0.5},
                "fetch+context": {"embedded": 0.4, "redis": 0.4},
                "update": {"embedded": 0.4, "redis": 0.3}}
CPU_TARGET = 2.0          # server CPU per request <= 2 x nginx's
P99_TARGET_MS = 2.0       # at half the peak rate
IDLE_RSS_TARGET_MB = 20.0


# --- processes ---------------------------------------------------------------------------------

def stop(proc):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pid):
    """User + system CPU time of a process so far (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/{pid}/status")


def reset_peak_rss(pid):
    """Sets VmHWM back to the current RSS (Linux >= 4.0; needs to own the process)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


def http_call(port, method, path, body=None, expect=200):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        c.request(method, path, body=None if body is None else json.dumps(body),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        if r.status != expect:
            sys.exit(f"{method} {path} -> {r.status} {data[:300]!r}")
        return data
    finally:
        c.close()


def metric(port, name):
    """A scalar of scoutd's /metrics, or None when it does not export it."""
    text = http_call(port, "GET", "/metrics").decode()
    m = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else None


class Server:
    """Something wrk drives: a port, the processes whose CPU and memory count, a name."""

    name = ""
    port = 0
    scout = False

    def pids(self):
        raise NotImplementedError

    def cpu(self):
        return sum(cpu_seconds(p) for p in self.pids())

    def reset_peak(self):
        return all(reset_peak_rss(p) for p in self.pids())

    def peak_rss_mb(self):
        return sum(status_kb(p, "VmHWM") for p in self.pids()) / 1024

    def rss_mb(self):
        return sum(status_kb(p, "VmRSS") for p in self.pids()) / 1024


class Nginx(Server):
    def __init__(self, tmp, workers):
        self.name = "nginx"
        self.dir = os.path.join(tmp, f"nginx-{workers}")
        os.makedirs(self.dir)
        self.port = free_port()
        conf = os.path.join(self.dir, "nginx.conf")
        temp = {k: os.path.join(self.dir, k) for k in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
        with open(conf, "w") as f:
            f.write(f"""# The ceiling of bench/perf.py: a fixed small JSON for every request (generated).
worker_processes {workers};
daemon off;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 60s;
    client_body_temp_path {temp['body']};
    proxy_temp_path {temp['proxy']};
    fastcgi_temp_path {temp['fastcgi']};
    uwsgi_temp_path {temp['uwsgi']};
    scgi_temp_path {temp['scgi']};
    client_max_body_size 1m;
    server {{
        listen 127.0.0.1:{self.port};
        default_type application/json;
        location / {{ return 200 '{{"ok":true}}'; }}
    }}
}}
""")
        self.proc = subprocess.Popen(["nginx", "-p", self.dir, "-c", conf, "-e", os.path.join(self.dir, "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc, "nginx")
        deadline = time.monotonic() + 10
        while len(children(self.proc.pid)) < workers:
            if time.monotonic() > deadline:
                sys.exit("nginx did not start its workers")
            time.sleep(0.02)
        self.workers = children(self.proc.pid)

    def pids(self):
        return [self.proc.pid] + self.workers

    def stop(self):
        stop(self.proc)


class Redis(Server):
    def __init__(self, tmp):
        self.name = "redis-server"
        self.dir = os.path.join(tmp, "redis")
        os.makedirs(self.dir)
        self.port = free_port()
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--dir", self.dir, "--save", "", "--appendonly", "yes",
                                      "--appendfsync", "everysec", "--requirepass", REDIS_PASSWORD,
                                      "--loglevel", "warning"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc, "redis-server")

    def pids(self):
        return [self.proc.pid]

    def stop(self):
        stop(self.proc)


def scout_env(args):
    """--scout-env NAME=VALUE options as a dict (names must start with SCOUT_ or REDIS_)."""
    env = {}
    for item in args.scout_env:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith(("SCOUT_", "REDIS_")):
            sys.exit(f"--scout-env {item!r}: expected SCOUT_NAME=VALUE or REDIS_NAME=VALUE")
        env[name] = value
    return env


class Scoutd(Server):
    """scoutd with its defaults (log level info, thread pool, SCOUT_SYNC normal), unprotected."""

    def __init__(self, tmp, store, redis=None, extra_env=None):
        self.name = f"scoutd ({store})"
        self.store = store
        self.scout = True
        self.redis = redis
        self.port = free_port()
        data = os.path.join(tmp, f"data-{store}")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SCOUT_", "REDIS_"))}
        env.update(extra_env or {})
        args = [SCOUTD, "--port", str(self.port), "--ui-port", "0", "--data-dir", data]
        if redis:
            args += ["--redis", f"redis://:{REDIS_PASSWORD}@127.0.0.1:{redis.port}"]
        self.log = open(os.path.join(tmp, f"scoutd-{store}.log"), "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        wait_port(self.port, self.proc, self.name)
        time.sleep(0.5)   # let start-up work (store open, background threads) settle
        self.idle_rss_mb = status_kb(self.proc.pid, "VmRSS") / 1024

    def pids(self):
        return [self.proc.pid] + ([self.redis.proc.pid] if self.redis else [])

    def scout_cpu(self):
        return cpu_seconds(self.proc.pid)

    def create(self, body):
        return json.loads(http_call(self.port, "POST", "/api/create_model", body))["model_id"]

    def stop(self):
        stop(self.proc)
        self.log.close()


# --- workloads ---------------------------------------------------------------------------------

def reward_batch(n, with_context):
    ups = []
    for i in range(n):
        u = {"variant_id": i % 4, "reward": 1 if (i * 7) % 3 == 0 else 0}
        if with_context:
            u["context"] = {"device": ["mobile", "desktop", "tablet"][i % 3], "country": ["de", "fr", "us", "jp"][i % 4],
                            "age": 18 + i % 50, "returning": i % 2 == 0, "hour": i % 24}
        ups.append(u)
    return {"updates": ups}


def prepare_scout(s, tmp):
    """Creates the two bench tests, takes them past their uniform warm-up and returns the
    workloads: name -> (method, path, body file)."""
    mid = s.create({"name": "bench", "variants": VARIANTS, "policy": "thompson"})
    cid = s.create({"name": "bench-context", "variants": VARIANTS, "policy": "linucb", "features": FEATURES})
    for test, ctx in ((mid, False), (cid, True)):
        r = json.loads(http_call(s.port, "POST", f"/api/update_model/{test}", reward_batch(100, ctx)))
        if r.get("processed_updates") != 100:
            sys.exit(f"warm-up rewards not applied: {r}")
    bodies = {
        "fetch": ("/api/fetch_recommended_variant", {"cb_model_id": mid}),
        "fetch+context": ("/api/fetch_recommended_variant", {"cb_model_id": cid, "context": CONTEXT}),
        "update": (f"/api/update_model/{mid}", {"updates": [{"variant_id": 1, "reward": 1}]}),
        "update x100": (f"/api/update_model/{mid}", reward_batch(100, False)),
    }
    out = {}
    for name, (path, body) in bodies.items():
        http_call(s.port, "POST", path, body)   # answers 200 before any load
        f = os.path.join(tmp, f"body-{s.store}-{name.replace(' ', '_').replace('+', '_')}.json")
        with open(f, "w") as fh:
            json.dump(body, fh)
        out[name] = ("POST", path, f)
    return out


def ceiling_workloads(tmp, fetch_body_file):
    return {"ceiling GET": ("GET", "/", None), "ceiling POST": ("POST", "/", fetch_body_file)}


def write_body(tmp, name, body):
    f = os.path.join(tmp, name)
    with open(f, "w") as fh:
        json.dump(body, fh)
    return f


# --- one wrk run -------------------------------------------------------------------------------

def wrk(server, workload, seconds, connections, threads, delay_ms=0.0, measure=True):
    """One wrk run against server; with measure, returns its figures."""
    method, path, body_file = workload
    env = dict(os.environ, BENCH_METHOD=method, BENCH_BODY_FILE=body_file or "", BENCH_DELAY_MS=f"{delay_ms:.4f}")
    if measure:
        server.reset_peak()
        cpu0 = server.cpu()
        scout0 = server.scout_cpu() if server.scout else 0.0
    started = time.monotonic()
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s",
                          "-s", LOAD_LUA, f"http://127.0.0.1:{server.port}{path}"],
                         capture_output=True, text=True, env=env)
    m = re.search(r"^BENCH (\{.*\})$", out.stdout, re.M)
    if out.returncode != 0 or not m:
        sys.exit(f"wrk failed against {server.name} {path}:\n{out.stdout}\n{out.stderr}")
    res = json.loads(m.group(1))
    if any(res["errors"].values()):
        sys.exit(f"wrk saw errors against {server.name} {path}: {res['errors']}\n{out.stdout}")
    if not measure:
        return res["requests"] / (res["duration_us"] / 1e6)
    wall = res["duration_us"] / 1e6
    drained = 0.0
    if server.scout:
        # Writes queued behind the answers belong to this run: wait for them, count the time.
        ended = time.monotonic()
        while (metric(server.port, "scout_store_pending_writes") or 0) > 0:
            if time.monotonic() - ended > 120:
                sys.exit(f"{server.name} did not write its queued records within 120 s")
            time.sleep(0.02)
        drained = time.monotonic() - ended
    # The server's CPU counts until it is idle again (at most 5 s).
    idle_deadline = time.monotonic() + 5
    prev = server.cpu()
    while time.monotonic() < idle_deadline:
        time.sleep(0.1)
        now = server.cpu()
        if now - prev < 0.1 * 0.05:
            break
        prev = now
    n = res["requests"]
    cpu = server.cpu() - cpu0
    fig = {
        "requests": n,
        "rate": n / (wall + drained),
        "drained_s": drained,
        "p50_ms": res["latency_us"]["p50"] / 1000,
        "p99_ms": res["latency_us"]["p99"] / 1000,
        "p999_ms": res["latency_us"]["p999"] / 1000,
        "cpu_s_per_1k": cpu / n * 1000,
        "peak_rss_mb": server.peak_rss_mb(),
        "elapsed_s": time.monotonic() - started,
    }
    if server.scout:
        sc = server.scout_cpu() - scout0
        fig["scoutd_cpu_s_per_1k"] = sc / n * 1000
        fig["redis_cpu_s_per_1k"] = (cpu - sc) / n * 1000
        fig["scoutd_peak_rss_mb"] = status_kb(server.proc.pid, "VmHWM") / 1024
    return fig


def pace(server, workload, rate, args):
    """The mean pause (ms) that makes the connections offer about `rate` requests/s. A pause
    lasts longer than asked (wrk's timers fire on whole milliseconds after the event loop wakes),
    so two warm-up runs measure the overshoot and take it off."""
    target_period = 1000.0 * args.connections / rate
    delay = target_period
    for _ in range(2):
        got = wrk(server, workload, max(args.warmup, 1), args.connections, args.threads, delay, measure=False)
        overshoot = 1000.0 * args.connections / got - delay
        delay = max(0.0, target_period - overshoot)
    return delay


def median_of(runs):
    keys = [k for k in runs[0] if isinstance(runs[0][k], (int, float))]
    return {k: statistics.median(r[k] for r in runs) for k in keys}


# --- report ------------------------------------------------------------------------------------

def fmt_rate(x):
    return f"{x:,.0f}"


def print_table(results, order, ceiling_key):
    ceil = results[ceiling_key]["median"]
    print("\n| server | workload | req/s | × ceiling | p50 ms | p99 ms | CPU s / 1k req | × nginx "
          "| peak RSS MB | × nginx |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key in order:
        r = results[key]
        m = r["median"]
        cpu = f"{m['cpu_s_per_1k']:.3f}"
        if "redis_cpu_s_per_1k" in m and m["redis_cpu_s_per_1k"] > 0.0005:
            cpu += f" ({m['scoutd_cpu_s_per_1k']:.3f} + redis {m['redis_cpu_s_per_1k']:.3f})"
        rss = m.get("scoutd_peak_rss_mb", m["peak_rss_mb"])
        rss_text = f"{rss:.1f}"
        if m["peak_rss_mb"] - rss > 0.05:
            rss_text += f" (+ redis {m['peak_rss_mb'] - rss:.1f})"
        print(f"| {r['server']} | {r['workload']} | {fmt_rate(m['rate'])} | {m['rate'] / ceil['rate']:.2f} "
              f"| {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | {cpu} | {m['cpu_s_per_1k'] / ceil['cpu_s_per_1k']:.2f} "
              f"| {rss_text} | {rss / ceil['peak_rss_mb']:.2f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10, help="length of each measured run (default 10)")
    ap.add_argument("--warmup", type=float, default=2, help="warm-up before each run (default 2)")
    ap.add_argument("--repeats", type=int, default=3, help="rounds; the median is reported (default 3)")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    ap.add_argument("--nginx-workers", type=int, default=2, help="worker_processes of the ceiling (default 2)")
    ap.add_argument("--stores", default="embedded,redis", help="comma list of embedded, redis")
    ap.add_argument("--no-half-rate", action="store_true", help="skip the latency runs at half the peak rate")
    ap.add_argument("--quick", action="store_true", help="smoke test: 3 s runs, 1 s warm-up, 1 round")
    ap.add_argument("--json", metavar="FILE", help="write every run and the medians to FILE")
    ap.add_argument("--calibrate-nginx", action="store_true",
                    help="only measure the ceiling with 1, 2 and 4 nginx workers, then exit")
    ap.add_argument("--scout-env", metavar="NAME=VALUE", action="append", default=[],
                    help="an environment variable for every scoutd started (repeatable), e.g. SCOUT_THREADS=8")
    ap.add_argument("--profile", metavar="DIR",
                    help="only profile the embedded scoutd with perf (fetch, fetch+context, update) into DIR")
    ap.add_argument("--http-floor", action="store_true",
                    help="only compare the CPU per request of nginx, scoutd answering a constant (GET /healthz "
                         "through libmicrohttpd) and scoutd's fetch (embedded store)")
    ap.add_argument("--syscalls", action="store_true",
                    help="only count the system calls per request of nginx and the embedded scoutd (perf stat)")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.warmup, args.repeats = 3, 1, 1
    for tool in ("wrk", "nginx", "redis-server"):
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
            sys.exit(f"{tool} is needed (Debian package {tool if tool != 'redis-server' else 'redis-server'})")
    if not os.path.exists(SCOUTD):
        sys.exit(f"{SCOUTD} does not exist: run `make build/scoutd` or set SCOUTD")
    os.environ["PATH"] += ":/usr/sbin"
    stores = [s for s in args.stores.split(",") if s]
    if args.calibrate_nginx:
        return calibrate_nginx(args)
    if args.http_floor:
        return http_floor(args)
    if args.profile:
        return profile(args)
    if args.syscalls:
        return count_syscalls(args)

    results, servers = {}, []
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="scout-perf-") as tmp:
        try:
            nginx = Nginx(tmp, args.nginx_workers)
            servers.append(nginx)
            targets = []   # (key, server, workload name, workload)
            scouts = []
            for store in stores:
                redis = None
                if store == "redis":
                    redis = Redis(tmp)
                    servers.append(redis)
                elif store != "embedded":
                    sys.exit(f"unknown store {store}")
                s = Scoutd(tmp, store, redis, scout_env(args))
                servers.append(s)
                scouts.append(s)
                for name, wl in prepare_scout(s, tmp).items():
                    targets.append((f"{store}/{name}", s, name, wl))
            fetch_body = write_body(tmp, "body-ceiling.json", {"cb_model_id": "00000000-0000-4000-8000-000000000000"})
            ceil_targets = [(f"nginx/{n}", nginx, n, wl) for n, wl in ceiling_workloads(tmp, fetch_body).items()]
            targets = ceil_targets + targets
            idle = {s.store: s.idle_rss_mb for s in scouts}
            if not nginx.reset_peak():
                print("note: /proc/<pid>/clear_refs is not writable: peak RSS is since start", file=sys.stderr)

            for key, srv, name, _ in targets:
                results[key] = {"server": srv.name, "workload": name, "runs": []}
            for rnd in range(args.repeats):
                for key, srv, name, wl in targets:
                    if args.warmup > 0:
                        wrk(srv, wl, args.warmup, args.connections, args.threads, measure=False)
                    fig = wrk(srv, wl, args.seconds, args.connections, args.threads)
                    results[key]["runs"].append(fig)
                    print(f"round {rnd + 1}/{args.repeats} {key:28s} {fmt_rate(fig['rate']):>9} req/s "
                          f"p99 {fig['p99_ms']:.2f} ms  CPU {fig['cpu_s_per_1k']:.3f} s/1k", file=sys.stderr, flush=True)
            for r in results.values():
                r["median"] = median_of(r["runs"])

            half = {}
            if not args.no_half_rate:
                half_targets = [t for t in targets if t[2] in ("ceiling POST", "fetch", "fetch+context", "update")]
                for key, *_ in half_targets:
                    half[key] = {"runs": []}
                for rnd in range(args.repeats):
                    for key, srv, name, wl in half_targets:
                        offered = results[key]["median"]["rate"] / 2
                        delay = pace(srv, wl, offered, args)
                        fig = wrk(srv, wl, args.seconds, args.connections, args.threads, delay)
                        fig["offered"] = offered
                        fig["delay_ms"] = delay
                        half[key]["runs"].append(fig)
                        print(f"half-rate round {rnd + 1}/{args.repeats} {key:28s} {fmt_rate(fig['rate']):>9} req/s "
                              f"(offered {fmt_rate(offered)}) p99 {fig['p99_ms']:.2f} ms", file=sys.stderr, flush=True)
                for h in half.values():
                    h["median"] = median_of(h["runs"])
            after = {s.store: status_kb(s.proc.pid, "VmRSS") / 1024 for s in scouts}
        finally:
            for srv in reversed(servers):
                srv.stop()

    order = [k for k in results]
    print(f"\n### Scout against the ceiling ({os.cpu_count()} cores; wrk -t{args.threads} -c{args.connections} "
          f"-d{args.seconds:g}s after {args.warmup:g}s warm-up; median of {args.repeats}; "
          f"nginx worker_processes {args.nginx_workers})")
    print_table(results, order, "nginx/ceiling POST")
    ceil = results["nginx/ceiling POST"]["median"]
    batch_lines = []
    for store in stores:
        k = f"{store}/update x100"
        if k in results:
            batch_lines.append(f"{store}: {fmt_rate(results[k]['median']['rate'] * 100)} rewards/s, "
                               f"{results[k]['median']['cpu_s_per_1k'] / 100 * 1000:.3f} CPU s per 1k rewards")
    print("\nRatios are to `ceiling POST` (nginx answering a POST with the body of fetch). "
          "Batch update x100: " + "; ".join(batch_lines) + ".")
    if half:
        print(f"\n### Latency at half the peak rate (the same {args.connections} connections, paced)\n")
        print("| server | workload | offered req/s | achieved req/s | p50 ms | p99 ms | p99.9 ms |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for key, h in half.items():
            m = h["median"]
            print(f"| {results[key]['server']} | {results[key]['workload']} | {fmt_rate(m['offered'])} "
                  f"| {fmt_rate(m['rate'])} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | {m['p999_ms']:.2f} |")
    print("\n### RSS of scoutd\n")
    for store in stores:
        print(f"- {store}: {idle[store]:.1f} MB idle after start, {after[store]:.1f} MB after the runs")

    targets_out = []

    def target(desc, value, ok):
        targets_out.append({"target": desc, "value": value, "met": ok})
        print(f"- {'met    ' if ok else 'NOT MET'}  {desc}: {value}")

    print("\n### Targets (issue 9)\n")
    for wl, per_store in RATE_TARGETS.items():
        for store in stores:
            k = f"{store}/{wl}"
            ratio = results[k]["median"]["rate"] / ceil["rate"]
            target(f"{wl} on {store} >= {per_store[store]} x ceiling req/s",
                   f"{ratio:.2f} ({fmt_rate(results[k]['median']['rate'])} vs {fmt_rate(ceil['rate'])})",
                   ratio >= per_store[store])
    for wl in RATE_TARGETS:
        for store in stores:
            k = f"{store}/{wl}"
            ratio = results[k]["median"]["cpu_s_per_1k"] / ceil["cpu_s_per_1k"]
            target(f"CPU per request, {wl} on {store}{' (scoutd + redis-server)' if store == 'redis' else ''} "
                   f"<= {CPU_TARGET} x nginx's",
                   f"{ratio:.2f} ({results[k]['median']['cpu_s_per_1k']:.3f} vs {ceil['cpu_s_per_1k']:.3f} s/1k)",
                   ratio <= CPU_TARGET)
    if half:
        for wl in RATE_TARGETS:
            for store in stores:
                k = f"{store}/{wl}"
                m = half[k]["median"]
                target(f"p99 < {P99_TARGET_MS} ms at half the peak rate, {wl} on {store}",
                       f"{m['p99_ms']:.2f} ms at {fmt_rate(m['rate'])} req/s", m["p99_ms"] < P99_TARGET_MS)
    for store in stores:
        target(f"RSS < {IDLE_RSS_TARGET_MB:g} MB idle, {store}", f"{idle[store]:.1f} MB", idle[store] < IDLE_RSS_TARGET_MB)
    print(f"\n(total time {time.monotonic() - t_start:.0f} s)")

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": {"cores": os.cpu_count()}, "args": vars(args), "results": results,
                       "half_rate": half, "idle_rss_mb": idle, "rss_after_mb": after, "targets": targets_out},
                      f, indent=2)


# --- ceiling calibration and profile ---------------------------------------------------------------

def calibrate_nginx(args):
    """The ceiling with 1, 2 and 4 worker processes, interleaved rounds, medians."""
    with tempfile.TemporaryDirectory(prefix="scout-perf-") as tmp:
        body = write_body(tmp, "body.json", {"cb_model_id": "00000000-0000-4000-8000-000000000000"})
        servers = {}
        try:
            for w in (1, 2, 4):
                servers[w] = Nginx(tmp, w)
            runs = {w: [] for w in servers}
            for _ in range(args.repeats):
                for w, srv in servers.items():
                    wrk(srv, ("POST", "/", body), args.warmup, args.connections, args.threads, measure=False)
                    runs[w].append(wrk(srv, ("POST", "/", body), args.seconds, args.connections, args.threads))
        finally:
            for srv in servers.values():
                srv.stop()
    print(f"\n### nginx ceiling by worker_processes (wrk -t{args.threads} -c{args.connections} -d{args.seconds:g}s, "
          f"median of {args.repeats})\n")
    print("| workers | req/s | p50 ms | p99 ms | CPU s / 1k req |")
    print("|---:|---:|---:|---:|---:|")
    for w, rs in runs.items():
        m = median_of(rs)
        print(f"| {w} | {fmt_rate(m['rate'])} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | {m['cpu_s_per_1k']:.4f} |")


def http_floor(args):
    """What scoutd's HTTP layer costs before any work: nginx's ceiling, scoutd's GET /healthz (a
    constant answered through libmicrohttpd and scoutd's router) and its fetch, in interleaved
    rounds, medians, CPU per request as a ratio to nginx's POST."""
    with tempfile.TemporaryDirectory(prefix="scout-perf-") as tmp:
        nginx = Nginx(tmp, args.nginx_workers)
        s = Scoutd(tmp, "embedded", extra_env=scout_env(args))
        try:
            wls = prepare_scout(s, tmp)
            runs = [(nginx, "nginx POST (ceiling)", ceiling_workloads(tmp, wls["fetch"][2])["ceiling POST"]),
                    (s, "scoutd GET /healthz", ("GET", "/healthz", None)),
                    (s, "scoutd fetch", wls["fetch"])]
            got = {name: [] for _, name, _ in runs}
            for _ in range(args.repeats):
                for srv, name, wl in runs:
                    wrk(srv, wl, args.warmup, args.connections, args.threads, measure=False)
                    got[name].append(wrk(srv, wl, args.seconds, args.connections, args.threads))
        finally:
            s.stop()
            nginx.stop()
    base = median_of(got["nginx POST (ceiling)"])["cpu_s_per_1k"]
    print(f"\n### The HTTP layer's floor (wrk -t{args.threads} -c{args.connections} -d{args.seconds:g}s, "
          f"median of {args.repeats})\n")
    print("| server | req/s | CPU µs per request | × nginx |")
    print("|---|---:|---:|---:|")
    for name, rs in got.items():
        m = median_of(rs)
        print(f"| {name} | {fmt_rate(m['rate'])} | {m['cpu_s_per_1k'] * 1000:.1f} | {m['cpu_s_per_1k'] / base:.2f} |")


def perf_report(data, *opts):
    rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "-g", "none", *opts], capture_output=True, text=True)
    return [ln.rstrip() for ln in rep.stdout.splitlines() if ln.strip() and not ln.startswith("#")]


def profile(args):
    """perf record (cpu-clock, call graphs) of the embedded scoutd under three workloads."""
    if not shutil.which("perf"):
        sys.exit("perf is needed (Debian package linux-perf)")
    os.makedirs(args.profile, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="scout-perf-") as tmp:
        s = Scoutd(tmp, "embedded", extra_env=scout_env(args))
        try:
            wls = prepare_scout(s, tmp)
            for name in ("fetch", "fetch+context", "update"):
                wl = wls[name]
                wrk(s, wl, args.warmup, args.connections, args.threads, measure=False)
                data = os.path.join(args.profile, f"perf-{name.replace('+', '_')}.data")
                # DWARF unwinding: scoutd and the Debian libraries are built without frame pointers.
                rec = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "499", "--call-graph", "dwarf,16384",
                                        "-o", data, "-p", str(s.proc.pid)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(0.5)
                fig = wrk(s, wl, args.seconds, args.connections, args.threads)
                rec.send_signal(signal.SIGINT)
                rec.wait(timeout=120)
                by_thread = perf_report(data, "--no-children", "--sort", "comm", "--percent-limit", "1")
                self_time = perf_report(data, "--no-children", "--sort", "dso,symbol", "--percent-limit", "1.5")
                inclusive = [ln for ln in perf_report(data, "--children", "--sort", "dso,symbol", "--percent-limit", "3")
                             if "[k]" not in ln]
                with open(os.path.join(args.profile, f"report-{name.replace('+', '_')}.txt"), "w") as f:
                    f.write("\n".join(["# by thread"] + by_thread + ["# self"] + self_time + ["# inclusive"] + inclusive))
                print(f"\n### {name}: {fmt_rate(fig['rate'])} req/s under perf (cpu-clock samples of scoutd)\n")
                print("By thread:\n```\n" + "\n".join(by_thread[:10]) + "\n```")
                print("Self time (>= 1.5%):\n```\n" + "\n".join(self_time[:20]) + "\n```")
                print("Inclusive time of user-space functions (>= 3%):\n```\n" + "\n".join(inclusive[:30]) + "\n```")
        finally:
            s.stop()


SYSCALLS = ["recvfrom", "sendmsg", "writev", "epoll_wait", "epoll_ctl", "read", "write", "pwrite64", "pread64",
            "fcntl", "fdatasync", "futex"]


def count_syscalls(args):
    """System calls per request: `perf stat` on the syscalls:sys_enter_* tracepoints of the
    server's processes (every thread) during one run of each workload."""
    if not shutil.which("perf"):
        sys.exit("perf is needed (Debian package linux-perf)")
    events = ",".join(f"syscalls:sys_enter_{name}" for name in SYSCALLS)
    rows = []
    with tempfile.TemporaryDirectory(prefix="scout-perf-") as tmp:
        nginx = Nginx(tmp, args.nginx_workers)
        s = Scoutd(tmp, "embedded", extra_env=scout_env(args))
        try:
            wls = prepare_scout(s, tmp)
            runs = [(nginx, "ceiling POST", ceiling_workloads(tmp, wls["fetch"][2])["ceiling POST"])]
            runs += [(s, name, wls[name]) for name in ("fetch", "fetch+context", "update")]
            for server, name, wl in runs:
                wrk(server, wl, args.warmup, args.connections, args.threads, measure=False)
                out = os.path.join(tmp, "stat.csv")
                stat = subprocess.Popen(["perf", "stat", "-x,", "-o", out, "-e", events,
                                         "-p", ",".join(str(p) for p in server.pids())],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(0.3)
                fig = wrk(server, wl, args.seconds, args.connections, args.threads)
                stat.send_signal(signal.SIGINT)
                stat.wait(timeout=60)
                counts = {}
                with open(out) as f:
                    for line in f:
                        parts = line.split(",")
                        if len(parts) > 2 and parts[0].strip().isdigit():
                            counts[parts[2].rsplit("sys_enter_", 1)[-1]] = int(parts[0])
                rows.append((server.name, name, fig["requests"], counts))
        finally:
            s.stop()
            nginx.stop()
    print("\n### System calls per request (perf stat, syscalls:sys_enter_*)\n")
    print("| server | workload | " + " | ".join(SYSCALLS) + " | total |")
    print("|---|---|" + "---:|" * (len(SYSCALLS) + 1))
    for server, name, n, counts in rows:
        per = [counts.get(c, 0) / n for c in SYSCALLS]
        print(f"| {server} | {name} | " + " | ".join(f"{x:.2f}" for x in per) + f" | {sum(per):.2f} |")


if __name__ == "__main__":
    main()
