"""Scout on the Redis store: several scoutd replicas sharing one Redis serve and learn together.

Every test here starts its own password-protected redis-server (in tmp_path) and passes
`--redis` explicitly, so the file behaves the same whether or not the suite runs with
SCOUT_STORE=redis (in that mode scout_factory's own per-test Redis simply goes unused).

Eventual consistency is always awaited by polling with generous deadlines, never by a fixed
sleep alone (the one deliberate sleep is the decision-expiry test, which is about time).
"""

import json
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from helpers import (
    HTTP_TIMEOUT,
    REDIS_LINKS,
    SCOUTD,
    RedisServer,
    assert_error,
    create_test,
    details,
    fetch,
    free_port,
    models,
    update,
)

CONVERGE = 10.0      # seconds replicas may take to agree (they normally need milliseconds)
PROPAGATE = 5.0      # seconds a catalog change or a token change may take to reach a replica
RECONNECT = 10.0     # seconds after Redis is back within which scoutd must work again

# The fields of performance_summary that are learned state (ci_*, probability_best and
# policy_probability are Monte Carlo estimates; predictions are counted per replica).
LEARNED = ("updates", "reward_sum", "average_reward", "posterior_mean")

LABELS3 = {"0": "A", "1": "B", "2": "C"}


# --------------------------------------------------------------------------- fixtures, helpers


class RedisPool:
    """The redis-servers a test starts; all are stopped at the end of the test."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.servers = []

    def start(self, name="shared-redis", password=RedisServer.PASSWORD):
        r = RedisServer(self.tmp_path / name, password=password)
        self.servers.append(r)
        return r.start()

    def restart(self, old, sig=signal.SIGTERM):
        """Stop `old` and start a new redis-server on the same directory and the same port."""
        old.stop(sig)
        new = RedisServer(old.dir, password=old.password)
        new.port = old.port
        self.servers.append(new)
        deadline = time.monotonic() + 10
        while True:   # the port may linger for a moment after the old process ended
            try:
                return new.start()
            except RuntimeError:
                new.stop()
                if time.monotonic() > deadline:
                    raise

    def stop_all(self):
        for r in self.servers:
            r.stop()


@pytest.fixture
def redis_pool(tmp_path):
    """Request it BEFORE scout_factory, so Redis outlives the scoutd processes at teardown."""
    pool = RedisPool(tmp_path)
    yield pool
    pool.stop_all()


def start_replicas(scout_factory, redis, n, env=None):
    return [scout_factory(env=env, extra_args=["--redis", redis.url]) for _ in range(n)]


def poll(check, timeout, message, interval=0.02):
    """Call check() -> (ok, observed) until ok; fail with the last observation at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        ok, observed = check()
        if ok:
            return observed
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.1f}s waiting for {message}; last seen: {observed!r}",
                        pytrace=False)
        time.sleep(interval)


def wait_for(get, accept, timeout, message, interval=0.02):
    """Poll get() until accept(value); return the value, or fail showing the last one."""
    def check():
        value = get()
        return accept(value), value
    return poll(check, timeout, message, interval)


def http(method, scout, path, **kw):
    """One request on a fresh connection (never a pooled one); None if the server is unreachable."""
    kw.setdefault("timeout", HTTP_TIMEOUT)
    try:
        return requests.request(method, scout.url(path), **kw)
    except requests.RequestException:
        return None


def status_of(r):
    return None if r is None else r.status_code


def learned(scout, mid):
    """performance_summary's learned fields, by label."""
    ps = details(scout, mid)["performance_summary"]
    return {str(row["label"]): {k: row[k] for k in LEARNED} for row in ps.values()}


def contextual(scout, mid):
    """The contextual model's learned part (Monte Carlo fields left out): per categorical value and
    variant the rewards and mean, per numeric feature its mean, sd and coefficients. Replicas fold
    the same events in the same order, so these agree exactly (docs/REDIS.md: bit for bit)."""
    cm = details(scout, mid)["contextual_model"]
    features = {}
    for f in cm.get("features", []):
        if "values" in f:
            features[f["name"]] = {str(v["value"]): {label: (row["rewards"], row["mean"])
                                                     for label, row in v["variants"].items()}
                                   for v in f["values"]}
        else:
            features[f["name"]] = {k: f.get(k) for k in ("type", "mean", "sd", "coefficients")}
    return {"dimension": cm.get("dimension"), "features": features}


def updates_by_label(scout, mid):
    r = http("GET", scout, f"/api/model_details/{mid}")
    if r is None or r.status_code != 200:
        return None
    return {str(row["label"]): row["updates"] for row in r.json()["performance_summary"].values()}


def wait_updates(scouts, mid, expected, timeout=CONVERGE):
    """Wait until every replica shows exactly `expected` ({label: updates})."""
    for k, s in enumerate(scouts):
        wait_for(lambda: updates_by_label(s, mid), lambda got: got == expected, timeout,
                 f"replica {k} to show updates {expected}")


def predictions_by_label(scout, mid):
    return {str(r["label"]): r["predictions"] for r in details(scout, mid)["performance_summary"].values()}


def total_updates(scout, mid):
    got = updates_by_label(scout, mid)
    return None if got is None else sum(got.values())


def metric(scout, name):
    r = http("GET", scout, "/metrics")
    assert r is not None and r.status_code == 200, status_of(r)
    m = re.search(rf"^{re.escape(name)} (\S+)$", r.text, re.M)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))


def listed(scout, mid):
    r = http("GET", scout, "/api/models")
    ids = [m["model_id"] for m in r.json()] if status_of(r) == 200 else None
    return ids is not None and mid in ids, ids


def serves(scout, mid):
    r = http("POST", scout, "/api/fetch_recommended_variant", json={"cb_model_id": mid})
    return status_of(r) == 200, status_of(r)


# --------------------------------------------------------------------------- 1. shared learning


def mixed_client(replicas, mid, k, iterations, failures):
    """One client thread: fetch with context on its replica and reward by request_id on the SAME
    replica; every 4th round also a batch naming the variants directly, sent to a rotating
    replica. Returns what was acknowledged, per label: counts, reward sums, fetches."""
    n = len(replicas)
    mine = replicas[k % n]
    acked = {label: 0 for label in LABELS3.values()}
    sums = {label: 0.0 for label in LABELS3.values()}
    fetched = {label: 0 for label in LABELS3.values()}
    values = (0.0, 0.5, 1.0)  # exact binary sums, and rewards in [0, 1]
    with requests.Session() as sess:
        for i in range(iterations):
            rid = f"c{k}-{i}-{uuid.uuid4().hex[:8]}"
            r = sess.post(mine.url("/api/fetch_recommended_variant"), timeout=HTTP_TIMEOUT,
                          json={"cb_model_id": mid, "request_id": rid,
                                "context": {"device": ("mobile", "desktop")[i % 2], "segment": (k + i) % 3}})
            if r.status_code != 200:
                failures.append(("fetch", r.status_code, r.text[:200]))
                continue
            label = str(r.json()["recommended_variant"])
            fetched[label] += 1
            value = values[(k + i) % 3]
            r = sess.post(mine.url(f"/api/update_model/{mid}"), timeout=HTTP_TIMEOUT,
                          json={"updates": [{"request_id": rid, "reward": value}]})
            body = r.json() if r.status_code == 200 else {}
            if r.status_code != 200 or body.get("processed_updates") != 1 or body.get("redis_hits") != 1:
                failures.append(("update by request_id", rid, r.status_code, r.text[:300]))
                continue
            acked[label] += 1
            sums[label] += value
            if i % 4 == 3:
                other = replicas[(k + i) % n]
                batch = [{"variant_id": 0, "reward": 1},
                         {"decision": "B", "reward": 0.5, "context": {"device": "tablet"}},
                         {"variant_id": "C", "reward": 0}]
                r = sess.post(other.url(f"/api/update_model/{mid}"), json={"updates": batch},
                              timeout=HTTP_TIMEOUT)
                if r.status_code != 200 or r.json().get("processed_updates") != 3:
                    failures.append(("direct update", r.status_code, r.text[:300]))
                    continue
                for label, value in (("A", 1.0), ("B", 0.5), ("C", 0.0)):
                    acked[label] += 1
                    sums[label] += value
    return acked, sums, fetched


@pytest.mark.parametrize("n_replicas", [2, 3])
def test_replicas_serve_and_learn_together_under_mixed_concurrent_load(redis_pool, scout_factory, n_replicas):
    redis = redis_pool.start()
    replicas = start_replicas(scout_factory, redis, n_replicas)
    mid = create_test(replicas[0], variants=LABELS3, name="shared")
    for k, s in enumerate(replicas[1:], 1):   # (listed, not fetched: every decision is counted below)
        poll(lambda: listed(s, mid), PROPAGATE, f"replica {k} to list the test created on replica 0")

    threads, iterations = 6, 48   # 6 * (48 + 12 * 3) = 504 rewards
    failures = []
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(lambda k: mixed_client(replicas, mid, k, iterations, failures), range(threads)))
    assert not failures, failures[:5]
    acked = {label: sum(r[0][label] for r in results) for label in LABELS3.values()}
    sums = {label: sum(r[1][label] for r in results) for label in LABELS3.values()}
    assert sum(acked.values()) == threads * (iterations + (iterations // 4) * 3)

    wait_updates(replicas, mid, acked)
    states = [learned(s, mid) for s in replicas]
    for k, state in enumerate(states):
        for label in LABELS3.values():
            assert state[label]["updates"] == acked[label], (k, label)
            assert state[label]["reward_sum"] == pytest.approx(sums[label], abs=1e-9), (k, label, state[label])
            for key in ("average_reward", "posterior_mean"):
                assert state[label][key] == pytest.approx(states[0][label][key], rel=1e-12, abs=1e-12), (
                    f"replica {k} disagrees with replica 0 on {label}.{key}: {state[label]} vs {states[0][label]}")
    for k, s in enumerate(replicas):
        summary = [m for m in models(s) if m["model_id"] == mid][0]
        assert summary["update_requests"] == sum(acked.values()), (k, summary["update_requests"])
    # every replica counts the decisions all of them made (shared within about a second)
    fetched = {label: sum(r[2][label] for r in results) for label in LABELS3.values()}
    for k, s in enumerate(replicas):
        wait_for(lambda: predictions_by_label(s, mid), lambda got: got == fetched, CONVERGE,
                 f"replica {k} to count every replica's decisions {fetched}")
        summary = [m for m in models(s) if m["model_id"] == mid][0]
        assert summary["prediction_requests"] == sum(fetched.values()), (k, summary)
    # the contextual model (learned from the contexts joined by request_id and sent inline) too
    models_seen = [contextual(s, mid) for s in replicas]
    assert models_seen[0]["features"].get("device"), models_seen[0]
    for k, cm in enumerate(models_seen[1:], 1):
        assert cm == models_seen[0], f"replica {k}'s contextual model differs from replica 0's"


# --------------------------------------------------------------------------- 2. shared tokens


BOOTSTRAP = "bootstrap-admin-token-" + "x" * 24   # >= 32 characters


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def test_tokens_created_and_revoked_on_one_replica_apply_on_the_other(redis_pool, scout_factory):
    redis = redis_pool.start()
    env = {"SCOUT_PROTECTED_API": "true", "SCOUT_AUTH_TOKEN": BOOTSTRAP,
           "SCOUT_AUTH_MAX_FAILURES": "1000000"}   # polling with a not-yet-known token must not hit 429
    a, b = start_replicas(scout_factory, redis, 2, env=env)
    r = http("POST", a, "/api/create_model", headers=auth(BOOTSTRAP),
             json={"name": "guarded", "variants": {"0": "A", "1": "B"}})
    assert r.status_code == 200, r.text
    mid = r.json()["model_id"]
    wait_for(lambda: status_of(http("POST", b, "/api/fetch_recommended_variant", headers=auth(BOOTSTRAP),
                                    json={"cb_model_id": mid})),
             lambda x: x == 200, PROPAGATE, "replica B to serve the test")

    def fetch_on_b(token):
        return status_of(http("POST", b, "/api/fetch_recommended_variant", headers=auth(token),
                              json={"cb_model_id": mid}))

    # protection is enforced on B: no token / an unknown token is refused
    assert status_of(http("POST", b, "/api/fetch_recommended_variant", json={"cb_model_id": mid})) == 401
    assert fetch_on_b("sct_" + "A" * 43) == 401

    r = http("POST", a, "/admin/generate_token", headers=auth(BOOTSTRAP), json={"name": "app", "scope": "client"})
    assert r.status_code == 200, r.text
    token, token_id = r.json()["token"], r.json()["id"]
    assert fetch_on_b(token) in (200, 401)
    wait_for(lambda: fetch_on_b(token), lambda x: x == 200, PROPAGATE,
             "the token created on A to authenticate on B")
    # its scope came along: a client token is not an admin token on B either
    assert status_of(http("GET", b, "/admin/tokens", headers=auth(token))) == 403
    listed = http("GET", b, "/admin/tokens", headers=auth(BOOTSTRAP))
    assert listed.status_code == 200 and token_id in listed.text
    # and it rewards on B too
    r = http("POST", b, f"/api/update_model/{mid}", headers=auth(token),
             json={"updates": [{"decision": "A", "reward": 1}]})
    assert r.status_code == 200 and r.json()["processed_updates"] == 1, r.text

    r = http("POST", a, f"/admin/tokens/{token_id}/revoke", headers=auth(BOOTSTRAP))
    assert r.status_code == 200, r.text
    assert fetch_on_b(token) in (200, 401)
    wait_for(lambda: fetch_on_b(token), lambda x: x == 401, PROPAGATE,
             "the token revoked on A to stop working on B")
    assert status_of(http("POST", a, "/api/fetch_recommended_variant", headers=auth(token),
                          json={"cb_model_id": mid})) == 401


# --------------------------------------------------------------------------- 3. catalog changes


def test_rollout_clear_delete_and_settings_propagate_to_every_replica(redis_pool, scout_factory):
    redis = redis_pool.start()
    a, b, c = start_replicas(scout_factory, redis, 3)
    mid = create_test(a, variants=LABELS3)
    keep = create_test(b)
    for s in (a, b, c):
        poll(lambda: serves(s, mid), PROPAGATE, "every replica to serve the test")
        poll(lambda: serves(s, keep), PROPAGATE, "every replica to serve the second test")

    def rollout_seen(s, want):
        r = http("POST", s, "/api/fetch_recommended_variant", json={"cb_model_id": mid})
        if status_of(r) != 200:
            return False, status_of(r)
        body = r.json()
        got = (body["is_global_rollout"], body["recommended_variant"] if body["is_global_rollout"] else None)
        return got == want, got

    r = http("POST", a, f"/api/rollout_global_variant/{mid}", json={"variant": "C"})
    assert r.status_code == 200, r.text
    for k, s in enumerate((b, c), 1):
        poll(lambda: rollout_seen(s, (True, "C")), PROPAGATE, f"replica {k} to apply the rollout made on A")
        for _ in range(20):
            assert rollout_seen(s, (True, "C"))[0]
        summary = [m for m in models(s) if m["model_id"] == mid][0]
        assert summary["global_rolled_out"] is True and summary["global_variant"] == "C", summary

    r = http("POST", c, f"/api/clear_global_variant/{mid}")
    assert r.status_code == 200, r.text
    for k, s in enumerate((a, b)):
        poll(lambda: rollout_seen(s, (False, None)), PROPAGATE, f"replica {k} to apply the clear made on C")
        summary = [m for m in models(s) if m["model_id"] == mid][0]
        assert summary["global_rolled_out"] is False, summary

    r = http("POST", b, f"/api/delete_model/{mid}")
    assert r.status_code == 200, r.text
    for k, s in ((0, a), (2, c)):
        wait_for(lambda: serves(s, mid)[1], lambda x: x == 404, PROPAGATE,
                 f"replica {k} to forget the test deleted on B")
        ids = [m["model_id"] for m in models(s)]
        assert mid not in ids and keep in ids, ids
        assert_error(http("POST", s, f"/api/update_model/{mid}",
                          json={"updates": [{"decision": "A", "reward": 1}]}), 404)
        assert_error(http("GET", s, f"/api/model_details/{mid}"), 404)

    new = {"time_window_minutes": 30, "bucket_granularity_seconds": 120, "min_update_requests": 4}
    before = http("GET", b, "/admin/model_config").json()
    assert any(before[k] != v for k, v in new.items()), before
    r = http("POST", a, "/admin/model_config", json=new)
    assert r.status_code == 200, r.text
    for k, s in ((1, b), (2, c)):
        def seen(s=s):
            got = http("GET", s, "/admin/model_config").json()
            return all(got.get(key) == value for key, value in new.items()), got
        poll(seen, PROPAGATE, f"replica {k} to show the model_config saved on A")


def test_a_deleted_tests_keys_are_not_made_again_by_decisions_still_in_flight(redis_pool, scout_factory):
    redis = redis_pool.start()
    # Snapshots every second while B learns: a snapshot B files after the delete must not
    # leave the test's snapshot key behind either.
    a, b = start_replicas(scout_factory, redis, 2, env={"SCOUT_SNAPSHOT_INTERVAL": "1"})
    mid = create_test(a, reward_wait_seconds=30)   # (decisions with a reward window are indexed too)
    poll(lambda: serves(b, mid), PROPAGATE, "replica B to serve the test")
    stop, served = threading.Event(), []

    def decide_on_b():   # B decides and learns until it learns of the delete, and a little after
        with requests.Session() as sess:
            while not stop.is_set():
                r = sess.post(b.url("/api/fetch_recommended_variant"), json={"cb_model_id": mid},
                              timeout=HTTP_TIMEOUT)
                served.append(r.status_code)
                sess.post(b.url(f"/api/update_model/{mid}"), json={"updates": [{"variant_id": 0, "reward": 1}]},
                          timeout=HTTP_TIMEOUT)

    worker = threading.Thread(target=decide_on_b)
    worker.start()
    try:
        wait_for(lambda: served.count(200), lambda n: n >= 200, CONVERGE, "B to serve decisions")
        wait_for(lambda: metric(b, "scout_store_snapshots_total") + metric(a, "scout_store_snapshots_total"),
                 lambda n: n >= 1, CONVERGE, "a snapshot of the test")
        assert http("POST", a, f"/api/delete_model/{mid}").status_code == 200
        wait_for(lambda: served[-1], lambda code: code == 404, PROPAGATE, "B to learn of the delete")
    finally:
        stop.set()
        worker.join()
    wait_for(lambda: metric(b, "scout_store_pending_writes"), lambda n: n == 0, CONVERGE,
             "B to write what it had queued")
    keys = redis.cli("--scan", "--pattern", f"scout:{{{mid}}}:*").split()
    assert keys == [], keys[:20]


def test_a_reward_sent_to_another_replica_right_after_its_decision_joins_it(redis_pool, scout_factory):
    """A client whose load balancer sends the fetch to A and the reward to B at once: A queues
    the decision record for Redis, so B waits for it (briefly) instead of learning the reward
    without its context, or refusing it for want of a variant."""
    redis = redis_pool.start()
    a, b = start_replicas(scout_factory, redis, 2)
    mid = create_test(a, variants=LABELS3, policy="linucb", features=["device"])
    poll(lambda: serves(b, mid), PROPAGATE, "replica B to serve the test")
    misses, errors = [], []

    def pairs(k):
        with requests.Session() as sa, requests.Session() as sb:
            for i in range(60):
                rid = f"pair-{k}-{i}"
                d = sa.post(a.url("/api/fetch_recommended_variant"), timeout=HTTP_TIMEOUT,
                            json={"cb_model_id": mid, "request_id": rid, "context": {"device": "mobile"}})
                u = sb.post(b.url(f"/api/update_model/{mid}"), timeout=HTTP_TIMEOUT,
                            json={"updates": [{"request_id": rid, "reward": 1}]})
                if d.status_code != 200 or u.status_code != 200:
                    errors.append((d.status_code, u.status_code, u.text[:200]))
                    continue
                out = u.json()
                if (out["redis_hits"], out["processed_updates"], out["missing_context"]) != (1, 1, 0):
                    misses.append((rid, out))

    threads = [threading.Thread(target=pairs, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [], errors[:5]
    assert misses == [], f"{len(misses)} of 240 rewards did not join their decision: {misses[:3]}"
    perf = {label: row["updates"] for label, row in details(b, mid)["performance_summary"].items()}
    assert sum(perf.values()) == 240, perf


def test_many_large_updates_of_one_test_at_once_are_each_applied_once(redis_pool, scout_factory):
    """Updates of one test that arrive together share the writer's script calls, a bounded number
    of rewards per call: 16 clients sending 100 rewards at a time, each answered with its own
    count, and every reward learned exactly once."""
    redis = redis_pool.start()
    (s,) = start_replicas(scout_factory, redis, 1)
    mid = create_test(s)
    sent, bad = {"A": 0, "B": 0}, []
    lock = threading.Lock()

    def send(k):
        with requests.Session() as sess:
            for i in range(12):
                label = "AB"[(k + i) % 2]
                r = sess.post(s.url(f"/api/update_model/{mid}"), timeout=HTTP_TIMEOUT,
                              json={"updates": [{"decision": label, "reward": 1} for _ in range(100)]})
                with lock:
                    if r.status_code == 200 and r.json()["processed_updates"] == 100:
                        sent[label] += 100
                    else:
                        bad.append((r.status_code, r.text[:200]))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(send, range(16)))
    assert bad == [], bad[:3]
    wait_updates([s], mid, sent)
    assert int(redis.cli("XLEN", f"scout:{{{mid}}}:events")) == sum(sent.values())


# --------------------------------------------------------------------------- 4. Redis outage


def test_redis_outage_serves_decisions_refuses_writes_and_recovers_without_loss(redis_pool, scout_factory):
    redis = redis_pool.start()
    a, b = start_replicas(scout_factory, redis, 2)
    mid = create_test(a)
    poll(lambda: serves(b, mid), PROPAGATE, "replica B to serve the test")
    update(a, mid, [{"decision": "A", "reward": 1}] * 30)
    update(b, mid, [{"decision": "B", "reward": 1}] * 20)
    d = fetch(a, mid, context={"device": "mobile"}, request_id="before-outage")
    out = update(a, mid, [{"request_id": "before-outage", "reward": 1}])
    assert out["processed_updates"] == 1 and out["redis_hits"] == 1, out
    before = {"A": 30, "B": 20}
    before[d["recommended_variant"]] += 1
    wait_updates([a, b], mid, before)
    for s in (a, b):
        assert status_of(http("GET", s, "/readyz")) == 200
        assert metric(s, "scout_redis_connections") == REDIS_LINKS

    redis.stop()

    for k, s in enumerate((a, b)):
        wait_for(lambda: status_of(http("GET", s, "/readyz")), lambda x: x == 503, PROPAGATE,
                 f"replica {k}'s /readyz to answer 503 while Redis is down")
        wait_for(lambda: metric(s, "scout_redis_connections"), lambda x: x < REDIS_LINKS, PROPAGATE,
                 f"replica {k}'s scout_redis_connections to drop below {REDIS_LINKS}")
        # decisions keep being served from memory
        for i in range(10):
            r = http("POST", s, "/api/fetch_recommended_variant",
                     json={"cb_model_id": mid, "context": {"device": "desktop", "i": i}})
            assert status_of(r) == 200, f"replica {k}: fetch during the outage -> {status_of(r)} {r and r.text}"
        # rewards and writes are refused with a clear JSON 503
        started = time.monotonic()
        r = http("POST", s, f"/api/update_model/{mid}", json={"updates": [{"decision": "A", "reward": 1}]})
        assert_error(r, 503)
        assert time.monotonic() - started < 5, "a refused reward should not stall"
        assert_error(http("POST", s, "/api/create_model", json={"name": "x", "variants": {"0": "A", "1": "B"}}), 503)
        assert status_of(http("GET", s, "/healthz")) == 200
    # a decision made during the outage, on A: its record is queued until Redis is back
    outage = fetch(a, mid, context={"device": "tv"}, request_id="during-outage")
    assert_error(http("POST", a, f"/api/update_model/{mid}",
                      json={"updates": [{"request_id": "during-outage", "reward": 1}]}), 503)

    redis = redis_pool.restart(redis)

    def reward_works(s, label):
        r = http("POST", s, f"/api/update_model/{mid}", json={"updates": [{"decision": label, "reward": 1}]})
        if status_of(r) == 200:
            assert r.json()["processed_updates"] == 1, r.text
            return True, 200
        return False, (status_of(r), r.text[:200] if r is not None else None)

    poll(lambda: reward_works(a, "A"), RECONNECT, "replica A to take rewards again after Redis came back",
         interval=0.1)
    poll(lambda: reward_works(b, "B"), RECONNECT, "replica B to take rewards again after Redis came back",
         interval=0.1)
    for k, s in enumerate((a, b)):
        wait_for(lambda: status_of(http("GET", s, "/readyz")), lambda x: x == 200, RECONNECT,
                 f"replica {k}'s /readyz to answer 200 again", interval=0.1)
        wait_for(lambda: metric(s, "scout_redis_connections"), lambda x: x == REDIS_LINKS, RECONNECT,
                 f"replica {k} to have its {REDIS_LINKS} Redis connections back", interval=0.1)

    out = update(a, mid, [{"request_id": "during-outage", "reward": 1}])
    assert out["redis_hits"] == 1 and out["processed_updates"] == 1, (
        f"the decision made during the outage was not written once Redis came back: {out}")
    after = dict(before)
    after["A"] += 1
    after["B"] += 1
    after[outage["recommended_variant"]] += 1
    # every reward acknowledged before the outage is still counted, on both, and both learn on
    wait_updates([a, b], mid, after)
    la, lb = learned(a, mid), learned(b, mid)
    for label in ("A", "B"):
        assert la[label]["reward_sum"] == pytest.approx(after[label]), la
        assert la[label]["posterior_mean"] == pytest.approx(lb[label]["posterior_mean"], rel=1e-12), (la, lb)


# --------------------------------------------------------------------------- 5. SIGKILL under load


class RewardLoad:
    """Threads sending one-reward requests to one replica until it vanishes."""

    def __init__(self, scout, mid, threads=4, per_thread=2000):
        self.url = scout.url(f"/api/update_model/{mid}")
        self.lock = threading.Lock()
        self.sent = self.acked = 0
        self.acked_ids = []   # each acknowledged reward's request id (no decision has it: it just names it)
        self.bad = []
        self.per_thread = per_thread
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self):
        with requests.Session() as sess:
            for _ in range(self.per_thread):
                rid = f"kill-{uuid.uuid4().hex}"
                with self.lock:
                    self.sent += 1
                try:
                    r = sess.post(self.url, json={"updates": [{"decision": "A", "reward": 1, "request_id": rid}]},
                                  timeout=10)
                except requests.RequestException:
                    return   # the server went away mid-request: not acknowledged
                try:
                    processed = r.json().get("processed_updates") if r.status_code == 200 else None
                except ValueError:
                    processed = None
                with self.lock:
                    if processed is not None:
                        self.acked += processed
                        self.acked_ids.append(rid)
                    else:
                        self.bad.append((r.status_code, r.text[:200]))
                if processed != 1:
                    return

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def join(self):
        for t in self.threads:
            t.join(timeout=30)
            assert not t.is_alive(), "a load thread hung"


def test_acknowledged_rewards_survive_a_replica_sigkilled_under_load(redis_pool, scout_factory):
    redis = redis_pool.start()
    a, b = start_replicas(scout_factory, redis, 2)
    mid = create_test(a)
    poll(lambda: serves(b, mid), PROPAGATE, "replica B to serve the test")
    load = RewardLoad(a, mid).start()
    poll(lambda: (load.acked >= 300 or bool(load.bad), load.acked), 30, "300 acknowledged rewards")
    assert not load.bad, load.bad[:3]
    a.kill()
    load.join()
    assert not load.bad, load.bad[:3]
    acked, sent = load.acked, load.sent
    assert acked >= 300

    stored_b = wait_for(lambda: total_updates(b, mid), lambda x: x is not None and x >= acked, CONVERGE,
                        f"the surviving replica to show all {acked} acknowledged rewards")
    assert acked <= stored_b <= sent, (acked, stored_b, sent)
    # and each acknowledged reward is in the stream, by its request id
    lines = redis.cli("XRANGE", f"scout:{{{mid}}}:events", "-", "+").splitlines()
    in_stream = {lines[i + 1] for i in range(len(lines) - 1) if lines[i] == "q"}
    missing = [rid for rid in load.acked_ids if rid not in in_stream]
    assert len(load.acked_ids) == acked and not missing, (len(missing), missing[:3])

    a.restart()
    wait_for(lambda: (total_updates(a, mid), total_updates(b, mid)), lambda ab: ab[0] == ab[1], CONVERGE,
             "the restarted replica to agree with the survivor")
    stored = total_updates(b, mid)
    assert acked <= stored <= sent, (acked, stored, sent)
    for s in (a, b):
        row = learned(s, mid)["A"]
        assert row["updates"] == stored and row["reward_sum"] == pytest.approx(stored), row


# --------------------------------------------------------------------------- 6. decision expiry


def test_decisions_expire_after_redis_context_ttl(redis_pool, scout_factory):
    redis = redis_pool.start()
    (s,) = start_replicas(scout_factory, redis, 1, env={"REDIS_CONTEXT_TTL": "1"})
    health = http("GET", s, "/admin/redis_health").json()
    assert health["ttl_seconds"] == 1, health
    mid = create_test(s)
    fresh = fetch(s, mid, context={"device": "mobile"}, request_id="fresh")
    fetch(s, mid, context={"device": "mobile"}, request_id="late")
    named = fetch(s, mid, context={"device": "mobile"}, request_id="late-named")
    fetched_at = time.monotonic()

    out = update(s, mid, [{"request_id": "fresh", "reward": 1}])
    assert time.monotonic() - fetched_at < 1.0, "the in-TTL update was too slow to mean anything"
    assert (out["processed_updates"], out["redis_hits"], out["missing_context"]) == (1, 1, 0), out

    time.sleep(max(0.0, fetched_at + 2.5 - time.monotonic()))
    out = update(s, mid, [{"request_id": "late", "reward": 1}])
    assert (out["processed_updates"], out["redis_hits"], out["missing_context"]) == (0, 0, 1), (
        f"a decision older than REDIS_CONTEXT_TTL=1 was still found: {out}")
    # naming the variant, the reward still counts, only without the stored decision
    out = update(s, mid, [{"request_id": "late-named", "decision": named["recommended_variant"], "reward": 1}])
    assert (out["processed_updates"], out["redis_hits"]) == (1, 0), out

    got = learned(s, mid)
    assert sum(row["updates"] for row in got.values()) == 2, got
    assert got[fresh["recommended_variant"]]["updates"] >= 1

    # expired records leave Redis: the records and their entries in the log of decisions
    def left():
        return [int(redis.cli(cmd, f"scout:{{{mid}}}:{key}")) for cmd, key in (("HLEN", "d"), ("XLEN", "dlog"))]
    wait_for(left, lambda n: n == [0, 0], CONVERGE, "the expired decisions to be dropped from Redis")
    assert metric(s, "scout_store_purged_decisions_total") >= 3
    assert http("GET", s, "/admin/redis_health").json()["context_keys_count"] == 0


# --------------------------------------------------------------------------- 6b. the record format


def test_decision_records_of_the_first_format_are_moved_on_start_and_still_joined(redis_pool, scout_factory):
    """A Redis written by an older scoutd (format 1: one expiring hash per decision) is brought to
    the current layout when scoutd opens it: its decisions are still exported with their context,
    propensity and joined rewards, a reward naming one joins it, and the old keys are gone."""
    redis = redis_pool.start()
    (s,) = start_replicas(scout_factory, redis, 1)
    mid = create_test(s)
    s.stop()
    now = time.time()
    old = {   # the fields format 1 kept, as the older scoutd wrote them
        "old-plain": dict(v=1, p="0.5", x=0, c='{"device":"mobile"}', t=repr(now - 20), e=repr(now + 3600), s=0,
                          a=0, dr="", mv=3),
        "old-summed": dict(v=0, p="0.25", x=1, c="", t=repr(now - 10), e=repr(now + 3600), s=0, a=2, dr="", mv=4,
                           n=2, sum="1.5"),
    }
    for rid, fields in old.items():
        key = f"scout:{{{mid}}}:d:{rid}"
        redis.cli("HSET", key, *[x for kv in fields.items() for x in kv])
        redis.cli("PEXPIREAT", key, int(float(fields["e"]) * 1000))
        redis.cli("ZADD", f"scout:{{{mid}}}:dt", fields["t"], rid)
        redis.cli("ZADD", f"scout:{{{mid}}}:dx", fields["e"], rid)
    redis.cli("DEL", "scout:format")   # what a Redis of the older scoutd holds

    s.start()
    assert redis.cli("GET", "scout:format") == "3"
    assert redis.cli("--scan", "--pattern", f"scout:{{{mid}}}:d:*") == ""
    assert [redis.cli("EXISTS", f"scout:{{{mid}}}:{k}") for k in ("dt", "dx")] == ["0", "0"]
    assert redis.cli("XLEN", f"scout:{{{mid}}}:dlog") == "2" and redis.cli("HLEN", f"scout:{{{mid}}}:d") == "2"
    out = update(s, mid, [{"request_id": "old-plain", "reward": 1}])
    assert (out["processed_updates"], out["redis_hits"], out["missing_context"]) == (1, 1, 0), out
    assert sum(row["updates"] for row in learned(s, mid).values()) == 1
    r = s.get(f"/api/export/{mid}")   # the decisions with a reward
    assert r.status_code == 200, r.text
    rows = {row["request_id"]: row for row in map(json.loads, r.text.splitlines())}
    assert set(rows) == set(old), rows
    assert rows["old-plain"]["context"] == {"device": "mobile"}, rows["old-plain"]
    assert (rows["old-plain"]["variant_id"], rows["old-plain"]["propensity"], rows["old-plain"]["reward"]) == (1, 0.5, 1)
    assert rows["old-plain"]["created"] == pytest.approx(now - 20, abs=1e-5)
    assert (rows["old-summed"]["variant_id"], rows["old-summed"]["reward"]) == (0, 1.5), rows["old-summed"]


DLOG_RIDS = """
local out = {}
for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
  local f = e[2]
  if f[1] == 'r' then out[#out + 1] = f[2] end
  if f[1] == 'n' then for j = 3, #f, 2 do out[#out + 1] = f[j] end end
end
return out
"""


def dlog_rids(redis, mid):
    """The request ids scout:{T}:dlog lists, in its order (an id listed twice: written twice)."""
    return redis.cli("EVAL", DLOG_RIDS, "1", f"scout:{{{mid}}}:dlog").split()


def test_decision_records_of_the_second_format_are_read_and_expire_after_the_upgrade(redis_pool, scout_factory):
    """A Redis written by the scoutd before (format 2: one dlog entry `r <id>` per decision) is
    taken as it is: its decisions join rewards, are exported next to new ones, and expire."""
    redis = redis_pool.start()
    (s,) = start_replicas(scout_factory, redis, 1, env={"REDIS_CONTEXT_TTL": "4"})
    mid = create_test(s)
    s.stop()
    now = time.time()
    line = f"1 0.5 0 {now - 1:.6f} {now + 4:.6f} 0 0 - 3 0 0 0\n" + '{"device":"mobile"}'
    redis.cli("HSET", f"scout:{{{mid}}}:d", "f2-rid", line)
    redis.cli("XADD", f"scout:{{{mid}}}:dlog", "*", "r", "f2-rid")
    redis.cli("SET", "scout:format", "2")

    s.start()
    assert redis.cli("GET", "scout:format") == "3"
    fresh = fetch(s, mid, context={"device": "tv"}, request_id="f3-rid")
    out = update(s, mid, [{"request_id": "f2-rid", "reward": 1}, {"request_id": "f3-rid", "reward": 2}])
    assert (out["processed_updates"], out["redis_hits"], out["missing_context"]) == (2, 2, 0), out
    r = s.get(f"/api/export/{mid}")
    assert r.status_code == 200, r.text
    rows = {row["request_id"]: row for row in map(json.loads, r.text.splitlines())}
    assert set(rows) == {"f2-rid", "f3-rid"}, rows
    assert (rows["f2-rid"]["context"], rows["f2-rid"]["variant_id"], rows["f2-rid"]["reward"]) == (
        {"device": "mobile"}, 1, 1), rows["f2-rid"]
    assert (rows["f3-rid"]["context"], rows["f3-rid"]["variant_id"], rows["f3-rid"]["reward"]) == (
        {"device": "tv"}, fresh["variant_id"], 2), rows["f3-rid"]
    assert dlog_rids(redis, mid) == ["f2-rid", "f3-rid"]

    def left():
        return [int(redis.cli(cmd, f"scout:{{{mid}}}:{key}")) for cmd, key in (("HLEN", "d"), ("XLEN", "dlog"))]
    wait_for(left, lambda n: n == [0, 0], CONVERGE, "both shapes of dlog entries to expire")


def test_a_request_id_sent_twice_keeps_its_latest_decision_once(redis_pool, scout_factory):
    """A client that sends one request id with two fetches: the second decision replaces the
    first — a reward joins it, the export lists it once — and both leave Redis when they expire."""
    redis = redis_pool.start()
    (s,) = start_replicas(scout_factory, redis, 1, env={"REDIS_CONTEXT_TTL": "3"})
    mid = create_test(s)
    fetch(s, mid, context={"device": "mobile"}, request_id="twice")
    wait_for(lambda: redis.cli("HLEN", f"scout:{{{mid}}}:d"), lambda n: n == "1", CONVERGE,
             "the first decision to be written")
    second = fetch(s, mid, context={"device": "tv"}, request_id="twice")
    out = update(s, mid, [{"request_id": "twice", "reward": 1}])
    assert (out["processed_updates"], out["redis_hits"]) == (1, 1), out
    r = s.get(f"/api/export/{mid}")
    assert r.status_code == 200, r.text
    rows = [json.loads(x) for x in r.text.splitlines()]
    assert [(x["request_id"], x["context"], x["variant_id"]) for x in rows] == [
        ("twice", {"device": "tv"}, second["variant_id"])], rows
    assert dlog_rids(redis, mid) == ["twice", "twice"]   # the first entry is stale: readers pass it by
    assert redis.cli("HGET", f"scout:{{{mid}}}:meta", "predictions") == "2"

    def left():
        return [int(redis.cli(cmd, f"scout:{{{mid}}}:{key}")) for cmd, key in (("HLEN", "d"), ("XLEN", "dlog"))]
    wait_for(left, lambda n: n == [0, 0], CONVERGE, "the decision and both entries to expire")


def test_decisions_written_while_the_writers_link_is_cut_are_each_recorded_and_counted_once(
        redis_pool, scout_factory):
    """Redis drops the replica's connections again and again while it serves decisions: a batch
    whose answer never came is sent again, and none of its decisions is lost, listed twice or
    counted twice."""
    redis = redis_pool.start()
    (s,) = start_replicas(scout_factory, redis, 1)
    mid = create_test(s, variants=LABELS3)
    stop, answered, bad = threading.Event(), [], []

    def decide(k):
        with requests.Session() as sess:
            i = 0
            while not stop.is_set():
                rid = f"cut-{k}-{i}"
                i += 1
                r = sess.post(s.url("/api/fetch_recommended_variant"), json={"cb_model_id": mid, "request_id": rid},
                              timeout=HTTP_TIMEOUT)
                (answered if r.status_code == 200 else bad).append(rid if r.status_code == 200 else r.text[:200])

    workers = [threading.Thread(target=decide, args=(k,)) for k in range(4)]
    for w in workers:
        w.start()
    kills = 0
    try:
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            time.sleep(0.15)
            kills += int(redis.cli("CLIENT", "KILL", "TYPE", "normal") or 0)
    finally:
        stop.set()
        for w in workers:
            w.join()
    assert bad == [], bad[:5]
    assert kills >= 10 and len(answered) >= 500, (kills, len(answered))
    wait_for(lambda: metric(s, "scout_store_pending_writes"), lambda n: n == 0, CONVERGE,
             "the replica to write every decision")
    listed = dlog_rids(redis, mid)
    assert len(listed) == len(set(listed)) == len(answered), (len(listed), len(set(listed)), len(answered))
    assert set(listed) == set(answered)
    assert int(redis.cli("HLEN", f"scout:{{{mid}}}:d")) == len(answered)
    assert int(redis.cli("HGET", f"scout:{{{mid}}}:meta", "predictions")) == len(answered)
    per_variant = redis.cli("HVALS", f"scout:{{{mid}}}:armpred").split()
    assert sum(map(int, per_variant)) == len(answered), per_variant


# --------------------------------------------------------------------------- 7. refused configurations


WRONG = "Zz-not-it-991"


def run_scoutd(tmp_path, args=(), env=None):
    """Run scoutd expecting it to exit on its own; return the CompletedProcess."""
    cmd = [SCOUTD, "--host", "127.0.0.1", "--port", str(free_port()), "--ui-port", "0",
           "--data-dir", str(tmp_path / f"data-{uuid.uuid4().hex[:6]}"), *args]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SCOUT_", "REDIS_"))}
    full_env.update(env or {})
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20, env=full_env,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"scoutd did not exit (it should refuse to start): {' '.join(cmd)}\n{exc.stderr}",
                    pytrace=False)


def test_refused_redis_credentials_exit_2_without_leaking_the_password(redis_pool, tmp_path):
    redis = redis_pool.start()
    secret_file = tmp_path / "redis-password"
    secret_file.write_text(WRONG + "\n")
    secret_file.chmod(0o600)
    cases = {
        "url": dict(args=["--redis", f"redis://:{WRONG}@127.0.0.1:{redis.port}"]),
        "url with user": dict(args=["--redis", f"redis://scout:{WRONG}@127.0.0.1:{redis.port}"]),
        "env": dict(env={"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(redis.port), "REDIS_PASSWORD": WRONG}),
        "file": dict(env={"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(redis.port),
                          "REDIS_PASSWORD_FILE": str(secret_file)}),
    }
    for name, how in cases.items():
        p = run_scoutd(tmp_path, **how)
        assert p.returncode == 2, f"{name}: exit {p.returncode}\n{p.stderr}"
        assert "wrong password" in p.stderr, f"{name}: {p.stderr!r}"
        assert WRONG not in p.stderr and WRONG not in p.stdout, f"{name}: the password leaked: {p.stderr!r}"
        assert RedisServer.PASSWORD not in p.stderr + p.stdout

    p = run_scoutd(tmp_path, args=["--redis", f"redis://127.0.0.1:{redis.port}"])
    assert p.returncode == 2, f"exit {p.returncode}\n{p.stderr}"
    assert "requires a password" in p.stderr, p.stderr

    nobody = free_port()
    p = run_scoutd(tmp_path, args=["--redis", f"redis://:{WRONG}@127.0.0.1:{nobody}"])
    assert p.returncode != 0, p.stderr
    assert "cannot reach Redis" in p.stderr, p.stderr
    assert WRONG not in p.stderr + p.stdout, p.stderr

    # and the right password does start (so the refusals above are about the password)
    port = free_port()
    ok = subprocess.Popen([SCOUTD, "--host", "127.0.0.1", "--port", str(port), "--ui-port", "0",
                           "--data-dir", str(tmp_path / "ok"), "--redis", redis.url],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                          env={k: v for k, v in os.environ.items() if not k.startswith(("SCOUT_", "REDIS_"))})
    try:
        def ready():
            if ok.poll() is not None:
                pytest.fail(f"scoutd with the right password exited {ok.returncode}: {ok.stderr.read()}",
                            pytrace=False)
            try:
                code = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code
            except requests.RequestException as exc:
                code = repr(exc)
            return code == 200, code
        poll(ready, 10, "scoutd with the right password to be ready")
    finally:
        ok.terminate()
        assert ok.wait(timeout=10) == 0


# --------------------------------------------------------------------------- 8. staleness


def test_staleness_between_replicas(redis_pool, scout_factory):
    redis = redis_pool.start()
    a, b = start_replicas(scout_factory, redis, 2)
    mid = create_test(a)
    poll(lambda: serves(b, mid), PROPAGATE, "replica B to serve the test")
    url_b = b.url(f"/api/model_details/{mid}")
    staleness = []
    with requests.Session() as sa, requests.Session() as sb:
        for i in range(100):
            r = sa.post(a.url(f"/api/update_model/{mid}"), json={"updates": [{"decision": "B", "reward": 1}]},
                        timeout=HTTP_TIMEOUT)
            assert r.status_code == 200 and r.json()["processed_updates"] == 1, r.text
            acked_at = time.monotonic()
            deadline = acked_at + CONVERGE
            while True:
                rows = sb.get(url_b, timeout=HTTP_TIMEOUT).json()["performance_summary"].values()
                seen = sum(row["updates"] for row in rows)
                if seen >= i + 1:
                    staleness.append(time.monotonic() - acked_at)
                    break
                if time.monotonic() > deadline:
                    pytest.fail(f"reward {i + 1} acknowledged on A not visible on B after {CONVERGE}s "
                                f"(B shows {seen})", pytrace=False)
                time.sleep(0.0005)
            assert seen == i + 1, f"B shows {seen} updates, only {i + 1} were sent"
        baseline = []   # what one model_details round trip on B costs by itself
        for _ in range(50):
            t0 = time.monotonic()
            assert sb.get(url_b, timeout=HTTP_TIMEOUT).status_code == 200
            baseline.append(time.monotonic() - t0)
    ms = sorted(x * 1000 for x in staleness)
    base = sorted(x * 1000 for x in baseline)
    p50, p99 = ms[len(ms) // 2], ms[int(len(ms) * 0.99) - 1]
    print(f"\n[redis staleness A->B over {len(ms)} rewards, from A's 200 to B's model_details showing it] "
          f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {ms[-1]:.2f} ms "
          f"(one model_details round trip on B alone: p50 {base[len(base) // 2]:.2f} ms)")


# --------------------------------------------------------------------------- 9. full restart


def test_all_replicas_restarted_and_a_fresh_one_serve_identical_learned_state(redis_pool, scout_factory):
    redis = redis_pool.start()
    a, b = start_replicas(scout_factory, redis, 2)
    t1 = create_test(a, variants=LABELS3, name="contextual")
    t2 = create_test(b, name="plain", min_updates=3)
    for s in (a, b):
        poll(lambda: serves(s, t1), PROPAGATE, "both replicas to serve t1")
        poll(lambda: serves(s, t2), PROPAGATE, "both replicas to serve t2")
    for i in range(40):
        s = (a, b)[i % 2]
        d = fetch(s, t1, context={"device": ("mobile", "desktop")[i % 2], "age": 20 + i % 7},
                  request_id=f"r{i}")
        out = update(s, t1, [{"request_id": f"r{i}", "reward": (0.0, 0.5, 1.0)[i % 3]}])
        assert out["redis_hits"] == 1 and out["processed_updates"] == 1, (out, d)
        fetch(s, t2)
    update(a, t2, [{"decision": "A", "reward": 0.25}] * 7 + [{"decision": "B", "reward": 1}] * 5)
    update(b, t2, [{"variant_id": 1, "reward": 0}] * 3 + [{"decision": "A", "reward": 1, "feature_x": 2}])
    assert http("POST", b, f"/api/rollout_global_variant/{t2}", json={"variant": "B"}).status_code == 200
    wait_updates([b], t1, {k: v["updates"] for k, v in learned(a, t1).items()})
    wait_updates([a, b], t2, {"A": 8, "B": 8})
    wait_for(lambda: http("POST", a, "/api/fetch_recommended_variant", json={"cb_model_id": t2}),
             lambda r: status_of(r) == 200 and r.json()["is_global_rollout"], PROPAGATE,
             "replica A to apply the rollout made on B")

    before = {mid: learned(a, mid) for mid in (t1, t2)}
    assert before == {mid: learned(b, mid) for mid in (t1, t2)}
    context_before = contextual(a, t1)
    assert context_before["features"].get("device") and context_before == contextual(b, t1)
    preds = {}
    for mid in (t1, t2):
        # each replica shows the decisions of both (within a second), not only its own: 40 in
        # the loop, and those of the polls above
        both = wait_for(lambda: (predictions_by_label(a, mid), predictions_by_label(b, mid)),
                        lambda ab: ab[0] == ab[1] and sum(ab[0].values()) >= 40, CONVERGE,
                        "both replicas to count the decisions made on either")
        preds[mid] = both[0]
    counts = {m["model_id"]: m["update_requests"] for m in models(a)}

    assert a.stop(signal.SIGTERM) == 0
    assert b.stop(signal.SIGTERM) == 0

    fresh = start_replicas(scout_factory, redis, 1)[0]
    a.restart()
    for name, s in (("a fresh replica", fresh), ("replica A restarted", a)):
        # decisions written by both replicas were all kept: a replica starting now counts them all
        for mid in (t1, t2):
            got = predictions_by_label(s, mid)
            assert got == preds[mid], (name, mid, got, preds[mid])
        listed = {m["model_id"]: m for m in models(s)}
        assert set(listed) == {t1, t2}, (name, set(listed))
        for mid in (t1, t2):
            assert learned(s, mid) == before[mid], (name, mid, learned(s, mid), before[mid])
            assert listed[mid]["update_requests"] == counts[mid], (name, mid)
        assert contextual(s, t1) == context_before, name
        r = http("POST", s, "/api/fetch_recommended_variant", json={"cb_model_id": t2})
        assert r.json()["is_global_rollout"] is True and r.json()["recommended_variant"] == "B", r.text


# --------------------------------------------------------------------------- 10. reward windows


def test_reward_windows_settle_promptly_on_every_replica_and_after_a_redis_restart(redis_pool, scout_factory):
    """A decision left without a reward gets its default reward when its window ends. Settling
    runs in the background every fraction of a second (the embedded store learns a 1 s window's
    default reward ~1.05 s after the decision), one replica at a time, and must keep working
    after Redis restarts. Two decisions in a row: the second one's window ends just after the
    first was settled."""
    redis = redis_pool.start()
    a, b = start_replicas(scout_factory, redis, 2)
    mid = create_test(a, reward_wait_seconds=1, default_reward=0.5)
    poll(lambda: listed(b, mid), PROPAGATE, "replica B to list the test")   # (no decision made)

    def settles(rid, expected_total, deadline):
        fetched_at = time.monotonic()
        fetch(a, mid, request_id=rid)
        for k, replica in enumerate((a, b)):
            wait_for(lambda: total_updates(replica, mid), lambda x: x == expected_total,
                     max(0.1, fetched_at + deadline - time.monotonic()),
                 f"decision {rid!r} (1 s reward window, default reward) to be settled and learned on "
                 f"replica {k} within {deadline} s of the fetch")

    settles("first", 1, 3.5)
    settles("second", 2, 3.5)

    redis = redis_pool.restart(redis)
    wait_for(lambda: status_of(http("GET", a, "/readyz")), lambda x: x == 200, RECONNECT,
             "replica A to reconnect", interval=0.1)
    settles("after-restart", 3, CONVERGE)
    for s in (a, b):
        row = learned(s, mid)
        assert sum(r["updates"] for r in row.values()) == 3, row
        assert sum(r["reward_sum"] for r in row.values()) == pytest.approx(1.5), row


# --------------------------------------------------------------------------- 11. snapshots, trimming


SNAPSHOT_EVERY = {"SCOUT_SNAPSHOT_INTERVAL": "1"}   # seconds: the default is 60


def contextual_updates(n, seed):
    """n rewards naming their variant, with string, boolean and numeric context."""
    out = []
    for i in range(n):
        k = seed + i
        out.append({"variant_id": k % 3, "reward": (0.0, 0.25, 1.0, 0.5)[k % 4],
                    "context": {"device": ("mobile", "desktop", "tablet")[k % 3], "returning": k % 2 == 0,
                                "age": 18 + (k * 7) % 50, "country": f"c{k % 40}"}})
    return out


def send_rewards(scout, mid, n, seed, batch=50):
    for start in range(0, n, batch):
        out = update(scout, mid, contextual_updates(min(batch, n - start), seed + start))
        assert out["processed_updates"] == min(batch, n - start), out


def xlen(redis, mid):
    return int(redis.cli("XLEN", f"scout:{{{mid}}}:events"))


def state_of(scout, mid):
    return learned(scout, mid), contextual(scout, mid)


def test_a_restart_loads_the_snapshot_and_the_events_after_it_and_covered_events_are_trimmed(
        redis_pool, scout_factory):
    redis = redis_pool.start()
    a = start_replicas(scout_factory, redis, 1, env={**SNAPSHOT_EVERY, "SCOUT_EVENT_RETENTION": "0"})[0]
    mid = create_test(a, variants=LABELS3, name="snapshotted")
    send_rewards(a, mid, 600, seed=0)
    wait_for(lambda: metric(a, "scout_store_events_trimmed_total"), lambda x: x > 0, CONVERGE,
             "a snapshot to be filed and the events it covers trimmed")
    assert metric(a, "scout_store_snapshots_total") >= 1
    assert redis.cli("HEXISTS", f"scout:{{{mid}}}:snap", "state") == "1"
    kept = xlen(redis, mid)
    assert kept < 600, f"the stream still holds {kept} of 600 events after a snapshot with retention 0"
    # events after the snapshot: the tail a restart replays
    send_rewards(a, mid, 37, seed=600)
    before = state_of(a, mid)
    assert sum(row["updates"] for row in before[0].values()) == 637
    assert before[1]["features"]["country"], before[1]

    a.restart()
    assert metric(a, "scout_store_snapshot_restores_total") == 1
    assert state_of(a, mid) == before, "snapshot + tail differs from the state before the restart"
    # a replica that never saw the events serves the same state, and both keep agreeing
    b = start_replicas(scout_factory, redis, 1, env=SNAPSHOT_EVERY)[0]
    assert metric(b, "scout_store_snapshot_restores_total") == 1
    assert state_of(b, mid) == before
    send_rewards(b, mid, 120, seed=700)
    wait_updates([a], mid, {label: row["updates"] for label, row in learned(b, mid).items()})
    assert state_of(a, mid) == state_of(b, mid)


def test_events_are_kept_for_the_retention_period_and_trimmed_with_the_next_snapshot(redis_pool, scout_factory):
    redis = redis_pool.start()
    retention = 6
    a = start_replicas(scout_factory, redis, 1, env={**SNAPSHOT_EVERY, "SCOUT_EVENT_RETENTION": str(retention)})[0]
    mid = create_test(a, variants=LABELS3)
    sent_at = time.monotonic()
    send_rewards(a, mid, 400, seed=0)
    wait_for(lambda: metric(a, "scout_store_snapshots_total"), lambda x: x >= 1, CONVERGE, "a snapshot")
    assert time.monotonic() - sent_at < retention, "too slow to check the retention (machine overloaded?)"
    assert xlen(redis, mid) == 400, "events younger than the retention period were trimmed"
    assert metric(a, "scout_store_events_trimmed_total") == 0
    time.sleep(retention + 0.5 - (time.monotonic() - sent_at))
    send_rewards(a, mid, 5, seed=400)   # something new to snapshot
    wait_for(lambda: xlen(redis, mid), lambda n: n < 405, CONVERGE,
             "events older than the retention period and covered by a snapshot to be trimmed")
    assert metric(a, "scout_store_events_trimmed_total") == 405 - xlen(redis, mid)


def test_a_replica_that_fell_behind_trimmed_events_takes_the_snapshot(redis_pool, scout_factory):
    redis = redis_pool.start()
    env = {**SNAPSHOT_EVERY, "SCOUT_EVENT_RETENTION": "0"}
    a, b = start_replicas(scout_factory, redis, 2, env=env)
    mid = create_test(a, variants=LABELS3)
    poll(lambda: serves(b, mid), PROPAGATE, "replica B to serve the test")
    send_rewards(a, mid, 30, seed=0)
    wait_updates([b], mid, {label: row["updates"] for label, row in learned(a, mid).items()})
    os.kill(b.proc.pid, signal.SIGSTOP)   # B stops reading; A learns, snapshots and trims meanwhile
    try:
        send_rewards(a, mid, 800, seed=30)
        # B read 30 of the 830 events: fewer than 800 left means some that B has not read are gone
        wait_for(lambda: xlen(redis, mid), lambda n: n < 800, CONVERGE,
                 "replica A to snapshot and trim events that B has not read")
    finally:
        os.kill(b.proc.pid, signal.SIGCONT)
    expected = learned(a, mid)
    wait_updates([b], mid, {label: row["updates"] for label, row in expected.items()})
    assert state_of(b, mid) == state_of(a, mid), "B's state is not the fold of every event"
    assert metric(b, "scout_store_snapshot_restores_total") >= 1
    assert "snapshot_catch_up" in b.log_tail(200)


def test_an_unreadable_snapshot_replays_the_events_or_refuses_to_start_if_they_were_trimmed(
        redis_pool, scout_factory, tmp_path):
    redis = redis_pool.start()
    a = start_replicas(scout_factory, redis, 1, env={**SNAPSHOT_EVERY, "SCOUT_EVENT_RETENTION": "3600"})[0]
    mid = create_test(a, variants=LABELS3)
    send_rewards(a, mid, 200, seed=0)
    wait_for(lambda: metric(a, "scout_store_snapshots_total"), lambda x: x >= 1, CONVERGE, "a snapshot")
    before = state_of(a, mid)
    assert a.stop(signal.SIGTERM) == 0
    snap = f"scout:{{{mid}}}:snap"
    redis.cli("HSET", snap, "state", "not a snapshot of any format")
    # every event is still there: the state is rebuilt from them
    a.start()
    assert state_of(a, mid) == before
    assert "snapshot_unreadable" in a.log_tail(100)
    assert a.stop(signal.SIGTERM) == 0
    # events it covers are gone: starting with part of the learned state is refused
    redis.cli("HSET", snap, "trimmed", redis.cli("HGET", snap, "id"))
    p = run_scoutd(tmp_path, args=["--redis", redis.url])
    assert p.returncode != 0, p.stderr
    assert "refusing to start" in p.stdout + p.stderr, p.stdout + p.stderr
