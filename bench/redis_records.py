#!/usr/bin/python3
"""What a decision record costs Redis: the store's format as scoutd writes it, and the floor of
that format and of three others, written without Lua.

1. scoutd on the Redis store under the fetch workload of bench/perf.py (wrk, 64 connections,
   --seconds): Redis' CPU per decision record, and from INFO commandstats the time of the
   record-writing script and of each command it calls, per record.
2. The same number of records (--records) piped into a fresh redis-server (appendonly,
   everysec, as in perf.py) with `redis-cli --pipe`, no Lua, in four shapes:
     current   the store's format (format 2): one field of a per-test hash, its value one line
               (src/store/redis_record.h), and one entry of a per-test stream (the order of
               writing: scans by time, trimming)
     format 1  the format before: an 11-field hash per record with its own expiry (PEXPIREAT)
               and the same two sorted-set entries
     string    one string per record with its expiry (SET ... PXAT) and one sorted-set entry
     stream    one entry in a per-test stream, its id kept in a per-test hash by request id
   For each: Redis CPU (utime + stime of redis-server, until it is idle) and memory per record.

Needs redis-server, redis-cli and wrk (Debian packages). Python 3 standard library only.
SCOUTD selects the binary (default build/scoutd).
"""

import argparse
import shutil
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid

import perf   # bench/: the servers, the workloads and wrk
from redis_replicas import free_port, wait_port

TEST = "11111111-1111-4111-8111-111111111111"
TTL = 86400.0


def resp(*args):
    """One command in the Redis protocol."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def shape_current(i, rid, t):
    e = t + TTL
    value = f"{i % 4} {0.25 + i % 7 / 100!r} {i % 2} {t:.6f} {e:.6f} 0 0 - 17 0 0 0\n"
    return (resp("HSET", f"scout:{{{TEST}}}:d", rid, value) +
            resp("XADD", f"scout:{{{TEST}}}:dlog", "*", "r", rid))


def shape_format1(i, rid, t):
    dk = f"scout:{{{TEST}}}:d:{rid}"
    e = t + TTL
    return (resp("HSET", dk, "v", i % 4, "p", repr(0.25 + i % 7 / 100), "x", i % 2, "c", "", "t", repr(t),
                 "e", repr(e), "s", 0, "a", 0, "dr", "", "mv", 17) +
            resp("PEXPIREAT", dk, int(e * 1000)) +
            resp("ZADD", f"scout:{{{TEST}}}:dt", repr(t), rid) +
            resp("ZADD", f"scout:{{{TEST}}}:dx", repr(e), rid))


def shape_string(i, rid, t):
    e = t + TTL
    packed = f"{i % 4}|{0.25 + i % 7 / 100!r}|{i % 2}||{t!r}|{e!r}|0|0||17"
    return (resp("SET", f"scout:{{{TEST}}}:d:{rid}", packed, "PXAT", int(e * 1000)) +
            resp("ZADD", f"scout:{{{TEST}}}:dt", repr(t), rid))


def shape_stream(i, rid, t):
    sid = f"{int(t * 1000)}-{i}"
    return (resp("XADD", f"scout:{{{TEST}}}:ds", sid, "q", rid, "v", i % 4, "p", repr(0.25 + i % 7 / 100),
                 "x", i % 2, "c", "", "e", repr(t + TTL), "s", 0, "a", 0, "dr", "", "mv", 17) +
            resp("HSET", f"scout:{{{TEST}}}:di", rid, sid))


SHAPES = [("current: hash field + stream entry", shape_current),
          ("format 1: hash + expiry + 2 sorted-set entries", shape_format1),
          ("string with expiry + 1 sorted-set entry", shape_string),
          ("stream entry + hash field", shape_stream)]


def wait_idle(pid):
    prev = perf.cpu_seconds(pid)
    for _ in range(50):
        time.sleep(0.1)
        now = perf.cpu_seconds(pid)
        if now - prev < 0.002:
            return now
        prev = now
    return prev


def used_memory(port, password=None):
    args = ["redis-cli", "-p", str(port)] + (["-a", password, "--no-auth-warning"] if password else [])
    out = subprocess.run(args + ["info", "memory"], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"^used_memory:(\d+)", out, re.M).group(1))


def floor(tmp, n):
    print(f"\n### {n:,} records piped without Lua (`redis-cli --pipe`)\n")
    print("| shape | Redis CPU µs per record | bytes per record |")
    print("|---|---:|---:|")
    t0 = time.time()
    rids = [str(uuid.UUID(int=(int(t0 * 1000) + i) << 80 | 4 << 76 | 2 << 62 | i)) for i in range(n)]
    for name, shape in SHAPES:
        d = tempfile.mkdtemp(dir=tmp)
        port = free_port()
        proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", d,
                                 "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
                                 "--loglevel", "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port, proc, "redis-server")
            data = b"".join(shape(i, rids[i], t0 + i * 1e-4) for i in range(n))
            mem0, cpu0 = used_memory(port), wait_idle(proc.pid)
            subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=data, capture_output=True, check=True)
            cpu1 = wait_idle(proc.pid)
            mem1 = used_memory(port)
            print(f"| {name} | {(cpu1 - cpu0) / n * 1e6:.1f} | {(mem1 - mem0) / n:.0f} |")
        finally:
            perf.stop(proc)


def commandstats(port):
    out = subprocess.run(["redis-cli", "-p", str(port), "-a", perf.REDIS_PASSWORD, "--no-auth-warning",
                          "info", "commandstats"], capture_output=True, text=True, check=True).stdout
    return {m.group(1): (int(m.group(2)), int(m.group(3)))
            for m in re.finditer(r"^cmdstat_([a-z|]+):calls=(\d+),usec=(\d+),", out, re.M)}


def stored_records(port):
    """Decision records in Redis: the fields of every scout:{T}:d hash."""
    def cli(*args):
        return subprocess.run(["redis-cli", "-p", str(port), "-a", perf.REDIS_PASSWORD, "--no-auth-warning", *args],
                              capture_output=True, text=True, check=True).stdout.split()
    return sum(int(cli("hlen", key)[0]) for key in cli("--scan", "--pattern", "scout:{*}:d"))


def through_scoutd(tmp, seconds):
    redis = perf.Redis(tmp)
    s = perf.Scoutd(tmp, "redis", redis=redis)
    try:
        wls = perf.prepare_scout(s, tmp)
        perf.wrk(s, wls["fetch"], 2, 64, 2, measure=False)
        records_before, before = stored_records(redis.port), commandstats(redis.port)
        fig = perf.wrk(s, wls["fetch"], seconds, 64, 2)
        records_after, after = stored_records(redis.port), commandstats(redis.port)
    finally:
        s.stop()
        redis.stop()
    diff = {k: (v[0] - before.get(k, (0, 0))[0], v[1] - before.get(k, (0, 0))[1]) for k, v in after.items()}
    records = records_after - records_before
    print(f"\n### scoutd on the Redis store, fetch for {seconds:g} s: {fig['requests']:,} decisions, "
          f"{records:,} records written\n")
    redis_cpu = fig["redis_cpu_s_per_1k"] * fig["requests"] / 1000
    print(f"redis-server's CPU: {redis_cpu / max(records, 1) * 1e6:.1f} µs per record written, "
          f"{fig['redis_cpu_s_per_1k'] * 1000:.1f} µs per fetch; scoutd's: {fig['scoutd_cpu_s_per_1k'] * 1000:.1f} µs "
          f"per fetch. (Records of the warm-up still queued are written during the run.)\n")
    print("| command | calls | µs per record |")
    print("|---|---:|---:|")
    for name in ("evalsha", "hset", "xadd", "zadd", "hincrby", "hget", "exists"):
        calls, usec = diff.get(name, (0, 0))
        if calls:
            print(f"| {name} | {calls:,} | {usec / max(records, 1):.1f} |")
    print("\n(evalsha includes the commands its script calls.)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=200000, help="records piped per shape (default 200000)")
    ap.add_argument("--seconds", type=float, default=6, help="length of the fetch run through scoutd (default 6)")
    args = ap.parse_args()
    for tool in ("redis-server", "redis-cli", "wrk"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is needed (Debian packages redis-server, redis-tools, wrk)")
    if not os.path.exists(perf.SCOUTD):
        sys.exit(f"{perf.SCOUTD} does not exist: run `make build/scoutd` or set SCOUTD")
    with tempfile.TemporaryDirectory(prefix="scout-records-") as tmp:
        through_scoutd(tmp, args.seconds)
        floor(tmp, args.records)


if __name__ == "__main__":
    main()
