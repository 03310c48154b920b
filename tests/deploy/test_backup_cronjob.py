"""test_backup_cronjob.py — the backup schedule example (deploy/k8s-examples/backup-cronjob.yaml) and
its restore Job (restore-job.yaml) beside the manifests of k8s/ and k8s/security/.

Applied together they still meet every checklist item of the security guide (k8s_checks.check_all
finds nothing), the NetworkPolicies allow exactly the guide's flows (the Jobs' pods are
`component: backend`, so they reach Redis and nothing new opens), they validate against the
Kubernetes schemas, and they use the backend's image, settings and secrets. Then the CronJob's
command runs, as written, against a real redis-server with a real scoutd: the file it writes is
a backup, and the restore Job's command brings it back into an empty Redis.
Run: /usr/bin/python3 -m pytest tests/deploy/test_backup_cronjob.py
"""

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import k8s_checks as kc  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
SECURITY = K8S / "security"
EXAMPLES = REPO / "deploy" / "k8s-examples"
CRONJOB = EXAMPLES / "backup-cronjob.yaml"
RESTORE = EXAMPLES / "restore-job.yaml"


def objects():
    return kc.load_objects([SECURITY, K8S, CRONJOB, RESTORE])


def find(objs, kind, name):
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def job_pod(objs, kind, name):
    meta, spec = kc.pod_template(find(objs, kind, name))
    return meta, spec


def test_checker_finds_no_problem_with_the_jobs_beside_the_manifests():
    assert kc.check_all(objects()) == []


def test_allowed_flows_stay_exactly_the_guides_list():
    assert kc.compute_flows(objects()) == kc.expected_flows(allow_external=True)


def test_the_checker_sees_the_cronjobs_pod():
    """Each breakage of the CronJob's pod is named, so the green run above means something."""
    objs = objects()
    _, spec = job_pod(objs, "CronJob", "scout-backup")
    c = spec["containers"][0]
    c["securityContext"].pop("readOnlyRootFilesystem")
    c["env"] = [e for e in c["env"] if e["name"] != "REDIS_PASSWORD"]
    spec["volumes"] = [v for v in spec["volumes"] if v["name"] != "tmp"]
    c["volumeMounts"] = [m for m in c["volumeMounts"] if m["name"] != "tmp"]
    problems = " | ".join(kc.check_all(objs))
    assert "CronJob/scout/scout-backup" in problems
    assert "readOnlyRootFilesystem is not true" in problems, problems
    assert "REDIS_PASSWORD" in problems, problems
    assert "/tmp" in problems, problems


def test_not_part_of_the_kustomization():
    text = (K8S / "Kustomization").read_text()
    assert "k8s-examples" not in text and "backup" not in text


def test_jobs_use_the_backends_image_settings_and_secrets():
    objs = objects()
    _, backend = job_pod(objs, "Deployment", "scout-backend")
    b = backend["containers"][0]
    secret_env = lambda c: sorted((e["name"], json.dumps(e["valueFrom"], sort_keys=True))
                                  for e in c.get("env", []) if "valueFrom" in e)
    for kind, name in (("CronJob", "scout-backup"), ("Job", "scout-restore")):
        meta, spec = job_pod(objs, kind, name)
        assert meta["labels"]["app.kubernetes.io/component"] == "backend"
        assert spec["serviceAccountName"] == backend["serviceAccountName"]
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        c = spec["containers"][0]
        assert c["image"] == b["image"] == "scout-backend:latest"
        assert c["envFrom"] == b["envFrom"]
        assert secret_env(c) == secret_env(b)
        claim = [v for v in spec["volumes"] if "persistentVolumeClaim" in v]
        assert [v["persistentVolumeClaim"]["claimName"] for v in claim] == ["scout-backups"]
        assert [m["mountPath"] for m in c["volumeMounts"] if m["name"] == claim[0]["name"]] == ["/backups"]
    find(objs, "PersistentVolumeClaim", "scout-backups")
    cron = find(objs, "CronJob", "scout-backup")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    _, spec = job_pod(objs, "CronJob", "scout-backup")
    assert spec["containers"][0]["args"] == ["backup", "--out-dir", "/backups", "--keep", "7"]


def test_jobs_validate_against_the_kubernetes_schemas():
    objs = kc.load_objects([CRONJOB, RESTORE])
    try:
        problems = kc.validate_schemas(yaml.safe_dump_all(objs))
    except kc.SchemaToolMissing as e:
        pytest.skip(str(e))
    assert problems == []
    broken = copy.deepcopy(objs)
    kc.pod_template(find(broken, "CronJob", "scout-backup"))[1]["containers"][0]["resources"]["limits"]["cpu"] = []
    assert kc.validate_schemas(yaml.safe_dump_all(broken)), "a broken CronJob validated"


# --- the commands, run -----------------------------------------------------------------------------


def scoutd():
    path = os.environ.get("SCOUTD") or str(REPO / "build" / "scoutd")
    if not os.access(path, os.X_OK):
        pytest.skip(f"{path} is not built (make build/scoutd)")
    return path


def container_env(objs, c, redis, backups_dir):
    """The container's environment as Kubernetes would build it, with the cluster's addresses
    replaced by the local Redis; $(VAR) in args expanded the way the kubelet does."""
    env = dict(find(objs, "ConfigMap", "scout-config")["data"])
    env.update(REDIS_HOST="127.0.0.1", REDIS_PORT=str(redis.port), SCOUT_DATA_DIR=str(backups_dir.parent / "data"))
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
    env["REDIS_PASSWORD"] = redis.password
    env["SCOUT_AUTH_TOKEN"] = "cronjob-test-token-0123456789abcdef0123"
    env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
    return env


def run_container(objs, kind, name, redis, backups_dir, extra_env=None):
    _, spec = job_pod(objs, kind, name)
    c = spec["containers"][0]
    env = container_env(objs, c, redis, backups_dir)
    env.update(extra_env or {})
    args = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a).replace("/backups", str(backups_dir))
            for a in c["args"]]
    return subprocess.run([scoutd(), *args], env=env, capture_output=True, text=True, timeout=60)


def test_the_cronjobs_command_backs_up_redis_and_the_restore_job_brings_it_back(tmp_path):
    sys.path.insert(0, str(REPO / "tests" / "integration"))
    from helpers import RedisServer
    exe = scoutd()
    objs = objects()
    backups_dir = tmp_path / "backups"
    source = RedisServer(tmp_path / "redis-source").start()
    target = RedisServer(tmp_path / "redis-target").start()
    try:
        # Something to back up: a test made through the CLI's store (a token) and a setting.
        env = {"PATH": os.environ.get("PATH", ""), "REDIS_PASSWORD": source.password}
        tok = subprocess.run([exe, "token", "create", "--redis", f"redis://127.0.0.1:{source.port}", "--name", "ops"],
                             env=env, capture_output=True, text=True, timeout=60)
        assert tok.returncode == 0, tok.stderr
        for _ in range(9):   # more than --keep 7: the oldest go
            p = run_container(objs, "CronJob", "scout-backup", source, backups_dir)
            assert p.returncode == 0, p.stderr
        out = json.loads(p.stdout)
        assert out["tokens"] == 1 and out["recorded"] is True, out
        files = sorted(os.listdir(backups_dir))
        names = [f for f in files if f.endswith(".backup")]
        assert len(names) == 7 and names[-1] == Path(out["file"]).name, files
        assert json.loads(source.cli("HGET", "scout:settings", "last_backup"))["file"] == names[-1]

        p = run_container(objs, "Job", "scout-restore", target, backups_dir, {"BACKUP_FILE": names[-1]})
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["tokens"] == 1
        assert target.cli("SCARD", "scout:tokens") == "1"
        # Run again into a Redis that now holds data: refused, exit 2, nothing changed.
        p = run_container(objs, "Job", "scout-restore", target, backups_dir, {"BACKUP_FILE": names[-1]})
        assert p.returncode == 2 and "--force" in p.stderr, p.stderr
    finally:
        source.stop()
        target.stop()
