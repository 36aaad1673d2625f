"""The demo's media server: serves generated audio on 127.0.0.1 the way a video site's CDN would.

A registered ID is served at ``/media/<ytid>.<ext>`` with an audio content type, so yt-dlp's
generic extractor resolves it as a direct link, and ``Range`` requests get ``206 Partial
Content`` with ``Content-Range``, so ffmpeg's input seek reads only the segment (a server
that ignored Range would make every clip a full download).

Which file an ID gets, and how it behaves, is the ``lookup`` function's answer (see
:mod:`.catalog`); an ID it does not know gets 404. Behaviours: ``ok``; ``403`` (every request forbidden); ``corrupt`` (random bytes of the
file's size under an audio content type: extraction succeeds, decoding fails);
``500_once`` (the first request answers 500, later ones the file: a transient failure the
retry recovers from).

(tests/media_server.py is the test suite's richer twin of this server; a later package
restructure can make the tests use this one.)
"""

from __future__ import annotations

import http.server
import random
import re
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

BEHAVIOURS = ("ok", "403", "corrupt", "500_once")
CONTENT_TYPES = {".webm": "audio/webm", ".m4a": "audio/mp4", ".wav": "audio/wav", ".flac": "audio/flac"}
_PATH = re.compile(r"\A/media/(?P<ytid>[A-Za-z0-9_-]{11})(?:\.[A-Za-z0-9]+)?\Z")
_RANGE = re.compile(r"\Abytes=(?P<first>\d*)-(?P<last>\d*)\Z")
_CHUNK = 64 * 1024


# ytid -> (file to serve, behaviour), or None for a video that does not exist.
Lookup = Callable[[str], "tuple[Path, str] | None"]


class DemoMediaServer:
    """Threaded HTTP server on a free port of 127.0.0.1; use as a context manager."""

    def __init__(self, lookup: Lookup) -> None:
        self._lookup = lookup
        self._requests: Counter = Counter()
        self._lock = threading.Lock()
        self._httpd: http.server.ThreadingHTTPServer | None = None

    def start(self) -> DemoMediaServer:
        handler = type("Handler", (_Handler,), {"server_state": self})
        self._httpd = _Server(("127.0.0.1", 0), handler)
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         name="demo-media-server", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> DemoMediaServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the demo media server is not running")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def url_template(self, ext: str = "webm") -> str:
        return f"{self.base_url}/media/{{ytid}}.{ext}"

    def requests(self, ytid: str) -> int:
        with self._lock:
            return self._requests[ytid]

    def _arrival(self, ytid: str) -> tuple[Path, str, int] | None:
        """The file and behaviour of ``ytid``, and how many requests it had before this one."""
        found = self._lookup(ytid)
        if found is None:
            return None
        source, behaviour = found
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}; choose from {', '.join(BEHAVIOURS)}")
        with self._lock:
            earlier = self._requests[ytid]
            self._requests[ytid] += 1
        return Path(source), behaviour, earlier


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:
        # ffmpeg hangs up mid-body after a seek: normal here, not worth a traceback.
        pass


class _Handler(http.server.BaseHTTPRequestHandler):
    server_state: DemoMediaServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        self.close_connection = True
        match = _PATH.match(self.path.split("?", 1)[0])
        arrival = self.server_state._arrival(match["ytid"]) if match else None
        if arrival is None:
            self._status(404, "Not Found", head)
            return
        source, behaviour, earlier = arrival
        if behaviour == "403":
            self._status(403, "Forbidden", head)
            return
        if behaviour == "500_once" and earlier == 0:
            self._status(500, "Internal Server Error", head)
            return
        data = source.read_bytes()
        if behaviour == "corrupt":
            data = random.Random(match["ytid"]).randbytes(len(data))
        self._send_file(data, CONTENT_TYPES.get(source.suffix, "application/octet-stream"), head)

    def _send_file(self, data: bytes, content_type: str, head: bool) -> None:
        size = len(data)
        first, last, status = 0, size - 1, 200
        requested = self.headers.get("Range")
        if requested:
            parsed = parse_range(requested, size)
            if parsed is None:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            (first, last), status = parsed, 206
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(last - first + 1))
        if status == 206:
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.send_header("Connection", "close")
        self.end_headers()
        if head:
            return
        try:
            for offset in range(first, last + 1, _CHUNK):
                self.wfile.write(data[offset:min(last + 1, offset + _CHUNK)])
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _status(self, status: int, reason: str, head: bool) -> None:
        body = f"{status} {reason}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """First and last byte of a single ``bytes=`` range of a ``size``-byte body; None if unsatisfiable."""
    match = _RANGE.match(header.strip())
    if match is None or not (match["first"] or match["last"]):
        return None
    if not match["first"]:  # a suffix range: the last N bytes
        length = int(match["last"])
        return (max(0, size - length), size - 1) if length > 0 and size > 0 else None
    first = int(match["first"])
    last = min(int(match["last"]), size - 1) if match["last"] else size - 1
    return (first, last) if first < size and first <= last else None
