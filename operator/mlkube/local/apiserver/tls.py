"""The server's TLS identity: a private CA and a 127.0.0.1 serving certificate, kept in the state directory.

Why TLS on loopback: kubectl (client-go `clientcmd`) sends a kubeconfig's bearer token only to
`https://` servers, so a token-protected server must speak TLS for kubectl to authenticate. The
CA goes into the kubeconfig as `certificate-authority-data`. Owns key/certificate creation and
reuse across restarts (files 0600). Must not decide anything about requests.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CA_FILE, CERT_FILE, KEY_FILE = "ca.crt", "server.crt", "server.key"
VALIDITY = datetime.timedelta(days=3650)


def _private_write(path: str, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def _certificate(subject: str, public_key, issuer: x509.Name | None, signing_key, *, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
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
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        builder = builder.add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def ensure(state_dir: str) -> None:
    """Create the CA and serving certificate unless both already exist."""
    paths = [os.path.join(state_dir, f) for f in (CA_FILE, CERT_FILE, KEY_FILE)]
    if all(os.path.exists(p) for p in paths):
        return
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate("mlkube-local-ca", ca_key.public_key(), None, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _certificate("127.0.0.1", server_key.public_key(), ca_cert.subject, ca_key, ca=False)
    _private_write(paths[0], ca_cert.public_bytes(serialization.Encoding.PEM))
    _private_write(paths[1], server_cert.public_bytes(serialization.Encoding.PEM))
    _private_write(
        paths[2],
        server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


def server_context(state_dir: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.path.join(state_dir, CERT_FILE), os.path.join(state_dir, KEY_FILE))
    return context


def ca_path(state_dir: str) -> str:
    return os.path.join(state_dir, CA_FILE)


def ca_data(state_dir: str) -> str:
    """The CA certificate as kubeconfig's `certificate-authority-data` (base64 of the PEM)."""
    with open(ca_path(state_dir), "rb") as handle:
        return base64.b64encode(handle.read()).decode()


def client_context(state_dir: str) -> ssl.SSLContext:
    """An SSL context trusting this server's CA (for Python clients such as the benchmark)."""
    return ssl.create_default_context(cafile=ca_path(state_dir))
