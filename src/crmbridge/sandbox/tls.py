"""A throwaway certificate authority, so the Salesforce simulator can serve real HTTPS on loopback.

simple-salesforce builds every URL with ``https://``
(docs/salesforce-api.md#simple-salesforce), so a simulator that speaks plain HTTP cannot be
reached by the real client. ``make_local_ca(directory)`` writes:

- ``ca.pem``: the CA certificate: the file a client trusts (``CRMBRIDGE_SALESFORCE__CA_BUNDLE``);
- ``server-cert.pem`` / ``server-key.pem``: a leaf for ``127.0.0.1``, ``::1`` and ``localhost``
  signed by that CA (EC P-256, SHA-256), the key readable by its owner only.

The CA's private key is never written and is dropped after signing: nobody can mint another
certificate this CA vouches for, so trusting ``ca.pem`` trusts exactly this one server key.

Contract:
- Idempotent and cheap: results are cached per process and directory, and valid files left in the
  directory by an earlier process are reused (so a demo user exports the bundle path once). Files
  that fail to load, do not chain, or expire within ``RENEW_BEFORE`` are replaced.
- Safe when several processes share a directory on POSIX (an ``flock`` serialises generation);
  files are written atomically either way.
- ``LocalCA`` paths are ``pathlib.Path``: pass ``str(ca.ca_path)`` to ``requests``, whose
  ``verify=`` silently falls back to the system trust for anything that is not a ``str``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import ssl
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

try:  # POSIX only; elsewhere generation is still atomic per file, just not serialised
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["CA_FILENAME", "CERT_FILENAME", "KEY_FILENAME", "LocalCA", "make_local_ca"]

CA_FILENAME = "ca.pem"
CERT_FILENAME = "server-cert.pem"
KEY_FILENAME = "server-key.pem"
LOCK_FILENAME = ".crmbridge-ca.lock"

CA_LIFETIME = dt.timedelta(days=365)
CERT_LIFETIME = dt.timedelta(days=365)
CLOCK_SKEW_ALLOWANCE = dt.timedelta(days=1)  # not_before lies in the past: skewed clocks still work
RENEW_BEFORE = dt.timedelta(days=7)

SERVER_DNS_NAMES = ("localhost",)
SERVER_IP_ADDRESSES = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class LocalCA:
    """Paths of a throwaway CA and the loopback server certificate it signed."""

    ca_path: Path
    cert_path: Path
    key_path: Path

    def server_context(self) -> ssl.SSLContext:
        """A fresh server-side context (TLS 1.2+) holding the loopback certificate and key."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(certfile=self.cert_path, keyfile=self.key_path)
        return context


_cache: dict[Path, LocalCA] = {}
_cache_lock = threading.Lock()


def make_local_ca(directory: Path) -> LocalCA:
    """Return the CA and loopback certificate in ``directory``, creating them when needed.

    Creates ``directory`` if missing. Raises ``OSError`` when it cannot be written.
    """
    directory = Path(directory).resolve()
    with _cache_lock:
        cached = _cache.get(directory)
        if cached is not None and _all_exist(cached):
            return cached
        directory.mkdir(parents=True, exist_ok=True)
        local_ca = LocalCA(
            ca_path=directory / CA_FILENAME,
            cert_path=directory / CERT_FILENAME,
            key_path=directory / KEY_FILENAME,
        )
        with _directory_lock(directory):
            if not _is_usable(local_ca, now=_utcnow()):
                _generate(local_ca, now=_utcnow())
        _cache[directory] = local_ca
        return local_ca


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _all_exist(local_ca: LocalCA) -> bool:
    return all(p.is_file() for p in (local_ca.ca_path, local_ca.cert_path, local_ca.key_path))


@contextlib.contextmanager
def _directory_lock(directory: Path) -> Iterator[None]:
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    with (directory / LOCK_FILENAME).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _is_usable(local_ca: LocalCA, *, now: dt.datetime) -> bool:
    """True when the files on disk load, chain to each other, match, and stay valid a while."""
    if not _all_exist(local_ca):
        return False
    try:
        ca_cert = x509.load_pem_x509_certificate(local_ca.ca_path.read_bytes())
        cert = x509.load_pem_x509_certificate(local_ca.cert_path.read_bytes())
        key = serialization.load_pem_private_key(local_ca.key_path.read_bytes(), password=None)
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    if key.public_key() != cert.public_key():
        return False
    deadline = now + RENEW_BEFORE
    return all(c.not_valid_after_utc > deadline for c in (ca_cert, cert))


def _generate(local_ca: LocalCA, *, now: dt.datetime) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "crmbridge sandbox (throwaway)"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"crmbridge sandbox CA {os.getpid()}"),
        ]
    )
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW_ALLOWANCE)
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName(
        [x509.DNSName(name) for name in SERVER_DNS_NAMES]
        + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_IP_ADDRESSES]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW_ALLOWANCE)
        .not_valid_after(now + CERT_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(san, critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    key_pem = server_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Key first: a reader that finds a new certificate must never pair it with an old key.
    pem = serialization.Encoding.PEM
    _write_atomically(local_ca.key_path, key_pem, mode=0o600)
    _write_atomically(local_ca.cert_path, cert.public_bytes(pem), mode=0o644)
    _write_atomically(local_ca.ca_path, ca_cert.public_bytes(pem), mode=0o644)


def _write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.chmod(handle.fileno(), mode)
            handle.write(data)
        Path(tmp_name).replace(path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
