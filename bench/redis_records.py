#!/usr/bin/python3
"""What a decision record costs Redis: the store's format as scoutd writes it, and the floor of
that format, of the formats before and of two other shapes.

1. scoutd on the Redis store under the fetch workload of bench/perf.py (wrk, 64 connections,
   --seconds): Redis' CPU per decision record, and from INFO commandstats the time of each
   command that writes records, per record.
2. The same number of records (--records) piped into a fresh redis-server (appendonly,
   everysec, as in perf.py) with `redis-cli --pipe`, in batches of BATCH records, in five
   shapes:
     current   the store's format (3), as scoutd writes a batch of one test: a MULTI block of
               one HSET of the records (fields of a per-test hash, each value one line,
               src/store/redis_record.h), one entry of a per-test stream listing them (the
               order of writing: scans by time, trimming), and the counting script (EVAL)
     format 2  the format before, without its Lua script (which cost about twice that): a
               hash field and a stream entry per record
     format 1  the first format: an 11-field hash per record with its own expiry (PEXPIREAT)
               and two sorted-set entries
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


BATCH = 32   # records per batch: scoutd's writer writes what queued since its last round trip


def record_line(i, t):
    return f"{i % 4} {0.25 + i % 7 / 100!r} {i % 2} {t:.6f} {t + TTL:.6f} 0 0 - 17 0 0 0\n"


COUNT_LUA = None   # DEC_COUNT_LUA of src/store/store_redis.c, read from the source


def count_script():
    global COUNT_LUA
    if COUNT_LUA is None:
        src = open(os.path.join(os.path.dirname(__file__), "..", "src", "store", "store_redis.c")).read()
        body = re.search(r"static const char DEC_COUNT_LUA\[\] =\n(.*?);\n", src, re.S).group(1)
        COUNT_LUA = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', body)).encode().decode("unicode_escape")
    return COUNT_LUA


def shape_current(batch):
    """As scoutd writes a batch of one test: one MULTI block of one HSET, one dlog entry, and the
    counting script."""
    k = lambda name: f"scout:{{{TEST}}}:{name}"
    arms = {}
    for i, _, _ in batch:
        arms[i % 4] = arms.get(i % 4, 0) + 1
    return (resp("MULTI") +
            resp("HSET", k("d"), *[x for i, rid, t in batch for x in (rid, record_line(i, t))]) +
            resp("XADD", k("dlog"), "*", "n", len(batch), *[x for _, rid, t in batch for x in (rid, f"{t:.6f}")]) +
            resp("EVAL", count_script(), 5, k("meta"), k("armpred"), k("settle"), k("d"), k("dlog"), len(batch),
                 f"{batch[-1][2]:.6f}", *[x for v, c in arms.items() for x in (v, c)]) +
            resp("EXEC"))


def shape_format2(batch):
    """Format 2's records, without its Lua script: a hash field and a dlog entry per record."""
    return b"".join(resp("HSET", f"scout:{{{TEST}}}:d", rid, record_line(i, t)) +
                    resp("XADD", f"scout:{{{TEST}}}:dlog", "*", "r", rid) for i, rid, t in batch)


def shape_format1(batch):
    out = []
    for i, rid, t in batch:
        dk = f"scout:{{{TEST}}}:d:{rid}"
        e = t + TTL
        out.append(resp("HSET", dk, "v", i % 4, "p", repr(0.25 + i % 7 / 100), "x", i % 2, "c", "", "t", repr(t),
                        "e", repr(e), "s", 0, "a", 0, "dr", "", "mv", 17) +
                   resp("PEXPIREAT", dk, int(e * 1000)) +
                   resp("ZADD", f"scout:{{{TEST}}}:dt", repr(t), rid) +
                   resp("ZADD", f"scout:{{{TEST}}}:dx", repr(e), rid))
    return b"".join(out)


def shape_string(batch):
    out = []
    for i, rid, t in batch:
        e = t + TTL
        packed = f"{i % 4}|{0.25 + i % 7 / 100!r}|{i % 2}||{t!r}|{e!r}|0|0||17"
        out.append(resp("SET", f"scout:{{{TEST}}}:d:{rid}", packed, "PXAT", int(e * 1000)) +
                   resp("ZADD", f"scout:{{{TEST}}}:dt", repr(t), rid))
    return b"".join(out)


def shape_stream(batch):
    out = []
    for i, rid, t in batch:
        sid = f"{int(t * 1000)}-{i}"
        out.append(resp("XADD", f"scout:{{{TEST}}}:ds", sid, "q", rid, "v", i % 4, "p", repr(0.25 + i % 7 / 100),
                        "x", i % 2, "c", "", "e", repr(t + TTL), "s", 0, "a", 0, "dr", "", "mv", 17) +
                   resp("HSET", f"scout:{{{TEST}}}:di", rid, sid))
    return b"".join(out)


SHAPES = [("current (format 3): MULTI block per batch: one HSET, one stream entry, counting script",
           shape_current),
          ("format 2: hash field + stream entry per record (without its script)", shape_format2),
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
    print(f"\n### {n:,} records piped (`redis-cli --pipe`), in batches of {BATCH}\n")
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
            subprocess.run(["redis-cli", "-p", str(port), "hset", f"scout:{{{TEST}}}:meta", "predictions", "0"],
                           capture_output=True, check=True)   # the test exists
            recs = [(i, rids[i], t0 + i * 1e-4) for i in range(n)]
            data = b"".join(shape(recs[j:j + BATCH]) for j in range(0, n, BATCH))
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
    for name in ("exec", "eval", "evalsha", "multi", "hset", "xadd", "zadd", "hincrby", "hget", "exists"):
        calls, usec = diff.get(name, (0, 0))
        if calls:
            print(f"| {name} | {calls:,} | {usec / max(records, 1):.1f} |")
    print("\n(exec includes the commands of its block; eval and evalsha the commands their scripts call.)")


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
