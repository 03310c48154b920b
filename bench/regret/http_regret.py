#!/usr/bin/python3
"""Regret benchmark over HTTP: drives a real, running scoutd with seeded simulated traffic.

For every (scenario, policy, seed) it creates a fresh test, asks scoutd for a variant each round
(POST /api/fetch_recommended_variant), draws a Bernoulli reward from the scenario's true means,
reports it (POST /api/update_model/{id}, joined to the decision by request_id) and adds up the
expected regret max_a mu_a(x) - mu_chosen(x). It prints one markdown table per scenario:
cumulative expected regret at each horizon, mean ± 95% interval half-width over seeds, in the
same format as the in-process C half of the regret benchmark, plus the requests/s achieved.

The environment (contexts, per-seed parameters, reward draws) is seeded by (scenario, seed), so
every policy faces the same traffic; the server's own sampling is not seeded.

Python 3 standard library only. Without --url it starts its own scoutd (env SCOUTD, else
build/scoutd) on a free port and a temporary data directory and stops it at the end.
See README-http.md next to this file.
"""

import argparse
import collections
import contextlib
import http.client
import json
import math
import multiprocessing
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# ---------------------------------------------------------------- scenarios
# A scenario's make(rng, horizon) returns draw(t) -> (context or None, true mean of each arm).

def bernoulli(rng, horizon):
    mus = [0.04, 0.05, 0.06]
    return lambda t: (None, mus)


def colors(rng, horizon):
    means = {"red": [0.6, 0.4], "blue": [0.4, 0.6]}

    def draw(t):
        color = "red" if rng.random() < 0.5 else "blue"
        return {"color": color}, means[color]
    return draw


C1_VALUES = ("a", "b", "c")
C2_VALUES = ("p", "q", "r", "s")


def linear_arm(rng):
    """One arm's parameters, drawn in this order: b, w1..w5, u[a,b,c], v[p,q,r,s]."""
    return {"b": rng.uniform(-0.05, 0.05),
            "w": [rng.uniform(-0.06, 0.06) for _ in range(5)],
            "u": {value: rng.uniform(-0.1, 0.1) for value in C1_VALUES},
            "v": {value: rng.uniform(-0.1, 0.1) for value in C2_VALUES}}


def linear_mean(arm, x, c1, c2):
    mu = 0.3 + arm["b"] + sum(w * xj for w, xj in zip(arm["w"], x)) + arm["u"][c1] + arm["v"][c2]
    return min(0.99, max(0.01, mu))


def linear(rng, horizon):
    arms = [linear_arm(rng) for _ in range(4)]

    def draw(t):
        x = [round(rng.gauss(0.0, 1.0), 4) for _ in range(5)]
        c1, c2 = rng.choice(C1_VALUES), rng.choice(C2_VALUES)
        context = {f"x{j + 1}": xj for j, xj in enumerate(x)}
        context.update(c1=c1, c2=c2)
        return context, [linear_mean(arm, x, c1, c2) for arm in arms]
    return draw


def drift(rng, horizon):
    before, after = [0.3, 0.5, 0.7], [0.7, 0.5, 0.3]
    return lambda t: (None, before if t < horizon / 2 else after)


Scenario = collections.namedtuple("Scenario", "key name arms make per_horizon")
SCENARIOS = {s.key: s for s in (
    Scenario("a", "bernoulli", 3, bernoulli, False),
    Scenario("b", "colors", 2, colors, False),
    Scenario("c", "linear", 4, linear, False),
    Scenario("d", "drift", 3, drift, True),   # per_horizon: each horizon is its own run
)}


# ---------------------------------------------------------------- policies
# body(scenario) is the create_model extras, or None for a baseline simulated client-side;
# context says whether fetches carry the scenario's context.

Policy = collections.namedtuple("Policy", "body context")


def fixed(extras):
    return lambda scenario: extras


POLICIES = {
    "auto": Policy(fixed({"policy": "auto"}), True),
    "thompson": Policy(fixed({"policy": "thompson"}), False),
    "ucb1": Policy(fixed({"policy": "ucb1"}), False),
    "egreedy": Policy(fixed({"policy": "egreedy", "epsilon": 0.1}), True),
    "lints": Policy(fixed({"policy": "lints"}), True),
    "linucb": Policy(fixed({"policy": "linucb"}), True),
    "thompson-discount": Policy(
        lambda s: {"policy": "thompson", "discount": 0.995 if s.key == "d" else 0.999}, False),
    "uniform": Policy(None, False),       # classic A/B split, no server calls
    "original": Policy(fixed({"policy": "egreedy", "epsilon": 0.1}), False),   # original Scout
}


# ---------------------------------------------------------------- HTTP client

class ApiError(Exception):
    """scoutd refused a call or answered something unexpected."""


class Client:
    """One keep-alive connection to scoutd; counts the requests it made."""

    def __init__(self, url, token, timeout=30.0):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise SystemExit(f"--url must look like http://HOST:PORT, not {url!r}")
        self.host, self.port, self.timeout = parts.hostname, parts.port or 80, timeout
        self.prefix = parts.path.rstrip("/")
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.conn, self.used, self.requests = None, False, 0

    def call(self, method, path, body=None):
        """(status, decoded JSON or None); reconnects once if an idle connection was closed."""
        data = None if body is None else json.dumps(body).encode()
        while True:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                self.used = False
            try:
                self.conn.request(method, self.prefix + path, data, self.headers)
                response = self.conn.getresponse()
                raw = response.read()
                break
            except (OSError, http.client.HTTPException) as exc:
                stale = isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError,
                                         BrokenPipeError))
                retry = stale and self.used
                self.close()
                if not retry:
                    raise
        self.used = True
        self.requests += 1
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, None

    def ok(self, method, path, body=None):
        """The decoded answer of a call that must answer 200."""
        status, answer = self.call(method, path, body)
        if status != 200:
            raise ApiError(f"HTTP {status}: {detail(answer)}")
        return answer

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None


def detail(answer):
    return answer.get("detail", answer) if isinstance(answer, dict) else answer


def create_body(name, arms, extras):
    body = {"name": name, "variants": {str(i): chr(ord("a") + i) for i in range(arms)}}
    body.update(extras)
    return body


def delete_test(client, test_id):
    client.ok("POST", f"/api/delete_model/{test_id}")


# ---------------------------------------------------------------- arm choosers

class ServerArms:
    """Asks scoutd for every decision; sends rewards in batches of `batch`."""

    def __init__(self, client, name, arms, extras, batch, keep):
        self.client, self.arms, self.batch, self.keep, self.pending = client, arms, batch, keep, []
        self.test_id = client.ok("POST", "/api/create_model",
                                 create_body(name, arms, extras))["cb_model_id"]

    def choose(self, t, context):
        body = {"cb_model_id": self.test_id, "request_id": f"{self.test_id}-{t}"}
        if context is not None:
            body["context"] = context
        arm = self.client.ok("POST", "/api/fetch_recommended_variant", body)["variant_id"]
        if not (isinstance(arm, int) and 0 <= arm < self.arms):
            raise ApiError(f"fetch answered variant_id {arm!r}")
        return arm

    def reward(self, t, value):
        self.pending.append({"request_id": f"{self.test_id}-{t}", "reward": value})
        if len(self.pending) >= self.batch:
            self.flush()

    def flush(self):
        if not self.pending:
            return
        answer = self.client.ok("POST", f"/api/update_model/{self.test_id}", {"updates": self.pending})
        if answer.get("failed_updates"):
            raise ApiError(f"{answer['failed_updates']} of {len(self.pending)} rewards not applied")
        self.pending = []

    def close(self):
        self.flush()
        if not self.keep:
            delete_test(self.client, self.test_id)


class UniformArms:
    """The classic A/B split, simulated client-side: no server calls."""

    def __init__(self, rng, arms):
        self.rng, self.arms = rng, arms

    def choose(self, t, context):
        return self.rng.randrange(self.arms)

    def reward(self, t, value):
        pass

    def close(self):
        pass


# ---------------------------------------------------------------- one run

Job = collections.namedtuple("Job", "scenario policy seed horizon checkpoints")


def job_label(job):
    return f"regret-{SCENARIOS[job.scenario].name}-{job.policy}-s{job.seed}-T{job.horizon}"


def open_arms(job, client, batch, keep):
    scenario, policy = SCENARIOS[job.scenario], POLICIES[job.policy]
    if policy.body is None:
        return UniformArms(random.Random(f"{job_label(job)}:uniform"), scenario.arms)
    return ServerArms(client, job_label(job), scenario.arms, policy.body(scenario), batch, keep)


def simulate(job, arms, deadline, result):
    """Plays job.horizon rounds; records cumulative expected regret at each checkpoint."""
    scenario, policy = SCENARIOS[job.scenario], POLICIES[job.policy]
    rng = random.Random(f"{scenario.name}:{job.seed}")
    draw = scenario.make(rng, job.horizon)
    checkpoints, regret = set(job.checkpoints), 0.0
    for t in range(job.horizon):
        if time.time() >= deadline:
            result["status"] = "stopped"
            return
        context, mus = draw(t)
        u = rng.random()
        arm = arms.choose(t, context if policy.context else None)
        regret += max(mus) - mus[arm]
        arms.reward(t, 1 if u < mus[arm] else 0)
        if t + 1 in checkpoints:
            result["regret"][t + 1] = regret


def run_job(job, client, batch, deadline, keep):
    """One run as a JSON-ready dict: status done|stopped|skipped|error, regret per checkpoint."""
    result = {"scenario": SCENARIOS[job.scenario].name, "policy": job.policy, "seed": job.seed,
              "horizon": job.horizon, "status": "done", "regret": {}, "requests": 0, "seconds": 0.0}
    if time.time() >= deadline:
        result["status"] = "skipped"
        return result
    start, requests = time.monotonic(), client.requests
    try:
        arms = open_arms(job, client, batch, keep)
        try:
            simulate(job, arms, deadline, result)
        finally:
            arms.close()
    except (ApiError, OSError, http.client.HTTPException, KeyError, TypeError) as exc:
        result["status"] = f"error: {type(exc).__name__}: {exc}"
        client.close()
    result["requests"] = client.requests - requests
    result["seconds"] = time.monotonic() - start
    return result


# ---------------------------------------------------------------- worker pool

_worker = {}


def init_worker(url, token, batch, deadline, keep):
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the parent handles Ctrl-C
    _worker.update(client=Client(url, token), batch=batch, deadline=deadline, keep=keep)


def work(job):
    return run_job(job, _worker["client"], _worker["batch"], _worker["deadline"], _worker["keep"])


def planned_requests(job, batch):
    if POLICIES[job.policy].body is None:
        return 0
    return job.horizon + math.ceil(job.horizon / batch) + 2


def run_all(jobs, url, args, deadline):
    """Runs every job on args.workers connections; returns (results, wall seconds)."""
    planned = sum(planned_requests(job, args.batch) for job in jobs) or 1
    done_planned, results, last = 0, [], 0.0
    start = time.monotonic()
    with multiprocessing.Pool(args.workers, init_worker,
                              (url, args.token, args.batch, deadline, args.keep_tests)) as pool:
        for job, result in zip(jobs, pool.imap(work, jobs)):
            results.append(result)
            done_planned += planned_requests(job, args.batch)
            elapsed = time.monotonic() - start
            if elapsed - last >= 10 or len(results) == len(jobs):
                last = elapsed
                left = elapsed * (planned - done_planned) / max(done_planned, 1)
                log(f"{len(results)}/{len(jobs)} runs, {elapsed:.0f} s elapsed, ~{left:.0f} s left")
    return results, time.monotonic() - start


# ---------------------------------------------------------------- planning

def plan_jobs(scenarios, policies, seeds, horizons):
    """Seed-major order, so a run cut short by --max-seconds leaves every policy similar seeds."""
    jobs = []
    for seed in range(seeds):
        for key in scenarios:
            runs = [(h, [h]) for h in horizons] if SCENARIOS[key].per_horizon \
                else [(horizons[-1], horizons)]
            jobs += [Job(key, policy, seed, h, cps) for policy in policies for h, cps in runs]
    return jobs


def unsupported_reason(client, scenario, name):
    """None when scoutd runs this policy, else why not. A 400 on create means unsupported."""
    extras = POLICIES[name].body(scenario)
    probes = [(extras, 200)]
    if "discount" in extras:   # a server that ignores the field would accept an invalid value
        probes.append((dict(extras, discount=2.0), 400))
    for body, expected in probes:
        status, answer = client.call("POST", "/api/create_model",
                                     create_body(f"regret-probe-{name}", scenario.arms, body))
        if status not in (200, 400):
            raise SystemExit(f"create_model answered {status}: {detail(answer)}")
        if status == 200:
            delete_test(client, answer["cb_model_id"])
        if status != expected:
            return "unsupported by server" + ("" if status == 400 else " (it ignores 'discount')")
    return None


def calibrate(client, rounds=100):
    """Requests/s of one connection doing fetch+reward pairs on a throwaway test."""
    arms = ServerArms(client, "regret-calibration", 2, {"policy": "thompson"}, 1, False)
    start, requests = time.monotonic(), client.requests
    for t in range(rounds):
        arms.choose(t, None)
        arms.reward(t, t % 2)
    rate = (client.requests - requests) / (time.monotonic() - start)
    arms.close()
    return rate


# ---------------------------------------------------------------- statistics and report

T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def t_quantile(df):
    """97.5% quantile of Student's t: table to 30 degrees of freedom, Cornish-Fisher beyond."""
    if df <= len(T975):
        return T975[df - 1]
    z = 1.959964
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


def cell(values, seeds):
    """`mean ± half-width`, with the number of seeds when it differs from the number asked."""
    if not values:
        return "—"
    n, mean = len(values), statistics.fmean(values)
    half = f"{t_quantile(n - 1) * statistics.stdev(values) / math.sqrt(n):.2f}" if n > 1 else "—"
    text = f"{mean:.2f} ± {half}"
    return text if n == seeds else f"{text} (n={n})"


def regrets(results, scenario, policy, horizon):
    return [r["regret"][horizon] for r in results
            if r["scenario"] == scenario.name and r["policy"] == policy and horizon in r["regret"]]


def table(results, scenario, policies, horizons, seeds, unsupported):
    lines = [f"### ({scenario.key}) {scenario.name}: cumulative expected regret, "
             "mean ± 95% interval half-width over seeds", "",
             "| policy | " + " | ".join(f"T={h}" for h in horizons) + " | seeds |",
             "|---|" + "---:|" * (len(horizons) + 1)]
    for policy in policies:
        if (scenario.key, policy) in unsupported:
            cells = [unsupported[scenario.key, policy]] + [""] * (len(horizons) - 1) + ["0"]
        else:
            values = [regrets(results, scenario, policy, h) for h in horizons]
            cells = [cell(v, seeds) for v in values] + [str(len(values[-1]))]
        lines.append(f"| {policy} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def http_summary(results, wall, workers, batch):
    requests = sum(r["requests"] for r in results)
    busy = sum(r["seconds"] for r in results if r["requests"])
    per_connection = requests / busy if busy else 0.0
    return (f"Over HTTP: {requests} requests in {wall:.1f} s = {requests / wall if wall else 0:.0f} "
            f"requests/s over {workers} connections ({per_connection:.0f} requests/s per "
            f"connection), rewards in batches of {batch}.")


def problems(results):
    """Lines about runs that did not finish: errors, and runs cut by --max-seconds."""
    lines = [f"- {r['scenario']} {r['policy']} seed {r['seed']} T={r['horizon']}: {r['status']}"
             for r in results if r["status"].startswith("error")]
    stopped = sum(r["status"] == "stopped" for r in results)
    skipped = sum(r["status"] == "skipped" for r in results)
    if stopped or skipped:
        lines.append(f"- --max-seconds reached: {stopped} runs cut short (their earlier checkpoints "
                     f"count), {skipped} runs not started.")
    return lines


# ---------------------------------------------------------------- server

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(proc, url, log_path, seconds=15.0):
    client = Client(url, None, timeout=2.0)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc.poll() is not None:
            break
        with contextlib.suppress(OSError, http.client.HTTPException):
            if client.call("GET", "/healthz")[0] == 200:
                client.close()
                return
        time.sleep(0.1)
    with open(log_path, errors="replace") as f:
        tail = f.read()[-2000:]
    raise SystemExit(f"scoutd did not become healthy at {url}; its log:\n{tail}")


@contextlib.contextmanager
def scoutd(url):
    """Yields the server URL: the given one, or that of a scoutd started (and stopped) here."""
    if url:
        yield url
        return
    binary = os.environ.get("SCOUTD") or os.path.join(REPO, "build", "scoutd")
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"no scoutd at {binary} (run make, set SCOUTD, or pass --url)")
    with tempfile.TemporaryDirectory(prefix="scout-regret-") as tmp:
        port, log_path = free_port(), os.path.join(tmp, "scoutd.log")
        url = f"http://127.0.0.1:{port}"
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                [binary, "--host", "127.0.0.1", "--port", str(port), "--ui-port", "0",
                 "--data-dir", os.path.join(tmp, "data")],
                env=dict(os.environ, SCOUT_LOG_LEVEL="warn"), stdout=log_file, stderr=subprocess.STDOUT)
            try:
                wait_healthy(proc, url, log_path)
                log(f"started {binary} at {url} (pid {proc.pid})")
                yield url
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


# ---------------------------------------------------------------- command line

def log(message):
    print(message, file=sys.stderr, flush=True)


def csv(kind, choices):
    def parse(text):
        items = [item.strip() for item in text.split(",") if item.strip()]
        unknown = [item for item in items if item not in choices]
        if unknown or not items:
            raise argparse.ArgumentTypeError(f"unknown {kind} {unknown}; choose from {', '.join(choices)}")
        return items
    return parse


def horizons(text):
    try:
        values = sorted({int(item) for item in text.split(",") if item.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError("--rounds takes comma-separated integers")
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError("--rounds takes positive integers")
    return values


def positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def scenario_keys(text):
    names = {s.name: s.key for s in SCENARIOS.values()}
    return [names.get(item, item) for item in csv("scenario", list(SCENARIOS) + list(names))(text)]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="scoutd to drive (default: start build/scoutd or $SCOUTD here)")
    p.add_argument("--token", help="bearer token sent on every request")
    p.add_argument("--seeds", type=positive, default=20, help="seeds 0..N-1 (default 20)")
    p.add_argument("--rounds", type=horizons, default=[1000, 10000], help="horizons (default 1000,10000)")
    p.add_argument("--scenarios", type=scenario_keys, default=list(SCENARIOS),
                   help="a|bernoulli, b|colors, c|linear, d|drift (default all)")
    p.add_argument("--policies", type=csv("policy", list(POLICIES)), default=list(POLICIES),
                   help=f"default {','.join(POLICIES)}")
    p.add_argument("--workers", type=positive, default=max(2, 2 * (os.cpu_count() or 1)),
                   help="parallel connections, one process each (default 2 per core)")
    p.add_argument("--batch", type=positive, default=1, help="rewards per update request (default 1)")
    p.add_argument("--max-seconds", type=float, default=1200.0,
                   help="stop cleanly after this long and report what finished (default 1200)")
    p.add_argument("--json", metavar="FILE", help="write the raw per-seed numbers here")
    p.add_argument("--keep-tests", action="store_true", help="do not delete the tests created")
    return p.parse_args()


def probe_policies(client, scenarios, policies):
    """{(scenario key, policy): reason} for the server policies scoutd refuses."""
    unsupported = {}
    for key in scenarios:
        for name in policies:
            if POLICIES[name].body is not None:
                reason = unsupported_reason(client, SCENARIOS[key], name)
                if reason:
                    unsupported[key, name] = reason
    return unsupported


def estimate(jobs, args, rate):
    requests = sum(planned_requests(job, args.batch) for job in jobs)
    slow, fast = requests / rate, requests / (rate * args.workers)
    log(f"{len(jobs)} runs, ~{requests} requests; one connection does {rate:.0f} requests/s, so "
        f"~{fast:.0f} s if {args.workers} workers scale linearly, ~{slow:.0f} s if they do not; "
        f"capped at {args.max_seconds:.0f} s")


def report(results, scenarios, args, unsupported, wall):
    print(f"## Regret over HTTP: seeds {args.seeds}, rounds {','.join(map(str, args.rounds))}, "
          f"batch {args.batch}\n")
    for key in scenarios:
        print(table(results, SCENARIOS[key], args.policies, args.rounds, args.seeds, unsupported) + "\n")
    print(http_summary(results, wall, args.workers, args.batch))
    notes = problems(results)
    if notes:
        print("\n" + "\n".join(notes))


def write_json(path, results, args, unsupported, wall):
    config = {k: v for k, v in vars(args).items() if k not in ("token", "json")}
    data = {"config": config, "wall_seconds": wall, "runs": results,
            "unsupported": [{"scenario": SCENARIOS[k].name, "policy": p, "reason": r}
                            for (k, p), r in unsupported.items()]}
    with open(path, "w") as f:
        json.dump(data, f, indent=1)


def main():
    args = parse_args()
    deadline = time.time() + args.max_seconds
    with scoutd(args.url) as url:
        client = Client(url, args.token)
        try:
            unsupported = probe_policies(client, args.scenarios, args.policies)
            rate = calibrate(client)
        except (OSError, http.client.HTTPException, ApiError) as exc:
            raise SystemExit(f"cannot use scoutd at {url}: {exc}")
        client.close()
        jobs = [job for job in plan_jobs(args.scenarios, args.policies, args.seeds, args.rounds)
                if (job.scenario, job.policy) not in unsupported]
        estimate(jobs, args, rate)
        results, wall = run_all(jobs, url, args, deadline)
    report(results, args.scenarios, args, unsupported, wall)
    if args.json:
        write_json(args.json, results, args, unsupported, wall)
    return 1 if any(r["status"].startswith("error") for r in results) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
