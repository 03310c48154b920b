"""End-to-end flows exactly as existing clients drive them.

The "original client" flows reproduce the request shapes of the Python project's simulate_*.py
scripts (fetch with `feature_*` context keys, update with `decision` = the label and the context
keys inline on the update, raise_for_status on every call); the "documented" flow follows the
published API reference (update by `variant_id` + `request_id`, no context, joined server-side).
"""

import random

import pytest
import requests

from helpers import create_test, details, fetch, is_uuid4, models, performance, summary


def original_fetch(base, model_id, context=None):
    """POST fetch as the original scripts do; returns the whole JSON answer."""
    payload = {"cb_model_id": model_id}
    if context is not None:
        payload["context"] = context
    resp = requests.post(f"{base}/api/fetch_recommended_variant", json=payload, timeout=10)
    resp.raise_for_status()
    return resp.json()


def original_update(base, model_id, update):
    resp = requests.post(f"{base}/api/update_model/{model_id}", json={"updates": [update]},
                         timeout=10)
    resp.raise_for_status()
    return resp.json()


def original_reward(feature_val, variant):
    if (feature_val, variant) in (("red", "a"), ("blue", "b")):
        return 1.5
    return 1.00


def feature_data(det, name):
    """feature_prediction_data for a `feature_*` context key, under its full or bare name."""
    fpd = det["feature_prediction_data"]
    bare = name[len("feature_"):]
    assert name in fpd or bare in fpd, f"no {name!r} in feature_prediction_data: {list(fpd)}"
    return fpd[name] if name in fpd else fpd[bare]


def test_original_contextual_client_flow(scout):
    base = scout.url("")
    rng = random.Random(7)
    # create, reading the id from the original's field name
    r = requests.post(f"{base}/api/create_model",
                      json={"name": "Colour test", "variants": {"0": "a", "1": "b"}}, timeout=10)
    r.raise_for_status()
    mid = r.json()["model_id"]

    seen = {"red": {"a": 0, "b": 0}, "blue": {"a": 0, "b": 0}}
    total_reward = 0.0
    for _ in range(60):
        feature_val = rng.choice(["red", "blue"])
        context = {"feature_example": feature_val}
        variant = original_fetch(base, mid, context)["recommended_variant"]
        assert variant in ("a", "b")
        seen[feature_val][variant] += 1
        rew = original_reward(feature_val, variant)
        out = original_update(base, mid, {"decision": variant, "reward": rew, **context})
        assert out["processed_updates"] == 1
        assert out["failed_updates"] == 0
        assert out["missing_context"] == 0
        assert out["total_reward"] == pytest.approx(rew)
        total_reward += rew

    s = summary(scout, mid)
    assert s["name"] == "Colour test"
    assert s["variants"] == ["a", "b"]
    assert s["prediction_requests"] == 60
    assert s["update_requests"] == 60

    det = details(scout, mid)
    ps = performance(scout, mid)
    assert ps["a"]["predictions"] + ps["b"]["predictions"] == 60
    assert ps["a"]["updates"] + ps["b"]["updates"] == 60
    assert ps["a"]["reward_sum"] + ps["b"]["reward_sum"] == pytest.approx(total_reward)
    feat = feature_data(det, "feature_example")
    assert feat["type"] == "categorical"
    buckets = {b["bucket"]: b for b in feat["buckets"]}
    assert set(buckets) == {"red", "blue"}
    for colour in ("red", "blue"):
        b = buckets[colour]
        assert b["total"] == sum(seen[colour].values())
        assert {k: v for k, v in b["predictions"].items() if v} == \
            {k: v for k, v in seen[colour].items() if v}
        assert sum(b["ratios"].values()) == pytest.approx(100.0)

    r = requests.post(f"{base}/api/rollout_global_variant/{mid}", json={"variant": "b"},
                      timeout=10)
    r.raise_for_status()
    for colour in ("red", "blue"):
        assert original_fetch(base, mid, {"feature_example": colour})["recommended_variant"] == "b"
    s = summary(scout, mid)
    assert s["global_rolled_out"] is True and s["global_variant"] == "b"

    requests.post(f"{base}/api/clear_global_variant/{mid}", timeout=10).raise_for_status()
    assert original_fetch(base, mid, {"feature_example": "red"})["is_global_rollout"] is False
    s = summary(scout, mid)
    assert s["global_rolled_out"] is False and s["global_variant"] is None

    requests.post(f"{base}/api/delete_model/{mid}", timeout=10).raise_for_status()
    assert mid not in {m["model_id"] for m in models(scout)}
    r = requests.post(f"{base}/api/fetch_recommended_variant",
                      json={"cb_model_id": mid, "context": {"feature_example": "red"}}, timeout=10)
    assert r.status_code == 404


def test_original_non_contextual_client_flow(scout):
    base = scout.url("")
    mid = create_test(scout, variants={"0": "a", "1": "b"})
    for _ in range(40):
        variant = original_fetch(base, mid)["recommended_variant"]  # no 'context' key at all
        out = original_update(base, mid, {"decision": variant,
                                          "reward": 1.005 if variant == "a" else 1.0})
        assert out["processed_updates"] == 1
        assert out["missing_context"] == 0
    s = summary(scout, mid)
    assert s["prediction_requests"] == 40 and s["update_requests"] == 40
    assert details(scout, mid)["feature_prediction_data"] == {}


def test_original_request_id_only_client_flow(scout):
    base = scout.url("")
    mid = create_test(scout, variants={"0": "a", "1": "b"})
    rng = random.Random(11)
    for _ in range(40):
        feature_val = rng.choice(["red", "blue"])
        answer = original_fetch(base, mid, {"feature_example": feature_val})
        variant, request_id = answer["recommended_variant"], answer["request_id"]
        assert is_uuid4(request_id)
        out = original_update(base, mid, {"decision": variant,
                                          "reward": original_reward(feature_val, variant),
                                          "request_id": request_id})
        assert out["processed_updates"] == 1
        assert out["redis_hits"] == 1
        assert out["missing_context"] == 0
    assert summary(scout, mid)["update_requests"] == 40


def test_documented_flow_joins_the_stored_context_by_request_id(scout):
    base = scout.url("")
    r = requests.post(f"{base}/api/create_model",
                      json={"name": "Checkout", "variants": {"0": "Blue button", "1": "Green button"}},
                      timeout=10)
    r.raise_for_status()
    created = r.json()
    mid = created["cb_model_id"]
    assert created["variants"] == {"0": "Blue button", "1": "Green button"}

    contexts = [{"country": c, "age": a, "returning": ret}
                for c, a, ret in [("DE", 31, True), ("US", 45, False), ("DE", 22, False),
                                  ("FR", 38, True), ("US", 61, True), ("DE", 27, True),
                                  ("US", 19, False), ("FR", 52, False)]]
    labels = {0: "Blue button", 1: "Green button"}
    per_country = {}
    for i, ctx in enumerate(contexts):
        rid = f"checkout-{i}"
        d = fetch(scout, mid, context=ctx, request_id=rid)
        assert d["request_id"] == rid
        assert d["cb_model_id"] == mid
        assert d["variant_label"] == labels[d["variant_id"]] == d["recommended_variant"]
        per_country.setdefault(ctx["country"], []).append(d["variant_label"])
        r = requests.post(f"{base}/api/update_model/{mid}",
                          json={"updates": [{"request_id": rid, "variant_id": d["variant_id"],
                                             "reward": 1.0}]}, timeout=10)
        r.raise_for_status()
        out = r.json()
        assert out["cb_model_id"] == mid
        assert out["processed_updates"] == 1
        assert out["failed_updates"] == 0
        assert out["redis_hits"] == 1
        assert out["missing_context"] == 0
        assert out["total_reward"] == pytest.approx(1.0)

    s = summary(scout, mid)
    assert s["total_predictions"] == len(contexts)
    assert s["total_updates"] == len(contexts)

    fpd = details(scout, mid)["feature_prediction_data"]
    assert fpd["country"]["type"] == "categorical"
    assert fpd["age"]["type"] == "numeric"
    assert fpd["returning"]["type"] == "bool"
    countries = {b["bucket"]: b for b in fpd["country"]["buckets"]}
    assert set(countries) == {"DE", "US", "FR"}
    for country, chosen in per_country.items():
        b = countries[country]
        assert b["total"] == len(chosen)
        for label in set(chosen):
            assert b["predictions"][label] == chosen.count(label)
            assert b["ratios"][label] == pytest.approx(100.0 * chosen.count(label) / len(chosen))
    # eight distinct ages: more than 5 distinct values fall into 5 equal-width bins
    age_buckets = fpd["age"]["buckets"]
    assert 1 <= len(age_buckets) <= 5
    assert sum(b["total"] for b in age_buckets) == len(contexts)
    flags = fpd["returning"]["buckets"]
    assert len(flags) == 2
    assert sorted(b["total"] for b in flags) == [4, 4]


def test_numeric_feature_with_few_values_is_bucketed_by_value(scout):
    mid = create_test(scout)
    for v in [1, 2, 3, 1, 2, 1]:
        fetch(scout, mid, context={"plan": v})
    feat = details(scout, mid)["feature_prediction_data"]["plan"]
    assert feat["type"] == "numeric"
    totals = sorted(b["total"] for b in feat["buckets"])
    assert totals == [1, 2, 3]
