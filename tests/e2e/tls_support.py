"""Certificates for the TLS and HTTP/2 tests, made at test time with the
``cryptography`` package: a CA, a server certificate for ``localhost`` and
``127.0.0.1`` signed by it, a client certificate signed by it, and a
client certificate signed by nobody we trust."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import pytest

# Without the package, the TLS and HTTP/2 test modules are skipped.
pytest.importorskip("cryptography")

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

CLIENT_CN = "qiao-test-client"


@dataclass
class Pki:
    ca: Path
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path
    rogue_key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Qiao tests"),
        ]
    )


def _write_key(path: Path, key) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _issue(subject: str, key, issuer: x509.Name, signer, *, ca=False, server=False):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        b = b.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    elif server:
        b = b.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        b = b.add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
    else:
        b = b.add_extension(x509.ExtendedKeyUsage([x509.OID_CLIENT_AUTH]), critical=False)
    return b.sign(signer, hashes.SHA256())


def make_pki(directory: Path) -> Pki:
    """Writes the certificates and keys (PEM) into ``directory``."""
    pem = serialization.Encoding.PEM
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _issue("Qiao test CA", ca_key, _name("Qiao test CA"), ca_key, ca=True)
    paths = {}
    for label, cn, signer_key, issuer, kind in (
        ("server", "localhost", ca_key, ca_cert.subject, "server"),
        ("client", CLIENT_CN, ca_key, ca_cert.subject, "client"),
        ("rogue", "rogue-client", None, None, "client"),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        if signer_key is None:  # self-signed: no CA we trust vouches for it
            signer_key, issuer = key, _name(cn)
        cert = _issue(cn, key, issuer, signer_key, server=kind == "server")
        (directory / f"{label}.pem").write_bytes(cert.public_bytes(pem))
        _write_key(directory / f"{label}.key", key)
        paths[label] = (directory / f"{label}.pem", directory / f"{label}.key")
    (directory / "ca.pem").write_bytes(ca_cert.public_bytes(pem))
    return Pki(
        ca=directory / "ca.pem",
        cert=paths["server"][0],
        key=paths["server"][1],
        client_cert=paths["client"][0],
        client_key=paths["client"][1],
        rogue_cert=paths["rogue"][0],
        rogue_key=paths["rogue"][1],
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A fixture for the TLS and HTTP/2 test modules to import: the
    certificates of one test module."""
    return make_pki(tmp_path_factory.mktemp("pki"))
