"""`scoutd backup` and `scoutd restore`: a point-in-time copy of a whole store, taken while the
server serves, that restores into an empty embedded store or an empty Redis with every test and
its learned state as they were; a corrupt, truncated or newer file, or a target that holds data,
is refused with nothing changed.

Runs on the suite's store (SCOUT_STORE): the source server uses it, and restores go into a fresh
store of the same kind (a new data dir, or a new password-protected redis-server), except the
migration tests, which go to the other kind.
"""

import gzip
import json
import os
import stat
import subprocess
import threading
import time
import uuid

import pytest

import helpers
from helpers import (SCOUTD, STORE, RedisServer, Scout, create_test, details, fetch, models, update,
                     wait_until)

CLI_TIMEOUT = 60


# --------------------------------------------------------------------------- helpers


def cli(*args, umask=None):
    """Run `scoutd <args>` hermetically (no SCOUT_*/REDIS_* from the caller's shell)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCOUT_", "REDIS_"))}
    return subprocess.run([SCOUTD, *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=CLI_TIMEOUT, preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)


def store_flags(target):
    """The CLI flags naming a target: a RedisServer or a data directory."""
    if isinstance(target, RedisServer):
        return ["--redis", target.url]
    return ["--data-dir", str(target)]


def source_flags(scout):
    return store_flags(helpers.CURRENT_REDIS if STORE == "redis" else scout.data_dir)


def backup(scout, path, *extra):
    p = cli("backup", *source_flags(scout), "--out", path, *extra)
    assert p.returncode == 0, f"backup exited {p.returncode}: {p.stderr}"
    return json.loads(p.stdout)


def restore(target, path, *extra):
    return cli("restore", *store_flags(target), "--in", path, *extra)


def refused(p, *words):
    """A refusal: exit 2 and one line on stderr that says why."""
    assert p.returncode == 2, f"exit {p.returncode}, stdout {p.stdout!r}, stderr {p.stderr!r}"
    assert p.stdout == "", p.stdout
    line = p.stderr.strip()
    assert line and "\n" not in line, f"not one line: {p.stderr!r}"
    for w in words:
        assert w in line, f"{w!r} not in {line!r}"


def lines_of(path):
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f]


def write_lines(path, records):
    with gzip.open(path, "wt") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


def reseal(records):
    """Recomputes the trailer's count and SHA-256 for edited records (the trailer last)."""
    import hashlib
    body = records[:-1]
    h = hashlib.sha256()
    for r in body:
        h.update((json.dumps(r) + "\n").encode())
    return body + [{"type": "trailer", "records": len(body), "sha256": h.hexdigest()}]


def state(scout):
    """What a user sees of every test: its summary counters and, per variant, the learned
    statistics of model_details (sampled figures such as credible intervals left out)."""
    out = {}
    for m in models(scout):
        mid = m["model_id"]
        perf = details(scout, mid)["performance_summary"]
        out[mid] = {
            "name": m["name"], "variants": m["variants"], "created_at": m["created_at"],
            "global_rolled_out": m["global_rolled_out"], "global_variant": m["global_variant"],
            "update_requests": m["update_requests"], "prediction_requests": m["prediction_requests"],
            "arms": {k: {f: row[f] for f in ("predictions", "updates", "reward_sum", "average_reward",
                                              "current_prediction_ratio", "policy_probability")}
                     for k, row in perf.items()},
        }
    return out


def exported(scout, mid):
    """The restored decision log: request id -> reward, from GET /api/export (JSON lines)."""
    r = scout.get(f"/api/export/{mid}", params={"limit": 100000})
    assert r.status_code == 200, r.text
    rows = [json.loads(line) for line in r.text.splitlines() if line.strip()]
    return {row["request_id"]: row for row in rows}


@pytest.fixture
def targets(tmp_path):
    """make(kind=STORE) -> an empty target: a fresh data dir, or a fresh redis-server.
    serve(target) -> a started Scout on it. Everything is stopped at the end."""
    made, servers = [], []

    def make(kind=STORE):
        n = len(made)
        if kind == "redis":
            t = RedisServer(tmp_path / f"target-redis{n}").start()
        else:
            t = tmp_path / f"target{n}" / "data"
            t.mkdir(parents=True)
        made.append(t)
        return t

    def serve(target, env=None):
        n = len(servers)
        args = ["--redis", target.url] if isinstance(target, RedisServer) else []
        s = Scout(tmp_path / f"restored{n}", env=env, extra_args=args)
        if not isinstance(target, RedisServer):
            s.data_dir = target
        servers.append(s)
        return s.start()

    make.serve = serve
    yield make
    problems = []
    for s in servers:
        problems += s.cleanup()
    for t in made:
        if isinstance(t, RedisServer):
            t.stop()
    assert not problems, problems


def populate(scout):
    """Tests of every kind with learned state, pending decisions, a sticky assignment, a
    rollout and a setting; returns {name: id} and the request ids of unrewarded decisions."""
    ids = {}
    ids["plain"] = create_test(scout, name="plain")
    for i in range(40):
        d = fetch(scout, ids["plain"], request_id=f"p{i}")
        update(scout, ids["plain"], [{"request_id": f"p{i}", "reward": (i % 7) * 0.25}])
    ids["contextual"] = create_test(scout, name="contextual", policy="linucb", features=["device", "age"])
    for i in range(30):
        ctx = {"device": ["mobile", "desktop"][i % 2], "age": 20 + i}
        fetch(scout, ids["contextual"], context=ctx, request_id=f"c{i}")
        update(scout, ids["contextual"], [{"request_id": f"c{i}", "reward": 1 if i % 3 else 0}])
    ids["sticky"] = create_test(scout, name="sticky", sticky=True)
    first = fetch(scout, ids["sticky"], user_id="user-7")
    ids["windowed"] = create_test(scout, name="windowed", reward_wait_seconds=3600, reward_aggregation="sum")
    pending = []
    for i in range(5):
        fetch(scout, ids["windowed"], request_id=f"w{i}")
        update(scout, ids["windowed"], [{"request_id": f"w{i}", "reward": 2}])   # deferred until settled
        pending.append(f"w{i}")
    for i in range(5):
        fetch(scout, ids["plain"], request_id=f"open{i}")
        pending.append(f"open{i}")
    ids["rolled"] = create_test(scout, name="rolled", variants={"0": "X", "1": "Y", "2": "Z"})
    fetch(scout, ids["rolled"])
    r = scout.post(f"/api/rollout_global_variant/{ids['rolled']}", {"variant": "Y"})
    assert r.status_code == 200, r.text
    r = scout.post("/admin/model_config", {"min_update_requests": 4})
    assert r.status_code == 200, r.text
    return ids, pending, first["variant_id"]


# --------------------------------------------------------------------------- tests


def test_restore_reproduces_every_test_and_its_learned_state(scout, targets, tmp_path):
    ids, pending, sticky_variant = populate(scout)
    tok = cli("token", "create", *source_flags(scout), "--name", "ops", "--scope", "client")
    assert tok.returncode == 0, tok.stderr
    before = state(scout)
    path = tmp_path / "scout.backup"
    summary = backup(scout, path)          # taken while the server runs
    assert summary["tests"] == 5 and summary["tokens"] == 1 and summary["settings"] >= 1, summary
    assert summary["source"] == ("redis" if STORE == "redis" else "sqlite")

    target = targets()
    p = restore(target, path)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["sha256"] == summary["sha256"]
    restored = targets.serve(target)
    assert state(restored) == before

    # Settings, tokens (their hashes), the sticky user and the rollout came along.
    r = restored.get("/admin/model_config")
    assert r.status_code == 200 and r.json()["min_update_requests"] == 4, r.text
    listed = cli("token", "list", *store_flags(target))
    assert [json.loads(l)["name"] for l in listed.stdout.splitlines()] == ["ops"], listed.stdout
    assert fetch(restored, ids["sticky"], user_id="user-7")["variant_id"] == sticky_variant
    assert fetch(restored, ids["rolled"])["recommended_variant"] == "Y"

    # Pending decisions still join their rewards, and the deferred sums are still pending.
    body = update(restored, ids["plain"], [{"request_id": "open3", "reward": 5}])
    assert body["processed_updates"] == 1 and body["redis_hits"] == 1, body
    assert exported(restored, ids["windowed"]) == exported(scout, ids["windowed"])
    # Both servers go on learning alike from here.
    update(scout, ids["plain"], [{"request_id": "open3", "reward": 5}])
    assert state(restored)[ids["plain"]]["arms"] == state(scout)[ids["plain"]]["arms"]


def test_backup_file_is_private_and_holds_no_token_secret(scout_factory, tmp_path):
    bootstrap = "bootstrap-" + uuid.uuid4().hex + uuid.uuid4().hex
    scout = scout_factory(env={"SCOUT_AUTH_TOKEN": bootstrap})
    admin = {"Authorization": f"Bearer {bootstrap}"}
    r = scout.post("/admin/generate_token", {"name": "api", "scope": "admin"}, headers=admin)
    assert r.status_code == 200, r.text
    secrets = [r.json()["token"], bootstrap]
    tok = cli("token", "create", *source_flags(scout), "--name", "cli")
    assert tok.returncode == 0, tok.stderr
    secrets.append(json.loads(tok.stdout)["token"])
    create_test(scout, name="t")

    path = tmp_path / "private.backup"
    made = cli("backup", *source_flags(scout), "--out", path, umask=0)   # umask 0: the mode is Scout's doing
    assert made.returncode == 0, made.stderr
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o600, oct(mode)
    assert not [n for n in os.listdir(tmp_path) if n.startswith("private.backup.tmp")]
    text = gzip.open(path, "rb").read()
    assert json.loads(made.stdout)["tokens"] == 2
    for secret in secrets:
        assert secret.encode() not in text
        assert secret.split("_", 1)[-1].encode() not in text
    hashes = [r["hash"] for r in map(json.loads, text.splitlines()) if r["type"] == "token"]
    assert len(hashes) == 2 and all(len(h) == 64 for h in hashes)


def test_backup_keeps_an_existing_file_unless_forced(scout, tmp_path):
    create_test(scout, name="t")
    path = tmp_path / "b"
    path.write_bytes(b"precious")
    p = cli("backup", *source_flags(scout), "--out", path)
    refused(p, "already exists", "--force")
    assert path.read_bytes() == b"precious"
    backup(scout, path, "--force")
    assert lines_of(path)[0]["format"] == "scout-backup"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def damaged_files(good, tmp_path):
    """(name, path, words the refusal must contain) for each way a file can be bad."""
    raw = good.read_bytes()
    records = lines_of(good)
    out = []
    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 0x40
    (tmp_path / "flipped").write_bytes(bytes(flipped))
    out.append(("flipped byte", tmp_path / "flipped", ["corrupt"]))
    (tmp_path / "cut").write_bytes(raw[: len(raw) - 40])
    out.append(("truncated gzip", tmp_path / "cut", ["truncated"]))
    write_lines(tmp_path / "no-trailer", records[:-1])
    out.append(("no trailer", tmp_path / "no-trailer", ["truncated", "trailer"]))
    edited = [dict(r) for r in records]
    for r in edited:
        if r["type"] == "reward":
            r["reward"] += 1
            break
    write_lines(tmp_path / "edited", edited)
    out.append(("checksum", tmp_path / "edited", ["corrupt", "SHA-256"]))
    newer = [dict(r) for r in records]
    newer[0]["version"] = 99
    write_lines(tmp_path / "newer", reseal(newer))
    out.append(("newer format", tmp_path / "newer", ["version 99", "newer"]))
    (tmp_path / "plain").write_bytes(gzip.decompress(raw))
    out.append(("not gzip", tmp_path / "plain", ["not a Scout backup"]))
    return out


def test_bad_files_are_refused_and_change_nothing(scout, targets, tmp_path):
    populate(scout)
    good = tmp_path / "good"
    backup(scout, good)
    # An empty target stays empty: not even a database file is made.
    empty = targets()
    # A target that holds data keeps it, even with --force (the file is checked first).
    held = targets()
    other = targets.serve(held)
    create_test(other, name="kept")
    other_state = state(other)
    other.stop()
    for name, path, words in damaged_files(good, tmp_path):
        refused(restore(empty, path), *words)
        refused(restore(held, path, "--force"), *words)
        if isinstance(empty, RedisServer):
            assert empty.cli("DBSIZE") == "0", name
        else:
            assert os.listdir(empty) == [], name
    other.restart()
    assert state(other) == other_state
    # The good file still restores: the refusals left no trace.
    assert restore(empty, good).returncode == 0


def test_restore_into_a_store_holding_data_needs_force(scout, targets, tmp_path):
    populate(scout)
    path = tmp_path / "b"
    backup(scout, path)
    expected = state(scout)
    target = targets()
    other = targets.serve(target)
    old = create_test(other, name="old")
    fetch(other, old)
    other_state = state(other)
    other.stop()

    refused(restore(target, path), "already holds Scout data", "--force")
    other.restart()
    assert state(other) == other_state
    other.stop()

    p = restore(target, path, "--force")
    assert p.returncode == 0, p.stderr
    other.restart()
    assert state(other) == expected   # the old test is gone, the backup's tests are there


def test_backup_under_load_is_one_consistent_point(scout, targets, tmp_path):
    """Threads decide and reward while the backup runs. Every reward acknowledged before the
    backup started is in the restored state, and the restored state is one point in time: the
    learned counts and sums equal those of the rewards joined to the restored decision records."""
    mid = create_test(scout, name="busy", variants={"0": "A", "1": "B", "2": "C"})
    acked, lock, stop = [], threading.Lock(), threading.Event()
    errors = []

    def worker(w):
        s = helpers.requests.Session()
        i = 0
        while not stop.is_set():
            rid = f"w{w}-{i}"
            value = float(1 + (i * 7 + w) % 10)
            try:
                r = s.post(scout.url("/api/fetch_recommended_variant"),
                           json={"cb_model_id": mid, "request_id": rid}, timeout=15)
                assert r.status_code == 200, r.text
                r = s.post(scout.url(f"/api/update_model/{mid}"),
                           json={"updates": [{"request_id": rid, "reward": value}]}, timeout=15)
                assert r.status_code == 200 and r.json()["processed_updates"] == 1, r.text
            except Exception as exc:  # reported below, in the test's thread
                errors.append(exc)
                return
            with lock:
                acked.append((time.monotonic(), rid, value))
            i += 1

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    wait_until(lambda: len(acked) >= 1000, 60, message="1000 rewards under load")
    started = time.monotonic()
    path = tmp_path / "busy.backup"
    try:
        summary = backup(scout, path)
        time.sleep(0.2)   # the load goes on past the backup's end too
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    before_backup = {rid: v for t, rid, v in acked if t < started}

    target = targets()
    assert restore(target, path).returncode == 0
    restored = targets.serve(target)
    log = exported(restored, mid)
    for rid, v in before_backup.items():
        assert rid in log and log[rid]["reward"] == v, f"acknowledged reward {rid} missing"
    all_sent = {rid: v for _, rid, v in acked}
    assert set(log) <= set(all_sent)
    assert len(log) == summary["rewards"] >= len(before_backup)
    assert len(all_sent) > len(log), "the load did not go on past the backup"

    perf = details(restored, mid)["performance_summary"]
    for vid, row in perf.items():
        mine = [r["reward"] for r in log.values() if str(r["variant_id"]) == vid]
        assert row["updates"] == len(mine), (vid, row, len(mine))
        assert row["reward_sum"] == pytest.approx(sum(mine), abs=1e-9), (vid, row)
    m = [m for m in models(restored) if m["model_id"] == mid][0]
    assert m["update_requests"] == len(log)
    assert m["prediction_requests"] >= len(log)
    # The source learned at least as much by now: the copy is of a moment it went through.
    assert [m for m in models(scout) if m["model_id"] == mid][0]["update_requests"] >= len(log)


def test_backup_migrates_to_the_other_store(scout, targets, tmp_path):
    """Embedded -> Redis (on the SQLite run) and Redis -> embedded (on the Redis run)."""
    populate(scout)
    expected = state(scout)
    path = tmp_path / "b"
    backup(scout, path)
    target = targets("sqlite" if STORE == "redis" else "redis")
    p = restore(target, path)
    assert p.returncode == 0, p.stderr
    migrated = targets.serve(target)
    assert state(migrated) == expected
    # And it learns on: a new reward on both moves both alike.
    mid = next(k for k, v in expected.items() if v["name"] == "plain")
    for s in (scout, migrated):
        update(s, mid, [{"decision": "A", "reward": 3}])
    # (policy_probability is an estimate a server may reuse for 20 ms after a reward)
    wait_until(lambda: state(migrated)[mid]["arms"] == state(scout)[mid]["arms"], 5, interval=0.05,
               message="the same learned state on both")


@pytest.mark.skipif(STORE != "redis", reason="only the shared store trims events behind snapshots")
def test_redis_backup_of_trimmed_events_restores_from_its_snapshot_into_either_store(scout_factory, targets,
                                                                                     tmp_path):
    scout = scout_factory(env={"SCOUT_SNAPSHOT_INTERVAL": "1", "SCOUT_EVENT_RETENTION": "0"})
    mid = create_test(scout, name="trimmed")
    for i in range(6):
        update(scout, mid, [{"decision": "A" if j % 3 else "B", "reward": (i + j) % 5} for j in range(100)])
    redis = helpers.CURRENT_REDIS
    wait_until(lambda: redis.cli("HGET", f"scout:{{{mid}}}:snap", "trimmed"), 20, interval=0.2,
               message="events trimmed behind a snapshot")
    for i in range(3):   # events after the snapshot too
        update(scout, mid, [{"decision": "A", "reward": 1}])
    expected = state(scout)
    path = tmp_path / "b"
    summary = backup(scout, path)
    assert summary["snapshots"] == 1 and summary["rewards"] < 603, summary

    target = targets("redis")
    assert restore(target, path).returncode == 0
    assert state(targets.serve(target)) == expected

    # The embedded store keeps the snapshot as the test's state and folds only the events after
    # it, so it restores there too, and keeps it across a restart.
    embedded = targets("sqlite")
    p = restore(embedded, path)
    assert p.returncode == 0, p.stderr
    restored = targets.serve(embedded)
    assert state(restored) == expected
    restored.restart()
    assert state(restored) == expected
    # It learns on from there like the source.
    for s in (scout, restored):
        update(s, mid, [{"decision": "B", "reward": 4}])
    # (policy_probability is an estimate a server may reuse for 20 ms after a reward)
    wait_until(lambda: state(restored)[mid]["arms"] == state(scout)[mid]["arms"], 5, interval=0.05,
               message="the same learned state on both")

    # And back: a backup of that embedded store restores into Redis with the same state.
    again = tmp_path / "again"
    p = cli("backup", "--data-dir", embedded, "--out", again)
    assert p.returncode == 0, p.stderr
    expected = state(restored)
    redis2 = targets("redis")
    assert restore(redis2, again).returncode == 0
    assert state(targets.serve(redis2)) == expected
