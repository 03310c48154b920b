"""The reward window: a decision waits `reward_wait_seconds` for its rewards; `reward_aggregation`
says what several rewards of one request do ("all": each is learned, "first": only the first,
"sum": they add up to one event learned when the window ends); `default_reward` is learned for
a decision that got no reward in its window; a reward after the window is late and not learned.
All of it is durable: the learned state after a restart equals the state before, and a
deferred sum acknowledged before a SIGKILL is still learned when its window ends.

Waits are short (1-1.5 s) and every wait for the server's background settling polls for
several seconds more than the window, so slow machines pass too.
"""

import signal
import time

import pytest

from helpers import (
    assert_error,
    create_test,
    fetch,
    models,
    performance,
    summary,
    update,
    wait_until,
)

AB = {"0": "a", "1": "b"}
WAIT = 1.5                     # seconds a decision waits for its rewards in these tests
SETTLE_TIMEOUT = WAIT + 6.0    # generous: settling runs in the background every fraction of a second
SETTLED_METRIC = "scout_store_settled_rewards_total"


def updates_of(scout, mid):
    return summary(scout, mid)["update_requests"]


def wait_for_updates(scout, mid, n, timeout=SETTLE_TIMEOUT):
    wait_until(lambda: updates_of(scout, mid) >= n, timeout=timeout,
               message=f"{n} learned rewards in test {mid}")
    assert updates_of(scout, mid) == n, "more rewards learned than expected"


def settled_metric(scout):
    r = scout.get("/metrics")
    assert r.status_code == 200, r.text
    for line in r.text.splitlines():
        if line.startswith(SETTLED_METRIC + " ") or line.startswith(SETTLED_METRIC + "{"):
            return float(line.rsplit(" ", 1)[1])
    pytest.fail(f"/metrics has no {SETTLED_METRIC}", pytrace=False)


def learned_state(scout, mid):
    """What the test has learned: counts and sums per variant, exactly."""
    ps = performance(scout, mid)
    return (updates_of(scout, mid),
            {label: (row["updates"], row["reward_sum"]) for label, row in ps.items()})


def one(scout, mid, rid, value):
    return update(scout, mid, [{"request_id": rid, "reward": value}])


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize("extras, status", [
    ({"reward_wait_seconds": -1}, 400),
    ({"reward_wait_seconds": 2592001}, 400),
    ({"reward_wait_seconds": "60"}, 422),
    ({"default_reward": 0}, 400),                                        # needs a wait
    ({"default_reward": 0, "reward_wait_seconds": 0}, 400),
    ({"default_reward": "0", "reward_wait_seconds": 60}, 422),
    ({"reward_aggregation": "sum"}, 400),                                # needs a wait
    ({"reward_aggregation": "sum", "reward_wait_seconds": 0}, 400),
    ({"reward_aggregation": "max", "reward_wait_seconds": 60}, 400),
    ({"reward_aggregation": 1, "reward_wait_seconds": 60}, 422),
])
def test_invalid_reward_window_settings_are_refused(scout, extras, status):
    r = scout.post("/api/create_model", {"name": "w", "variants": AB, **extras})
    assert_error(r, status)
    assert models(scout) == []           # nothing was created


def test_reward_window_settings_show_in_the_summaries(scout):
    plain = create_test(scout, variants=AB)
    summed = create_test(scout, variants=AB, reward_wait_seconds=2592000, default_reward=-1.5,
                         reward_aggregation="sum")
    first = create_test(scout, variants=AB, reward_aggregation="first")   # no wait needed
    by_id = {m["model_id"]: m for m in models(scout)}
    assert by_id[plain]["reward_wait_seconds"] == 0
    assert by_id[plain]["default_reward"] is None
    assert by_id[plain]["reward_aggregation"] == "all"
    assert by_id[plain]["sticky"] is False
    assert by_id[summed]["reward_wait_seconds"] == 2592000
    assert by_id[summed]["default_reward"] == -1.5
    assert by_id[summed]["reward_aggregation"] == "sum"
    assert by_id[first]["reward_aggregation"] == "first"
    assert by_id[first]["reward_wait_seconds"] == 0
    scout.restart()
    by_id = {m["model_id"]: m for m in models(scout)}
    assert (by_id[summed]["reward_wait_seconds"], by_id[summed]["default_reward"],
            by_id[summed]["reward_aggregation"]) == (2592000, -1.5, "sum")
    assert by_id[first]["reward_aggregation"] == "first"


# --------------------------------------------------------------------------- aggregation


def test_all_learns_every_reward_of_a_request(scout):
    mid = create_test(scout, variants=AB, min_updates=0)
    d = fetch(scout, mid, request_id="r1")
    for value in (1, 0.5):
        out = one(scout, mid, "r1", value)
        assert out["processed_updates"] == 1 and out["redis_hits"] == 1, out
        assert out["duplicate_updates"] == 0 and out["deferred_updates"] == 0, out
        assert out["late_updates"] == 0, out
    assert updates_of(scout, mid) == 2
    assert performance(scout, mid)[d["recommended_variant"]]["reward_sum"] == pytest.approx(1.5)


def test_first_refuses_a_second_reward_for_the_same_request(scout):
    mid = create_test(scout, variants=AB, min_updates=0, reward_aggregation="first")
    d1 = fetch(scout, mid, request_id="r1")
    d2 = fetch(scout, mid, request_id="r2")
    out = one(scout, mid, "r1", 1)
    assert out["processed_updates"] == 1 and out["duplicate_updates"] == 0, out
    out = one(scout, mid, "r1", 1)
    assert out["processed_updates"] == 0, out
    assert out["duplicate_updates"] == 1, out
    assert out["failed_updates"] == 1, out
    assert updates_of(scout, mid) == 1
    # two rewards for one request in the same call: the first counts, the second is a duplicate
    out = update(scout, mid, [{"request_id": "r2", "reward": 1}, {"request_id": "r2", "reward": 1}])
    assert out["processed_updates"] == 1 and out["duplicate_updates"] == 1, out
    assert updates_of(scout, mid) == 2
    sums = {}
    for d in (d1, d2):
        sums[d["recommended_variant"]] = sums.get(d["recommended_variant"], 0) + 1
    ps = performance(scout, mid)
    for label, s in sums.items():
        assert ps[label]["reward_sum"] == pytest.approx(s), ps
    # the record of what was rewarded survives a restart
    before = learned_state(scout, mid)
    scout.restart()
    assert learned_state(scout, mid) == before
    out = one(scout, mid, "r1", 1)
    assert out["duplicate_updates"] == 1 and out["processed_updates"] == 0, out
    assert learned_state(scout, mid) == before


def test_sum_learns_one_event_of_the_summed_rewards_when_the_window_ends(scout):
    mid = create_test(scout, variants=AB, min_updates=0, reward_wait_seconds=WAIT,
                      reward_aggregation="sum")
    d = fetch(scout, mid, request_id="r1")
    label = d["recommended_variant"]
    for value in (2, 3):
        out = one(scout, mid, "r1", value)
        assert out["deferred_updates"] == 1, out
        assert out["failed_updates"] == 0 and out["late_updates"] == 0, out
    assert updates_of(scout, mid) == 0          # nothing learned before the window ends
    wait_for_updates(scout, mid, 1)
    row = performance(scout, mid)[label]
    assert row["updates"] == 1
    assert row["reward_sum"] == pytest.approx(5)
    assert settled_metric(scout) == 1
    time.sleep(0.75)                            # several settle rounds later: still one event
    assert updates_of(scout, mid) == 1
    assert settled_metric(scout) == 1


def test_default_reward_is_learned_for_decisions_without_a_reward(scout):
    mid = create_test(scout, variants=AB, min_updates=0, reward_wait_seconds=WAIT,
                      default_reward=0.25)
    decisions = [fetch(scout, mid, request_id=f"r{i}") for i in range(6)]
    for d in decisions[:2]:
        out = one(scout, mid, d["request_id"], 1)
        assert out["processed_updates"] == 1 and out["deferred_updates"] == 0, out
    assert updates_of(scout, mid) == 2          # rewards in the window are learned at once
    wait_for_updates(scout, mid, 6)
    ps = performance(scout, mid)
    assert sum(row["reward_sum"] for row in ps.values()) == pytest.approx(2 + 4 * 0.25)
    # every decision became exactly one event, of its own variant
    for label in ("a", "b"):
        shown = sum(1 for d in decisions if d["recommended_variant"] == label)
        assert ps[label]["updates"] == shown, (label, ps)
    assert settled_metric(scout) == 4
    time.sleep(0.75)
    assert updates_of(scout, mid) == 6


def test_a_reward_after_the_window_is_late_and_not_learned(scout):
    mid = create_test(scout, variants=AB, min_updates=0, reward_wait_seconds=1)
    fetch(scout, mid, request_id="unrewarded")
    fetch(scout, mid, request_id="rewarded")
    started = time.monotonic()
    assert one(scout, mid, "rewarded", 1)["processed_updates"] == 1
    assert updates_of(scout, mid) == 1
    time.sleep(max(0.0, 1.3 - (time.monotonic() - started)))
    out = update(scout, mid, [{"request_id": "unrewarded", "reward": 1},
                              {"request_id": "rewarded", "reward": 1}])
    assert out["late_updates"] == 2, out
    assert out["processed_updates"] == 0, out
    assert updates_of(scout, mid) == 1
    time.sleep(0.75)                            # no default reward: the window adds nothing
    assert updates_of(scout, mid) == 1
    assert settled_metric(scout) == 0


# --------------------------------------------------------------------------- durability


def test_settled_rewards_survive_a_restart_exactly(scout):
    mid = create_test(scout, variants=AB, min_updates=0, reward_wait_seconds=1,
                      default_reward=0.5, reward_aggregation="sum")
    fetch(scout, mid, request_id="summed")
    fetch(scout, mid, request_id="silent")
    fetch(scout, mid, request_id="summed-once")
    for rid, value in (("summed", 2), ("summed", 3), ("summed-once", 0.25)):
        assert one(scout, mid, rid, value)["deferred_updates"] == 1
    wait_for_updates(scout, mid, 3)
    before = learned_state(scout, mid)
    assert sum(s for _, s in before[1].values()) == pytest.approx(5 + 0.5 + 0.25)
    assert scout.stop(signal.SIGTERM) == 0
    scout.restart()
    assert learned_state(scout, mid) == before
    # the windows stay closed: no second settling, and rewards now are late
    out = update(scout, mid, [{"request_id": r, "reward": 1} for r in ("summed", "silent")])
    assert out["late_updates"] == 2, out
    time.sleep(0.75)
    assert learned_state(scout, mid) == before


@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
def test_a_deferred_sum_acknowledged_before_a_stop_is_learned_after_restart(scout, stop):
    mid = create_test(scout, variants=AB, min_updates=0, reward_wait_seconds=WAIT,
                      reward_aggregation="sum")
    label = fetch(scout, mid, request_id="r1")["recommended_variant"]
    for value in (2, 3):
        assert one(scout, mid, "r1", value)["deferred_updates"] == 1
    if stop == "sigkill":
        scout.kill()
    else:
        assert scout.stop(signal.SIGTERM) == 0
    scout.restart()
    wait_for_updates(scout, mid, 1)
    row = performance(scout, mid)[label]
    assert (row["updates"], row["reward_sum"]) == (1, pytest.approx(5))
