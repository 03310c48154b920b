"""Hostile input: every attack gets a clear JSON 4xx with the exact status, and the server keeps
serving other clients meanwhile.

Malformed JSON (too deep, numbers out of range, non-finite literals, invalid UTF-8, duplicate keys,
NUL characters) → 400; well-formed JSON of the wrong types → 422; path tricks → 404; a URL over
16 KiB → 414 or 431; a body declared larger than 1 MiB → 413 at once, before any of it is read;
a client that trickles its headers is cut off after SCOUT_REQUEST_TIMEOUT seconds in total (an
idle timeout that every byte resets is not enough) while other clients are served.
"""

import json
import select
import socket
import time

import pytest
import requests

from helpers import (
    assert_error,
    assert_serving,
    create_test,
    fetch,
    raw_request,
    summary,
)

# --------------------------------------------------------------------------- local helpers

REQUEST_TIMEOUT = 2  # SCOUT_REQUEST_TIMEOUT for the slowloris server


def post_bytes(scout, path, data):
    """POST raw bytes as application/json (no client-side encoding or validation)."""
    return scout.post(path, data=data, headers={"Content-Type": "application/json"})


def assert_raw_error(resp, statuses):
    """A raw-socket answer: one of `statuses` with a JSON {"detail": "<sentence>"} body."""
    if isinstance(statuses, int):
        statuses = (statuses,)
    assert resp.status in statuses, (resp.status, resp.body[:300])
    ctype = resp.headers.get("content-type", "")
    assert ctype.split(";")[0].strip().lower() == "application/json", (
        f"Content-Type {ctype!r}, body {resp.body[:200]!r}")
    body = resp.json()
    assert isinstance(body, dict) and isinstance(body.get("detail"), str) and body["detail"].strip(), body


def error_problem(label, r, statuses):
    """None when `r` (a requests or raw response) is one of `statuses` with a JSON {"detail"} body,
    else a one-line description; lets a test try many inputs on one server and report every miss."""
    if isinstance(statuses, int):
        statuses = (statuses,)
    status = getattr(r, "status_code", None) or getattr(r, "status", None)
    headers = {k.lower(): v for k, v in r.headers.items()}
    body = r.content if hasattr(r, "content") else r.body
    if status not in statuses:
        return f"{label}: expected {'/'.join(map(str, statuses))}, got {status}: {body[:160]!r}"
    if headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        return f"{label}: {status} with Content-Type {headers.get('content-type')!r}"
    try:
        detail = json.loads(body.decode("utf-8")).get("detail")
    except (ValueError, AttributeError):
        detail = None
    if not (isinstance(detail, str) and detail.strip()):
        return f"{label}: {status} without a JSON detail: {body[:160]!r}"
    return None


def assert_no_problems(problems):
    problems = [p for p in problems if p]
    assert not problems, f"{len(problems)} hostile input(s) mishandled:\n" + "\n".join(problems)


def raw_get(scout, target, extra_headers=b""):
    """GET with the request target sent byte for byte (no client normalisation of `..` or %xx)."""
    head = (b"GET " + target.encode("latin-1") + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + extra_headers + b"Connection: close\r\n\r\n")
    return raw_request(scout, head)


def raw_post_json(scout, path, body):
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    return raw_request(scout, head, [body])


def in_pieces(data, size=4096):
    return [data[i:i + size] for i in range(0, len(data), size)]


@pytest.fixture
def mid(scout):
    return create_test(scout)


# --------------------------------------------------------------------------- malformed JSON → 400


def test_deeply_nested_json_is_a_400_and_the_server_keeps_serving(scout, mid):
    cases = [
        ("/api/fetch_recommended_variant", b"[" * 100000),
        ("/api/fetch_recommended_variant", b'{"a": ' * 100000),
        ("/api/fetch_recommended_variant", ('{"cb_model_id": "%s", "context": ' % mid).encode() + b"[" * 100000),
        (f"/api/update_model/{mid}",
         b'{"updates": [{"decision": "A", "reward": 1, "context": ' + b"[" * 100000),
        ("/api/create_model", b"[" * 100000),
        ("/admin/model_config", b'{"x": ' * 100000),
    ]
    assert_no_problems([error_problem(f"{path} {body[:40]!r}...", post_bytes(scout, path, body), 400)
                        for path, body in cases])
    assert summary(scout, mid)["prediction_requests"] == 0
    assert summary(scout, mid)["update_requests"] == 0
    assert_serving(scout)


NUMBERS_OUT_OF_RANGE = ["1e400", "-1e400", "1E+99999", "123456789e999999999"]
NON_FINITE = ["NaN", "-NaN", "Infinity", "-Infinity", "inf", "nan"]


def _number_cases(mid, literal):
    return [("/api/fetch_recommended_variant", '{"cb_model_id": "%s", "context": {"x": %s}}' % (mid, literal)),
            (f"/api/update_model/{mid}", '{"updates": [{"decision": "A", "reward": %s}]}' % literal),
            ("/admin/model_config", '{"time_window_minutes": %s}' % literal)]


def test_number_out_of_double_range_is_a_400(scout, mid):
    config_before = scout.get("/admin/model_config").json()
    problems = [error_problem(f"{literal} -> {path}", post_bytes(scout, path, body.encode()), 400)
                for literal in NUMBERS_OUT_OF_RANGE for path, body in _number_cases(mid, literal)]
    assert_no_problems(problems)
    s = summary(scout, mid)
    assert s["prediction_requests"] == 0 and s["update_requests"] == 0
    assert scout.get("/admin/model_config").json() == config_before
    assert_serving(scout)


def test_non_finite_number_literal_is_a_400(scout, mid):
    config_before = scout.get("/admin/model_config").json()
    problems = [error_problem(f"{literal} -> {path}", post_bytes(scout, path, body.encode()), 400)
                for literal in NON_FINITE for path, body in _number_cases(mid, literal)]
    assert_no_problems(problems)
    s = summary(scout, mid)
    assert s["prediction_requests"] == 0 and s["update_requests"] == 0
    assert scout.get("/admin/model_config").json() == config_before
    assert_serving(scout)


INVALID_UTF8 = {
    "ff": b"\xff",                    # never valid in UTF-8
    "bad-continuation": b"\xc3\x28",
    "overlong": b"\xc0\xaf",           # overlong encoding of '/'
    "surrogate": b"\xed\xa0\x80",      # a UTF-16 surrogate encoded as UTF-8
    "too-large": b"\xf4\x90\x80\x80",  # beyond U+10FFFF
    "truncated": b"\xe2\x82",
}


def test_invalid_utf8_in_a_json_string_is_a_400(scout, mid):
    problems = []
    for name, raw in INVALID_UTF8.items():
        for path, body in [
            ("/api/fetch_recommended_variant",
             b'{"cb_model_id": "%s", "request_id": "r' % mid.encode() + raw + b'"}'),
            ("/api/fetch_recommended_variant",
             b'{"cb_model_id": "%s", "context": {"k' % mid.encode() + raw + b'": 1}}'),
            ("/api/create_model", b'{"name": "n' + raw + b'", "variants": {"0": "A"}}'),
        ]:
            problems.append(error_problem(f"{name} -> {path}", post_bytes(scout, path, body), 400))
    assert_no_problems(problems)
    assert summary(scout, mid)["prediction_requests"] == 0
    assert len(scout.get("/api/models").json()) == 1
    assert_serving(scout)


def test_lone_surrogate_escape_is_a_400(scout, mid):
    problems = []
    for esc in ("\\ud800", "\\udfff", "\\ud800\\u0041", "\\udc00\\ud800"):
        body = '{"cb_model_id": "%s", "request_id": "r%s"}' % (mid, esc)
        problems.append(error_problem(esc, post_bytes(scout, "/api/fetch_recommended_variant", body.encode()), 400))
    assert_no_problems(problems)
    assert summary(scout, mid)["prediction_requests"] == 0
    assert_serving(scout)


def test_duplicate_keys_are_a_400(scout, mid):
    cases = [
        ("/api/fetch_recommended_variant", '{"cb_model_id": "%s", "cb_model_id": "%s"}' % (mid, mid)),
        ("/api/fetch_recommended_variant",
         '{"cb_model_id": "%s", "context": {"a": 1, "a": 2}}' % mid),
        (f"/api/update_model/{mid}", '{"updates": [{"decision": "A", "reward": 1, "reward": 0}]}'),
        (f"/api/update_model/{mid}",
         '{"updates": [{"decision": "A", "reward": 1}], "updates": [{"decision": "B", "reward": 1}]}'),
        ("/api/create_model", '{"name": "a", "name": "b", "variants": {"0": "A", "1": "B"}}'),
        ("/api/create_model", '{"name": "a", "variants": {"0": "A", "0": "B"}}'),
        ("/admin/model_config", '{"time_window_minutes": 30, "time_window_minutes": 60}'),
    ]
    assert_no_problems([error_problem(f"{path} {body}", post_bytes(scout, path, body.encode()), 400)
                        for path, body in cases])
    s = summary(scout, mid)
    assert s["prediction_requests"] == 0 and s["update_requests"] == 0
    assert len(scout.get("/api/models").json()) == 1
    assert_serving(scout)


def test_nul_character_in_a_json_string_is_a_400(scout, mid):
    cases = [
        ("/api/fetch_recommended_variant", '{"cb_model_id": "%s\\u0000"}' % mid),
        ("/api/fetch_recommended_variant", '{"cb_model_id": "%s", "request_id": "a\\u0000b"}' % mid),
        ("/api/fetch_recommended_variant", '{"cb_model_id": "%s", "context": {"k\\u0000": 1}}' % mid),
        ("/api/fetch_recommended_variant", '{"cb_model_id": "%s", "context": {"k": "v\\u0000"}}' % mid),
        ("/api/create_model", '{"name": "a\\u0000b", "variants": {"0": "A"}}'),
        ("/api/create_model", '{"name": "ab", "variants": {"0": "A\\u0000"}}'),
    ]
    assert_no_problems([error_problem(f"{path} {body}", post_bytes(scout, path, body.encode()), 400)
                        for path, body in cases])
    # a raw NUL byte (an unescaped control character) is not JSON either
    raw = b'{"cb_model_id": "%s", "request_id": "a\x00b"}' % mid.encode()
    assert_error(post_bytes(scout, "/api/fetch_recommended_variant", raw), 400)
    assert summary(scout, mid)["prediction_requests"] == 0
    assert len(scout.get("/api/models").json()) == 1
    assert_serving(scout)


# --------------------------------------------------------------------------- wrong types → 422


WRONG_TYPES = [
    ("/api/fetch_recommended_variant", {"cb_model_id": 12345}),
    ("/api/fetch_recommended_variant", {"cb_model_id": ["{mid}"]}),
    ("/api/fetch_recommended_variant", {"cb_model_id": "{mid}", "context": [1, 2]}),
    ("/api/fetch_recommended_variant", {"cb_model_id": "{mid}", "request_id": {"a": 1}}),
    ("/api/update_model/{mid}", {"updates": {"decision": "A", "reward": 1}}),
    ("/api/update_model/{mid}", {"updates": [{"decision": "A", "reward": "1"}]}),
    ("/api/update_model/{mid}", {"updates": [{"decision": "A", "reward": True}]}),
    ("/api/create_model", {"name": ["x"], "variants": {"0": "A"}}),
    ("/api/create_model", {"name": "x", "variants": [["0", "A"]]}),
    ("/api/rollout_global_variant/{mid}", {"variant": {"label": "A"}}),
]


def test_wrong_json_types_are_a_422(scout, mid):
    def sub(v):
        if v == "{mid}":
            return mid
        if isinstance(v, dict):
            return {k: sub(x) for k, x in v.items()}
        if isinstance(v, list):
            return [sub(x) for x in v]
        return v
    problems = [error_problem(f"{path} {json.dumps(body)}", scout.post(path.format(mid=mid), sub(body)), 422)
                for path, body in WRONG_TYPES]
    assert_no_problems(problems)
    s = summary(scout, mid)
    assert s["prediction_requests"] == 0 and s["update_requests"] == 0
    assert s["global_rolled_out"] is False
    assert len(scout.get("/api/models").json()) == 1
    assert_serving(scout)


# --------------------------------------------------------------------------- path tricks → 404


PATH_TRICKS = [
    "/api/../admin/model_config",
    "/api/./../admin/model_config",
    "/api/%2e%2e/admin/model_config",
    "/api/model_details/..%2F..%2Fadmin",
    "/api/model_details/..%2f..%2fadmin%2fmodel_config",
    "/api/model_details/a%00b",
    "/api/model_details/%00",
    "/admin/../api/models",
    "/docs/../api/models",
    "/healthz/../admin/get_protection",
]


def test_path_tricks_are_a_404(scout, mid):
    problems = []
    for target in PATH_TRICKS:
        resp = raw_get(scout, target)
        problems.append(error_problem(target, resp, 404))
        if b"time_window_minutes" in resp.body or b"model_id" in resp.body:
            problems.append(f"{target}: reached a real resource: {resp.body[:160]!r}")
    assert_no_problems(problems)
    assert_serving(scout)


def test_path_tricks_do_not_reach_a_real_test(scout, mid):
    """A test id smuggled behind an encoded NUL or dot segments is not found."""
    targets = (f"/api/model_details/{mid}%00", f"/api/model_details/{mid}%00junk",
               f"/api/model_details/x%2F..%2F{mid}", f"/api/models/../model_details/{mid}")
    assert_no_problems([error_problem(t, raw_get(scout, t), 404) for t in targets])
    assert_serving(scout)


# --------------------------------------------------------------------------- header injection


def test_crlf_in_a_request_id_is_echoed_json_escaped_and_injects_no_header(scout, mid):
    evil = "abc\r\nSet-Cookie: x=y\r\n\r\n<html>"
    body = json.dumps({"cb_model_id": mid, "request_id": evil}).encode()
    resp = raw_post_json(scout, "/api/fetch_recommended_variant", body)
    assert resp.status == 200, (resp.status, resp.body[:300])
    assert "set-cookie" not in resp.headers, resp.headers
    assert all("x=y" not in v for v in resp.headers.values()), resp.headers
    assert b"\r\nSet-Cookie" not in resp.body and b"\r" not in resp.body and b"\n" not in resp.body.strip()
    assert b"abc\\r\\nSet-Cookie: x=y\\r\\n\\r\\n" in resp.body, resp.body[:300]
    assert resp.json()["request_id"] == evil
    # the same id on the reward path: stored and joined, never a header
    up = json.dumps({"updates": [{"decision": "A", "reward": 1, "request_id": evil}]}).encode()
    resp = raw_post_json(scout, f"/api/update_model/{mid}", up)
    assert resp.status == 200, (resp.status, resp.body[:300])
    assert "set-cookie" not in resp.headers, resp.headers
    assert all("x=y" not in v for v in resp.headers.values()), resp.headers
    assert b"\r\nSet-Cookie" not in resp.body
    assert_serving(scout)


# --------------------------------------------------------------------------- size limits


def test_url_over_16_kib_is_refused_with_414_or_431(scout, mid):
    target = "/api/model_details/" + "a" * (17 * 1024)
    head = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    resp = raw_request(scout, head[:64], in_pieces(head[64:]))
    assert_raw_error(resp, (414, 431))
    # a query string counts too
    target = "/api/models?" + "q=" + "b" * (17 * 1024)
    head = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    resp = raw_request(scout, head[:64], in_pieces(head[64:]))
    assert_raw_error(resp, (414, 431))
    assert_serving(scout)


def test_body_declared_as_10_gb_is_a_413_at_once(scout, mid):
    for path in ("/api/fetch_recommended_variant", f"/api/update_model/{mid}", "/api/create_model"):
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {10 * 1024 ** 3}\r\n\r\n").encode()
        start = time.monotonic()
        resp = raw_request(scout, head, timeout=5)  # no body is ever sent
        elapsed = time.monotonic() - start
        assert_raw_error(resp, 413)
        assert elapsed < 1.0, f"413 took {elapsed:.2f}s: the server waited for a body it must refuse"
    s = summary(scout, mid)
    assert s["prediction_requests"] == 0 and s["update_requests"] == 0
    assert_serving(scout)


# --------------------------------------------------------------------------- slowloris


@pytest.fixture
def impatient_scout(scout_factory):
    return scout_factory(env={"SCOUT_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT)})


def test_slowloris_is_cut_off_after_the_request_timeout_while_others_are_served(impatient_scout):
    """Headers trickled one byte per 0.5 s: each byte would reset an idle timeout, so only a
    deadline on the whole request head stops this client. Meanwhile other clients are served."""
    s = impatient_scout
    mid = create_test(s)
    head = (b"POST /api/fetch_recommended_variant HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"X-Slow: " + b"z" * 400)
    limit = REQUEST_TIMEOUT + 3.0
    served_meanwhile = None
    closed_after = None
    sent = 0
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as sock:
        start = time.monotonic()
        while time.monotonic() - start < limit:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                try:
                    data = sock.recv(4096)
                except ConnectionResetError:
                    data = b""
                if data == b"":
                    closed_after = time.monotonic() - start
                    break
                continue  # an answer (e.g. 408) before the close is fine
            try:
                sock.sendall(head[sent:sent + 1])
                sent += 1
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - start
                break
            if served_meanwhile is None and time.monotonic() - start >= 1.0:
                t0 = time.monotonic()
                r = requests.get(s.url("/healthz"), timeout=3)
                assert r.status_code == 200, r.text
                assert fetch(s, mid)["cb_model_id"] == mid
                served_meanwhile = time.monotonic() - t0
            select.select([sock], [], [], 0.5)
    assert served_meanwhile is not None, "the slow client was cut off before another client could be tried"
    assert served_meanwhile < 1.0, f"another client waited {served_meanwhile:.2f}s behind the slow one"
    assert closed_after is not None, (
        f"a client trickling its headers ({sent} bytes so far) was still connected after {limit:.0f}s; "
        f"SCOUT_REQUEST_TIMEOUT={REQUEST_TIMEOUT}")
    assert closed_after >= REQUEST_TIMEOUT - 1.0, f"cut off after only {closed_after:.2f}s"
    assert closed_after <= REQUEST_TIMEOUT + 2.0, f"cut off only after {closed_after:.2f}s"
    assert summary(s, mid)["prediction_requests"] == 1
    assert_serving(s)
