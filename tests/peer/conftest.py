"""Session fixture: a real Vendure 3.7.3 server (tests/peer/vendure) wired to a webhook receiver.

``.ci/vendure.sh`` installs the pinned packages and seeds ``seed.db`` (run here too when it
has not been run yet). The session copies the seed, starts ``node index.js`` on a free port
with ``WEBHOOK_URL``/``WEBHOOK_SECRET`` pointing at a ``Receiver``, waits for ``/health`` and
stops the process by its pid. Without ``node`` every peer test is skipped, and says so
loudly; under CI (``CI`` set, as ``.ci/run`` does) they fail instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.peer import vendure_api
from tests.peer.receiver import Receiver
from tests.peer.vendure_server import NO_NODE, NODE, VendurePeer, running_vendure


def pytest_report_header(config: pytest.Config) -> str:
    return "vendure peer: node " + (NODE or "MISSING -> peer tests will be SKIPPED")


@pytest.fixture(scope="session")
def vendure_peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VendurePeer]:
    """The running Vendure server. State is shared across the session, so tests create
    their own products and customers (unique names) instead of assuming an empty shop."""
    if NODE is None:
        if os.environ.get("CI"):  # .ci/run installs Node: a missing one is a CI failure
            pytest.fail(NO_NODE)
        print(f"\n{NO_NODE}\n")
        pytest.skip(NO_NODE)
    with running_vendure(tmp_path_factory.mktemp("vendure")) as peer:
        yield peer


@pytest.fixture
def receiver(vendure_peer: VendurePeer) -> Iterator[Receiver]:
    """The session receiver, emptied for each test."""
    vendure_peer.receiver.clear()
    yield vendure_peer.receiver
    vendure_peer.receiver.clear()


@pytest.fixture(scope="session")
def vendure_admin(vendure_peer: VendurePeer) -> vendure_api.GraphQL:
    """One logged-in superadmin Admin API client for the session (logins hash passwords)."""
    return vendure_api.admin(vendure_peer.base_url)


@pytest.fixture
def dollars_and_euros(vendure_admin: vendure_api.GraphQL) -> Iterator[None]:
    """The channel sells euros besides dollars for one test; the session's other tests
    expect dollars alone, so it is put back whatever happens."""
    before = vendure_api.sell_currencies(vendure_admin, ["USD", "EUR"])
    yield
    vendure_api.sell_currencies(vendure_admin, ["USD", *[c for c in before if c != "USD"]])
