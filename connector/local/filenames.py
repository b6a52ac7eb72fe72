"""File names that fit any file system the local side writes to, keeping what they said.

A received attachment is named by a remote sender: it may be longer than a file system
allows (255 *bytes* on ext4, XFS, NTFS over SMB: a 201-character Vietnamese title is
already too long), hold control or bidirectional-override characters (``evil\u202egpj.exe``),
be a name the connector itself uses beside it (``record.json``, ``delivery.json``), a
Windows device name (``CON``, ``nul.txt``) or a hidden or relative name (``.bashrc``,
``..``). ``fit_name`` turns any of them into one safe path component, unique within a
folder (case-insensitively), shortened on a character boundary with a short hash of the
original so that two long names stay apart, the extension kept. Callers keep the original
name in their own records beside the name really written.

The function is pure and idempotent: a name it produced comes back unchanged (so a name
chosen by the mapping and written by the spool is the same file). This module must not do
I/O.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

# Leaves room under the usual 255-byte limit for the ".<name>.<random>.tmp" names used
# while writing atomically.
NAME_MAX_BYTES = 200
# Names the spool writes beside received files (``inbound/<id>/``): never an attachment's.
DELIVERY_RESERVED = ("record.json", "record.xml", "record.bin", "delivery.json")
_SEPARATORS = re.compile(r"[/\\:*?\"<>|]")
_WINDOWS_DEVICES = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
     *(f"lpt{i}" for i in range(10))}
)


def _visible(char: str) -> bool:
    """False for control, format (bidi overrides, zero-width), surrogate, unassigned chars."""
    return unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def clean_name(name: str) -> str:
    """One path component: NFC, invisible characters dropped, separators as ``_``."""
    text = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    text = "".join(c if _visible(c) else "" for c in text)
    text = _SEPARATORS.sub("_", text)
    return text.strip(" .\t")


def _shorten(stem: str, suffix: str, original: str, max_bytes: int) -> str:
    digest = "~" + hashlib.sha256(original.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    room = max_bytes - len((digest + suffix).encode("utf-8"))
    if room < 1:  # an absurd "extension": drop it
        suffix, room = "", max_bytes - len(digest.encode("utf-8"))
    kept = stem.encode("utf-8")[:room].decode("utf-8", "ignore")
    return kept + digest + suffix


def fit_name(
    name: str,
    *,
    taken: Iterable[str] = (),
    fallback: str = "file",
    max_bytes: int = NAME_MAX_BYTES,
) -> str:
    """A safe, unique (case-insensitively, against ``taken``) file name for ``name``."""
    base = clean_name(name) or fallback
    stem, dot, ext = base.rpartition(".")
    if not dot or not stem:
        stem, ext = base, ""
    suffix = f".{ext}" if ext else ""
    if stem.casefold().split(".")[0] in _WINDOWS_DEVICES:
        stem = "_" + stem
    base = stem + suffix
    if len(base.encode("utf-8")) > max_bytes:
        base = _shorten(stem, suffix, name, max_bytes)
        stem = base[: len(base) - len(suffix)] if suffix else base
    used = {t.casefold() for t in taken}
    candidate, counter = base, 1
    while candidate.casefold() in used:
        counter += 1
        tail = f"-{counter}{suffix}"
        room = max_bytes - len(tail.encode("utf-8"))
        candidate = stem.encode("utf-8")[:room].decode("utf-8", "ignore") + tail
    return candidate


def fit_names(names: Iterable[str], *, reserved: Iterable[str] = (),
              fallback: str = "file") -> list[str]:
    """``fit_name`` for each name in turn, unique among themselves and ``reserved``."""
    taken = {r.casefold() for r in reserved}
    out: list[str] = []
    for i, name in enumerate(names, start=1):
        chosen = fit_name(name, taken=taken, fallback=f"{fallback}-{i}")
        taken.add(chosen.casefold())
        out.append(chosen)
    return out


def fits(name: str, max_bytes: int = 255) -> bool:
    """True when ``name`` can be one component on a usual file system."""
    return 0 < len(name.encode("utf-8", "surrogatepass")) <= max_bytes
