"""A local HTTP server (in a thread) serving in-memory files, with HTTP Range support and switchable
misbehaviour: drop the connection midway, ignore Range, or fail. Binds 127.0.0.1 on a free port."""
from __future__ import annotations

import http.server
import re
import socket
import threading
from contextlib import contextmanager


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "TestServer/1"

    def log_message(self, *args):                  # keep pytest output clean
        pass

    def do_GET(self):
        srv = self.server
        srv.requests.append((self.path, self.headers.get("Range")))
        name = self.path.lstrip("/")
        if name not in srv.files:
            self.send_error(404, "not found")
            return
        body = srv.files[name]
        start = 0
        rng = self.headers.get("Range")
        if rng and name not in srv.ignore_range:
            m = re.fullmatch(r"bytes=(\d+)-", rng)
            start = int(m.group(1)) if m else 0
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        rest = body[start:]
        self.send_header("Content-Length", str(len(rest)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        drops = srv.drop_after.get(name, [])
        if drops:                                  # send part of the body, then cut the connection
            cut = drops.pop(0)
            self.wfile.write(rest[:cut])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(rest)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


@contextmanager
def serve(files: dict[str, bytes]):
    """Yield a server object with ``.url(name)``, ``.files``, ``.requests``, ``.drop_after`` ({name: [byte
    counts, one per request to cut]}) and ``.ignore_range`` (names served whole despite Range)."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.files = dict(files)
    server.requests = []
    server.drop_after = {}
    server.ignore_range = set()
    server.url = lambda name: f"http://127.0.0.1:{server.server_address[1]}/{name}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port_url(name: str = "file.bin") -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused: the offline case)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{name}"
