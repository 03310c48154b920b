"""Contextual learning and the test options around it: policies, discounting, the features
allow-list, per-request probabilities, the learned model in model_details, exact restarts,
sticky assignment and the sample-ratio-mismatch (SRM) check.

The learning scenario is the original's simulation made deterministic: the context carries a
colour; variant "a" pays 1 for red and 0 for blue, "b" the reverse. A contextual policy must
learn to show a to red and b to blue; a policy that ignores the context cannot, since both
variants pay 1/2 on average. Bounds are wide so the tests never flake, yet a server that
ignores the context (or the policy option) fails them.
"""

import math
import random
import signal
import uuid
from collections import Counter

import pytest

from helpers import assert_error, create_test, details, fetch, performance, summary, update

AB = {"0": "a", "1": "b"}
COLORS = ("red", "blue")
PICKS = 200            # fetches per context when measuring what a policy picks
ROUNDS = 1200          # learning rounds of fetch + reward


def color_reward(label, ctx):
    """a pays for red, b for blue (deterministic)."""
    return 1 if (label == "a") == (ctx["color"] == "red") else 0


def train(scout, mid, rounds, context_of, reward_of, batch=50):
    """`rounds` rounds of fetch (with context and request_id) then reward by request_id; the
    rewards go out every `batch` decisions, so the policy learns while it decides."""
    pending = []
    for i in range(rounds):
        ctx = context_of(i)
        rid = f"r-{uuid.uuid4().hex}"
        d = fetch(scout, mid, context=ctx, request_id=rid)
        pending.append({"request_id": rid, "reward": reward_of(str(d["recommended_variant"]), ctx)})
        if len(pending) == batch or i == rounds - 1:
            out = update(scout, mid, pending)
            assert out["processed_updates"] == len(pending), out
            assert out["redis_hits"] == len(pending), out
            pending = []


def picks(scout, mid, ctx, n=PICKS):
    return Counter(str(fetch(scout, mid, context=ctx)["recommended_variant"]) for _ in range(n))


def probabilities(scout, mid, ctx=None):
    d = fetch(scout, mid, context=ctx, return_probabilities=True)
    probs = d["probabilities"]
    assert isinstance(probs, dict), d
    return d, probs


def alternate_colors(i):
    return {"color": COLORS[i % 2]}


def contextual_model(scout, mid):
    d = details(scout, mid)
    assert "contextual_model" in d, sorted(d)
    return d["contextual_model"]


# --------------------------------------------------------------------------- create options


def test_unknown_policy_is_a_400_that_lists_the_available_ones(scout):
    r = scout.post("/api/create_model", {"name": "p", "variants": AB, "policy": "softmax"})
    assert_error(r, 400)
    detail = r.json()["detail"]
    for name in ("auto", "thompson", "ucb1", "egreedy", "linucb", "lints"):
        assert name in detail, detail
    # a policy that is not a string is the wrong shape
    assert_error(scout.post("/api/create_model", {"name": "p", "variants": AB, "policy": 3}), 422)


@pytest.mark.parametrize("policy, reported", [
    ("auto", "auto"), ("thompson", "thompson"), ("ucb1", "ucb1"), ("egreedy", "egreedy"),
    ("linucb", "linucb"), ("lints", "lints"), ("linear_thompson", "lints"),
])
def test_every_policy_is_accepted_and_serves_decisions(scout, policy, reported):
    mid = create_test(scout, variants=AB, policy=policy)
    assert summary(scout, mid)["policy"] == reported
    for ctx in (None, {"color": "red"}):
        d = fetch(scout, mid, context=ctx)
        assert d["recommended_variant"] in ("a", "b"), d
    assert update(scout, mid, [{"decision": "a", "reward": 1, "context": {"color": "red"}}])[
        "processed_updates"] == 1


def test_policy_defaults_to_auto(scout):
    assert summary(scout, create_test(scout, variants=AB))["policy"] == "auto"


@pytest.mark.parametrize("value, status", [
    (0.49, 400), (1.01, 400), (0, 400), (-1, 400), ("0.9", 422), (True, 422),
])
def test_discount_outside_half_to_one_is_refused(scout, value, status):
    r = scout.post("/api/create_model", {"name": "d", "variants": AB, "discount": value})
    assert_error(r, status)
    if status == 400:
        assert "discount" in r.json()["detail"]


@pytest.mark.parametrize("value", [0.5, 0.9, 1, 1.0])
def test_discount_inside_half_to_one_is_accepted(scout, value):
    mid = create_test(scout, variants=AB, discount=value)
    assert summary(scout, mid)["discount"] == pytest.approx(value)


def test_discount_lets_a_test_follow_a_change_of_winner(scout):
    """300 rewards say b wins, then 120 say a wins. Undiscounted, b still has the better mean
    (0.71 vs 0.29); with γ = 0.95 the old evidence has faded to 0.95**120 ≈ 0.2% and a leads."""
    steady = create_test(scout, variants=AB, min_updates=0)
    fading = create_test(scout, variants=AB, min_updates=0, discount=0.95)
    before = [{"decision": "a", "reward": 0}, {"decision": "b", "reward": 1}] * 150
    after = [{"decision": "a", "reward": 1}, {"decision": "b", "reward": 0}] * 60
    for mid in (steady, fading):
        for chunk in (before[:150], before[150:], after):
            update(scout, mid, chunk)
    assert picks(scout, fading, None)["a"] >= 0.85 * PICKS
    assert picks(scout, steady, None)["b"] >= 0.85 * PICKS


# --------------------------------------------------------------------------- learning per context


@pytest.mark.parametrize("policy", [None, "lints", "linucb"], ids=["auto-by-default", "lints", "linucb"])
def test_contextual_policies_learn_the_best_variant_per_context(scout, policy):
    extras = {} if policy is None else {"policy": policy}
    mid = create_test(scout, variants=AB, **extras)
    train(scout, mid, ROUNDS, alternate_colors, color_reward)
    red, blue = picks(scout, mid, {"color": "red"}), picks(scout, mid, {"color": "blue"})
    assert red["a"] >= 0.85 * PICKS, (red, blue)
    assert blue["b"] >= 0.85 * PICKS, (red, blue)


def test_thompson_ignores_the_context_and_cannot_split_by_it(scout):
    mid = create_test(scout, variants=AB, policy="thompson")
    train(scout, mid, 600, alternate_colors, color_reward)
    red, blue = picks(scout, mid, {"color": "red"}), picks(scout, mid, {"color": "blue"})
    # the same distribution serves both colours: a ≥ 85% for red and ≤ 15% for blue is impossible
    assert not (red["a"] >= 0.85 * PICKS and blue["b"] >= 0.85 * PICKS), (red, blue)
    _, p_red = probabilities(scout, mid, {"color": "red"})
    _, p_blue = probabilities(scout, mid, {"color": "blue"})
    assert p_red == p_blue


@pytest.mark.parametrize("kind", ["boolean", "number"])
def test_auto_learns_from_boolean_and_number_contexts(scout, kind):
    rng = random.Random(7)
    if kind == "boolean":
        def context_of(i):
            return {"mobile": i % 2 == 0}

        def good_for_a(ctx):
            return ctx["mobile"]
        a_side, b_side = {"mobile": True}, {"mobile": False}
    else:
        def context_of(i):
            return {"age": rng.uniform(0, 100)}

        def good_for_a(ctx):
            return ctx["age"] > 50
        a_side, b_side = {"age": 92.5}, {"age": 7.5}
    mid = create_test(scout, variants=AB)
    train(scout, mid, ROUNDS, context_of,
          lambda label, ctx: 1 if (label == "a") == good_for_a(ctx) else 0)
    on_a, on_b = picks(scout, mid, a_side), picks(scout, mid, b_side)
    assert on_a["a"] >= 0.85 * PICKS, (on_a, on_b)
    assert on_b["b"] >= 0.85 * PICKS, (on_a, on_b)


def test_auto_uses_plain_thompson_sampling_for_a_request_without_context(scout):
    """Overall a is the better variant (0.8 vs 0.5) though b wins for red: a request without
    context follows the per-variant statistics, exactly as a thompson test with the same events."""
    events = ([{"decision": "a", "reward": 0, "context": {"color": "red"}}] * 50
              + [{"decision": "b", "reward": 1, "context": {"color": "red"}}] * 50
              + [{"decision": "a", "reward": 1, "context": {"color": "blue"}}] * 200
              + [{"decision": "b", "reward": 0, "context": {"color": "blue"}}] * 50)
    random.Random(3).shuffle(events)
    auto = create_test(scout, variants=AB, min_updates=0)
    plain = create_test(scout, variants=AB, min_updates=0, policy="thompson")
    for mid in (auto, plain):
        for start in range(0, len(events), 100):
            update(scout, mid, events[start:start + 100])
    assert picks(scout, auto, None)["a"] >= 0.85 * PICKS
    assert picks(scout, auto, {"color": "red"})["b"] >= 0.85 * PICKS
    _, p_auto = probabilities(scout, auto, None)
    _, p_plain = probabilities(scout, plain, None)
    for label in ("a", "b"):
        assert p_auto[label] == pytest.approx(p_plain[label], abs=0.05), (p_auto, p_plain)


# --------------------------------------------------------------------------- probabilities


def test_returned_probabilities_are_those_of_this_requests_context(scout):
    mid = create_test(scout, variants=AB)
    train(scout, mid, 600, alternate_colors, color_reward)
    d_red, p_red = probabilities(scout, mid, {"color": "red"})
    d_blue, p_blue = probabilities(scout, mid, {"color": "blue"})
    for d, p in ((d_red, p_red), (d_blue, p_blue)):
        assert set(p) == {"a", "b"}, p
        assert sum(p.values()) == pytest.approx(1.0)
        assert all(v >= 0.01 - 1e-12 for v in p.values()), p     # the default floor
        assert p[str(d["recommended_variant"])] == pytest.approx(d["propensity"]), d
    assert p_red != p_blue
    assert p_red["a"] > 0.5 and p_blue["b"] > 0.5, (p_red, p_blue)


@pytest.mark.parametrize("policy", ["auto", "lints", "linucb"])
def test_every_contextual_probability_respects_the_floor(scout, policy):
    mid = create_test(scout, variants={"0": "a", "1": "b", "2": "c"}, policy=policy,
                      probability_floor=0.05)
    train(scout, mid, 300, alternate_colors,
          lambda label, ctx: 1 if (label == "a") == (ctx["color"] == "red") else 0)
    for ctx in ({"color": "red"}, {"color": "blue"}, {"color": "green"}, None):
        for _ in range(5):
            d, p = probabilities(scout, mid, ctx)
            assert set(p) == {"a", "b", "c"}, p
            assert sum(p.values()) == pytest.approx(1.0)
            assert all(v >= 0.05 - 1e-12 for v in p.values()), (ctx, p)
            assert p[str(d["recommended_variant"])] == pytest.approx(d["propensity"]), (ctx, d)


# --------------------------------------------------------------------------- features allow-list


def noisy_colors(seed):
    rng = random.Random(seed)

    def context_of(i):
        return {"color": COLORS[i % 2], "noise": uuid.UUID(int=rng.getrandbits(128)).hex[:12]}
    return context_of


def test_features_allow_list_learns_from_the_listed_keys_only(scout):
    mid = create_test(scout, variants=AB, features=["color"])
    train(scout, mid, ROUNDS, noisy_colors(11), color_reward)
    red = picks(scout, mid, {"color": "red", "noise": "x"})
    blue = picks(scout, mid, {"color": "blue", "noise": "y"})
    assert red["a"] >= 0.85 * PICKS, (red, blue)
    assert blue["b"] >= 0.85 * PICKS, (red, blue)
    model = contextual_model(scout, mid)
    assert [f["name"] for f in model["features"]] == ["color"], model["features"]
    assert model["dimension"] == 3, model          # intercept, red, blue
    assert summary(scout, mid)["features"] == ["color"]
    # the noise key changes nothing: only the listed key reaches the model
    _, p1 = probabilities(scout, mid, {"color": "red", "noise": "one"})
    _, p2 = probabilities(scout, mid, {"color": "red", "noise": "two"})
    _, p3 = probabilities(scout, mid, {"color": "red"})
    assert p1 == p2 == p3


def test_without_an_allow_list_every_context_key_is_a_feature(scout):
    mid = create_test(scout, variants=AB)
    train(scout, mid, 100, noisy_colors(12), color_reward)
    names = sorted(f["name"] for f in contextual_model(scout, mid)["features"])
    assert names == ["color", "noise"]


# --------------------------------------------------------------------------- the learned model


def test_contextual_model_reports_each_feature_with_per_value_statistics(scout):
    rng = random.Random(5)
    ages = []

    def context_of(i):
        age = round(rng.uniform(18, 80), 3)
        ages.append(age)
        return {"color": COLORS[i % 2], "mobile": i % 3 == 0, "age": age}

    mid = create_test(scout, variants=AB)
    train(scout, mid, 600, context_of, color_reward)
    model = contextual_model(scout, mid)
    assert isinstance(model, dict), model
    by_name = {f["name"]: f for f in model["features"]}
    assert set(by_name) == {"color", "mobile", "age"}, by_name.keys()
    assert by_name["color"]["type"] == "string"
    assert by_name["mobile"]["type"] == "boolean"
    assert by_name["age"]["type"] == "number"
    assert model["dropped_values"] == 0
    # intercept + red + blue + mobile + age
    assert model["dimension"] == 5, model

    age = by_name["age"]
    mean = sum(ages) / len(ages)
    sd = math.sqrt(sum((x - mean) ** 2 for x in ages) / (len(ages) - 1))
    assert age["mean"] == pytest.approx(mean, rel=1e-6)
    assert age["sd"] == pytest.approx(sd, rel=1e-2)
    assert "coefficients" in age

    ps = performance(scout, mid)
    color_values = {v["value"]: v["variants"] for v in by_name["color"]["values"]}
    assert set(color_values) == {"red", "blue"}, color_values.keys()
    for label in ("a", "b"):
        # every reward of a variant had exactly one colour
        assert (color_values["red"][label]["rewards"] + color_values["blue"][label]["rewards"]
                == ps[label]["updates"]), (color_values, ps)
        for value in ("red", "blue"):
            row = color_values[value][label]
            for key in ("rewards", "mean", "ci_low", "ci_high", "probability_best"):
                assert isinstance(row[key], (int, float)), (value, label, row)
            assert 0 <= row["probability_best"] <= 1, row
            if row["rewards"]:
                assert row["ci_low"] <= row["mean"] <= row["ci_high"], row
    # a wins for red, b for blue, and the statistics say so
    assert color_values["red"]["a"]["mean"] > color_values["red"]["b"]["mean"]
    assert color_values["blue"]["b"]["mean"] > color_values["blue"]["a"]["mean"]
    assert color_values["red"]["a"]["probability_best"] > 0.9, color_values["red"]
    assert color_values["blue"]["b"]["probability_best"] > 0.9, color_values["blue"]
    mobile_values = {v["value"] for v in by_name["mobile"]["values"]}
    assert mobile_values == {"true", "false"} or mobile_values == {True, False}, mobile_values


@pytest.mark.parametrize("policy", ["thompson", "ucb1", "egreedy"])
def test_contextual_model_is_null_for_non_contextual_policies(scout, policy):
    mid = create_test(scout, variants=AB, policy=policy)
    update(scout, mid, [{"decision": "a", "reward": 1, "context": {"color": "red"}}] * 5)
    assert contextual_model(scout, mid) is None


def test_string_values_beyond_32_share_one_other_slot(scout):
    mid = create_test(scout, variants=AB, min_updates=0)
    cities = [f"city-{i:02d}" for i in range(40)]
    update(scout, mid, [{"decision": "ab"[i % 2], "reward": int(i % 3 == 0), "context": {"city": c}}
                        for i, c in enumerate(cities * 3)])
    model = contextual_model(scout, mid)
    (city,) = model["features"]
    assert city["name"] == "city" and city["type"] == "string"
    values = [v["value"] for v in city["values"]]
    assert len(values) == 33, values
    assert "(other)" in values
    assert set(values) - {"(other)"} == set(cities[:32])     # first come, first slotted
    assert model["dimension"] == 1 + 32 + 1, model
    # the 8 overflowed cities' rewards all land in the shared slot
    other = next(v for v in city["values"] if v["value"] == "(other)")
    assert sum(row["rewards"] for row in other["variants"].values()) == 8 * 3
    # values never seen still get a decision
    for _ in range(5):
        assert fetch(scout, mid, context={"city": "atlantis"})["recommended_variant"] in ("a", "b")


# --------------------------------------------------------------------------- restart


@pytest.mark.parametrize("policy", ["auto", "lints", "linucb"])
def test_contextual_probabilities_are_identical_after_a_restart(scout, policy):
    rng = random.Random(9)

    def context_of(i):
        return {"color": COLORS[i % 2], "age": round(rng.uniform(18, 80), 2), "mobile": i % 3 == 0}

    mid = create_test(scout, variants={"0": "a", "1": "b", "2": "c"}, policy=policy, min_updates=0)
    train(scout, mid, 300, context_of,
          lambda label, ctx: (1 if (label == "a") == (ctx["color"] == "red") else 0)
          + (0.5 if label == "c" and ctx["mobile"] else 0))
    probes = [{"color": "red", "age": 30, "mobile": True},
              {"color": "blue", "age": 65.5, "mobile": False},
              {"color": "green"}, None]

    def state():
        probs = [probabilities(scout, mid, ctx)[1] for ctx in probes]
        model = contextual_model(scout, mid)
        features = sorted(
            ((f["name"], f["type"], f.get("mean"), f.get("sd"), repr(f.get("coefficients")),
              tuple(sorted((v["value"], tuple(sorted((k, row["rewards"]) for k, row in v["variants"].items())))
                           for v in f.get("values") or [])))
             for f in model["features"]), key=repr)
        return probs, model["dimension"], features, summary(scout, mid)["update_requests"]

    before = state()
    assert before[0][0] != before[0][1], before[0]   # the probes really differ by context
    assert scout.stop(signal.SIGTERM) == 0
    scout.restart()
    after = state()
    assert after[3] == before[3] == 300
    assert after[0] == before[0]
    assert after[1:] == before[1:]


# --------------------------------------------------------------------------- sticky assignment


def push_weights_to_b(scout, mid):
    update(scout, mid, [{"decision": "b", "reward": 1}, {"decision": "a", "reward": 0}] * 100)
    update(scout, mid, [{"decision": "b", "reward": 1}, {"decision": "a", "reward": 0}] * 100)


def first_assignments(scout, mid, users, how):
    return {u: fetch(scout, mid, **how(u))["variant_id"] for u in users}


def assert_sticky(scout, mid, assigned, how, repeats=3):
    for u, variant_id in assigned.items():
        for _ in range(repeats):
            d = fetch(scout, mid, **how(u))
            assert d["variant_id"] == variant_id, (u, variant_id, d)
            assert d["sticky"] is True, d


@pytest.mark.parametrize("sticky, how", [
    (True, lambda u: {"user_id": f"user-{u}"}),
    (True, lambda u: {"user_id": 1000 + u}),
    ("customer", lambda u: {"context": {"customer": f"c-{u}", "color": "red"}}),
    ("customer", lambda u: {"customer": f"c-{u}"}),
], ids=["user_id-string", "user_id-int", "context-key", "body-field"])
def test_sticky_users_keep_their_first_variant(scout, sticky, how):
    mid = create_test(scout, variants=AB, sticky=sticky)
    assert summary(scout, mid)["sticky"] not in (False, None)
    users = range(30)
    assigned = first_assignments(scout, mid, users, how)   # uniform warm-up: both variants
    assert set(assigned.values()) == {0, 1}, assigned
    push_weights_to_b(scout, mid)
    # others follow the policy, now strongly for b
    newcomers = Counter(fetch(scout, mid, **how(u))["variant_id"] for u in range(100, 100 + PICKS))
    assert newcomers[1] >= 0.85 * PICKS, newcomers
    # the early users do not move, a-users included
    assert_sticky(scout, mid, assigned, how)


def test_sticky_assignments_survive_a_restart(scout):
    mid = create_test(scout, variants=AB, sticky=True)

    def how(u):
        return {"user_id": f"u{u}"}

    assigned = first_assignments(scout, mid, range(30), how)
    assert set(assigned.values()) == {0, 1}, assigned
    push_weights_to_b(scout, mid)
    assert scout.stop(signal.SIGTERM) == 0
    scout.restart()
    assert summary(scout, mid)["sticky"] not in (False, None)
    assert_sticky(scout, mid, assigned, how)


def test_the_sticky_context_key_names_a_user_and_is_not_learned_as_a_feature(scout):
    mid = create_test(scout, variants=AB, sticky="customer", min_updates=0)
    rids = []
    for i in range(40):
        rid = f"q{i}"
        fetch(scout, mid, context={"customer": f"c-{i}", "color": COLORS[i % 2]}, request_id=rid)
        rids.append(rid)
    assert update(scout, mid, [{"request_id": r, "reward": 1} for r in rids])["redis_hits"] == 40
    model = contextual_model(scout, mid)
    assert [f["name"] for f in model["features"]] == ["color"], model["features"]


def test_non_sticky_tests_answer_sticky_false(scout):
    mid = create_test(scout, variants=AB)
    assert summary(scout, mid)["sticky"] is False
    for body in ({}, {"user_id": "u1"}, {"context": {"color": "red"}}):
        assert fetch(scout, mid, **body)["sticky"] is False


# --------------------------------------------------------------------------- SRM check


def chi_square(observed, expected):
    return sum((observed[k] - expected[k]) ** 2 / expected[k] for k in expected if expected[k] > 0)


def check_srm(srm, labels, n):
    assert set(srm) >= {"observed", "expected", "chi_square", "df", "p_value", "mismatch"}, srm
    observed, expected = srm["observed"], srm["expected"]
    assert set(observed) == set(labels) and set(expected) == set(labels), srm
    assert sum(observed.values()) == n, srm
    assert sum(expected.values()) == pytest.approx(n, rel=1e-6), srm
    assert srm["chi_square"] == pytest.approx(chi_square(observed, expected), rel=1e-6, abs=1e-9), srm
    assert 0 <= srm["p_value"] <= 1, srm
    assert srm["mismatch"] is False, srm


def test_srm_finds_no_mismatch_for_uniform_traffic(scout):
    labels = ("a", "b", "c")
    mid = create_test(scout, variants={"0": "a", "1": "b", "2": "c"})
    for _ in range(1000):
        fetch(scout, mid)
    srm = details(scout, mid)["srm"]
    check_srm(srm, labels, 1000)
    assert srm["df"] == 2
    for label in labels:
        assert srm["expected"][label] == pytest.approx(1000 / 3)
    # for two degrees of freedom the chi-square tail is exp(-x/2)
    assert srm["p_value"] == pytest.approx(math.exp(-srm["chi_square"] / 2), rel=1e-3, abs=1e-9)


def test_srm_expects_what_the_policy_chose_not_an_even_split(scout):
    """UCB1 without a probability floor picks the winner with probability 1: the expected
    counts follow those propensities, and 1000/0 traffic is no mismatch (an even split would
    call it one)."""
    mid = create_test(scout, variants=AB, policy="ucb1", min_updates=0, probability_floor=0)
    push_weights_to_b(scout, mid)
    for _ in range(1000):
        fetch(scout, mid)
    srm = details(scout, mid)["srm"]
    check_srm(srm, ("a", "b"), 1000)
    assert srm["observed"] == {"a": 0, "b": 1000}, srm
    assert srm["expected"]["b"] == pytest.approx(1000), srm
    assert srm["expected"]["a"] == pytest.approx(0, abs=1e-9), srm
    assert srm["chi_square"] == pytest.approx(0, abs=1e-9), srm
    assert srm["p_value"] == pytest.approx(1), srm


def test_srm_counters_survive_a_restart(scout):
    """The SRM check compares observed traffic with logged probabilities over the test's life:
    a deploy (SIGTERM and restart) must not silently reset it."""
    mid = create_test(scout, variants=AB)
    for _ in range(100):
        fetch(scout, mid)
    before = details(scout, mid)["srm"]
    assert sum(before["observed"].values()) == 100, before
    assert scout.stop(signal.SIGTERM) == 0
    scout.restart()
    after = details(scout, mid)["srm"]
    assert after["observed"] == before["observed"], (before, after)
    for label in ("a", "b"):
        assert after["expected"][label] == pytest.approx(before["expected"][label], rel=1e-12)
    fetch(scout, mid)
    assert sum(details(scout, mid)["srm"]["observed"].values()) == 101


def test_a_sticky_repeat_is_certain_and_keeps_the_assignment_propensity(scout):
    """A user's later decisions are fixed: the probabilities of that request put all mass on the
    user's variant, while `propensity` stays the probability the user was assigned with."""
    mid = create_test(scout, variants=AB, sticky=True, min_updates=0)
    first = fetch(scout, mid, user_id="u-42", return_probabilities=True)
    assert first["sticky"] is False
    assert first["propensity"] == pytest.approx(first["probabilities"][first["variant_label"]])
    push_weights_to_b(scout, mid)
    again = fetch(scout, mid, user_id="u-42", return_probabilities=True)
    assert again["sticky"] is True and again["variant_id"] == first["variant_id"]
    assert again["propensity"] == pytest.approx(first["propensity"])
    assert again["probabilities"] == {"a": float(first["variant_label"] == "a"),
                                      "b": float(first["variant_label"] == "b")}
