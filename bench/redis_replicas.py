#!/usr/bin/python3
"""Throughput of 1, 2 and 3 scoutd replicas sharing one Redis, and the staleness between them.

For each replica count it starts a password-protected redis-server (appendonly, everysec) and
that many scoutd on the Redis store, creates one 4-variant test, and then, for each workload,
drives every replica at once with its own wrk (keep-alive, --connections per replica, after a
warm-up) and adds up the requests/s; a run ends when every decision record it made is in Redis
(the rate counts that time too), and the CPU the replicas and Redis spent is divided by the
requests:

  fetch   POST /api/fetch_recommended_variant without context (bench/fetch.lua)
  update  POST /api/update_model/{id} with one reward naming its variant (bench/update.lua)

After each update run it checks that every replica shows the same number of rewards, and that
this number is what Redis holds (events in the stream, none trimmed during the run).
Staleness: with two replicas, 200 rewards are sent one by one to A; for each, the time from A's
answer until B's /metrics counts it (B is polled without pause; one poll's own round trip is
printed beside it).

Needs redis-server and wrk (Debian packages). Python 3 standard library only. Prints a markdown
table. `make bench` runs it; SCOUTD selects the binary (default build/scoutd).
"""

import argparse
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCOUTD = os.environ.get("SCOUTD", os.path.join(REPO, "build", "scoutd"))
PASSWORD = "bench-redis-password"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    sys.exit(f"{what} did not listen on {port}")


def call(port, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request(method, path, body=None if body is None else json.dumps(body),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        if r.status != 200:
            sys.exit(f"{method} {path} -> {r.status} {data[:200]!r}")
        return json.loads(data)
    finally:
        c.close()


def rewards_in(text, mid):
    m = re.search(rf'^scout_rewards_total{{model_id="{mid}"}} (\d+)$', text, re.M)
    return int(m.group(1)) if m else 0


def pending_writes(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request("GET", "/metrics")
        return int(re.search(r"^scout_store_pending_writes (\d+)$", c.getresponse().read().decode(), re.M).group(1))
    finally:
        c.close()


def updates_of(port, mid):
    """Rewards the replica learned for the test (from /metrics: cheap, unlike model_details,
    whose analytics read the recent decisions)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request("GET", "/metrics")
        return rewards_in(c.getresponse().read().decode(), mid)
    finally:
        c.close()


class Setup:
    """A redis-server and n scoutd replicas on it, in a temporary directory."""

    def __init__(self, n, tmp):
        self.procs = []
        self.redis_port = free_port()
        rdir = os.path.join(tmp, "redis")
        os.makedirs(rdir)
        redis = subprocess.Popen(["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                                  "--dir", rdir, "--save", "", "--appendonly", "yes",
                                  "--appendfsync", "everysec", "--requirepass", PASSWORD,
                                  "--loglevel", "warning"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(redis)
        wait_port(self.redis_port, redis, "redis-server")
        self.ports = []
        for k in range(n):
            port = free_port()
            env = {k2: v for k2, v in os.environ.items() if not k2.startswith(("SCOUT_", "REDIS_"))}
            env["SCOUT_LOG_LEVEL"] = "warn"
            p = subprocess.Popen([SCOUTD, "--port", str(port), "--ui-port", "0",
                                  "--data-dir", os.path.join(tmp, f"d{k}"),
                                  "--redis", f"redis://:{PASSWORD}@127.0.0.1:{self.redis_port}"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            self.procs.append(p)
            wait_port(port, p, f"scoutd replica {k}")
            self.ports.append(port)

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()

    def redis_cli(self, *args):
        env = dict(os.environ, REDISCLI_AUTH=PASSWORD)
        return subprocess.run(["redis-cli", "-p", str(self.redis_port), *args], capture_output=True, text=True,
                              env=env, check=True).stdout.strip()


def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk_all(setup, script, path, mid, seconds, connections):
    """One wrk per replica, all at once: the sum of their requests/s, the worst p99 (ms), and the
    CPU the replicas and Redis spent per request (µs)."""
    ports = setup.ports
    before = [cpu_seconds(p.pid) for p in setup.procs]
    env = dict(os.environ, SCOUT_TEST_ID=mid)
    procs = [subprocess.Popen(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script,
                               f"http://127.0.0.1:{port}{path}"], stdout=subprocess.PIPE, text=True, env=env)
             for port in ports]
    rate, p99, total = 0.0, 0.0, 0
    for p in procs:
        out, _ = p.communicate()
        m = re.search(r"Requests/sec:\s+([\d.]+)", out)
        if not m or "Non-2xx" in out or "Socket errors" in out:
            sys.exit(f"wrk failed or saw errors:\n{out}")
        rate += float(m.group(1))
        total += int(re.search(r"(\d+) requests in", out).group(1))
        m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)$", out, re.M)
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        p99 = max(p99, float(m.group(1)) * scale)
    # Decision records are written behind the answers: the run ends when they are all in Redis,
    # and the rate counts that time too (a bounded queue can hide a few seconds of writes).
    ended, drained = time.monotonic(), 0.0
    while any(pending_writes(port) for port in ports):
        drained = time.monotonic() - ended
        if drained > 120:
            sys.exit("the replicas did not write their queued decision records within 120 s")
        time.sleep(0.05)
    spent = [cpu_seconds(p.pid) - b for p, b in zip(setup.procs, before)]
    sustained = total / (seconds + drained)
    return min(rate, sustained), p99, sum(spent[1:]) / total * 1e6, spent[0] / total * 1e6


def staleness(ports, mid, rounds):
    a, b = ports[0], ports[1]
    ca = http.client.HTTPConnection("127.0.0.1", a, timeout=30)
    cb = http.client.HTTPConnection("127.0.0.1", b, timeout=30)
    base = updates_of(b, mid)
    seen_after, poll_cost = [], []
    for i in range(rounds):
        ca.request("POST", f"/api/update_model/{mid}", body=json.dumps({"updates": [{"variant_id": 1, "reward": 1}]}),
                   headers={"Content-Type": "application/json"})
        r = ca.getresponse()
        r.read()
        acked = time.monotonic()
        while True:
            t0 = time.monotonic()
            cb.request("GET", "/metrics")
            seen = rewards_in(cb.getresponse().read().decode(), mid)
            poll_cost.append(time.monotonic() - t0)
            if seen >= base + i + 1:
                seen_after.append(time.monotonic() - acked)
                break
            if time.monotonic() - acked > 10:
                sys.exit("a reward did not reach the other replica within 10 s")
    ms = sorted(x * 1000 for x in seen_after)
    return ms[len(ms) // 2], ms[int(len(ms) * 0.99) - 1], statistics.median(poll_cost) * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicas", default="1,2,3")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32, help="per replica")
    args = ap.parse_args()
    fetch_lua = os.path.join(REPO, "bench", "fetch.lua")
    update_lua = os.path.join(REPO, "bench", "update.lua")
    rows, stale = [], None
    for n in (int(x) for x in args.replicas.split(",")):
        with tempfile.TemporaryDirectory(prefix="scout-bench-") as tmp:
            setup = Setup(n, tmp)
            try:
                mid = call(setup.ports[0], "POST", "/api/create_model",
                           {"name": "bench", "variants": {"0": "A", "1": "B", "2": "C", "3": "D"}})["model_id"]
                for port in setup.ports:   # every replica serves it before the load starts
                    deadline = time.monotonic() + 10
                    while mid not in [m["model_id"] for m in call(port, "GET", "/api/models")]:
                        if time.monotonic() > deadline:
                            sys.exit("the test did not reach every replica")
                        time.sleep(0.01)
                wrk_all(setup, fetch_lua, "/api/fetch_recommended_variant", mid, 2, args.connections)
                fetch = wrk_all(setup, fetch_lua, "/api/fetch_recommended_variant", mid, args.seconds,
                                args.connections)
                update = wrk_all(setup, update_lua, f"/api/update_model/{mid}", mid, args.seconds,
                                 args.connections)
                stored = int(setup.redis_cli("XLEN", f"scout:{{{mid}}}:events"))
                deadline = time.monotonic() + 10
                while {updates_of(p, mid) for p in setup.ports} != {stored}:
                    if time.monotonic() > deadline:
                        sys.exit(f"replicas disagree: {[updates_of(p, mid) for p in setup.ports]}, "
                                 f"Redis holds {stored}")
                    time.sleep(0.05)
                rows.append((n, fetch, update, stored))
                if n == 2:
                    stale = staleness(setup.ports, mid, 200)
            finally:
                setup.stop()
    print(f"\n### Replicas on one Redis ({os.cpu_count()} cores; wrk -t1 -c{args.connections} "
          f"-d{args.seconds}s per replica, all at once)\n")
    print("| replicas | fetch req/s | p99 | CPU µs/req scoutd + Redis | update req/s | p99 "
          "| CPU µs/req scoutd + Redis | rewards stored = learned by each |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, f, u, stored in rows:
        print(f"| {n} | {f[0]:,.0f} | {f[1]:.1f} ms | {f[2]:.0f} + {f[3]:.0f} | {u[0]:,.0f} | {u[1]:.1f} ms "
              f"| {u[2]:.0f} + {u[3]:.0f} | {stored:,} |")
    if stale:
        print(f"\nStaleness A→B over 200 rewards: p50 {stale[0]:.2f} ms, p99 {stale[1]:.2f} ms "
              f"(one /metrics poll of B costs {stale[2]:.2f} ms and is included)")


if __name__ == "__main__":
    main()
