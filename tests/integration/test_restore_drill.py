"""The restore drill of SECURITY.md ("Recovery procedures", item 1 (a): one machine, embedded store)
works as written: its shell block is taken out of SECURITY.md and run verbatim with sh (dash) against a
real scoutd, with only the paths and the port given through the variables the drill itself reads
(SCOUTD, SCOUT_DATA_DIR, SCOUT_PORT; SCOUT_UI_PORT=0 is the server's own setting). After it the
server serves the state of the backup — not what changed after it —, a first backup of the
restored store exists, and the old data directory was kept aside. A damaged backup stops the
drill at its rehearsal with the running server and its data untouched.
"""

import gzip
import os
import re
import signal
import subprocess
import textwrap
import threading
import time

import pytest

import helpers
from helpers import REPO, SCOUTD, Scout, create_test, details, fetch, models, update

SECURITY_MD = REPO / "SECURITY.md"
MARKER = "<!-- restore-drill: embedded"
DRILL_TIMEOUT = 120


def drill_script():
    text = SECURITY_MD.read_text()
    at = text.find(MARKER)
    assert at >= 0, f"no {MARKER!r} block in SECURITY.md"
    m = re.compile(r"\n( *)```sh\n(.*?)\n\1```", re.S).search(text, at)
    assert m and text[at:m.start()].count("\n") <= 1, "the marker is not right above a ```sh block"
    return textwrap.dedent(m.group(2))


def state(scout):
    out = {}
    for m in models(scout):
        perf = details(scout, m["model_id"])["performance_summary"]
        out[m["model_id"]] = (m["name"], m["update_requests"],
                              {k: (row["updates"], row["reward_sum"]) for k, row in perf.items()})
    return out


def listener_pid(port):
    out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True).stdout
    pids = re.findall(r"pid=(\d+)", out)
    return int(pids[0]) if pids else None


def gone(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return re.search(r"^State:\s*Z", f.read(), re.M) is not None
    except FileNotFoundError:
        return True


@pytest.fixture
def server(tmp_path):
    """An embedded-store scoutd as the drill finds one: started by someone else, known by port.
    A thread reaps it when the drill stops it, as an init system would."""
    s = Scout(tmp_path / "machine")
    s.start()
    threading.Thread(target=s.proc.wait, daemon=True).start()
    started = []
    yield s, started
    for pid in started:
        if not gone(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while not gone(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert gone(pid), "the restarted scoutd did not stop"
    s.cleanup()


def run_drill(s, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCOUT_", "REDIS_"))}
    env.update(SCOUTD=SCOUTD, SCOUT_DATA_DIR=str(s.data_dir), SCOUT_PORT=str(s.port), SCOUT_UI_PORT="0", **extra)
    return subprocess.run(["sh", "-c", drill_script()], env=env, capture_output=True, text=True,
                          timeout=DRILL_TIMEOUT, cwd=s.workdir)


def test_the_embedded_restore_drill_works_as_written(server):
    s, started = server
    a = create_test(s, name="headline")
    b = create_test(s, name="offer", policy="linucb", features=["device"])
    for i in range(30):
        fetch(s, a, request_id=f"a{i}")
        update(s, a, [{"request_id": f"a{i}", "reward": i % 3}])
        fetch(s, b, context={"device": ["mobile", "desktop"][i % 2]}, request_id=f"b{i}")
        update(s, b, [{"request_id": f"b{i}", "reward": i % 2}])
    r = s.post("/admin/backup")
    assert r.status_code == 200, r.text
    expected = state(s)
    # What happens after the backup is what the restore takes back.
    create_test(s, name="after-the-backup")
    update(s, a, [{"decision": "A", "reward": 5}] * 10)
    assert state(s) != expected

    p = run_drill(s)
    pid = listener_pid(s.port)
    if pid:
        started.append(pid)
    assert p.returncode == 0, f"the drill failed ({p.returncode})\n{p.stdout}\n{p.stderr}"
    assert "restored tests served: 2 of 2" in p.stdout, p.stdout
    assert pid and pid != s.proc.pid, "the drill did not start scoutd again"
    assert s.proc.returncode == 0, "the old server did not stop cleanly"

    assert state(s) == expected
    # The drill took a first backup of the restored store; its record is what /metrics shows.
    made = sorted(os.listdir(s.data_dir / "backups"))
    assert len([n for n in made if n.endswith(".backup")]) == 1, made
    text = s.get("/metrics").text
    assert float(re.search(r"^scout_last_backup_timestamp_seconds (\S+)$", text, re.M).group(1)) > 0
    aside = [d for d in os.listdir(s.workdir) if d.startswith("data.before-restore.")]
    assert len(aside) == 1, os.listdir(s.workdir)
    assert (s.workdir / aside[0] / "scout.db").exists()
    # It learns on from the restored state.
    update(s, a, [{"decision": "B", "reward": 1}])
    assert state(s)[a][1] == expected[a][1] + 1


def test_a_damaged_backup_stops_the_drill_before_anything_changes(server, tmp_path):
    s, started = server
    create_test(s, name="kept")
    r = s.post("/admin/backup")
    assert r.status_code == 200, r.text
    good = s.data_dir / "backups" / r.json()["file"]
    truncated = tmp_path / "truncated.backup"
    data = gzip.decompress(good.read_bytes())
    truncated.write_bytes(gzip.compress(data[: len(data) // 2]))
    before = state(s)

    p = run_drill(s, BACKUP=str(truncated))
    assert p.returncode == 2, f"{p.returncode}\n{p.stdout}\n{p.stderr}"
    assert "truncated" in p.stderr, p.stderr
    assert s.running() and listener_pid(s.port) == s.proc.pid
    assert state(s) == before
    assert not [d for d in os.listdir(s.workdir) if "before-restore" in d]
