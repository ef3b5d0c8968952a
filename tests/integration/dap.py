"""A Debug Adapter Protocol client, as an editor speaks it to debugpy: enough to attach, set breakpoints,
see them hit and continue (https://microsoft.github.io/debug-adapter-protocol/specification)."""

from __future__ import annotations

import json
import socket
import time
from typing import Any


class DapClient:
    """Connected and initialized once the driver listens. Until then a connection is refused here, or
    (a port compose publishes) accepted by Docker's proxy and closed: both are tried again."""

    def __init__(self, host: str, port: int, timeout: float = 120, **initialize: Any):
        deadline = time.monotonic() + timeout
        while True:
            self.buffer = b""
            self.seq = 0
            self.events: list[dict[str, Any]] = []
            try:
                self.sock = socket.create_connection((host, port), timeout=5)
                self.sock.settimeout(timeout)
                try:
                    self.request("initialize", **initialize)
                    return
                except OSError:  # ConnectionError included
                    self.sock.close()
                    raise
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def close(self) -> None:
        self.sock.close()

    def send(self, command: str, **arguments: Any) -> int:
        self.seq += 1
        body = json.dumps({"seq": self.seq, "type": "request", "command": command, "arguments": arguments}).encode()
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return self.seq

    def request(self, command: str, **arguments: Any) -> dict[str, Any]:
        """Send a request and return its response (events meanwhile are kept)."""
        seq = self.send(command, **arguments)
        message = self.receive(lambda m: m["type"] == "response" and m["request_seq"] == seq)
        assert message["success"], message
        return message

    def event(self, name: str) -> dict[str, Any]:
        """The next ``name`` event, kept or still to come."""
        for index, message in enumerate(self.events):
            if message["event"] == name:
                return self.events.pop(index)
        return self.receive(lambda m: m["type"] == "event" and m["event"] == name)

    def receive(self, wanted) -> dict[str, Any]:
        while True:
            message = self._read()
            if wanted(message):
                return message
            if message["type"] == "event":
                self.events.append(message)

    def _read(self) -> dict[str, Any]:
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        header, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        length = int(next(line.split(b":")[1] for line in header.split(b"\r\n") if line.startswith(b"Content-Length")))
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return json.loads(body)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the debuggee closed the connection")
        self.buffer += chunk
