"""What a PostgreSQL server offers, asked as libpq asks, against servers on loopback that answer as a
server without TLS, with a certificate nobody vouches for, and with one the given CAs vouch for; and
what deploy stores for each."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from glueline.ops import tls


def serve(answer: bytes, certificate: Path | None = None) -> tuple[int, threading.Thread]:
    """A server that reads an SSLRequest, answers ``answer`` and, with a certificate, does the handshake."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def run() -> None:
        with listener:
            connection, _ = listener.accept()
            with connection:
                assert connection.recv(8) == tls.SSL_REQUEST
                connection.sendall(answer)
                if certificate is not None:
                    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                    context.load_cert_chain(certificate)
                    try:
                        with context.wrap_socket(connection, server_side=True) as secured:
                            secured.recv(1)
                    except (ssl.SSLError, OSError):
                        pass  # the client refused the certificate

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return port, thread


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> Path:
    """A self-signed certificate (key included) for localhost."""
    pem = tmp_path_factory.mktemp("tls") / "server.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-keyout",
            str(pem),
            "-out",
            str(pem),
        ],
        check=True,
        capture_output=True,
    )
    return pem


def test_a_server_without_tls(certificate):
    port, thread = serve(b"N")
    assert tls.probe("127.0.0.1", port) == tls.NO_TLS
    thread.join(5)


def test_a_certificate_nobody_vouches_for_is_unverified(certificate):
    port, thread = serve(b"S", certificate)
    assert tls.probe("localhost", port) == tls.UNVERIFIED
    thread.join(5)


def test_a_certificate_the_cas_vouch_for_is_verified(certificate):
    port, thread = serve(b"S", certificate)
    assert tls.probe("localhost", port, cafile=str(certificate)) == tls.VERIFIED
    thread.join(5)


def test_nobody_listening_is_unreachable():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    assert tls.probe("127.0.0.1", port, timeout=1) == tls.UNREACHABLE


def test_deploy_stores_the_strictest_mode_the_server_allows(monkeypatch):
    """prefer (libpq's default) becomes verify-full or require; a mode given in the URL stays."""
    from glueline.ops.database import strictest_tls
    from glueline.shared.dbsecret import DbConnection

    db = DbConnection(host="db.example.com", port=5432, dbname="bank", username="etl")
    for offered, expected in [
        (tls.VERIFIED, ("verify-full", "system")),
        (tls.UNVERIFIED, ("require", "")),
        (tls.NO_TLS, ("prefer", "")),
        (tls.UNREACHABLE, ("prefer", "")),
    ]:
        monkeypatch.setattr(tls, "probe", lambda host, port, offered=offered: offered)
        stored, rds_ca, said = strictest_tls(db)
        assert (stored.sslmode, stored.sslrootcert, rds_ca, said) == (*expected, False, offered)
    given = DbConnection(host="db.example.com", port=5432, dbname="bank", username="etl", sslmode="disable")
    assert strictest_tls(given) == (given, False, "")
    rds = DbConnection(host="bank.c0ffee.eu-west-1.rds.amazonaws.com", port=5432, dbname="bank", username="etl")
    stored, rds_ca, said = strictest_tls(rds)  # no probe: RDS's CA, shipped with the job's code
    assert (stored.sslmode, stored.sslrootcert, rds_ca, said) == ("verify-full", "", True, "")


def test_the_tls_mode_is_decided_on_first_use_only(monkeypatch):
    """A command that names the database or counts its rows (status, console) asks the server nothing;
    deploy, which stores the mode, asks once."""
    from glueline.ops.database import known_database
    from glueline.settings import Settings

    asked: list[str] = []
    monkeypatch.setattr(tls, "probe", lambda host, port: asked.append(host) or tls.UNVERIFIED)
    database = known_database(Settings(_env_file=None, db_url="postgresql://etl@db.example.com/bank"), None, None)
    assert database is not None
    assert database.target("public.transactions") == "db.example.com:5432/bank/public.transactions"
    assert database.here is not None and database.here.sslmode == "prefer" and asked == []
    assert (database.connection.sslmode, database.connection.sslmode, asked) == (
        "require",
        "require",
        ["db.example.com"],
    )
