"""SoftHSM2 tokens for tests, benchmarks and demos: a real PKCS#11 token in a folder.

:func:`softhsm_module` finds Debian's ``libsofthsm2.so``; :class:`SoftHsm` writes a
``softhsm2.conf`` whose token directory is a given folder (point ``SOFTHSM2_CONF`` at it
before the module is first initialised in the process), creates tokens with
``softhsm2-util``, generates key pairs *inside* a token and stores certificates next to them.
Seal certificates for such keys come from the demo PKI
(:func:`connector.trust.pki.issue_seal_certificate`): the private key is never seen outside.
:func:`enrol_demo_seal` does all of it for one demo agency (demos with a seal in a token).

This module must not be used for production tokens (it writes PINs it is given to the
token only, never to disk, but it creates tokens with a throw-away SO PIN).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pkcs11
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pkcs11 import Attribute, CertificateType, KeyType, ObjectClass
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from connector.errors import ConfigurationError
from connector.trust.pki import DEMO_AGENCIES, DemoPki, issue_seal_certificate

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)


def softhsm_module() -> Path | None:
    """The SoftHSM2 PKCS#11 module and its ``softhsm2-util``, or None if not installed."""
    if shutil.which("softhsm2-util") is None:
        return None
    return next((Path(p) for p in MODULE_CANDIDATES if Path(p).is_file()), None)


@dataclass(frozen=True)
class SoftHsm:
    """A SoftHSM2 configuration whose tokens live in ``token_dir``."""

    conf: Path
    token_dir: Path
    module: Path

    @classmethod
    def create(cls, directory: Path, module: Path | None = None) -> SoftHsm:
        found = module or softhsm_module()
        if found is None:
            raise ConfigurationError("SoftHSM2 is not installed (Debian package softhsm2)",
                                     reason="token_module")
        token_dir = directory / "tokens"
        token_dir.mkdir(parents=True, exist_ok=True)
        conf = directory / "softhsm2.conf"
        conf.write_text(f"directories.tokendir = {token_dir}\nobjectstore.backend = file\n"
                        "log.level = ERROR\nslots.removable = true\n", encoding="utf-8")
        return cls(conf, token_dir, found)

    def environ(self) -> dict[str, str]:
        return {"SOFTHSM2_CONF": str(self.conf)}

    def init_token(self, label: str, pin: str) -> None:
        """A new token (its SO PIN random and forgotten: these tokens are throw-away)."""
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin,
             "--so-pin", secrets.token_hex(8)],
            check=True, capture_output=True, env={**os.environ, **self.environ()}, timeout=60,
        )
        _rescan(self.module)

    @contextmanager
    def session(self, label: str, pin: str) -> Iterator[Any]:
        """A read-write session (SOFTHSM2_CONF must already point here in this process)."""
        library = pkcs11.lib(str(self.module))
        token = library.get_token(token_label=label)
        opened = token.open(user_pin=pin, rw=True)
        try:
            yield opened
        finally:
            opened.close()

    def generate_key(self, label: str, pin: str, key_label: str, *, key_id: bytes,
                     kind: Literal["rsa", "ec"] = "rsa"
                     ) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
        """A key pair generated in the token (private part sensitive, not extractable)."""
        private = {Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False}
        with self.session(label, pin) as session:
            if kind == "rsa":
                public, _ = session.generate_keypair(
                    KeyType.RSA, 2048, label=key_label, id=key_id, store=True,
                    private_template=private)
                numbers = rsa.RSAPublicNumbers(
                    int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big"),
                    int.from_bytes(public[Attribute.MODULUS], "big"))
                return numbers.public_key()
            parameters = session.create_domain_parameters(
                KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
                local=True)
            public, _ = parameters.generate_keypair(label=key_label, id=key_id, store=True,
                                                    private_template=private)
            loaded = serialization.load_der_public_key(encode_ec_public_key(public))
            assert isinstance(loaded, ec.EllipticCurvePublicKey)
            return loaded

    def store_certificate(self, label: str, pin: str, cert_label: str, *, key_id: bytes,
                          certificate: x509.Certificate) -> None:
        with self.session(label, pin) as session:
            session.create_object({
                Attribute.CLASS: ObjectClass.CERTIFICATE,
                Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                Attribute.TOKEN: True,
                Attribute.LABEL: cert_label,
                Attribute.ID: key_id,
                Attribute.SUBJECT: certificate.subject.public_bytes(),
                Attribute.VALUE: certificate.public_bytes(serialization.Encoding.DER),
            })

    def token_folders(self) -> list[Path]:
        """The token's folders (SoftHSM2 keeps one per token): moving one away "pulls" it."""
        return sorted(p for p in self.token_dir.iterdir() if p.is_dir())


def enrol_demo_seal(hsm: SoftHsm, pki: DemoPki, organ_id: str, *, token_label: str, pin: str,
                    key_label: str = "seal", kind: Literal["rsa", "ec"] = "rsa") -> Path:
    """A new token holding a seal key for a demo agency, made inside it, with its demo-PKI
    certificate stored next to it (label ``key_label``, CKA_ID 01) and written to
    ``<token_dir>/../<token_label>-seal.pem``, whose path is returned (for ``cert_file``)."""
    agency = next((a for a in DEMO_AGENCIES if a.organ_id == organ_id), None)
    if agency is None:
        raise ConfigurationError(f"{organ_id} is not a demo agency", reason="pki_agencies")
    hsm.init_token(token_label, pin)
    public = hsm.generate_key(token_label, pin, key_label, key_id=b"\x01", kind=kind)
    certificate = issue_seal_certificate(pki, agency, public)
    hsm.store_certificate(token_label, pin, key_label, key_id=b"\x01", certificate=certificate)
    cert_file = hsm.token_dir.parent / f"{token_label}-seal.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_file


def _rescan(module: Path) -> None:
    """Let an initialised module in this process see a token created by softhsm2-util."""
    loaded: dict[str, Any] = getattr(pkcs11, "_loaded", {})
    library = loaded.get(str(module))
    if library is not None and library.initialized:
        library.reinitialize()
