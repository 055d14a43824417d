"""A small FunctionApp for the local runner's tests; `build_app()` gives a fresh one (get_functions() runs once)."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import azure.functions as func

# What the functions saw, for the tests to assert on (module-level, as the brief asks).
processed: list[str] = []  # message ids completed by the trigger
attempts: list[tuple[str, int]] = []  # (message id, delivery count) of every delivery
deliveries: dict[str, func.ServiceBusMessage] = {}  # last delivery of each message id
batches: list[list[tuple[str, int]]] = []  # (message id, delivery count) of every call of the batch trigger
timer_calls: list[bool] = []  # past_due of every tick
timer_state = {"active": 0, "max_active": 0}
slow_timer_calls: list[float] = []
slow_timer_state = {"active": 0, "max_active": 0}
shutdown_calls: list[float] = []


def build_app() -> func.FunctionApp:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

    @app.route(route="items/{item_id:guid}", methods=["GET"])
    async def get_item(req: func.HttpRequest) -> func.HttpResponse:
        payload = {"item_id": req.route_params["item_id"], "q": req.params.get("q"), "url": req.url}
        return func.HttpResponse(json.dumps(payload), mimetype="application/json")

    @app.route(route="echo", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
    async def echo(req: func.HttpRequest) -> func.HttpResponse:
        payload = {"got": req.get_json(), "x_test": req.headers.get("x-test"), "method": req.method}
        return func.HttpResponse(
            json.dumps(payload),
            status_code=201,
            mimetype="application/json",
            headers={"X-Custom": "yes", "Location": "/api/echo/1", "Retry-After": "3"},
        )

    @app.route(route="sync", methods=["GET"])
    def sync_route(req: func.HttpRequest) -> func.HttpResponse:
        on_loop_thread = threading.current_thread() is threading.main_thread()
        return func.HttpResponse(f"sync main_thread={on_loop_thread} name={req.params.get('name', '')}")

    @app.route(route="boom")
    async def boom(req: func.HttpRequest) -> func.HttpResponse:
        raise RuntimeError("secret detail that must not leak")

    @app.route(route="slow", methods=["GET"])
    async def slow(req: func.HttpRequest) -> func.HttpResponse:
        await asyncio.sleep(float(req.params.get("s", "0.5")))
        return func.HttpResponse("slow done")

    @app.route(route="static/{*path}", methods=["GET"])
    def static(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(f"path=[{req.route_params.get('path', '')}]")

    @app.service_bus_queue_trigger(arg_name="msg", queue_name="verify-order", connection="ServiceBusConnection")
    async def verify_order(msg: func.ServiceBusMessage) -> None:
        body = msg.get_body()
        attempts.append((str(msg.message_id), int(msg.delivery_count or 0)))
        deliveries[str(msg.message_id)] = msg
        if b"fail" in body:
            raise RuntimeError(f"failing on purpose: {msg.message_id}")
        if b"slow" in body:
            await asyncio.sleep(2.2)  # longer than the test's lock duration: the runner must renew the lock
        processed.append(str(msg.message_id))

    @app.service_bus_queue_trigger(arg_name="msgs", queue_name="batch-events", connection="ServiceBusConnection",
                                   cardinality=func.Cardinality.MANY)
    async def batch_events(msgs: list[func.ServiceBusMessage]) -> None:
        batches.append([(str(m.message_id), int(m.delivery_count or 0)) for m in msgs])
        failing = [str(m.message_id) for m in msgs if b"fail" in m.get_body()]
        if failing:
            raise RuntimeError(f"failing on purpose: {failing}")

    @app.timer_trigger(schedule="*/1 * * * * *", arg_name="timer", run_on_startup=False)
    async def tick(timer: func.TimerRequest) -> None:
        timer_state["active"] += 1
        timer_state["max_active"] = max(timer_state["max_active"], timer_state["active"])
        try:
            timer_calls.append(timer.past_due)
            await asyncio.sleep(0.05)
        finally:
            timer_state["active"] -= 1

    @app.timer_trigger(schedule="%FH_SLOW_SCHEDULE%", arg_name="timer")
    def slow_tick(timer: func.TimerRequest) -> None:
        # A sync timer that outlasts its 1 s period: the runner must skip occurrences, never overlap.
        slow_timer_state["active"] += 1
        slow_timer_state["max_active"] = max(slow_timer_state["max_active"], slow_timer_state["active"])
        try:
            slow_timer_calls.append(time.monotonic())
            time.sleep(1.5)
        finally:
            slow_timer_state["active"] -= 1

    return app


app = build_app()


async def shutdown() -> None:
    shutdown_calls.append(time.monotonic())
