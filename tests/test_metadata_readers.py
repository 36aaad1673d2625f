"""Reading the official metadata formats: malformed rows, gzip copies, corrupt files, fetching."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import logging
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from audioset_tools.errors import UserError
from audioset_tools.select.metadata import (
    ensure_files,
    official,
    read_ontology,
    read_quality,
    read_segments,
)

FIXTURES = Path(__file__).parent / "fixtures" / "metadata"
HEADER = (
    "# Segments csv created Sun Mar  5 10:54:31 2017\n"
    "# num_ytids=1, num_segs=1, num_unique_labels=1, num_positive_labels=1\n"
    "# YTID, start_seconds, end_seconds, positive_labels\n"
)


@pytest.fixture(scope="module")
def ontology():
    return read_ontology(FIXTURES / "ontology.json")


def segments_from(tmp_path: Path, body: str, ontology, name="eval_segments.csv"):
    path = tmp_path / name
    path.write_bytes((HEADER + body).encode())
    return read_segments({"eval": path}, ontology.ids)


def test_fixture_files_read_cleanly(ontology):
    segments = read_segments(
        {"balanced": FIXTURES / "balanced_train_segments.csv", "eval": FIXTURES / "eval_segments.csv"},
        ontology.ids,
    )
    assert len(segments) == 9 and segments.valid.all() and not segments.malformed
    assert [f.rows for f in segments.files] == [6, 3]
    assert segments.ytids(segments.valid.nonzero()[0][:2]).to_pylist() == ["aaaaaaaaaa1", "aaaaaaaaaa2"]
    assert segments.start[4] == 5.5 and segments.end[4] == 15.5
    assert [ontology.ids[c] for c in segments.labels_of(1)] == ["/m/a", "/m/root"]
    assert segments.label_set[0] == segments.label_set[6]  # the same list "/m/a" is stored once
    assert segments.labels_text([1]).to_pylist() == ["/m/a,/m/root"]


def test_malformed_rows_are_skipped_and_named_by_line(tmp_path, ontology):
    body = (
        'aaaaaaaaaa1, 30.000, 40.000, "/m/a"\n'  # line 4: good
        'short1, 30.000, 40.000, "/m/a"\n'  # 5: YTID too short
        'aaaaaaaaaa2, thirty, 40.000, "/m/a"\n'  # 6: non-numeric start
        'aaaaaaaaaa3, 40.000, 30.000, "/m/a"\n'  # 7: inverted times
        'aaaaaaaaaa4, 0.000, 10.000, "/m/a,/m/nope"\n'  # 8: label not in ontology
        "aaaaaaaaaa5, 0.000, 10.000\n"  # 9: 3 fields
        "\n"  # 10: blank, ignored
        'aaaaaaaaaa6, 0.000, 10.000, "/m/a", "/m/d"\n'  # 11: 5 fields
        'aaaaaaaaaa7, 0.000, 10.000, "/m/a\n'  # 12: unclosed quote (must not swallow line 13)
        'aaaaaaaaaa8, 0.000, 10.000, "/m/d"\n'  # 13: good
        'aaaa/aaaa.9, 0.000, 10.000, "/m/d"\n'  # 14: path character in YTID
        'aaaaaaaaa10, 0.000, 10.000, ""\n'  # 15: no label
    )
    segments = segments_from(tmp_path, body, ontology)
    lines = {row.line: row.reason for row in segments.malformed}
    assert sorted(lines) == [5, 6, 7, 8, 9, 11, 12, 14, 15]
    assert all(row.file == "eval_segments.csv" for row in segments.malformed)
    assert "YTID 'short1'" in lines[5]
    assert "start_seconds 'thirty'" in lines[6]
    assert "not after start_seconds" in lines[7]
    assert "'/m/nope' not in the ontology" in lines[8]
    assert "found 3" in lines[9] and "found 5" in lines[11]
    assert "double-quoted" in lines[12]
    assert segments.valid.sum() == 2 and segments.files[0].malformed == 9
    assert segments.ytids(segments.valid.nonzero()[0]).to_pylist() == ["aaaaaaaaaa1", "aaaaaaaaaa8"]
    # Malformed rows carry no labels, so they can never become candidates.
    assert (segments.label_set[~segments.valid] == -1).all()
    assert all(len(segments.labels_of(row)) == 0 for row in np.flatnonzero(~segments.valid))


def test_crlf_and_missing_final_newline_are_fine(tmp_path, ontology):
    body = 'aaaaaaaaaa1, 30.000, 40.000, "/m/a"\r\naaaaaaaaaa2, 1, 2.5, "/m/d,/m/a"'
    segments = segments_from(tmp_path, body, ontology)
    assert segments.valid.tolist() == [True, True] and not segments.malformed
    assert segments.end.tolist() == [40.0, 2.5]


def test_header_only_file_has_no_rows(tmp_path, ontology):
    segments = segments_from(tmp_path, "", ontology)
    assert len(segments) == 0 and segments.files[0].rows == 0 and not segments.malformed


def test_gzip_copy_reads_like_the_plain_file(tmp_path, ontology):
    plain = FIXTURES / "unbalanced_train_segments.csv"
    gz = tmp_path / "unbalanced_train_segments.csv.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    a = read_segments({"unbalanced": plain}, ontology.ids)
    b = read_segments({"unbalanced": gz}, ontology.ids)
    assert a.start.tolist() == b.start.tolist()
    assert [a.labels_of(i).tolist() for i in range(len(a))] == [b.labels_of(i).tolist() for i in range(len(b))]
    assert b.files[0].sha256 == hashlib.sha256(gz.read_bytes()).hexdigest()


def test_non_utf8_segment_file_names_the_line(tmp_path, ontology):
    path = tmp_path / "eval_segments.csv"
    path.write_bytes(HEADER.encode() + b'aaaaaaaaaa1, 30.000, 40.000, "/m/a"\n\xff\xfe, 1, 2, "/m/a"\n')
    with pytest.raises(UserError, match=r"eval_segments.csv, line 5: not UTF-8"):
        read_segments({"eval": path}, ontology.ids)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[{", "not valid JSON at line 1"),
        ('{"id": "x"}', "non-empty JSON list"),
        ('[{"id": "/m/a"}]', "no string 'name'"),
        ('[{"id": "/m/a", "name": "A", "child_ids": ["/m/zz"]}]', "unknown child ids"),
        ('[{"id": "/m/a", "name": "A"}, {"id": "/m/a", "name": "B"}]', "appears twice"),
    ],
)
def test_corrupt_ontology_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "ontology.json"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        read_ontology(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("label,rated,true\n/m/a,1,1\n", "line 1 must be the header"),
        ("label_id,num_rated,num_true\n/m/a,10\n", "line 2: expected 3 fields"),
        ("label_id,num_rated,num_true\n/m/a,10,x\n", "line 2: num_rated and num_true must be whole"),
        ("label_id,num_rated,num_true\n/m/a,10,9\n/m/b,3,4\n", "line 3: num_true \\(4\\) exceeds"),
        ("label_id,num_rated,num_true\n/m/a,10,9\n/m/a,3,3\n", "line 3: /m/a appears twice"),
    ],
)
def test_corrupt_quality_file_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "qa_true_counts.csv"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        read_quality(path)


def test_quality_values(tmp_path):
    table = read_quality(FIXTURES / "qa_true_counts.csv")
    assert table.counts["/m/a"].quality == 0.9
    assert table.counts["/m/f"].quality is None


# --- fetching missing files -------------------------------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture()
def file_server(tmp_path):
    """Serves tmp_path/'served' on 127.0.0.1 and points the official URLs at it."""
    served = tmp_path / "served"
    served.mkdir()
    handler = lambda *a, **k: _Handler(*a, directory=str(served), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    saved = dict(official.OFFICIAL_URLS)
    official.OFFICIAL_URLS.update({name: base + name for name in saved})
    yield served
    official.OFFICIAL_URLS.clear()
    official.OFFICIAL_URLS.update(saved)
    server.shutdown()
    server.server_close()


def test_missing_file_is_fetched_and_verified(tmp_path, file_server, monkeypatch):
    shutil.copy(FIXTURES / "eval_segments.csv", file_server / "eval_segments.csv")
    monkeypatch.setitem(
        official.KNOWN_SHA256, "eval_segments.csv",
        hashlib.sha256((FIXTURES / "eval_segments.csv").read_bytes()).hexdigest(),
    )
    target = tmp_path / "metadata"
    found = ensure_files(target, ["eval_segments.csv"])
    assert found["eval_segments.csv"] == target / "eval_segments.csv"
    assert found["eval_segments.csv"].read_bytes() == (FIXTURES / "eval_segments.csv").read_bytes()
    assert sorted(p.name for p in target.iterdir()) == ["eval_segments.csv"]


def test_fetched_file_with_wrong_checksum_is_not_kept(tmp_path, file_server):
    (file_server / "eval_segments.csv").write_text("tampered\n")
    target = tmp_path / "metadata"
    with pytest.raises(UserError, match="corrupt or not the published file") as info:
        ensure_files(target, ["eval_segments.csv"])
    assert "f7055f53935f70e74e39494a5c8c4c78f1700fce275028bd36e31186f33d45db" in info.value.message
    assert list(target.iterdir()) == []


def test_revised_ontology_is_accepted_with_a_warning(tmp_path, file_server, caplog):
    shutil.copy(FIXTURES / "ontology.json", file_server / "ontology.json")
    with caplog.at_level(logging.WARNING):
        found = ensure_files(tmp_path / "metadata", ["ontology.json"])
    assert read_ontology(found["ontology.json"]).nodes[1].id == "/m/a"
    assert "differs from the revision" in caplog.text


def test_unreachable_server_names_file_url_and_destination(tmp_path, file_server):
    # Nothing is served: a 404 stands in for any failed download.
    target = tmp_path / "metadata"
    with pytest.raises(UserError) as info:
        ensure_files(target, ["qa_true_counts.csv"])
    message = info.value.message
    assert "qa_true_counts.csv is missing from" in message
    assert official.OFFICIAL_URLS["qa_true_counts.csv"] in message
    assert str(target / "qa_true_counts.csv") in message
    assert not target.exists()  # a failed fetch leaves no trace


def test_offline_connection_refused_is_one_clear_message(tmp_path, monkeypatch):
    monkeypatch.setitem(official.OFFICIAL_URLS, "ontology.json", "http://127.0.0.1:9/ontology.json")
    with pytest.raises(UserError, match=r"(?s)ontology.json is missing.*http://127.0.0.1:9/ontology.json"):
        ensure_files(tmp_path / "metadata", ["ontology.json"])


def test_present_gzip_copy_is_used_without_fetching(tmp_path, monkeypatch):
    folder = tmp_path / "metadata"
    folder.mkdir()
    (folder / "eval_segments.csv.gz").write_bytes(gzip.compress(b"x"))
    monkeypatch.setitem(official.OFFICIAL_URLS, "eval_segments.csv", "http://127.0.0.1:9/never")
    assert ensure_files(folder, ["eval_segments.csv"])["eval_segments.csv"].name == "eval_segments.csv.gz"
