"""Backups on demand and their monitoring: POST /admin/backup and `scoutd backup --out-dir` write
time-named files (mode 0600) into a directory, keep the newest N, refuse a second backup while
one runs (409 / exit 2), and record every backup in the store, so every server on that store —
not only the one that wrote it — exports scout_last_backup_timestamp_seconds and
scout_last_backup_size_bytes (0 until the first backup).

Runs on the suite's store (SCOUT_STORE); on Redis "another replica" is a second scoutd on the
same Redis, on the embedded store it is the CLI, a second process on the same data directory.
"""

import fcntl
import json
import os
import re
import stat
import subprocess
import time

import pytest

import helpers
from helpers import SCOUTD, STORE, assert_error, create_test, free_port, update

NAME = re.compile(r"^scout-\d{8}T\d{6}\.\d{3}Z\.backup$")
CLI_TIMEOUT = 60


def cli(*args, env=None):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SCOUT_", "REDIS_"))}
    base.update(env or {})
    return subprocess.run([SCOUTD, *map(str, args)], capture_output=True, text=True, env=base, timeout=CLI_TIMEOUT)


def store_flags(scout):
    return ["--redis", helpers.CURRENT_REDIS.url] if STORE == "redis" else ["--data-dir", str(scout.data_dir)]


def metric(scout, name):
    r = scout.get("/metrics")
    assert r.status_code == 200, r.text
    m = re.search(rf"^{name} (\S+)$", r.text, re.M)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))


def backups(directory):
    return sorted(n for n in os.listdir(directory) if NAME.match(n))


def post_backup(scout, body=None, **kw):
    r = scout.post("/admin/backup", body, **kw) if body is not None else scout.post("/admin/backup", data=b"", **kw)
    return r


def test_no_backup_reads_zero_then_the_endpoint_writes_a_private_file_and_records_it(scout, tmp_path):
    mid = create_test(scout, name="kept")
    update(scout, mid, [{"decision": "A", "reward": 1}] * 5)
    assert metric(scout, "scout_last_backup_timestamp_seconds") == 0
    assert metric(scout, "scout_last_backup_size_bytes") == 0

    before = time.time()
    r = post_backup(scout)
    assert r.status_code == 200, r.text
    body = r.json()
    assert NAME.match(body["file"]), body
    assert body["tests"] == 1 and body["rewards"] == 5 and body["recorded"] is True, body
    assert body["keep"] == 7 and body["pruned"] == 0
    path = scout.data_dir / "backups" / body["file"]
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    assert st.st_size == body["size"] > 0
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700

    # The metrics say the same, from the store.
    ts = metric(scout, "scout_last_backup_timestamp_seconds")
    assert before - 1 <= ts <= time.time() + 1, ts
    assert metric(scout, "scout_last_backup_size_bytes") == body["size"]

    # It is a backup scoutd restores: every test comes back, and the restored store has no
    # record of backups of its own yet (the record is not part of the data).
    target = tmp_path / "restored" / "data"
    target.mkdir(parents=True)
    p = cli("restore", "--data-dir", target, "--in", path)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["tests"] == 1
    restored = helpers.Scout(tmp_path / "restored")
    restored.data_dir = target
    restored.start()
    try:
        assert metric(restored, "scout_last_backup_timestamp_seconds") == 0
        assert [m["model_id"] for m in helpers.models(restored)] == [mid]
    finally:
        assert restored.stop() == 0


def test_a_backup_shows_in_the_metrics_of_every_server_on_the_store(scout_factory, tmp_path):
    a = scout_factory()
    servers = [a, scout_factory()] if STORE == "redis" else [a]
    create_test(a, name="shared")
    r = post_backup(a, {"keep": 3})
    assert r.status_code == 200, r.text
    first = r.json()
    for s in servers:
        helpers.wait_until(lambda: metric(s, "scout_last_backup_size_bytes") == first["size"], 5,
                           message="the endpoint's backup in every server's metrics")

    # A backup by the CLI (a CronJob in another pod) shows up the same way.
    time.sleep(0.01)
    p = cli("backup", *store_flags(a), "--out-dir", tmp_path / "cron", "--keep", "2")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["recorded"] is True and out["pruned"] == 0, out
    assert os.path.basename(out["file"]) in backups(tmp_path / "cron")
    created = helpers.parse_iso_utc(out["created"]).timestamp()
    for s in servers:
        assert abs(metric(s, "scout_last_backup_timestamp_seconds") - created) < 0.01
        assert metric(s, "scout_last_backup_size_bytes") == out["size"]
        assert metric(s, "scout_last_backup_timestamp_seconds") > helpers.parse_iso_utc(first["created"]).timestamp()


def test_backups_keep_the_newest_n_and_touch_nothing_else(scout_factory, tmp_path):
    scout = scout_factory(env={"SCOUT_BACKUP_KEEP": "2"})
    directory = scout.data_dir / "backups"
    made = []
    for _ in range(3):
        r = post_backup(scout)
        assert r.status_code == 200, r.text
        made.append(r.json()["file"])
    assert made == sorted(made) and len(set(made)) == 3, made   # names sort in time order
    (directory / "notes.txt").write_text("mine")
    (directory / "scout-manual.backup").write_text("mine too")
    assert backups(directory) == made[1:]            # SCOUT_BACKUP_KEEP=2
    r = post_backup(scout, {"keep": 1})
    assert r.status_code == 200 and r.json()["pruned"] == 2, r.text
    assert backups(directory) == [r.json()["file"]]
    assert (directory / "notes.txt").read_text() == "mine"
    assert (directory / "scout-manual.backup").exists()

    # The CLI prunes the same way, with --keep or SCOUT_BACKUP_KEEP.
    flags = store_flags(scout)
    for _ in range(2):
        p = cli("backup", *flags, "--out-dir", directory, env={"SCOUT_BACKUP_KEEP": "2"})
        assert p.returncode == 0, p.stderr
    assert len(backups(directory)) == 2
    p = cli("backup", *flags, "--out-dir", directory, "--keep", "1")
    assert p.returncode == 0 and json.loads(p.stdout)["pruned"] == 2, p.stdout + p.stderr
    assert len(backups(directory)) == 1


def test_a_second_backup_while_one_runs_is_refused(scout, tmp_path):
    directory = scout.data_dir / "backups"
    assert post_backup(scout).status_code == 200
    # A backup in progress elsewhere (another replica on this data dir, or the CLI) holds the
    # directory's lock; hold it the same way here.
    with open(directory / ".scout-backup.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert_error(post_backup(scout), 409)
        p = cli("backup", *store_flags(scout), "--out-dir", directory)
        assert p.returncode == 2 and "already running" in p.stderr, p.stderr
        assert len(backups(directory)) == 1
    assert post_backup(scout).status_code == 200
    assert len(backups(directory)) == 2


def test_concurrent_requests_get_one_backup_each_or_409(scout):
    """Real concurrency: with enough data that a backup takes a while, parallel requests either
    succeed one after another or are refused with 409 — never two files from one moment, never
    a 5xx."""
    import concurrent.futures
    mid = create_test(scout, name="big")
    for _ in range(20):
        update(scout, mid, [{"decision": "A", "reward": 1, "context": {"k": "v" * 200}}] * 500)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: helpers.requests.post(scout.url("/admin/backup"), timeout=60), range(4)))
    codes = sorted(r.status_code for r in answers)
    assert set(codes) <= {200, 409} and 200 in codes, codes
    assert len(backups(scout.data_dir / "backups")) == codes.count(200)


def test_backup_errors_are_json(scout_factory):
    scout = scout_factory()
    assert_error(post_backup(scout, {"keep": 0}), 400)
    assert_error(post_backup(scout, {"keep": 1001}), 400)
    assert_error(post_backup(scout, {"keep": "3"}), 422)
    assert_error(post_backup(scout, [3]), 422)
    assert_error(scout.post("/admin/backup", data=b"{"), 400)
    assert_error(scout.get("/admin/backup"), 405)
    # A backup directory that cannot be made: 500, nothing recorded.
    (scout.data_dir / "backups").write_text("a file where the directory should be")
    assert_error(post_backup(scout), 500)
    assert metric(scout, "scout_last_backup_timestamp_seconds") == 0


@pytest.mark.parametrize("keep", ["seven", "0", "1001"])
def test_a_bad_backup_keep_setting_stops_scoutd(tmp_path, keep):
    p = subprocess.run([SCOUTD, "--port", str(free_port()), "--ui-port", "0", "--data-dir", str(tmp_path)],
                       env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SCOUT_BACKUP_KEEP": keep},
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 2 and "SCOUT_BACKUP_KEEP" in p.stderr, (p.returncode, p.stderr)


def test_backup_needs_an_admin_token_when_protected(scout_factory):
    admin = "sct_" + "a" * 43
    scout = scout_factory(env={"SCOUT_PROTECTED_API": "true", "SCOUT_AUTH_TOKEN": admin})
    assert_error(post_backup(scout), 401)
    client = scout.post("/admin/generate_token", {"scope": "client"},
                        headers={"Authorization": f"Bearer {admin}"}).json()["token"]
    assert_error(post_backup(scout, headers={"Authorization": f"Bearer {client}"}), 403)
    r = post_backup(scout, headers={"Authorization": f"Bearer {admin}"})
    assert r.status_code == 200, r.text
    # The file holds the hash of the client token, never a secret.
    import gzip
    text = gzip.open(scout.data_dir / "backups" / r.json()["file"], "rt").read()
    assert client not in text and admin not in text
    assert client[4:] not in text


def test_cli_out_dir_flags_are_checked(scout, tmp_path):
    flags = store_flags(scout)
    for args in (["--out-dir", tmp_path, "--keep", "0"], ["--out-dir", tmp_path, "--keep", "x"],
                 ["--out", tmp_path / "f", "--keep", "2"], ["--out", tmp_path / "f", "--out-dir", tmp_path],
                 ["--out-dir", tmp_path, "--force"]):
        p = cli("backup", *flags, *map(str, args))
        assert p.returncode == 2 and p.stdout == "", (args, p.stdout, p.stderr)
    p = cli("backup", *flags, "--out-dir", tmp_path, env={"SCOUT_BACKUP_KEEP": "0"})
    assert p.returncode == 2 and "SCOUT_BACKUP_KEEP" in p.stderr, p.stderr
    assert backups(tmp_path) == []
