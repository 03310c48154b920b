"""Helpers for Scout's integration suite: the `Scout` process wrapper, API shortcuts, raw HTTP.

Every test talks HTTP to a real `scoutd` (binary from $SCOUTD, default build/scoutd) on a free port
of 127.0.0.1 with its own data directory and log file. Fixtures live in conftest.py.
"""

import datetime
import json
import os
import select
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
SCOUTD = os.environ.get("SCOUTD", str(REPO / "build" / "scoutd"))

READY_TIMEOUT = 10.0  # seconds a server may take to answer GET /docs
POLL_INTERVAL = 0.02
HTTP_TIMEOUT = 15.0  # per request; nothing in this suite should come close

MAX_BODY = 1048576  # 1 MiB: larger bodies are refused with 413


# --------------------------------------------------------------------------- helpers


# The store the suite runs on (SCOUT_STORE=redis: every test gets its own redis-server, below),
# and the current test's Redis, for tests that look at what is stored.
STORE = os.environ.get("SCOUT_STORE", "sqlite")
# Connections a healthy scoutd keeps to Redis: its request pool (4), its writer and its reader.
REDIS_LINKS = 6
CURRENT_REDIS = None


class RedisServer:
    """A real redis-server on a free loopback port, with a password and append-only persistence
    in its own directory (so a restart keeps what was acknowledged)."""

    PASSWORD = "redis-test-Pa55"

    def __init__(self, workdir, password=PASSWORD):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.password = password
        self.port = free_port()
        self.proc = None

    @property
    def url(self):
        return f"redis://:{self.password}@127.0.0.1:{self.port}"

    def start(self):
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--loglevel", "warning"]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(POLL_INTERVAL)
        raise RuntimeError(f"redis-server did not listen on {self.port}")

    def cli(self, *args):
        """One command through redis-cli (the password goes by environment, not argv); its output."""
        env = dict(os.environ, REDISCLI_AUTH=self.password or "")
        p = subprocess.run(["redis-cli", "-p", str(self.port), *map(str, args)], capture_output=True,
                           text=True, timeout=HTTP_TIMEOUT, env=env, check=True)
        return p.stdout.strip()

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None



def free_port():
    """A TCP port on 127.0.0.1 that nobody is listening on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, interval=POLL_INTERVAL, message="condition"):
    """Poll `predicate` until it returns a truthy value; return that value or fail."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.1f}s waiting for {message}", pytrace=False)
        time.sleep(interval)


def is_uuid4(value):
    if not isinstance(value, str):
        return False
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return False
    return parsed.version == 4 and str(parsed) == value.lower()


def parse_iso_utc(value):
    """Parse an ISO-8601 UTC timestamp ending in 'Z'; fail the test if it is anything else."""
    assert isinstance(value, str), f"timestamp is not a string: {value!r}"
    assert value.endswith("Z"), f"timestamp is not UTC with a 'Z' suffix: {value!r}"
    try:
        parsed = datetime.datetime.fromisoformat(value[:-1] + "+00:00")
    except ValueError:
        pytest.fail(f"timestamp is not ISO-8601: {value!r}", pytrace=False)
    return parsed


# --------------------------------------------------------------------------- the server


def terminate(proc, timeout=10.0):
    """SIGTERM a child process and wait; SIGKILL it if it outlives timeout. True if it exited in time."""
    if proc.poll() is not None:
        return True
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
        return False


class Scout:
    """One scoutd process: start, talk to, stop, kill and restart it on the same data dir."""

    def __init__(self, workdir, env=None, extra_args=None):
        self.workdir = Path(workdir)
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "scoutd.log"
        self.extra_env = dict(env or {})
        self.extra_args = list(extra_args or [])
        self.port = None
        self.proc = None
        self.session = requests.Session()
        self.starts = 0

    # ---- life cycle

    def command(self):
        return [
            SCOUTD,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--ui-port", "0",
            "--data-dir", str(self.data_dir),
            *self.extra_args,
        ]

    def start(self, port=None):
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        self.port = port or free_port()
        # Hermetic: settings from the caller's shell (protection, Redis, timeouts) must not leak in.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SCOUT_", "REDIS_"))}
        env.update(self.extra_env)
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts}: {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self._wait_ready()
        return self

    def _wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT
        last_error = None
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                pytest.fail(
                    f"scoutd exited with code {code} before it was ready\n"
                    f"command: {' '.join(self.command())}\n--- log tail ---\n{self.log_tail()}",
                    pytrace=False,
                )
            try:
                r = requests.get(self.url("/docs"), timeout=1.0)
                if r.status_code == 200:
                    return
                last_error = f"GET /docs answered {r.status_code}"
            except requests.RequestException as exc:
                last_error = repr(exc)
            time.sleep(POLL_INTERVAL)
        self.kill()
        pytest.fail(
            f"scoutd was not ready within {READY_TIMEOUT}s (last: {last_error})\n"
            f"command: {' '.join(self.command())}\n--- log tail ---\n{self.log_tail()}",
            pytrace=False,
        )

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Send `sig` and wait for the exit; return the exit code (negative = killed by signal)."""
        if self.proc is None:
            return None
        self.session.close()  # no idle keep-alive connection of ours should delay a drain
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
                pytest.fail(
                    f"scoutd did not exit within {timeout}s of signal {sig!r}; killed it\n"
                    f"--- log tail ---\n{self.log_tail()}",
                    pytrace=False,
                )
        self.session.close()
        return self.proc.returncode

    def kill(self):
        """SIGKILL: no chance to flush anything that was not already durable."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.session.close()
        return None if self.proc is None else self.proc.returncode

    def restart(self, same_port=False):
        """Start again on the same data dir (stopping with SIGTERM first if still running)."""
        if self.running():
            code = self.stop()
            assert code == 0, f"SIGTERM exit code {code}\n{self.log_tail()}"
        self.session = requests.Session()
        return self.start(port=self.port if same_port else None)

    def cleanup(self):
        """Stop the server; return a list of problems seen (empty when it ended cleanly).

        A server still running must exit 0 on SIGTERM, and no log may hold a sanitizer report:
        under the ASan+UBSan build this is what turns a memory error into a failed test."""
        problems = []
        self.session.close()
        if self.running():
            if not terminate(self.proc):
                problems.append("did not exit within 10 s of SIGTERM")
            if self.proc.returncode not in (0, None):
                problems.append(f"exited {self.proc.returncode} on SIGTERM")
        self.session.close()
        if self.log_path.exists():
            text = self.log_path.read_text(errors="replace")
            for marker in ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer", "runtime error:"):
                if marker in text:
                    problems.append(f"sanitizer report in {self.log_path} ({marker})")
        return problems

    def log_tail(self, lines=60):
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # ---- HTTP

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path, **kw):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return self.session.get(self.url(path), **kw)

    def post(self, path, json_body=None, **kw):
        """POST; `json_body` is serialised as JSON unless `data=` is given instead."""
        kw.setdefault("timeout", HTTP_TIMEOUT)
        if json_body is not None:
            kw["json"] = json_body
        return self.session.post(self.url(path), **kw)

    def request(self, method, path, **kw):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return self.session.request(method, self.url(path), **kw)


# --------------------------------------------------------------------------- API helpers

DEFAULT_VARIANTS = {"0": "A", "1": "B"}


def create_test(scout, variants=None, name=None, **extras):
    """Create a test and return its id (asserting the 200)."""
    body = {"name": name or f"test-{uuid.uuid4().hex[:8]}",
            "variants": DEFAULT_VARIANTS if variants is None else variants}
    body.update(extras)
    r = scout.post("/api/create_model", body)
    assert r.status_code == 200, f"create_model {body} -> {r.status_code} {r.text}"
    return r.json()["model_id"]


def fetch(scout, model_id, context=None, request_id=None, **extra):
    body = {"cb_model_id": model_id}
    if context is not None:
        body["context"] = context
    if request_id is not None:
        body["request_id"] = request_id
    body.update(extra)
    r = scout.post("/api/fetch_recommended_variant", body)
    assert r.status_code == 200, f"fetch {body} -> {r.status_code} {r.text}"
    return r.json()


def update(scout, model_id, updates):
    r = scout.post(f"/api/update_model/{model_id}", {"updates": updates})
    assert r.status_code == 200, f"update -> {r.status_code} {r.text}"
    return r.json()


def reward(scout, model_id, decision, reward_value, n=1, batch=100):
    """Send `n` rewards for `decision` in requests of at most `batch` updates."""
    done = 0
    while done < n:
        k = min(batch, n - done)
        body = update(scout, model_id, [{"decision": decision, "reward": reward_value}] * k)
        assert body["processed_updates"] == k, body
        done += k


def models(scout):
    r = scout.get("/api/models")
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body, list), body
    return body


def summary(scout, model_id):
    found = [m for m in models(scout) if m.get("model_id") == model_id]
    assert len(found) == 1, f"test {model_id} listed {len(found)} times in /api/models"
    return found[0]


def details(scout, model_id):
    r = scout.get(f"/api/model_details/{model_id}")
    assert r.status_code == 200, f"model_details -> {r.status_code} {r.text}"
    return r.json()


def performance(scout, model_id):
    """model_details' performance_summary as {label (as string): row}.

    The server keys performance_summary by variant id, as the original documents (checked by
    test_performance_summary_is_keyed_by_variant_id_as_documented); rows carry their "label",
    and are re-keyed by it here so tests can read the statistics by label.
    """
    ps = details(scout, model_id)["performance_summary"]
    assert isinstance(ps, dict), ps
    return {str(row["label"]) if "label" in row else key: row for key, row in ps.items()}


def redis_health(scout):
    r = scout.get("/admin/redis_health")
    assert r.status_code == 200, r.text
    return r.json()


def assert_error(response, status):
    """An error answer: the exact status, a JSON body {"detail": "<sentence>"}."""
    assert response.status_code == status, (
        f"expected {status}, got {response.status_code}: {response.text[:500]}")
    ctype = response.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip().lower() == "application/json", f"Content-Type {ctype!r}"
    body = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("detail"), str) and body["detail"].strip(), body


def assert_serving(scout):
    """The server still answers (a fresh connection, not a pooled one)."""
    r = requests.get(scout.url("/docs"), timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, f"/docs -> {r.status_code}"
    assert scout.running(), f"scoutd died\n{scout.log_tail()}"


# --------------------------------------------------------------------------- raw HTTP


class RawResponse:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))


def _read_response(sock, timeout):
    """Read one HTTP/1.1 response (Content-Length, chunked or close-delimited)."""
    sock.settimeout(timeout)
    buf = b""
    deadline = time.monotonic() + timeout

    def more():
        nonlocal buf
        if time.monotonic() > deadline:
            raise TimeoutError("no complete response in time")
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if chunk:
            buf += chunk
        return bool(chunk)

    while b"\r\n\r\n" not in buf:
        if not more():
            raise ConnectionError(f"connection closed before a response head: {buf[:200]!r}")
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    buf = rest
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(buf) < n and more():
            pass
        body = buf[:n]
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            while b"\r\n" not in buf:
                if not more():
                    raise ConnectionError("closed inside a chunked body")
            size_line, _, buf = buf.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(buf) < size + 2:
                if not more():
                    raise ConnectionError("closed inside a chunk")
            body += buf[:size]
            buf = buf[size + 2:]
            if size == 0:
                break
    else:
        while more():
            pass
        body = buf
    return RawResponse(status, headers, body)


def raw_request(scout, head, body_parts=(), timeout=10.0, early_answer_wait=0.0):
    """Send a hand-made request (head bytes, then body parts) and read the answer.

    Stops sending as soon as the server answers early (e.g. 413 after the headers; it is given
    `early_answer_wait` seconds to do so before the body goes out) and tolerates the server
    closing its read side, so an early refusal is still read, not lost.
    """
    with socket.create_connection(("127.0.0.1", scout.port), timeout=timeout) as sock:
        sock.sendall(head)
        if early_answer_wait:
            select.select([sock], [], [], early_answer_wait)
        for part in body_parts:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break
        return _read_response(sock, timeout)


# --------------------------------------------------------------------------- Prometheus

PROMETHEUS = "/usr/bin/prometheus"
PROMETHEUS_READY_TIMEOUT = 20.0


class PrometheusServer:
    """A real Prometheus (Debian's) on a free loopback port, with its configuration and storage
    under `workdir`; `api(path, **params)` returns the `data` of a successful API answer."""

    def __init__(self, workdir, config_text):
        if not os.access(PROMETHEUS, os.X_OK):
            pytest.fail(f"{PROMETHEUS} is missing: install Debian's `prometheus` package "
                        "(apt-get install prometheus); CI has it.", pytrace=False)
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_path = workdir / "prometheus.log"
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(config_text)
        self.proc = None
        self.http = requests.Session()
        self.http.trust_env = False

    def start(self):
        cmd = [PROMETHEUS, f"--config.file={self.config_path}", f"--storage.tsdb.path={self.workdir / 'tsdb'}",
               f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=info"]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + PROMETHEUS_READY_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"prometheus exited with {self.proc.returncode} at start-up\n{self.log_tail()}",
                            pytrace=False)
            try:
                if self.http.get(self.url("/-/ready"), timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prometheus not ready within {PROMETHEUS_READY_TIMEOUT}s\n{self.log_tail()}",
                            pytrace=False)
            time.sleep(0.1)

    def stop(self):
        self.http.close()
        if self.proc is not None:
            terminate(self.proc)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def log_tail(self, lines=40):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def api(self, path, **params):
        r = self.http.get(self.url(path), params=params, timeout=5)
        assert r.status_code == 200, f"{path} -> {r.status_code} {r.text[:300]}"
        body = r.json()
        assert body.get("status") == "success", body
        return body["data"]
