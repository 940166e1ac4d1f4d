"""`python -m dockerproxy`: serve the filtered Docker API.

DOCKER_PROXY_LISTEN   address:port to serve on              0.0.0.0:2375
DOCKER_PROXY_SOCKET   the engine's socket                   /var/run/docker.sock
DOCKER_PROXY_ALLOW_ROOT  let containers run as uid 0 (staff's choice, off by default)   false
"""

from __future__ import annotations

import logging
import os
import sys

from dockerproxy.server import Engine, ProxyServer


def main() -> int:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL") or "INFO", format="%(levelname)s %(name)s: %(message)s")
    host, _, port = os.environ.get("DOCKER_PROXY_LISTEN", "0.0.0.0:2375").rpartition(":")
    engine = Engine(os.environ.get("DOCKER_PROXY_SOCKET", "/var/run/docker.sock"))
    allow_root = os.environ.get("DOCKER_PROXY_ALLOW_ROOT", "").lower() in ("1", "true", "yes", "on")
    server = ProxyServer((host, int(port)), engine, allow_root)
    logging.getLogger("dockerproxy").info("serving the filtered Docker API on %s:%s", host, port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
