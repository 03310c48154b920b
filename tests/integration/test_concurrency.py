"""Concurrent clients: every request succeeds and the counters add up exactly."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from helpers import create_test, performance, summary

THREADS = 8
PER_THREAD = 200


def client(base, mid, seed):
    """Alternate fetch and update (one reward for the variant just fetched); return tallies."""
    fetched = {"A": 0, "B": 0}
    updated = {"A": 0, "B": 0}
    rewards = {"A": 0.0, "B": 0.0}
    failures = []
    with requests.Session() as sess:
        last = "A"
        for i in range(PER_THREAD):
            if i % 2 == 0:
                r = sess.post(f"{base}/api/fetch_recommended_variant",
                              json={"cb_model_id": mid, "context": {"thread": seed, "i": i}},
                              timeout=15)
                if r.status_code != 200:
                    failures.append(("fetch", r.status_code, r.text[:200]))
                    continue
                last = r.json()["recommended_variant"]
                fetched[last] += 1
            else:
                value = float((seed + i) % 3)  # 0, 1 or 2: sums stay exact
                r = sess.post(f"{base}/api/update_model/{mid}",
                              json={"updates": [{"decision": last, "reward": value}]}, timeout=15)
                if r.status_code != 200 or r.json().get("processed_updates") != 1:
                    failures.append(("update", r.status_code, r.text[:200]))
                    continue
                updated[last] += 1
                rewards[last] += value
    return fetched, updated, rewards, failures


def test_concurrent_fetches_and_updates_all_succeed_and_add_up(scout):
    mid = create_test(scout)
    base = scout.url("")
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda s: client(base, mid, s), range(THREADS)))
    failures = [f for r in results for f in r[3]]
    assert not failures, failures[:5]
    fetched = {k: sum(r[0][k] for r in results) for k in ("A", "B")}
    updated = {k: sum(r[1][k] for r in results) for k in ("A", "B")}
    rewards = {k: sum(r[2][k] for r in results) for k in ("A", "B")}
    n = THREADS * PER_THREAD // 2

    s = summary(scout, mid)
    assert s["prediction_requests"] == n
    assert s["update_requests"] == n
    ps = performance(scout, mid)
    for label in ("A", "B"):
        assert ps[label]["predictions"] == fetched[label]
        assert ps[label]["updates"] == updated[label]
        assert ps[label]["reward_sum"] == pytest.approx(rewards[label])


def test_concurrent_clients_on_separate_tests_do_not_interfere(scout):
    base = scout.url("")
    mids = [create_test(scout) for _ in range(4)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda k: client(base, mids[k % 4], k), range(8)))
    assert not [f for r in results for f in r[3]]
    for k, mid in enumerate(mids):
        mine = [results[k], results[k + 4]]
        s = summary(scout, mid)
        assert s["prediction_requests"] == sum(sum(r[0].values()) for r in mine)
        assert s["update_requests"] == sum(sum(r[1].values()) for r in mine)


def test_concurrent_creates_yield_distinct_tests(scout):
    base = scout.url("")

    def create(i):
        r = requests.post(f"{base}/api/create_model",
                          json={"name": f"t{i}", "variants": {"0": "A", "1": "B"}}, timeout=15)
        assert r.status_code == 200, r.text
        return r.json()["model_id"]

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(create, range(40)))
    assert len(set(ids)) == 40
    listed = {m["model_id"]: m["name"] for m in scout.get("/api/models").json()}
    assert listed == {mid: f"t{i}" for i, mid in enumerate(ids)}
