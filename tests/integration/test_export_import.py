"""One test moved between installations: GET /admin/tests/{id}/export answers it as one JSON
document (definition, counters, learned state, and on request its reward events) and POST
/admin/tests/import makes it on another installation, where it serves at once with the same
learned state, learns on exactly like the original, and keeps that state across a restart.

Runs on the suite's store (SCOUT_STORE): the exporting server uses it; the importing
installations are fresh ones of either kind (their own data dir, or their own redis-server),
so the embedded store -> Redis move and back are both covered.
"""

import copy
import json

import pytest

from helpers import (STORE, RedisServer, Scout, assert_error, create_test, details, fetch, models,
                     update, wait_until)

OTHER = "sqlite" if STORE == "redis" else "redis"
# Figures model_details estimates by sampling or over a recent window, or throttles (the policy's
# probabilities are re-estimated at most every 20 ms): not part of the learned state.
NOT_STATE = ("ci_low", "ci_high", "probability_best", "current_prediction_ratio", "policy_probability")


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def installation(tmp_path):
    """make(kind=STORE, env=None) -> a started Scout on a store of its own (a fresh data dir, or a
    fresh password-protected redis-server): another installation. All stopped at the end."""
    servers, redises = [], []

    def make(kind=STORE, env=None):
        n = len(servers)
        args = []
        if kind == "redis":
            redis = RedisServer(tmp_path / f"other-redis{n}").start()
            redises.append(redis)
            args = ["--redis", redis.url]
        s = Scout(tmp_path / f"other{n}", env=env, extra_args=args)
        servers.append(s)
        return s.start()

    yield make
    problems = []
    for s in servers:
        problems += s.cleanup()
    for r in redises:
        r.stop()
    assert not problems, problems


def export(scout, mid, events=None, headers=None):
    params = {} if events is None else {"events": "true" if events else "false"}
    r = scout.get(f"/admin/tests/{mid}/export", params=params, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    return r.json()


def import_test(scout, doc, headers=None, **options):
    r = scout.post("/admin/tests/import", dict(doc, **options), headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def learned(scout, mid):
    """What the test learned as model_details shows it: per variant the counts, sums, means and
    posterior mean (Monte Carlo figures left out), the policy's probabilities, and the
    contextual model; plus the summary's counters."""
    d = details(scout, mid)
    keep = ("name", "variants", "created_at", "global_rolled_out", "global_variant", "update_requests",
            "prediction_requests", "policy", "features")
    return {"summary": {k: d[k] for k in keep}, "performance_summary": state_only(d["performance_summary"]),
            "contextual_model": state_only(d["contextual_model"])}


def state_only(value):
    """value without the NOT_STATE figures, at any depth."""
    if isinstance(value, dict):
        return {k: state_only(v) for k, v in value.items() if k not in NOT_STATE}
    if isinstance(value, list):
        return [state_only(v) for v in value]
    return value


def teach_plain(scout, mid, rounds=30):
    for i in range(rounds):
        rid = f"p{i}"
        fetch(scout, mid, request_id=rid)
        update(scout, mid, [{"request_id": rid, "reward": (i % 7) * 0.25}])


def teach_contextual(scout, mid, rounds=40, prefix="c"):
    for i in range(rounds):
        ctx = {"device": ["mobile", "desktop", "tablet"][i % 3], "age": 18 + (i * 7) % 50, "returning": i % 4 == 0}
        rid = f"{prefix}{i}"
        fetch(scout, mid, context=ctx, request_id=rid)
        update(scout, mid, [{"request_id": rid, "reward": 1 if (i % 3 == 0) == (i % 2 == 0) else 0}])


def same_rewards(servers_ids, updates):
    for s, mid in servers_ids:
        update(s, mid, updates)


# --------------------------------------------------------------------------- moving a test


@pytest.mark.parametrize("kind", [STORE, OTHER])
def test_imported_test_has_the_learned_state_of_the_exported_one(scout, installation, kind):
    mid = create_test(scout, name="headline", variants={"0": "Save time", "1": "Save money", "2": "Free"})
    teach_plain(scout, mid)
    before = learned(scout, mid)
    doc = export(scout, mid)
    assert doc["format"] == "scout-test-export" and doc["version"] == 1 and "events" not in doc
    assert doc["source"] == ("redis" if STORE == "redis" else "sqlite") and doc["updates"] == 30

    target = installation(kind)
    got = import_test(target, doc)
    new = got["model_id"]
    assert new != mid and got["name"] == "headline" and got["updates"] == 30 and got["events"] == 0, got
    assert learned(target, new) == before
    # It serves decisions at once.
    assert fetch(target, new)["recommended_variant"] in ("Save time", "Save money", "Free")


@pytest.mark.parametrize("kind", [STORE, OTHER])
def test_contextual_model_moves_exactly(scout, installation, kind):
    for policy in ("linucb", "lints"):
        mid = create_test(scout, name=f"ctx-{policy}", policy=policy, features=["device", "age", "returning"])
        teach_contextual(scout, mid)
        before = learned(scout, mid)
        assert before["contextual_model"], before
        target = installation(kind)
        new = import_test(target, export(scout, mid))["model_id"]
        assert learned(target, new) == before
        ctx = {"device": "tablet", "age": 33, "returning": True}
        p_src = fetch(scout, mid, context=ctx, return_probabilities=True)["probabilities"]
        p_dst = fetch(target, new, context=ctx, return_probabilities=True)["probabilities"]
        assert p_dst == p_src


@pytest.mark.parametrize("kind", [STORE, OTHER])
def test_imported_test_learns_on_exactly_like_the_original(scout, installation, kind):
    mid = create_test(scout, name="ctx", policy="linucb", features=["device", "age", "returning"])
    teach_contextual(scout, mid)
    target = installation(kind)
    new = import_test(target, export(scout, mid))["model_id"]
    # The same rewards to both, with and without context, through both ways of naming a variant.
    for i in range(12):
        ctx = {"device": ["mobile", "desktop"][i % 2], "age": 20 + i, "returning": i % 3 == 0}
        for s, t in ((scout, mid), (target, new)):
            update(s, t, [{"decision": "A" if i % 2 else "B", "reward": (i % 4) / 3, "context": ctx},
                          {"variant_id": 1, "reward": 1}])
    assert learned(target, new)["performance_summary"] == learned(scout, mid)["performance_summary"]
    assert learned(target, new)["contextual_model"] == learned(scout, mid)["contextual_model"]
    assert learned(target, new)["summary"]["update_requests"] == learned(scout, mid)["summary"]["update_requests"]


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_imported_state_survives_a_restart_of_the_importing_server(scout, installation, kind):
    mid = create_test(scout, name="ctx", policy="lints", features=["device", "age"])
    teach_contextual(scout, mid)
    plain = create_test(scout, name="plain")
    teach_plain(scout, plain)
    target = installation(kind)
    ctx_new = import_test(target, export(scout, mid, events=True))["model_id"]
    plain_new = import_test(target, export(scout, plain))["model_id"]
    # Rewards after the import are folded on top of the imported state, here and after the restart.
    same_rewards([(scout, plain), (target, plain_new)], [{"decision": "B", "reward": 2.5}] * 3)
    same_rewards([(scout, mid), (target, ctx_new)], [{"decision": "A", "reward": 1, "context": {"device": "mobile"}}])
    expected = {ctx_new: learned(scout, mid), plain_new: learned(scout, plain)}
    target.restart()
    assert {t: learned(target, t) for t in expected} == expected
    # Twice: the events it carried stay history, never folded in on a later start either.
    target.restart()
    assert {t: learned(target, t) for t in expected} == expected


@pytest.mark.skipif(STORE != "redis", reason="replicas share a store only on Redis")
def test_every_replica_of_the_importing_installation_serves_the_imported_state(scout, scout_factory, installation):
    origin = installation("sqlite")
    mid = create_test(origin, name="ctx", policy="linucb", features=["device", "age", "returning"])
    teach_contextual(origin, mid)
    r = origin.post(f"/api/rollout_global_variant/{mid}", {"variant": "B"})
    assert r.status_code == 200, r.text
    replica = scout_factory()                 # a second replica on the suite's Redis, beside `scout`
    new = import_test(scout, export(origin, mid, events=True))["model_id"]
    expected = learned(origin, mid)
    # The learned state comes with the test; its decision counts follow within a second or so.
    wait_until(lambda: any(m["model_id"] == new for m in models(replica)), 10, message="the replica sees the test")
    assert learned(replica, new)["contextual_model"] == expected["contextual_model"]
    wait_until(lambda: learned(replica, new) == expected, 10, message="the replica's counts of the imported test")
    # Rewards through either replica are learned by both, on top of the imported state.
    same_rewards([(origin, mid), (replica, new)], [{"decision": "B", "reward": 1, "context": {"device": "tablet"}}])
    expected = learned(origin, mid)
    wait_until(lambda: learned(scout, new) == expected, 10, message="the importing replica learns the reward")
    assert learned(replica, new) == expected
    replica.restart()
    assert learned(replica, new) == expected


def test_events_round_trip_as_history(scout, installation):
    mid = create_test(scout, name="with events")
    for i in range(20):
        update(scout, mid, [{"decision": i % 2, "reward": i / 4, "context": {"device": f"d{i % 3}"}}])
    doc = export(scout, mid, events=True)
    assert doc["events_included"] is True
    events = doc["events"]
    assert [(e["variant"], e["reward"]) for e in events] == [(i % 2, i / 4) for i in range(20)]
    assert [json.loads(e["context"]) for e in events] == [{"device": f"d{i % 3}"} for i in range(20)]
    assert all(e["ts"] > 1.6e9 for e in events)

    target = installation(OTHER)
    got = import_test(target, doc)
    assert got["events"] == 20, got
    # Carried, not learned twice: the counts are the source's.
    assert learned(target, got["model_id"]) == learned(scout, mid)
    # And exported again from there, the same history comes out.
    again = export(target, got["model_id"], events=True)["events"]
    assert [(e["variant"], e["reward"], e["context"], e["ts"]) for e in again] == \
        [(e["variant"], e["reward"], e["context"], e["ts"]) for e in events]


def test_counters_rollout_and_creation_time_come_along(scout, installation):
    mid = create_test(scout, name="rolled", variants={"0": "X", "1": "Y", "2": "Z"})
    for i in range(9):
        fetch(scout, mid, request_id=f"r{i}")
    r = scout.post(f"/api/rollout_global_variant/{mid}", {"variant": "Y"})
    assert r.status_code == 200, r.text
    source = [m for m in models(scout) if m["model_id"] == mid][0]
    target = installation()
    new = import_test(target, export(scout, mid), name="rolled (moved)")["model_id"]
    moved = [m for m in models(target) if m["model_id"] == new][0]
    assert moved["name"] == "rolled (moved)"
    for k in ("created_at", "prediction_requests", "global_variant", "variant_map", "last_prediction_at"):
        assert moved[k] == source[k], k
    perf_src, perf_dst = details(scout, mid)["performance_summary"], details(target, new)["performance_summary"]
    assert {k: v["predictions"] for k, v in perf_dst.items()} == {k: v["predictions"] for k, v in perf_src.items()}
    assert fetch(target, new)["recommended_variant"] == "Y"


def test_keep_id_keeps_the_id_and_a_taken_one_is_a_409(scout, installation):
    mid = create_test(scout, name="kept")
    teach_plain(scout, mid, rounds=5)
    doc = export(scout, mid)
    target = installation()
    assert import_test(target, doc, keep_id=True)["model_id"] == mid
    before = models(target)
    r = target.post("/admin/tests/import", dict(doc, keep_id=True))
    assert_error(r, 409)
    assert "exists" in r.json()["detail"]
    assert models(target) == before
    # Without keep_id the same document makes a second, separate test.
    other = import_test(target, doc)["model_id"]
    assert other != mid and len(models(target)) == 2
    # On the installation it came from, its own id is taken too.
    assert_error(scout.post("/admin/tests/import", dict(doc, keep_id=True)), 409)


def bad_documents(doc):
    """(why, body, status, words in the detail) for each way a document can be refused."""
    out = []

    def edited(fn):
        d = copy.deepcopy(doc)
        fn(d)
        return d

    out.append(("not JSON", b'{"format": "scout-test-export", ', 400, ["JSON"]))
    out.append(("not an object", [doc], 422, ["not a Scout test export"]))
    out.append(("another format", edited(lambda d: d.update(format="scout-backup")), 422, ["not a Scout test export"]))
    out.append(("newer version", edited(lambda d: d.update(version=2)), 422, ["newer format"]))
    out.append(("version not an integer", edited(lambda d: d.update(version="1")), 422, ["version"]))
    out.append(("no snapshot", edited(lambda d: d.pop("snapshot")), 422, ["snapshot"]))
    out.append(("state not base64", edited(lambda d: d["snapshot"].update(state="!!not base64!!")), 422, ["base64"]))
    out.append(("state cut short", edited(lambda d: d["snapshot"].update(state=d["snapshot"]["state"][:40])), 422,
                ["learned state"]))

    def more_variants(d):
        definition = json.loads(d["test"]["definition"])
        definition["variants"]["7"] = "extra"
        d["test"]["definition"] = json.dumps(definition)
    out.append(("state of other variants", edited(more_variants), 422, ["learned state", "variants"]))

    def other_policy(d):
        definition = json.loads(d["test"]["definition"])
        definition["policy"] = "linucb"
        d["test"]["definition"] = json.dumps(definition)
    out.append(("state of another policy", edited(other_policy), 422, ["learned state"]))
    out.append(("definition not JSON", edited(lambda d: d["test"].update(definition="{nope")), 422, ["definition"]))
    out.append(("unknown variant in an event", edited(lambda d: d["events"][0].update(variant=9)), 422, ["variant 9"]))
    out.append(("event of another test", edited(lambda d: d["events"][0].update(test="x" * 36)), 422, ["test"]))
    out.append(("record of the wrong type", edited(lambda d: d["arms"][0].update(type="reward")), 422, ["arm"]))
    # 10000 events (the cap of one import) hardly fit the 1 MiB a request body may have.
    out.append(("too many events", edited(lambda d: d.update(events=d["events"] * 5001)), 413, []))
    out.append(("keep_id not a boolean", edited(lambda d: d.update(keep_id="yes")), 422, ["keep_id"]))
    out.append(("empty name", edited(lambda d: d.update(name="")), 400, ["name"]))
    return out


def test_bad_documents_are_refused_and_create_nothing(scout, installation):
    mid = create_test(scout, name="good")
    update(scout, mid, [{"decision": "A", "reward": 1}, {"decision": "B", "reward": 0, "context": {"k": 1}}])
    doc = export(scout, mid, events=True)
    target = installation()
    for why, body, status, words in bad_documents(doc):
        if isinstance(body, bytes):
            r = target.post("/admin/tests/import", data=body, headers={"Content-Type": "application/json"})
        else:
            r = target.post("/admin/tests/import", body)
        assert r.status_code == status, (why, r.status_code, r.text)
        assert_error(r, status)
        detail = r.json()["detail"]
        for w in words:
            assert w in detail, (why, w, detail)
        assert models(target) == [], why
    # The good document still imports: the refusals left nothing behind.
    assert import_test(target, doc, keep_id=True)["model_id"] == mid
    target.restart()
    assert [m["model_id"] for m in models(target)] == [mid]


def test_export_of_too_many_events_is_a_413_that_points_to_events_false(scout):
    mid = create_test(scout, name="busy")
    for _ in range(11):
        update(scout, mid, [{"decision": "A", "reward": 1}] * 1000)
    r = scout.get(f"/admin/tests/{mid}/export", params={"events": "true"})
    assert_error(r, 413)
    assert "events=false" in r.json()["detail"]
    doc = export(scout, mid, events=False)
    assert doc["updates"] == 11000 and "events" not in doc
    assert_error(scout.get(f"/admin/tests/{mid}/export", params={"events": "maybe"}), 400)
    assert_error(scout.get("/admin/tests/00000000-0000-4000-8000-000000000000/export"), 404)


def test_both_endpoints_need_an_admin_token_when_protected(scout_factory, installation):
    admin = "export-admin-" + "a" * 40
    src = scout_factory(env={"SCOUT_PROTECTED_API": "true", "SCOUT_AUTH_TOKEN": admin})
    auth = {"Authorization": f"Bearer {admin}"}
    r = src.post("/api/create_model", {"name": "guarded", "variants": {"0": "A", "1": "B"}}, headers=auth)
    assert r.status_code == 200, r.text
    mid = r.json()["model_id"]
    r = src.post("/admin/generate_token", {"name": "app", "scope": "client"}, headers=auth)
    assert r.status_code == 200, r.text
    client = {"Authorization": f"Bearer {r.json()['token']}"}
    assert_error(src.get(f"/admin/tests/{mid}/export"), 401)
    assert_error(src.get(f"/admin/tests/{mid}/export", headers=client), 403)
    doc = export(src, mid, headers=auth)

    dst = installation(env={"SCOUT_PROTECTED_API": "true", "SCOUT_AUTH_TOKEN": admin})
    assert_error(dst.post("/admin/tests/import", doc), 401)
    assert_error(dst.post("/admin/tests/import", doc, headers={"Authorization": "Bearer wrong-" + "x" * 40}), 401)
    r = dst.post("/admin/generate_token", {"name": "app", "scope": "client"}, headers=auth)
    assert_error(dst.post("/admin/tests/import", doc, headers={"Authorization": f"Bearer {r.json()['token']}"}), 403)
    r = dst.get("/api/models", headers=auth)
    assert r.status_code == 200 and r.json() == [], r.text
    assert import_test(dst, doc, headers=auth)["name"] == "guarded"


def test_answers_match_the_openapi_document(scout, installation):
    """The export and the import answer what /openapi.json documents for them."""
    from test_openapi import Validator, load_doc
    spec = load_doc(scout)
    v = Validator(spec)
    mid = create_test(scout, name="documented", policy="linucb", features=["device"])
    update(scout, mid, [{"decision": "A", "reward": 1, "context": {"device": "mobile"}}])
    for events in (False, True):
        doc = export(scout, mid, events=events)
        assert v.errors({"$ref": "#/components/schemas/TestExport"}, doc) == []
        got = import_test(installation(), doc, name="documented (moved)")
        assert v.errors({"$ref": "#/components/schemas/TestImported"}, got) == []
        sent = dict(doc, name="documented (moved)")
        assert v.errors({"$ref": "#/components/schemas/TestImportRequest"}, sent, strict=False) == []
