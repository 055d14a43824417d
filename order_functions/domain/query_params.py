"""Strict query-parameter parsing: `str.isdigit()` says yes to "²" and `int()` to 5,000 digits; these do not.

Each parser returns `(value, problems)`; problems are `{"field", "message"}` for a 400 `ValidationFailed`.
No I/O.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from order_functions.domain.identifiers import ORDER_ID, Problems, problem

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_CURSOR_CHARS = 128
_DIGITS = re.compile(r"[0-9]{1,4}", re.ASCII)
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}", re.ASCII)


@dataclass(frozen=True)
class Cursor:
    """Position after the last order of a page: newest first, ties broken by order id."""

    created_at: datetime
    order_id: uuid.UUID


def parse_limit(raw: str | None, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> tuple[int, Problems]:
    if raw is None:
        return default, []
    if _DIGITS.fullmatch(raw) is None or not 1 <= int(raw) <= maximum:
        return default, [problem("limit", f"a whole number between 1 and {maximum}")]
    return int(raw), []


def encode_cursor(cursor: Cursor) -> str:
    return base64.urlsafe_b64encode(f"{cursor.created_at.isoformat()}|{cursor.order_id}".encode()).decode()


def parse_cursor(raw: str | None) -> tuple[Cursor | None, Problems]:
    """Only what `encode_cursor` produces: base64url of `<ISO-8601 with offset>|<UUID>`."""
    if raw is None or raw == "":
        return None, []
    bad = [problem("cursor", "not a cursor this API returned")]
    if len(raw) > MAX_CURSOR_CHARS or _BASE64URL.fullmatch(raw) is None:
        return None, bad
    try:
        at, separator, order_id = base64.urlsafe_b64decode(raw.encode()).decode("ascii").partition("|")
        created_at = datetime.fromisoformat(at)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        return None, bad
    if not separator or created_at.tzinfo is None or ORDER_ID.fullmatch(order_id) is None:
        return None, bad
    return Cursor(created_at, uuid.UUID(order_id)), []
