"""The bandit learns: uniform warm-up until `min_updates` rewards, then a clear winner dominates.

Bounds are wide (≥ 5 sigma or far from any plausible outcome) so these never flake, yet a server
that ignores rewards — or that learns during warm-up — fails them.
"""

import math

import pytest

from helpers import create_test, fetch, summary, update


def send_rewards(scout, mid, per_variant, reward_of, batch=50):
    """`per_variant` rewards for each of A and B, interleaved, `batch` updates per request."""
    ups = []
    for i in range(per_variant):
        ups.append({"decision": "A", "reward": reward_of("A", i)})
        ups.append({"decision": "B", "reward": reward_of("B", i)})
    for start in range(0, len(ups), batch):
        chunk = ups[start:start + batch]
        assert update(scout, mid, chunk)["processed_updates"] == len(chunk)


def pick_counts(scout, mid, n):
    counts = {"A": 0, "B": 0}
    for _ in range(n):
        counts[fetch(scout, mid)["recommended_variant"]] += 1
    return counts


def binomial_bounds(n, p, sigmas=5):
    sd = math.sqrt(n * p * (1 - p))
    return n * p - sigmas * sd, n * p + sigmas * sd


def test_warm_up_is_uniform_until_min_updates_rewards(scout):
    mid = create_test(scout, min_updates=10)
    # nine rewards, all saying B wins: still below min_updates, so no learning yet
    update(scout, mid, [{"decision": "B", "reward": 1}] * 5 + [{"decision": "A", "reward": 0}] * 4)
    n = 400
    low, high = binomial_bounds(n, 0.5)  # 150 .. 250
    counts = pick_counts(scout, mid, n)
    assert low <= counts["A"] <= high, counts
    assert low <= counts["B"] <= high, counts


def test_default_warm_up_is_ten_rewards(scout):
    mid = create_test(scout)
    update(scout, mid, [{"decision": "B", "reward": 1}] * 5 + [{"decision": "A", "reward": 0}] * 4)
    low, high = binomial_bounds(400, 0.5)
    counts = pick_counts(scout, mid, 400)
    assert low <= counts["B"] <= high, counts


@pytest.mark.parametrize("policy", [None, "auto", "thompson"])
def test_thompson_sampling_converges_on_the_rewarded_variant(scout, policy):
    extras = {} if policy is None else {"policy": policy}
    mid = create_test(scout, min_updates=10, **extras)
    send_rewards(scout, mid, 150, lambda v, i: 1 if v == "B" else 0)
    counts = pick_counts(scout, mid, 300)
    assert counts["B"] >= 0.85 * 300, counts


def test_epsilon_greedy_exploits_the_winner_and_still_explores(scout):
    mid = create_test(scout, policy="egreedy", epsilon=0.1)
    send_rewards(scout, mid, 150, lambda v, i: 1 if v == "B" else 0)
    counts = pick_counts(scout, mid, 300)
    assert counts["B"] >= 0.85 * 300, counts
    # ε = 0.1 explores on about 30 of 300 picks, about half of them A: seeing no A at all has
    # probability 0.95**300 < 1e-6.
    assert counts["A"] >= 1, counts


def test_ucb1_converges_on_the_rewarded_variant_and_reports_exact_propensities(scout):
    mid = create_test(scout, policy="ucb1", min_updates=10)
    send_rewards(scout, mid, 150, lambda v, i: 1 if v == "B" else 0)
    counts = pick_counts(scout, mid, 300)
    assert counts["B"] >= 0.95 * 300, counts
    # deterministic policy + the default 1% floor: B is chosen with 0.01 + 0.98 = 0.99
    d = fetch(scout, mid)
    assert d["propensity"] == pytest.approx(0.99 if d["recommended_variant"] == "B" else 0.01)


def test_probability_floor_keeps_a_losing_variant_in_play(scout):
    mid = create_test(scout, policy="egreedy", epsilon=0.0, min_updates=0, probability_floor=0.1)
    send_rewards(scout, mid, 20, lambda v, i: 1 if v == "B" else 0)
    counts = pick_counts(scout, mid, 1000)
    # A keeps 10%: Binomial(1000, 0.1) has sd 9.5; allow 6 sd either way
    assert 100 - 57 <= counts["A"] <= 100 + 57, counts


def test_probability_floor_above_one_over_k_is_a_400(scout):
    r = scout.post("/api/create_model", {"name": "f", "variants": {"0": "A", "1": "B", "2": "C"},
                                         "probability_floor": 0.4})
    assert r.status_code == 400, r.text
    assert "probability_floor" in r.json()["detail"]


def test_burn_in_keeps_the_warm_up_until_every_variant_has_its_rewards(scout):
    mid = create_test(scout, min_updates=0, burn_in=5)
    assert summary(scout, mid)["warmup"] is True
    update(scout, mid, [{"decision": "B", "reward": 1}] * 20)
    assert summary(scout, mid)["warmup"] is True          # A has no reward yet
    assert fetch(scout, mid)["propensity"] == pytest.approx(0.5)
    update(scout, mid, [{"decision": "A", "reward": 0}] * 4)
    assert summary(scout, mid)["warmup"] is True          # 4 < 5
    update(scout, mid, [{"decision": "A", "reward": 0}])
    assert summary(scout, mid)["warmup"] is False
    assert summary(scout, mid)["burn_in"] == 5


def test_fetch_can_return_every_variants_probability(scout):
    mid = create_test(scout, variants={"0": "A", "1": "B", "2": 7}, min_updates=0)
    update(scout, mid, [{"decision": "B", "reward": 1}] * 30 + [{"decision": "A", "reward": 0}] * 30)
    d = fetch(scout, mid, return_probabilities=True)
    probs = d["probabilities"]
    assert set(probs) == {"A", "B", "7"}
    assert sum(probs.values()) == pytest.approx(1.0)
    assert all(p >= 0.01 - 1e-12 for p in probs.values())   # the default floor
    assert probs[str(d["recommended_variant"])] == pytest.approx(d["propensity"])
    assert "probabilities" not in fetch(scout, mid)


def test_epsilon_zero_exploits_all_but_a_probability_floor(scout):
    mid = create_test(scout, policy="egreedy", epsilon=0.0, min_updates=0)
    send_rewards(scout, mid, 20, lambda v, i: 1 if v == "B" else 0)
    # a guardrail floor of a percent or two per variant is allowed; ε-style exploration is not
    assert pick_counts(scout, mid, 200)["B"] >= 0.90 * 200


def test_rewards_outside_zero_one_are_learned(scout):
    # purchase amounts: B sells for about 20, A for about 5
    mid = create_test(scout)
    send_rewards(scout, mid, 150,
                 lambda v, i: (20.0 if v == "B" else 5.0) + (i % 5 - 2) * 0.5)
    counts = pick_counts(scout, mid, 300)
    assert counts["B"] >= 0.85 * 300, counts


def test_negative_rewards_are_learned(scout):
    mid = create_test(scout, min_updates=0)
    send_rewards(scout, mid, 100, lambda v, i: (-10.0 if v == "A" else -1.0) + (i % 3) * 0.25)
    counts = pick_counts(scout, mid, 200)
    assert counts["B"] >= 0.85 * 200, counts


def test_learning_starts_at_once_with_min_updates_zero(scout):
    mid = create_test(scout, min_updates=0)
    # only 8 rewards — fewer than the default warm-up of 10 — already tip the balance:
    # P(Thompson picks A) = 5 * B(5, 6) ≈ 0.4 %
    send_rewards(scout, mid, 4, lambda v, i: 1 if v == "B" else 0)
    counts = pick_counts(scout, mid, 200)
    assert counts["B"] >= 0.85 * 200, counts


def test_learned_propensity_reflects_the_preference(scout):
    mid = create_test(scout, min_updates=0)
    send_rewards(scout, mid, 100, lambda v, i: 1 if v == "B" else 0)
    for _ in range(20):
        d = fetch(scout, mid)
        assert 0 < d["propensity"] <= 1
        if d["recommended_variant"] == "B":
            assert d["propensity"] > 0.5


def test_three_variants_converge_on_the_best(scout):
    mid = create_test(scout, variants={"0": "A", "1": "B", "2": "C"})
    rates = {"A": 0.2, "B": 0.5, "C": 0.9}
    ups = []
    for label, rate in rates.items():
        ones = int(rate * 100)
        ups += [{"decision": label, "reward": 1}] * ones
        ups += [{"decision": label, "reward": 0}] * (100 - ones)
    for start in range(0, len(ups), 100):
        update(scout, mid, ups[start:start + 100])
    counts = {"A": 0, "B": 0, "C": 0}
    for _ in range(300):
        counts[fetch(scout, mid)["recommended_variant"]] += 1
    assert counts["C"] >= 0.85 * 300, counts
