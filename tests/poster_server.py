"""A real HTTP server on 127.0.0.1 that serves posters and injects faults.

Routes (NAME is the served poster's name, e.g. tt0114709.jpg):
  /ok/NAME         the poster
  /404/NAME        404 Not Found
  /flaky500/NAME   500 on the first request, then the poster
  /slow/NAME       waits `slow_s` before answering (longer than the client's timeout)
  /truncated/NAME  announces the full length, sends half, closes
  /html/NAME       an HTML page served as image/jpeg
  /reset/NAME      resets the connection on the first request, then the poster
  /empty/NAME      200 with zero bytes
  /imdb/SHAPE/NAME an IMDb-like title page (SHAPE og, jsonld or div) whose poster is /ok/NAME
Every request is counted in `hits[path]`; `latency_s` is added to every request; `healed` turns the faults off.
"""
from __future__ import annotations

import socket
import struct
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

IMDB_PAGES = {
    "og": '<html><head><meta property="og:image" content="{url}"/><title>t</title></head><body></body></html>',
    "jsonld": ('<html><head><script type="application/ld+json">{{"@type": "Movie", "name": "t", '
               '"image": "{url}"}}</script></head><body></body></html>'),
    "div": '<html><body><div class="poster"><a href="/x"><img alt="t" src="{url}"/></a></div></body></html>',
}


class PosterServer:
    def __init__(self, posters: dict[str, Path], latency_s: float = 0.0, slow_s: float = 3.0):
        self.posters, self.latency_s, self.slow_s = posters, latency_s, slow_s
        self.hits: Counter = Counter()
        self.healed = False  # True: every route serves its poster (the site is back)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else keep-alive replies stall ~40 ms on delayed ACKs

            def log_message(self, *args):
                pass

            def do_GET(self):
                with server._lock:
                    server.hits[self.path] += 1
                    count = server.hits[self.path]
                if server.latency_s:
                    time.sleep(server.latency_s)
                parts = self.path.strip("/").split("/")
                route, name = ("ok" if server.healed and parts[0] != "imdb" else parts[0]), parts[-1]
                body = server.posters[name].read_bytes() if name in server.posters else None
                if route == "imdb" and len(parts) == 3:
                    page = IMDB_PAGES[parts[1]].format(url=f"{server.url}/ok/{name}")
                    return self._send(200, page.encode(), "text/html; charset=utf-8")
                if body is None or route == "404":
                    return self._send(404, b"not found", "text/plain")
                if route == "flaky500" and count == 1:
                    return self._send(500, b"server error", "text/plain")
                if route == "slow":
                    time.sleep(server.slow_s)
                if route == "truncated":
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if route == "html":
                    return self._send(200, b"<html><body>Access denied</body></html>", "image/jpeg")
                if route == "reset" and count == 1:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                if route == "empty":
                    return self._send(200, b"", "image/jpeg")
                return self._send(200, body, "image/jpeg")

            def _send(self, code, body, content_type):
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> PosterServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
