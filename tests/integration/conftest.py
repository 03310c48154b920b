"""Fixtures for Scout's integration suite.

Each server gets a free port, its own data directory and a log file; the fixtures stop (and, if
need be, SIGKILL) every server they started even when the test fails, and a failing test's report
carries the tail of each server log.
"""

import os
from pathlib import Path

import pytest

import helpers
from helpers import SCOUTD, STORE, RedisServer, Scout

# SCOUT_STORE=redis runs the whole suite on the Redis store: each test gets its own password-
# protected redis-server, shared by every scoutd the test starts (replicas of one installation).


# --------------------------------------------------------------------------- fixtures


def _require_binary():
    path = Path(SCOUTD)
    if not path.exists():
        pytest.fail(
            f"scoutd binary not found at {path}. Build it first (`make` at the repo root) "
            f"or point SCOUTD=/path/to/scoutd at it.",
            pytrace=False,
        )
    if not os.access(path, os.X_OK):
        pytest.fail(f"scoutd at {path} is not executable", pytrace=False)


@pytest.fixture
def scout_factory(request, tmp_path):
    """make(env=None) -> a started Scout with its own data dir; all are cleaned up afterwards."""
    _require_binary()
    servers = []
    request.node._scout_servers = servers
    redis = RedisServer(tmp_path / "redis").start() if STORE == "redis" else None
    helpers.CURRENT_REDIS = redis

    def make(env=None, extra_args=None, cls=Scout):
        args = list(extra_args or [])
        if redis and "--redis" not in args:
            args += ["--redis", redis.url]
        s = cls(tmp_path / f"scout{len(servers)}", env=env, extra_args=args)
        servers.append(s)
        return s.start()

    yield make
    helpers.CURRENT_REDIS = None
    if redis:
        redis.stop()
    problems = []
    for s in servers:
        problems += s.cleanup()
    if problems:
        pytest.fail("scoutd did not end cleanly: " + "; ".join(problems), pytrace=False)


@pytest.fixture
def scout(scout_factory):
    """A fresh server on a fresh data dir."""
    return scout_factory()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for s in getattr(item, "_scout_servers", []):
            report.sections.append((f"scoutd log {s.log_path}", s.log_tail(80)))


