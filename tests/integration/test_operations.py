"""Observability: /metrics (Prometheus text), the JSON log on stdout, the live log stream
(/logs/stream, Server-Sent Events) and the probes /healthz and /readyz.

The truth is the server's sources: src/obs/metrics.c, src/obs/log.c, src/obs/logstream.c,
src/api/docs_api.c, src/server.c (request records), src/store/store_sqlite.c
(store_render_metrics) and src/auth/auth.c. The content of /openapi.json is tested elsewhere.

The live log is read with a raw socket (`Stream`): it decodes the chunked body itself, so a test
controls exactly when bytes are read — or, for the stuck subscriber, that they never are.
"""

import json
import os
import re
import secrets
import select
import shutil
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

from helpers import (
    HTTP_TIMEOUT,
    SCOUTD,
    STORE,
    Scout,
    assert_error,
    create_test,
    fetch,
    free_port,
    parse_iso_utc,
    reward,
    update,
    wait_until,
)

PROMTOOL = "/usr/bin/promtool"
LOG_RING = 1024            # records the live log keeps (logstream.h)
MAX_SUBSCRIBERS = 32       # live log viewers at a time (logstream.h)
LEVELS = ("debug", "info", "warn", "error")


# =========================================================================== local helpers


def new_bootstrap_token():
    return secrets.token_urlsafe(30)  # 40 characters


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def start_protected(scout_factory, **env):
    """A server with API protection on and a bootstrap admin token (`.boot`)."""
    boot = new_bootstrap_token()
    assert len(boot) == 40
    s = scout_factory(env={"SCOUT_PROTECTED_API": "true", "SCOUT_AUTH_TOKEN": boot,
                           "SCOUT_AUTH_MAX_FAILURES": "100000", **env})
    s.boot = boot
    s.session.trust_env = False  # no ~/.netrc credentials may sneak into "no token" requests
    return s


def require_promtool():
    if not (os.path.exists(PROMTOOL) and os.access(PROMTOOL, os.X_OK)):
        found = shutil.which("promtool")
        if not found:
            pytest.fail("promtool is not installed (expected /usr/bin/promtool): install Debian's "
                        "`prometheus` package (apt-get install prometheus); CI has it.", pytrace=False)
        return found
    return PROMTOOL


# --------------------------------------------------------------------------- Prometheus text

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse_labels(text):
    labels = {}
    pos = 0
    while pos < len(text):
        m = LABEL_RE.match(text, pos)
        assert m, f"malformed label set {{{text}}} at {text[pos:]!r}"
        assert m.group(1) not in labels, f"label {m.group(1)} twice in {{{text}}}"
        labels[m.group(1)] = m.group(2)
        pos = m.end()
    return labels


def parse_exposition(text):
    """{(name, frozenset(labels.items())): value} of a Prometheus text exposition.

    Fails on a malformed sample line and on a series that appears twice."""
    series = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        assert m, f"malformed sample line {line!r}"
        name, _, labels, value = m.groups()
        key = (name, frozenset(parse_labels(labels or "").items()))
        assert key not in series, f"series listed twice in /metrics: {line!r}"
        series[key] = float(value)
    return series


class Metrics:
    """One scrape of /metrics, queried by name and labels."""

    def __init__(self, text):
        self.text = text
        self.series = parse_exposition(text)

    def samples(self, name, **labels):
        want = set(labels.items())
        return {k: v for k, v in self.series.items() if k[0] == name and want <= set(k[1])}

    def value(self, name, default=None, **labels):
        """The value of the one series with `name` and (at least) `labels`; `default` if none."""
        found = self.samples(name, **labels)
        if not found:
            if default is not None:
                return default
            pytest.fail(f"/metrics has no series {name}{labels}", pytrace=False)
        assert len(found) == 1, f"{name}{labels} matches {len(found)} series: {sorted(found)}"
        return next(iter(found.values()))

    def total(self, name, **labels):
        return sum(self.samples(name, **labels).values())

    def label_values(self, label):
        return {dict(k[1])[label] for k in self.series if label in dict(k[1])}


def scrape(scout, **kw):
    r = requests.get(scout.url("/metrics"), timeout=HTTP_TIMEOUT, **kw)
    assert r.status_code == 200, f"/metrics -> {r.status_code} {r.text[:300]}"
    ctype = r.headers.get("Content-Type", "")
    assert ctype.startswith("text/plain") and "version=0.0.4" in ctype, f"Content-Type {ctype!r}"
    return Metrics(r.text)


# --------------------------------------------------------------------------- JSON log on stdout


def log_records(path):
    """The JSON records of a log file that holds stdout only (see SplitScout)."""
    records = []
    for n, line in enumerate(Path(path).read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"{path}:{n}: stdout line is not JSON: {line[:300]!r}", pytrace=False)
        assert isinstance(record, dict), f"{path}:{n}: not a JSON object: {line[:300]!r}"
        records.append(record)
    return records


class SplitScout(Scout):
    """A Scout whose stdout (the JSON log) and stderr go to separate files, so that every line
    of `stdout_path` can be held to "one JSON object per line"."""

    def start(self, port=None):
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        self.port = port or free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SCOUT_", "REDIS_"))}
        env.update(self.extra_env)
        self.starts += 1
        self.stdout_path = self.workdir / f"stdout.{self.starts}.jsonl"
        with open(self.stdout_path, "wb") as out, open(self.log_path, "ab") as err:
            err.write(f"\n===== start #{self.starts} (stderr only; stdout in {self.stdout_path})\n".encode())
            err.flush()
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env=env, start_new_session=True)
        self._wait_ready()
        return self

    def log_tail(self, lines=60):
        text = super().log_tail(lines)
        path = getattr(self, "stdout_path", None)
        if path and path.exists():
            text += "\n--- stdout ---\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return text


@pytest.fixture
def split_scout_factory(scout_factory):
    """make(env=None) -> a started SplitScout, stopped and checked like every other server."""
    return lambda env=None: scout_factory(env=env, cls=SplitScout)


def request_records(records, **fields):
    return [r for r in records if r.get("msg") == "request" and all(r.get(k) == v for k, v in fields.items())]


# --------------------------------------------------------------------------- live log client


class StreamEnded(Exception):
    pass


class Stream:
    """A raw-socket client of GET /logs/stream.

    The constructor sends the request and, unless `read_head=False`, reads the response head
    (`status`, `headers`; for a non-200 answer also `body`). `next_event` then returns one SSE
    event at a time as a dict of its fields ({"data": ...}, {"retry": ...}, {"comment": ...}).
    """

    def __init__(self, scout, query="", token=None, rcvbuf=None, read_head=True, timeout=5.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", scout.port))
        head = (f"GET /logs/stream{query} HTTP/1.1\r\nHost: 127.0.0.1:{scout.port}\r\n"
                f"Accept: text/event-stream\r\n")
        if token is not None:
            head += f"Authorization: Bearer {token}\r\n"
        self.sock.sendall((head + "\r\n").encode())
        self.raw = b""        # received, not yet de-chunked
        self.text = b""       # de-chunked body, not yet split into events
        self.body_bytes = 0   # de-chunked body bytes seen so far
        self.eof = False      # the server closed the connection (or reset it)
        self.ended = False    # the chunked body's last chunk arrived
        self.status = None
        self.headers = {}
        self.body = b""
        if read_head:
            self.read_head(timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _recv(self, deadline):
        """Receive what is there (waiting at most until `deadline`); False on timeout."""
        if self.eof:
            return False
        wait = max(0.0, deadline - time.monotonic())
        readable, _, _ = select.select([self.sock], [], [], wait)
        if not readable:
            return False
        try:
            chunk = self.sock.recv(262144)
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.raw += chunk
        return True

    def read_head(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.raw:
            if not self._recv(deadline):
                raise AssertionError(f"no response head within {timeout}s (eof={self.eof}): {self.raw[:200]!r}")
        head, _, self.raw = self.raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self.chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
        if self.status != 200:
            n = int(self.headers.get("content-length", "0"))
            while len(self.raw) < n and self._recv(deadline):
                pass
            self.body = self.raw[:n]
        return self.status

    def json(self):
        return json.loads(self.body.decode())

    def _dechunk(self):
        if not self.chunked:
            self.body_bytes += len(self.raw)
            self.text += self.raw
            self.raw = b""
            return
        while not self.ended:
            line, sep, rest = self.raw.partition(b"\r\n")
            if not sep:
                return
            size = int(line.split(b";")[0], 16)
            if len(rest) < size + 2:
                return
            assert rest[size:size + 2] == b"\r\n", f"bad chunk framing: {rest[size:size + 10]!r}"
            self.text += rest[:size]
            self.body_bytes += size
            self.raw = rest[size + 2:]
            if size == 0:
                self.ended = True

    def next_event(self, timeout):
        """The next event, None when none arrives within `timeout`; StreamEnded once the body
        ended or the connection closed and nothing complete is left."""
        deadline = time.monotonic() + timeout
        while True:
            self._dechunk()
            block, sep, rest = self.text.partition(b"\n\n")
            if sep:
                self.text = rest
                return self._parse(block)
            if self.ended or self.eof:
                raise StreamEnded(f"stream ended (last chunk: {self.ended}, closed: {self.eof}), "
                                  f"{len(self.text)} bytes of an incomplete event left")
            if not self._recv(deadline):
                if self.eof:
                    continue
                return None

    @staticmethod
    def _parse(block):
        assert b"\x00" not in block, f"NUL byte inside an event: {block[:300]!r}"
        event = {}
        for line in block.decode("utf-8").split("\n"):
            if line.startswith(":"):
                event["comment"] = line[1:].strip()
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            assert field in ("data", "retry", "event", "id"), f"unexpected SSE line {line!r}"
            event[field] = value
        if "data" in event:
            try:
                event["record"] = json.loads(event["data"])
            except ValueError:
                pytest.fail(f"an SSE data line is not JSON: {event['data'][:300]!r}", pytrace=False)
            assert isinstance(event["record"], dict), event
        return event

    def next_record(self, timeout):
        """The next log record (skipping retry and keep-alive events); None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.next_event(max(0.0, deadline - time.monotonic()))
            if event is None:
                return None
            if "record" in event:
                return event["record"]

    def wait_for(self, predicate, timeout, what):
        """Read records until one satisfies `predicate`; return (it, the records read before)."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            record = self.next_record(max(0.0, deadline - time.monotonic()))
            if record is None:
                pytest.fail(f"no {what} on the live log within {timeout}s; "
                            f"{len(seen)} other records read, last: {seen[-3:]}", pytrace=False)
            if predicate(record):
                return record, seen
            seen.append(record)

    def read_quiet(self, quiet=0.5, timeout=10.0):
        """Every record until none arrives for `quiet` seconds (at most `timeout` in all)."""
        deadline = time.monotonic() + timeout
        records = []
        while time.monotonic() < deadline:
            record = self.next_record(quiet)
            if record is None:
                return records
            records.append(record)
        pytest.fail(f"the live log never went quiet for {quiet}s within {timeout}s", pytrace=False)

    def greet(self, timeout=2.0):
        """The first event must be `retry: 3000`."""
        event = self.next_event(timeout)
        assert event == {"retry": "3000"}, f"first event is {event!r}, not 'retry: 3000'"


def open_stream(scout, **kw):
    s = Stream(scout, **kw)
    assert s.status == 200, f"/logs/stream -> {s.status} {s.body[:300]!r}"
    ctype = s.headers.get("content-type", "")
    assert ctype.split(";")[0].strip() == "text/event-stream", f"Content-Type {ctype!r}"
    return s


def is_404_record(record):
    return record.get("msg") == "request" and record.get("status") == 404


def send_404s(scout, n, problems, senders=4):
    """n requests to an unknown path (each logs one info record) from `senders` threads; any
    other answer or error is appended to `problems`. Returns the started threads."""

    def send(k):
        with requests.Session() as http:
            for i in range(k):
                try:
                    r = http.get(scout.url(f"/nope/{i}"), timeout=HTTP_TIMEOUT)
                except requests.RequestException as exc:
                    problems.append(f"/nope: {exc!r}")
                    return
                if r.status_code != 404:
                    problems.append(f"/nope -> {r.status_code}")
                    return

    threads = [threading.Thread(target=send, args=(n // senders + (i < n % senders),), daemon=True)
               for i in range(senders)]
    for t in threads:
        t.start()
    return threads


# =========================================================================== /metrics


def drive_varied_traffic(scout):
    """Requests of many kinds, so the exposition has every family with label sets in it."""
    mid = create_test(scout)
    for _ in range(3):
        fetch(scout, mid)
    update(scout, mid, [{"decision": "A", "reward": 1}, {"decision": "B", "reward": 0}])
    scout.get("/nope/123")
    scout.request("OPTIONS", "/nope/123")
    scout.request("HEAD", "/nope/123")
    scout.get(f"/api/update_model/{mid}")                 # 405
    scout.post(f"/api/update_model/{uuid.uuid4()}", {"updates": []})  # 404 on a known route
    scout.get("/healthz")
    return mid


def test_metrics_exposition_passes_promtool_check(scout):
    promtool = require_promtool()
    drive_varied_traffic(scout)
    scrape(scout)  # so that /metrics itself is in the next one
    m = scrape(scout)
    proc = subprocess.run([promtool, "check", "metrics"], input=m.text.encode(), capture_output=True, timeout=30)
    assert proc.returncode == 0 and not proc.stdout.strip() and not proc.stderr.strip(), (
        f"promtool check metrics -> exit {proc.returncode}\nstdout: {proc.stdout.decode()}\n"
        f"stderr: {proc.stderr.decode()}")
    # Every family the operations guide documents is there, with its type.
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", m.text, re.M))
    expected = {
        "scout_api_requests_total": "counter",
        "scout_api_request_duration_seconds": "histogram",
        "scout_auth_failures_total": "counter",
        "scout_redis_connections": "gauge",
        "scout_store_up": "gauge",
        "scout_tests": "gauge",
        "scout_decisions_total": "counter",
        "scout_rewards_total": "counter",
        "scout_store_operations_total": "counter",
        "scout_store_commit_seconds": "histogram",
        "scout_store_pending_decisions": "gauge",
        "scout_store_purged_decisions_total": "counter",
        "process_resident_memory_bytes": "gauge",
        "process_open_fds": "gauge",
        "process_start_time_seconds": "gauge",
        "process_cpu_seconds_total": "counter",
    }
    for name, kind in expected.items():
        assert types.get(name) == kind, f"# TYPE {name} is {types.get(name)!r}, expected {kind}"
    # Every auth failure reason is exported (0 here), so rate() works from the first scrape.
    reasons = {dict(k[1])["reason"] for k in m.samples("scout_auth_failures_total")}
    assert reasons == {"missing", "malformed", "invalid", "expired", "revoked", "scope", "rate_limited"}, reasons


def test_route_label_is_the_template_never_the_raw_path(scout):
    mid = create_test(scout)
    ghost = str(uuid.uuid4())  # not a test: 404 on a known route
    update(scout, mid, [{"decision": "A", "reward": 1}])
    assert scout.post(f"/api/update_model/{ghost}", {"updates": []}).status_code == 404
    assert scout.get(f"/api/model_details/{ghost}").status_code == 404
    assert scout.get("/nope/123").status_code == 404
    assert scout.get("/nope/123?x=1").status_code == 404
    m = scrape(scout)

    routes = m.label_values("route")
    assert routes <= {"/docs", "/api/create_model", "/api/update_model/{id}", "/api/model_details/{id}",
                      "unmatched", "/metrics"}, f"unexpected route label values: {sorted(routes)}"
    assert m.value("scout_api_requests_total", method="POST", route="/api/update_model/{id}", status="200") == 1
    assert m.value("scout_api_requests_total", method="POST", route="/api/update_model/{id}", status="404") == 1
    assert m.value("scout_api_requests_total", method="GET", route="/api/model_details/{id}", status="404") == 1
    assert m.value("scout_api_requests_total", method="GET", route="unmatched", status="404") == 2
    # No raw path, no id a client sent, anywhere in the exposition.
    assert "/nope" not in m.text, "a raw path is a label value"
    assert ghost not in m.text, "an id a client sent is a label value"
    # The real test's id is a label only where it belongs: the per-test series' model_id.
    for (name, labels), _ in m.series.items():
        for key, value in labels:
            if mid in value:
                assert key == "model_id" and name in ("scout_decisions_total", "scout_rewards_total"), (
                    f"test id in label {key} of {name}")


def test_request_counter_and_duration_histogram_count_exactly_the_requests_made(scout):
    before = scrape(scout)
    for _ in range(5):
        assert scout.get("/healthz").status_code == 200
    for i in range(3):
        assert scout.get(f"/nope/{i}").status_code == 404
    for _ in range(2):
        create_test(scout)
    after = scrape(scout)

    def delta(name, **labels):
        return after.total(name, **labels) - before.total(name, **labels)

    req = "scout_api_requests_total"
    assert delta(req, method="GET", route="/healthz", status="200") == 5
    assert delta(req, method="GET", route="unmatched", status="404") == 3
    assert delta(req, method="POST", route="/api/create_model", status="200") == 2
    assert delta(req, method="GET", route="/metrics", status="200") == 1  # the first scrape
    assert delta(req) == 5 + 3 + 2 + 1, "requests counted that were never made"

    hist = "scout_api_request_duration_seconds"
    for route, n in (("/healthz", 5), ("unmatched", 3), ("/api/create_model", 2), ("/metrics", 1)):
        assert delta(hist + "_count", route=route) == n, route
        assert delta(hist + "_bucket", route=route, le="+Inf") == n, route
        assert after.value(hist + "_bucket", route=route, le="+Inf") == after.value(hist + "_count", route=route)
        assert delta(hist + "_sum", route=route) > 0, f"{route}: durations sum did not grow"
        buckets = sorted(((float("inf") if dict(k[1])["le"] == "+Inf" else float(dict(k[1])["le"])), v)
                         for k, v in after.samples(hist + "_bucket", route=route).items())
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), f"{route}: buckets not cumulative: {buckets}"
    assert delta(hist + "_count") == 5 + 3 + 2 + 1


def test_per_test_decision_and_reward_counters_equal_the_traffic_sent(scout):
    busy, quiet = create_test(scout), create_test(scout)
    for _ in range(7):
        fetch(scout, busy)
    for _ in range(2):
        fetch(scout, quiet)
    update(scout, busy, [{"decision": "A", "reward": 1}] * 3)
    update(scout, busy, [{"decision": "B", "reward": 0}, {"decision": "A", "reward": 1}])
    m = scrape(scout)
    assert m.value("scout_tests") == 2
    assert m.value("scout_decisions_total", model_id=busy) == 7
    assert m.value("scout_decisions_total", model_id=quiet) == 2
    assert m.value("scout_rewards_total", model_id=busy) == 5
    assert m.value("scout_rewards_total", model_id=quiet) == 0
    assert len(m.samples("scout_decisions_total")) == 2 and len(m.samples("scout_rewards_total")) == 2


def test_store_operation_counters_grow(scout):
    ops = "scout_store_operations_total"
    before = scrape(scout)
    mid = create_test(scout)
    for _ in range(3):
        fetch(scout, mid)
    reward(scout, mid, "A", 1, n=2)

    def grown():
        m = scrape(scout)
        d = {op: m.value(ops, op=op, result="ok") - before.value(ops, op=op, result="ok")
             for op in ("put_test", "decision", "rewards")}
        if d["put_test"] >= 1 and d["decision"] >= 3 and d["rewards"] >= 1 \
                and m.value("scout_store_pending_decisions") == 0:
            return m
        return None

    m = wait_until(grown, 5.0, interval=0.1, message="store operation counters to grow")
    assert m.value("scout_store_commit_seconds_count") > before.value("scout_store_commit_seconds_count")
    assert m.value("scout_store_commit_seconds_bucket", le="+Inf") == m.value("scout_store_commit_seconds_count")
    assert m.total(ops, result="error") == 0, "store operations failed"
    assert m.value("scout_store_purged_decisions_total") >= 0


def test_process_metrics_are_present_and_plausible(scout):
    m = scrape(scout)
    now = time.time()
    rss = m.value("process_resident_memory_bytes")
    assert 1 << 20 < rss < 4 << 30, f"RSS {rss} bytes"
    with open(f"/proc/{scout.proc.pid}/statm") as f:
        real_rss = int(f.read().split()[1]) * os.sysconf("SC_PAGESIZE")
    assert real_rss / 2 < rss < real_rss * 2, f"RSS {rss} vs /proc's {real_rss}"
    fds = m.value("process_open_fds")
    real_fds = len(os.listdir(f"/proc/{scout.proc.pid}/fd"))
    assert fds >= 4 and abs(fds - real_fds) <= 4, f"open fds {fds} vs /proc's {real_fds}"
    start = m.value("process_start_time_seconds")
    assert now - 60 < start <= now + 1, f"start time {start} is not within the last minute (now {now})"
    cpu = m.value("process_cpu_seconds_total")
    assert 0 <= cpu < 60, f"CPU seconds {cpu}"


@pytest.mark.skipif(STORE != "sqlite", reason="about the embedded store")
def test_redis_connections_is_0_and_store_up_is_1_on_the_embedded_store(scout):
    m = scrape(scout)
    assert re.search(r"^scout_redis_connections 0$", m.text, re.M), "no `scout_redis_connections 0` line"
    assert re.search(r"^scout_store_up 1$", m.text, re.M), "no `scout_store_up 1` line"


def test_metrics_are_open_by_default_even_with_protection_on(scout_factory):
    s = start_protected(scout_factory)
    r = requests.get(s.url("/metrics"), timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text[:300]
    assert Metrics(r.text).total("scout_auth_failures_total") == 0


def test_metrics_need_a_token_when_configured(scout_factory):
    s = start_protected(scout_factory, SCOUT_METRICS_REQUIRE_TOKEN="true")
    assert_error(s.get("/metrics"), 401)
    assert_error(s.get("/metrics", headers=bearer("x" * 43)), 401)
    m = scrape(s, headers=bearer(s.boot))
    assert m.value("scout_auth_failures_total", reason="missing") == 1
    assert m.value("scout_auth_failures_total", reason="invalid") == 1
    assert m.value("scout_api_requests_total", method="GET", route="/metrics", status="401") == 2


# =========================================================================== the JSON log


def test_log_lines_are_json_with_time_level_msg_and_request_fields(split_scout_factory):
    s = split_scout_factory(env={"SCOUT_LOG_LEVEL": "debug"})
    assert s.get("/healthz").status_code == 200
    assert s.get("/nope/123").status_code == 404
    found = wait_until(lambda: request_records(log_records(s.stdout_path), route="/healthz"), 3.0,
                       message="the /healthz request record")
    records = log_records(s.stdout_path)  # every stdout line is a JSON object, or this fails
    for r in records:
        assert isinstance(r.get("msg"), str), r
        assert r.get("level") in LEVELS, r
        parse_iso_utc(r.get("time"))
    assert len(found) == 1, found
    rec = found[0]
    assert rec["level"] == "debug", rec
    assert rec["method"] == "GET" and rec["status"] == 200, rec
    assert isinstance(rec["duration_ms"], (int, float)) and 0 <= rec["duration_ms"] < 10_000, rec
    assert rec["client"] == "127.0.0.1", rec
    miss = request_records(records, route="unmatched", status=404)
    assert len(miss) == 1 and miss[0]["level"] == "info" and miss[0]["method"] == "GET", miss
    assert "/nope/123" not in s.stdout_path.read_text(), "a raw path was logged"


def test_default_level_logs_a_404_request_but_not_a_200(split_scout_factory):
    s = split_scout_factory()
    assert s.get("/healthz").status_code == 200
    assert s.get("/nope/123").status_code == 404
    miss = wait_until(lambda: request_records(log_records(s.stdout_path), status=404), 3.0,
                      message="the 404 request record")
    assert len(miss) == 1 and miss[0]["level"] == "info" and miss[0]["route"] == "unmatched", miss
    records = log_records(s.stdout_path)
    assert not request_records(records, status=200), "a 200 request was logged at the default level"
    assert not [r for r in records if r["level"] == "debug"], "debug records at the default level"
    assert [r for r in records if r.get("msg") == "scoutd listening" and r["level"] == "info"], \
        "no info start-up record at the default level"


def test_log_level_error_hides_info_records(split_scout_factory):
    s = split_scout_factory(env={"SCOUT_LOG_LEVEL": "error"})
    assert s.get("/nope/123").status_code == 404                     # info: hidden
    streams = [open_stream(s) for _ in range(MAX_SUBSCRIBERS)]
    try:
        extra = Stream(s)
        assert extra.status == 503, f"33rd viewer -> {extra.status}"  # 5xx: logged at error
        extra.close()
        refused = wait_until(lambda: request_records(log_records(s.stdout_path), status=503), 3.0,
                             message="the 503 request record (level error)")
        assert refused[0]["level"] == "error", refused
    finally:
        for st in streams:
            st.close()
    records = log_records(s.stdout_path)
    low = [r for r in records if r["level"] != "error"]
    assert not low, f"records below error were written: {low[:5]}"


@pytest.mark.parametrize("level", ["verbose", "trace", "5"])
def test_invalid_log_level_makes_scoutd_exit_non_zero(tmp_path, level):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCOUT_", "REDIS_"))}
    env["SCOUT_LOG_LEVEL"] = level
    cmd = [SCOUTD, "--host", "127.0.0.1", "--port", str(free_port()), "--ui-port", "0",
           "--data-dir", str(tmp_path / "data")]
    try:
        proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail(f"scoutd kept running with SCOUT_LOG_LEVEL={level!r}", pytrace=False)
    assert proc.returncode != 0, f"SCOUT_LOG_LEVEL={level!r}: exit 0\n{proc.stderr.decode()}"
    assert b"SCOUT_LOG_LEVEL" in proc.stderr, f"the error does not name the variable: {proc.stderr!r}"


# =========================================================================== /logs/stream


def test_log_stream_delivers_a_live_record_within_2_seconds(scout):
    with open_stream(scout) as st:
        assert st.headers.get("cache-control") == "no-cache", st.headers
        st.greet()
        backlog = st.read_quiet(quiet=0.3)
        assert not [r for r in backlog if is_404_record(r)], "a 404 record before any 404"
        sent = time.monotonic()
        assert requests.get(scout.url("/nope/live"), timeout=HTTP_TIMEOUT).status_code == 404
        record, _ = st.wait_for(is_404_record, 2.0, "live 404 request record")
        assert time.monotonic() - sent < 2.0
        assert record["route"] == "unmatched" and record["level"] == "info" and record["method"] == "GET", record
        parse_iso_utc(record["time"])


def test_log_stream_starts_with_the_last_1024_records_of_the_ring(scout):
    with requests.Session() as http:
        for i in range(LOG_RING + 100):
            assert http.get(scout.url(f"/nope/{i}"), timeout=HTTP_TIMEOUT).status_code == 404
    with open_stream(scout) as st:
        st.greet()
        backlog = st.read_quiet(quiet=0.5)
    assert len(backlog) == LOG_RING, f"{len(backlog)} records of history, expected the last {LOG_RING}"
    assert all(is_404_record(r) for r in backlog), "older records than the last 1024 were replayed"


def read_history_once(scout, attempt):
    """Subscribe, read up to LOG_RING data events (the history) and leave; the raw bytes and
    whether the server ended the stream before that."""
    with socket.create_connection(("127.0.0.1", scout.port), timeout=5) as sock:
        sock.sendall(f"GET /logs/stream HTTP/1.1\r\nHost: 127.0.0.1:{scout.port}\r\n\r\n".encode())
        buf = bytearray()
        while buf.count(b"data: ") < LOG_RING:
            try:
                chunk = sock.recv(1 << 20)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return bytes(buf), True
            buf += chunk
    assert buf.startswith(b"HTTP/1.1 200"), f"read #{attempt}: {bytes(buf[:200])!r}"
    return bytes(buf), False


def test_log_stream_history_is_never_corrupted_at_buffer_boundaries(scout):
    """Each reader of the history gets it in buffer-sized pieces; whatever the piece boundaries,
    every event must arrive whole ("data: <json>" and a blank line), never with a byte lost or
    replaced.

    The history is read up to 2000 times, shifting it by one record between reads so that the
    boundaries fall differently each time (a fresh read of the same history is cut the same way);
    records of different lengths (methods) vary the boundaries further. A read that the server
    ends early is another matter (test_new_log_viewer_on_a_busy_server_is_not_dropped); here it
    only has to leave enough complete reads.
    """
    methods = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD")
    attempts, complete = 2000, 0
    with requests.Session() as http:
        for i in range(LOG_RING + 10):
            r = http.request(methods[i % len(methods)], scout.url(f"/nope/{i}"), timeout=HTTP_TIMEOUT)
            assert r.status_code == 404
        for attempt in range(attempts):
            buf, ended = read_history_once(scout, attempt)
            if b"\x00" in buf:
                at = buf.index(b"\x00")
                pytest.fail(f"read #{attempt} of the history: a NUL byte replaced part of an event: "
                            f"{buf[max(0, at - 80):at + 20]!r}", pytrace=False)
            complete += not ended
            r = http.request(methods[attempt % len(methods)], scout.url("/nope/shift"), timeout=HTTP_TIMEOUT)
            assert r.status_code == 404
    assert complete >= attempts * 0.8, f"only {complete} of {attempts} reads of the history were complete"


def test_new_log_viewer_on_a_busy_server_is_not_dropped(scout):
    """A viewer that connects while records flow and reads at once is never behind: it must get
    its first record, not a closed connection. (It starts at the oldest record of a full ring.)"""
    stop = threading.Event()
    errors = []

    def traffic():
        with requests.Session() as http:
            while not stop.is_set():
                try:
                    http.get(scout.url("/nope/busy"), timeout=HTTP_TIMEOUT)
                except requests.RequestException as exc:
                    errors.append(repr(exc))
                    return

    with requests.Session() as http:
        for i in range(LOG_RING + 10):
            http.get(scout.url(f"/nope/{i}"), timeout=HTTP_TIMEOUT)
    threads = [threading.Thread(target=traffic, daemon=True) for _ in range(2)]
    dropped, served, attempts = [], 0, 300
    try:
        for t in threads:
            t.start()
        time.sleep(0.3)
        for attempt in range(attempts):
            with socket.create_connection(("127.0.0.1", scout.port), timeout=5) as sock:
                sock.sendall(f"GET /logs/stream HTTP/1.1\r\nHost: 127.0.0.1:{scout.port}\r\n\r\n".encode())
                buf = bytearray()
                while b"data: " not in buf:
                    try:
                        chunk = sock.recv(1 << 20)
                    except ConnectionResetError:
                        chunk = b""
                    if not chunk:
                        dropped.append(attempt)
                        break
                    buf += chunk
                    assert not buf.startswith(b"HTTP/1.1 503"), f"viewer #{attempt}: 503 ({len(dropped)} dropped)"
                else:
                    served += 1
            time.sleep(0.005)  # let the server notice the departed viewer
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert not errors, errors
    assert not dropped, (f"{len(dropped)} of {attempts} new viewers were disconnected before their first "
                         f"record (attempts {dropped[:10]}...)")


def test_log_stream_level_filter_drops_lower_levels(scout_factory):
    s = start_protected(scout_factory)
    with open_stream(s, query="?level=warn", token=s.boot) as st:
        st.greet()
        for _ in range(3):
            assert s.get("/api/models").status_code == 401  # warn: auth_failure; info: the 401 request
        got = []
        for n in range(3):
            rec, before = st.wait_for(lambda r: r.get("event") == "auth_failure", 2.0, f"auth failure #{n + 1}")
            got += before + [rec]
        extra = st.read_quiet(quiet=0.3)
    for r in got + extra:
        assert r["level"] in ("warn", "error"), f"a {r['level']} record passed ?level=warn: {r}"
    assert not [r for r in got + extra if r.get("msg") == "request"], "401 request records (info) passed"
    # Without a filter the same stream carries the info records too.
    with open_stream(s, token=s.boot) as st:
        st.greet()
        levels = {r["level"] for r in st.read_quiet(quiet=0.3)}
    assert {"info", "warn"} <= levels, levels


def test_log_stream_rejects_an_unknown_level_with_400(scout):
    for query in ("?level=verbose", "?level=", "?level=warning2"):
        with Stream(scout, query=query) as st:
            assert st.status == 400, f"{query} -> {st.status}"
            body = st.json()
            assert isinstance(body.get("detail"), str) and body["detail"], body


def test_log_stream_33rd_subscriber_gets_503(scout):
    streams = []
    try:
        for _ in range(MAX_SUBSCRIBERS):
            streams.append(open_stream(scout))
        with Stream(scout) as extra:
            assert extra.status == 503, f"subscriber #{MAX_SUBSCRIBERS + 1} -> {extra.status}"
            assert isinstance(extra.json().get("detail"), str), extra.body
        # The 32 still stream.
        assert requests.get(scout.url("/nope/x"), timeout=HTTP_TIMEOUT).status_code == 404
        for st in streams:
            st.wait_for(is_404_record, 2.0, "the 404 record on every open stream")
    finally:
        for st in streams:
            st.close()

    # Viewers that left free their places.
    def place():
        st = Stream(scout)
        if st.status == 200:
            return st
        st.close()
        return None

    st = wait_until(place, 5.0, interval=0.1, message="a free place after 32 viewers left")
    st.close()


def test_log_stream_needs_an_admin_token_when_protection_is_on(scout_factory):
    s = start_protected(scout_factory)
    with Stream(s) as st:
        assert st.status == 401, st.status
        assert st.headers.get("www-authenticate", "").startswith("Bearer"), st.headers
    with Stream(s, token="x" * 43) as st:
        assert st.status == 401, st.status
    r = s.post("/admin/generate_token", {"name": "app", "scope": "client"}, headers=bearer(s.boot))
    assert r.status_code == 200, r.text
    with Stream(s, token=r.json()["token"]) as st:
        assert st.status == 403, f"a client-scope token -> {st.status}"
    with open_stream(s, token=s.boot) as st:
        st.greet()
        rec, _ = st.wait_for(lambda r: r.get("event") == "auth_failure", 2.0, "the auth failures in the history")
        assert rec["level"] == "warn", rec
        assert s.boot not in json.dumps(rec)


def test_stuck_subscriber_does_not_block_other_clients(scout):
    flood = 3000
    # Connects, asks for the stream and never reads: a tiny receive buffer fills at once.
    stuck = Stream(scout, rcvbuf=4096, read_head=False)
    try:
        check_stuck_subscriber(scout, stuck, flood)
    finally:
        stuck.close()  # a stream left open would hold up scoutd's drain at teardown


def check_stuck_subscriber(scout, stuck, flood):
    reader = open_stream(scout, query="?level=info")
    reader.greet()
    reader.read_quiet(quiet=0.3)

    stop = threading.Event()
    latencies, problems, delivered = [], [], []

    def probe():
        with requests.Session() as http:
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    code = http.get(scout.url("/healthz"), timeout=5).status_code
                except requests.RequestException as exc:
                    problems.append(f"/healthz: {exc!r}")
                    return
                latencies.append(time.monotonic() - t0)
                if code != 200:
                    problems.append(f"/healthz -> {code}")
                time.sleep(0.02)

    def read_live():
        n = 0
        try:
            while n < flood:
                record = reader.next_record(10.0)
                if record is None:
                    problems.append(f"the reading subscriber got nothing for 10 s after {n} records")
                    return
                n += is_404_record(record)
        except StreamEnded as exc:
            problems.append(f"the reading subscriber was cut after {n} records: {exc}")
        finally:
            delivered.append(n)

    threads = [threading.Thread(target=probe, daemon=True), threading.Thread(target=read_live, daemon=True)]
    senders = []
    try:
        for t in threads:
            t.start()
        senders = send_404s(scout, flood, problems)
        for t in senders:
            t.join(60)
        threads[1].join(15)
    finally:
        stop.set()
        for t in threads + senders:
            t.join(15)
        reader.close()

    assert not problems, problems
    assert delivered == [flood], f"the reading subscriber got {delivered} of {flood} records"
    assert latencies, "no /healthz answer at all"
    assert max(latencies) < 1.0, f"/healthz took up to {max(latencies):.3f}s while a subscriber was stuck"
    t0 = time.monotonic()
    assert requests.get(scout.url("/healthz"), timeout=HTTP_TIMEOUT).status_code == 200
    assert time.monotonic() - t0 < 1.0

    # When the stuck one finally reads, the stream is still well formed, and it either ends (it
    # fell more than 1024 records behind and was disconnected) or it carries every record in
    # order: never a silent gap.
    stuck.read_head(5.0)
    assert stuck.status == 200, stuck.status
    got, ended = 0, False
    while got < flood:
        try:
            record = stuck.next_record(5.0)
        except StreamEnded:
            ended = True
            break
        assert record is not None, f"the stuck subscriber stalled after {got} of {flood} records"
        got += is_404_record(record)
    assert ended or got == flood, (got, ended)


def test_subscriber_that_falls_more_than_1024_records_behind_is_disconnected(scout):
    """A viewer that reads nothing while 3000 records are logged is more than 1024 behind: when
    it reads again it may get what was already on its way, then the end of the stream — not
    all 3000 records, which would mean the server (or its socket buffers) kept them for it
    without bound."""
    flood = 3000
    with Stream(scout, rcvbuf=4096, read_head=False) as stuck:
        problems = []
        for t in send_404s(scout, flood, problems):
            t.join(60)
        assert not problems, problems
        stuck.read_head(5.0)
        assert stuck.status == 200, stuck.status
        got, ended = 0, False
        while True:
            try:
                record = stuck.next_record(3.0)
            except StreamEnded:
                ended = True
                break
            if record is None:
                break
            got += is_404_record(record)
        assert ended and got < flood, (
            f"a viewer that read nothing while {flood} records were logged got {got} of them and its "
            f"stream {'ended' if ended else 'stayed open'}: it was never disconnected for being more "
            f"than {LOG_RING} records behind")


def test_sigterm_with_an_open_log_stream_exits_0_within_5_seconds(scout):
    st = open_stream(scout)
    try:
        st.greet()
        st.read_quiet(quiet=0.3)
        t0 = time.monotonic()
        code = scout.stop(timeout=5.0)
        assert code == 0, f"exit code {code} on SIGTERM with a live log viewer"
        assert time.monotonic() - t0 < 5.0
        deadline = time.monotonic() + 2.0
        while True:  # the stream ends (records until then are fine)
            try:
                if st.next_event(max(0.0, deadline - time.monotonic())) is None:
                    pytest.fail("the live log stream did not end when scoutd stopped", pytrace=False)
            except StreamEnded:
                break
    finally:
        st.close()


# =========================================================================== probes


def test_healthz_and_readyz_answer_200(scout):
    r = scout.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}, r.text
    r = scout.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready"}, r.text
    r = scout.get("/docs")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html"), r.headers
    r = scout.get("/openapi.json")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json"), r.headers
    assert isinstance(r.json(), dict)
