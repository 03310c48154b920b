"""Logged decisions, taken out and weighed: GET /api/export/{id} and POST /api/evaluate/{id}.

A two-variant test logs decisions with contexts while it draws uniformly (warm-up), and the
application's rewards are deterministic: variant "a" pays 0.8, "b" pays 0.2. What must hold:
  - every rewarded decision exports once, oldest first, as (context, variant, propensity, reward)
    in JSON lines, CSV (RFC 4180, parsed here by the csv module) and Vowpal Wabbit's --cb format;
    decisions still waiting for a reward are left out unless missing_reward says what they earned;
  - evaluating a policy that always shows "a" gives 0.8 within each estimator's interval, "b"
    0.2, the uniform policy the logged mean, and the test's current model what its own
    probabilities imply at the logged contexts;
  - a window without rows answers 200 with null estimates; bad input is a JSON 4xx; with
    protection on both endpoints need an admin token (logs hold contexts).
"""

import csv
import io
import json
import math
import re
import secrets
import time

import pytest

from helpers import assert_error, create_test, fetch, update

PAYS = {"a": 0.8, "b": 0.2}
N = 240          # rewarded decisions
PENDING = 5      # decisions that never get a reward
FIELDS = ["request_id", "created", "context", "variant_id", "variant", "propensity", "reward"]


def context_of(i):
    ctx = {"device": "mobile" if i % 2 else "desktop", "age": 18 + i % 40, "returning": i % 3 == 0}
    if i == 7:   # characters CSV must quote and VW must not see
        ctx["note"] = 'says "hi", then\nleaves | at 10:30'
    return ctx


def min_updates(scout, n):
    r = scout.post("/admin/model_config", {"min_update_requests": n})
    assert r.status_code == 200, r.text


@pytest.fixture
def logged(scout):
    """A test with N rewarded decisions logged uniformly (propensity 0.5) and PENDING without reward."""
    min_updates(scout, 100000)   # the whole log is warm-up: uniform draws
    mid = create_test(scout, variants={"0": "a", "1": "b"})
    decisions, updates = [], []
    for i in range(N):
        d = fetch(scout, mid, context=context_of(i), request_id=f"req-{i}")
        decisions.append(d)
        updates.append({"request_id": f"req-{i}", "reward": PAYS[d["recommended_variant"]]})
    for i in range(PENDING):
        fetch(scout, mid, context={"device": "tv"}, request_id=f"pending-{i}")
    assert update(scout, mid, updates)["processed_updates"] == N
    return mid, decisions


def export(scout, mid, query=""):
    r = scout.get(f"/api/export/{mid}{query}")
    assert r.status_code == 200, r.text
    return r


def evaluate(scout, mid, body):
    r = scout.post(f"/api/evaluate/{mid}", body)
    assert r.status_code == 200, f"{body} -> {r.status_code} {r.text}"
    return r.json()


Z95 = 1.959963984540054


def reference(decisions, target):
    """IPS, SNIPS and DR with their 95% intervals, computed here from the log the test made:
    target(label, context) is the evaluated policy's probability. The log is random (the server
    draws the variants), so whether an interval covers the truth is itself random; what must hold
    exactly is that the server weighs this very log as the formulas say."""
    rows = [(d["recommended_variant"], d["propensity"], PAYS[d["recommended_variant"]], context_of(i))
            for i, d in enumerate(decisions)]
    n = len(rows)
    model = {a: sum(r for l, _, r, _ in rows if l == a) / max(1, sum(1 for l, *_ in rows if l == a)) for a in PAYS}
    w = [target(l, c) / p for l, p, _, c in rows]
    wr = [wi * r for wi, (_, _, r, _) in zip(w, rows)]
    dr = [sum(target(a, c) * model[a] for a in PAYS) + wi * (r - model[l]) for wi, (l, _, r, c) in zip(w, rows)]

    def interval(mean, ss):
        half = Z95 * math.sqrt(ss / (n - 1) / n)
        return {"estimate": mean, "ci_low": mean - half, "ci_high": mean + half}

    ips, snips = sum(wr) / n, sum(wr) / sum(w)
    mean_w = sum(w) / n
    return {
        "ips": interval(ips, sum((t - ips) ** 2 for t in wr)),
        "snips": interval(snips, sum((wi * (r - snips)) ** 2 for wi, (_, _, r, _) in zip(w, rows)) / mean_w ** 2),
        "dr": interval(sum(dr) / n, sum((t - sum(dr) / n) ** 2 for t in dr)),
    }


def agrees(body, want):
    for name in ("ips", "snips", "dr"):
        for field in ("estimate", "ci_low", "ci_high"):
            assert body[name][field] == pytest.approx(want[name][field], rel=1e-9, abs=1e-12), (name, field)


# --------------------------------------------------------------------------- export


def test_export_jsonl_has_each_rewarded_decision_once_oldest_first(scout, logged):
    mid, decisions = logged
    r = export(scout, mid, "?format=jsonl")
    assert r.headers["Content-Type"].split(";")[0] == "application/x-ndjson"
    assert r.headers["Content-Disposition"] == f'attachment; filename="scout-{mid}.jsonl"'
    rows = [json.loads(line) for line in r.text.splitlines()]
    assert r.text.endswith("\n")
    assert len(rows) == N, "decisions without a reward are left out"
    assert [row["request_id"] for row in rows] == [f"req-{i}" for i in range(N)]
    created = [row["created"] for row in rows]
    assert created == sorted(created) and all(isinstance(c, float) for c in created)
    for i, (row, d) in enumerate(zip(rows, decisions)):
        assert list(row) == FIELDS
        assert row["context"] == context_of(i)
        assert (row["variant_id"], row["variant"]) == (d["variant_id"], d["recommended_variant"])
        assert row["propensity"] == pytest.approx(d["propensity"]) == 0.5
        assert row["reward"] == pytest.approx(PAYS[row["variant"]])
    assert export(scout, mid).text == r.text, "jsonl is the default format"


def test_export_limit_since_and_missing_reward(scout, logged):
    mid, _ = logged
    rows = [json.loads(x) for x in export(scout, mid, "?limit=10").text.splitlines()]
    assert [row["request_id"] for row in rows] == [f"req-{i}" for i in range(10)], "the oldest ten"
    later = [json.loads(x) for x in export(scout, mid, f"?since={rows[5]['created']!r}").text.splitlines()]
    assert later[0]["request_id"] == "req-5" and len(later) == N - 5
    everything = [json.loads(x) for x in export(scout, mid, "?missing_reward=-1").text.splitlines()]
    pending = [row for row in everything if row["request_id"].startswith("pending-")]
    assert len(everything) == N + PENDING and len(pending) == PENDING
    assert all(row["reward"] == -1 for row in pending)
    assert export(scout, mid, f"?since={time.time() + 3600}").text == ""


def test_export_csv_parses_with_the_csv_module(scout, logged):
    mid, decisions = logged
    r = export(scout, mid, "?format=csv")
    assert r.headers["Content-Type"].split(";")[0] == "text/csv"
    assert r.headers["Content-Disposition"] == f'attachment; filename="scout-{mid}.csv"'
    table = list(csv.reader(io.StringIO(r.text, newline="")))
    assert table[0] == ["request_id", "created", "variant_id", "variant", "propensity", "reward", "context"]
    body = table[1:]
    assert len(body) == N
    for i, (row, d) in enumerate(zip(body, decisions)):
        rid, created, vid, label, prop, reward, ctx = row
        assert rid == f"req-{i}" and float(created) > 0
        assert (int(vid), label) == (d["variant_id"], d["recommended_variant"])
        assert float(prop) == 0.5 and float(reward) == PAYS[label]
        assert json.loads(ctx) == context_of(i), "the context is a JSON cell, quoted as RFC 4180 says"
    none = list(csv.reader(io.StringIO(export(scout, mid, "?format=csv&since=1e12").text, newline="")))
    assert none == [table[0]], "an empty export still has its header"


VW_LINE = re.compile(r"(\d+):(-?[0-9.e+-]+):([0-9.e+-]+) \|((?: [^ |:]+(?:=[^ |:]*|:-?[0-9.e+-]+))*)")


def test_export_csv_never_hands_a_spreadsheet_a_formula(scout):
    """Request ids and labels are chosen by clients: a cell that starts like a formula is
    written with a leading apostrophe so a spreadsheet shows it as text."""
    mid = create_test(scout, variants={"0": "=HYPERLINK(\"x\")", "1": "plain"})
    for rid in ("=1+1", "+cmd", "-2", "@SUM(A1)", "ok-1"):
        fetch(scout, mid, request_id=rid)
        update(scout, mid, [{"request_id": rid, "reward": 1}])
    rows = list(csv.DictReader(io.StringIO(export(scout, mid, "?format=csv").text, newline="")))
    ids = sorted(r["request_id"] for r in rows)
    assert ids == sorted(["'=1+1", "'+cmd", "'-2", "'@SUM(A1)", "ok-1"]), ids
    for r in rows:
        assert r["variant"] in ("'=HYPERLINK(\"x\")", "plain"), r
        assert float(r["reward"]) == 1.0   # numbers stay numbers


def test_export_vw_lines_are_contextual_bandit_examples(scout, logged):
    mid, decisions = logged
    r = export(scout, mid, "?format=vw")
    assert r.headers["Content-Type"].split(";")[0] == "text/plain"
    assert r.headers["Content-Disposition"] == f'attachment; filename="scout-{mid}.vw"'
    lines = r.text.splitlines()
    assert len(lines) == N
    for i, (line, d) in enumerate(zip(lines, decisions)):
        m = VW_LINE.fullmatch(line)
        assert m, f"not action:cost:probability | features: {line!r}"
        action, cost, prob, feats = int(m[1]), float(m[2]), float(m[3]), m[4].split()
        assert action == {"a": 1, "b": 2}[d["recommended_variant"]], "1-based index of the variant, by id"
        assert cost == pytest.approx(-PAYS[d["recommended_variant"]]) and prob == 0.5
        ctx = context_of(i)
        want = {f"device={ctx['device']}", f"age:{ctx['age']}", f"returning={str(ctx['returning']).lower()}"}
        if "note" in ctx:
            want.add("note=says_\"hi\",_then_leaves___at_10_30")
        assert set(feats) == want, line


# --------------------------------------------------------------------------- evaluate


def test_evaluating_one_variant_recovers_what_it_pays(scout, logged):
    mid, decisions = logged
    for ref, pays in (("a", 0.8), (1, 0.2), ("0", 0.8)):
        label = {"a": "a", 1: "b", "0": "a"}[ref]
        body = evaluate(scout, mid, {"policy": {"variant": ref}})
        assert body["rows"] == N and body["skipped_rows"] == PENDING
        assert body["target"] == {"variant": ref}
        agrees(body, reference(decisions, lambda l, c, label=label: float(l == label)))
        assert body["snips"]["estimate"] == pytest.approx(pays)
        assert body["dr"]["estimate"] == pytest.approx(pays), "a perfect reward model leaves no residual"
        assert 0 < body["effective_sample_size"] < N


def test_evaluating_the_uniform_policy_on_a_uniform_log_gives_the_logged_mean(scout, logged):
    mid, decisions = logged
    body = evaluate(scout, mid, {"policy": "uniform"})
    logged_mean = sum(PAYS[d["recommended_variant"]] for d in decisions) / N
    assert body["logged"]["estimate"] == pytest.approx(logged_mean)
    assert body["ips"] == pytest.approx(body["logged"])
    assert body["effective_sample_size"] == pytest.approx(N)
    assert body["dr"]["estimate"] == pytest.approx(0.5)
    agrees(body, reference(decisions, lambda l, c: 0.5))
    mixed = evaluate(scout, mid, {"policy": {"probabilities": {"a": 0.25, "b": 0.75}}})
    assert mixed["dr"]["estimate"] == pytest.approx(0.25 * 0.8 + 0.75 * 0.2)
    agrees(mixed, reference(decisions, lambda l, c: {"a": 0.25, "b": 0.75}[l]))


def test_evaluating_the_current_model_uses_its_probabilities_at_each_context(scout, logged):
    mid, decisions = logged
    warm = evaluate(scout, mid, {"policy": "current"})
    assert warm["target"] == "current"
    assert warm["dr"]["estimate"] == pytest.approx(0.5), "in warm-up the model draws uniformly"
    min_updates(scout, 10)   # warm-up over: the learned model decides
    learned = evaluate(scout, mid, {"policy": "current"})
    # With deterministic rewards DR is exactly the model's expected pay at the logged contexts:
    # ask the model for its probabilities there (the same state answers the same).
    probs = {}
    for i in range(N):
        key = json.dumps(context_of(i), sort_keys=True)
        if key not in probs:
            probs[key] = fetch(scout, mid, context=context_of(i), return_probabilities=True)["probabilities"]

    def model_prob(label, ctx):
        return probs[json.dumps(ctx, sort_keys=True)][label]

    expected = sum(sum(model_prob(a, context_of(i)) * PAYS[a] for a in PAYS) for i in range(N)) / N
    assert learned["dr"]["estimate"] == pytest.approx(expected, abs=1e-9)
    assert learned["dr"]["estimate"] > 0.7, "the model learned that a pays more"
    agrees(learned, reference(decisions, model_prob))


def test_missing_reward_counts_decisions_still_waiting(scout, logged):
    mid, _ = logged
    body = evaluate(scout, mid, {"policy": {"variant": "a"}, "missing_reward": 0})
    assert body["rows"] == N + PENDING and body["skipped_rows"] == 0
    assert body["logged"]["estimate"] < evaluate(scout, mid, {"policy": {"variant": "a"}})["logged"]["estimate"]


def test_a_window_without_rows_has_null_estimates(scout, logged):
    mid, _ = logged
    empty = {"estimate": None, "ci_low": None, "ci_high": None}
    for body in (evaluate(scout, mid, {"policy": "uniform", "since": time.time() + 3600}),
                 evaluate(scout, create_test(scout), {"policy": "current", "limit": 5})):
        assert body["rows"] == 0
        assert all(body[k] == empty for k in ("logged", "ips", "snips", "dr")), body
        assert body["effective_sample_size"] == 0
    few = evaluate(scout, mid, {"policy": "uniform", "limit": 7})
    assert few["rows"] == 7


# --------------------------------------------------------------------------- refusals


def test_unknown_test_is_404(scout):
    assert_error(scout.get("/api/export/no-such-test"), 404)
    assert_error(scout.post("/api/evaluate/no-such-test", {"policy": "uniform"}), 404)


@pytest.mark.parametrize("query", ["?format=parquet", "?format=", "?limit=0", "?limit=100001", "?limit=ten",
                                   "?limit=-1", "?since=yesterday", "?since=nan", "?missing_reward=inf"])
def test_export_refuses_bad_arguments(scout, query):
    assert_error(scout.get(f"/api/export/{create_test(scout)}{query}"), 400)


@pytest.mark.parametrize("body, status", [
    (b"{", 400),
    (b"", 400),
    ([], 422),
    ({}, 422),
    ({"policy": None}, 422),
    ({"policy": 3}, 422),
    ({"policy": "greedy"}, 400),
    ({"policy": {"variant": "zzz"}}, 400),
    ({"policy": {"variant": [0]}}, 422),
    ({"policy": {"variant": "a", "probabilities": {"a": 1}}}, 422),
    ({"policy": {"colour": "red"}}, 422),
    ({"policy": {"probabilities": {"a": 0.5}}}, 400),
    ({"policy": {"probabilities": {"a": 0.5, "0": 0.5}}}, 400),
    ({"policy": {"probabilities": {"a": 1.5, "b": -0.5}}}, 400),
    ({"policy": {"probabilities": {"zzz": 1}}}, 400),
    ({"policy": {"probabilities": {"a": "1"}}}, 422),
    ({"policy": {"probabilities": {}}}, 422),
    ({"policy": "uniform", "limit": 0}, 400),
    ({"policy": "uniform", "limit": 100001}, 400),
    ({"policy": "uniform", "limit": "5"}, 422),
    ({"policy": "uniform", "limit": 2.5}, 422),
    ({"policy": "uniform", "since": "today"}, 422),
    ({"policy": "uniform", "missing_reward": "none"}, 422),
])
def test_evaluate_refuses_bad_bodies(scout, body, status):
    mid = create_test(scout, variants={"0": "a", "1": "b"})
    kw = {"data": body, "headers": {"Content-Type": "application/json"}} if isinstance(body, bytes) else {}
    r = scout.post(f"/api/evaluate/{mid}", None if kw else body, **kw)
    assert_error(r, status)


def test_wrong_methods_are_405(scout):
    mid = create_test(scout)
    assert_error(scout.post(f"/api/export/{mid}", {}), 405)
    assert_error(scout.get(f"/api/evaluate/{mid}"), 405)


def test_with_protection_on_both_need_an_admin_token(scout_factory):
    boot = secrets.token_urlsafe(33)
    scout = scout_factory(env={"SCOUT_PROTECTED_API": "true", "SCOUT_AUTH_TOKEN": boot})
    admin = {"Authorization": f"Bearer {boot}"}
    r = scout.post("/api/create_model", {"name": "p", "variants": {"0": "a", "1": "b"}}, headers=admin)
    assert r.status_code == 200, r.text
    mid = r.json()["model_id"]
    r = scout.post("/admin/generate_token", {"scope": "client"}, headers=admin)
    client = {"Authorization": f"Bearer {r.json()['token']}"}
    r = scout.post("/api/fetch_recommended_variant", {"cb_model_id": mid, "request_id": "x"}, headers=client)
    assert r.status_code == 200, r.text
    for method, path, body in (("GET", f"/api/export/{mid}", None), ("POST", f"/api/evaluate/{mid}", {"policy": "uniform"})):
        r = scout.request(method, path, json=body)
        assert_error(r, 401)
        assert r.headers.get("WWW-Authenticate", "").startswith("Bearer")
        assert_error(scout.request(method, path, json=body, headers=client), 403)
        assert scout.request(method, path, json=body, headers=admin).status_code == 200
