"""A real Prometheus scrapes scoutd: the three series the operations guide builds its alerts on
(scout_api_requests_total, scout_auth_failures_total, scout_redis_connections) reach Prometheus
with the exact values of the traffic sent, and the target is up.

Prometheus (Debian's `prometheus` package: /usr/bin/prometheus) runs on loopback on a free port,
with its storage in tmp_path and a 1 s scrape interval. It is missing → the test fails (CI
installs it); it is never skipped.
"""

import secrets
import time

import pytest

from helpers import REDIS_LINKS as REDIS_STORE_LINKS, STORE, PrometheusServer

JOB = "scout"
# Live connections to Redis: none on the embedded store; the request, writer and reader links on Redis.
REDIS_LINKS = REDIS_STORE_LINKS if STORE == "redis" else 0
VALUE_TIMEOUT = 20.0   # traffic -> scraped -> queryable


class Prometheus(PrometheusServer):
    """Scrapes one scoutd every second."""

    def __init__(self, workdir, target_port):
        super().__init__(workdir,
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

    def query(self, expr):
        """The instant vector of `expr` as [(labels, float value)]."""
        data = self.api("/api/v1/query", query=expr)
        assert data["resultType"] == "vector", data
        return [(s["metric"], float(s["value"][1])) for s in data["result"]]

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
