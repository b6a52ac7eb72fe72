"""Text that came from outside (a package, a record, a certificate) made safe to show:
one line, control and bidirectional characters escaped, bounded. It must not import anything
heavier than ``re``: logging setup uses it at ``import connector``."""

from __future__ import annotations

import re

# Characters that would let a package's text forge lines or reorder what a terminal shows.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str, limit: int) -> str:
    """``text`` on one line, control and bidirectional characters escaped, at most ``limit``
    characters: what a package says about itself is quoted, never passed on raw."""
    head = text[: limit + 1]
    shown = _UNSAFE.sub(lambda m: repr(m.group())[1:-1] if ord(m.group()) < 0x100
                        else f"\\u{ord(m.group()):04x}", head)
    if len(text) > limit or len(shown) > limit:
        shown = shown[: limit - 1] + "…"
    return shown
