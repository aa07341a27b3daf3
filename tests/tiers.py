"""Test tiers as markers that mean what they say.

- `unit`: pure code (protocol, adapters' parsing, schemas, settings, layout): declared by the
  module (`pytestmark = pytest.mark.unit`); such a test may use no outside service.
- `postgres`, `redis`, `browser`: set here from what a test uses: the fixtures it requests
  (`postgres_database`, `redis_prefix`, `redis_cluster`, the private servers, `browser`) and
  the backend its parameters name ("postgres" is the production shape, Postgres with Redis;
  "redis", "redis-cluster").
- `app`: everything else: the hub in process or on loopback, on SQLite and the in-process bus.

A test reaching a service its markers do not name fails (`require`), so `-m "not postgres"`
never runs a Postgres test by accident.
"""

from __future__ import annotations

import pytest

SERVICES = ("postgres", "redis", "browser")
FIXTURES = {
    "postgres_database": {"postgres"},
    "private_postgres": {"postgres"},
    "redis_prefix": {"redis"},
    "redis_cluster": {"redis"},
    "private_redis": {"redis"},
    "browser": {"browser"},
}
PARAMS = {"postgres": {"postgres", "redis"}, "redis": {"redis"}, "redis-cluster": {"redis"}}

_running: list[pytest.Item] = []


def needs(item: pytest.Item) -> set[str]:
    found = {m.name for m in item.iter_markers() if m.name in SERVICES}
    for name in getattr(item, "fixturenames", ()):
        found |= FIXTURES.get(name, set())
    callspec = getattr(item, "callspec", None)
    for value in callspec.params.values() if callspec is not None else ():
        if isinstance(value, str):
            found |= PARAMS.get(value, set())
    return found


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        found = needs(item)
        if item.get_closest_marker("unit") is not None and found:
            raise pytest.UsageError(f"{item.nodeid} is marked unit but uses {sorted(found)}")
        for name in sorted(found):
            item.add_marker(name)
        if not found and item.get_closest_marker("unit") is None:
            item.add_marker("app")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _running[:] = [item]


def require(marker: str, service: str) -> None:
    """Fail the running test if it reaches `service` without carrying `marker`."""
    item = _running[0] if _running else None
    if item is not None and item.get_closest_marker(marker) is None:
        pytest.fail(
            f"{item.nodeid} uses {service} but is not marked {marker}: request the fixture "
            f"that provides it, or mark the test (tests/tiers.py)",
            pytrace=False,
        )
