"""A real Prometheus scrapes scoutd: the three series the operations guide builds its alerts on
(scout_api_requests_total, scout_auth_failures_total, scout_redis_connections) reach Prometheus
with the exact values of the traffic sent, and the target is up.

Prometheus (Debian's `prometheus` package: /usr/bin/prometheus) runs on loopback on a free port,
with its storage in tmp_path and a 1 s scrape interval. It is missing → the test fails (CI
installs it); it is never skipped.
"""

import os
import secrets
import shutil
import subprocess
import time

import pytest
import requests

from helpers import REDIS_LINKS as REDIS_STORE_LINKS, STORE, free_port, terminate

PROMETHEUS = "/usr/bin/prometheus"
JOB = "scout"
# Live connections to Redis: none on the embedded store; the request, writer and reader links on Redis.
REDIS_LINKS = REDIS_STORE_LINKS if STORE == "redis" else 0
READY_TIMEOUT = 20.0   # Prometheus start-up
VALUE_TIMEOUT = 20.0   # traffic -> scraped -> queryable


def require_prometheus():
    if os.path.exists(PROMETHEUS) and os.access(PROMETHEUS, os.X_OK):
        return PROMETHEUS
    found = shutil.which("prometheus")
    if not found:
        pytest.fail("prometheus is not installed (expected /usr/bin/prometheus): install Debian's "
                    "`prometheus` package (apt-get install prometheus); CI has it.", pytrace=False)
    return found


class Prometheus:
    def __init__(self, workdir, target_port):
        self.binary = require_prometheus()
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_path = workdir / "prometheus.log"
        self.config = workdir / "prometheus.yml"
        self.config.write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  scrape_timeout: 1s\n"
            "  evaluation_interval: 1s\n"
            "scrape_configs:\n"
            f"  - job_name: {JOB}\n"
            "    scrape_interval: 1s\n"
            "    scrape_timeout: 1s\n"
            "    metrics_path: /metrics\n"
            "    static_configs:\n"
            f"      - targets: ['127.0.0.1:{target_port}']\n")
        self.proc = None
        self.http = requests.Session()
        self.http.trust_env = False

    def start(self):
        cmd = [self.binary,
               f"--config.file={self.config}",
               f"--storage.tsdb.path={self.workdir / 'tsdb'}",
               f"--web.listen-address=127.0.0.1:{self.port}",
               "--log.level=info"]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + READY_TIMEOUT
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
                pytest.fail(f"prometheus not ready within {READY_TIMEOUT}s\n{self.log_tail()}", pytrace=False)
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

    def query(self, expr):
        """The instant vector of `expr` as [(labels, float value)]."""
        r = self.http.get(self.url("/api/v1/query"), params={"query": expr}, timeout=5)
        assert r.status_code == 200, f"query {expr!r} -> {r.status_code} {r.text[:300]}"
        body = r.json()
        assert body.get("status") == "success", body
        assert body["data"]["resultType"] == "vector", body
        return [(s["metric"], float(s["value"][1])) for s in body["data"]["result"]]

    def wait_values(self, expected, timeout=VALUE_TIMEOUT):
        """Poll until every query in `expected` ({expr: value}) returns exactly one sample with
        exactly that value; fail with what each query last returned."""
        deadline = time.monotonic() + timeout
        while True:
            last = {expr: self.query(expr) for expr in expected}
            wrong = {expr: got for expr, got in last.items()
                     if len(got) != 1 or got[0][1] != expected[expr]}
            if not wrong:
                return last
            if time.monotonic() > deadline:
                lines = [f"  {expr}: expected {expected[expr]}, got {[v for _, v in got] or 'no sample'}"
                         for expr, got in wrong.items()]
                pytest.fail(f"Prometheus did not reach the expected values within {timeout}s:\n"
                            + "\n".join(lines) + f"\n--- prometheus log ---\n{self.log_tail()}", pytrace=False)
            time.sleep(0.25)


@pytest.fixture
def prometheus(tmp_path):
    """start(target_port) -> a ready Prometheus scraping 127.0.0.1:target_port; always stopped."""
    started = []

    def start(target_port):
        p = Prometheus(tmp_path / f"prometheus{len(started)}", target_port)
        started.append(p)
        return p.start()

    yield start
    for p in started:
        p.stop()


def test_prometheus_scrapes_the_guide_metrics_with_exact_values(scout_factory, prometheus):
    boot = secrets.token_urlsafe(30)  # 40 characters
    s = scout_factory(env={"SCOUT_PROTECTED_API": "true", "SCOUT_AUTH_TOKEN": boot})
    s.session.trust_env = False  # no ~/.netrc credentials may sneak into the "no token" requests
    prom = prometheus(s.port)

    # The target is up and scraped before any traffic: nothing refused yet.
    prom.wait_values({f'up{{job="{JOB}"}}': 1,
                      f'sum(scout_auth_failures_total{{job="{JOB}"}})': 0,
                      f'scout_redis_connections{{job="{JOB}"}}': REDIS_LINKS})

    admin = {"Authorization": f"Bearer {boot}"}
    r = s.post("/api/create_model", {"name": "prom", "variants": {"0": "A", "1": "B"}}, headers=admin)
    assert r.status_code == 200, r.text
    mid = r.json()["model_id"]
    decisions, refused = 5, 7
    for _ in range(decisions):
        r = s.post("/api/fetch_recommended_variant", {"cb_model_id": mid}, headers=admin)
        assert r.status_code == 200, r.text
    for _ in range(refused):
        r = s.post("/api/fetch_recommended_variant", {"cb_model_id": mid})
        assert r.status_code == 401, f"a request without a token -> {r.status_code} {r.text}"

    route = 'route="/api/fetch_recommended_variant"'
    prom.wait_values({
        f'up{{job="{JOB}"}}': 1,
        f'sum(scout_auth_failures_total{{job="{JOB}"}})': refused,
        f'scout_auth_failures_total{{job="{JOB}",reason="missing"}}': refused,
        f'scout_redis_connections{{job="{JOB}"}}': REDIS_LINKS,
        f'scout_api_requests_total{{job="{JOB}",method="POST",{route},status="401"}}': refused,
        f'scout_api_requests_total{{job="{JOB}",method="POST",{route},status="200"}}': decisions,
        f'scout_api_requests_total{{job="{JOB}",route="/api/create_model",status="200"}}': 1,
        f'scout_decisions_total{{job="{JOB}",model_id="{mid}"}}': decisions,
        f'scout_store_up{{job="{JOB}"}}': 1,
    })
    # Prometheus's own view of the target: scraped without errors, every sample accepted.
    targets = prom.http.get(prom.url("/api/v1/targets"), timeout=5).json()["data"]["activeTargets"]
    assert len(targets) == 1, targets
    assert targets[0]["health"] == "up" and not targets[0]["lastError"], targets[0]
