"""TLS for ``serve`` (``--ssl-certfile``, ``--ssl-keyfile``): a self-signed certificate made here, a
realtime session over ``wss://`` and ``/healthz`` over HTTPS, and nothing in the clear on that port."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
from pathlib import Path

import httpx
import pytest
import websockets
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from openrealtime.runtime.engines import EngineSet
from openrealtime.server.embedded import running_server
from openrealtime.server.listener import uvicorn_config
from openrealtime.server.settings import Settings
from tests.conftest import TIMEOUT_S

KEY = "sk-test-key"


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files in ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "openrealtime test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


async def test_a_session_over_wss_and_healthz_over_https(fake_engines: EngineSet, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    settings = Settings(port=0, api_key=KEY, ssl_certfile=str(cert), ssl_keyfile=str(key))
    trust = ssl.create_default_context(cafile=str(cert))
    async with running_server(settings, engines=fake_engines) as url:
        assert url.startswith("wss://127.0.0.1:")
        headers = {"Authorization": f"Bearer {KEY}"}
        async with websockets.connect(
            f"{url}/v1/realtime?intent=transcription", additional_headers=headers, ssl=trust, open_timeout=TIMEOUT_S
        ) as ws:
            created = json.loads(await ws.recv())
            assert created["type"] == "session.created"
        https = url.replace("wss://", "https://")
        async with httpx.AsyncClient(verify=trust, timeout=TIMEOUT_S) as http:
            assert (await http.get(f"{https}/healthz")).status_code == 200
        # Nothing in the clear: a ws:// connect to the TLS port never becomes a session.
        with pytest.raises((websockets.InvalidHandshake, websockets.ConnectionClosed, OSError)):
            async with websockets.connect(url.replace("wss://", "ws://") + "/v1/realtime", open_timeout=TIMEOUT_S):
                pass


def test_a_certificate_without_its_key_is_refused(fake_engines: EngineSet) -> None:
    with pytest.raises(ValueError, match="both ssl_certfile and ssl_keyfile"):
        uvicorn_config(object(), Settings(ssl_certfile="cert.pem"), log_level="warning")
