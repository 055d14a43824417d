"""A real local issuer over HTTP on loopback, with its own key directory, for the identity tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.identity import KeyStore, LocalIssuer


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIssuer]:
    with LocalIssuer(KeyStore(tmp_path_factory.mktemp("identity"))) as running:
        yield running
