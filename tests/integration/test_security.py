"""API protection: bearer tokens with scopes, expiry, rotation and revocation; refusals that reveal
nothing, are counted and logged; a rate limit that a forged X-Forwarded-For cannot dodge and that
never refuses a valid token; CORS; the operator's `scoutd token` CLI; and no secret ever shown
again after the one response that created it — not in a response, a header, /metrics or the log.

Negative cases come first. Unless a test is about the rate limit, its server allows a very large
number of failures (SCOUT_AUTH_MAX_FAILURES), so that tests which are refused on purpose are not
throttled by the default limit of 10.
"""

import base64
import datetime
import hashlib
import json
import os
import re
import secrets
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

import helpers

from helpers import (
    HTTP_TIMEOUT,
    SCOUTD,
    assert_error,
    assert_serving,
    free_port,
    parse_iso_utc,
    wait_until,
)

# --------------------------------------------------------------------------- local helpers

LENIENT = {"SCOUT_AUTH_MAX_FAILURES": "100000"}  # no throttling in tests that are not about it
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43,}={0,2}")  # ≥ 256 bits, base64url
TOKEN_STATES = {"active", "expired", "revoked", "rotated"}
LIST_FIELDS = {"id", "name", "scope", "created_at", "expires_at", "last_used_at", "fingerprint", "state"}
CLI_PROPAGATION = 2.5  # "the running server accepts/refuses it within ~2 s"


def new_bootstrap_token():
    return secrets.token_urlsafe(33)  # 44 characters


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def call(scout, method, path, token=None, headers=None, **kw):
    """One request on the server's session; `token` adds `Authorization: Bearer <token>`."""
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    kw.setdefault("timeout", HTTP_TIMEOUT)
    scout.session.trust_env = False  # no ~/.netrc credentials or proxies may sneak into these requests
    return scout.session.request(method, scout.url(path), headers=h, **kw)


def start_protected(scout_factory, boot=None, **env):
    boot = boot or new_bootstrap_token()
    s = scout_factory(env={"SCOUT_PROTECTED_API": "true", "SCOUT_AUTH_TOKEN": boot, **LENIENT, **env})
    s.boot = boot
    return s


@pytest.fixture
def guarded(scout_factory):
    """A server with protection on and a bootstrap admin token (`.boot`)."""
    return start_protected(scout_factory)


def assert_token_created(body, scope="admin"):
    """The answer of generate_token / rotate: the secret (shown this once) and its metadata."""
    assert isinstance(body, dict), body
    token = body.get("token")
    assert isinstance(token, str) and TOKEN_RE.fullmatch(token), f"token {token!r} is not ≥ 43 base64url chars"
    assert body.get("auth_token") == token, body
    for key in ("id", "fingerprint"):
        assert isinstance(body.get(key), str) and body[key], (key, body)
    assert token not in body["fingerprint"] and token not in body["id"], body
    assert "name" in body, body
    assert body.get("scope") == scope, body
    parse_iso_utc(body.get("created_at"))
    if body.get("expires_at") is not None:
        parse_iso_utc(body["expires_at"])
    else:
        assert "expires_at" in body, body
    return body


def create_test_as(scout, token, **extras):
    body = {"name": f"t-{secrets.token_hex(4)}", "variants": {"0": "A", "1": "B"}, **extras}
    r = call(scout, "POST", "/api/create_model", token, json=body)
    assert r.status_code == 200, f"create_model -> {r.status_code} {r.text}"
    return r.json()["model_id"]


def summary_as(scout, mid, token):
    r = call(scout, "GET", "/api/models", token)
    assert r.status_code == 200, r.text
    found = [m for m in r.json() if m.get("model_id") == mid]
    assert len(found) == 1, found
    return found[0]


def generate(scout, token, body=None, scope="admin"):
    """POST /admin/generate_token with `token`; assert the 200 and the shape; return the body."""
    r = call(scout, "POST", "/admin/generate_token", token, json={} if body is None else body)
    assert r.status_code == 200, f"generate_token {body} -> {r.status_code} {r.text}"
    return assert_token_created(r.json(), scope=(body or {}).get("scope", scope))


def token_list(scout, token):
    r = call(scout, "GET", "/admin/tokens", token)
    assert r.status_code == 200, f"/admin/tokens -> {r.status_code} {r.text}"
    body = r.json()
    assert isinstance(body, list), body
    for entry in body:
        assert LIST_FIELDS <= set(entry), f"token list entry lacks {LIST_FIELDS - set(entry)}: {entry}"
        assert entry["state"] in TOKEN_STATES, entry
    return body


def token_state(scout, token, token_id):
    found = [t for t in token_list(scout, token) if t["id"] == token_id]
    assert len(found) == 1, f"token {token_id} listed {len(found)} times"
    return found[0]["state"]


def assert_unauthorized(r):
    """401, JSON {"detail"}, and a WWW-Authenticate challenge for the Bearer scheme."""
    assert_error(r, 401)
    challenge = r.headers.get("WWW-Authenticate", "")
    assert challenge.startswith("Bearer"), f"WWW-Authenticate {challenge!r}"


def assert_forbidden(r):
    assert_error(r, 403)


def refused_soon(scout, method, path, token, timeout, **kw):
    """Poll until a request with `token` is no longer a 200; return that response."""
    def attempt():
        r = call(scout, method, path, token, **kw)
        return [r] if r.status_code != 200 else None  # (a 4xx Response is falsy itself)
    return wait_until(attempt, timeout, interval=0.05, message=f"{path} to refuse the token")[0]


def accepted_soon(scout, method, path, token, timeout, **kw):
    """Poll until a request with `token` is a 200; return that response."""
    def attempt():
        r = call(scout, method, path, token, **kw)
        return [r] if r.status_code == 200 else None
    return wait_until(attempt, timeout, interval=0.05, message=f"{path} to accept the token")[0]


def auth_failures(scout, token=None):
    """scout_auth_failures_total from /metrics as {reason: value} (Prometheus text format)."""
    r = call(scout, "GET", "/metrics", token)
    assert r.status_code == 200, f"/metrics -> {r.status_code} {r.text[:200]}"
    assert "scout_auth_failures_total" in r.text, "/metrics has no scout_auth_failures_total"
    out = {}
    for line in r.text.splitlines():
        m = re.match(r"^scout_auth_failures_total(?:\{([^}]*)\})?\s+(\S+)(?:\s+\d+)?\s*$", line)
        if not m:
            continue
        reason = re.search(r'reason="((?:[^"\\]|\\.)*)"', m.group(1) or "")
        key = reason.group(1) if reason else ""
        out[key] = out.get(key, 0.0) + float(m.group(2))
    return out


def delta(before, after):
    keys = set(before) | set(after)
    return {k: after.get(k, 0.0) - before.get(k, 0.0) for k in keys if after.get(k, 0.0) != before.get(k, 0.0)}


def log_records(scout):
    """Every JSON object line of the server's log (stdout and stderr)."""
    records = []
    for line in scout.log_path.read_text(errors="replace").splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            records.append(rec)
    return records


def auth_failure_records(scout):
    return [r for r in log_records(scout) if r.get("event") == "auth_failure"]


def hermetic_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCOUT_", "REDIS_"))}
    env.update(extra or {})
    return env


def cli(data_dir, *args, check=True):
    """Run `scoutd token ...` on a data dir; return the CompletedProcess."""
    store = ["--redis", helpers.CURRENT_REDIS.url] if helpers.CURRENT_REDIS else ["--data-dir", str(data_dir)]
    p = subprocess.run([SCOUTD, "token", *args, *store], env=hermetic_env(),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
    if check:
        assert p.returncode == 0, (
            f"scoutd token {' '.join(args)} exited {p.returncode}\nstdout: {p.stdout[:500]!r}\n"
            f"stderr: {p.stderr[:500]!r}")
    return p


def cli_create(data_dir, *args):
    p = cli(data_dir, "create", *args)
    out = p.stdout.decode().strip()
    assert "\n" not in out, f"token create printed more than one line: {out!r}"
    body = json.loads(out)
    assert isinstance(body, dict), body
    assert isinstance(body.get("token"), str) and TOKEN_RE.fullmatch(body["token"]), body
    assert isinstance(body.get("id"), str) and body["id"], body
    assert "expires_at" in body and "scope" in body, body
    return body


def hash_forms(secret):
    """Encodings of common hashes of `secret` that must never be shown (list, protection state)."""
    raw = secret.encode()
    digests = [hashlib.sha256(raw).digest(), hashlib.sha512(raw).digest(),
               hashlib.blake2b(raw, digest_size=32).digest(), hashlib.blake2b(raw).digest()]
    forms = []
    for d in digests:
        forms += [d.hex(), d.hex().upper(), base64.b64encode(d).decode().rstrip("="),
                  base64.urlsafe_b64encode(d).decode().rstrip("=")]
    return forms


def secret_fragments(secret):
    """The secret and long pieces of it: showing half a token leaks it as surely as all of it."""
    return {secret, secret[:24], secret[-24:]}


def start_expecting_exit(tmp_path, env, timeout=10.0):
    """Run scoutd that must refuse to start; return (returncode, stderr). Kills it if it serves."""
    data = tmp_path / "refused-data"
    data.mkdir(exist_ok=True)
    cmd = [SCOUTD, "--host", "127.0.0.1", "--port", str(free_port()), "--ui-port", "0",
           "--data-dir", str(data)]
    p = subprocess.Popen(cmd, env=hermetic_env(env), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate(timeout=5)
        pytest.fail(f"scoutd kept running for {timeout}s instead of refusing to start\n"
                    f"stderr: {err[-500:]!r}", pytrace=False)
    return p.returncode, err.decode(errors="replace")


# Endpoints that need admin scope when protection is on: (method, path, JSON body or None).
# {mid} is a live test, {tid} the id of some other token.
ADMIN_ONLY = [
    ("POST", "/api/create_model", {"name": "sneaky", "variants": {"0": "A", "1": "B"}}),
    ("POST", "/api/delete_model/{mid}", None),
    ("GET", "/api/models", None),
    ("GET", "/api/model_details/{mid}", None),
    ("POST", "/api/rollout_global_variant/{mid}", {"variant": "A"}),
    ("POST", "/api/clear_global_variant/{mid}", None),
    ("GET", "/admin/get_protection", None),
    ("POST", "/admin/set_protection", {"protected_api": False}),
    ("POST", "/admin/generate_token", {}),
    ("GET", "/admin/tokens", None),
    ("POST", "/admin/tokens/{tid}/revoke", None),
    ("POST", "/admin/tokens/{tid}/rotate", {"grace_seconds": 0}),
    ("GET", "/admin/model_config", None),
    ("POST", "/admin/model_config", {"time_window_minutes": 5}),
    ("GET", "/admin/system_config", None),
    ("POST", "/admin/system_config", {"host": "0.0.0.0", "port": 8000, "debug": True}),
    ("GET", "/admin/redis_config", None),
    ("POST", "/admin/redis_config", {"host": "evil.example", "port": 6379, "ttl": 1}),
    ("GET", "/admin/redis_health", None),
]
MALFORMED_AUTH = ["Basic x", "Bearer", "Bearer ", "Bearer a b", "Token abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
                  "Basic " + base64.b64encode(b"admin:admin").decode(), "bearer:x", "Bearer\tx y"]


def fetch_body(mid):
    return {"cb_model_id": mid}


def update_body():
    return {"updates": [{"decision": "A", "reward": 1}]}


# =========================================================================== refusals (401)


def test_request_without_a_token_is_a_401_with_a_bearer_challenge(guarded):
    s = guarded
    mid = create_test_as(s, s.boot)
    for method, path, body in [("GET", "/api/models", None),
                               ("POST", "/api/fetch_recommended_variant", fetch_body(mid)),
                               ("POST", f"/api/update_model/{mid}", update_body()),
                               ("POST", "/api/create_model", {"name": "x", "variants": {"0": "A"}}),
                               ("GET", "/admin/get_protection", None),
                               ("POST", "/admin/generate_token", {}),
                               ("GET", "/admin/tokens", None),
                               ("GET", "/admin/model_config", None)]:
        r = call(s, method, path, json=body)
        assert_unauthorized(r)
    after = summary_as(s, mid, s.boot)
    assert after["prediction_requests"] == 0 and after["update_requests"] == 0


def test_malformed_authorization_header_is_a_401(guarded):
    s = guarded
    wrong = []
    for value in MALFORMED_AUTH:
        for path in ("/api/models", "/admin/tokens"):
            r = call(s, "GET", path, headers={"Authorization": value})
            if r.status_code != 401 or not r.headers.get("WWW-Authenticate", "").startswith("Bearer"):
                wrong.append(f"{value!r} on {path} -> {r.status_code} {r.headers.get('WWW-Authenticate')!r}")
            else:
                assert_unauthorized(r)
    assert not wrong, "malformed Authorization headers not refused with a 401:\n" + "\n".join(wrong)


def test_valid_token_in_a_malformed_header_is_a_401(guarded):
    """The bootstrap token itself is refused unless it comes as exactly `Bearer <token>`."""
    s = guarded
    boot = s.boot
    for value in (boot, f"Basic {boot}", f"Token {boot}", f"Bearer {boot} extra", f"Bearer {boot},x",
                  "Basic " + base64.b64encode(f"admin:{boot}".encode()).decode(), f"{boot} Bearer"):
        assert_unauthorized(call(s, "GET", "/api/models", headers={"Authorization": value}))
    assert call(s, "GET", "/api/models", boot).status_code == 200


def test_unknown_token_is_a_401_even_when_it_nearly_matches_a_real_one(guarded):
    s = guarded
    real = generate(s, s.boot)["token"]
    flip = lambda c: "A" if c != "A" else "B"  # noqa: E731
    near = [real[:-1], real + "x", real[:-1] + flip(real[-1]), flip(real[0]) + real[1:], real.upper()
            if real.upper() != real else real.lower(), real[: len(real) // 2], s.boot[:-1],
            s.boot + "A", secrets.token_urlsafe(32), "x" * 43, "A" * 8000]
    for wrong in near:
        assert_unauthorized(call(s, "GET", "/api/models", wrong))
        assert_unauthorized(call(s, "POST", "/api/fetch_recommended_variant", wrong, json={"cb_model_id": "x"}))
    assert call(s, "GET", "/api/models", real).status_code == 200


def test_expired_token_is_refused_once_its_lifetime_ends(guarded):
    s = guarded
    t0 = time.monotonic()
    short = generate(s, s.boot, {"name": "short-lived", "ttl_seconds": 1})
    longer = generate(s, s.boot, {"name": "longer", "ttl_seconds": 600})
    life = parse_iso_utc(short["expires_at"]) - parse_iso_utc(short["created_at"])
    assert 0.5 <= life.total_seconds() <= 1.5, (short["created_at"], short["expires_at"])
    r = call(s, "GET", "/api/models", short["token"])
    if time.monotonic() - t0 < 0.5:
        assert r.status_code == 200, f"a 1 s token was refused after {time.monotonic() - t0:.2f}s: {r.text}"
    refused = refused_soon(s, "GET", "/api/models", short["token"], timeout=5.0)
    assert_unauthorized(refused)
    assert time.monotonic() - t0 >= 0.5, "the token was refused before its lifetime ended"
    assert_unauthorized(call(s, "POST", "/api/fetch_recommended_variant", short["token"],
                             json={"cb_model_id": "x"}))
    assert call(s, "GET", "/api/models", longer["token"]).status_code == 200
    assert token_state(s, s.boot, short["id"]) == "expired"
    assert token_state(s, s.boot, longer["id"]) == "active"


def test_revoked_token_is_refused_at_once(guarded):
    s = guarded
    victim = generate(s, s.boot, {"name": "victim"})
    other = generate(s, s.boot, {"name": "bystander"})
    assert call(s, "GET", "/api/models", victim["token"]).status_code == 200
    r = call(s, "POST", f"/admin/tokens/{victim['id']}/revoke", s.boot)
    assert r.status_code == 200, r.text
    assert victim["token"] not in r.text
    assert_unauthorized(call(s, "GET", "/api/models", victim["token"]))
    assert_unauthorized(call(s, "GET", "/admin/tokens", victim["token"]))
    assert call(s, "GET", "/api/models", other["token"]).status_code == 200
    assert token_state(s, s.boot, victim["id"]) == "revoked"
    assert token_state(s, s.boot, other["id"]) == "active"


def test_revoked_token_cannot_revoke_or_rotate_itself_back(guarded):
    s = guarded
    victim = generate(s, s.boot)
    assert call(s, "POST", f"/admin/tokens/{victim['id']}/revoke", s.boot).status_code == 200
    assert_unauthorized(call(s, "POST", f"/admin/tokens/{victim['id']}/rotate", victim["token"], json={}))
    assert_unauthorized(call(s, "POST", "/admin/generate_token", victim["token"], json={}))
    assert token_state(s, s.boot, victim["id"]) == "revoked"


def test_rotated_token_is_refused_after_its_grace_period(guarded):
    s = guarded
    old = generate(s, s.boot, {"name": "to-rotate"})
    t0 = time.monotonic()
    r = call(s, "POST", f"/admin/tokens/{old['id']}/rotate", s.boot, json={"grace_seconds": 1})
    assert r.status_code == 200, r.text
    new = assert_token_created(r.json())
    assert new["replaces"] == old["id"], new
    assert new["token"] != old["token"] and new["id"] != old["id"]
    assert old["token"] not in r.text, "the rotate answer shows the old secret"
    if time.monotonic() - t0 < 0.5:
        assert call(s, "GET", "/api/models", old["token"]).status_code == 200, "refused within its grace"
    refused = refused_soon(s, "GET", "/api/models", old["token"], timeout=5.0)
    assert_unauthorized(refused)
    assert time.monotonic() - t0 >= 0.5, "the old token was refused before its grace period ended"
    assert call(s, "GET", "/api/models", new["token"]).status_code == 200
    assert token_state(s, s.boot, old["id"]) == "rotated"
    assert token_state(s, s.boot, new["id"]) == "active"


def test_rotated_token_keeps_working_within_its_grace_period(guarded):
    s = guarded
    old = generate(s, s.boot, {"name": "client", "scope": "client"})
    r = call(s, "POST", f"/admin/tokens/{old['id']}/rotate", s.boot)  # no body: grace 3600 s
    assert r.status_code == 200, r.text
    new = assert_token_created(r.json(), scope="client")
    assert new["replaces"] == old["id"]
    mid = create_test_as(s, s.boot)
    for tok in (old["token"], new["token"]):
        r = call(s, "POST", "/api/fetch_recommended_variant", tok, json=fetch_body(mid))
        assert r.status_code == 200, r.text
        assert_forbidden(call(s, "GET", "/api/models", tok))  # the scope is kept
    # an explicit grace works the same way
    old2 = generate(s, s.boot, {"name": "admin"})
    r = call(s, "POST", f"/admin/tokens/{old2['id']}/rotate", s.boot, json={"grace_seconds": 3600})
    assert r.status_code == 200, r.text
    new2 = assert_token_created(r.json())
    for tok in (old2["token"], new2["token"]):
        assert call(s, "GET", "/api/models", tok).status_code == 200


def test_only_an_active_token_not_yet_rotated_can_be_rotated(guarded):
    s = guarded
    revoked = generate(s, s.boot, {"name": "gone", "scope": "client"})
    assert call(s, "POST", f"/admin/tokens/{revoked['id']}/revoke", s.boot).status_code == 200
    assert_error(call(s, "POST", f"/admin/tokens/{revoked['id']}/rotate", s.boot), 409)
    rotated = generate(s, s.boot, {"name": "twice"})
    r = call(s, "POST", f"/admin/tokens/{rotated['id']}/rotate", s.boot, json={"grace_seconds": 10})
    assert r.status_code == 200, r.text
    assert r.json()["old_valid_for_seconds"] == 10
    assert_error(call(s, "POST", f"/admin/tokens/{rotated['id']}/rotate", s.boot), 409)
    # no second successor was minted by the refused calls
    names = [t["name"] for t in token_list(s, s.boot)]
    assert names.count("twice") == 2 and names.count("gone") == 1, names


def test_revoke_and_rotate_of_an_unknown_token_are_a_404(guarded):
    s = guarded
    for ident in ("00000000-0000-4000-8000-000000000000", "nope", "1"):
        assert_error(call(s, "POST", f"/admin/tokens/{ident}/revoke", s.boot), 404)
        assert_error(call(s, "POST", f"/admin/tokens/{ident}/rotate", s.boot, json={}), 404)


def test_all_401_refusals_share_one_detail_text(guarded):
    """Missing, malformed, unknown, expired, revoked and rotated-out tokens are indistinguishable."""
    s = guarded
    mid = create_test_as(s, s.boot)
    expiring = generate(s, s.boot, {"ttl_seconds": 1})
    revoked = generate(s, s.boot)
    assert call(s, "POST", f"/admin/tokens/{revoked['id']}/revoke", s.boot).status_code == 200
    rotated = generate(s, s.boot)
    assert call(s, "POST", f"/admin/tokens/{rotated['id']}/rotate", s.boot,
                json={"grace_seconds": 1}).status_code == 200
    refused_soon(s, "GET", "/api/models", expiring["token"], timeout=5.0)
    refused_soon(s, "GET", "/api/models", rotated["token"], timeout=5.0)

    headers = [{}] + [{"Authorization": v} for v in MALFORMED_AUTH] + [
        bearer(t) for t in (secrets.token_urlsafe(32), revoked["token"], expiring["token"],
                            rotated["token"], s.boot[:-1] + ("A" if s.boot[-1] != "A" else "B"))]
    details = set()
    for h in headers:
        for method, path, body in (("GET", "/api/models", None),
                                   ("POST", "/api/fetch_recommended_variant", fetch_body(mid)),
                                   ("POST", f"/api/update_model/{mid}", update_body()),
                                   ("GET", "/admin/tokens", None)):
            r = call(s, method, path, headers=h, json=body)
            assert_unauthorized(r)
            details.add(r.json()["detail"])
    assert len(details) == 1, f"401 detail texts differ, revealing why a token failed: {sorted(details)}"


# =========================================================================== scopes (403)


def test_client_token_is_forbidden_on_every_admin_endpoint(guarded):
    s = guarded
    mid = create_test_as(s, s.boot)
    client = generate(s, s.boot, {"name": "app", "scope": "client"})
    bystander = generate(s, s.boot, {"name": "bystander"})
    config_before = call(s, "GET", "/admin/model_config", s.boot).json()
    wrong = []
    for method, path, body in ADMIN_ONLY:
        path = path.format(mid=mid, tid=bystander["id"])
        r = call(s, method, path, client["token"], json=body)
        if r.status_code != 403:
            wrong.append(f"{method} {path} -> {r.status_code} {r.text[:120]}")
            continue
        assert_forbidden(r)
    assert not wrong, "a client token reached admin endpoints:\n" + "\n".join(wrong)
    # and nothing happened
    models = call(s, "GET", "/api/models", s.boot).json()
    assert [m["model_id"] for m in models] == [mid], models
    assert models[0]["global_rolled_out"] is False
    assert call(s, "GET", "/admin/get_protection", s.boot).json()["protected_api"] is True
    assert call(s, "GET", "/admin/model_config", s.boot).json() == config_before
    assert call(s, "GET", "/api/models", bystander["token"]).status_code == 200
    assert token_state(s, s.boot, bystander["id"]) == "active"
    assert_unauthorized(call(s, "GET", "/api/models"))


def test_client_token_may_fetch_and_update(guarded):
    s = guarded
    mid = create_test_as(s, s.boot)
    client = generate(s, s.boot, {"name": "app", "scope": "client"})
    r = call(s, "POST", "/api/fetch_recommended_variant", client["token"], json=fetch_body(mid))
    assert r.status_code == 200, r.text
    decision = r.json()
    r = call(s, "POST", f"/api/update_model/{mid}", client["token"],
             json={"updates": [{"decision": decision["recommended_variant"], "reward": 1,
                                "request_id": decision["request_id"]}]})
    assert r.status_code == 200, r.text
    assert r.json()["processed_updates"] == 1
    summ = summary_as(s, mid, s.boot)
    assert summ["prediction_requests"] == 1 and summ["update_requests"] == 1


def test_admin_token_is_accepted_everywhere(guarded):
    s = guarded
    admin = generate(s, s.boot, {"name": "ops"})
    for tok in (s.boot, admin["token"]):
        mid = create_test_as(s, tok)
        for method, path, body in [("GET", "/api/models", None), ("GET", f"/api/model_details/{mid}", None),
                                   ("POST", "/api/fetch_recommended_variant", fetch_body(mid)),
                                   ("POST", f"/api/update_model/{mid}", update_body()),
                                   ("POST", f"/api/rollout_global_variant/{mid}", {"variant": "A"}),
                                   ("POST", f"/api/clear_global_variant/{mid}", None),
                                   ("GET", "/admin/get_protection", None), ("GET", "/admin/tokens", None),
                                   ("GET", "/admin/model_config", None), ("GET", "/admin/system_config", None),
                                   ("GET", "/admin/redis_config", None), ("GET", "/admin/redis_health", None),
                                   ("POST", f"/api/delete_model/{mid}", None)]:
            r = call(s, method, path, tok, json=body)
            assert r.status_code == 200, f"{method} {path} -> {r.status_code} {r.text[:200]}"


def test_open_endpoints_need_no_token_when_protected(guarded):
    s = guarded
    for path in ("/docs", "/healthz", "/readyz", "/metrics"):
        r = call(s, "GET", path)
        assert r.status_code == 200, f"{path} -> {r.status_code} {r.text[:200]}"
        for secret in secret_fragments(s.boot):
            assert secret not in r.text


# =========================================================================== rate limit


def throttle_env(**extra):
    return {"SCOUT_PROTECTED_API": "true", "SCOUT_AUTH_MAX_FAILURES": "3",
            "SCOUT_AUTH_BACKOFF_SECONDS": "2", **extra}


def assert_throttled(r, backoff):
    assert r.status_code == 429, f"expected 429, got {r.status_code}: {r.text[:200]}"
    retry = r.headers.get("Retry-After")
    assert retry is not None and re.fullmatch(r"\d+", retry.strip()), f"Retry-After {retry!r}"
    assert 1 <= int(retry) <= backoff, f"Retry-After {retry} with a backoff of {backoff}s"
    return int(retry)


def test_rate_limit_answers_429_with_retry_after_but_never_refuses_a_valid_token(scout_factory):
    boot = new_bootstrap_token()
    s = scout_factory(env={"SCOUT_AUTH_TOKEN": boot, **throttle_env()})
    client = generate(s, boot, {"scope": "client"})
    mid = create_test_as(s, boot)
    for _ in range(3):
        assert_unauthorized(call(s, "GET", "/api/models", "wrong-" + secrets.token_urlsafe(32)))
    assert_throttled(call(s, "GET", "/api/models"), backoff=2)
    assert_throttled(call(s, "GET", "/api/models", "wrong-" + secrets.token_urlsafe(32)), backoff=2)
    assert_throttled(call(s, "GET", "/api/models", headers={"Authorization": "Basic x"}), backoff=2)
    # the same address with a valid token is served, whatever its scope
    assert call(s, "GET", "/api/models", boot).status_code == 200
    r = call(s, "POST", "/api/fetch_recommended_variant", client["token"], json=fetch_body(mid))
    assert r.status_code == 200, r.text
    r = call(s, "POST", f"/api/update_model/{mid}", client["token"], json=update_body())
    assert r.status_code == 200, r.text
    # a valid token on an endpoint it may not use is still a 403, not a 429
    assert_forbidden(call(s, "GET", "/api/models", client["token"]))
    assert_throttled(call(s, "GET", "/api/models"), backoff=2)


def test_rate_limit_lifts_after_the_backoff(scout_factory):
    boot = new_bootstrap_token()
    s = scout_factory(env={"SCOUT_AUTH_TOKEN": boot, **throttle_env()})
    for _ in range(3):
        assert_unauthorized(call(s, "GET", "/api/models"))
    tripped = time.monotonic()
    retry = assert_throttled(call(s, "GET", "/api/models"), backoff=2)
    # wait out exactly what the server asked for (plus scheduling slack), sending nothing meanwhile
    time.sleep(max(0.0, retry - (time.monotonic() - tripped)) + 0.3)
    assert_unauthorized(call(s, "GET", "/api/models"))
    assert call(s, "GET", "/api/models", boot).status_code == 200


def test_default_rate_limit_is_ten_failures(scout_factory):
    boot = new_bootstrap_token()
    s = scout_factory(env={"SCOUT_PROTECTED_API": "true", "SCOUT_AUTH_TOKEN": boot})
    for i in range(10):
        r = call(s, "GET", "/api/models")
        assert r.status_code == 401, f"failure #{i + 1} -> {r.status_code}"
    assert_throttled(call(s, "GET", "/api/models"), backoff=60)
    assert call(s, "GET", "/api/models", boot).status_code == 200


def test_forged_x_forwarded_for_does_not_dodge_the_rate_limit(scout_factory):
    boot = new_bootstrap_token()
    s = scout_factory(env={"SCOUT_AUTH_TOKEN": boot, **throttle_env()})
    for i in range(3):
        r = call(s, "GET", "/api/models", headers={"X-Forwarded-For": f"203.0.113.{i + 1}"})
        assert_unauthorized(r)
    for forged in ("203.0.113.99", "198.51.100.7, 203.0.113.50", "127.0.0.2", "::1", "garbage"):
        r = call(s, "GET", "/api/models", headers={"X-Forwarded-For": forged, "X-Real-IP": forged})
        assert_throttled(r, backoff=2)
    assert call(s, "GET", "/api/models", boot, headers={"X-Forwarded-For": "203.0.113.1"}).status_code == 200


@pytest.mark.parametrize("proxies", ["10.9.9.9,127.0.0.1", "10.9.0.0/16, 127.0.0.0/8"])
def test_x_forwarded_for_is_honoured_only_from_a_trusted_proxy(scout_factory, proxies):
    """Behind a trusted proxy (here: the test itself on 127.0.0.1) each client is limited on its
    own, keyed on the rightmost address that is not a trusted proxy. Proxies are listed as
    addresses or as ranges (a cluster's pod network)."""
    boot = new_bootstrap_token()
    s = scout_factory(env={"SCOUT_AUTH_TOKEN": boot, "SCOUT_TRUSTED_PROXIES": proxies,
                           **throttle_env()})
    attacker = "203.0.113.7"
    for _ in range(3):
        assert_unauthorized(call(s, "GET", "/api/models", headers={"X-Forwarded-For": attacker}))
    assert_throttled(call(s, "GET", "/api/models", headers={"X-Forwarded-For": attacker}), backoff=2)
    # prepending forged addresses does not help: the proxy appends the real one on the right
    assert_throttled(call(s, "GET", "/api/models",
                          headers={"X-Forwarded-For": f"198.51.100.1, {attacker}"}), backoff=2)
    # nor does a trusted proxy between the attacker and us
    assert_throttled(call(s, "GET", "/api/models",
                          headers={"X-Forwarded-For": f"{attacker}, 10.9.9.9"}), backoff=2)
    # another client behind the same proxy is not punished for the attacker's failures
    assert_unauthorized(call(s, "GET", "/api/models", headers={"X-Forwarded-For": "198.51.100.1"}))
    assert_unauthorized(call(s, "GET", "/api/models",
                             headers={"X-Forwarded-For": f"{attacker}, 198.51.100.2"}))
    # the attacker with a valid token is served
    assert call(s, "GET", "/api/models", boot, headers={"X-Forwarded-For": attacker}).status_code == 200


@pytest.mark.parametrize("proxies", ["10.0.0.0/33", "nginx", "10.0.0.1, 10.0.0.300"])
def test_a_malformed_trusted_proxy_entry_stops_scoutd_and_names_it(tmp_path, proxies):
    code, err = start_expecting_exit(tmp_path, {"SCOUT_TRUSTED_PROXIES": proxies})
    assert code == 2, f"scoutd exited {code} with SCOUT_TRUSTED_PROXIES={proxies!r}"
    assert "SCOUT_TRUSTED_PROXIES" in err and proxies.split(",")[-1].strip() in err, err


# =========================================================================== switching protection


def test_protection_is_off_by_default_and_everything_is_open(scout):
    r = call(scout, "GET", "/admin/get_protection")
    assert r.status_code == 200 and r.json()["protected_api"] is False, r.text
    mid = create_test_as(scout, None)
    for method, path, body in [("GET", "/api/models", None), ("GET", f"/api/model_details/{mid}", None),
                               ("POST", "/api/fetch_recommended_variant", fetch_body(mid)),
                               ("POST", f"/api/update_model/{mid}", update_body()),
                               ("GET", "/admin/model_config", None), ("GET", "/metrics", None)]:
        r = call(scout, method, path, json=body)
        assert r.status_code == 200, f"{method} {path} -> {r.status_code} {r.text[:200]}"
    # an unknown token is irrelevant while protection is off
    assert call(scout, "GET", "/api/models", "whatever").status_code == 200


def set_protection(scout, token, data):
    return call(scout, "POST", "/admin/set_protection", token, data=data,
                headers={"Content-Type": "application/json"})


def assert_protection_answer(r, expected):
    assert r.status_code == 200, f"set_protection -> {r.status_code} {r.text}"
    body = r.json()
    assert body["protected_api"] is expected, body
    assert isinstance(body.get("message"), str) and body["message"], body


def test_set_protection_accepts_a_bare_boolean_and_an_object(scout_factory):
    boot = new_bootstrap_token()
    s = scout_factory(env={"SCOUT_AUTH_TOKEN": boot, **LENIENT})
    assert_protection_answer(set_protection(s, None, b"true"), True)
    assert_unauthorized(call(s, "GET", "/api/models"))
    assert call(s, "GET", "/admin/get_protection", boot).json()["protected_api"] is True
    assert_protection_answer(set_protection(s, boot, b"false"), False)
    assert call(s, "GET", "/api/models").status_code == 200
    assert_protection_answer(set_protection(s, None, json.dumps({"protected_api": True}).encode()), True)
    assert_unauthorized(call(s, "GET", "/api/models"))
    assert_unauthorized(set_protection(s, None, b"false"))  # switching off needs a token too
    assert_protection_answer(set_protection(s, boot, json.dumps({"protected_api": False}).encode()), False)
    assert call(s, "GET", "/api/models").status_code == 200


SET_PROTECTION_BAD_BODIES = [
    (b'"yes"', 422), (b"1", 422), (b"null", 422), (b"[true]", 422), (b'{"protected_api": "true"}', 422),
    (b'{"protected_api": 1}', 422), (b'{"protected_api": null}', 422), (b"{}", 422), (b"tru", 400),
    (b"", (400, 422)),
]


def test_set_protection_refuses_anything_but_a_boolean(scout_factory):
    boot = new_bootstrap_token()
    s = scout_factory(env={"SCOUT_AUTH_TOKEN": boot, **LENIENT})
    wrong = []
    for data, status in SET_PROTECTION_BAD_BODIES:
        statuses = status if isinstance(status, tuple) else (status,)
        r = set_protection(s, None, data)
        if r.status_code not in statuses:
            wrong.append(f"{data!r} -> {r.status_code} {r.text[:100]} (expected {statuses})")
        else:
            assert_error(r, r.status_code)
        if call(s, "GET", "/admin/get_protection", boot).json()["protected_api"] is not False:
            wrong.append(f"{data!r} switched protection on")
            assert_protection_answer(set_protection(s, boot, b"false"), False)
    assert not wrong, "set_protection accepted bad bodies:\n" + "\n".join(wrong)


def test_protection_state_persists_across_restart(scout_factory):
    boot = new_bootstrap_token()
    s = scout_factory(env={"SCOUT_AUTH_TOKEN": boot, **LENIENT})
    assert_protection_answer(set_protection(s, None, b"true"), True)
    s.restart()
    assert_unauthorized(call(s, "GET", "/api/models"))
    assert call(s, "GET", "/admin/get_protection", boot).json()["protected_api"] is True
    assert_protection_answer(set_protection(s, boot, b"false"), False)
    s.restart()
    assert call(s, "GET", "/api/models").status_code == 200
    assert call(s, "GET", "/admin/get_protection").json()["protected_api"] is False


def test_protection_env_var_overrides_the_stored_state_at_start(scout_factory):
    boot = new_bootstrap_token()
    s = scout_factory(env={"SCOUT_AUTH_TOKEN": boot, **LENIENT})
    assert_protection_answer(set_protection(s, None, b"true"), True)
    s.extra_env["SCOUT_PROTECTED_API"] = "false"
    s.restart()
    assert call(s, "GET", "/api/models").status_code == 200
    assert call(s, "GET", "/admin/get_protection").json()["protected_api"] is False
    s.extra_env["SCOUT_PROTECTED_API"] = "true"
    s.restart()
    assert_unauthorized(call(s, "GET", "/api/models"))
    assert call(s, "GET", "/admin/get_protection", boot).json()["protected_api"] is True


def test_turning_protection_on_without_a_usable_admin_token_is_a_409(scout):
    s = scout
    assert_error(set_protection(s, None, b"true"), 409)
    assert call(s, "GET", "/admin/get_protection").json()["protected_api"] is False
    assert call(s, "GET", "/api/models").status_code == 200
    # a client token does not count: nobody could switch protection off again
    generate(s, None, {"scope": "client"})
    assert_error(set_protection(s, None, json.dumps({"protected_api": True}).encode()), 409)
    # nor does a revoked admin token
    gone = generate(s, None, {"name": "gone"})
    assert call(s, "POST", f"/admin/tokens/{gone['id']}/revoke").status_code == 200
    assert_error(set_protection(s, None, b"true"), 409)
    assert call(s, "GET", "/admin/get_protection").json()["protected_api"] is False
    # with a live admin token it works, and that token is then required
    admin = generate(s, None, {"name": "admin"})
    assert_protection_answer(set_protection(s, None, b"true"), True)
    assert_unauthorized(call(s, "GET", "/api/models"))
    assert call(s, "GET", "/api/models", admin["token"]).status_code == 200


# =========================================================================== start-up configuration


def test_protected_start_with_a_bootstrap_token_from_the_environment(scout_factory):
    boot = new_bootstrap_token()
    s = scout_factory(env={"SCOUT_PROTECTED_API": "true", "SCOUT_AUTH_TOKEN": boot, **LENIENT})
    assert_unauthorized(call(s, "GET", "/api/models"))
    r = call(s, "GET", "/admin/get_protection", boot)
    assert r.status_code == 200 and r.json()["protected_api"] is True, r.text
    mid = create_test_as(s, boot)
    assert call(s, "POST", "/api/fetch_recommended_variant", boot, json=fetch_body(mid)).status_code == 200
    generate(s, boot)


def test_protected_start_with_a_bootstrap_token_from_a_file(scout_factory, tmp_path):
    boot = new_bootstrap_token()
    secret_file = tmp_path / "auth-token"
    secret_file.write_text(boot + "\n")  # what `kubectl create secret --from-file` leaves
    s = scout_factory(env={"SCOUT_PROTECTED_API": "true", "SCOUT_AUTH_TOKEN_FILE": str(secret_file), **LENIENT})
    assert_unauthorized(call(s, "GET", "/api/models"))
    assert call(s, "GET", "/api/models", boot).status_code == 200
    assert call(s, "GET", "/admin/get_protection", boot).json()["protected_api"] is True


def test_bootstrap_token_of_exactly_32_characters_is_accepted(scout_factory):
    boot = secrets.token_urlsafe(24)
    assert len(boot) == 32
    s = scout_factory(env={"SCOUT_PROTECTED_API": "true", "SCOUT_AUTH_TOKEN": boot, **LENIENT})
    assert call(s, "GET", "/api/models", boot).status_code == 200
    assert_unauthorized(call(s, "GET", "/api/models", boot[:-1]))


@pytest.mark.parametrize("how", ["env-protected", "env-unprotected", "file"])
def test_bootstrap_token_shorter_than_32_characters_stops_scoutd(tmp_path, how):
    short = secrets.token_urlsafe(24)[:31]
    if how == "file":
        f = tmp_path / "short-token"
        f.write_text(short + "\n")
        env = {"SCOUT_PROTECTED_API": "true", "SCOUT_AUTH_TOKEN_FILE": str(f)}
    elif how == "env-protected":
        env = {"SCOUT_PROTECTED_API": "true", "SCOUT_AUTH_TOKEN": short}
    else:
        env = {"SCOUT_AUTH_TOKEN": short}
    code, err = start_expecting_exit(tmp_path, env)
    assert code != 0, f"scoutd exited 0 with a {len(short)}-character bootstrap token"
    assert err.strip(), "scoutd refused to start without saying why on stderr"


def test_generated_token_lifetime_follows_the_request_then_the_configured_default(scout_factory):
    def lifetime(tok):
        if tok["expires_at"] is None:
            return None
        return (parse_iso_utc(tok["expires_at"]) - parse_iso_utc(tok["created_at"])).total_seconds()

    boot = new_bootstrap_token()
    s = scout_factory(env={"SCOUT_AUTH_TOKEN": boot, **LENIENT})  # default TTL: 24 h
    assert abs(lifetime(generate(s, None)) - 24 * 3600) <= 2
    assert abs(lifetime(generate(s, None, {"ttl_hours": 2})) - 2 * 3600) <= 2
    assert abs(lifetime(generate(s, None, {"ttl_hours": 0.5})) - 1800) <= 2
    assert lifetime(generate(s, None, {"ttl_hours": 0})) is None
    assert abs(lifetime(generate(s, None, {"ttl_seconds": 90})) - 90) <= 2
    assert abs(lifetime(generate(s, None, {"ttl_hours": 0, "ttl_seconds": 90})) - 90) <= 2
    named = generate(s, None, {"name": "n" * 64, "scope": "client"})
    assert named["name"] == "n" * 64 and named["scope"] == "client"
    r = call(s, "POST", "/admin/generate_token", data=b"")  # no body at all: an admin token
    assert r.status_code == 200, r.text
    assert_token_created(r.json(), scope="admin")

    s2 = scout_factory(env={"SCOUT_TOKEN_TTL_HOURS": "2", **LENIENT})
    assert abs(lifetime(generate(s2, None)) - 2 * 3600) <= 2
    s3 = scout_factory(env={"SCOUT_TOKEN_TTL_HOURS": "0", **LENIENT})
    assert lifetime(generate(s3, None)) is None


def test_generated_tokens_are_distinct_and_long(scout):
    tokens = {generate(scout, None)["token"] for _ in range(20)}
    assert len(tokens) == 20
    assert all(len(t) >= 43 for t in tokens)


GENERATE_BAD_BODIES = [
    ({"scope": "root"}, 400), ({"scope": ""}, 400), ({"scope": "Admin "}, 400), ({"ttl_hours": -1}, 400),
    ({"ttl_seconds": 0}, 400), ({"ttl_seconds": -5}, 400), ({"name": "n" * 65}, 400),
    ({"scope": 5}, 422), ({"scope": None}, 422), ({"ttl_hours": "1"}, 422), ({"ttl_seconds": 1.5}, 422),
    ({"ttl_seconds": "60"}, 422), ({"ttl_seconds": True}, 422), ({"name": 7}, 422), ([], 422), ("x", 422),
]


def test_generate_token_refuses_a_bad_body(guarded):
    s = guarded
    before = len(token_list(s, s.boot))
    wrong = []
    for body, status in GENERATE_BAD_BODIES:
        r = call(s, "POST", "/admin/generate_token", s.boot, json=body)
        if r.status_code != status:
            wrong.append(f"{json.dumps(body)[:60]} -> {r.status_code} (expected {status}) {r.text[:80]}")
        else:
            assert_error(r, status)
    assert not wrong, "generate_token accepted or misjudged bad bodies:\n" + "\n".join(wrong)
    assert len(token_list(s, s.boot)) == before


def test_rotate_refuses_a_bad_body(guarded):
    s = guarded
    tok = generate(s, s.boot)
    wrong = []
    for body, status in [({"grace_seconds": -1}, 400), ({"grace_seconds": "60"}, 422),
                         ({"grace_seconds": 1.5}, 422), ({"grace_seconds": None}, 422), ([], 422)]:
        r = call(s, "POST", f"/admin/tokens/{tok['id']}/rotate", s.boot, json=body)
        if r.status_code != status:
            wrong.append(f"{json.dumps(body)} -> {r.status_code} (expected {status}) {r.text[:80]}")
        else:
            assert_error(r, status)
    assert not wrong, "rotate accepted or misjudged bad bodies:\n" + "\n".join(wrong)
    assert token_state(s, s.boot, tok["id"]) == "active"
    assert call(s, "GET", "/api/models", tok["token"]).status_code == 200


# =========================================================================== listing never shows secrets


def test_token_list_shows_metadata_and_states_but_never_secrets(guarded):
    s = guarded
    active = generate(s, s.boot, {"name": "active"})
    client = generate(s, s.boot, {"name": "client", "scope": "client"})
    revoked = generate(s, s.boot, {"name": "revoked"})
    rotated = generate(s, s.boot, {"name": "rotated"})
    expiring = generate(s, s.boot, {"name": "expiring", "ttl_seconds": 1})
    assert call(s, "POST", f"/admin/tokens/{revoked['id']}/revoke", s.boot).status_code == 200
    r = call(s, "POST", f"/admin/tokens/{rotated['id']}/rotate", s.boot, json={"grace_seconds": 0})
    assert r.status_code == 200, r.text
    successor = r.json()
    refused_soon(s, "GET", "/api/models", expiring["token"], timeout=5.0)
    assert call(s, "GET", "/api/models", active["token"]).status_code == 200

    r = call(s, "GET", "/admin/tokens", s.boot)
    assert r.status_code == 200, r.text
    listing = token_list(s, s.boot)
    by_id = {t["id"]: t for t in listing}
    made = {t["id"]: t for t in (active, client, revoked, rotated, expiring, successor)}
    expected = {active["id"]: ("active", "admin", "active"), client["id"]: ("active", "client", "client"),
                revoked["id"]: ("revoked", "admin", "revoked"), rotated["id"]: ("rotated", "admin", "rotated"),
                expiring["id"]: ("expired", "admin", "expiring"), successor["id"]: ("active", "admin", None)}
    for ident, (state, scope, name) in expected.items():
        assert ident in by_id, f"token {ident} missing from the list"
        entry = by_id[ident]
        assert entry["state"] == state, entry
        assert entry["scope"] == scope, entry
        if name is not None:
            assert entry["name"] == name, entry
        parse_iso_utc(entry["created_at"])
        assert entry["fingerprint"] == made[ident]["fingerprint"], (entry, made[ident]["fingerprint"])
    assert by_id[expiring["id"]]["expires_at"] is not None
    secrets_seen = [t["token"] for t in (active, client, revoked, rotated, expiring, successor)] + [s.boot]
    for entry in listing:
        assert not {"token", "auth_token", "secret", "hash", "token_hash", "secret_hash"} & set(entry), entry
    for text in (r.text, call(s, "GET", "/admin/get_protection", s.boot).text):
        for secret in secrets_seen:
            for fragment in secret_fragments(secret):
                assert fragment not in text, "a token secret appears in the token list or protection state"
            for form in hash_forms(secret):
                assert form not in text, "a token's hash appears in the token list or protection state"


# =========================================================================== metrics and security log


def test_every_refusal_is_counted_by_reason_in_metrics_and_logged(guarded):
    s = guarded
    mid = create_test_as(s, s.boot)
    client = generate(s, s.boot, {"scope": "client"})
    revoked = generate(s, s.boot)
    assert call(s, "POST", f"/admin/tokens/{revoked['id']}/revoke", s.boot).status_code == 200
    expiring = generate(s, s.boot, {"ttl_seconds": 1})
    unknown = [secrets.token_urlsafe(32), client["token"][:-2] + "zz"]
    start = auth_failures(s)
    assert sum(start.values()) == 0, f"refusals counted before any request was refused: {start}"

    per_kind = {}
    refusals = 0
    for kind, make in [
        # polling for the expiry: every 200 is no refusal, the one 401 that ends the poll is
        ("expired", lambda: [refused_soon(s, "GET", "/api/models", expiring["token"], timeout=5.0)]),
        ("missing", lambda: [call(s, "GET", "/api/models"),
                             call(s, "POST", "/api/fetch_recommended_variant", json=fetch_body(mid))]),
        ("malformed", lambda: [call(s, "GET", "/api/models", headers={"Authorization": v})
                               for v in ("Basic x", "Bearer", "Bearer a b")]),
        ("unknown", lambda: [call(s, "GET", "/api/models", t) for t in unknown]),
        ("revoked", lambda: [call(s, "GET", "/api/models", revoked["token"])]),
        ("forbidden", lambda: [call(s, "GET", "/api/models", client["token"]),
                               call(s, "GET", "/admin/tokens", client["token"])]),
    ]:
        m0 = auth_failures(s)
        responses = make()
        m1 = auth_failures(s)
        for r in responses:
            if kind == "forbidden":
                assert_forbidden(r)
            else:
                assert_unauthorized(r)
        d = delta(m0, m1)
        assert sum(d.values()) == len(responses), f"{kind}: {len(responses)} refusals counted as {d}"
        assert len(d) == 1, f"{kind}: one kind of refusal spread over several reasons {d}"
        per_kind[kind] = next(iter(d))
        refusals += len(responses)
    assert per_kind["missing"] != per_kind["forbidden"], per_kind
    assert per_kind["unknown"] != per_kind["forbidden"], per_kind
    total = auth_failures(s)
    assert sum(total.values()) == refusals, f"{refusals} refusals, metrics say {total}"

    # one JSON security event per refusal, with a reason and without the token
    def logged():
        recs = auth_failure_records(s)
        return recs if len(recs) >= refusals else None
    records = wait_until(logged, 3.0, message=f"{refusals} auth_failure log records")
    assert len(records) == refusals, f"{len(records)} auth_failure records for {refusals} refusals"
    for rec in records:
        assert isinstance(rec.get("reason"), str) and rec["reason"], rec
    text = s.log_path.read_text(errors="replace")
    for secret in unknown + [client["token"], revoked["token"], expiring["token"], s.boot]:
        for fragment in secret_fragments(secret):
            assert fragment not in text, "a presented token appears in the server log"


def test_metrics_are_open_by_default_even_with_protection_on(guarded):
    s = guarded
    r = call(s, "GET", "/metrics")
    assert r.status_code == 200, r.text[:200]
    assert "scout_auth_failures_total" in r.text and "scout_api_requests_total" in r.text


def test_metrics_require_a_token_when_configured(scout_factory):
    s = start_protected(scout_factory, SCOUT_METRICS_REQUIRE_TOKEN="true")
    assert_unauthorized(call(s, "GET", "/metrics"))
    assert_unauthorized(call(s, "GET", "/metrics", secrets.token_urlsafe(32)))
    client = generate(s, s.boot, {"scope": "client"})
    for tok in (s.boot, client["token"]):
        r = call(s, "GET", "/metrics", tok)
        assert r.status_code == 200, r.text[:200]
        assert "scout_auth_failures_total" in r.text
    assert sum(auth_failures(s, s.boot).values()) == 2


# =========================================================================== CORS


def allowed_origin_headers(r, origin):
    assert r.headers.get("Access-Control-Allow-Origin") == origin, dict(r.headers)
    vary = [v.strip().lower() for v in r.headers.get("Vary", "").split(",")]
    assert "origin" in vary, f"Vary {r.headers.get('Vary')!r}"


def test_cors_allows_the_ui_origins_by_default(scout_factory):
    ui_port = free_port()
    s = scout_factory(extra_args=["--ui-port", str(ui_port)])
    for origin in (f"http://localhost:{ui_port}", f"http://127.0.0.1:{ui_port}"):
        r = call(s, "GET", "/api/models", headers={"Origin": origin})
        assert r.status_code == 200
        allowed_origin_headers(r, origin)
    for origin in ("http://evil.example", f"http://localhost:{ui_port + 1}", f"https://localhost:{ui_port}",
                   "null", f"http://localhost:{ui_port}.evil.example"):
        r = call(s, "GET", "/api/models", headers={"Origin": origin})
        assert "Access-Control-Allow-Origin" not in r.headers, (origin, dict(r.headers))


def test_cors_allows_only_the_configured_origins(scout_factory):
    s = scout_factory(env={"SCOUT_CORS_ORIGINS": "https://app.example.com,https://admin.example.com"})
    for origin in ("https://app.example.com", "https://admin.example.com"):
        r = call(s, "GET", "/api/models", headers={"Origin": origin})
        assert r.status_code == 200
        allowed_origin_headers(r, origin)
    for origin in ("http://localhost:3000", "http://127.0.0.1:3000", "https://app.example.com.evil.net",
                   "https://evil.example.com", "http://app.example.com", "null", "*"):
        r = call(s, "GET", "/api/models", headers={"Origin": origin})
        assert "Access-Control-Allow-Origin" not in r.headers, (origin, dict(r.headers))
    r = call(s, "GET", "/api/models")
    assert "Access-Control-Allow-Origin" not in r.headers, dict(r.headers)


@pytest.mark.parametrize("protected", [False, True], ids=["open", "protected"])
def test_cors_preflight_from_an_allowed_origin_is_a_204_without_a_token(scout_factory, protected):
    """A browser sends no Authorization header on a preflight, so it must pass even when protected."""
    origin = "https://app.example.com"
    if protected:
        s = start_protected(scout_factory, SCOUT_CORS_ORIGINS=origin)
    else:
        s = scout_factory(env={"SCOUT_CORS_ORIGINS": origin})
    for path in ("/api/fetch_recommended_variant", "/api/create_model", "/admin/set_protection"):
        r = call(s, "OPTIONS", path, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                              "Access-Control-Request-Headers": "authorization, content-type"})
        assert r.status_code == 204, f"preflight {path} -> {r.status_code} {r.text[:200]}"
        allowed_origin_headers(r, origin)
        methods = [m.strip().upper() for m in r.headers.get("Access-Control-Allow-Methods", "").split(",")]
        assert "POST" in methods, dict(r.headers)
        allowed = [h.strip().lower() for h in r.headers.get("Access-Control-Allow-Headers", "").split(",")]
        assert "authorization" in allowed and "content-type" in allowed, dict(r.headers)
    if protected:  # the actual request still needs its token, and the browser may read the 401
        r = call(s, "POST", "/api/create_model", headers={"Origin": origin}, json={})
        assert_unauthorized(r)
        assert r.headers.get("Access-Control-Allow-Origin") == origin, dict(r.headers)


def test_cors_preflight_from_a_disallowed_origin_is_a_403(scout_factory):
    s = scout_factory(env={"SCOUT_CORS_ORIGINS": "https://app.example.com"})
    for origin in ("https://evil.example", "https://app.example.com.evil.net", "null"):
        r = call(s, "OPTIONS", "/api/fetch_recommended_variant",
                 headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                          "Access-Control-Request-Headers": "authorization, content-type"})
        assert_error(r, 403)
        assert "Access-Control-Allow-Origin" not in r.headers, dict(r.headers)


# =========================================================================== operator CLI


def test_cli_token_create_is_accepted_by_the_running_server(guarded):
    s = guarded
    mid = create_test_as(s, s.boot)
    admin = cli_create(s.data_dir, "--name", "cli-admin")
    assert admin["scope"] == "admin"
    assert admin["expires_at"] is not None  # default lifetime 24 h
    client = cli_create(s.data_dir, "--name", "cli-app", "--scope", "client", "--ttl-hours", "1")
    assert client["scope"] == "client"
    life = parse_iso_utc(client["expires_at"]) - datetime.datetime.now(datetime.timezone.utc)
    assert 3500 <= life.total_seconds() <= 3700, client["expires_at"]
    forever = cli_create(s.data_dir, "--name", "cli-forever", "--ttl-hours", "0")
    assert forever["expires_at"] is None
    accepted_soon(s, "GET", "/api/models", admin["token"], timeout=CLI_PROPAGATION)
    accepted_soon(s, "POST", "/api/fetch_recommended_variant", client["token"], timeout=CLI_PROPAGATION,
                  json=fetch_body(mid))
    assert_forbidden(call(s, "GET", "/api/models", client["token"]))
    accepted_soon(s, "GET", "/admin/tokens", forever["token"], timeout=CLI_PROPAGATION)
    listed = {t["id"] for t in token_list(s, s.boot)}
    assert {admin["id"], client["id"], forever["id"]} <= listed


def test_cli_token_list_prints_metadata_only(guarded):
    s = guarded
    made = [cli_create(s.data_dir, "--name", "from-cli"), generate(s, s.boot, {"name": "from-api"})]
    p = cli(s.data_dir, "list")
    lines = [line for line in p.stdout.decode().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]
    assert all(isinstance(e, dict) for e in entries), entries
    ids = {e.get("id") for e in entries}
    assert {m["id"] for m in made} <= ids, (ids, [m["id"] for m in made])
    out = p.stdout.decode() + p.stderr.decode()
    for m in made:
        for fragment in secret_fragments(m["token"]):
            assert fragment not in out, "`scoutd token list` shows a secret"
        for form in hash_forms(m["token"]):
            assert form not in out, "`scoutd token list` shows a token hash"
    for e in entries:
        assert not {"token", "auth_token", "secret", "hash", "token_hash"} & set(e), e


def test_cli_token_revoke_is_honoured_by_the_running_server(guarded):
    s = guarded
    victim = generate(s, s.boot, {"name": "victim"})
    from_cli = cli_create(s.data_dir, "--name", "cli-victim")
    accepted_soon(s, "GET", "/api/models", from_cli["token"], timeout=CLI_PROPAGATION)
    assert call(s, "GET", "/api/models", victim["token"]).status_code == 200
    for tok in (victim, from_cli):
        p = cli(s.data_dir, "revoke", tok["id"])
        assert tok["token"] not in (p.stdout + p.stderr).decode()
        assert_unauthorized(refused_soon(s, "GET", "/api/models", tok["token"], timeout=CLI_PROPAGATION))
    assert token_state(s, s.boot, victim["id"]) == "revoked"
    assert call(s, "GET", "/api/models", s.boot).status_code == 200


def test_cli_revoke_of_an_unknown_id_fails(guarded):
    s = guarded
    p = cli(s.data_dir, "revoke", "00000000-0000-4000-8000-000000000000", check=False)
    assert p.returncode != 0, p.stdout
    p = cli(s.data_dir, "revoke", "nope", check=False)
    assert p.returncode != 0, p.stdout
    assert_serving(s)


# =========================================================================== storage


def test_tokens_are_stored_only_as_hashes(guarded):
    s = guarded
    made = [generate(s, s.boot, {"name": "admin"}), generate(s, s.boot, {"name": "app", "scope": "client"}),
            cli_create(s.data_dir, "--name", "cli")]
    rotated = call(s, "POST", f"/admin/tokens/{made[0]['id']}/rotate", s.boot, json={})
    assert rotated.status_code == 200, rotated.text
    made.append(rotated.json())
    mid = create_test_as(s, s.boot)
    for tok in made[1:]:  # each used at least once, so that last_used_at is written
        accepted_soon(s, "POST", "/api/fetch_recommended_variant", tok["token"], timeout=CLI_PROPAGATION,
                      json=fetch_body(mid))
    secrets_ = [t["token"] for t in made] + [s.boot]
    needles = []
    for secret in secrets_:
        needles.append(secret.encode())
        for tail in (secret, secret[-43:], secret[-44:]):  # the raw random bytes, with or without a prefix
            try:
                needles.append(base64.urlsafe_b64decode(tail + "=" * (-len(tail) % 4)))
            except ValueError:
                pass

    if helpers.CURRENT_REDIS:
        # Redis keeps every write in its append-only file: no secret may be in any of its files.
        assert s.stop() == 0
        files = [p for p in helpers.CURRENT_REDIS.dir.rglob("*") if p.is_file()]
        assert files, "Redis wrote no files"
        for path in files:
            content = path.read_bytes()
            for needle in needles:
                assert needle not in content, f"a token secret is stored in Redis ({path.name})"
        return
    db = s.data_dir / "scout.db"
    assert db.exists(), f"no {db}"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert tables, "scout.db has no tables"
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if isinstance(value, str):
                        value = value.encode()
                    if not isinstance(value, bytes):
                        continue
                    for needle in needles:
                        assert needle not in value, f"a token secret is stored in table {table}"
    finally:
        conn.close()
    # nor anywhere else in the data dir (WAL, journal, side files), even after a clean stop
    assert s.stop() == 0
    for path in Path(s.data_dir).rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for needle in needles:
                assert needle not in content, f"a token secret is stored in {path.name}"


# =========================================================================== the whole story


def test_no_secret_ever_appears_in_logs_metrics_or_responses(scout_factory, tmp_path):
    """A full protected session; afterwards no secret (bootstrap, generated, rotated, CLI-made, or a
    wrong one a client presented) appears anywhere but in the one answer that created it."""
    boot = new_bootstrap_token()
    secret_file = tmp_path / "boot-token"
    secret_file.write_text(boot + "\n")
    s = scout_factory(env={"SCOUT_PROTECTED_API": "true", "SCOUT_AUTH_TOKEN_FILE": str(secret_file),
                           "SCOUT_LOG_LEVEL": "debug", **LENIENT})
    seen = []  # (label, text, secrets this text legitimately shows)

    def record(label, r, created=()):
        head = "\n".join(f"{k}: {v}" for k, v in r.headers.items())
        seen.append((label, f"{r.status_code}\n{head}\n\n{r.text}", set(created)))
        return r

    def req(method, path, token=None, created=(), **kw):
        return record(f"{method} {path}", call(s, method, path, token, **kw), created)

    def new_token(token, body):
        r = call(s, "POST", "/admin/generate_token", token, json=body)
        assert r.status_code == 200, r.text
        tok = r.json()["token"]
        record("generate_token", r, created={tok})
        return r.json()

    admin = new_token(boot, {"name": "ops"})
    client = new_token(admin["token"], {"name": "app", "scope": "client"})
    spare = new_token(boot, {"name": "spare", "scope": "client", "ttl_seconds": 600})
    r = call(s, "POST", f"/admin/tokens/{admin['id']}/rotate", boot, json={"grace_seconds": 3600})
    assert r.status_code == 200, r.text
    admin2 = r.json()
    record("rotate", r, created={admin2["token"]})
    p = cli(s.data_dir, "create", "--name", "cli", "--scope", "client")
    cli_tok = json.loads(p.stdout.decode())
    seen.append(("cli create stderr", p.stderr.decode(errors="replace"), set()))

    mid = req("POST", "/api/create_model", admin2["token"],
              json={"name": "story", "variants": {"0": "A", "1": "B"}}).json()["model_id"]
    record("fetch with the CLI token", accepted_soon(s, "POST", "/api/fetch_recommended_variant", cli_tok["token"],
                                                     timeout=CLI_PROPAGATION, json=fetch_body(mid)))
    for tok in (client["token"], spare["token"], cli_tok["token"], admin["token"], boot):
        d = req("POST", "/api/fetch_recommended_variant", tok, json=fetch_body(mid)).json()
        req("POST", f"/api/update_model/{mid}", tok,
            json={"updates": [{"decision": d["recommended_variant"], "reward": 1,
                               "request_id": d["request_id"]}]})
    req("GET", "/api/models", admin2["token"])
    req("GET", f"/api/model_details/{mid}", boot)
    assert req("POST", f"/admin/tokens/{spare['id']}/revoke", admin2["token"]).status_code == 200
    p = cli(s.data_dir, "revoke", cli_tok["id"])
    seen.append(("cli revoke", (p.stdout + p.stderr).decode(errors="replace"), set()))
    record("fetch with the revoked CLI token",
           refused_soon(s, "POST", "/api/fetch_recommended_variant", cli_tok["token"],
                        timeout=CLI_PROPAGATION, json=fetch_body(mid)))

    # refusals, among them wrong tokens that share long prefixes with real ones
    wrong_of = {}  # wrong token -> the real one it imitates
    for real in (boot, admin["token"], client["token"], admin2["token"]):
        for w in (real[:-1] + ("A" if real[-1] != "A" else "B"), real[:30] + secrets.token_urlsafe(12),
                  real + "x"):
            wrong_of[w] = real
    wrong = list(wrong_of)
    for tok in wrong + [spare["token"], cli_tok["token"]]:
        req("GET", "/api/models", tok)
        req("POST", "/api/fetch_recommended_variant", tok, json=fetch_body(mid))
    req("GET", "/api/models", client["token"])  # 403
    req("POST", "/admin/generate_token", client["token"], json={})  # 403
    req("GET", "/api/models", headers={"Authorization": f"Basic {boot}"})
    req("GET", "/api/models", headers={"Authorization": f"Bearer {admin2['token']} {boot}"})
    req("POST", "/admin/set_protection", admin2["token"], data=b"true",
        headers={"Content-Type": "application/json"})

    # everything an observer can read
    for path in ("/metrics", "/admin/get_protection", "/admin/tokens", "/admin/system_config",
                 "/admin/redis_health", "/docs", "/healthz", "/readyz"):
        r = req("GET", path, admin2["token"])
        assert r.status_code == 200, f"{path} -> {r.status_code}"
    p = cli(s.data_dir, "list")
    seen.append(("cli list", (p.stdout + p.stderr).decode(errors="replace"), set()))
    assert s.stop() == 0
    seen.append(("server log", s.log_path.read_text(errors="replace"), set()))

    all_secrets = {boot: "bootstrap", admin["token"]: "admin", client["token"]: "client",
                   spare["token"]: "spare", admin2["token"]: "rotated-in", cli_tok["token"]: "cli"}
    all_secrets.update({w: "wrong" for w in wrong})
    leaks = []
    for label, text, created in seen:
        for secret, what in all_secrets.items():
            if secret in created or wrong_of.get(secret) in created:
                continue  # the answer that created it (a wrong token shares a prefix with its real one)
            for fragment in secret_fragments(secret):
                if fragment in text:
                    leaks.append(f"{what} token ({'whole' if fragment == secret else 'part'}) in {label}")
                    break
    assert not leaks, "secrets leaked:\n" + "\n".join(sorted(set(leaks)))
