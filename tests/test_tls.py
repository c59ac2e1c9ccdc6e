"""TLS is one setting away: a coordinator given a certificate and key serves only over TLS, and a client
that trusts the certificate gets answers while a plaintext client gets none."""

from __future__ import annotations

import datetime
import ipaddress

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gbair.client import GbairClient
from gbair.coordinator.local import LocalCoordinator
from test_service import TOKEN_A, coordinator_settings


def _self_signed(folder):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_a_tls_coordinator_answers_trusting_clients_only(tmp_path, redis_url, tiny_model_dir):
    cert, key = _self_signed(tmp_path)
    settings = coordinator_settings(redis_url, tiny_model_dir, tls_cert=str(cert), tls_key=str(key))
    with LocalCoordinator(tmp_path / "state", settings) as coordinator:
        with GbairClient(coordinator.target, TOKEN_A, tls_ca=cert) as client:
            assert client.list_jobs() == []
        with GbairClient(coordinator.target, TOKEN_A, timeout_s=5) as plaintext:
            with pytest.raises(grpc.RpcError) as refused:
                plaintext.list_jobs()
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
