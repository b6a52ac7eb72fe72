"""Every certificate and CRL a connector configuration puts in use, with their validity.

``inventory(config)`` lists our own certificates (seal, XML signer, encryption, hub TLS
client), the peers' encryption certificates, the trust anchors and helper CA certificates of
the trust folder, and the CRLs of the CRL folder (with their next update). Each entry names
the configuration key that brought it in, so ``connector check`` can point at the line.
Files are parsed once per (path, modification time, size): calling ``inventory`` at every
metrics scrape re-reads only files that changed.

``PeerCertificates`` is the peers' encryption certificates as a mapping that re-reads a file
when it changes (no restart to rotate a peer's certificate).

This module reads certificate files only: it must not load private keys (except a PKCS#12
bundle's certificate, where no separate certificate file is given), validate chains or sign.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from connector.config_schema import Config, KeyConfig
from connector.errors import ConfigurationError
from connector.metrics import TrustSnapshot
from connector.trust.keys import KeySource, parse_certificates

CA_SUFFIXES = frozenset({".pem", ".crt", ".cer", ".der"})
CRL_SUFFIXES = frozenset({".crl", ".pem", ".der"})


@dataclass(frozen=True)
class CertificateInUse:
    role: str  # seal, xml_signer, encryption, hub_tls_client, peer_encryption, trust_anchor, ca
    name: str  # OrganId for peers, file name for CA certificates, "" for our own
    key: str  # the configuration key that names the file
    path: Path
    subject: str
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime

    def days_left(self, now: dt.datetime | None = None) -> float:
        moment = now or dt.datetime.now(dt.UTC)
        return (self.not_after - moment).total_seconds() / 86400.0


@dataclass(frozen=True)
class CrlInUse:
    key: str
    path: Path
    issuer: str
    this_update: dt.datetime
    next_update: dt.datetime | None


@dataclass(frozen=True)
class InventoryProblem:
    key: str  # configuration key
    message: str


@dataclass
class Inventory:
    certificates: list[CertificateInUse] = field(default_factory=list)
    crls: list[CrlInUse] = field(default_factory=list)
    problems: list[InventoryProblem] = field(default_factory=list)


_Signature = tuple[int, int]
_cache: dict[Path, tuple[_Signature, object]] = {}
_cache_lock = threading.Lock()


def _signature(path: Path) -> _Signature:
    stat = path.stat()
    return (stat.st_mtime_ns, stat.st_size)


def _parsed(path: Path, parse: Callable[[Path], object]) -> object:
    """``parse(path)`` once per file version (a changed file is parsed again)."""
    signature = _signature(path)
    with _cache_lock:
        found = _cache.get(path)
        if found is not None and found[0] == signature:
            return found[1]
    value = parse(path)
    with _cache_lock:
        _cache[path] = (signature, value)
    return value


def read_certificates(path: Path) -> list[x509.Certificate]:
    """The certificates of a PEM/DER file, cached by file version."""
    try:
        result = _parsed(path, _parse_certificate_file)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read certificate file {path}: {exc.strerror or exc}", reason="file_missing"
        ) from None
    assert isinstance(result, list)
    return result


def _parse_certificate_file(path: Path) -> list[x509.Certificate]:
    return parse_certificates(path.read_bytes(), f"certificate file {path}")


def read_crl(path: Path) -> x509.CertificateRevocationList:
    try:
        result = _parsed(path, _parse_crl_file)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read CRL file {path}: {exc.strerror or exc}", reason="file_missing"
        ) from None
    assert isinstance(result, x509.CertificateRevocationList)
    return result


def _parse_crl_file(path: Path) -> x509.CertificateRevocationList:
    data = path.read_bytes()
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError:
        raise ConfigurationError(
            f"CRL file {path} is not a PEM or DER CRL", reason="crl_invalid"
        ) from None


def _entry(role: str, name: str, key: str, path: Path, cert: x509.Certificate) -> CertificateInUse:
    return CertificateInUse(
        role=role,
        name=name,
        key=key,
        path=path,
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )


def _own(config: Config) -> Iterator[tuple[str, str, str, KeyConfig]]:
    """(role, name, configuration key, key) of our own identities; ``name`` is the OrganId of
    an organisation's when the connector serves several (its agency's are ``trust.*``)."""
    yield "seal", "", "trust.seal", config.trust.seal
    if config.trust.xml_signer is not None:
        yield "xml_signer", "", "trust.xml_signer", config.trust.xml_signer
    if config.encryption.decryption_key is not None:
        yield "encryption", "", "encryption.decryption_key", config.encryption.decryption_key
    for index, organisation in enumerate(config.organisations):
        if organisation.organ_id == config.agency.organ_id:
            continue  # its keys are trust.seal, trust.xml_signer, encryption.decryption_key
        where, name = f"organisations[{index}]", organisation.organ_id
        yield "seal", name, f"{where}.seal", organisation.seal
        if organisation.xml_signer is not None:
            yield "xml_signer", name, f"{where}.xml_signer", organisation.xml_signer
        if organisation.decryption_key is not None:
            yield "encryption", name, f"{where}.decryption_key", organisation.decryption_key


def peer_certificate_files(config: Config) -> dict[str, tuple[str, Path]]:
    """OrganId -> (configuration key, file) of every peer encryption certificate."""
    section = config.encryption
    found: dict[str, tuple[str, Path]] = {
        organ_id: (f"encryption.certificates.{organ_id}", path)
        for organ_id, path in section.certificates.items()
    }
    if section.certificates_dir is not None and section.certificates_dir.is_dir():
        for path in sorted(section.certificates_dir.glob("*.pem")):
            found.setdefault(path.stem, ("encryption.certificates_dir", path))
    return found


def inventory(config: Config) -> Inventory:
    """Every certificate and CRL in use; unreadable ones become problems, never exceptions."""
    result = Inventory()

    def add_file(role: str, name: str, key: str, path: Path) -> None:
        try:
            first = read_certificates(path)[0]
        except ConfigurationError as exc:
            result.problems.append(InventoryProblem(key, exc.message))
            return
        result.certificates.append(_entry(role, name, key, path, first))

    for role, name, where, key_config in _own(config):
        for index, chain in enumerate(key_config.chain):
            add_file("chain", chain.name, f"{where}.chain[{index}]", chain)
        if key_config.cert is not None:
            add_file(role, name, f"{where}.cert", key_config.cert)
        elif key_config.pkcs11 is not None and key_config.pkcs11.cert_file is not None:
            add_file(role, name, f"{where}.pkcs11.cert_file", key_config.pkcs11.cert_file)
        elif key_config.key is not None and key_config.key.suffix.lower() in (".p12", ".pfx"):
            _add_bundle(result, role, f"{where}.key", key_config.key, key_config)
    tls = config.hub.tls
    if tls.client_cert is not None:
        add_file("hub_tls_client", "", "hub.tls.client_cert", tls.client_cert)
    if tls.ca_file is not None:
        add_file("hub_tls_ca", tls.ca_file.name, "hub.tls.ca_file", tls.ca_file)
    amqp = config.local.amqp if config.local.type == "amqp" else None
    if amqp is not None and amqp.tls_cert_file is not None:
        add_file("broker_tls_client", "", "local.amqp.tls_cert_file", amqp.tls_cert_file)
    if amqp is not None and amqp.tls_ca_file is not None:
        add_file("broker_tls_ca", amqp.tls_ca_file.name, "local.amqp.tls_ca_file", amqp.tls_ca_file)
    for organ_id, (key, path) in sorted(peer_certificate_files(config).items()):
        add_file("peer_encryption", organ_id, key, path)
    _add_trust_folder(result, config)
    _add_crls(result, config)
    return result


def _add_bundle(
    result: Inventory, role: str, key: str, bundle: Path, key_config: KeyConfig
) -> None:
    source = KeySource(
        key=bundle,
        cert=key_config.cert,
        chain=tuple(key_config.chain),
        password_env=key_config.password_env,
        password_file=key_config.password_file,
    )
    try:
        identity = source.load()
    except ConfigurationError as exc:
        result.problems.append(InventoryProblem(key, exc.message))
        return
    result.certificates.append(_entry(role, "", key, bundle, identity.certificate))


def _add_trust_folder(result: Inventory, config: Config) -> None:
    folder = config.trust.trust_dir
    if not folder.is_dir():
        problem = InventoryProblem("trust.trust_dir", f"folder {folder} does not exist")
        result.problems.append(problem)
        return
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() not in CA_SUFFIXES:
            continue
        try:
            certificates = read_certificates(path)
        except ConfigurationError as exc:
            result.problems.append(InventoryProblem("trust.trust_dir", exc.message))
            continue
        for index, cert in enumerate(certificates):
            role = "trust_anchor" if cert.subject == cert.issuer else "ca"
            name = path.name if len(certificates) == 1 else f"{path.name}#{index}"
            result.certificates.append(_entry(role, name, "trust.trust_dir", path, cert))


def _add_crls(result: Inventory, config: Config) -> None:
    folder = config.trust.crl_dir
    if folder is None:
        return
    if not folder.is_dir():
        result.problems.append(InventoryProblem("trust.crl_dir", f"folder {folder} does not exist"))
        return
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() not in CRL_SUFFIXES:
            continue
        try:
            crl = read_crl(path)
        except ConfigurationError as exc:
            result.problems.append(InventoryProblem("trust.crl_dir", exc.message))
            continue
        result.crls.append(
            CrlInUse(
                key="trust.crl_dir",
                path=path,
                issuer=crl.issuer.rfc4514_string(),
                this_update=crl.last_update_utc,
                next_update=crl.next_update_utc,
            )
        )


class PeerCertificates(Mapping[str, list[x509.Certificate]]):
    """OrganId -> [leaf, intermediates…] read from files, re-read when a file changes.

    A file that has become unreadable keeps its last good certificates (a half-written
    replacement must not stop encryption); a new ``<OrganId>.pem`` in the folder is seen at
    the next look-up."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._last_good: dict[str, list[x509.Certificate]] = {}
        for organ_id, (_, path) in peer_certificate_files(config).items():
            self._last_good[organ_id] = read_certificates(path)  # fail at start if unreadable

    def _files(self) -> dict[str, tuple[str, Path]]:
        return peer_certificate_files(self._config)

    def __getitem__(self, organ_id: str) -> list[x509.Certificate]:
        found = self._files().get(organ_id)
        if found is None:
            raise KeyError(organ_id)
        try:
            certificates = read_certificates(found[1])
        except ConfigurationError:
            if organ_id in self._last_good:
                return self._last_good[organ_id]
            raise KeyError(organ_id) from None
        self._last_good[organ_id] = certificates
        return certificates

    def __iter__(self) -> Iterator[str]:
        return iter(self._files())

    def __len__(self) -> int:
        return len(self._files())


def trust_snapshot(config: Config) -> TrustSnapshot:
    """The certificate expiry and CRL next-update gauges' values, read now (cached files)."""
    found = inventory(config)
    return TrustSnapshot(
        certificates=tuple(
            (c.role, c.name, c.not_after.timestamp()) for c in found.certificates
        ),
        crls=tuple(
            (crl.path.name, crl.next_update.timestamp())
            for crl in found.crls
            if crl.next_update is not None
        ),
    )
