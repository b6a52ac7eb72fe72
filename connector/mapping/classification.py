"""The security-classification gate (rules R2): state-secret documents are never packaged.

Vietnamese law (Luật Bảo vệ bí mật nhà nước 2018) has three classes: Tuyệt mật (top
secret), Tối mật (secret) and Mật (confidential). The gate reads the record's classification
value (the mapping names the field) and decides, failing closed:

* a value meaning one of the three classes, in any case, with or without diacritics or
  separators ("MẬT", "mat", "TOI MAT", "tối-mật", "tuyet_mat", "TuyetMat", "Độ mật: Mật",
  "Secret", "Top secret", "Confidential", "bí mật nhà nước") -> refused, class named;
* a value meaning "not classified" ("Thường", "", "none", "0", "không mật", "public",
  "unclassified", JSON null) -> passes;
* anything else (a typo, "restricted", "1", "TM") -> refused as *unknown*: the connector
  cannot tell, so it does not send. A mapping may teach the gate its own codes in
  ``classification.values`` (for instance "1": mat); it cannot declare a secret spelling
  public.

A refusal names the field and the class, never the document's content; an unknown value is
echoed only when it is short (it is a code, not prose). The gate must run before anything
else reads the record; this module must not know about packages.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from connector.errors import PermanentError
from connector.mapping.transforms import fold

SECRET_REASON = "secret_document"
UNKNOWN_REASON = "classification_unknown"
MISSING_REASON = "classification_missing"


class Classification(enum.Enum):
    PUBLIC = "thuong"
    MAT = "mat"
    TOI_MAT = "toi_mat"
    TUYET_MAT = "tuyet_mat"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def secret(self) -> bool:
        return self is not Classification.PUBLIC


_LABELS = {
    Classification.PUBLIC: "Thường (not classified)",
    Classification.MAT: "Mật (confidential)",
    Classification.TOI_MAT: "Tối mật (secret)",
    Classification.TUYET_MAT: "Tuyệt mật (top secret)",
}

# Folded values (see transforms.fold) meaning "not classified".
PUBLIC_VALUES = frozenset({
    "", "0", "thuong", "binh thuong", "van ban thuong", "khong", "khong mat", "khong co",
    "khong phai mat", "khong bi mat", "none", "no", "normal", "public", "cong khai",
    "unclassified", "not classified", "null", "false", "do mat thuong",
})

# Compact (separator-free) folded forms meaning each class, checked most severe first.
_SECRET_FORMS: tuple[tuple[Classification, frozenset[str]], ...] = (
    (Classification.TUYET_MAT, frozenset({"tuyetmat", "topsecret"})),
    (Classification.TOI_MAT, frozenset({"toimat", "secret"})),
    (Classification.MAT, frozenset({"mat", "confidential", "bimat", "bimatnhanuoc", "domat",
                                    "vanbanmat", "classified"})),
)
_NEGATIONS = ("khong", "not", "un", "non")


def classify(
    value: Any, extra: Mapping[str, Classification] | None = None
) -> Classification | None:
    """The class a value means, or None when it is not recognised (the caller refuses)."""
    if value is None:
        return Classification.PUBLIC
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        text = str(int(value)) if float(value).is_integer() else str(value)
    elif isinstance(value, str):
        text = value
    else:
        return None
    folded = fold(text)
    words = folded.split()
    compact = "".join(words)
    for cls, forms in _SECRET_FORMS:
        if compact in forms:
            return cls
    if folded in PUBLIC_VALUES:
        return Classification.PUBLIC
    if extra:
        for local, cls in extra.items():
            if fold(local) == folded:
                return cls
    # Severity first: "Độ mật: Tối mật" is Tối mật, never the milder class it also mentions.
    for cls, _forms in _SECRET_FORMS:
        if _contains_phrase(words, cls):
            return cls
    return None


def _contains_phrase(words: list[str], cls: Classification) -> bool:
    """True if the words contain the class' name not preceded by a negation ("không mật")."""
    if cls is Classification.TUYET_MAT:
        pairs = [("tuyet", "mat"), ("top", "secret")]
    elif cls is Classification.TOI_MAT:
        pairs = [("toi", "mat")]
        if "secret" in words and not _after_any(words, "secret", ("top",)):
            return not _negated(words, words.index("secret"))
    else:
        hits = [i for i, w in enumerate(words) if w in ("mat", "confidential")]
        return any(not _negated(words, i) for i in hits)
    for first, second in pairs:
        for i in range(len(words) - 1):
            if words[i] == first and words[i + 1] == second and not _negated(words, i):
                return True
    return False


def _after_any(words: list[str], word: str, previous: tuple[str, ...]) -> bool:
    i = words.index(word)
    return i > 0 and words[i - 1] in previous


def _negated(words: list[str], index: int) -> bool:
    return index > 0 and words[index - 1] in _NEGATIONS


def hidden_value(context: Any, path: Any) -> bool:
    """True when an XML element at ``path`` has no text but attributes or child elements:
    its value is somewhere the mapping does not read (``<DoMat Ma="Mat"/>``)."""
    elements = getattr(path, "elements", None)
    if elements is None:  # a JSON path, or an attribute path: the value is read as it is
        return False
    return any(not (el.text or "").strip() and (len(el.attrib) or len(el))
               for el in elements(context))


def is_declared_secret(local_value: str) -> bool:
    """True if a spelling already means a secret class (a mapping may not call it public)."""
    found = classify(local_value)
    return found is not None and found.secret


class ClassificationRefused(PermanentError):
    """The record is (or may be) a state-secret document and must not be packaged."""

    def __init__(self, message: str, *, reason: str, field: str,
                 classification: Classification | None) -> None:
        super().__init__(message, reason=reason, stage="classification")
        self.field = field
        self.classification = classification


def _echo(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= 24 and "\n" not in text:
        return repr(text)
    return f"<a {len(text)}-character value, not shown>"


def check(value: Any, *, field: str, record_id: str, present: bool,
          extra: Mapping[str, Classification] | None = None,
          absent_means_public: bool = False) -> Classification:
    """Pass a not-classified record, or raise ClassificationRefused (fail closed)."""
    who = f"record {record_id!r}" if record_id else "the record"
    if not present:
        if absent_means_public:
            return Classification.PUBLIC
        raise ClassificationRefused(
            f"{who} refused: the classification field {field!r} (độ mật) is missing, so the "
            "connector cannot tell whether the document is a state secret (rules R2); the local "
            "system must always send it (empty or 'Thường' for ordinary documents)",
            reason=MISSING_REASON, field=field, classification=None)
    cls = classify(value, extra)
    if cls is None:
        raise ClassificationRefused(
            f"{who} refused: the classification field {field!r} holds an unrecognised value "
            f"{_echo(value)}; documents whose độ mật is unknown are not sent (rules R2, fail "
            "closed). If it means 'not classified', add it under classification.values in the "
            "mapping",
            reason=UNKNOWN_REASON, field=field, classification=None)
    if cls.secret:
        raise ClassificationRefused(
            f"{who} refused: the classification field {field!r} marks it {cls.label}; "
            "state-secret documents are never sent through the interconnect (rules R2). Send it "
            "by the channel for secret documents",
            reason=SECRET_REASON, field=field, classification=cls)
    return cls
