"""The reverse proxy, for real: Debian's nginx runs deploy/nginx/nginx.conf — its upstreams pointed
at this test's processes, its listener on a free loopback port, its pid and temp paths in a private
directory, everything else (log format, upstream keepalive, the included deploy/nginx/
scout-routes.conf) unchanged — in front of two real scoutd backends and a third scoutd whose UI
port plays the frontend (it serves ui/dist as the frontend container does).

It checks what users and operators rely on: each route reaches the right upstream (counted in the
upstreams' own /metrics), requests are spread over both backends and a stopped one is skipped,
the live log passes through unbuffered, every answer carries the security headers and the UI and
the reference page work in headless Chromium under that Content-Security-Policy, a body over
1 MiB gets scoutd's JSON 413 from nginx, /metrics is not served, and scoutd sees the client's
address from X-Forwarded-For (and not a forged one).

When the suite runs as root, nginx runs as uid/gid 1000 like the container, so a config that
writes outside /tmp fails here. Skipped only when /usr/sbin/nginx is missing (Debian `nginx`).
"""

import base64
import hashlib
import http.client
import json
import os
import re
import select
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

import helpers
from helpers import REPO, assert_error, create_test, free_port, raw_request, terminate, wait_until

NGINX = "/usr/sbin/nginx"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
NGINX_DIR = REPO / "deploy" / "nginx"
NGINX_CONF = NGINX_DIR / "nginx.conf"
ROUTES_CONF = NGINX_DIR / "scout-routes.conf"
UI_DIST = REPO / "ui" / "dist"
CONTAINER_UID = 1000
READY_TIMEOUT = 10.0

pytestmark = pytest.mark.skipif(not os.access(NGINX, os.X_OK),
                                reason=f"{NGINX} is missing: apt-get install -y nginx to run the proxy tests")


# --------------------------------------------------------------------------- nginx


def substitute(text, pattern, replacement):
    """Replace the one match of `pattern` (a regex) in the config; fail if it is not there once."""
    new, n = re.subn(pattern, lambda _m: replacement, text, flags=re.M)
    assert n == 1, f"deploy/nginx/nginx.conf: expected exactly one match of {pattern!r}, found {n}"
    return new


class Nginx:
    """A real nginx running deploy/nginx/nginx.conf with this test's addresses."""

    def __init__(self, backend_ports, frontend_port, routes=ROUTES_CONF):
        self.port = free_port()
        servers = "".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;\n" for p in backend_ports)
        text = NGINX_CONF.read_text()
        text = substitute(text, r"^\s*server backend:8000\b.*;\n", servers)
        text = substitute(text, r"(?<=server )frontend:3000\b", f"127.0.0.1:{frontend_port}")
        text = substitute(text, r"\blisten 80\b", f"listen 127.0.0.1:{self.port}")
        text = substitute(text, r"^pid /tmp/nginx\.pid;", "pid /tmp/nginx-pid;")
        text = substitute(text, r"\binclude scout-routes\.conf;", f"include {routes};")
        # The pid file and the five temp paths, all under /tmp, move to a private directory.
        assert len(re.findall(r"/tmp/nginx-", text)) == 6, "expected the five temp paths under /tmp/nginx-*"
        # Under /tmp itself (not pytest's 0700 tmp_path) so that uid 1000 can reach it.
        self.dir = Path(tempfile.mkdtemp(prefix="scout-nginx-", dir="/tmp"))
        self.log_path = self.dir / "nginx.log"
        self.conf_path = self.dir / "nginx.conf"
        self.conf_path.write_text(text.replace("/tmp/nginx-", f"{self.dir}/tmp-"))
        self.log_path.touch()
        self.as_container_user = os.geteuid() == 0
        if self.as_container_user:
            for p in (self.dir, *self.dir.iterdir()):
                os.chown(p, CONTAINER_UID, CONTAINER_UID)
        self.proc = None

    def start(self):
        cmd = [NGINX, "-p", str(self.dir), "-c", str(self.conf_path), "-g", "daemon off;"]
        extra = dict(user=CONTAINER_UID, group=CONTAINER_UID, extra_groups=[]) if self.as_container_user else {}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True, **extra)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"nginx exited with {self.proc.returncode} at start-up\n{self.log_tail()}", pytrace=False)
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"nginx did not listen within {READY_TIMEOUT}s\n{self.log_tail()}", pytrace=False)
            time.sleep(0.05)

    def stop(self):
        if self.proc is not None:
            terminate(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines=40):
        return "\n".join(self.log_text().splitlines()[-lines:]) or "(no log)"


class Topology:
    """nginx in front of two scoutd backends and a scoutd serving the UI as the frontend."""

    def __init__(self, backends, frontend, frontend_ui_port, nginx):
        self.backends = backends
        self.frontend = frontend
        self.frontend_ui_port = frontend_ui_port
        self.nginx = nginx
        self.http = requests.Session()
        self.http.trust_env = False

    def get(self, path, **kw):
        kw.setdefault("timeout", helpers.HTTP_TIMEOUT)
        return self.http.get(self.nginx.url(path), **kw)

    def post(self, path, **kw):
        kw.setdefault("timeout", helpers.HTTP_TIMEOUT)
        return self.http.post(self.nginx.url(path), **kw)


def answers_200(url):
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def topology(scout_factory):
    if not (UI_DIST / "index.html").exists():
        pytest.fail(f"{UI_DIST}/index.html is missing: build the UI first (`make` at the repo root)", pytrace=False)
    # Backends trust the proxy's address (nginx connects from 127.0.0.1) and log every request,
    # with its client address, at debug.
    backend_env = {"SCOUT_TRUSTED_PROXIES": "127.0.0.1", "SCOUT_LOG_LEVEL": "debug"}
    backends = [scout_factory(env=backend_env) for _ in range(2)]
    ui_port = free_port()
    frontend = scout_factory(env={"SCOUT_UI_DIR": str(UI_DIST)}, extra_args=["--ui-port", str(ui_port)])
    wait_until(lambda: answers_200(f"http://127.0.0.1:{ui_port}/"), READY_TIMEOUT,
               message="the frontend scoutd's UI port")
    nginx = Nginx([b.port for b in backends], ui_port).start()
    topo = Topology(backends, frontend, ui_port, nginx)
    try:
        yield topo
    finally:
        topo.http.close()
        log = nginx.log_tail(60)
        nginx.stop()
        print(f"--- nginx log tail ---\n{log}")


# --------------------------------------------------------------------------- metrics of the upstreams

REQUEST_LINE = re.compile(r'^scout_api_requests_total\{([^}]*)\} (\S+)$')


def request_counts(scout):
    """{(method, route, status): count} from a scoutd's own /metrics, asked directly."""
    r = requests.get(scout.url("/metrics"), timeout=helpers.HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    counts = {}
    for line in r.text.splitlines():
        m = REQUEST_LINE.match(line)
        if m:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            counts[(labels["method"], labels["route"], labels["status"])] = float(m.group(2))
    return counts


def delta(before, after, route, method="GET", status=None):
    """Requests of `route` answered between two request_counts() readings (any status unless given)."""
    keys = {k for k in set(before) | set(after) if k[0] == method and k[1] == route and (status is None or k[2] == status)}
    return sum(after.get(k, 0) - before.get(k, 0) for k in keys)


# --------------------------------------------------------------------------- tests


def test_each_route_reaches_its_upstream(topology):
    before_b = [request_counts(b) for b in topology.backends]
    before_f = request_counts(topology.frontend)

    r = topology.get("/")
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Content-Type"].startswith("text/html"), r.headers
    assert '<div id="app"></div>' in r.text and "/assets/" in r.text, r.text[:500]
    # index.html is revalidated on every load; a content-hashed asset is cached for a year.
    assert "no-cache" in r.headers.get("Cache-Control", ""), r.headers
    asset = re.search(r'src="(/assets/[^"]+\.js)"', r.text).group(1)
    a = topology.get(asset)
    assert a.status_code == 200 and a.headers["Content-Type"].startswith("text/javascript"), a.headers
    assert a.content == (UI_DIST / asset.lstrip("/")).read_bytes()
    assert "max-age=31536000" in a.headers.get("Cache-Control", ""), a.headers
    # A route of the single-page app is the frontend's too (it answers index.html).
    assert '<div id="app"></div>' in topology.get("/tests/some-test").text

    r = topology.get("/api/models")
    assert r.status_code == 200 and isinstance(r.json(), list), r.text[:300]
    r = topology.get("/admin/model_config")
    assert r.status_code == 200 and "time_window_minutes" in r.json(), r.text[:300]
    r = topology.get("/docs")
    assert r.status_code == 200 and "Scout API reference" in r.text, r.text[:300]
    r = topology.get("/openapi.json")
    assert r.status_code == 200 and r.json()["openapi"].startswith("3."), r.text[:300]
    r = topology.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready"}, r.text
    r = topology.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}, r.text
    r = topology.post("/api/create_model", json={"name": f"via-nginx-{uuid.uuid4().hex[:6]}",
                                                 "variants": {"0": "A", "1": "B"}})
    assert r.status_code == 200 and helpers.is_uuid4(r.json()["model_id"]), r.text

    after_b = [request_counts(b) for b in topology.backends]
    after_f = request_counts(topology.frontend)
    for route in ("/api/models", "/admin/model_config", "/docs", "/openapi.json", "/readyz", "/healthz"):
        got = sum(delta(b0, b1, route) for b0, b1 in zip(before_b, after_b))
        assert got == 1, f"backends answered GET {route} {got} times through nginx, expected 1"
        assert delta(before_f, after_f, route) == 0, f"the frontend answered GET {route}"
    assert sum(delta(b0, b1, "/api/create_model", "POST") for b0, b1 in zip(before_b, after_b)) == 1
    # The UI's files came from the frontend only: three GETs (index, asset, an app route).
    assert delta(before_f, after_f, "ui") == 3, after_f
    assert sum(delta(b0, b1, "ui") + delta(b0, b1, "unmatched") for b0, b1 in zip(before_b, after_b)) == 0


def test_requests_are_spread_over_both_backends(topology):
    before = [request_counts(b) for b in topology.backends]
    for _ in range(20):
        r = topology.get("/api/models")
        assert r.status_code == 200, r.text
    after = [request_counts(b) for b in topology.backends]
    got = [delta(b0, b1, "/api/models") for b0, b1 in zip(before, after)]
    assert sum(got) == 20, got
    assert min(got) >= 5, f"round robin sent {got} of 20 requests to the two backends"


def test_a_stopped_backend_is_skipped(topology):
    gone, alive = topology.backends
    assert gone.stop() == 0
    before = request_counts(alive)
    for i in range(10):
        r = topology.get("/api/models")
        assert r.status_code == 200, f"request {i} with one backend stopped: {r.status_code} {r.text[:200]}"
        r = topology.post("/api/create_model", json={"name": f"failover-{i}-{uuid.uuid4().hex[:6]}",
                                                     "variants": {"0": "A", "1": "B"}})
        assert r.status_code == 200, f"POST {i} with one backend stopped: {r.status_code} {r.text[:200]}"
    after = request_counts(alive)
    assert delta(before, after, "/api/models") == 10
    assert delta(before, after, "/api/create_model", "POST") == 10
    # With no backend left, nginx answers in scoutd's JSON error shape.
    assert alive.stop() == 0
    r = topology.get("/api/models")
    assert_error(r, 502)
    # ...and its own health (what its probes ask) stays 200: nginx is not restarted for it.
    r = topology.get("/nginx-health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}, r.text


def assert_live_log_unbuffered(topology, nginx):
    """Opens /logs/stream through `nginx`, logs a record on both backends (the stream follows
    one of them) and checks that it arrives within a second."""
    with socket.create_connection(("127.0.0.1", nginx.port), timeout=10) as sock:
        # HTTP/1.0: nginx sends the body as it arrives, delimited by the close (no chunking).
        sock.sendall(b"GET /logs/stream HTTP/1.0\r\nHost: scout\r\nAccept: text/event-stream\r\n\r\n")
        buf = b""

        def read_until(predicate, timeout):
            nonlocal buf
            deadline = time.monotonic() + timeout
            while not predicate(buf):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                readable, _, _ = select.select([sock], [], [], left)
                if readable:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return predicate(buf)
                    buf += chunk
            return True

        assert read_until(lambda b: b"\r\n\r\n" in b, 5), f"no stream head: {buf[:300]!r}"
        head = buf.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        assert head.startswith("HTTP/1.1 200"), head
        assert re.search(r"(?im)^content-type: text/event-stream", head), head
        # Let the replay of recent records pass, then log something new and time its arrival.
        read_until(lambda b: False, 0.3)
        ids = [create_test(b, name=f"sse-{uuid.uuid4().hex[:8]}") for b in topology.backends]
        start = time.monotonic()
        arrived = read_until(lambda b: any(i.encode() in b for i in ids), 3.0)
        elapsed = time.monotonic() - start
        assert arrived, f"a new log record did not come through nginx within 3 s; got {buf[-500:]!r}"
        assert elapsed < 1.0, f"the record took {elapsed:.2f}s through nginx"
        line = next(l for l in buf.split(b"\n") if any(i.encode() in l for i in ids))
        record = json.loads(line.removeprefix(b"data: "))
        assert record["event"] == "test_created", record


def test_live_log_passes_through_unbuffered(topology):
    """A record logged after the stream opened arrives through nginx at once, as the UI's live
    log needs. (scoutd also sends X-Accel-Buffering: no; nginx 1.22 forwards a trickle promptly
    even when buffering, so what `proxy_buffering off` adds — no spooling of a stream a slow
    viewer does not read — is not visible as latency and is not measured here.)"""
    assert_live_log_unbuffered(topology, topology.nginx)


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def csp_directives(value):
    out = {}
    for part in value.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def assert_security_headers(r, what):
    for name, value in SECURITY_HEADERS.items():
        # requests joins repeated headers with ", ": exactly the value means exactly one copy.
        assert r.headers.get(name) == value, f"{what}: {name} is {r.headers.get(name)!r}"
    assert "camera=()" in r.headers.get("Permissions-Policy", ""), f"{what}: {r.headers}"
    csp = csp_directives(r.headers.get("Content-Security-Policy", ""))
    assert csp.get("default-src") == ["'none'"], f"{what}: CSP {csp}"
    assert csp.get("frame-ancestors") == ["'none'"] and csp.get("base-uri") == ["'none'"], f"{what}: CSP {csp}"
    assert "'unsafe-inline'" not in str(csp) and "'unsafe-eval'" not in str(csp), f"{what}: CSP {csp}"
    assert r.headers.get("Server") == "nginx", f"{what}: Server {r.headers.get('Server')!r} (no version)"
    return csp


def test_security_headers_on_every_answer(topology):
    answers = {
        "/": 200, "/favicon.svg": 200, "/api/models": 200, "/openapi.json": 200, "/docs": 200,
        f"/api/model_details/{uuid.uuid4()}": 404, "/metrics": 404, "/logs/stream?level=nope": 400,
    }
    for path, status in answers.items():
        r = topology.get(path)
        assert r.status_code == status, f"{path}: {r.status_code} {r.text[:200]}"
        csp = assert_security_headers(r, path)
        if path == "/docs":
            docs_csp = csp
        elif path not in ("/metrics",):
            assert csp.get("script-src") == ["'self'"], f"{path}: CSP {csp}"
    big = raw_request(topology.nginx, b"POST /api/create_model HTTP/1.1\r\nHost: scout\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 2097152\r\nConnection: close\r\n\r\n",
                      [b"x" * 65536] * 32, early_answer_wait=1.0)
    assert big.status == 413
    assert big.headers.get("x-frame-options") == "DENY" and "content-security-policy" in big.headers, big.headers

    # /docs runs one inline script and one inline stylesheet, allowed by their hashes: the hashes
    # in scout-routes.conf must be those of the page scoutd serves now.
    page = topology.get("/docs").text
    for tag, directive in (("script", "script-src"), ("style", "style-src")):
        bodies = re.findall(rf"<{tag}>(.*?)</{tag}>", page, re.S)
        assert len(bodies) == 1, f"/docs has {len(bodies)} inline <{tag}> elements"
        digest = base64.b64encode(hashlib.sha256(bodies[0].encode()).digest()).decode()
        assert docs_csp.get(directive) == [f"'sha256-{digest}'"], (
            f"/docs: {directive} in deploy/nginx/scout-routes.conf is {docs_csp.get(directive)}, but the "
            f"page's inline {tag} hashes to 'sha256-{digest}' (src/assets/docs.html changed: update the hash)")


def chromium_render(url):
    """Load `url` in headless Chromium; (the DOM after scripts ran, the browser's log)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium "
                    f"(or set CHROMIUM); CI has it", pytrace=False)
    profile = tempfile.mkdtemp(prefix="scout-chromium-")
    try:
        p = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
             "--virtual-time-budget=5000", "--dump-dom", url],
            capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return p.stdout, p.stderr


def csp_complaints(log):
    return [line for line in log.splitlines()
            if "Content Security Policy" in line or "Refused to" in line]


def test_ui_works_under_the_csp(topology):
    dom, log = chromium_render(topology.nginx.url("/"))
    assert not csp_complaints(log), "the UI broke the CSP:\n" + "\n".join(csp_complaints(log))
    # Rendered by the app's script (the shell only has an empty #app), after GET /api/models.
    assert 'class="topbar"' in dom and "<h1>Tests</h1>" in dom, f"the UI did not render:\n{dom[:2000]}\n{log[-2000:]}"


def test_reference_page_works_under_its_csp(topology):
    dom, log = chromium_render(topology.nginx.url("/docs"))
    assert not csp_complaints(log), "/docs broke the CSP:\n" + "\n".join(csp_complaints(log))
    # The paths come from /openapi.json, rendered by the page's inline script.
    assert "/api/fetch_recommended_variant" in dom, f"/docs did not render:\n{dom[:2000]}\n{log[-2000:]}"

    # The check can fail: the same page behind the same routes, but with the script's hash
    # missing from the policy, is refused by the browser and stays unrendered.
    routes = topology.nginx.dir / "routes-without-docs-hash.conf"
    routes.write_text(re.sub(r"script-src 'sha256-[^']+'", "script-src 'self'", ROUTES_CONF.read_text()))
    strict = Nginx([b.port for b in topology.backends], topology.frontend_ui_port, routes=routes).start()
    try:
        dom, log = chromium_render(strict.url("/docs"))
    finally:
        strict.stop()
    assert csp_complaints(log) and "/api/fetch_recommended_variant" not in dom, log[-2000:]


def test_body_over_one_mib_gets_json_413_from_nginx(topology):
    before = [request_counts(b) for b in topology.backends]
    over = helpers.MAX_BODY + 1
    r = raw_request(topology.nginx,
                    b"POST /api/create_model HTTP/1.1\r\nHost: scout\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {over}\r\nConnection: close\r\n\r\n".encode(),
                    [b" " * over], early_answer_wait=1.0)
    assert r.status == 413, (r.status, r.body[:200])
    assert r.headers["content-type"].split(";")[0] == "application/json", r.headers
    assert "1048576" in r.json()["detail"], r.body
    after = [request_counts(b) for b in topology.backends]
    assert sum(delta(b0, b1, "/api/create_model", "POST") for b0, b1 in zip(before, after)) == 0, \
        "the oversized body reached a backend"
    # Exactly 1 MiB is still scoutd's to judge (malformed JSON: 400, not nginx's 413).
    r = topology.post("/api/create_model", data=b"{" + b" " * (helpers.MAX_BODY - 1),
                      headers={"Content-Type": "application/json"})
    assert_error(r, 400)


def test_metrics_are_not_served_through_nginx(topology):
    before = [request_counts(b) for b in topology.backends]
    for path in ("/metrics", "/metrics/", "/metrics?x=1"):
        assert_error(topology.get(path), 404)
    after = [request_counts(b) for b in topology.backends]
    assert sum(delta(b0, b1, "/metrics") for b0, b1 in zip(before, after)) == 2, \
        "a /metrics request through nginx reached a backend (the two counted are this test's own readings)"
    # Each backend still serves it directly, to Prometheus.
    assert "scout_api_requests_total" in requests.get(topology.backends[0].url("/metrics"), timeout=5).text


def logged_clients(topology, route):
    """Client addresses of the request records for `route` in both backends' logs."""
    out = []
    for b in topology.backends:
        for line in b.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{") and f'"route":"{route}"' in line:
                rec = json.loads(line)
                if rec.get("msg") == "request":
                    out.append(rec["client"])
    return out


def get_from(topology, source, path, headers=None):
    """GET through nginx from the loopback address `source` (Linux answers all of 127/8)."""
    conn = http.client.HTTPConnection("127.0.0.1", topology.nginx.port, timeout=10, source_address=(source, 0))
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def test_backends_see_the_client_address_from_x_forwarded_for(topology):
    secret = "Bearer not-a-real-token-" + uuid.uuid4().hex
    assert get_from(topology, "127.0.0.7", "/admin/model_config", {"Authorization": secret}) == 200
    clients = wait_until(lambda: logged_clients(topology, "/admin/model_config"), 5,
                         message="the request record in a backend log")
    assert clients == ["127.0.0.7"], f"backends logged {clients}; nginx connects from 127.0.0.1"

    # A client forging X-Forwarded-For: nginx appends the real peer and scoutd believes only that.
    assert get_from(topology, "127.0.0.8", "/admin/get_protection", {"X-Forwarded-For": "203.0.113.9"}) == 200
    clients = wait_until(lambda: logged_clients(topology, "/admin/get_protection"), 5,
                         message="the request record in a backend log")
    assert clients == ["127.0.0.8"], f"backends logged {clients} for a forged X-Forwarded-For"

    # nginx's own access log names the client and never holds the Authorization header.
    records = [json.loads(l) for l in topology.nginx.log_text().splitlines() if l.startswith('{"time"')]
    assert any(r["client"] == "127.0.0.7" and r["uri"] == "/admin/model_config" for r in records), records[-5:]
    assert secret.split()[1] not in topology.nginx.log_text()
