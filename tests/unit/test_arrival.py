"""The checkout's deadline starts when the request arrives: stamped before the bearer token is checked, seen by the
handler, and a cold start that outlasts it is a 503 rather than a wait."""

from __future__ import annotations

import asyncio

import azure.functions as func
import pytest

from order_functions.application.deadline import Deadline
from order_functions.application.errors import CheckoutTimedOut
from order_functions.application.identity import Principal
from order_functions.interface import http_api
from order_functions.interface.arrival import arrived_at
from order_functions.interface.auth import authenticated


class RecordingAuthenticator:
    def __init__(self) -> None:
        self.arrival_seen: float | None = None

    async def authenticate(self, authorization: str | None) -> Principal:
        self.arrival_seen = arrived_at()
        await asyncio.sleep(0.01)  # a validator that takes its time (a JWKS fetch)
        return Principal("alice", frozenset(), "https://issuer.test")


async def test_the_arrival_is_stamped_before_authentication_and_seen_by_the_handler() -> None:
    auth = RecordingAuthenticator()
    seen_by_handler: list[float] = []

    async def handler(req: func.HttpRequest) -> func.HttpResponse:
        seen_by_handler.append(arrived_at())
        return func.HttpResponse("ok")

    guarded = authenticated(handler, lambda: auth)
    req = func.HttpRequest(method="POST", url="http://localhost/api/orders", body=b"", headers={})
    assert (await guarded(req)).status_code == 200
    assert auth.arrival_seen is not None and seen_by_handler == [auth.arrival_seen]  # one stamp, taken first
    assert arrived_at() != auth.arrival_seen  # outside a request: now, not the last request's arrival


async def test_a_cold_start_slower_than_the_deadline_is_a_503_and_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    started = asyncio.Event()
    finished = asyncio.Event()

    async def slow_start() -> object:
        started.set()
        await asyncio.sleep(0.3)  # pools opening against a slow database
        finished.set()
        return object()

    monkeypatch.setattr(http_api, "ready_services", lambda: None)
    monkeypatch.setattr(http_api, "get_services", slow_start)
    with pytest.raises(CheckoutTimedOut):
        await http_api.services_within(Deadline.after(0.05))
    assert started.is_set() and not finished.is_set()  # answered before the start-up ended ...
    await asyncio.wait_for(finished.wait(), 5)  # ... which was not cancelled: the next request finds it built
