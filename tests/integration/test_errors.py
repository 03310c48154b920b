"""Hostile and mistaken input: exact 4xx statuses with a JSON {"detail"}, and the server keeps serving.

Rule of the contract: malformed JSON → 400; well-formed JSON of the wrong shape → 422; semantic
problems → 400; unknown test → 404; wrong method → 405; unknown path → 404; body > 1 MiB → 413;
headers > 16 KiB → 431; a stalled client is cut off after SCOUT_REQUEST_TIMEOUT seconds.
"""

import socket
import time

import pytest
import requests

from helpers import (
    MAX_BODY,
    assert_error,
    assert_serving,
    create_test,
    performance,
    raw_request,
    summary,
)

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def mid(scout):
    return create_test(scout)


def post_raw(scout, path, data):
    return scout.post(path, data=data, headers={"Content-Type": "application/json"})


# --------------------------------------------------------------------------- malformed JSON → 400


MALFORMED = [b"{", b'{"name": ', b"nul", b"{'name': 'x'}", b'{"a": 1,}', b"{} {}",
             b'{"name": "x", "variants": {"0": "A"}} trailing', b"\xff\xfe{}",
             b'{"name": "\xc3\x28"}']
ENDPOINTS_WITH_BODY = ["/api/create_model", "/api/fetch_recommended_variant",
                       "/api/update_model/{mid}", "/api/rollout_global_variant/{mid}",
                       "/admin/model_config", "/admin/redis_config", "/admin/system_config"]


@pytest.mark.parametrize("path", ENDPOINTS_WITH_BODY)
def test_malformed_json_is_a_400(scout, mid, path):
    for data in MALFORMED:
        r = post_raw(scout, path.format(mid=mid), data)
        assert_error(r, 400)
    assert_serving(scout)


def test_empty_body_is_refused_without_a_500(scout, mid):
    for path in ENDPOINTS_WITH_BODY[:4]:
        r = post_raw(scout, path.format(mid=mid), b"")
        assert r.status_code in (400, 422), f"{path}: {r.status_code} {r.text}"
        assert_error(r, r.status_code)
    assert_serving(scout)


# --------------------------------------------------------------------------- create_model


@pytest.mark.parametrize("body", [
    [],
    "create",
    42,
    {"variants": {"0": "A", "1": "B"}},                      # no name
    {"name": "x"},                                          # no variants
    {"name": 5, "variants": {"0": "A"}},                    # name not a string
    {"name": None, "variants": {"0": "A"}},
    {"name": "x", "variants": ["A", "B"]},                  # variants not an object
    {"name": "x", "variants": "A,B"},
    {"name": "x", "variants": {"0": "A"}, "policy": 3},     # policy not a string
    {"name": "x", "variants": {"0": "A"}, "min_updates": "ten"},
    {"name": "x", "variants": {"0": "A"}, "min_updates": 2.5},
    {"name": "x", "variants": {"0": "A"}, "epsilon": "0.1"},
    {"name": "x", "variants": {"0": "A"}, "features": "country"},
    {"name": "x", "variants": {"0": "A"}, "features": [1, 2]},
], ids=lambda b: repr(b)[:60])
def test_create_with_wrong_shape_is_a_422(scout, body):
    assert_error(scout.post("/api/create_model", body), 422)
    assert scout.get("/api/models").json() == []
    assert_serving(scout)


@pytest.mark.parametrize("body", [
    {"name": "x", "variants": {}},
    {"name": "x", "variants": {"0": "A", "1": "A"}},
    {"name": "x", "variants": {"0": 5, "1": 5}},
    {"name": "x", "variants": {"a": "A", "1": "B"}},
    {"name": "x", "variants": {"1.5": "A", "1": "B"}},
    {"name": "x", "variants": {"-1": "A", "1": "B"}},
    {"name": "x", "variants": {"": "A"}},
    {"name": "", "variants": {"0": "A"}},
    {"name": "n" * 257, "variants": {"0": "A"}},
    {"name": "x", "variants": {str(i): f"v{i}" for i in range(257)}},
    {"name": "x", "variants": {"0": "L" * 257}},
    {"name": "x", "variants": {"0": 1.5}},
    {"name": "x", "variants": {"0": None}},
    {"name": "x", "variants": {"0": ["A"]}},
    {"name": "x", "variants": {"0": {"label": "A"}}},
    {"name": "x", "variants": {"0": True}},
    {"name": "x", "variants": {"0": "A"}, "policy": "nope"},
    {"name": "x", "variants": {"0": "A"}, "min_updates": -1},
    {"name": "x", "variants": {"0": "A"}, "epsilon": 1.5},
    {"name": "x", "variants": {"0": "A"}, "epsilon": -0.1},
], ids=lambda b: repr(b)[:60])
def test_create_with_semantic_problem_is_a_400(scout, body):
    assert_error(scout.post("/api/create_model", body), 400)
    assert scout.get("/api/models").json() == []
    assert_serving(scout)


# --------------------------------------------------------------------------- fetch


@pytest.mark.parametrize("body", [
    [],
    "x",
    {},
    {"context": {"a": 1}},
    {"cb_model_id": 123},
    {"cb_model_id": None},
    {"cb_model_id": "{mid}", "context": ["a", 1]},
    {"cb_model_id": "{mid}", "context": "a=1"},
    {"cb_model_id": "{mid}", "request_id": 12},
], ids=lambda b: repr(b)[:60])
def test_fetch_with_wrong_shape_is_a_422(scout, mid, body):
    if isinstance(body, dict):
        body = {k: (mid if v == "{mid}" else v) for k, v in body.items()}
    assert_error(scout.post("/api/fetch_recommended_variant", body), 422)
    assert summary(scout, mid)["prediction_requests"] == 0
    assert_serving(scout)


@pytest.mark.parametrize("extra", [
    {"context": {f"k{i}": i for i in range(65)}},
    {"context": {"k" * 129: 1}},
    {"context": {"s": "v" * 1025}},
    {"context": {"list": [1, 2]}},
    {"context": {"obj": {"a": 1}}},
    {"request_id": "r" * 129},
], ids=["65-keys", "long-key", "long-value", "list-value", "object-value", "long-request-id"])
def test_fetch_with_semantic_problem_is_a_400(scout, mid, extra):
    body = {"cb_model_id": mid, **extra}
    assert_error(scout.post("/api/fetch_recommended_variant", body), 400)
    assert summary(scout, mid)["prediction_requests"] == 0
    assert_serving(scout)


def test_fetch_for_an_unknown_test_is_a_404(scout):
    for ident in (UNKNOWN_ID, "does-not-exist"):
        assert_error(scout.post("/api/fetch_recommended_variant", {"cb_model_id": ident}), 404)
    assert_serving(scout)


# --------------------------------------------------------------------------- update


@pytest.mark.parametrize("body", [
    [],
    {},
    {"updates": {"decision": "A", "reward": 1}},
    {"updates": "A"},
    {"updates": None},
    {"updates": [1, 2]},
    {"updates": [["A", 1]]},
    {"updates": [{"decision": "A"}]},
    {"updates": [{"decision": "A", "reward": "1"}]},
    {"updates": [{"decision": "A", "reward": None}]},
    {"updates": [{"decision": "A", "reward": [1]}]},
    {"updates": [{"decision": "A", "reward": 1}, {"decision": "B"}]},
], ids=lambda b: repr(b)[:60])
def test_update_with_wrong_shape_is_a_422_and_applies_nothing(scout, mid, body):
    assert_error(scout.post(f"/api/update_model/{mid}", body), 422)
    assert summary(scout, mid)["update_requests"] == 0
    assert_serving(scout)


@pytest.mark.parametrize("bad", [
    {"decision": "C", "reward": 1},
    {"decision": 2, "reward": 1},
    {"variant_id": -1, "reward": 1},
    {"variant_id": "nope", "reward": 1},
], ids=["label", "int", "negative", "variant_id-label"])
def test_update_naming_an_unknown_variant_is_a_400_and_applies_nothing(scout, mid, bad):
    body = {"updates": [{"decision": "A", "reward": 1}, bad, {"decision": "B", "reward": 1}]}
    assert_error(scout.post(f"/api/update_model/{mid}", body), 400)
    assert summary(scout, mid)["update_requests"] == 0
    ps = performance(scout, mid)
    assert ps["A"]["updates"] == 0 and ps["B"]["updates"] == 0
    assert_serving(scout)


@pytest.mark.parametrize("bad", [
    {"context": {f"k{i}": i for i in range(65)}},
    {"context": {"k" * 129: 1}},
    {"context": {"s": "v" * 1025}},
    {"context": {"list": [1]}},
    {"request_id": "r" * 129},
], ids=["65-keys", "long-key", "long-value", "list-value", "long-request-id"])
def test_update_with_semantic_problem_is_a_400_and_applies_nothing(scout, mid, bad):
    body = {"updates": [{"decision": "A", "reward": 1}, {"decision": "B", "reward": 1, **bad}]}
    assert_error(scout.post(f"/api/update_model/{mid}", body), 400)
    assert summary(scout, mid)["update_requests"] == 0
    assert_serving(scout)


def test_update_for_an_unknown_test_is_a_404(scout):
    body = {"updates": [{"decision": "A", "reward": 1}]}
    assert_error(scout.post(f"/api/update_model/{UNKNOWN_ID}", body), 404)
    assert_serving(scout)


# --------------------------------------------------------------------------- rollout / others


@pytest.mark.parametrize("body, status", [
    ({"variant": "C"}, 400),
    ({"variant": 5}, 400),
    ({"variant": "2"}, 400),
    ({}, 422),
    ({"variant": None}, 422),
    ({"variant": ["A"]}, 422),
    (["A"], 422),
], ids=lambda v: repr(v)[:40])
def test_rollout_refuses_bad_variants(scout, mid, body, status):
    assert_error(scout.post(f"/api/rollout_global_variant/{mid}", body), status)
    s = summary(scout, mid)
    assert s["global_rolled_out"] is False and s["global_variant"] is None
    assert_serving(scout)


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/api/delete_model/{id}", None),
    ("GET", "/api/model_details/{id}", None),
    ("POST", "/api/update_model/{id}", {"updates": [{"decision": "A", "reward": 1}]}),
    ("POST", "/api/rollout_global_variant/{id}", {"variant": "A"}),
    ("POST", "/api/clear_global_variant/{id}", None),
])
def test_unknown_test_id_is_a_404_everywhere(scout, mid, method, path, body):
    for ident in (UNKNOWN_ID, "not-a-uuid", mid[:-1] + ("0" if mid[-1] != "0" else "1")):
        r = scout.request(method, path.format(id=ident), json=body)
        assert_error(r, 404)
    assert_serving(scout)


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/create_model"),
    ("GET", "/api/fetch_recommended_variant"),
    ("PUT", "/api/fetch_recommended_variant"),
    ("POST", "/api/models"),
    ("DELETE", "/api/models"),
    ("GET", "/api/update_model/{mid}"),
    ("GET", "/api/delete_model/{mid}"),
    ("DELETE", "/api/delete_model/{mid}"),
    ("GET", "/api/rollout_global_variant/{mid}"),
    ("GET", "/api/clear_global_variant/{mid}"),
    ("POST", "/api/model_details/{mid}"),
    ("PUT", "/admin/model_config"),
    ("DELETE", "/admin/redis_config"),
    ("POST", "/admin/redis_health"),
    ("POST", "/docs"),
])
def test_wrong_method_on_a_known_path_is_a_405(scout, mid, method, path):
    r = scout.request(method, path.format(mid=mid), json={})
    assert_error(r, 405)
    assert summary(scout, mid)["update_requests"] == 0
    assert_serving(scout)


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/nope"),
    ("POST", "/api/nope"),
    ("GET", "/nope"),
    ("GET", "/api/models/extra"),
    ("POST", "/api/update_model"),
    ("POST", "/api/update_model/"),
    ("GET", "/admin/nope"),
    ("GET", "/api/../etc/passwd"),
])
def test_unknown_path_is_a_404(scout, method, path):
    r = scout.request(method, path, json={})
    assert_error(r, 404)
    assert_serving(scout)


# --------------------------------------------------------------------------- size limits


def test_body_of_exactly_one_mebibyte_is_accepted(scout, mid):
    body = ('{"cb_model_id": "%s"}' % mid).encode()
    body += b" " * (MAX_BODY - len(body))
    assert len(body) == MAX_BODY
    r = post_raw(scout, "/api/fetch_recommended_variant", body)
    assert r.status_code == 200, r.text[:300]


def test_body_over_one_mebibyte_with_content_length_is_a_413(scout, mid):
    body = ('{"cb_model_id": "%s"}' % mid).encode()
    body += b" " * (MAX_BODY + 1 - len(body))
    head = (f"POST /api/fetch_recommended_variant HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    parts = [body[i:i + 65536] for i in range(0, len(body), 65536)]
    resp = raw_request(scout, head, parts, early_answer_wait=0.5)
    assert resp.status == 413, (resp.status, resp.body[:200])
    assert isinstance(resp.json().get("detail"), str)
    assert summary(scout, mid)["prediction_requests"] == 0
    assert_serving(scout)


def test_chunked_body_over_one_mebibyte_is_a_413(scout, mid):
    head = (b"POST /api/fetch_recommended_variant HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    first = ('{"cb_model_id": "%s"' % mid).encode()
    chunk = b" " * 65536
    parts = [b"%x\r\n%s\r\n" % (len(first), first)]
    parts += [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 24  # 1.5 MiB in total
    parts += [b"1\r\n}\r\n0\r\n\r\n"]
    resp = raw_request(scout, head, parts)
    assert resp.status == 413, (resp.status, resp.body[:200])
    assert isinstance(resp.json().get("detail"), str)
    assert summary(scout, mid)["prediction_requests"] == 0
    assert_serving(scout)


def test_small_chunked_body_is_accepted(scout, mid):
    def gen():
        yield b'{"cb_model_id": '
        yield ('"%s"}' % mid).encode()
    r = scout.post("/api/fetch_recommended_variant", data=gen(),
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text


def in_pieces(data, size=4096):
    return [data[i:i + size] for i in range(0, len(data), size)]


def test_headers_over_16_kib_are_a_431(scout, mid):
    head = b"POST /api/fetch_recommended_variant HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    rest = (f"X-Padding: {'p' * 20480}\r\nContent-Type: application/json\r\n"
            f"Content-Length: 2\r\n\r\n{{}}").encode()
    # sent in pieces so that an early 431 stops the sending and is read, not reset away
    resp = raw_request(scout, head, in_pieces(rest))
    assert resp.status == 431, (resp.status, resp.body[:200])
    assert_serving(scout)


def test_many_small_headers_over_16_kib_are_a_431(scout):
    padding = "".join(f"X-H{i}: {'v' * 100}\r\n" for i in range(200))  # ~21 KiB
    head = b"GET /api/models HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    resp = raw_request(scout, head, in_pieces(f"{padding}\r\n".encode()))
    assert resp.status == 431, (resp.status, resp.body[:200])
    assert_serving(scout)


def test_ordinary_headers_are_fine(scout):
    r = scout.get("/api/models", headers={"X-Padding": "p" * 8192})
    assert r.status_code == 200


# --------------------------------------------------------------------------- slow clients

REQUEST_TIMEOUT = 2


@pytest.fixture
def impatient_scout(scout_factory):
    return scout_factory(env={"SCOUT_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT)})


def _seconds_until_closed(sock, limit):
    """Wait for the server to close `sock`; return the elapsed seconds (or None at `limit`)."""
    start = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - start < limit:
        try:
            data = sock.recv(4096)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return time.monotonic() - start
        if data == b"":
            return time.monotonic() - start
        # a 408 (or similar) answer before the close is fine; keep reading until the close
    return None


@pytest.mark.parametrize("partial", [
    b"POST /api/fetch_recommended_variant HTTP/1.1\r\nHost: 127.0.0.1\r\n",
    b"POST /api/fetch_recommended_variant HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"cb_model_id\": ",
    b"GET /api/mod",
], ids=["partial-headers", "partial-body", "partial-request-line"])
def test_stalled_client_is_disconnected_after_the_request_timeout(impatient_scout, partial):
    s = impatient_scout
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as sock:
        sock.sendall(partial)
        # other clients are served while this one stalls
        assert requests.get(s.url("/docs"), timeout=5).status_code == 200
        elapsed = _seconds_until_closed(sock, REQUEST_TIMEOUT + 3)
    assert elapsed is not None, f"connection still open {REQUEST_TIMEOUT + 3}s after stalling"
    assert elapsed >= REQUEST_TIMEOUT - 1.5, f"cut off after only {elapsed:.2f}s"
    assert_serving(s)


def test_idle_connections_do_not_block_other_clients(impatient_scout):
    s = impatient_scout
    socks = [socket.create_connection(("127.0.0.1", s.port), timeout=5) for _ in range(20)]
    try:
        assert requests.get(s.url("/api/models"), timeout=5).status_code == 200
    finally:
        for sock in socks:
            sock.close()
    assert_serving(s)


# --------------------------------------------------------------------------- keeps serving


def test_connection_is_reusable_after_an_error(scout, mid):
    """A client's keep-alive connection survives 4xx answers (requests reuses the socket)."""
    sess = requests.Session()
    for _ in range(3):
        assert sess.post(scout.url("/api/fetch_recommended_variant"), data=b"{",
                         headers={"Content-Type": "application/json"}, timeout=5).status_code == 400
        assert sess.post(scout.url("/api/fetch_recommended_variant"),
                         json={"cb_model_id": UNKNOWN_ID}, timeout=5).status_code == 404
        r = sess.post(scout.url("/api/fetch_recommended_variant"), json={"cb_model_id": mid},
                      timeout=5)
        assert r.status_code == 200
    sess.close()
    assert_serving(scout)
