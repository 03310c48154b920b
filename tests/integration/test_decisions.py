"""Decisions (fetch_recommended_variant) and rewards (update_model): fields, joins, counting."""

import signal
import time
import uuid

import pytest

from helpers import (
    assert_error,
    create_test,
    performance,
    fetch,
    is_uuid4,
    redis_health,
    summary,
    update,
    wait_until,
)

# --------------------------------------------------------------------------- fetch


def test_fetch_answers_every_contract_field(scout):
    mid = create_test(scout)
    d = fetch(scout, mid)
    assert d["cb_model_id"] == mid
    assert d["recommended_variant"] in ("A", "B")
    assert d["variant_label"] == d["recommended_variant"]
    assert type(d["variant_id"]) is int
    assert d["variant_id"] == {"A": 0, "B": 1}[d["recommended_variant"]]
    assert is_uuid4(d["request_id"])
    assert d["is_global_rollout"] is False
    assert isinstance(d["propensity"], float)
    assert 0 < d["propensity"] <= 1


@pytest.mark.parametrize("n_variants", [2, 3, 5])
def test_warm_up_decisions_report_uniform_propensity(scout, n_variants):
    mid = create_test(scout, variants={str(i): f"v{i}" for i in range(n_variants)})
    for _ in range(5):
        assert fetch(scout, mid)["propensity"] == pytest.approx(1 / n_variants)


def test_generated_request_ids_are_fresh_uuid4s(scout):
    mid = create_test(scout)
    ids = [fetch(scout, mid)["request_id"] for _ in range(20)]
    assert all(is_uuid4(i) for i in ids)
    assert len(set(ids)) == 20


def test_generated_request_ids_carry_the_decision_time_and_sort_by_it(scout):
    """Documented in openapi.json: 48 bits of milliseconds, then random bits (what keeps the
    store's decision index growing at its end)."""
    mid = create_test(scout)
    ids = []
    for _ in range(5):
        before = time.time()
        rid = fetch(scout, mid)["request_id"]
        after = time.time()
        ms = uuid.UUID(rid).int >> 80
        assert before * 1000 - 1 <= ms <= after * 1000 + 1
        ids.append(rid)
        time.sleep(0.003)
    assert ids == sorted(ids)
    assert len({i[13:] for i in ids}) == 5   # the bits after the time differ


@pytest.mark.parametrize("request_id", ["order-42", "x" * 128, str(uuid.uuid4())])
def test_client_request_id_is_echoed(scout, request_id):
    mid = create_test(scout)
    assert fetch(scout, mid, request_id=request_id)["request_id"] == request_id


def test_model_id_is_accepted_as_an_alias_of_cb_model_id(scout):
    mid = create_test(scout)
    r = scout.post("/api/fetch_recommended_variant", {"model_id": mid})
    assert r.status_code == 200, r.text
    assert r.json()["cb_model_id"] == mid
    assert r.json()["recommended_variant"] in ("A", "B")


def test_context_values_of_every_allowed_type_are_accepted(scout):
    mid = create_test(scout)
    ctx = {"s": "x" * 1024, "i": 3, "f": -2.5, "t": True, "n": None, "k" * 128: "long key"}
    ctx.update({f"extra{i}": i for i in range(64 - len(ctx))})
    assert len(ctx) == 64
    d = fetch(scout, mid, context=ctx)
    assert d["recommended_variant"] in ("A", "B")


def test_empty_context_is_accepted(scout):
    mid = create_test(scout)
    assert fetch(scout, mid, context={})["recommended_variant"] in ("A", "B")


def test_every_decision_is_stored_for_a_later_join(scout):
    mid = create_test(scout)
    assert redis_health(scout)["context_keys_count"] == 0
    for i in range(6):
        fetch(scout, mid, context={"i": i} if i % 2 else None)
    assert redis_health(scout)["context_keys_count"] == 6


# --------------------------------------------------------------------------- update: counting


def test_update_response_reports_every_counter(scout):
    mid = create_test(scout)
    out = update(scout, mid, [
        {"decision": "A", "reward": 0.5},
        {"variant_id": 1, "reward": 2},
        {"reward": 1},  # names no variant and no decision: not applied
    ])
    assert out["cb_model_id"] == mid
    assert isinstance(out["message"], str)
    assert out["processed_updates"] == 2
    assert out["failed_updates"] == 1
    assert out["missing_context"] == 0
    assert out["redis_hits"] == 0
    assert out["total_reward"] == pytest.approx(2.5)
    assert summary(scout, mid)["update_requests"] == 2


def test_empty_update_list_applies_nothing(scout):
    mid = create_test(scout)
    out = update(scout, mid, [])
    assert out["processed_updates"] == 0 and out["failed_updates"] == 0
    assert out["total_reward"] == 0
    assert summary(scout, mid)["update_requests"] == 0


@pytest.mark.parametrize("field", ["decision", "variant_id"])
@pytest.mark.parametrize("value, expected", [("A", "A"), ("B", "B"), (0, "A"), (1, "B"),
                                             ("1", "B")])
def test_update_names_the_variant_by_label_or_id(scout, field, value, expected):
    mid = create_test(scout)
    out = update(scout, mid, [{field: value, "reward": 3}])
    assert out["processed_updates"] == 1
    ps = performance(scout, mid)
    assert ps[expected]["updates"] == 1
    assert ps[expected]["reward_sum"] == pytest.approx(3)
    other = "B" if expected == "A" else "A"
    assert ps[other]["updates"] == 0


def test_update_integer_matches_variant_id_before_integer_label(scout):
    mid = create_test(scout, variants={"0": 1, "1": 0})
    update(scout, mid, [{"decision": 1, "reward": 1}])  # variant id 1, whose label is 0
    ps = performance(scout, mid)
    assert ps["0"]["variant_id"] == 1 and ps["0"]["updates"] == 1
    assert ps["1"]["updates"] == 0


def test_update_integer_falls_back_to_integer_label(scout):
    mid = create_test(scout, variants={"0": 10, "1": 20})
    update(scout, mid, [{"decision": 20, "reward": 1}, {"variant_id": 10, "reward": 1}])
    ps = performance(scout, mid)
    assert ps["20"]["updates"] == 1 and ps["10"]["updates"] == 1


def test_update_string_matches_label_before_variant_id(scout):
    mid = create_test(scout, variants={"0": "1", "1": "0"})
    update(scout, mid, [{"decision": "1", "reward": 1}])  # label "1" is variant id 0
    ps = performance(scout, mid)
    assert ps["1"]["variant_id"] == 0 and ps["1"]["updates"] == 1
    assert ps["0"]["updates"] == 0


def test_unknown_variant_rejects_the_whole_request(scout):
    mid = create_test(scout)
    update(scout, mid, [{"decision": "A", "reward": 1}])
    for bad in ("Z", 7, "7"):
        r = scout.post(f"/api/update_model/{mid}", {"updates": [
            {"decision": "A", "reward": 1}, {"decision": "B", "reward": 1},
            {"decision": bad, "reward": 1}]})
        assert_error(r, 400)
    s = summary(scout, mid)
    assert s["update_requests"] == 1
    ps = performance(scout, mid)
    assert ps["A"]["updates"] == 1 and ps["B"]["updates"] == 0
    assert ps["A"]["reward_sum"] == pytest.approx(1)


def test_rewards_may_be_any_real_number(scout):
    mid = create_test(scout)
    out = update(scout, mid, [{"decision": "A", "reward": 20.0}, {"decision": "A", "reward": -5},
                              {"decision": "B", "reward": 0}, {"decision": "B", "reward": 1e3}])
    assert out["processed_updates"] == 4
    assert out["total_reward"] == pytest.approx(1015.0)
    ps = performance(scout, mid)
    assert ps["A"]["reward_sum"] == pytest.approx(15.0)
    assert ps["A"]["average_reward"] == pytest.approx(7.5)
    assert ps["B"]["average_reward"] == pytest.approx(500.0)


# --------------------------------------------------------------------------- update: joins


def test_update_with_only_a_request_id_uses_the_stored_decision(scout):
    mid = create_test(scout)
    d = fetch(scout, mid, context={"country": "US"})
    out = update(scout, mid, [{"request_id": d["request_id"], "reward": 1}])
    assert out["processed_updates"] == 1
    assert out["failed_updates"] == 0
    assert out["redis_hits"] == 1
    assert out["missing_context"] == 0
    ps = performance(scout, mid)
    assert ps[d["recommended_variant"]]["updates"] == 1


def test_stored_decision_is_joined_when_the_variant_is_given_too(scout):
    mid = create_test(scout)
    d = fetch(scout, mid, context={"device": "mobile", "visits": 4})
    out = update(scout, mid, [{"request_id": d["request_id"], "variant_id": d["variant_id"],
                               "reward": 1}])
    assert (out["processed_updates"], out["redis_hits"], out["missing_context"]) == (1, 1, 0)


def test_decision_without_context_is_still_joined_by_request_id(scout):
    mid = create_test(scout)
    d = fetch(scout, mid)
    out = update(scout, mid, [{"request_id": d["request_id"], "reward": 0}])
    assert (out["processed_updates"], out["redis_hits"], out["failed_updates"]) == (1, 1, 0)


def test_unknown_request_id_without_variant_fails_only_that_update(scout):
    mid = create_test(scout)
    out = update(scout, mid, [{"request_id": "never-issued", "reward": 1},
                              {"decision": "B", "reward": 1}])
    assert out["processed_updates"] == 1
    assert out["failed_updates"] == 1
    assert out["redis_hits"] == 0
    assert out["total_reward"] == pytest.approx(1)
    assert summary(scout, mid)["update_requests"] == 1


def test_unknown_request_id_without_inline_context_counts_as_missing_context(scout):
    mid = create_test(scout)
    out = update(scout, mid, [
        {"request_id": "gone-1", "decision": "A", "reward": 1},
        {"request_id": "gone-2", "decision": "A", "reward": 1, "context": {"country": "FR"}},
        {"request_id": "gone-3", "decision": "A", "reward": 1, "feature_country": "FR"},
    ])
    assert out["processed_updates"] == 3
    assert out["missing_context"] == 1
    assert out["redis_hits"] == 0
    assert out["failed_updates"] == 0


def test_request_ids_of_another_test_are_not_joined(scout):
    mid = create_test(scout)
    other = create_test(scout)
    d = fetch(scout, other, context={"k": "v"})
    out = update(scout, mid, [{"request_id": d["request_id"], "reward": 1}])
    assert out["processed_updates"] == 0
    assert out["failed_updates"] == 1
    assert summary(scout, mid)["update_requests"] == 0
    assert summary(scout, other)["update_requests"] == 0


@pytest.mark.parametrize("inline", [
    {"context": {"country": "DE", "age": 40, "member": True}},
    {"feature_country": "DE", "feature_age": 40},
    {"context_used_for_prediction": True},
    {"context_used_for_prediction": False, "context": {"country": "DE"}},
], ids=["context-object", "feature-keys", "context-used-flag", "flag-false-with-context"])
def test_every_inline_context_form_is_accepted(scout, inline):
    mid = create_test(scout)
    d = fetch(scout, mid, context={"country": "DE", "age": 40, "member": True})
    u = {"request_id": d["request_id"], "variant_id": d["variant_id"], "reward": 1}
    u.update(inline)
    out = update(scout, mid, [u])
    assert out["processed_updates"] == 1
    assert out["failed_updates"] == 0
    assert out["missing_context"] == 0


def test_many_updates_in_one_request_are_all_applied(scout):
    mid = create_test(scout)
    ups = [{"decision": "A" if i % 3 else "B", "reward": i % 2} for i in range(500)]
    out = update(scout, mid, ups)
    assert out["processed_updates"] == 500
    assert out["total_reward"] == pytest.approx(250)
    ps = performance(scout, mid)
    assert ps["A"]["updates"] + ps["B"]["updates"] == 500
    assert ps["B"]["updates"] == len([i for i in range(500) if i % 3 == 0])


# --------------------------------------------------------------------------- expiry


def test_expired_decisions_are_no_longer_joined(scout):
    r = scout.post("/admin/redis_config", {"ttl": 1})
    assert r.status_code == 200, r.text
    assert redis_health(scout)["ttl_seconds"] == 1
    mid = create_test(scout)
    baseline = redis_health(scout)["context_keys_count"]
    d1 = fetch(scout, mid, context={"country": "US"})
    d2 = fetch(scout, mid, context={"country": "US"})
    fetched_at = time.monotonic()
    assert redis_health(scout)["context_keys_count"] >= baseline + 1
    # Expiry is a matter of wall time: wait until the decisions are clearly past their 1 s TTL.
    time.sleep(max(0.0, fetched_at + 2.5 - time.monotonic()))
    out = update(scout, mid, [{"request_id": d1["request_id"], "reward": 1}])
    assert out["processed_updates"] == 0
    assert out["failed_updates"] == 1
    assert out["redis_hits"] == 0
    out = update(scout, mid, [{"request_id": d2["request_id"], "decision": d2["variant_id"],
                               "reward": 1}])
    assert out["processed_updates"] == 1
    assert out["missing_context"] == 1
    assert out["redis_hits"] == 0
    wait_until(lambda: redis_health(scout)["context_keys_count"] <= baseline, timeout=10,
               message="expired decisions to be purged from context_keys_count")


def test_fresh_decision_is_joined_under_the_default_ttl(scout):
    assert redis_health(scout)["ttl_seconds"] == 86400
    mid = create_test(scout)
    d = fetch(scout, mid, context={"a": 1})
    out = update(scout, mid, [{"request_id": d["request_id"], "reward": 1}])
    assert out["redis_hits"] == 1


def test_a_decision_names_the_model_version_it_was_made_with(scout):
    """model_version counts the reward events the model had learned: a decision record can be
    traced to the exact state that made it (and a restart rebuilds that same count)."""
    mid = create_test(scout, variants={"0": "a", "1": "b"})
    assert fetch(scout, mid)["model_version"] == 0
    update(scout, mid, [{"decision": "a", "reward": 1}, {"decision": "b", "reward": 0}, {"decision": "a", "reward": 1}])
    assert fetch(scout, mid)["model_version"] == 3
    assert scout.stop(signal.SIGTERM) == 0
    scout.restart()
    assert fetch(scout, mid)["model_version"] == 3
