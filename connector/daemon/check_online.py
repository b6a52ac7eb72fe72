"""``connector check --online``: probe each dependency for real and name the root cause.

The hub is probed step by step — name resolution, TCP connection, TLS handshake (a refused
certificate is described by its subject and issuer), then one authenticated harmless call
(``getAgenciesList`` on VXP, the organisation list on eDoc REST) whose refusal is reported
in the hub's own words. The broker is probed by connecting with the configured credentials
and declaring the record queue passively; the store by opening it read-only.

This module only reads: it must not send packages, declare (create) queues, or write to the
store.
"""

from __future__ import annotations

import socket
import sqlite3
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography import x509

from connector.config_schema import Config
from connector.errors import ConnectorError

# OpenSSL's reasons when the bytes that came back are not TLS at all (an http server).
NOT_TLS = frozenset({"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "UNKNOWN_PROTOCOL",
                     "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE"})


PROBE_READ_TIMEOUT = 15.0  # seconds the harmless hub call may take before it is named


@dataclass(frozen=True)
class Probe:
    component: str  # hub, broker, store
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"{self.component}: {'OK' if self.ok else 'FAILED'}: {self.detail}"


def check_online(config: Config) -> list[Probe]:
    probes = [probe_hub(config)]
    if config.local.type == "amqp":
        probes.append(probe_broker(config))
    probes.append(probe_store(config))
    return probes


def _reach(host: str, port: int, timeout: float, what: str) -> tuple[socket.socket | None, str]:
    """A connected socket, or why not: DNS, refused, unreachable, timeout."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return None, f"DNS: the {what} host name {host!r} does not resolve ({exc.strerror})"
    reasons = []
    for family, kind, proto, _, address in addresses:
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
            return sock, ""
        except ConnectionRefusedError:
            reasons.append(f"connection refused by {address[0]}:{port} (nothing listens there)")
        except TimeoutError:
            reasons.append(f"no answer from {address[0]}:{port} within {timeout:g} s "
                           "(firewall or wrong address)")
        except OSError as exc:
            reasons.append(f"cannot connect to {address[0]}:{port}: {exc.strerror or exc}")
        sock.close()
    return None, "; ".join(reasons) or f"{host} has no address"


def _peer_certificate(host: str, port: int, timeout: float) -> str:
    """Subject, issuer and validity of the certificate the server presents (unverified)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    except OSError:
        return "the server's certificate could not be read"
    if not der:
        return "the server presented no certificate"
    cert = x509.load_der_x509_certificate(der)
    return (f"the server presented subject {cert.subject.rfc4514_string()!r}, issued by "
            f"{cert.issuer.rfc4514_string()!r}, valid {cert.not_valid_before_utc:%Y-%m-%d} "
            f"to {cert.not_valid_after_utc:%Y-%m-%d}")


def _tls(config: Config, sock: socket.socket, host: str, port: int) -> str:
    """Why the TLS handshake with the hub fails, or "" when it succeeds."""
    tls = config.hub.tls
    try:
        context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
        if tls.client_cert is not None:
            password = tls.client_key_password
            context.load_cert_chain(
                str(tls.client_cert),
                str(tls.client_key) if tls.client_key else None,
                password.read() if password.given else None,
            )
    except (OSError, ssl.SSLError, ConnectorError) as exc:
        sock.close()
        return f"TLS set-up: {getattr(exc, 'message', None) or exc}"
    try:
        with context.wrap_socket(sock, server_hostname=host):
            return ""
    except ssl.SSLCertVerificationError as exc:
        sock.close()
        return (f"TLS verification failed: {exc.verify_message}; "
                f"{_peer_certificate(host, port, config.hub.timeouts.connect)} "
                "(hub.tls.ca_file must hold the CA that issued it)")
    except ssl.SSLError as exc:
        sock.close()
        if exc.reason in NOT_TLS:
            return (f"TLS handshake failed: {exc.reason}: the server at {host}:{port} does not "
                    "speak TLS (plain http on this port? check the scheme and port of "
                    "hub.endpoint)")
        return f"TLS handshake failed: {exc.reason or exc} (client certificate refused?)"
    except OSError as exc:
        return f"TLS handshake failed: {exc}"


def probe_hub(config: Config) -> Probe:
    from connector.daemon.wiring import _hub as hub_client

    hub = config.hub
    parts = urlsplit(hub.endpoint)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    sock, why = _reach(host, port, hub.timeouts.connect, "hub")
    if sock is None:
        return Probe("hub", False, f"{hub.endpoint}: {why}")
    steps = [f"{host}:{port} reachable"]
    if parts.scheme == "https":
        problem = _tls(config, sock, host, port)
        if problem:
            return Probe("hub", False, f"{hub.endpoint}: {problem}")
        steps.append("TLS verified")
    else:
        sock.close()
    call = "getAgenciesList" if hub.type == "vxp" else "organisation list"
    # The read timeout suits a package upload, not an operator waiting for an answer.
    read = min(hub.timeouts.read, PROBE_READ_TIMEOUT)
    probing = config.model_copy(update={"hub": hub.model_copy(update={
        "timeouts": hub.timeouts.model_copy(update={"read": read})})})
    try:
        client = hub_client(probing)
    except ConnectorError as exc:
        return Probe("hub", False, f"{hub.endpoint}: {exc.message}")
    try:
        agencies = client.directory()
    except ConnectorError as exc:
        hint = ""
        if getattr(exc, "reason", "") == "hub_auth":
            where = hub.secret.describe()
            hint = f" (the account or its secret in {where} is not the one the hub knows)"
        return Probe("hub", False, f"{hub.endpoint}: {call}: {exc.message}{hint}")
    finally:
        client.close()
    steps.append(f"authenticated {call} answered ({len(agencies)} organisations)")
    if agencies and config.agency.organ_id not in {a.organ_id for a in agencies}:
        steps.append(f"note: our OrganId {config.agency.organ_id} is not in the hub's list")
    return Probe("hub", True, f"{hub.endpoint}: " + ", ".join(steps))


def probe_broker(config: Config) -> Probe:
    from connector.daemon.wiring import amqp_settings
    from connector.local.amqp_connection import close_quietly, open_connection, redacted_url

    assert config.local.amqp is not None
    try:
        settings = amqp_settings(config.local.amqp)
    except (ValueError, ConnectorError) as exc:
        return Probe("broker", False, getattr(exc, "message", str(exc)))
    where = redacted_url(settings)
    parts = urlsplit(settings.url)
    default_port = 5671 if parts.scheme == "amqps" else 5672
    sock, why = _reach(parts.hostname or "localhost", parts.port or default_port,
                       settings.connect_timeout, "broker")
    if sock is None:
        return Probe("broker", False, f"{where}: {why}")
    sock.close()
    queue = settings.topology.outbound_queue
    try:
        conn = open_connection(settings, purpose="connector check")
    except ConnectorError as exc:
        return Probe("broker", False, f"{where}: {exc.message}")
    try:
        channel = conn.channel()
        _, messages, consumers = channel.queue_declare(queue=queue, passive=True)
    except Exception as exc:
        return Probe("broker", False, f"{where}: logged in, but queue {queue!r}: "
                     f"{_amqp_reason(exc)} (start the connector once to declare it)")
    finally:
        close_quietly(conn)
    return Probe("broker", True, f"{where}: logged in, queue {queue!r} exists "
                 f"({messages} waiting, {consumers} consumers)")


def _amqp_reason(exc: BaseException) -> str:
    text = str(exc)
    if "ACCESS_REFUSED" in text or "403" in text:
        return f"login refused by the broker (user or password wrong): {text}"
    if "NOT_FOUND" in text or "404" in text:
        return f"does not exist: {text}"
    if "NOT_ALLOWED" in text or "530" in text:
        return f"virtual host refused (it does not exist or the user has no access): {text}"
    return f"{type(exc).__name__}: {text}"


def probe_store(config: Config) -> Probe:
    from connector.daemon.check_offline import read_only_sqlite

    path = config.store.path
    if path is None:  # PostgreSQL (replicas)
        from connector.store import configured_dsn
        from connector.store.postgres_db import probe_database

        ok, detail = probe_database(configured_dsn(config.store), config.store.schema_name)
        return Probe("store", ok, detail)
    if not path.exists():
        return Probe("store", True, f"{path} does not exist yet (created at the first run)")
    try:
        conn = read_only_sqlite(path)
        try:
            conn.execute("PRAGMA quick_check(1)").fetchone()
            count = conn.execute("SELECT COUNT(*) FROM packages").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return Probe("store", False, f"{path}: {exc}")
    return Probe("store", True, f"{path}: readable, {count} packages")
