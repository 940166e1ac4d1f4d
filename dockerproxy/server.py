"""The proxy's HTTP side: read a request, let `rules` decide, relay it to the engine's socket as it is."""

from __future__ import annotations

import json
import logging
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, urlsplit

from dockerproxy import rules

log = logging.getLogger("dockerproxy")
BODY_MAX = 1 << 20  # a create request is a few kB; nothing the workers send is larger
RELAY_CHUNK = 1 << 16


class Engine:
    """The Docker engine's Unix socket: one connection per request, closed by the engine after it."""

    def __init__(self, socket_path: str):
        self.socket_path = socket_path

    def connect(self, timeout: float | None = None) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(self.socket_path)
        return sock

    def request(self, method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
        """The raw request bytes; `Connection: close` so that the engine's end of the stream ends the answer."""
        lines = [f"{method} {target} HTTP/1.1", "Host: docker", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    def inspect(self, container: str) -> dict | None:
        """GET /containers/{id}/json, or None when the engine has no such container."""
        with self.connect(timeout=30) as sock:
            sock.sendall(self.request("GET", f"/containers/{quote(container, safe='')}/json", {}, b""))
            raw = b"".join(iter(lambda: sock.recv(RELAY_CHUNK), b""))
        head, _, payload = raw.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status == 404:
            return None
        if b"transfer-encoding: chunked" in head.lower():
            payload = _unchunk(payload)
        return json.loads(payload)


def _unchunk(data: bytes) -> bytes:
    out, rest = b"", data
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, rest = out + rest[:size], rest[size + 2 :]
    return out


class Handler(BaseHTTPRequestHandler):
    server: ProxyServer
    protocol_version = "HTTP/1.1"
    # Headers passed on to the engine; the rest (Host, Connection, lengths) the proxy writes itself.
    PASSED = ("Content-Type", "User-Agent", "Accept", "X-Registry-Auth")

    def do_any(self) -> None:
        self.close_connection = True
        url = urlsplit(self.path)
        try:
            body = self._body()
            allowed = rules.decide(self.command, url.path, url.query, body, self.server.allow_root)
            if allowed.container is not None:
                self._check_ours(allowed.container)
        except rules.Refused as refused:
            return self._refuse(refused.status, str(refused))
        target = url.path + (f"?{allowed.query}" if allowed.query else "")
        headers = {name: self.headers[name] for name in self.PASSED if self.headers.get(name)}
        self._relay(self.server.engine.request(self.command, target, headers, allowed.body))

    do_GET = do_POST = do_DELETE = do_HEAD = do_PUT = do_any

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            raise rules.Refused("a chunked request body is not accepted: send Content-Length", 411)
        length = int(self.headers.get("Content-Length") or 0)
        if length > BODY_MAX:
            raise rules.Refused(f"a request body over {BODY_MAX} bytes is not accepted", 413)
        return self.rfile.read(length) if length else b""

    def _check_ours(self, container: str) -> None:
        found = self.server.engine.inspect(container)
        if found is None:
            raise rules.Refused(f"No such container: {container}", 404)
        if not rules.owned(found):
            raise rules.Refused(f"container {container} was not created through the docker-proxy")

    def _relay(self, request: bytes) -> None:
        # The answer is copied byte for byte: streams (logs --follow, wait) last as long as the engine sends.
        with self.server.engine.connect() as upstream:
            upstream.sendall(request)
            while chunk := upstream.recv(RELAY_CHUNK):
                self.wfile.write(chunk)
                self.wfile.flush()

    def _refuse(self, status: int, message: str) -> None:
        log.warning("refused %s %s from %s: %s", self.command, self.path, self.client_address[0], message)
        payload = json.dumps({"message": f"docker-proxy: {message}"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        log.info("%s %s", self.client_address[0], format % args)


class ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], engine: Engine, allow_root: bool = False):
        super().__init__(address, Handler)
        self.engine = engine
        self.allow_root = allow_root
