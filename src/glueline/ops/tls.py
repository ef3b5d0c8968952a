"""What TLS a PostgreSQL server offers, asked the way libpq asks (an SSLRequest, then a handshake),
without logging in: deploy uses it to store a ``--db-url`` that leaves ``sslmode`` at libpq's default
(``prefer``: encrypted if offered, the certificate never checked) with the strictest mode that will
work, since the job then connects from AWS with nobody watching.

    the server's answer               stored as
    TLS, certificate verified         sslmode=verify-full, sslrootcert=system (the system's CAs)
    TLS, certificate not verifiable   sslmode=require (encrypted; plan says the certificate is unchecked)
    no TLS, or not reachable here     as given (plan says so)
"""

from __future__ import annotations

import socket
import ssl
import struct

SSL_REQUEST = struct.pack("!ii", 8, 80877103)  # PostgreSQL's SSLRequest message

VERIFIED, UNVERIFIED, NO_TLS, UNREACHABLE = "verified", "unverified", "no TLS", "unreachable"


def probe(host: str, port: int, timeout: float = 5.0, cafile: str | None = None) -> str:
    """``VERIFIED``, ``UNVERIFIED``, ``NO_TLS`` or ``UNREACHABLE`` (``cafile``: CAs to trust instead of
    the system's)."""
    try:
        connection = socket.create_connection((host, port), timeout)
    except OSError:
        return UNREACHABLE
    with connection:
        try:
            connection.sendall(SSL_REQUEST)
            if connection.recv(1) != b"S":
                return NO_TLS
            context = ssl.create_default_context(cafile=cafile)
            with context.wrap_socket(connection, server_hostname=host):
                return VERIFIED
        except ssl.SSLCertVerificationError:
            return UNVERIFIED
        except OSError:  # reset mid-handshake, timed out
            return UNREACHABLE
