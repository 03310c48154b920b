"""Tests as resources: create, list (/api/models), details, rollout, clear and delete."""

import datetime
import time

import pytest

from helpers import (
    assert_error,
    create_test,
    details,
    performance,
    fetch,
    is_uuid4,
    models,
    parse_iso_utc,
    reward,
    summary,
    update,
)

SUMMARY_FIELDS = {
    "model_id", "name", "variants", "global_rolled_out", "global_variant", "created_at",
    "update_requests", "prediction_requests", "latest_update_request",
    "latest_prediction_request", "prediction_ratio", "URL", "features", "active",
    # documented aliases
    "cb_model_id", "num_variants", "total_predictions", "total_updates", "last_prediction_at",
    "last_update_at", "is_active", "global_variant_rollout",
}


# --------------------------------------------------------------------------- create


def test_create_returns_uuid4_id_under_both_names_and_echoes_variants(scout):
    body = {"name": "Headline test", "variants": {"0": "Headline A", "1": "Headline B"}}
    r = scout.post("/api/create_model", body)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].split(";")[0] == "application/json"
    out = r.json()
    assert isinstance(out["message"], str) and out["message"]
    assert is_uuid4(out["model_id"]), out
    assert out["cb_model_id"] == out["model_id"]
    assert out["name"] == "Headline test"
    assert out["variants"] == {"0": "Headline A", "1": "Headline B"}


def test_every_created_test_gets_a_distinct_id(scout):
    ids = {create_test(scout) for _ in range(10)}
    assert len(ids) == 10
    assert {m["model_id"] for m in models(scout)} == ids


def test_integer_labels_are_returned_as_integers(scout):
    r = scout.post("/api/create_model", {"name": "ints", "variants": {"0": 10, "1": 20}})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["variants"] == {"0": 10, "1": 20}
    mid = out["model_id"]
    assert summary(scout, mid)["variants"] == [10, 20]
    assert summary(scout, mid)["num_variants"] == 2
    for _ in range(10):
        d = fetch(scout, mid)
        assert d["recommended_variant"] in (10, 20)
        assert type(d["recommended_variant"]) is int
        assert d["variant_label"] == d["recommended_variant"]
        assert d["variant_id"] == {10: 0, 20: 1}[d["recommended_variant"]]
    ratio = summary(scout, mid)["prediction_ratio"]
    assert set(ratio) <= {"10", "20"} and sum(ratio.values()) == pytest.approx(1.0)


def test_variant_ids_need_not_be_contiguous_and_are_listed_in_id_order(scout):
    mid = create_test(scout, variants={"7": "X", "2": "Y", "40": "Z"})
    s = summary(scout, mid)
    assert s["variants"] == ["Y", "X", "Z"]
    assert s["num_variants"] == 3
    label_of = {2: "Y", 7: "X", 40: "Z"}
    for _ in range(15):
        d = fetch(scout, mid)
        assert d["variant_id"] in label_of
        assert d["recommended_variant"] == label_of[d["variant_id"]]


@pytest.mark.parametrize("policy", ["auto", "thompson", "egreedy", "ucb1"])
def test_known_policies_are_accepted(scout, policy):
    extras = {"policy": policy}
    if policy == "egreedy":
        extras["epsilon"] = 0.2
    mid = create_test(scout, **extras)
    assert fetch(scout, mid)["recommended_variant"] in ("A", "B")


def test_optional_create_fields_are_accepted(scout):
    mid = create_test(scout, policy="egreedy", epsilon=0.0, min_updates=0,
                      features=["country", "age"])
    s = summary(scout, mid)
    assert s["features"] == ["country", "age"]
    assert fetch(scout, mid, context={"country": "US", "age": 3})["recommended_variant"] in ("A", "B")


def test_limits_at_their_maximum_are_accepted(scout):
    variants = {str(i): f"v{i}" for i in range(256)}
    variants["0"] = "L" * 256
    r = scout.post("/api/create_model", {"name": "N" * 256, "variants": variants})
    assert r.status_code == 200, r.text[:300]
    mid = r.json()["model_id"]
    s = summary(scout, mid)
    assert s["name"] == "N" * 256
    assert s["num_variants"] == 256
    assert s["variants"][0] == "L" * 256


# --------------------------------------------------------------------------- list


def test_new_test_summary_has_every_field_with_initial_values(scout):
    before = datetime.datetime.now(datetime.timezone.utc)
    mid = create_test(scout, name="Fresh")
    s = summary(scout, mid)
    missing = SUMMARY_FIELDS - s.keys()
    assert not missing, f"summary lacks {sorted(missing)}"
    assert s["model_id"] == mid and s["cb_model_id"] == mid
    assert s["name"] == "Fresh"
    assert s["variants"] == ["A", "B"]
    assert s["num_variants"] == 2
    assert s["global_rolled_out"] is False
    assert s["global_variant"] is None
    assert s["global_variant_rollout"] in (None, False)
    created = parse_iso_utc(s["created_at"])
    assert abs((created - before).total_seconds()) < 60
    assert s["update_requests"] == 0 and s["total_updates"] == 0
    assert s["prediction_requests"] == 0 and s["total_predictions"] == 0
    assert s["latest_update_request"] is None and s["last_update_at"] is None
    assert s["latest_prediction_request"] is None and s["last_prediction_at"] is None
    assert isinstance(s["prediction_ratio"], dict)
    assert isinstance(s["URL"], str) and mid in s["URL"]
    assert s["features"] == []
    assert s["active"] is True and s["is_active"] is True


def test_summary_counts_decisions_and_individual_reward_updates(scout):
    mid = create_test(scout)
    labels = [fetch(scout, mid)["recommended_variant"] for _ in range(7)]
    # one HTTP request carrying three updates counts three
    update(scout, mid, [{"decision": "A", "reward": 1}, {"decision": "B", "reward": 0},
                        {"decision": "A", "reward": 0.5}])
    update(scout, mid, [{"variant_id": 1, "reward": 1}])
    s = summary(scout, mid)
    assert s["prediction_requests"] == 7 and s["total_predictions"] == 7
    assert s["update_requests"] == 4 and s["total_updates"] == 4
    last_pred = parse_iso_utc(s["latest_prediction_request"])
    last_upd = parse_iso_utc(s["latest_update_request"])
    assert s["last_prediction_at"] == s["latest_prediction_request"]
    assert s["last_update_at"] == s["latest_update_request"]
    created = parse_iso_utc(s["created_at"])
    assert created <= last_pred + datetime.timedelta(seconds=1)
    assert last_pred <= last_upd + datetime.timedelta(seconds=1)
    ratio = s["prediction_ratio"]
    for label in ("A", "B"):
        assert ratio.get(label, 0) == pytest.approx(labels.count(label) / 7, abs=1e-6)
    assert set(ratio) <= {"A", "B"}


def test_models_lists_every_live_test(scout):
    a = create_test(scout, name="one")
    b = create_test(scout, name="two", variants={"0": "x", "1": "y", "2": "z"})
    listed = {m["model_id"]: m for m in models(scout)}
    assert set(listed) == {a, b}
    assert listed[a]["name"] == "one" and listed[a]["variants"] == ["A", "B"]
    assert listed[b]["name"] == "two" and listed[b]["variants"] == ["x", "y", "z"]


def test_models_is_an_empty_array_on_a_fresh_server(scout):
    assert models(scout) == []


# --------------------------------------------------------------------------- details


def test_model_details_has_the_analytics_sections(scout):
    mid = create_test(scout)
    for _ in range(5):
        fetch(scout, mid)
    d = details(scout, mid)
    for key in ("request_trail", "exploit_explore_ratio", "exploitation_status",
                "feature_prediction_data", "performance_summary"):
        assert key in d, f"model_details lacks {key}"
    assert isinstance(d["request_trail"], list)
    for bucket in d["request_trail"]:
        parse_iso_utc(bucket["time_bucket"])
        assert isinstance(bucket["frequency"], dict)
    assert isinstance(d["exploit_explore_ratio"], dict)
    exploitation = d["exploit_explore_ratio"]["exploitation"]
    assert isinstance(exploitation, (int, float)) and 0 <= exploitation <= 100
    assert isinstance(d["exploitation_status"], list)
    for point in d["exploitation_status"]:
        assert {"n", "exploitation"} <= point.keys()
    assert d["feature_prediction_data"] == {}  # no context was ever sent
    assert isinstance(d["performance_summary"], dict)


def test_performance_summary_is_keyed_by_variant_id_as_documented(scout):
    mid = create_test(scout, variants={"0": "A", "1": "B", "5": 7})
    ps = details(scout, mid)["performance_summary"]
    assert set(ps) == {"0", "1", "5"}
    assert {key: (row["variant_id"], row["label"]) for key, row in ps.items()} == {
        "0": (0, "A"), "1": (1, "B"), "5": (5, 7)}


def test_request_trail_adds_up_to_the_decisions_made(scout):
    mid = create_test(scout)
    counts = {"A": 0, "B": 0}
    for _ in range(30):
        counts[fetch(scout, mid)["recommended_variant"]] += 1
    trail = details(scout, mid)["request_trail"]
    total = {"A": 0, "B": 0}
    for bucket in trail:
        for label, n in bucket["frequency"].items():
            total[label] += n
    assert total == counts


def trail_totals(trail, labels):
    """Per label: reward events and their sum over every bucket of a reward_trail."""
    counts = {label: 0 for label in labels}
    sums = {label: 0.0 for label in labels}
    for bucket in trail:
        parse_iso_utc(bucket["time_bucket"])
        assert set(bucket["rewards"]) == set(labels) == set(bucket["reward_sum"]), bucket
        assert bucket["total"] == sum(bucket["rewards"].values()), bucket
        assert bucket["total_sum"] == pytest.approx(sum(bucket["reward_sum"].values())), bucket
        for label in labels:
            counts[label] += bucket["rewards"][label]
            sums[label] += bucket["reward_sum"][label]
    return counts, sums


def test_reward_trail_adds_up_to_the_rewards_sent_and_survives_a_restart(scout):
    mid = create_test(scout, variants={"0": "A", "1": "B", "2": "C"})
    other = create_test(scout, variants={"0": "A", "1": "B"})
    update(scout, mid, [{"decision": "A", "reward": 1}, {"decision": "A", "reward": 0.25},
                        {"variant_id": 1, "reward": -2}, {"variant_id": "B", "reward": 4.5}])
    update(scout, mid, [{"variant_id": 0, "reward": 3}])
    update(scout, other, [{"variant_id": 1, "reward": 100}])   # another test's rewards stay out
    d = details(scout, mid)
    trail = d["reward_trail"]
    # the same window and buckets as request_trail
    assert [b["time_bucket"] for b in trail] == [b["time_bucket"] for b in d["request_trail"]]
    expected = ({"A": 3, "B": 2, "C": 0}, {"A": 4.25, "B": 2.5, "C": 0.0})
    counts, sums = trail_totals(trail, ["A", "B", "C"])
    assert counts == expected[0]
    assert sums == pytest.approx(expected[1])
    # they were sent just now: the newest bucket holds them (or the one before, across a boundary)
    assert trail[-1]["total"] + trail[-2]["total"] == 5
    scout.restart()
    counts, sums = trail_totals(details(scout, mid)["reward_trail"], ["A", "B", "C"])
    assert counts == expected[0]
    assert sums == pytest.approx(expected[1])


def test_reward_trail_puts_rewards_in_the_bucket_of_when_they_came(scout):
    r = scout.post("/admin/model_config", {"time_window_minutes": 1, "bucket_granularity_seconds": 1})
    assert r.status_code == 200, r.text
    mid = create_test(scout, variants={"0": "A", "1": "B"})
    update(scout, mid, [{"variant_id": 0, "reward": 1}, {"variant_id": 0, "reward": 1}])
    time.sleep(2.2)
    update(scout, mid, [{"variant_id": 1, "reward": 7}])
    trail = details(scout, mid)["reward_trail"]
    assert len(trail) == 60
    filled = [b for b in trail if b["total"]]
    assert [(b["rewards"], b["reward_sum"]) for b in filled] == [
        ({"A": 2, "B": 0}, {"A": 2.0, "B": 0.0}), ({"A": 0, "B": 1}, {"A": 0.0, "B": 7.0})]
    first, second = (parse_iso_utc(b["time_bucket"]) for b in filled)
    assert (second - first).total_seconds() >= 2


def test_reward_trail_counts_rewards_a_reward_window_settled(scout):
    mid = create_test(scout, variants={"0": "A", "1": "B"}, min_updates=0, reward_wait_seconds=1,
                      default_reward=0.5)
    labels = [fetch(scout, mid, request_id=f"r{i}")["recommended_variant"] for i in range(4)]
    update(scout, mid, [{"request_id": "r0", "reward": 2}])
    deadline = time.monotonic() + 10
    while summary(scout, mid)["update_requests"] < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    counts, sums = trail_totals(details(scout, mid)["reward_trail"], ["A", "B"])
    expected_sums = {"A": 0.0, "B": 0.0}
    for i, label in enumerate(labels):
        expected_sums[label] += 2 if i == 0 else 0.5
    assert counts == {label: labels.count(label) for label in ("A", "B")}
    assert sums == pytest.approx(expected_sums)


def test_performance_summary_tracks_predictions_and_rewards_exactly(scout):
    mid = create_test(scout, variants={"0": "A", "1": "B", "2": "C"})
    predicted = {"A": 0, "B": 0, "C": 0}
    for _ in range(12):
        predicted[fetch(scout, mid)["recommended_variant"]] += 1
    update(scout, mid, [{"decision": "A", "reward": 1}, {"decision": "A", "reward": 0},
                        {"decision": "A", "reward": 0.5}, {"variant_id": 1, "reward": 2},
                        {"variant_id": "B", "reward": 4}])
    ps = performance(scout, mid)
    assert set(ps) == {"A", "B", "C"}
    expected = {"A": (0, 3, 1.5), "B": (1, 2, 6.0), "C": (2, 0, 0.0)}
    for label, (vid, n_upd, rsum) in expected.items():
        row = ps[label]
        assert row["variant_id"] == vid
        assert row["predictions"] == predicted[label]
        assert row["updates"] == n_upd
        assert row["reward_sum"] == pytest.approx(rsum)
        if n_upd:
            assert row["average_reward"] == pytest.approx(rsum / n_upd)
        assert row["current_prediction_ratio"] == pytest.approx(predicted[label] / 12, abs=1e-6)
        for key in ("probability_best", "ci_low", "ci_high"):
            assert key in row, f"performance_summary[{label}] lacks {key}"


def test_performance_statistics_favour_the_clearly_better_variant(scout):
    mid = create_test(scout)
    # A: 10 of 50 converted; B: 40 of 50 converted.
    update(scout, mid, [{"decision": "A", "reward": 1 if i < 10 else 0} for i in range(50)]
           + [{"decision": "B", "reward": 1 if i < 40 else 0} for i in range(50)])
    ps = performance(scout, mid)
    a, b = ps["A"], ps["B"]
    assert a["average_reward"] == pytest.approx(0.2)
    assert b["average_reward"] == pytest.approx(0.8)
    assert 0 <= a["probability_best"] <= 1 and 0 <= b["probability_best"] <= 1
    assert a["probability_best"] + b["probability_best"] == pytest.approx(1.0, abs=0.05)
    assert b["probability_best"] > 0.95
    for row in (a, b):
        assert row["ci_low"] <= row["average_reward"] <= row["ci_high"]
        assert row["ci_high"] - row["ci_low"] < 0.5
    assert a["ci_high"] < b["ci_low"]


def test_unknown_test_has_no_details(scout):
    assert_error(scout.get("/api/model_details/00000000-0000-4000-8000-000000000000"), 404)


# --------------------------------------------------------------------------- rollout / clear


def test_rollout_by_label_forces_every_decision(scout):
    mid = create_test(scout, variants={"0": "A", "1": "B", "2": "C"})
    r = scout.post(f"/api/rollout_global_variant/{mid}", {"variant": "C"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["cb_model_id"] == mid
    assert out["global_variant_id"] == 2
    assert out["global_variant_label"] == "C"
    assert isinstance(out["message"], str)
    for _ in range(20):
        d = fetch(scout, mid)
        assert d["recommended_variant"] == "C" and d["variant_label"] == "C"
        assert d["variant_id"] == 2
        assert d["is_global_rollout"] is True
        assert d["propensity"] == pytest.approx(1.0)
    s = summary(scout, mid)
    assert s["global_rolled_out"] is True
    assert s["global_variant"] == "C"
    assert s["global_variant_rollout"] not in (None, False)


def test_rollout_by_integer_id(scout):
    mid = create_test(scout)
    r = scout.post(f"/api/rollout_global_variant/{mid}", {"variant": 1})
    assert r.status_code == 200, r.text
    assert r.json()["global_variant_id"] == 1
    assert r.json()["global_variant_label"] == "B"
    assert fetch(scout, mid)["recommended_variant"] == "B"


def test_rollout_of_an_integer_label_that_is_not_an_id(scout):
    mid = create_test(scout, variants={"0": 10, "1": 20})
    r = scout.post(f"/api/rollout_global_variant/{mid}", {"variant": 20})
    assert r.status_code == 200, r.text
    assert r.json()["global_variant_id"] == 1
    assert r.json()["global_variant_label"] == 20
    assert fetch(scout, mid)["recommended_variant"] == 20
    assert summary(scout, mid)["global_variant"] == 20


def test_rollout_with_integer_prefers_the_variant_id_over_an_equal_label(scout):
    mid = create_test(scout, variants={"0": 1, "1": 0})
    r = scout.post(f"/api/rollout_global_variant/{mid}", {"variant": 1})
    assert r.status_code == 200, r.text
    assert r.json()["global_variant_id"] == 1
    assert r.json()["global_variant_label"] == 0


def test_rollout_with_string_prefers_the_label_over_an_equal_id(scout):
    mid = create_test(scout, variants={"0": "1", "1": "0"})
    r = scout.post(f"/api/rollout_global_variant/{mid}", {"variant": "1"})
    assert r.status_code == 200, r.text
    assert r.json()["global_variant_id"] == 0
    assert r.json()["global_variant_label"] == "1"


def test_rollout_with_a_decimal_string_falls_back_to_the_variant_id(scout):
    mid = create_test(scout, variants={"0": "A", "1": "B"})
    r = scout.post(f"/api/rollout_global_variant/{mid}", {"variant": "1"})
    assert r.status_code == 200, r.text
    assert r.json()["global_variant_id"] == 1
    assert r.json()["global_variant_label"] == "B"


def test_clear_returns_the_test_to_its_policy(scout):
    mid = create_test(scout)
    assert scout.post(f"/api/rollout_global_variant/{mid}", {"variant": "A"}).status_code == 200
    r = scout.post(f"/api/clear_global_variant/{mid}")
    assert r.status_code == 200, r.text
    assert r.json()["cb_model_id"] == mid
    assert isinstance(r.json()["message"], str)
    seen = set()
    for _ in range(40):
        d = fetch(scout, mid)
        assert d["is_global_rollout"] is False
        seen.add(d["recommended_variant"])
    assert seen == {"A", "B"}  # uniform warm-up again: P(one label only) = 2 * 2**-40
    s = summary(scout, mid)
    assert s["global_rolled_out"] is False
    assert s["global_variant"] is None


def test_a_new_rollout_replaces_the_previous_one(scout):
    mid = create_test(scout)
    assert scout.post(f"/api/rollout_global_variant/{mid}", {"variant": "A"}).status_code == 200
    assert scout.post(f"/api/rollout_global_variant/{mid}", {"variant": "B"}).status_code == 200
    assert {fetch(scout, mid)["recommended_variant"] for _ in range(10)} == {"B"}
    assert summary(scout, mid)["global_variant"] == "B"


# --------------------------------------------------------------------------- delete


def test_deleted_test_is_gone_everywhere(scout):
    keep = create_test(scout)
    mid = create_test(scout)
    fetch(scout, mid)
    reward(scout, mid, "A", 1, n=3)
    r = scout.post(f"/api/delete_model/{mid}")
    assert r.status_code == 200, r.text
    assert r.json()["cb_model_id"] == mid
    assert isinstance(r.json()["message"], str)
    assert [m["model_id"] for m in models(scout)] == [keep]
    assert_error(scout.post("/api/fetch_recommended_variant", {"cb_model_id": mid}), 404)
    assert_error(scout.post(f"/api/update_model/{mid}",
                            {"updates": [{"decision": "A", "reward": 1}]}), 404)
    assert_error(scout.get(f"/api/model_details/{mid}"), 404)
    assert_error(scout.post(f"/api/rollout_global_variant/{mid}", {"variant": "A"}), 404)
    assert_error(scout.post(f"/api/clear_global_variant/{mid}"), 404)
    assert_error(scout.post(f"/api/delete_model/{mid}"), 404)
    # the other test is untouched
    assert fetch(scout, keep)["recommended_variant"] in ("A", "B")
