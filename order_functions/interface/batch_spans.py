"""The consumer span of a batch of Service Bus messages (a trigger with cardinality "many").

A batch of one continues its message's trace (the producer's span is its parent, so one trace runs from the HTTP
request through the bus); a larger batch is one span linked to every message's producer span, as the OpenTelemetry
messaging conventions describe batch processing."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import propagate, trace


@contextmanager
def batch_consumer_span(
    tracer: trace.Tracer, topic: str, destination: str, carriers: Sequence[Mapping[str, str]],
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[trace.Span]:
    contexts = [propagate.extract(dict(c)) for c in carriers]
    attrs: dict[str, Any] = {
        "messaging.system": "servicebus",
        "messaging.operation.type": "process",
        "messaging.destination.name": destination,
        "messaging.batch.message_count": len(carriers),
        **(attributes or {}),
    }
    name = f"servicebus process {topic}"
    if len(contexts) == 1:
        with tracer.start_as_current_span(name, context=contexts[0], kind=trace.SpanKind.CONSUMER,
                                          attributes=attrs) as span:
            yield span
        return
    links = [trace.Link(sc) for ctx in contexts if (sc := trace.get_current_span(ctx).get_span_context()).is_valid]
    with tracer.start_as_current_span(name, kind=trace.SpanKind.CONSUMER, attributes=attrs, links=links) as span:
        yield span
