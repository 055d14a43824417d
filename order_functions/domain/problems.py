"""RFC 9457 problem details. No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PROBLEM_BASE = "https://valerix.dev/problems/"


@dataclass(frozen=True)
class Problem(Exception):
    status: int
    title: str
    detail: str
    slug: str = "about:blank"
    errors: list[dict[str, str]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self, instance: str = "") -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.slug if self.slug == "about:blank" else PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body
