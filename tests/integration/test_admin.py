"""Admin endpoints with API protection off: protection status, model/system/redis config, health."""

import pytest

from helpers import assert_error, assert_serving, redis_health

MODEL_CONFIG_DEFAULTS = {"time_window_minutes": 60, "bucket_granularity_seconds": 60,
                         "min_update_requests": 10}


def test_protection_is_off_by_default(scout):
    r = scout.get("/admin/get_protection")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["protected_api"] is False
    assert not body.get("auth_token"), "a token secret must never be shown"


def test_docs_is_an_html_page(scout):
    r = scout.get("/docs")
    assert r.status_code == 200
    assert r.headers["Content-Type"].split(";")[0].strip().lower() == "text/html"
    assert "<html" in r.text.lower()


# --------------------------------------------------------------------------- model_config


def test_model_config_has_the_documented_defaults(scout):
    r = scout.get("/admin/model_config")
    assert r.status_code == 200, r.text
    body = r.json()
    for key, value in MODEL_CONFIG_DEFAULTS.items():
        assert body[key] == value, f"{key}: {body.get(key)!r}"


def test_model_config_post_with_every_field_is_reflected(scout):
    new = {"time_window_minutes": 30, "bucket_granularity_seconds": 120,
           "min_update_requests": 5}
    r = scout.post("/admin/model_config", new)
    assert r.status_code == 200, r.text
    for key, value in new.items():
        assert r.json()[key] == value
    got = scout.get("/admin/model_config").json()
    for key, value in new.items():
        assert got[key] == value


@pytest.mark.parametrize("subset", [
    {"time_window_minutes": 15},
    {"bucket_granularity_seconds": 10},
    {"min_update_requests": 0},
    {"time_window_minutes": 1440, "min_update_requests": 100},
])
def test_model_config_post_with_a_subset_changes_only_that_subset(scout, subset):
    assert scout.post("/admin/model_config", subset).status_code == 200
    got = scout.get("/admin/model_config").json()
    expected = dict(MODEL_CONFIG_DEFAULTS, **subset)
    for key, value in expected.items():
        assert got[key] == value, f"{key}: {got.get(key)!r}"


@pytest.mark.parametrize("body, status", [
    ({"time_window_minutes": 0}, 400),
    ({"time_window_minutes": -5}, 400),
    ({"bucket_granularity_seconds": 0}, 400),
    ({"bucket_granularity_seconds": -60}, 400),
    ({"min_update_requests": -1}, 400),
    ({"time_window_minutes": "60"}, 422),
    ({"bucket_granularity_seconds": None}, 422),
    ({"min_update_requests": [1]}, 422),
    ({"min_update_requests": 2.5}, 422),
    ([60, 60, 10], 422),
    ("config", 422),
    ({"time_window_minutes": 30, "min_update_requests": -1}, 400),
], ids=lambda v: repr(v)[:50])
def test_model_config_refuses_invalid_values_and_keeps_the_old_ones(scout, body, status):
    assert_error(scout.post("/admin/model_config", body), status)
    got = scout.get("/admin/model_config").json()
    for key, value in MODEL_CONFIG_DEFAULTS.items():
        assert got[key] == value, f"{key} changed to {got.get(key)!r} by a refused request"
    assert_serving(scout)


# --------------------------------------------------------------------------- system_config


def test_system_config_reports_host_port_and_debug(scout):
    r = scout.get("/admin/system_config")
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body["host"], str) and body["host"]
    assert type(body["port"]) is int and 0 < body["port"] < 65536
    assert type(body["debug"]) is bool


def test_system_config_post_says_a_restart_is_required(scout):
    new = {"host": "127.0.0.1", "port": 8123, "debug": True}
    r = scout.post("/admin/system_config", new)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["restart_required"] is True
    for key, value in new.items():
        assert body[key] == value
    got = scout.get("/admin/system_config").json()
    for key, value in new.items():
        assert got[key] == value
    # the running server keeps serving where it was started
    assert_serving(scout)


@pytest.mark.parametrize("body", [
    {"host": "127.0.0.1", "port": "eighty", "debug": False},
    {"host": 127, "port": 8000, "debug": False},
    {"host": "127.0.0.1", "port": 8000, "debug": "yes"},
    ["127.0.0.1", 8000, False],
], ids=lambda v: repr(v)[:50])
def test_system_config_with_wrong_types_is_a_422(scout, body):
    before = scout.get("/admin/system_config").json()
    assert_error(scout.post("/admin/system_config", body), 422)
    assert scout.get("/admin/system_config").json() == before


# --------------------------------------------------------------------------- redis


def test_redis_health_reports_the_embedded_store(scout):
    h = redis_health(scout)
    assert h["redis_healthy"] is True
    assert h["context_keys_count"] == 0
    assert isinstance(h["redis_host"], str)
    assert type(h["redis_port"]) is int
    assert h["ttl_seconds"] == 86400


def test_redis_config_ttl_changes_the_decision_ttl(scout):
    h = redis_health(scout)
    r = scout.post("/admin/redis_config",
                   {"host": h["redis_host"], "port": h["redis_port"], "ttl": 3600})
    assert r.status_code == 200, r.text
    after = redis_health(scout)
    assert after["ttl_seconds"] == 3600
    assert after["redis_healthy"] is True


def test_redis_config_accepts_ttl_alone(scout):
    r = scout.post("/admin/redis_config", {"ttl": 120})
    assert r.status_code == 200, r.text
    assert redis_health(scout)["ttl_seconds"] == 120


@pytest.mark.parametrize("body, status", [
    ({"ttl": -1}, 400),
    ({"ttl": "3600"}, 422),
    ({"port": "6379"}, 422),
    ([3600], 422),
], ids=lambda v: repr(v)[:40])
def test_redis_config_refuses_invalid_values(scout, body, status):
    assert_error(scout.post("/admin/redis_config", body), status)
    assert redis_health(scout)["ttl_seconds"] == 86400
    assert_serving(scout)
