"""The local stacks' ports on 127.0.0.1: configured, else the ones a state directory used last, else free."""

from __future__ import annotations

import json
import socket
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def remembered_port(memory: Path, name: str, configured: int, probe: bool = True, usual: int = 0) -> int:
    """The configured port, else the one recorded in ``memory`` last time (the saved state refers to it;
    with ``probe``, only if still free), else the ``usual`` one if free, else a free one, recorded."""
    if configured:
        return configured
    ports = json.loads(memory.read_text()) if memory.exists() else {}
    if not ports.get(name) or (probe and not port_is_free(ports[name])):
        ports[name] = usual if usual and port_is_free(usual) else free_port()
        memory.parent.mkdir(parents=True, exist_ok=True)
        memory.write_text(json.dumps(ports))
    return ports[name]


def port_is_free(port: int) -> bool:
    """Could a server listen on it? Servers bind with SO_REUSEADDR, so connections of the last run still
    in TIME_WAIT do not make the port taken (the database's port is part of its name, see Target)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])
