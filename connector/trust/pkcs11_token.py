"""Sessions with PKCS#11 tokens (USB tokens, HSMs, SoftHSM2): opened once, reused, re-opened.

A :class:`TokenSpec` names a token (module path + token label) and how to log in (PIN from an
environment variable or a file, never from the configuration itself). :func:`run` executes an
operation with the process's one session for that token, opening it on first use; the session
stays open for every later document. When the token has gone (pulled out, HSM restarted, the
module finalised) the operation fails with a "session lost" error: the session is dropped, the
module is re-initialised (a PKCS#11 module only sees newly inserted tokens after that) and the
operation is tried once more on a fresh session. If the token is still not there the caller
gets :class:`~connector.errors.UnavailableError` (reason ``token_unavailable``): the work that
needs it waits, nothing is failed, and the next call tries again.

A PIN the token refused is remembered and not presented again until the PIN source changes:
retrying it would lock the token after a few attempts (``token_pin_refused``, also
unavailable: an operator must fix the PIN; documents are not failed for it).

Sessions are per process (a PKCS#11 session cannot be pickled or shared across ``fork``):
worker processes open their own on first use. One lock per module serialises the calls into
it, which also keeps a re-initialisation from pulling a session away from under a signature.

This module must not know about certificates, PDFs or XML: it gives sessions and translates
python-pkcs11's exceptions into the connector's typed errors.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pkcs11
from pkcs11 import exceptions as p11

from connector.errors import ConfigurationError, UnavailableError
from connector.trust.keys import read_password

T = TypeVar("T")
log = logging.getLogger("connector.pkcs11")

RESCAN_INTERVAL = 2.0
"""Seconds between module re-initialisations while a token is missing (each one also closes
every other session on that module, so a missing token must not cause one per document)."""

# What a vanished token, a restarted HSM or a finalised module look like from python-pkcs11.
# GeneralError: SoftHSM2 says so for every call once a token directory has disappeared.
_SESSION_LOST: tuple[type[BaseException], ...] = (
    p11.DeviceRemoved, p11.DeviceError, p11.TokenNotPresent, p11.TokenNotRecognised,
    p11.SessionHandleInvalid, p11.SessionClosed, p11.ObjectHandleInvalid, p11.KeyHandleInvalid,
    p11.UserNotLoggedIn, p11.GeneralError, p11.NoSuchToken, p11.SlotIDInvalid,
)
_PIN_REFUSED: tuple[type[BaseException], ...] = (
    p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange, p11.PinExpired, p11.PinLocked,
)


@dataclass(frozen=True)
class TokenSpec:
    """Which token and how to log in; picklable (worker processes get this, not a session)."""

    module: Path
    token_label: str
    pin_env: str | None = None
    pin_file: Path | None = None

    def describe(self) -> str:
        return f"PKCS#11 token {self.token_label!r} ({self.module})"

    def pin(self) -> str | None:
        value = read_password(password_env=self.pin_env, password_file=self.pin_file,
                              what=f"the PIN of {self.describe()}")
        return value.decode("utf-8") if value is not None else None


@dataclass
class TokenSession:
    """One open session; ``generation`` changes whenever the session is re-opened, so objects
    bound to an old session (key handles, pyHanko signers) know to look again."""

    session: Any  # pkcs11.Session (untyped library)
    generation: int
    cache: dict[str, Any] = field(default_factory=dict)  # objects found in this session


@dataclass
class _Module:
    path: Path
    lock: threading.RLock = field(default_factory=threading.RLock)
    last_rescan: float = float("-inf")


_modules: dict[Path, _Module] = {}
_sessions: dict[TokenSpec, TokenSession] = {}
_refused_pins: dict[TokenSpec, str | None] = {}
_registry_lock = threading.Lock()
_generation = 0


def _module(path: Path) -> _Module:
    with _registry_lock:
        module = _modules.get(path)
        if module is None:
            module = _modules[path] = _Module(path)
        return module


def _library(module: _Module) -> Any:
    try:
        return pkcs11.lib(str(module.path))
    except (RuntimeError, OSError) as exc:  # the module file is missing or not a PKCS#11 module
        if not module.path.is_file():
            raise ConfigurationError(f"PKCS#11 module {module.path} does not exist",
                                     reason="token_module") from exc
        raise UnavailableError(f"PKCS#11 module {module.path} cannot be initialised: "
                               f"{_describe(exc)}", reason="token_unavailable") from exc


def _rescan(module: _Module, *, force: bool = False) -> None:
    """Re-initialise the module so that it sees tokens inserted (or restored) since."""
    now = time.monotonic()
    if not force and now - module.last_rescan < RESCAN_INTERVAL:
        return
    module.last_rescan = now
    for spec in [s for s in _sessions if s.module == module.path]:
        del _sessions[spec]  # every session of this module ends with the re-initialisation
    library = _loaded_library(module.path)
    if library is None:
        return
    # If the module cannot start again (e.g. its token store is gone), the next
    # pkcs11.lib() call initialises it again.
    with contextlib.suppress(p11.PKCS11Error):
        library.reinitialize() if library.initialized else library.initialize()


def _loaded_library(path: Path) -> Any:
    """python-pkcs11's one library object for ``path`` if this process loaded it, else None."""
    loaded: dict[str, Any] = getattr(pkcs11, "_loaded", {})
    return loaded.get(str(path))


def _open(spec: TokenSpec, module: _Module) -> TokenSession:
    global _generation
    pin = spec.pin()
    fingerprint = hashlib.sha256(pin.encode("utf-8")).hexdigest() if pin is not None else None
    if spec in _refused_pins and _refused_pins[spec] == fingerprint:
        raise UnavailableError(
            f"{spec.describe()} refused its PIN earlier; not trying the same PIN again (that "
            "would lock the token): correct the PIN source", reason="token_pin_refused")
    library = _library(module)
    try:
        token = library.get_token(token_label=spec.token_label)
    except (p11.NoSuchToken, p11.GeneralError, p11.DeviceError, p11.DeviceRemoved):
        _rescan(module)
        try:
            token = _library(module).get_token(token_label=spec.token_label)
        except p11.PKCS11Error as exc:
            raise UnavailableError(f"{spec.describe()} is not present: {_describe(exc)}",
                                   reason="token_unavailable") from exc
    except p11.MultipleTokensReturned as exc:
        raise ConfigurationError(f"{spec.describe()}: several tokens carry this label",
                                 reason="token_ambiguous") from exc
    try:
        session = token.open(user_pin=pin) if pin is not None else token.open()
    except _PIN_REFUSED as exc:
        _refused_pins[spec] = fingerprint  # a digest: the PIN itself is not kept
        raise UnavailableError(f"{spec.describe()} refused the PIN ({_describe(exc)}); it will "
                               "not be tried again until the PIN source changes",
                               reason="token_pin_refused") from exc
    except p11.UserAlreadyLoggedIn:
        # Another session of this process is logged in to the token (login is per token).
        session = token.open()
    except p11.PKCS11Error as exc:
        raise UnavailableError(f"{spec.describe()}: cannot open a session: {_describe(exc)}",
                               reason="token_unavailable") from exc
    _refused_pins.pop(spec, None)
    _generation += 1
    return TokenSession(session, _generation)


def run(spec: TokenSpec, operation: Callable[[TokenSession], T]) -> T:
    """``operation`` with the token's session (opened if needed; re-opened once if lost)."""
    try:
        result = _run(spec, operation)
    except UnavailableError:
        _report(spec, up=False)
        raise
    _report(spec, up=True)
    return result


def _run(spec: TokenSpec, operation: Callable[[TokenSession], T]) -> T:
    module = _module(spec.module)
    with module.lock:
        for attempt in (1, 2):
            state = _sessions.get(spec)
            if state is None:
                state = _sessions[spec] = _open(spec, module)
            try:
                return operation(state)
            except _SESSION_LOST as exc:
                _sessions.pop(spec, None)
                _close(state)
                if attempt == 2:
                    _rescan(module)
                    raise UnavailableError(f"{spec.describe()} was lost: {_describe(exc)}",
                                           reason="token_unavailable") from exc
                _rescan(module, force=True)
        raise AssertionError("unreachable")  # pragma: no cover


def probe(spec: TokenSpec) -> tuple[bool, str]:
    """Whether the token answers now (its token information is read through the session's
    slot; the session is opened if needed), with a sentence for the readiness probe."""

    def touch(state: TokenSession) -> None:
        state.session.token.slot.get_token()

    try:
        run(spec, touch)
    except (UnavailableError, ConfigurationError) as exc:
        return False, exc.message
    return True, f"{spec.describe()} answers"


_listeners: list[Callable[[bool], None]] = []
_down: set[TokenSpec] = set()


def watch(listener: Callable[[bool], None]) -> Callable[[], None]:
    """Call ``listener(all_up)`` whenever a token of this process goes away or comes back
    (the daemon shows it as its ``keys`` component); returns the function that stops it."""
    with _registry_lock:
        _listeners.append(listener)

    def stop() -> None:
        with _registry_lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return stop


def _report(spec: TokenSpec, *, up: bool) -> None:
    with _registry_lock:
        if up == (spec not in _down):
            return  # no change: the common case, one set lookup per signature
        if up:
            _down.discard(spec)
        else:
            _down.add(spec)
        all_up, listeners = not _down, list(_listeners)
    if up:
        log.info("%s is available again", spec.describe())
    else:
        log.warning("%s is unavailable: work that needs it waits", spec.describe())
    for listener in listeners:
        listener(all_up)


def _close(state: TokenSession) -> None:
    with contextlib.suppress(p11.PKCS11Error):  # the session may have died with its token
        state.session.close()


def close_all() -> None:
    """Close every session and finalise the modules (tests, reloads, process exit)."""
    with _registry_lock:
        modules = list(_modules.values())
    for module in modules:
        with module.lock:
            for spec in [s for s in _sessions if s.module == module.path]:
                _close(_sessions.pop(spec))
            library = _loaded_library(module.path)
            if library is not None and library.initialized:
                with contextlib.suppress(p11.PKCS11Error):
                    library.finalize()
    _refused_pins.clear()
    with _registry_lock:
        _down.clear()


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
