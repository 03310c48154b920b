#!/usr/bin/python3
"""Memory of scoutd: idle, with 1,000 tests and 100,000 pending decisions, and over a mixed load.

1. Starts scoutd (embedded store by default; --store redis starts a password-protected
   redis-server beside it) and reads its RSS idle.
2. Creates --tests tests of 4 variants (default 1,000) and makes --decisions decisions (default
   100,000) spread over them, each with its own request_id and never rewarded, so every record
   is pending (within REDIS_CONTEXT_TTL, default 24 h). It checks the store holds them
   (/admin/redis_health context_keys_count) and reads RSS and peak RSS (VmRSS, VmHWM).
3. Drives a mixed load with wrk for --minutes (default 5) through bench/mixed.lua (-t2 -c16:
   55% fetch with fresh request ids, 35% update joining an earlier decision, 9% model_details,
   1% models) and samples RSS every 10 s.

"Flat" (printed with its numbers): after a warm-up of the first minute (a fifth of the run when it
is shorter), RSS never rises more than FLAT_BOUND above its value at the end of the warm-up, where
FLAT_BOUND = max(2 MB, 5% of that value) — room for allocator and SQLite page-cache jitter, far
below what a per-request or per-decision leak at these rates would add (thousands of requests
per second: 1 byte per request is ~0.3 MB/min, and the run lasts minutes). The least-squares slope
of the post-warm-up samples is printed too, in MB/min.

Targets of issue 9 printed as met / not met: RSS < 20 MB idle; < 64 MB with 1,000 tests and
100,000 pending decisions; flat over the load.

Needs wrk (and redis-server for --store redis). Python 3 standard library only. SCOUTD selects
the binary (default build/scoutd).
"""

import argparse
import json
import os
import sys
import subprocess
import tempfile
import threading
import time
import http.client
import re

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import perf  # noqa: E402  (the process helpers of the throughput benchmark)

MIXED_LUA = os.path.join(perf.REPO, "bench", "mixed.lua")
IDLE_TARGET_MB = 20.0
LOADED_TARGET_MB = 64.0


def make_decisions(port, tests, total, workers=4):
    """total fetches with unique request ids over tests, on `workers` keep-alive connections."""
    errors = []

    def work(k):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            for i in range(k, total, workers):
                body = json.dumps({"cb_model_id": tests[i % len(tests)], "request_id": f"pending-{i}"})
                c.request("POST", "/api/fetch_recommended_variant", body=body,
                          headers={"Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                if r.status != 200:
                    errors.append(r.status)
                    return
        except OSError as e:
            errors.append(str(e))
        finally:
            c.close()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit(f"fetch failed while making pending decisions: {errors[:3]}")


def rss(pid):
    return perf.status_kb(pid, "VmRSS") / 1024


def slope_mb_per_min(samples):
    """Least-squares slope of (seconds, MB) samples, in MB per minute."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mx = sum(t for t, _ in samples) / n
    my = sum(v for _, v in samples) / n
    sxx = sum((t - mx) ** 2 for t, _ in samples)
    sxy = sum((t - mx) * (v - my) for t, v in samples)
    return sxy / sxx * 60 if sxx else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", choices=("embedded", "redis"), default="embedded")
    ap.add_argument("--tests", type=int, default=1000)
    ap.add_argument("--decisions", type=int, default=100_000)
    ap.add_argument("--minutes", type=float, default=5.0, help="length of the mixed load (default 5)")
    ap.add_argument("--interval", type=float, default=10.0, help="seconds between RSS samples (default 10)")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--json", metavar="FILE", help="write the figures and the samples to FILE")
    args = ap.parse_args()
    if not os.path.exists(perf.SCOUTD):
        sys.exit(f"{perf.SCOUTD} does not exist: run `make build/scoutd` or set SCOUTD")
    out = {"store": args.store, "tests": args.tests, "decisions": args.decisions}
    with tempfile.TemporaryDirectory(prefix="scout-memory-") as tmp:
        redis = perf.Redis(tmp) if args.store == "redis" else None
        s = perf.Scoutd(tmp, args.store, redis)
        pid = s.proc.pid
        try:
            out["idle_mb"] = s.idle_rss_mb
            print(f"idle: {s.idle_rss_mb:.1f} MB", file=sys.stderr, flush=True)
            t0 = time.monotonic()
            tests = [s.create({"name": f"mem-{i}", "variants": perf.VARIANTS}) for i in range(args.tests)]
            out["after_tests_mb"] = rss(pid)
            print(f"{args.tests} tests created in {time.monotonic() - t0:.1f} s: {out['after_tests_mb']:.1f} MB",
                  file=sys.stderr, flush=True)
            t0 = time.monotonic()
            make_decisions(s.port, tests, args.decisions)
            # Decision records are written behind the answers: wait until the store holds them all.
            deadline = time.monotonic() + 120
            while True:
                health = json.loads(perf.http_call(s.port, "GET", "/admin/redis_health"))
                held = health.get("context_keys_count", 0)
                if held >= args.decisions:
                    break
                if time.monotonic() > deadline:
                    sys.exit(f"the store holds {held} decisions, not {args.decisions}")
                time.sleep(0.2)
            time.sleep(1)
            out["pending_decisions"] = held
            out["loaded_mb"] = rss(pid)
            out["loaded_peak_mb"] = perf.status_kb(pid, "VmHWM") / 1024
            print(f"{args.decisions} decisions in {time.monotonic() - t0:.1f} s, store holds {held}: "
                  f"{out['loaded_mb']:.1f} MB (peak {out['loaded_peak_mb']:.1f} MB)", file=sys.stderr, flush=True)

            tests_file = os.path.join(tmp, "tests.txt")
            with open(tests_file, "w") as f:
                f.write("\n".join(tests) + "\n")
            seconds = max(1, int(args.minutes * 60))
            env = dict(os.environ, BENCH_TESTS_FILE=tests_file)
            w = subprocess.Popen(["wrk", "-t2", f"-c{args.connections}", f"-d{seconds}s", "--timeout", "10s",
                                  "-s", MIXED_LUA, f"http://127.0.0.1:{s.port}/"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            start = time.monotonic()
            samples = [(0.0, rss(pid))]
            while w.poll() is None:
                nxt = start + len(samples) * args.interval
                while time.monotonic() < nxt and w.poll() is None:
                    time.sleep(0.2)
                if w.poll() is None:
                    samples.append((time.monotonic() - start, rss(pid)))
                    print(f"  {samples[-1][0]:5.0f} s  {samples[-1][1]:.1f} MB", file=sys.stderr, flush=True)
            stdout, stderr = w.communicate()
            m = re.search(r"^BENCH (\{.*\})$", stdout, re.M)
            if w.returncode != 0 or not m:
                sys.exit(f"wrk failed:\n{stdout}\n{stderr}")
            res = json.loads(m.group(1))
            if any(res["errors"].values()):
                sys.exit(f"wrk saw errors: {res['errors']}\n{stdout}")
            samples.append((time.monotonic() - start, rss(pid)))
            out["load"] = {"requests": res["requests"], "rate": res["requests"] / (res["duration_us"] / 1e6),
                           "p50_ms": res["latency_us"]["p50"] / 1000, "p99_ms": res["latency_us"]["p99"] / 1000}
            out["samples"] = samples
            out["end_peak_mb"] = perf.status_kb(pid, "VmHWM") / 1024
            health = json.loads(perf.http_call(s.port, "GET", "/admin/redis_health"))
            out["pending_decisions_end"] = health.get("context_keys_count", 0)
        finally:
            s.stop()
            if redis:
                redis.stop()

    warm = min(60.0, seconds / 5)
    base = min(samples, key=lambda p: abs(p[0] - warm))
    after = [p for p in samples if p[0] >= base[0]]
    bound = max(2.0, 0.05 * base[1])
    growth = max(v for _, v in after) - base[1]
    slope = slope_mb_per_min(after)
    flat = growth <= bound
    out.update({"warmup_s": base[0], "flat_bound_mb": bound, "growth_mb": growth, "slope_mb_per_min": slope,
                "flat": flat})

    print(f"\n### Memory of scoutd ({args.store} store)\n")
    print("| state | RSS MB |")
    print("|---|---:|")
    print(f"| idle after start | {out['idle_mb']:.1f} |")
    print(f"| {args.tests:,} tests of 4 variants | {out['after_tests_mb']:.1f} |")
    print(f"| + {args.decisions:,} pending decisions (store holds {out['pending_decisions']:,}) "
          f"| {out['loaded_mb']:.1f} (peak {out['loaded_peak_mb']:.1f}) |")
    print(f"| after {args.minutes:g} min of mixed load ({out['load']['requests']:,} requests, "
          f"{out['load']['rate']:,.0f} req/s, p99 {out['load']['p99_ms']:.1f} ms; "
          f"{out['pending_decisions_end']:,} decisions held) | {samples[-1][1]:.1f} (peak {out['end_peak_mb']:.1f}) |")
    print(f"\nRSS every {args.interval:g} s: " + ", ".join(f"{v:.1f}" for _, v in samples))
    print(f"After the warm-up ({base[0]:.0f} s, {base[1]:.1f} MB): highest rise {growth:+.2f} MB "
          f"(flat bound {bound:.2f} MB), slope {slope:+.3f} MB/min")
    print("\n### Targets (issue 9)\n")
    targets = [
        (f"RSS < {IDLE_TARGET_MB:g} MB idle", f"{out['idle_mb']:.1f} MB", out["idle_mb"] < IDLE_TARGET_MB),
        (f"RSS < {LOADED_TARGET_MB:g} MB with {args.tests:,} tests and {args.decisions:,} pending decisions",
         f"{out['loaded_mb']:.1f} MB (peak {out['loaded_peak_mb']:.1f} MB)",
         out["loaded_mb"] < LOADED_TARGET_MB and out["loaded_peak_mb"] < LOADED_TARGET_MB),
        (f"flat over the {args.minutes:g}-minute mixed load (rise after warm-up <= {bound:.2f} MB)",
         f"{growth:+.2f} MB, slope {slope:+.3f} MB/min", flat),
    ]
    for desc, value, ok in targets:
        print(f"- {'met    ' if ok else 'NOT MET'}  {desc}: {value}")
    out["targets"] = [{"target": d, "value": v, "met": ok} for d, v, ok in targets]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
