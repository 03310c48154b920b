"""test_containers.py — Scout's container images and compose topology, on a real Docker daemon.

Builds the local base image (deploy/docker/base-image.sh: debootstrap + docker import, no
registry) and the images (deploy/docker/build-images.sh), then runs them with the hardening the
deployment uses — read-only root, tmpfs /tmp (and /data), uid 1000, no capabilities,
no-new-privileges, ports published on 127.0.0.1 only — and uses them over HTTP: the backend's API
and metrics, the frontend's static UI, the reverse proxy in front of both. It checks what a
hardened deployment relies on: no shell in any image, the process really is uid/gid 1000 with no
capability, and scoutd cannot write outside /tmp and /data. Last, deploy/compose.yaml is validated
with the compose implementation present and brought up whole (two backends on Redis, nginx,
Prometheus) under a unique project name, driven through nginx, and torn down with its volumes.

Skips every test, saying why, when no Docker daemon answers (`docker info`). Run:
    /usr/bin/python3 -m pytest -v tests/deploy/test_containers.py
"""

import base64
import io
import json
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER_DIR = REPO / "deploy" / "docker"
COMPOSE_FILE = REPO / "deploy" / "compose.yaml"
UI_DIST = REPO / "ui" / "dist"

# The flags every container of the deployment runs with (compose.yaml and the Kubernetes
# manifests say the same thing in their own words).
HARDENED = ["--read-only", "--tmpfs", "/tmp", "--user", "1000:1000", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges"]
BUILD_TIMEOUT = 1800   # a cold build: debootstrap plus five images, several apt-get installs


def _docker_answers():
    if not shutil.which("docker"):
        return False, "the docker client is not installed"
    try:
        r = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                           text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"`docker info` failed: {e}"
    if r.returncode != 0:
        return False, f"`docker info` failed: {r.stderr.strip()[:200]}"
    return True, ""


_OK, _WHY = _docker_answers()
pytestmark = pytest.mark.skipif(
    not _OK, reason=f"no Docker daemon answers ({_WHY}); the container tests need one: "
                    "apt-get install docker.io debootstrap docker-compose, then start dockerd")


# --------------------------------------------------------------------------- helpers


def docker(*args, check=True, timeout=120, input=None):
    r = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, input=input)
    if check and r.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r


class Container:
    """A container started by a test; `stop()` removes it whatever state it is in."""

    def __init__(self, cid, name):
        self.id, self.name = cid, name

    def inspect(self):
        return json.loads(docker("inspect", self.id).stdout)[0]

    def port(self, container_port):
        out = docker("port", self.id, str(container_port)).stdout.split()
        host, _, port = out[0].rpartition(":")
        assert host == "127.0.0.1", f"published on {host}, not on loopback"
        return int(port)

    def logs(self):
        r = docker("logs", self.id, check=False)
        return r.stdout + r.stderr

    def proc_status(self):
        """The container's main process as the host kernel sees it (/proc/PID/status)."""
        pid = self.inspect()["State"]["Pid"]
        assert pid > 0, "the container is not running"
        fields = {}
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = value.split()
        return fields

    def stop(self):
        docker("rm", "-f", "-v", self.id, check=False)


@pytest.fixture
def run_container():
    """run(image, *docker_run_args, cmd=()) -> Container; every one is removed afterwards."""
    started = []

    def run(image, *args, cmd=()):
        name = f"scout-test-{uuid.uuid4().hex[:10]}"
        cid = docker("run", "-d", "--name", name, *args, image, *cmd).stdout.strip()
        c = Container(cid, name)
        started.append(c)
        return c

    yield run
    for c in started:
        c.stop()


@pytest.fixture
def network():
    name = f"scout-test-{uuid.uuid4().hex[:10]}"
    docker("network", "create", name)
    yield name
    # Containers still attached (a failed test's) go first, or the network cannot be removed.
    attached = docker("ps", "-aq", "--filter", f"network={name}", check=False).stdout.split()
    if attached:
        docker("rm", "-f", "-v", *attached, check=False)
    docker("network", "rm", name, check=False)


def wait_http(url, timeout=30.0, container=None, **kw):
    """GET url until it answers at all; fails with the container's log if it never does."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            return requests.get(url, timeout=2, **kw)
        except requests.RequestException as e:
            last = e
        if container is not None and not container.inspect()["State"]["Running"]:
            break
        time.sleep(0.2)
    log = container.logs()[-3000:] if container is not None else ""
    raise AssertionError(f"{url} never answered ({last})\n{log}")


def assert_hardened_process(c):
    st = c.proc_status()
    assert st["Uid"] == ["1000"] * 4, f"uids {st['Uid']}"
    assert st["Gid"] == ["1000"] * 4, f"gids {st['Gid']}"
    assert int(st["CapEff"][0], 16) == 0 and int(st["CapPrm"][0], 16) == 0, "capabilities left"
    assert st["NoNewPrivs"] == ["1"]
    hc = c.inspect()["HostConfig"]
    assert hc["ReadonlyRootfs"] is True


def assert_no_shell(image):
    """Neither /bin/sh nor any other shell or busybox exists anywhere in the image."""
    r = docker("run", "--rm", "--entrypoint", "/bin/sh", image, "-c", "true", check=False)
    assert r.returncode != 0, f"{image} ran /bin/sh"
    assert "no such file" in r.stderr.lower(), r.stderr
    name = f"scout-test-{uuid.uuid4().hex[:10]}"
    docker("create", "--name", name, image)
    try:
        raw = subprocess.run(["docker", "export", name], capture_output=True, timeout=120, check=True).stdout
    finally:
        docker("rm", "-v", name, check=False)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        names = tar.getnames()
    shells = {"sh", "bash", "dash", "ash", "busybox", "zsh", "apt-get", "dpkg", "env", "ls"}
    found = [n for n in names if Path(n).name in shells]
    assert not found, f"{image} contains {found}"
    return names


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- images


@pytest.fixture(scope="session")
def images():
    """Builds scout-base:bookworm (once) and every Scout image; returns the build's seconds."""
    t0 = time.monotonic()
    names = ["backend", "nginx", "redis", "prometheus"]
    if (UI_DIST / "index.html").is_file():   # else the frontend's tests skip (see ui_dist)
        names.append("frontend")
    r = subprocess.run(["bash", str(DOCKER_DIR / "build-images.sh"), *names], capture_output=True, text=True,
                       timeout=BUILD_TIMEOUT, cwd=REPO)
    if r.returncode != 0:
        pytest.fail(f"building the images failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}", pytrace=False)
    return time.monotonic() - t0


@pytest.fixture(scope="session")
def ui_dist():
    if not (UI_DIST / "index.html").is_file():
        pytest.skip("ui/dist is not built (the frontend image copies it): run `make` first")
    return UI_DIST


def test_base_image_is_local_debian_12(images):
    """The base comes from debootstrap, not a registry: Debian 12, no repo digest."""
    info = json.loads(docker("image", "inspect", "scout-base:bookworm").stdout)[0]
    assert info["RepoDigests"] == [], "scout-base was pulled, not imported"
    r = docker("run", "--rm", "scout-base:bookworm", "cat", "/etc/debian_version")
    assert r.stdout.startswith("12."), r.stdout
    # Idempotent: a second run sees the image and does no work.
    again = subprocess.run(["bash", str(DOCKER_DIR / "base-image.sh")], capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0 and "already exists" in again.stdout


def test_backend_serves_the_api_hardened(images, run_container):
    c = run_container("scout-backend:latest", *HARDENED, "--tmpfs", "/data:uid=1000,gid=1000,mode=0700",
                      "-p", "127.0.0.1::8000")
    base = f"http://127.0.0.1:{c.port(8000)}"
    assert wait_http(f"{base}/readyz", container=c).status_code == 200

    r = requests.post(f"{base}/api/create_model", timeout=5,
                      json={"name": "container-test", "variants": {"0": "A", "1": "B"}})
    assert r.status_code == 200, r.text
    mid = r.json()["model_id"]
    r = requests.post(f"{base}/api/fetch_recommended_variant", timeout=5,
                      json={"cb_model_id": mid, "request_id": "req-1", "context": {"device": "mobile"}})
    assert r.status_code == 200, r.text
    label = r.json()["recommended_variant"]
    assert label in ("A", "B")
    r = requests.post(f"{base}/api/update_model/{mid}", timeout=5,
                      json={"updates": [{"request_id": "req-1", "reward": 1}]})
    assert r.status_code == 200 and r.json()["processed_updates"] == 1, r.text

    details = requests.get(f"{base}/api/model_details/{mid}", timeout=5).json()
    summary = dict(_summary_items(details))
    assert summary[label]["updates"] == 1 and summary[label]["reward_sum"] == 1, details["performance_summary"]

    metrics = requests.get(f"{base}/metrics", timeout=5)
    assert metrics.status_code == 200
    assert f'scout_decisions_total{{model_id="{mid}"}} 1' in metrics.text
    assert f'scout_rewards_total{{model_id="{mid}"}} 1' in metrics.text
    assert "scout_api_requests_total{" in metrics.text

    # The image's defaults: 0.0.0.0:8000, no UI listener, data in /data.
    env = dict(e.split("=", 1) for e in c.inspect()["Config"]["Env"])
    assert env["SCOUT_HOST"] == "0.0.0.0" and env["SCOUT_UI_PORT"] == "0" and env["SCOUT_DATA_DIR"] == "/data"
    assert '"data_dir":"/data"' in c.logs()
    assert_hardened_process(c)


def _summary_items(details):
    """performance_summary as (label, stats) pairs (it is keyed by variant id)."""
    return [(stats["label"], stats) for stats in details["performance_summary"].values()]


def test_backend_image_has_only_scoutd_and_its_libraries(images):
    names = assert_no_shell("scout-backend:latest")
    files = {n.lstrip("./") for n in names}
    assert "usr/local/bin/scoutd" in files
    # Programs: scoutd and nothing else (libraries live in lib*, not in a bin directory).
    programs = [n for n in files if re.search(r"(^|/)s?bin/[^/]+$", n)]
    assert programs == ["usr/local/bin/scoutd"], programs
    info = json.loads(docker("image", "inspect", "scout-backend:latest").stdout)[0]["Config"]
    assert info["User"] == "1000:1000"
    assert info["Entrypoint"] == ["/usr/local/bin/scoutd"]
    assert "8000/tcp" in info["ExposedPorts"] and "/data" in info["Volumes"]


@pytest.mark.parametrize("data_dir", ["/readonly-path", "/usr/local"])
def test_backend_cannot_write_outside_tmp_and_data(images, data_dir):
    """On the read-only root, a data dir anywhere else fails at start with a clear message."""
    r = docker("run", "--rm", *HARDENED, "-e", f"SCOUT_DATA_DIR={data_dir}", "scout-backend:latest",
               check=False, timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert f"cannot open the embedded store in {data_dir}" in out
    assert "Read-only file system" in out or "unable to open database file" in out, out


def test_backend_data_lives_in_data_only(images, run_container):
    """With /data writable, the store is there (and only there) and survives a restart."""
    vol = f"scout-test-{uuid.uuid4().hex[:10]}"
    docker("volume", "create", vol)
    try:
        args = (*HARDENED, "-v", f"{vol}:/data", "-p", "127.0.0.1::8000")
        c = run_container("scout-backend:latest", *args)
        base = f"http://127.0.0.1:{c.port(8000)}"
        wait_http(f"{base}/readyz", container=c)
        mid = requests.post(f"{base}/api/create_model", timeout=5,
                            json={"name": "kept", "variants": {"0": "A", "1": "B"}}).json()["model_id"]
        diff = docker("diff", c.id).stdout.split("\n")
        # `docker diff` lists changes to the container's own layer: none outside mounts.
        assert [d for d in diff if d.strip()] == [], diff
        docker("stop", "-t", "10", c.id)
        assert c.inspect()["State"]["ExitCode"] == 0, c.logs()[-2000:]
        c2 = run_container("scout-backend:latest", *args)
        base2 = f"http://127.0.0.1:{c2.port(8000)}"
        wait_http(f"{base2}/readyz", container=c2)
        models = requests.get(f"{base2}/api/models", timeout=5).json()
        assert [m["model_id"] for m in models] == [mid]
    finally:
        for cid in docker("ps", "-aq", "--filter", f"volume={vol}").stdout.split():
            docker("rm", "-f", cid, check=False)
        docker("volume", "rm", vol, check=False)


def test_frontend_serves_the_ui_hardened(images, ui_dist, run_container):
    c = run_container("scout-frontend:latest", *HARDENED, "-p", "127.0.0.1::3000")
    base = f"http://127.0.0.1:{c.port(3000)}"
    r = wait_http(f"{base}/", container=c)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert r.content == (ui_dist / "index.html").read_bytes()
    asset = next((ui_dist / "assets").glob("*.js"))
    r = requests.get(f"{base}/assets/{asset.name}", timeout=5)
    assert r.status_code == 200 and r.content == asset.read_bytes()
    assert "javascript" in r.headers["Content-Type"] and "immutable" in r.headers["Cache-Control"]
    # A route of the single-page app gets index.html; a missing file with an extension a 404.
    r = requests.get(f"{base}/tests/some-id", timeout=5)
    assert r.status_code == 200 and r.content == (ui_dist / "index.html").read_bytes()
    assert requests.get(f"{base}/missing.js", timeout=5).status_code == 404
    assert "Server: nginx/" not in str(r.headers)
    assert_hardened_process(c)
    assert_no_shell("scout-frontend:latest")


def test_nginx_image_routes_to_backend_and_frontend(images, ui_dist, network, run_container):
    """The proxy image with its baked-in config, in front of the two other images."""
    run_container("scout-backend:latest", *HARDENED, "--tmpfs", "/data:uid=1000,gid=1000,mode=0700",
                  "--network", network, "--network-alias", "backend")
    fe = run_container("scout-frontend:latest", *HARDENED, "--network", network, "--network-alias", "frontend")
    wait_port_in_network(network, fe)
    ngx = run_container("scout-nginx:latest", *HARDENED, "--network", network, "-p", "127.0.0.1::80")
    base = f"http://127.0.0.1:{ngx.port(80)}"
    r = wait_http(f"{base}/", container=ngx)
    assert r.status_code == 200 and r.content == (ui_dist / "index.html").read_bytes()
    assert r.headers["X-Frame-Options"] == "DENY" and r.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" in r.headers
    r = _retry_until(lambda: requests.get(f"{base}/api/models", timeout=5), lambda r: r.status_code == 200)
    assert r.json() == []
    assert requests.get(f"{base}/openapi.json", timeout=5).json()["openapi"].startswith("3.")
    assert requests.get(f"{base}/metrics", timeout=5).status_code == 404
    r = requests.post(f"{base}/api/create_model", data=b"x" * (2 * 1024 * 1024),
                      headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 413 and "detail" in r.json()
    assert_hardened_process(ngx)
    assert_no_shell("scout-nginx:latest")


def wait_port_in_network(network, container, timeout=15):
    """Waits until a container is running (nginx resolves upstream names once, at start)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if container.inspect()["State"]["Running"]:
            return
        time.sleep(0.2)
    raise AssertionError(f"{container.name} did not start in {network}:\n{container.logs()[-2000:]}")


def _retry_until(call, ok, timeout=20.0):
    deadline = time.monotonic() + timeout
    r = call()
    while not ok(r) and time.monotonic() < deadline:
        time.sleep(0.3)
        r = call()
    return r


def test_redis_and_prometheus_images_have_no_shell(images):
    assert_no_shell("scout-redis:latest")
    assert_no_shell("scout-prometheus:latest")


# --------------------------------------------------------------------------- compose


def compose_command():
    """The compose implementation here: the `docker compose` plugin, else docker-compose v1."""
    if docker("compose", "version", check=False).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def make_secrets(directory: Path):
    """The three secret files, made as compose.yaml's header says (openssl rand -base64 32)."""
    directory.mkdir(parents=True, exist_ok=True)
    token = base64.b64encode(secrets.token_bytes(32)).decode()
    password = base64.b64encode(secrets.token_bytes(32)).decode()
    files = {"auth_token": token, "redis_password": password, "redis_conf": f"requirepass {password}\n"}
    for name, text in files.items():
        p = directory / name
        p.write_text(text)
        if os.geteuid() == 0:
            os.chown(p, 1000, 1000)
            p.chmod(0o400)
        else:
            p.chmod(0o444)
    return token, password


def test_compose_file_is_valid_and_hardened(tmp_path):
    cmd = compose_command()
    if cmd is None:
        pytest.skip("no compose implementation (docker compose plugin or docker-compose) to validate with")
    make_secrets(tmp_path / "secrets")
    env = {**os.environ, "SCOUT_SECRETS_DIR": str(tmp_path / "secrets")}
    r = subprocess.run([*cmd, "-f", str(COMPOSE_FILE), "config"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    cfg = yaml.safe_load(r.stdout)
    services = cfg["services"]
    assert set(services) == {"backend", "frontend", "nginx", "redis", "prometheus"}
    for name, s in services.items():
        assert s["read_only"] is True, name
        assert str(s["user"]) == "1000:1000", name
        assert s["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in s["security_opt"], name
        assert any(str(t).startswith("/tmp") for t in s["tmpfs"]), name
        limits = s["deploy"]["resources"]["limits"]
        assert limits["memory"] and limits["cpus"], name
        assert "privileged" not in s and "cap_add" not in s, name
    assert services["backend"]["deploy"]["replicas"] == 2
    benv = services["backend"]["environment"]
    assert benv["SCOUT_PROTECTED_API"] == "true" and benv["SCOUT_UI_PORT"] == "0"
    # Secrets come as files, never as values in the environment.
    assert "SCOUT_AUTH_TOKEN" not in benv and "REDIS_PASSWORD" not in benv
    assert benv["SCOUT_AUTH_TOKEN_FILE"].startswith("/run/secrets/")
    assert benv["REDIS_PASSWORD_FILE"].startswith("/run/secrets/")
    # Only nginx publishes a port, and only on loopback.
    published = {n: s.get("ports", []) for n, s in services.items() if s.get("ports")}
    assert list(published) == ["nginx"]
    for p in published["nginx"]:
        assert (p.get("host_ip") if isinstance(p, dict) else str(p).split(":")[0]) == "127.0.0.1", p
    assert cfg["networks"]["app"]["internal"] is True and cfg["networks"]["data"]["internal"] is True


@pytest.fixture
def compose_project(tmp_path, images, ui_dist):
    """Brings deploy/compose.yaml up under a unique project name; `down -v` afterwards, always."""
    cmd = compose_command()
    if cmd is None:
        pytest.skip("no compose implementation (docker compose plugin or docker-compose) here")
    token, password = make_secrets(tmp_path / "secrets")
    octet = random.randint(100, 250)
    port = free_port()
    env = {**os.environ, "SCOUT_SECRETS_DIR": str(tmp_path / "secrets"), "SCOUT_HTTP_PORT": str(port),
           "SCOUT_APP_SUBNET": f"172.30.{octet}.0/24", "SCOUT_NGINX_APP_ADDRESS": f"172.30.{octet}.10"}
    project = f"scouttest{uuid.uuid4().hex[:8]}"
    base = [*cmd, "-p", project, "-f", str(COMPOSE_FILE)]

    def run(*args, timeout=300, check=True):
        r = subprocess.run([*base, *args], capture_output=True, text=True, env=env, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"compose {' '.join(args)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        return r

    def ids(service):
        return run("ps", "-q", service).stdout.split()

    t0 = time.monotonic()
    try:
        run("up", "-d", "--no-build")
        up_seconds = time.monotonic() - t0
        yield {"url": f"http://127.0.0.1:{port}", "token": token, "password": password, "ids": ids,
               "run": run, "nginx_app_address": env["SCOUT_NGINX_APP_ADDRESS"], "up_seconds": up_seconds}
    finally:
        logs = run("logs", "--no-color", check=False, timeout=60)
        down = run("down", "-v", "--remove-orphans", check=False, timeout=180)
        left = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}").stdout.split()
        if down.returncode != 0 or left:
            print(logs.stdout[-5000:])
            raise AssertionError(f"compose down left {left}: {down.stderr[-2000:]}")


def prometheus_query(project, query):
    """Runs an instant query with promtool inside the Prometheus container; {labels: value}."""
    (pid,) = project["ids"]("prometheus")
    r = docker("exec", pid, "/usr/bin/promtool", "query", "instant", "http://127.0.0.1:9090", query,
               check=False, timeout=30)
    out = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^(.*?) => ([0-9.eE+-]+|NaN) @", line.strip())
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def test_compose_topology_end_to_end(compose_project):
    p = compose_project
    url, auth = p["url"], {"Authorization": f"Bearer {p['token']}"}
    assert len(p["ids"]("backend")) == 2

    r = _retry_until(lambda: _get(f"{url}/api/models", headers=auth), lambda r: r is not None and r.status_code == 200,
                     timeout=60)
    assert r is not None and r.status_code == 200, r and r.text
    # Protected: no token, no API (through nginx, as a client sees it).
    assert requests.get(f"{url}/api/models", timeout=5).status_code == 401
    assert requests.get(f"{url}/", timeout=5).status_code == 200   # the UI is public

    r = requests.post(f"{url}/api/create_model", headers=auth, timeout=5,
                      json={"name": "compose-test", "variants": {"0": "A", "1": "B"}})
    assert r.status_code == 200, r.text
    mid = r.json()["model_id"]
    n = 40
    for i in range(n):
        r = requests.post(f"{url}/api/fetch_recommended_variant", headers=auth, timeout=5,
                          json={"cb_model_id": mid, "request_id": f"req-{i}"})
        assert r.status_code == 200, r.text
        # The variant goes with the reward: the replica taking it may not see the other
        # replica's decision record yet (they are written to Redis asynchronously).
        r = requests.post(f"{url}/api/update_model/{mid}", headers=auth, timeout=5,
                          json={"updates": [{"request_id": f"req-{i}", "variant_id": r.json()["variant_id"],
                                             "reward": 1}]})
        assert r.status_code == 200 and r.json()["processed_updates"] == 1, r.text

    # Both replicas share the Redis store: every reward, whichever replica took it, is learned.
    def rewards_seen():
        d = requests.get(f"{url}/api/model_details/{mid}", headers=auth, timeout=5).json()
        return sum(s["updates"] for _, s in _summary_items(d))
    assert _retry_until(rewards_seen, lambda v: v == n, timeout=20) == n

    # A refused request is logged with the client's address, not nginx's: scoutd trusts
    # X-Forwarded-For from nginx's fixed address only, and a forged header does not win.
    requests.get(f"{url}/api/models", headers={"Authorization": "Bearer sct_wrong", "X-Forwarded-For": "203.0.113.9"},
                 timeout=5)
    time.sleep(0.5)
    refused = []
    for cid in p["ids"]("backend"):
        r = docker("logs", cid, check=False)
        for line in (r.stdout + r.stderr).splitlines():
            if line.startswith("{") and '"auth_failure"' in line:
                refused.append(json.loads(line))
    assert refused, "no refusal was logged"
    clients = {e["client"] for e in refused}
    assert p["nginx_app_address"] not in clients and "203.0.113.9" not in clients, clients
    # Redis refuses a client without the password.
    (rid,) = p["ids"]("redis")
    assert "NOAUTH" in docker("exec", rid, "/usr/bin/redis-cli", "-h", "127.0.0.1", "get", "x").stdout
    # Secrets never appear in a log line or in a container's configuration.
    for service in ("backend", "redis", "nginx"):
        for cid in p["ids"](service):
            text = docker("inspect", cid).stdout + docker("logs", cid, check=False).stdout
            assert p["token"] not in text and p["password"] not in text, service

    # Prometheus finds both replicas through Docker's DNS, and both served the traffic.
    def targets():
        return {k: v for k, v in prometheus_query(p, 'up{job="scout-backend"}').items()}
    t = _retry_until(targets, lambda t: len(t) == 2 and all(v == 1 for v in t.values()), timeout=60)
    assert len(t) == 2 and all(v == 1 for v in t.values()), t

    query = 'sum by (instance) (scout_api_requests_total{route="/api/fetch_recommended_variant",status="200"})'
    served = _retry_until(lambda: prometheus_query(p, query),
                          lambda s: len(s) == 2 and sum(s.values()) == n, timeout=45)
    assert len(served) == 2 and all(v > 0 for v in served.values()) and sum(served.values()) == n, served

    # Every container of the topology runs as 1000:1000, read-only, without capabilities.
    for service in ("backend", "frontend", "nginx", "redis", "prometheus"):
        for cid in p["ids"](service):
            c = Container(cid, service)
            assert c.inspect()["State"]["Running"], service
            assert_hardened_process(c)
    print(f"compose up took {p['up_seconds']:.1f} s")


def _get(url, **kw):
    try:
        return requests.get(url, timeout=5, **kw)
    except requests.RequestException:
        return None
