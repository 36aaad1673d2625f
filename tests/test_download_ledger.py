import sqlite3
from pathlib import Path

import pytest

from audioset_tools.dataset.manifest import MANIFEST_COLUMNS
from audioset_tools.download.ledger import (
    DISCARDED,
    LATEST_OUTCOME_COLUMNS,
    LEDGER_NAME,
    QUARANTINED,
    VANISHED,
    Attempt,
    ClipRecord,
    Ledger,
    clips_frame,
)
from audioset_tools.download.unavailable import (
    export_unavailable,
    import_unavailable,
    read_unavailable,
)
from audioset_tools.errors import UserError

T0, T1, T2 = "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"


def _attempt(ytid, outcome, start_ms=0, end_ms=10000, when=T1, **kw):
    return Attempt(ytid, start_ms, end_ms, 0, "/m/0", "Dog", 0, outcome, f"{outcome} msg", 1, when, when, **kw)


def _clip(ytid, rank=0, file=None):
    return ClipRecord(file or f"Dog/{ytid}_0.wav", 0, "/m/0", "Dog", "train", ytid, 0.0, 10.0, rank, 16000, 1,
                      10.0, "a" * 64, "/m/0")


def test_ledger_uses_wal_and_survives_reopen(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    with Ledger(path) as ledger:
        ledger.record_attempt(_attempt("aaaaaaaaaaa", "ok", file="Dog/aaaaaaaaaaa_0.wav"), _clip("aaaaaaaaaaa"))
        ledger.record_attempt(_attempt("bbbbbbbbbbb", "transient"))
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with Ledger(path, read_only=True) as ledger:
        assert [c.ytid for c in ledger.clips()] == ["aaaaaaaaaaa"]
        assert ledger.outcome_counts() == {"ok": 1, "transient": 1}
        assert ledger.known_failure("bbbbbbbbbbb", 0, 10000) is None


def test_permanent_failures_video_level_and_segment_level(tmp_path):
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        ledger.record_attempt(_attempt("aaaaaaaaaaa", "unavailable"))
        ledger.record_attempt(_attempt("bbbbbbbbbbb", "too_short", start_ms=50000, end_ms=60000))
        assert ledger.known_failure("aaaaaaaaaaa", 20000, 30000).outcome == "unavailable"
        assert ledger.known_failure("bbbbbbbbbbb", 50000, 60000).outcome == "too_short"
        assert ledger.known_failure("bbbbbbbbbbb", 0, 10000) is None
        # A later success clears what was learnt about the video.
        ledger.record_attempt(_attempt("aaaaaaaaaaa", "ok", file="Dog/aaaaaaaaaaa_0.wav"), _clip("aaaaaaaaaaa"))
        assert ledger.known_failure("aaaaaaaaaaa", 20000, 30000) is None


def test_forget_clip_and_manifest_frame(tmp_path):
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        for rank, ytid in enumerate(["ccccccccccc", "aaaaaaaaaaa"]):
            ledger.record_attempt(_attempt(ytid, "ok", file=f"Dog/{ytid}_0.wav"), _clip(ytid, rank=rank))
        frame = clips_frame(ledger.clips())
        assert tuple(frame.columns) == MANIFEST_COLUMNS
        assert list(frame["ytid"]) == ["ccccccccccc", "aaaaaaaaaaa"]  # rank order, not name order
        ledger.forget_clip(_attempt("ccccccccccc", DISCARDED, file="Dog/ccccccccccc_0.wav"))
        assert [c.ytid for c in ledger.clips()] == ["aaaaaaaaaaa"]
        assert ledger.outcome_counts()[DISCARDED] == 1
        with pytest.raises(ValueError):
            ledger.forget_clip(_attempt("aaaaaaaaaaa", "ok", file="Dog/aaaaaaaaaaa_0.wav"))


def test_corrupt_ledger_is_a_user_error(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(UserError, match="not a readable download ledger"):
        Ledger(path)


def test_unavailable_round_trip_keeps_latest_and_skips_imported(tmp_path):
    with Ledger(tmp_path / "a.sqlite3") as first:
        first.record_attempt(_attempt("aaaaaaaaaaa", "unavailable", when=T1))
        first.record_attempt(_attempt("bbbbbbbbbbb", "forbidden", when=T1))  # not shared: may be per address
        exported = tmp_path / "unavailable.csv"
        assert export_unavailable(first, exported) == 1
    assert exported.read_text().splitlines() == ["ytid,reason,last_checked", f"aaaaaaaaaaa,unavailable msg,{T1}"]
    with Ledger(tmp_path / "b.sqlite3") as second:
        older = tmp_path / "older.csv"
        older.write_text(f"ytid,reason,last_checked\naaaaaaaaaaa,old news,{T0}\nccccccccccc,gone,2026-01-05\n")
        assert import_unavailable(second, exported) == 1
        assert import_unavailable(second, older) == 2
        known = second.known_failure("aaaaaaaaaaa", 0, 10000)
        assert known.outcome == "unavailable" and known.last_checked == T1 and "unavailable msg" in known.message
        assert second.known_failure("ccccccccccc", 0, 10000).last_checked == "2026-01-05T00:00:00Z"
        assert [row[0] for row in second.unavailable_videos()] == ["aaaaaaaaaaa", "ccccccccccc"]


@pytest.mark.parametrize(
    "text, problem",
    [
        ("ytid,reason\n", "missing column"),
        ("ytid,reason,last_checked\n../../etc/pa,x,2026-01-01\n", ":2: ytid"),
        ("ytid,reason,last_checked\naaaaaaaaaaa,x,yesterday\n", ":2: last_checked"),
        ("ytid,reason,last_checked\naaaaaaaaaaa,x\n", ":2: expected 3 fields"),
    ],
)
def test_bad_unavailable_lists_name_file_and_line(tmp_path, text, problem):
    path = tmp_path / "u.csv"
    path.write_text(text)
    with pytest.raises(UserError, match=problem) as info:
        read_unavailable(path)
    assert "u.csv" in info.value.message


def test_latest_outcomes_one_row_per_class_and_segment_events_left_out(tmp_path):
    def attempt(ytid, outcome, class_index=0, start_ms=0, **kw):
        return Attempt(ytid, start_ms, start_ms + 10000, class_index, f"/m/{class_index}", f"C{class_index}", 0,
                       outcome, f"{outcome} msg", 1, T1, T1, **kw)

    with Ledger(tmp_path / "l.sqlite3") as ledger:
        assert list(ledger.latest_outcomes().columns) == list(LATEST_OUTCOME_COLUMNS)
        assert ledger.latest_outcomes().empty
        ledger.record_attempt(attempt("aaaaaaaaaaa", "transient"))
        ledger.record_attempt(attempt("aaaaaaaaaaa", "ok", file="C0/aaaaaaaaaaa_0.wav"), _clip("aaaaaaaaaaa"))
        ledger.forget_clip(attempt("aaaaaaaaaaa", QUARANTINED, file="C0/aaaaaaaaaaa_0.wav"))
        ledger.record_attempt(attempt("bbbbbbbbbbb", "unavailable"))
        ledger.record_attempt(attempt("bbbbbbbbbbb", "unavailable", class_index=1))  # same segment, other class
        ledger.record_attempt(attempt("bbbbbbbbbbb", "too_short", start_ms=50000))
        ledger.record_attempt(attempt("ccccccccccc", "ok", file="C0/ccccccccccc_0.wav"), _clip("ccccccccccc"))
        ledger.forget_clip(attempt("ccccccccccc", DISCARDED, file="C0/ccccccccccc_0.wav"))
        ledger.record_attempt(attempt("ddddddddddd", "ok", file="C0/ddddddddddd_0.wav"), _clip("ddddddddddd"))
        ledger.forget_clip(attempt("ddddddddddd", VANISHED, file="C0/ddddddddddd_0.wav"))
        ledger.record_attempt(attempt("ddddddddddd", "rate_limited"))
        latest = ledger.latest_outcomes()
    assert [tuple(row) for row in latest.itertuples(index=False)] == [
        (0, "/m/0", "aaaaaaaaaaa", 0, 10000, "ok", "ok msg"),
        (0, "/m/0", "bbbbbbbbbbb", 0, 10000, "unavailable", "unavailable msg"),
        (1, "/m/1", "bbbbbbbbbbb", 0, 10000, "unavailable", "unavailable msg"),
        (0, "/m/0", "bbbbbbbbbbb", 50000, 60000, "too_short", "too_short msg"),
        (0, "/m/0", "ccccccccccc", 0, 10000, "ok", "ok msg"),
        (0, "/m/0", "ddddddddddd", 0, 10000, "rate_limited", "rate_limited msg"),
    ]


V1_LEDGER = Path(__file__).parent / "fixtures" / "ledger_v1.sqlite3"


def test_a_version_1_ledger_is_read_as_is_and_migrated_by_a_writer(tmp_path):
    """tests/fixtures/ledger_v1.sqlite3 was written by the release before schema version 2."""
    import shutil
    import sqlite3

    from audioset_tools.download.ledger import SCHEMA_VERSION

    path = tmp_path / LEDGER_NAME
    shutil.copy(V1_LEDGER, path)
    before = path.read_bytes()
    with Ledger(path, read_only=True) as ledger:
        assert ledger.version == "1"
        assert [(c.file, c.source) for c in ledger.clips()] == [("Speech/abcdefghijk_1000.wav", "youtube")]
        assert ledger.known_failure("deadvideo00", 0, 2000).outcome == "unavailable"
        assert ledger.runs()[0]["sources"] == []
    assert path.read_bytes() == before, "a reader must not migrate (or touch) the ledger"

    with Ledger(path) as ledger:
        assert ledger.version == SCHEMA_VERSION == "2"
        # Every earlier answer came from YouTube: it stays YouTube's, and only YouTube's.
        assert ledger.known_failure("deadvideo00", 0, 2000, "youtube").outcome == "unavailable"
        assert ledger.known_failure("shortvideo0", 4000, 6000, "youtube").outcome == "too_short"
        assert ledger.known_failure("deadvideo00", 0, 2000, "archive1", imported=False) is None
        assert ledger.known_failure("importeddd0", 0, 2000, "archive1", imported=False) is None
        assert ledger.known_failure("importeddd0", 0, 2000, "youtube").outcome == "unavailable"
        assert ledger.known_failure("flakyvideo0", 1000, 3000) is None
        assert [c.source for c in ledger.clips()] == ["youtube"]
        [run] = ledger.runs()
        assert (run["yt_dlp"], run["exit_code"], run["sources"]) == ("2026.10.26", 0, [])
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT DISTINCT source FROM attempts").fetchall() == [("youtube",)]
        assert db.execute("SELECT COUNT(*) FROM attempts").fetchone() == (4,)
        assert db.execute("SELECT source, ytid FROM failures ORDER BY ytid").fetchall() == [
            ("youtube", "deadvideo00"), ("youtube", "shortvideo0")]
    # Opening again finds nothing left to migrate.
    with Ledger(path) as ledger:
        assert ledger.version == "2" and len(ledger.clips()) == 1


def _source_attempt(ytid, outcome, source, **fields):
    return Attempt(ytid=ytid, start_ms=0, end_ms=2000, class_index=0, mid="/m/a", folder="A", rank=0,
                   outcome=outcome, message=outcome, attempts=1, started_at="2026-12-02T00:00:00Z",
                   finished_at="2026-12-02T00:00:01Z", source=source, **fields)


def test_failures_are_kept_per_source(tmp_path):
    """Gone from YouTube is not gone from an archive; an archive's success does not revive a YouTube video."""
    with Ledger(tmp_path / LEDGER_NAME) as ledger:
        ledger.import_unavailable([("goneeverywh", "Video unavailable", "2026-11-01T00:00:00Z")])
        ledger.record_attempt(_source_attempt("deadonyoutu", "unavailable", "youtube"))
        ledger.record_attempt(_source_attempt("badinarchiv", "decode_error", "panns"))
        assert ledger.known_failure("deadonyoutu", 0, 2000, "youtube").outcome == "unavailable"
        assert ledger.known_failure("deadonyoutu", 0, 2000, "panns", imported=False) is None
        assert ledger.known_failure("badinarchiv", 0, 2000, "panns", imported=False).outcome == "decode_error"
        assert ledger.known_failure("badinarchiv", 0, 2000, "youtube") is None
        assert ledger.known_failure("badinarchiv", 0, 2000, None).outcome == "decode_error"
        record = ClipRecord(file="A/goneeverywh_0.wav", class_index=0, mid="/m/a", class_name="A", split="train",
                            ytid="goneeverywh", start_seconds=0.0, end_seconds=2.0, rank=0, sample_rate=16000,
                            channels=1, duration=2.0, sha256="c" * 64, labels="/m/a", source="panns")
        ledger.record_attempt(_source_attempt("goneeverywh", "ok", "panns", file=record.file), record, from_youtube=False)
        assert ledger.known_failure("goneeverywh", 0, 2000, "youtube").outcome == "unavailable"
        assert ledger.clip(record.file).source == "panns"
