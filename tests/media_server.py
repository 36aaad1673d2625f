"""A local HTTP media server that stands in for YouTube in the tests and benchmarks.

It listens on 127.0.0.1 on a free port, serves registered files at
``/media/<ytid>.<ext>`` with their audio content type (so yt-dlp's generic extractor
resolves them as direct links), honours ``Range`` requests with ``206 Partial Content``
(so ffmpeg's input seek reads only what it needs), and misbehaves per ID on request.

Usage::

    with MediaServer() as server:
        server.add("abcdefghijk", source_path)                       # plain ok
        server.add("gone_______", source_path, behaviour="404")
        server.add("throttled__", source_path, behaviour="429_then_ok", retry_after=7)
        template = server.url_template("webm")  # "http://127.0.0.1:PORT/media/{ytid}.webm"
        ...
        server.stats("abcdefghijk").bytes_sent

The extension in the URL is cosmetic; the registered file decides the content type.

Behaviours (``behaviour=``):

``ok``
    Serve the file.
``401`` / ``403`` / ``404`` / ``410`` / ``500`` / ``429``
    Answer every request with that status (429 carries ``Retry-After``).
``401_then_ok`` / ``403_then_ok`` / ``404_then_ok`` / ``410_then_ok`` / ``429_then_ok`` / ``500_then_ok``
    After ``fail_after`` normal requests, the next ``fail_times`` requests get the
    status; later ones the file. ``fail_after=1`` lets yt-dlp's resolving request pass so
    the failure hits ffmpeg's read instead.
``stall``
    Send the response headers and the first ``stall_after`` body bytes of every GET, then
    go silent (until ``stall_seconds`` pass or the server stops). yt-dlp's resolving
    request needs only the headers, so it passes; ffmpeg's reads hang.
``drop_mid_body``
    The first ``fail_times`` responses to a Range request that cross absolute file offset
    ``drop_at`` (default: the middle of the file) are cut there and the socket is closed,
    while the headers promised more: a dropped connection. ffmpeg without ``-reconnect``
    returns a silently short clip. (ffmpeg always sends Range, even from byte 0;
    yt-dlp's resolving GET never does, so it is not cut.)
``corrupt``
    Serve pseudo-random bytes (seeded by the ID) of the file's size, with the audio
    content type, so extraction succeeds and decoding fails.
``truncated``
    Serve only the first ``fraction`` of the file, as if that were the whole file. The
    container still claims the full duration, so the clip comes out short.
``reset_then_ok``
    Like the other ``_then_ok`` behaviours, but the connection is closed without any
    response.
``redirect_file``
    Answer every request with ``302 Found`` to ``file:///etc/passwd`` (a hostile redirect).
``slow_headers``
    Send the status line and then padding header bytes one at a time, ``trickle_interval``
    seconds apart, until the server stops: the headers never end, yet every single read
    returns within any socket timeout longer than ``trickle_interval``.
``html_flood``
    Answer ``200`` with ``Content-Type: text/html`` and a body of ``flood_bytes`` bytes
    (default 1 GiB), generated on the fly and sent as fast as the client reads.

Proxy: the server also acts as a plain HTTP forward proxy for its own media. A request
whose target is an absolute URL (``GET http://any.host/media/<ytid>.webm``, as clients
send to a proxy) is served like a direct one and logged with ``via_proxy=True``. Point a
``url_template`` at an unresolvable host and the proxy setting at :attr:`base_url`, and
a fetch succeeds only if every request really went through the proxy.

Proxy authentication (constructor ``proxy_credentials="user:password"``): a proxied
request without the matching ``Proxy-Authorization: Basic`` header gets ``407`` with a
``Proxy-Authenticate`` challenge (the record's ``proxy_authorization`` keeps what came).

Network shaping (constructor): ``latency`` seconds before every response and
``bytes_per_second`` per connection, for benchmarks that need a realistic network.

Counters: :meth:`stats` gives per-ID ``requests``, ``bytes_sent``, ``faults`` (faults
injected by the ``_then_ok`` and ``drop_mid_body`` behaviours) and a log of every
request (method, Range header, status, bytes, user agent, Accept-Encoding);
:meth:`total_bytes` sums all IDs; :meth:`reset_stats` clears them.
yt-dlp's resolving GET of a direct link reads only the headers, but the server may have
pushed body bytes into the socket before the client closed it; those bytes are counted
too (a real server would have sent them). Each logged request says who asked: yt-dlp's
resolving GET has no Range header, ffmpeg's reads always have one.
"""

from __future__ import annotations

import base64
import dataclasses
import http.server
import random
import re
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

CONTENT_TYPES = {
    ".webm": "audio/webm",
    ".m4a": "audio/mp4",
    ".mp3": "audio/mpeg",
    ".flac": "audio/flac",
    ".wav": "audio/wav",
    ".ogg": "audio/ogg",
}

BEHAVIOURS = frozenset(
    {
        "ok", "401", "403", "404", "410", "429", "500",
        "401_then_ok", "403_then_ok", "404_then_ok", "410_then_ok", "429_then_ok", "500_then_ok",
        "stall", "drop_mid_body", "corrupt", "truncated", "reset_then_ok",
        "redirect_file", "slow_headers", "html_flood",
    }
)

_REASONS = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 410: "Gone",
            429: "Too Many Requests", 500: "Internal Server Error"}
_PATH_RE = re.compile(r"\A/media/(?P<ytid>[^/.]+)(?:\.[A-Za-z0-9]+)?\Z")
_RANGE_RE = re.compile(r"\Abytes=(?P<first>\d*)-(?P<last>\d*)\Z")
_CHUNK = 16 * 1024
_SEND_BUFFER = 64 * 1024


@dataclasses.dataclass
class RequestRecord:
    method: str
    range: str | None
    status: int
    bytes_sent: int
    user_agent: str
    accept_encoding: str
    cookie: str
    via_proxy: bool
    proxy_authorization: str = ""


@dataclasses.dataclass
class IdStats:
    requests: int = 0
    bytes_sent: int = 0
    # Faults injected so far (error statuses of the _then_ok behaviours, drops, resets).
    faults: int = 0
    log: list[RequestRecord] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class _Entry:
    source: Path
    behaviour: str
    content_type: str
    fail_times: int
    fail_after: int
    retry_after: float | None
    stall_after: int
    stall_seconds: float
    drop_at: int | None
    fraction: float
    trickle_interval: float = 1.0
    flood_bytes: int = 1 << 30
    failures_left: int = 0
    passes_left: int = 0


class MediaServer:
    """Threaded local media server; see the module docstring for the behaviours."""

    def __init__(
        self, latency: float = 0.0, bytes_per_second: float | None = None, proxy_credentials: str | None = None
    ) -> None:
        self.latency = latency
        # "user:password" a proxied request must present (else 407, as an authenticating proxy answers).
        self.proxy_credentials = proxy_credentials
        self.bytes_per_second = bytes_per_second
        self._entries: dict[str, _Entry] = {}
        self._stats: dict[str, IdStats] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> MediaServer:
        handler = type("Handler", (_Handler,), {"media_server": self})
        self._httpd = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="media-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> MediaServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the media server is not running")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url_template(self, ext: str = "webm") -> str:
        """A ``download.url_template`` pointing at this server."""
        return f"{self.base_url}/media/{{ytid}}.{ext}"

    def url(self, ytid: str, ext: str = "webm") -> str:
        return f"{self.base_url}/media/{ytid}.{ext}"

    # -- registration -------------------------------------------------------------------
    def add(
        self,
        ytid: str,
        source: Path,
        behaviour: str = "ok",
        *,
        content_type: str | None = None,
        fail_times: int = 1,
        fail_after: int = 0,
        retry_after: float | None = 7,
        stall_after: int = 0,
        stall_seconds: float = 60.0,
        drop_at: int | None = None,
        fraction: float = 0.5,
        trickle_interval: float = 1.0,
        flood_bytes: int = 1 << 30,
    ) -> None:
        """Serve ``source`` as ``ytid`` with the given behaviour (re-adding resets it)."""
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}; choose from {sorted(BEHAVIOURS)}")
        source = Path(source)
        if content_type is None:
            content_type = CONTENT_TYPES.get(source.suffix, "application/octet-stream")
        entry = _Entry(
            source=source, behaviour=behaviour, content_type=content_type, fail_times=fail_times, fail_after=fail_after,
            retry_after=retry_after, stall_after=stall_after,
            stall_seconds=stall_seconds, drop_at=drop_at, fraction=fraction, failures_left=fail_times, passes_left=fail_after,
            trickle_interval=trickle_interval, flood_bytes=flood_bytes,
        )
        with self._lock:
            self._entries[ytid] = entry
            self._stats[ytid] = IdStats()

    def set_behaviour(self, ytid: str, behaviour: str, fail_times: int = 1, fail_after: int = 0) -> None:
        """Change how an already registered ID behaves from now on."""
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}; choose from {sorted(BEHAVIOURS)}")
        with self._lock:
            entry = self._entries[ytid]
            entry.behaviour = behaviour
            entry.fail_times = entry.failures_left = fail_times
            entry.fail_after = entry.passes_left = fail_after

    # -- counters -----------------------------------------------------------------------
    def stats(self, ytid: str) -> IdStats:
        with self._lock:
            current = self._stats.get(ytid, IdStats())
            return IdStats(current.requests, current.bytes_sent, current.faults, list(current.log))

    def total_bytes(self) -> int:
        with self._lock:
            return sum(s.bytes_sent for s in self._stats.values())

    def total_requests(self) -> int:
        with self._lock:
            return sum(s.requests for s in self._stats.values())

    def reset_stats(self) -> None:
        with self._lock:
            for ytid in self._stats:
                self._stats[ytid] = IdStats()

    # -- used by the handler ------------------------------------------------------------
    def _lookup(self, ytid: str) -> _Entry | None:
        with self._lock:
            return self._entries.get(ytid)

    def _take_failure(self, ytid: str, entry: _Entry) -> bool:
        with self._lock:
            if entry.passes_left > 0:
                entry.passes_left -= 1
                return False
            if entry.failures_left > 0:
                entry.failures_left -= 1
                self._stats.setdefault(ytid, IdStats()).faults += 1
                return True
            return False

    def _record(self, ytid: str, record: RequestRecord) -> None:
        # Recorded on arrival, so a client that has its answer always finds it counted.
        with self._lock:
            stats = self._stats.setdefault(ytid, IdStats())
            stats.requests += 1
            stats.log.append(record)

    def _add_bytes(self, ytid: str, record: RequestRecord, count: int) -> None:
        with self._lock:
            record.bytes_sent += count
            self._stats.setdefault(ytid, IdStats()).bytes_sent += count


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:
        # Clients hanging up mid-body (ffmpeg after a seek, a timed-out stall) are normal here.
        pass


class _Handler(http.server.BaseHTTPRequestHandler):
    media_server: MediaServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def setup(self) -> None:
        # A small send buffer keeps bytes_sent close to what the client really consumed
        # (a large one lets the server push data that a seeking client never reads).
        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER)
        super().setup()

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    # ------------------------------------------------------------------------------------
    def _serve(self, head: bool) -> None:
        server = self.media_server
        self.close_connection = True
        target = urllib.parse.urlsplit(self.path)
        via_proxy = bool(target.scheme)
        match = _PATH_RE.match(target.path)
        entry = server._lookup(match["ytid"]) if match else None
        if entry is None:
            self._send_status(404, None, head)
            return
        ytid = match["ytid"]
        record = RequestRecord(
            method=self.command, range=self.headers.get("Range"), status=0, bytes_sent=0,
            user_agent=self.headers.get("User-Agent", ""), accept_encoding=self.headers.get("Accept-Encoding", ""),
            cookie=self.headers.get("Cookie", ""), via_proxy=via_proxy,
            proxy_authorization=self.headers.get("Proxy-Authorization", ""),
        )
        server._record(ytid, record)
        if via_proxy and server.proxy_credentials is not None and not _proxy_auth_ok(record, server):
            _empty_response(self, record, 407, {"Proxy-Authenticate": 'Basic realm="media-server"'})
            return
        self._respond(server, entry, ytid, record, head)

    def _respond(self, server: MediaServer, entry: _Entry, ytid: str, record: RequestRecord, head: bool) -> None:
        if server.latency:
            time.sleep(server.latency)
        behaviour = entry.behaviour
        if behaviour in {"401", "403", "404", "410", "500", "429"}:
            record.status = int(behaviour)
            self._send_status(record.status, entry.retry_after, head)
            return
        if behaviour.endswith("_then_ok") and server._take_failure(ytid, entry):
            if behaviour == "reset_then_ok":
                record.status = -1
                self._reset()
                return
            record.status = int(behaviour.split("_", 1)[0])
            self._send_status(record.status, entry.retry_after, head)
            return
        if behaviour in _HOSTILE:
            _HOSTILE[behaviour](self, server, entry, ytid, record)
            return

        data = self._body_for(entry, ytid)
        size = len(data)
        first, last, status = 0, size - 1, 200
        range_header = self.headers.get("Range")
        if range_header:
            parsed = _parse_range(range_header, size)
            if parsed is None:
                _empty_response(self, record, 416, {"Content-Range": f"bytes */{size}"})
                return
            first, last = parsed
            status = 206
        record.status = status
        self.send_response(status)
        self.send_header("Content-Type", entry.content_type)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(last - first + 1))
        if status == 206:
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.send_header("Connection", "close")
        self.end_headers()
        if head:
            return

        stop = last + 1
        stall = False
        if behaviour == "stall":
            stop = min(stop, first + entry.stall_after)
            stall = True
        dropped = False
        if behaviour == "drop_mid_body":
            drop_at = entry.drop_at if entry.drop_at is not None else size // 2
            # Only Range reads (ffmpeg always sends Range; yt-dlp's resolving GET never does,
            # and the server may push it data it never reads, which would waste the fault).
            if range_header and first < drop_at < stop and server._take_failure(ytid, entry):
                stop, dropped = drop_at, True
        self._send_body(server, data, first, stop, lambda count: server._add_bytes(ytid, record, count))
        if stall:
            server._stopping.wait(entry.stall_seconds)
        if dropped:
            self._reset()

    def _body_for(self, entry: _Entry, ytid: str) -> bytes:
        data = entry.source.read_bytes()
        if entry.behaviour == "corrupt":
            return random.Random(ytid).randbytes(len(data))
        if entry.behaviour == "truncated":
            return data[: max(1, int(len(data) * entry.fraction))]
        return data

    def _send_body(self, server: MediaServer, data: bytes, first: int, stop: int,
                   count_bytes: Callable[[int], None]) -> None:
        sent = 0
        position = first
        started = time.monotonic()
        try:
            while position < stop and not server._stopping.is_set():
                chunk = data[position:min(stop, position + _CHUNK)]
                self.wfile.write(chunk)
                position += len(chunk)
                sent += len(chunk)
                count_bytes(len(chunk))
                if server.bytes_per_second:
                    # Pace against the connection's start, so the average rate holds exactly.
                    ahead = sent / server.bytes_per_second - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass

    def _send_status(self, status: int, retry_after: float | None, head: bool) -> None:
        body = f"{status} {_REASONS.get(status, '')}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        if status == 429 and retry_after is not None:
            self.send_header("Retry-After", f"{retry_after:g}")
        self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

    def _reset(self) -> None:
        # SO_LINGER 0 makes close() send RST: the peer sees a reset, not a clean end.
        try:
            self.wfile.flush()
        except OSError:
            pass
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()


def _proxy_auth_ok(record: RequestRecord, server: MediaServer) -> bool:
    expected = "Basic " + base64.b64encode(str(server.proxy_credentials).encode()).decode()
    return record.proxy_authorization == expected


def _empty_response(handler: _Handler, record: RequestRecord, status: int, headers: dict[str, str]) -> None:
    """A bodiless answer that closes the connection, recorded with its status."""
    record.status = status
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", "0")
    handler.send_header("Connection", "close")
    handler.end_headers()


def _redirect_to_file(handler: _Handler, server: MediaServer, entry: _Entry, ytid: str, record: RequestRecord) -> None:
    _empty_response(handler, record, 302, {"Location": "file:///etc/passwd"})


def _trickle_headers(handler: _Handler, server: MediaServer, entry: _Entry, ytid: str, record: RequestRecord) -> None:
    record.status = 200
    try:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Padding: ")
        handler.wfile.flush()
        while not server._stopping.wait(entry.trickle_interval):
            handler.wfile.write(b"a")
            handler.wfile.flush()
            server._add_bytes(ytid, record, 1)
    except OSError:
        pass


def _flood_html(handler: _Handler, server: MediaServer, entry: _Entry, ytid: str, record: RequestRecord) -> None:
    record.status = 200
    handler.send_response(200)
    handler.send_header("Content-Type", "text/html; charset=utf-8")
    handler.send_header("Content-Length", str(entry.flood_bytes))
    handler.send_header("Connection", "close")
    handler.end_headers()
    chunk = b"<p>" + b"a" * (_CHUNK - 3)
    sent = 0
    try:
        while sent < entry.flood_bytes and not server._stopping.is_set():
            part = chunk[: entry.flood_bytes - sent]
            handler.wfile.write(part)
            sent += len(part)
            server._add_bytes(ytid, record, len(part))
    except OSError:
        pass


# Behaviours that never serve the registered file.
_HOSTILE = {"redirect_file": _redirect_to_file, "slow_headers": _trickle_headers, "html_flood": _flood_html}


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """First and last byte of a single ``bytes=`` range, or None when unsatisfiable."""
    match = _RANGE_RE.match(header.strip())
    if match is None or (not match["first"] and not match["last"]):
        return None
    if not match["first"]:
        length = int(match["last"])
        if length == 0:
            return None
        return max(0, size - length), size - 1
    first = int(match["first"])
    last = int(match["last"]) if match["last"] else size - 1
    if first >= size or last < first:
        return None
    return first, min(last, size - 1)
