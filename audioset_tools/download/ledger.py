"""The download ledger: a crash-safe record of every attempt, in ``<output_dir>/ledger.sqlite3``.

This module owns the ledger's schema. sqlite3 in WAL mode with ``synchronous=FULL``
makes each committed row survive kill -9 and power loss; the runner records from its
main thread only, so one connection suffices.

Tables:

``attempts``
    Append-only log, one row per attempt or event: ``ytid, start_ms, end_ms, class_index,
    mid, folder, rank, outcome, message, attempts, started_at, finished_at, file, sha256,
    duration, sample_rate, channels, bytes_read, history, source, run_id``. ``source`` is
    the configured source's name (``youtube``, ``archive1``, ...) that was asked. ``attempts`` counts the tries
    inside one fetch (transient retries, a re-resolve after a 403) and ``history`` lists
    each as ``outcome: message``, one per line. ``outcome`` is a fetch outcome
    (``ok``, ``unavailable``, ...) or a ledger event: ``discarded`` (a finished clip
    deleted because the class needs fewer clips), ``vanished`` (a recorded clip whose
    file was gone on resume), ``quarantined`` (a recorded clip that ``clean`` moved to
    ``_quarantine/``; never fetched again for its class).
``clips``
    The finished clips on disk, keyed by ``file``, with every manifest column (``source``
    among them: which source made the file) plus ``rank``. The manifests are written from
    this table.
``failures``
    The latest permanent failure of each segment per source (``source, ytid, start_ms,
    end_ms, outcome, message, last_checked``); cleared when the segment later succeeds
    from that source. A video gone from YouTube is therefore still asked of an archive,
    and a clip is unavailable only when every configured source failed it.
``imported_unavailable``
    Videos other users found dead on YouTube (``ytid, reason, last_checked``), from
    unavailable.csv; they apply to YouTube sources only.
``runs``
    One row per download or rebuild run: ``command, started_at, finished_at``, the versions
    of ``audioset_tools``, ``yt_dlp`` and ``yt_dlp_ejs`` it ran with, its ``exit_code`` (NULL
    if it ended by an error) and its per-outcome counts (JSON). ``attempts.run_id`` points
    here, so each clip's tooling is known. ``sources`` (JSON) describes the sources the
    run was configured with (an archive's path, format and files with size and mtime).

Schema version 2 added the ``source`` columns and keyed ``failures`` by source. A writer
opening a version 1 ledger migrates it in one transaction (every earlier row came from
YouTube, so it gets ``source = 'youtube'``); readers accept both versions.

Times are UTC, ISO 8601 with seconds (``2026-11-25T14:05:00Z``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from ..dataset.manifest import MANIFEST_COLUMNS
from ..errors import UserError, disk_full_error, is_disk_full

log = logging.getLogger(__name__)

LEDGER_NAME = "ledger.sqlite3"
SCHEMA_VERSION = "2"
# Versions a reader understands; a writer migrates the older ones to SCHEMA_VERSION.
_READABLE_VERSIONS = ("1", SCHEMA_VERSION)
# The name of the YouTube source unless the config names it otherwise; a version 1 ledger's rows are its.
DEFAULT_SOURCE = "youtube"

DISCARDED = "discarded"
VANISHED = "vanished"
QUARANTINED = "quarantined"
# Rows of ``attempts`` that record what the runner did with a finished clip, not a fetch.
LEDGER_EVENTS = frozenset({DISCARDED, VANISHED, QUARANTINED})
LATEST_OUTCOME_COLUMNS = ("class_index", "mid", "ytid", "start_ms", "end_ms", "outcome", "message")
# Outcomes that say the video itself is unusable, whichever segment was asked for.
VIDEO_LEVEL_FAILURES = frozenset({"unavailable", "forbidden", "sign_in_required", "decode_error"})
PERMANENT_OUTCOMES = VIDEO_LEVEL_FAILURES | {"too_short"}

_FAILURES_TABLE = """CREATE TABLE IF NOT EXISTS failures (
    source TEXT NOT NULL,
    ytid TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    message TEXT NOT NULL,
    last_checked TEXT NOT NULL,
    PRIMARY KEY (source, ytid, start_ms, end_ms)
)"""
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ytid TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    class_index INTEGER,
    mid TEXT,
    folder TEXT,
    rank INTEGER,
    outcome TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    file TEXT,
    sha256 TEXT,
    duration REAL,
    sample_rate INTEGER,
    channels INTEGER,
    bytes_read INTEGER,
    history TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT 'youtube',
    run_id INTEGER
);
CREATE INDEX IF NOT EXISTS attempts_by_ytid ON attempts (ytid);
CREATE TABLE IF NOT EXISTS clips (
    file TEXT PRIMARY KEY,
    class_index INTEGER NOT NULL,
    mid TEXT NOT NULL,
    class_name TEXT NOT NULL,
    split TEXT NOT NULL,
    ytid TEXT NOT NULL,
    start_seconds REAL NOT NULL,
    end_seconds REAL NOT NULL,
    rank INTEGER NOT NULL,
    sample_rate INTEGER NOT NULL,
    channels INTEGER NOT NULL,
    duration REAL NOT NULL,
    sha256 TEXT NOT NULL,
    labels TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    samples_sha256 TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT 'youtube'
);
{_FAILURES_TABLE};
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    command TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    audioset_tools TEXT NOT NULL,
    yt_dlp TEXT NOT NULL,
    yt_dlp_ejs TEXT NOT NULL,
    exit_code INTEGER,
    outcomes TEXT NOT NULL DEFAULT '{{}}',
    sources TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS imported_unavailable (
    ytid TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    last_checked TEXT NOT NULL
);
"""


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """Open the ledger for reading without creating or changing any file beside it.

    A read-only open of a WAL database normally creates ``-shm`` and ``-wal`` side files,
    which fails on a read-only copy (a DVD, a read-only mount, a folder of someone
    else's) and writes into a folder a reading command should leave alone. Without a
    ``-wal`` (every writer closed cleanly, so every committed row is in the main file)
    ``immutable=1`` reads the main file alone. With one (a download is running, or was
    killed) its rows must be read too, so the normal read-only mode is used; only when
    that cannot work because the folder is read-only is the main file read alone, with
    a warning that the newest records may be missing.
    """
    base = f"{path.resolve().as_uri()}?mode=ro"
    if not Path(f"{path}-wal").exists():
        return sqlite3.connect(f"{base}&immutable=1", uri=True)
    db = sqlite3.connect(base, uri=True)
    try:
        db.execute("SELECT COUNT(*) FROM meta").fetchone()  # the side files are opened here
        return db
    except sqlite3.OperationalError:
        db.close()
        if os.access(path.parent, os.W_OK):
            raise
    log.warning(
        "%s: a read-only copy whose write-ahead log cannot be opened; reading the main file alone "
        "(records of a run that was killed may be missing)", path,
    )
    return sqlite3.connect(f"{base}&immutable=1", uri=True)


# Below this much free space, a ledger that fails to open is taken to be on a full disk.
_NEARLY_FULL_BYTES = 1 << 20


def _nearly_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < _NEARLY_FULL_BYTES
    except OSError:
        return False


def ledger_damaged_message(path: Path, exc: BaseException) -> str:
    return (
        f"{path}: not a readable download ledger ({exc}).\n"
        f"  Move it aside to start a fresh ledger; the clips on disk are kept and re-adopted."
    )


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ClipRecord:
    """A finished clip as stored in ``clips`` (the manifest columns plus ``rank``)."""

    file: str
    class_index: int
    mid: str
    class_name: str
    split: str
    ytid: str
    start_seconds: float
    end_seconds: float
    rank: int
    sample_rate: int
    channels: int
    duration: float
    sha256: str
    labels: str
    # SHA-256 of the decoded samples (audio_info.samples_sha256); empty for clips recorded
    # by a version that did not compute it.
    samples_sha256: str = ""
    # The configured source that made the file.
    source: str = DEFAULT_SOURCE


@dataclass(frozen=True)
class Attempt:
    """One row of ``attempts``; ``file``..``bytes_read`` are set for ok clips only."""

    ytid: str
    start_ms: int
    end_ms: int
    class_index: int | None
    mid: str | None
    folder: str | None
    rank: int | None
    outcome: str
    message: str
    attempts: int
    started_at: str
    finished_at: str
    file: str | None = None
    sha256: str | None = None
    duration: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    bytes_read: int | None = None
    history: str = ""
    source: str = DEFAULT_SOURCE


_ATTEMPT_COLUMNS = tuple(f.name for f in dataclasses.fields(Attempt))


@dataclass(frozen=True)
class KnownFailure:
    outcome: str
    message: str
    last_checked: str


class Ledger:
    """One open ledger. Use from a single thread; every method commits before returning."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self._clip_select: str | None = None
        self._run_id: int | None = None
        try:
            if read_only:
                self._db = _connect_read_only(self.path)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path)
                self._db.execute("PRAGMA journal_mode=WAL")
                # FULL: a row reported as recorded survives a power cut, not just kill -9.
                self._db.execute("PRAGMA synchronous=FULL")
                self._open_for_writing()
            version = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            if is_disk_full(exc) or _nearly_full(self.path.parent):
                # Opening writes (WAL side files, schema check): on a full disk that fails for
                # an intact ledger, which must not be called unreadable.
                raise disk_full_error(self.path.parent) from None
            raise UserError(ledger_damaged_message(self.path, exc)) from None
        if version is None or version[0] not in _READABLE_VERSIONS:
            raise UserError(
                f"{self.path}: ledger schema version {version[0] if version else 'unknown'} is not "
                f"{SCHEMA_VERSION}; it was written by another version of audioset-tools."
            )
        self.version = version[0]

    def _open_for_writing(self) -> None:
        """Create the tables of a new ledger, or migrate an older one, in one transaction."""
        # Statement by statement: executescript would commit half-way.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if self._table_exists("meta") and self._table_exists("attempts"):
                self._migrate()
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
            )
            self._db.commit()
        except BaseException:
            self._db.rollback()
            raise

    def _migrate(self) -> None:
        """Bring a version 1 ledger (any of its additive variants) to :data:`SCHEMA_VERSION`."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or row[0] not in _READABLE_VERSIONS or row[0] == SCHEMA_VERSION:
            return  # current, or not ours to touch: the version check after opening says so
        log.info("%s: migrating the ledger from schema version %s to %s", self.path, row[0], SCHEMA_VERSION)
        added = {
            "clips": (("samples_sha256", "TEXT NOT NULL DEFAULT ''"), ("source", "TEXT NOT NULL DEFAULT 'youtube'")),
            "attempts": (("run_id", "INTEGER"), ("source", "TEXT NOT NULL DEFAULT 'youtube'")),
            "runs": (("sources", "TEXT NOT NULL DEFAULT '[]'"),),
        }
        for table, columns in added.items():
            if not self._table_exists(table):
                continue  # created whole by the schema script
            present = self._columns(table)
            for name, declaration in columns:
                if name not in present:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")
        if self._table_exists("failures") and "source" not in self._columns("failures"):
            # The primary key changes, which SQLite can only do by copying the table.
            self._db.execute("ALTER TABLE failures RENAME TO failures_v1")
            self._db.execute(_FAILURES_TABLE)
            self._db.execute(
                "INSERT INTO failures (source, ytid, start_ms, end_ms, outcome, message, last_checked)"
                " SELECT 'youtube', ytid, start_ms, end_ms, outcome, message, last_checked FROM failures_v1"
            )
            self._db.execute("DROP TABLE failures_v1")
        self._db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION,))

    def _table_exists(self, name: str) -> bool:
        return self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone() is not None

    def _columns(self, table: str) -> set[str]:
        return {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}

    def _clip_columns(self) -> str:
        """The SELECT list of a :class:`ClipRecord`; a read-only older ledger lacks the newer columns."""
        if self._clip_select is None:
            present = self._columns("clips")
            defaults = {"samples_sha256": "''", "source": f"'{DEFAULT_SOURCE}'"}
            self._clip_select = ", ".join(
                name if name in present else f"{defaults[name]} AS {name}" for name in ClipRecord.__dataclass_fields__
            )
        return self._clip_select

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------

    def _insert_attempt(self, attempt: Attempt) -> None:
        """One row of ``attempts``; the caller holds the transaction."""
        self._db.execute(
            f"INSERT INTO attempts ({', '.join(_ATTEMPT_COLUMNS)}, run_id)"
            f" VALUES ({', '.join('?' for _ in _ATTEMPT_COLUMNS)}, ?)",
            (*dataclasses.astuple(attempt), self._run_id),
        )

    def begin_run(self, command: str, versions: dict[str, str], sources: list[dict] | None = None) -> int:
        """Record a run, the tooling it uses and its sources' identities; later attempts carry its id."""
        from .. import __version__

        with self._db:
            cursor = self._db.execute(
                "INSERT INTO runs (command, started_at, audioset_tools, yt_dlp, yt_dlp_ejs, sources)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (command, utc_now(), __version__, versions.get("yt_dlp", ""), versions.get("yt_dlp_ejs", ""),
                 json.dumps(sources or [], sort_keys=True)),
            )
        self._run_id = int(cursor.lastrowid)
        return self._run_id

    def finish_run(self, exit_code: int | None, outcomes: dict[str, int]) -> None:
        """Close the current run; ``exit_code`` None means it ended by an error."""
        if self._run_id is None:
            return
        with self._db:
            self._db.execute(
                "UPDATE runs SET finished_at = ?, exit_code = ?, outcomes = ? WHERE id = ?",
                (utc_now(), exit_code, json.dumps(dict(sorted(outcomes.items()))), self._run_id),
            )

    def runs(self) -> list[dict]:
        """Every recorded run, oldest first, with how many of today's clips it fetched ([] for older ledgers)."""
        if self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'").fetchone() is None:
            return []
        # Each clip's newest ok attempt: one grouped scan of attempts, then primary-key lookups.
        fetched: dict[int, int] = dict(self._db.execute(
            "SELECT a.run_id, COUNT(*) FROM"
            " (SELECT file, MAX(id) AS id FROM attempts WHERE outcome = 'ok' AND file IS NOT NULL GROUP BY file)"
            " AS latest JOIN attempts a ON a.id = latest.id JOIN clips c ON c.file = latest.file"
            " WHERE a.run_id IS NOT NULL GROUP BY a.run_id"
        ).fetchall())
        columns = ("id", "command", "started_at", "finished_at", "audioset_tools", "yt_dlp", "yt_dlp_ejs",
                   "exit_code", "outcomes", "sources")
        present = self._columns("runs")
        select = ", ".join(c if c in present else f"'[]' AS {c}" for c in columns)
        rows = []
        for values in self._db.execute(f"SELECT {select} FROM runs ORDER BY id"):
            row = dict(zip(columns, values))
            row["outcomes"] = json.loads(row["outcomes"] or "{}")
            row["sources"] = json.loads(row["sources"] or "[]")
            row["clips_kept"] = fetched.get(row["id"], 0)
            rows.append(row)
        return rows

    def record_attempt(self, attempt: Attempt, clip: ClipRecord | None = None, *, from_youtube: bool = True) -> None:
        """Log ``attempt``; an ok attempt stores ``clip``, a permanent failure is remembered for its source.

        ``from_youtube``: the attempt's source is YouTube, so an ok also shows the video is
        not gone from YouTube (an imported unavailable entry for it is dropped).
        """
        with self._db:
            self._insert_attempt(attempt)
            if attempt.outcome == "ok":
                if clip is None:
                    raise ValueError("an ok attempt needs its clip record")
                self._db.execute(
                    "INSERT OR REPLACE INTO clips (file, class_index, mid, class_name, split, ytid,"
                    " start_seconds, end_seconds, rank, sample_rate, channels, duration, sha256, labels,"
                    " recorded_at, samples_sha256, source)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        clip.file, clip.class_index, clip.mid, clip.class_name, clip.split, clip.ytid,
                        clip.start_seconds, clip.end_seconds, clip.rank, clip.sample_rate, clip.channels,
                        clip.duration, clip.sha256, clip.labels, attempt.finished_at, clip.samples_sha256,
                        clip.source,
                    ),
                )
                # The source answered for this video: whatever it said before about it being dead is stale.
                self._db.execute(
                    "DELETE FROM failures WHERE source = ? AND ytid = ? AND (outcome != 'too_short'"
                    " OR (start_ms = ? AND end_ms = ?))",
                    (attempt.source, attempt.ytid, attempt.start_ms, attempt.end_ms),
                )
                if from_youtube:
                    self._db.execute("DELETE FROM imported_unavailable WHERE ytid = ?", (attempt.ytid,))
            elif attempt.outcome in PERMANENT_OUTCOMES:
                self._db.execute(
                    "INSERT OR REPLACE INTO failures (source, ytid, start_ms, end_ms, outcome, message,"
                    " last_checked) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (attempt.source, attempt.ytid, attempt.start_ms, attempt.end_ms, attempt.outcome,
                     attempt.message, attempt.finished_at),
                )

    def forget_clip(self, attempt: Attempt) -> None:
        """Drop the clip at ``attempt.file`` from ``clips`` and log why (one of ``LEDGER_EVENTS``)."""
        if attempt.outcome not in LEDGER_EVENTS:
            raise ValueError(f"forget_clip records one of {sorted(LEDGER_EVENTS)}, not {attempt.outcome}")
        with self._db:
            self._db.execute("DELETE FROM clips WHERE file = ?", (attempt.file,))
            self._insert_attempt(attempt)

    def relabel_clip(self, file: str, class_index: int, class_name: str, split: str, rank: int) -> None:
        """Give a finished clip the class index, name, split and rank of the current plan."""
        with self._db:
            self._db.execute(
                "UPDATE clips SET class_index = ?, class_name = ?, split = ?, rank = ? WHERE file = ?",
                (class_index, class_name, split, rank, file),
            )

    def import_unavailable(self, rows: Iterable[tuple[str, str, str]]) -> int:
        """Merge (ytid, reason, last_checked) rows, keeping each video's latest check (on a tie the one imported last); return the count read.

        A check dated in the future (a wrong clock, or a list made to win every merge) counts
        as made now, so a later real check still replaces it.
        """
        count = 0
        now = utc_now()
        with self._db:
            for ytid, reason, last_checked in rows:
                count += 1
                last_checked = min(last_checked, now)
                self._db.execute(
                    "INSERT INTO imported_unavailable (ytid, reason, last_checked) VALUES (?, ?, ?)"
                    " ON CONFLICT (ytid) DO UPDATE SET reason = excluded.reason,"
                    " last_checked = excluded.last_checked"
                    " WHERE excluded.last_checked >= imported_unavailable.last_checked",
                    (ytid, reason, last_checked),
                )
        return count

    # -- reading -------------------------------------------------------------------------

    def clip(self, file: str) -> ClipRecord | None:
        row = self._db.execute(
            f"SELECT {self._clip_columns()} FROM clips WHERE file = ?", (file,)
        ).fetchone()
        return ClipRecord(*row) if row else None

    def clips(self) -> list[ClipRecord]:
        """Every finished clip, ordered by class then rank (the manifest order)."""
        rows = self._db.execute(
            f"SELECT {self._clip_columns()} FROM clips ORDER BY class_index, rank, file"
        ).fetchall()
        return [ClipRecord(*row) for row in rows]

    def known_failure(
        self, ytid: str, start_ms: int, end_ms: int, source: str | None = DEFAULT_SOURCE, *, imported: bool = True
    ) -> KnownFailure | None:
        """Why this segment is known not to work from ``source`` (None: from any source) — a permanent
        failure it gave, or, with ``imported``, a video listed dead on YouTube by an imported unavailable.csv."""
        where = "source = ? AND " if source is not None and self.version == SCHEMA_VERSION else ""
        key = (source,) if where else ()
        row = self._db.execute(
            f"SELECT outcome, message, last_checked FROM failures WHERE {where}ytid = ? AND"
            " (outcome != 'too_short' OR (start_ms = ? AND end_ms = ?))"
            " ORDER BY last_checked DESC LIMIT 1",
            (*key, ytid, start_ms, end_ms),
        ).fetchone()
        if row:
            return KnownFailure(*row)
        if not imported:
            return None
        row = self._db.execute(
            "SELECT reason, last_checked FROM imported_unavailable WHERE ytid = ?", (ytid,)
        ).fetchone()
        if row:
            return KnownFailure("unavailable", f"listed in an imported unavailable.csv: {row[0]}", row[1])
        return None

    def clip_files(self) -> set[str]:
        """The ``file`` of every finished clip (one query, for previews over many candidates)."""
        return {row[0] for row in self._db.execute("SELECT file FROM clips")}

    def known_failures(self) -> tuple[dict[str, list[tuple[str, int, int, str]]], set[str]]:
        """Every remembered failure at once: ``{ytid: [(source, start_ms, end_ms, outcome), ...]}``
        and the imported dead videos. :func:`is_known_failure` applies them like :meth:`known_failure`."""
        failures: dict[str, list[tuple[str, int, int, str]]] = {}
        source = "source" if self.version == SCHEMA_VERSION else f"'{DEFAULT_SOURCE}'"
        query = f"SELECT {source}, ytid, start_ms, end_ms, outcome FROM failures"
        for name, ytid, start, end, outcome in self._db.execute(query):
            failures.setdefault(ytid, []).append((name, start, end, outcome))
        imported = {row[0] for row in self._db.execute("SELECT ytid FROM imported_unavailable")}
        return failures, imported

    def unavailable_videos(self) -> Iterator[tuple[str, str, str]]:
        """(ytid, reason, last_checked) of every video known to be gone, learnt here or imported."""
        rows = self._db.execute(
            "SELECT ytid, message, MAX(last_checked) FROM failures WHERE outcome = 'unavailable' GROUP BY ytid"
        ).fetchall()
        merged = {ytid: (reason, checked) for ytid, reason, checked in rows}
        for ytid, reason, checked in self._db.execute(
            "SELECT ytid, reason, last_checked FROM imported_unavailable"
        ):
            if ytid not in merged or checked > merged[ytid][1]:
                merged[ytid] = (reason, checked)
        for ytid in sorted(merged):
            yield ytid, *merged[ytid]

    def latest_outcomes(self) -> pd.DataFrame:
        """The latest fetch outcome of every (class, segment) tried, in the order they were recorded.

        Columns: class_index, mid, ytid, start_ms, end_ms, outcome, message. Ledger
        events (``LEDGER_EVENTS``) say what became of a finished clip, not how a fetch
        went, so they are left out.
        """
        events = sorted(LEDGER_EVENTS)
        marks = ", ".join("?" for _ in events)
        rows = self._db.execute(
            f"SELECT {', '.join(LATEST_OUTCOME_COLUMNS)} FROM attempts WHERE id IN ("
            f" SELECT MAX(id) FROM attempts WHERE outcome NOT IN ({marks})"
            f" GROUP BY class_index, ytid, start_ms, end_ms) ORDER BY id",
            events,
        ).fetchall()
        return pd.DataFrame(rows, columns=list(LATEST_OUTCOME_COLUMNS))

    def outcome_counts(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT outcome, COUNT(*) FROM attempts GROUP BY outcome").fetchall())


def clips_frame(records: Iterable[ClipRecord]) -> pd.DataFrame:
    """Manifest rows (``MANIFEST_COLUMNS``) for ``records``, in the given order."""
    rows = [{column: getattr(record, column) for column in MANIFEST_COLUMNS} for record in records]
    frame = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    for column in ("class_index", "sample_rate", "channels"):
        frame[column] = frame[column].astype("int64")
    for column in ("start_seconds", "end_seconds", "duration"):
        frame[column] = frame[column].astype("float64")
    return frame


def is_known_failure(
    failures: dict[str, list[tuple[str, int, int, str]]],
    imported: set[str],
    ytid: str,
    start: int,
    end: int,
    source: str = DEFAULT_SOURCE,
    *,
    use_imported: bool = True,
) -> bool:
    """:meth:`Ledger.known_failure` on the tables of :meth:`Ledger.known_failures`: a video-level
    failure of any segment of the video from ``source``, a too_short of this exact segment, or
    (``use_imported``) an imported dead video."""
    if use_imported and ytid in imported:
        return True
    return any(
        name == source and (outcome != "too_short" or (s == start and e == end))
        for name, s, e, outcome in failures.get(ytid, ())
    )
