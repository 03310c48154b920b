"""The monitoring configuration in deploy/prometheus/, checked with Debian's Prometheus 2.42:
`promtool check config` on both configs, `promtool check rules` and the rule unit tests
(`promtool test rules alerts_test.yml`: every alert fires when it should and stays silent when it
should not), and real Prometheus servers that scrape real scoutd backends:

- the Compose job of prometheus.yml (its `dns_sd_configs` swapped for the two backends' addresses:
  Docker's DNS cannot be exercised here) with alerts.yml loaded: both targets are up, the
  per-test decision counts arrive, every rule evaluates without error on the real series, and a
  stopped backend makes ScoutBackendDown pending;
- the relabelling of prometheus-k8s.yml, fed synthetic pods (their `__meta_kubernetes_*` labels
  given as static targets, since Debian builds Prometheus without Kubernetes discovery and there
  is no cluster here): only annotated, running backend containers are kept, with the annotated
  port and path, and the kept pod's scoutd is scraped.

Prometheus missing -> the tests fail (CI installs Debian's `prometheus`); never skipped.
"""

import os
import re
import secrets
import shutil
import subprocess
import time

import pytest
import yaml

from helpers import REPO, PrometheusServer, create_test, fetch, free_port

PROM_DIR = REPO / "deploy" / "prometheus"
COMPOSE_CONFIG = PROM_DIR / "prometheus.yml"
K8S_CONFIG = PROM_DIR / "prometheus-k8s.yml"
ALERTS = PROM_DIR / "alerts.yml"
ALERTS_TEST = PROM_DIR / "alerts_test.yml"
PROMTOOL = "/usr/bin/promtool"
JOB = "scout-backend"
VALUE_TIMEOUT = 15.0
# The alerts the operations side relies on (alerts.yml may add more).
REQUIRED_ALERTS = {"ScoutAuthFailureSpike", "ScoutHighServerErrorRate", "ScoutRedisDown", "ScoutBackendDown",
                   "ScoutNoBackendUp", "ScoutTestWithoutRewards"}


def require(binary):
    if not os.access(binary, os.X_OK):
        pytest.fail(f"{binary} is missing: apt-get install -y prometheus (CI has it)", pytrace=False)
    return binary


def promtool(*args, cwd=None):
    p = subprocess.run([require(PROMTOOL), *map(str, args)], capture_output=True, text=True, timeout=60, cwd=cwd)
    return p.returncode, p.stdout + p.stderr


def scout_job(config):
    jobs = [j for j in config["scrape_configs"] if j["job_name"] == JOB]
    assert len(jobs) == 1, f"expected one scrape job {JOB!r}, found {len(jobs)}"
    return jobs[0]


# --------------------------------------------------------------------------- promtool


def test_compose_config_passes_promtool():
    code, out = promtool("check", "config", COMPOSE_CONFIG)
    assert code == 0, out
    assert "SUCCESS: 1 rule files found" in out, out
    config = yaml.safe_load(COMPOSE_CONFIG.read_text())
    assert config["rule_files"] == ["alerts.yml"], config["rule_files"]
    job = scout_job(config)
    assert job["dns_sd_configs"] == [{"names": ["backend"], "type": "A", "port": 8000, "refresh_interval": "15s"}], job
    assert job["metrics_path"] == "/metrics"


def k8s_config_with_static_pods(targets):
    """prometheus-k8s.yml with its Kubernetes discovery replaced by `targets` (static groups
    carrying the discovery's __meta labels); the relabelling and everything else unchanged."""
    config = yaml.safe_load(K8S_CONFIG.read_text())
    job = scout_job(config)
    sd = job.pop("kubernetes_sd_configs")
    assert sd == [{"role": "pod", "namespaces": {"names": ["scout"]}}], sd
    job["static_configs"] = targets
    return config


def test_k8s_config_passes_promtool(tmp_path):
    """Debian's promtool has no Kubernetes discovery ("field kubernetes_sd_configs not found"), so
    the discovery block is checked for its shape above and promtool checks the rest."""
    config = k8s_config_with_static_pods([{"targets": ["pod:8000"]}])
    assert config["rule_files"] == ["alerts.yml"]
    (tmp_path / "prometheus-k8s.yml").write_text(yaml.safe_dump(config))
    shutil.copy(ALERTS, tmp_path / "alerts.yml")
    code, out = promtool("check", "config", tmp_path / "prometheus-k8s.yml")
    assert code == 0, out
    assert "SUCCESS: 1 rule files found" in out, out


def test_alert_rules_pass_promtool_and_are_complete():
    code, out = promtool("check", "rules", ALERTS)
    assert code == 0, out
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    names = {r["alert"] for r in rules}
    assert REQUIRED_ALERTS <= names, f"missing alerts: {REQUIRED_ALERTS - names}"
    for r in rules:
        assert r["labels"]["severity"] in ("critical", "warning"), r
        assert r["annotations"]["summary"].strip() and r["annotations"]["description"].strip(), r
        assert f'job="{JOB}"' in r["expr"], f"{r['alert']} does not select job {JOB}: {r['expr']}"


def test_alert_rules_unit_tests():
    """alerts_test.yml: each alert fires on the synthetic series meant to trigger it (after its
    `for`) and stays silent on the others."""
    tested = set(re.findall(r"alertname: (\w+)", ALERTS_TEST.read_text()))
    rules = {r["alert"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]}
    assert rules <= tested, f"alerts without a unit test: {rules - tested}"
    code, out = promtool("test", "rules", ALERTS_TEST.name, cwd=PROM_DIR)
    assert code == 0, out
    assert "SUCCESS" in out, out


# --------------------------------------------------------------------------- a real Prometheus


class Prometheus(PrometheusServer):
    """Runs a configuration given as a dict."""

    def __init__(self, workdir, config):
        super().__init__(workdir, yaml.safe_dump(config))

    def query(self, expr):
        return {tuple(sorted(s["metric"].items())): float(s["value"][1])
                for s in self.api("/api/v1/query", query=expr)["result"]}

    def wait_for(self, what, probe, timeout=VALUE_TIMEOUT):
        """Poll `probe()` until it returns a truthy value; fail with its last value."""
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout}s waiting for {what}; last: {last_of(probe)}\n"
                            f"--- prometheus log ---\n{self.log_tail()}", pytrace=False)
            time.sleep(0.2)


def last_of(probe):
    return getattr(probe, "last", None)


@pytest.fixture
def prometheus_factory(tmp_path):
    started = []

    def make(config):
        p = Prometheus(tmp_path / f"prometheus{len(started)}", config)
        started.append(p)
        return p.start()

    yield make
    for p in started:
        p.stop()


def fast(config):
    """Second-scale intervals so a test sees scrapes and rule evaluations at once."""
    config["global"] = {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
    for job in config["scrape_configs"]:
        job.pop("scrape_interval", None)
        job.pop("scrape_timeout", None)
    return config


def test_prometheus_scrapes_two_backends_with_the_compose_job(scout_factory, prometheus_factory):
    backends = [scout_factory() for _ in range(2)]
    config = fast(yaml.safe_load(COMPOSE_CONFIG.read_text()))
    config["rule_files"] = [str(ALERTS)]
    config["scrape_configs"] = [scout_job(config)]  # the self-scrape job would need port 9090
    job = config["scrape_configs"][0]
    job.pop("dns_sd_configs")
    job["static_configs"] = [{"targets": [f"127.0.0.1:{b.port}" for b in backends]}]
    prom = prometheus_factory(config)
    instances = [f"127.0.0.1:{b.port}" for b in backends]

    def targets_up():
        got = prom.query(f'up{{job="{JOB}"}}')
        targets_up.last = got
        return sorted(dict(k)["instance"] for k, v in got.items() if v == 1) == sorted(instances)
    prom.wait_for("both backends up", targets_up)

    # Traffic: 3 decisions on the first backend's test, 2 on the second's.
    tests = [create_test(b) for b in backends]
    for backend, test, n in zip(backends, tests, (3, 2)):
        for _ in range(n):
            fetch(backend, test)

    def decisions_scraped():
        got = {}
        for key, value in prom.query(f'scout_decisions_total{{job="{JOB}"}}').items():
            labels = dict(key)
            got[(labels["instance"], labels["model_id"])] = value
        decisions_scraped.last = got
        return got.get((instances[0], tests[0])) == 3 and got.get((instances[1], tests[1])) == 2
    prom.wait_for("scout_decisions_total of both tests", decisions_scraped)

    # Every rule of alerts.yml is loaded and evaluates cleanly on the real series.
    def rules_evaluated():
        rules = [r for g in prom.api("/api/v1/rules")["groups"] for r in g["rules"]]
        rules_evaluated.last = [(r["name"], r["health"], r.get("lastError")) for r in rules]
        return len(rules) >= len(REQUIRED_ALERTS) and all(r["health"] == "ok" for r in rules) and rules
    rules = prom.wait_for("every rule evaluated without error", rules_evaluated)
    assert REQUIRED_ALERTS <= {r["name"] for r in rules}
    active = prom.api("/api/v1/alerts")["alerts"]
    assert not active, f"alerts pending or firing while everything is healthy: {active}"

    # A backend goes away: its target goes down and ScoutBackendDown is pending for it (firing
    # after its minute), for that instance only.
    assert backends[1].stop() == 0

    def backend_down_pending():
        alerts = [a for a in prom.api("/api/v1/alerts")["alerts"] if a["labels"]["alertname"] == "ScoutBackendDown"]
        backend_down_pending.last = alerts
        return [a["labels"]["instance"] for a in alerts if a["state"] in ("pending", "firing")]
    assert prom.wait_for("ScoutBackendDown pending", backend_down_pending) == [instances[1]]


def test_prometheus_scrapes_with_a_token_when_metrics_require_one(scout_factory, prometheus_factory, tmp_path):
    """The commented `authorization` block of prometheus.yml, uncommented as its comment says,
    lets Prometheus scrape backends started with SCOUT_METRICS_REQUIRE_TOKEN=true with a client
    token; the same job without it is refused."""
    admin = secrets.token_urlsafe(32)
    backend = scout_factory(env={"SCOUT_PROTECTED_API": "true", "SCOUT_METRICS_REQUIRE_TOKEN": "true",
                                 "SCOUT_AUTH_TOKEN": admin})
    r = backend.post("/admin/generate_token", {"name": "prometheus", "scope": "client", "ttl_hours": 0},
                     headers={"Authorization": f"Bearer {admin}"})
    assert r.status_code == 200, r.text
    token_file = tmp_path / "scout-metrics-token"
    token_file.write_text(r.json()["token"] + "\n")

    text, n = re.subn(r"^(\s*)# (authorization:|  type: Bearer|  credentials_file: \S+)$", r"\1\2",
                      COMPOSE_CONFIG.read_text(), flags=re.M)
    assert n == 3, f"expected the three commented authorization lines in prometheus.yml, uncommented {n}"
    config = fast(yaml.safe_load(text))
    config["rule_files"] = [str(ALERTS)]
    with_token = scout_job(config)
    assert with_token["authorization"] == {"type": "Bearer", "credentials_file": "/run/secrets/scout-metrics-token"}
    with_token["authorization"]["credentials_file"] = str(token_file)
    with_token.pop("dns_sd_configs")
    with_token["static_configs"] = [{"targets": [f"127.0.0.1:{backend.port}"]}]
    without = {k: v for k, v in with_token.items() if k != "authorization"}
    without["job_name"] = "no-token"
    config["scrape_configs"] = [with_token, without]
    prom = prometheus_factory(config)

    def states():
        got = {dict(k)["job"]: v for k, v in prom.query("up").items()}
        states.last = got
        return got if len(got) == 2 else None
    assert prom.wait_for("both jobs scraped", states) == {JOB: 1.0, "no-token": 0.0}


# Synthetic pods of the `scout` namespace, as Kubernetes discovery describes them (one target per
# declared container port). Only the first is a backend that asks to be scraped and is running.
def pod(name, address, component="backend", scrape="true", port=None, path=None, phase="Running", init="false"):
    labels = {
        "__meta_kubernetes_namespace": "scout",
        "__meta_kubernetes_pod_name": name,
        "__meta_kubernetes_pod_node_name": "node-1",
        "__meta_kubernetes_pod_phase": phase,
        "__meta_kubernetes_pod_container_init": init,
        "__meta_kubernetes_pod_label_app_kubernetes_io_component": component,
    }
    if scrape is not None:
        labels["__meta_kubernetes_pod_annotation_prometheus_io_scrape"] = scrape
    if port is not None:
        labels["__meta_kubernetes_pod_annotation_prometheus_io_port"] = str(port)
    if path is not None:
        labels["__meta_kubernetes_pod_annotation_prometheus_io_path"] = path
    return {"targets": [address], "labels": labels}


def test_k8s_relabelling_keeps_annotated_running_backends(scout_factory, prometheus_factory):
    backend = scout_factory()
    unused = free_port()
    pods = [
        # The container port the pod declares is not the metrics port: the annotation wins.
        pod("scout-backend-a", f"127.0.0.1:{unused}", port=backend.port, path="/metrics"),
        pod("scout-backend-b", f"127.0.0.2:{unused}", port=8000, path="/other-path"),
        pod("scout-backend-quiet", "127.0.0.3:8000", scrape=None),
        pod("scout-backend-off", "127.0.0.4:8000", scrape="false"),
        pod("scout-redis-0", "127.0.0.5:6379", component="redis", port=6379),
        pod("scout-backend-pending", "127.0.0.6:8000", phase="Pending"),
        pod("scout-backend-init", "127.0.0.7:8000", init="true"),
    ]
    config = fast(k8s_config_with_static_pods(pods))
    config["rule_files"] = [str(ALERTS)]
    config["scrape_configs"] = [scout_job(config)]
    prom = prometheus_factory(config)

    def active_targets():
        data = prom.api("/api/v1/targets", state="active")
        active_targets.last = data["activeTargets"]
        return data["activeTargets"] if len(data["activeTargets"]) >= 2 else None
    active = prom.wait_for("the kept pods as targets", active_targets)
    kept = {t["labels"]["pod"]: t for t in active}
    assert set(kept) == {"scout-backend-a", "scout-backend-b"}, sorted(kept)
    a, b = kept["scout-backend-a"], kept["scout-backend-b"]
    assert a["scrapeUrl"] == f"http://127.0.0.1:{backend.port}/metrics", a["scrapeUrl"]
    assert b["scrapeUrl"] == "http://127.0.0.2:8000/other-path", b["scrapeUrl"]
    assert a["labels"] == {"job": JOB, "instance": f"127.0.0.1:{backend.port}", "namespace": "scout",
                           "pod": "scout-backend-a", "node": "node-1"}, a["labels"]

    # The kept pod's scoutd is really scraped through the relabelled address.
    def scraped():
        got = prom.query(f'scout_api_requests_total{{job="{JOB}", pod="scout-backend-a", route="/metrics"}}')
        scraped.last = got
        return got
    prom.wait_for("scoutd's metrics under the pod's labels", scraped)
