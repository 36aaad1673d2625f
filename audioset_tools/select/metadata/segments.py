"""The segment CSVs (balanced, unbalanced, eval): read fast, validated row by row.

Published format: three header lines starting with ``#``, then one segment per line::

    YTID, start_seconds, end_seconds, "label,label,..."

Fields are separated by ", " and labels contain no spaces, so pyarrow's CSV reader
splits each line on spaces with quoting disabled: every physical line becomes exactly
one row or one "invalid row" (wrong field count), so line numbers stay exact even when a
quote is left open. A large file is cut at line ends into one part per core; each part
is parsed by its own streaming reader and its batches validated in the same thread with
vectorised pyarrow compute and numpy (both release the GIL), so all cores parse and
check at once (pyarrow's streaming reader alone parses on one core).

Label lists repeat a lot (2 M rows, about 52 k distinct lists), so each distinct list is
split and checked against the ontology once; rows refer to their list by number.

Line numbers of rows are only known to pyarrow's single-threaded reader, so a file with
any malformed row is parsed a second time that way, purely to name the lines; clean
files (the official ones) are parsed once.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ...dataset.ids import is_valid_ytid
from ...errors import UserError
from .official import map_file

log = logging.getLogger(__name__)

SUBSETS = ("balanced", "unbalanced", "eval")
_COLUMNS = ("ytid", "start", "end", "labels")
_YTID_WIDTH = 11
_NUMBER = re.compile(r"[0-9]+(\.[0-9]*)?")
_BLOCK_SIZE = 1 << 22
_MIN_PART = 1 << 24  # smaller files are parsed as one part
# Labels arrive dictionary-encoded from the parser (one dictionary per batch): the label
# text of two million rows is never built as a string column.
_COLUMN_TYPES = {
    "ytid": pa.string(),
    "start": pa.string(),
    "end": pa.string(),
    "labels": pa.dictionary(pa.int32(), pa.string()),
}
_WORKERS = max(1, min(2, os.cpu_count() or 1))


@dataclass(frozen=True)
class MalformedRow:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}, line {self.line}: {self.reason}"


@dataclass(frozen=True)
class SegmentFile:
    subset: str
    name: str
    sha256: str
    rows: int
    malformed: int


@dataclass
class Segments:
    """Every row of the chosen segment files, with per-row arrays aligned on row number.

    Each row points (``label_set``) at one distinct label list; the lists hold ontology
    node indices in CSR form: list ``k`` is ``set_codes[set_offsets[k]:set_offsets[k+1]]``.
    Rows that failed validation stay in place (so row numbers are stable) with
    ``valid = False`` and ``label_set = -1``.
    """

    start: np.ndarray
    end: np.ndarray
    subset: np.ndarray
    valid: np.ndarray
    label_set: np.ndarray
    set_offsets: np.ndarray
    set_codes: np.ndarray
    files: list[SegmentFile]
    malformed: list[MalformedRow]
    _ytid_bytes: np.ndarray = field(repr=False)  # (rows, 11) uint8, zeros on invalid rows
    _set_text: pa.Array = field(repr=False)

    def __len__(self) -> int:
        return len(self.start)

    def labels_of(self, row: int) -> np.ndarray:
        """Ontology node indices of one row's labels (empty for an invalid row)."""
        k = self.label_set[row]
        return self.set_codes[self.set_offsets[k] : self.set_offsets[k + 1]] if k >= 0 else self.set_codes[:0]

    def ytid_bytes(self, rows: np.ndarray) -> np.ndarray:
        """The YouTube IDs of valid ``rows`` as an ``(n, 11)`` uint8 array."""
        return self._ytid_bytes[rows]

    def ytids(self, rows: np.ndarray) -> pa.Array:
        """The YouTube IDs of valid ``rows``."""
        return ytid_strings(self.ytid_bytes(rows))

    def labels_text(self, rows: np.ndarray) -> pa.Array:
        """All labels of valid ``rows``, comma-joined, without the surrounding quotes."""
        return self._set_text.take(pa.array(self.label_set[rows]))


@dataclass
class _Batch:
    ok: np.ndarray  # YTID, times and layout fine (labels not judged yet)
    skip: np.ndarray
    start: np.ndarray
    end: np.ndarray
    lists: pa.Array  # distinct raw label fields of the batch
    list_index: np.ndarray  # row -> index into lists
    ytid: np.ndarray  # (rows, 11) uint8: the YTID where ok, else anything


@dataclass
class _LabelSets:
    """Distinct raw label fields, split and checked against the ontology."""

    raw: pa.Array
    ok: np.ndarray
    offsets: np.ndarray
    codes: np.ndarray

    @classmethod
    def check(cls, raw: pa.Array, value_set: pa.Array) -> _LabelSets:
        # A stray quote inside is not checked here: it ends up in a label, which then
        # matches no ontology id, so the list fails anyway and _reason() explains it.
        quoted = _np(
            pc.and_(
                pc.greater_equal(pc.binary_length(raw), 2),
                pc.and_(pc.starts_with(raw, '"'), pc.ends_with(raw, '"')),
            )
        )
        split = pc.split_pattern(pc.utf8_slice_codeunits(raw, 1, -1), ",")
        codes = pc.fill_null(pc.index_in(pc.list_flatten(split), value_set=value_set), -1)
        codes_np = codes.to_numpy(zero_copy_only=False).astype(np.int32)
        lengths = pc.list_value_length(split).to_numpy(zero_copy_only=False).astype(np.int64)
        owner = np.repeat(np.arange(len(lengths)), lengths)
        ok = quoted & (np.bincount(owner[codes_np < 0], minlength=len(lengths)) == 0)
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(raw, ok, offsets, codes_np)


def read_segments(paths: Mapping[str, Path], ontology_ids: list[str]) -> Segments:
    """Read the segment files given as ``{subset: path}`` in :data:`SUBSETS` order."""
    parsed: list[_ParsedFile] = []
    with ThreadPoolExecutor(_WORKERS) as pool:
        # Every part is queued before any result is awaited, so the small files parse
        # while the large one is being hashed.
        queued = []
        for subset in (s for s in SUBSETS if s in paths):
            path = paths[subset]
            data, sha = map_file(path)
            parts = [pool.submit(_read_part, part) for part in _split_lines(data, _WORKERS)]
            queued.append((subset, path, data, sha, parts))
        for subset, path, data, sha, parts in queued:
            batches, invalid, overlong = [], [], []
            try:
                for part in parts:
                    part_batches, part_invalid = part.result()
                    batches += part_batches
                    invalid += part_invalid
            except pa.ArrowInvalid as exc:
                # Only on this error path: a line longer than a parser block is the usual cause.
                data, overlong = _blank_overlong_lines(path, data, exc)
                try:
                    batches, invalid = _read_part(memoryview(data))
                except pa.ArrowInvalid as again:
                    raise UserError(_unreadable_message(path, data, again)) from None
            parsed.append(_ParsedFile(subset, path, data, sha, batches, invalid, overlong))

    # Every distinct label list of all files is split and checked once.
    dictionaries = [batch.lists for file in parsed for batch in file.batches]
    sets = _LabelSets.check(_distinct(dictionaries), pa.array(ontology_ids, pa.string()))
    to_sets = iter(_index_in_each(dictionaries, sets.raw))
    files: list[SegmentFile] = []
    malformed: list[MalformedRow] = []
    label_sets = []
    for file in parsed:
        list_index = _cat([next(to_sets)[batch.list_index] for batch in file.batches], np.int32)
        ok = _cat([batch.ok for batch in file.batches], bool) & sets.ok[list_index]
        skip = _cat([batch.skip for batch in file.batches], bool)
        bad_rows = np.flatnonzero(~ok & ~skip)
        structural = [row for row in file.invalid if not row.text.lstrip().startswith("#")]
        file_malformed = []
        if len(bad_rows) or structural:
            file_malformed = _describe(file.path, file.data, bad_rows, ontology_ids)
        if file.overlong:
            file_malformed = sorted(file_malformed + file.overlong, key=lambda row: row.line)
        malformed.extend(file_malformed)
        files.append(SegmentFile(file.subset, file.path.name, file.sha256, int(ok.sum()), len(file_malformed)))
        label_sets.append(np.where(ok, list_index, -1).astype(np.int32, copy=False))
        file.data = b""  # the mapping (or gunzipped copy) is no longer needed

    batches = [batch for file in parsed for batch in file.batches]
    return Segments(
        start=_cat([b.start for b in batches], np.float64),
        end=_cat([b.end for b in batches], np.float64),
        subset=_cat([np.full(len(ls), SUBSETS.index(f.subset), np.int8) for f, ls in zip(parsed, label_sets)], np.int8),
        valid=_cat([ls >= 0 for ls in label_sets], bool),
        label_set=_cat(label_sets, np.int32),
        set_offsets=sets.offsets,
        set_codes=sets.codes,
        files=files,
        malformed=malformed,
        _ytid_bytes=_cat([b.ytid for b in batches], np.uint8).reshape(-1, _YTID_WIDTH),
        _set_text=pc.utf8_slice_codeunits(sets.raw, 1, -1),
    )


@dataclass
class _ParsedFile:
    subset: str
    path: Path
    data: memoryview | bytes
    sha256: str
    batches: list[_Batch]
    invalid: list
    overlong: list[MalformedRow] = field(default_factory=list)  # lines skipped for their length


def _cat(arrays: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.zeros(0, dtype)


def _distinct(arrays: list[pa.Array]) -> pa.Array:
    if not arrays:
        return pa.array([], pa.string())
    if len(arrays) == 1:
        return arrays[0]  # already distinct: a dictionary
    return pc.unique(pa.chunked_array(arrays, type=pa.string()))


def _index_in_each(arrays: list[pa.Array], value_set: pa.Array) -> list[np.ndarray]:
    """Each array's positions in ``value_set``, looked up in one call (one hash table)."""
    if not arrays:
        return []
    found = pc.index_in(pa.concat_arrays(arrays), value_set=value_set).to_numpy(zero_copy_only=False)
    return np.split(found.astype(np.int32), np.cumsum([len(a) for a in arrays[:-1]]))


def _csv_options(use_threads: bool, invalid: list) -> dict:
    def on_invalid(row) -> str:
        invalid.append(row)
        return "skip"

    return {
        "read_options": pacsv.ReadOptions(
            column_names=list(_COLUMNS), block_size=_BLOCK_SIZE, use_threads=use_threads
        ),
        "parse_options": pacsv.ParseOptions(
            delimiter=" ",
            quote_char=False,
            escape_char=False,
            newlines_in_values=False,
            ignore_empty_lines=False,
            invalid_row_handler=on_invalid,
        ),
        "convert_options": pacsv.ConvertOptions(
            column_types=_COLUMN_TYPES,
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    }


def _split_lines(data: memoryview | bytes, count: int) -> list[memoryview]:
    """``data`` cut right after a line end into about ``count`` equal parts (views)."""
    view = memoryview(data)
    if len(view) < _MIN_PART * 2:
        return [view]
    bounds = [0]
    for k in range(1, count):
        cut = _next_line_start(view, len(view) * k // count)
        if cut is None or cut <= bounds[-1]:
            break
        bounds.append(cut)
    bounds.append(len(view))
    return [view[start:end] for start, end in zip(bounds[:-1], bounds[1:])]


def _next_line_start(view: memoryview, position: int) -> int | None:
    window = 1 << 16
    while position < len(view):
        found = bytes(view[position : position + window]).find(b"\n")
        if found >= 0:
            return position + found + 1
        position += window
    return None


def _read_part(part: memoryview) -> tuple[list[_Batch], list]:
    """Parse one part batch by batch and check each batch as it comes (in this thread).

    Only each batch's YTID bytes and checked columns outlive its check, so the parsed
    text never piles up in memory.
    """
    invalid: list = []
    reader = pacsv.open_csv(pa.BufferReader(pa.py_buffer(part)), **_csv_options(False, invalid))
    return [_check_batch(batch) for batch in reader], invalid


def _parse_numbered(path: Path, data: memoryview | bytes) -> tuple[pa.Table, list]:
    """The whole file single-threaded, the only way pyarrow numbers the invalid rows."""
    invalid: list = []
    try:
        table = pacsv.read_csv(pa.BufferReader(pa.py_buffer(data)), **_csv_options(False, invalid))
    except pa.ArrowInvalid as exc:
        raise UserError(_unreadable_message(path, data, exc)) from None
    return table, invalid


# No segment line comes near this (they are under 200 bytes); a longer line is skipped and
# reported rather than allowed to stop the parser, which needs each line inside one block.
MAX_LINE_BYTES = 1 << 16


def _blank_overlong_lines(
    path: Path, data: memoryview | bytes, exc: Exception
) -> tuple[bytes, list[MalformedRow]]:
    """``data`` with every line over MAX_LINE_BYTES replaced by a comment (line numbers kept), and
    one MalformedRow per such line; the original error when there is none."""
    text = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(text == ord("\n"))
    if not len(ends) or ends[-1] != len(text) - 1:
        ends = np.append(ends, len(text))
    starts = np.concatenate(([0], ends[:-1] + 1))
    long_lines = np.flatnonzero(ends - starts > MAX_LINE_BYTES)
    if not len(long_lines):
        raise UserError(_unreadable_message(path, data, exc)) from None
    pieces, position = [], 0
    view = memoryview(data)
    found = []
    for index in long_lines.tolist():
        start, end = int(starts[index]), int(ends[index])
        pieces += [view[position:start], b"#"]
        position = end
        found.append(MalformedRow(
            path.name, index + 1, f"line of {end - start:,} bytes, longer than any segment line can be "
            f"({MAX_LINE_BYTES:,} bytes at most); skipped",
        ))
    pieces.append(view[position:])
    log.warning("%s: skipped %d over-long line(s) (first: line %d)", path, len(found), found[0].line)
    return b"".join(pieces), found


def _unreadable_message(path: Path, data: memoryview | bytes, exc: Exception) -> str:
    data = bytes(data)  # only on this error path
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as bad:
        line = data.count(b"\n", 0, bad.start) + 1
        return (
            f"{path}, line {line}: not UTF-8 text ({bad.reason}). The file is corrupt; "
            f"replace it with the published file (delete it and it is downloaded again)."
        )
    return f"{path}: cannot be read as a segment CSV ({exc}). Replace it with the published file."


def _check_batch(batch: pa.RecordBatch) -> _Batch:
    ytid, start, end, labels = batch.columns
    start_np = _to_seconds(start)
    end_np = _to_seconds(end)
    ok, ytid_bytes = _ytid_ok(ytid)
    skip = np.zeros(len(ok), dtype=bool)
    if not ok.all():
        # Only a row with a bad YTID can be a comment or a blank line.
        suspect = np.flatnonzero(~ok)
        ytid_s, labels_s = ytid.take(suspect), labels.take(suspect).cast(pa.string())
        skip[suspect] = _np(
            pc.or_(
                pc.starts_with(ytid_s, "#"),  # a comment line that happens to have 4 fields
                pc.and_(pc.equal(ytid_s, ""), pc.equal(labels_s, "")),  # a blank line
            )
        )
    with np.errstate(invalid="ignore"):
        ok &= (start_np >= 0) & (end_np > start_np)
    return _Batch(
        ok,
        skip,
        start_np,
        end_np,
        labels.dictionary,
        labels.indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False),
        ytid_bytes,
    )


def _np(mask: pa.Array) -> np.ndarray:
    return mask.to_numpy(zero_copy_only=False).astype(bool, copy=False)


# Byte classes: 1 for a YTID character, 2 for the separator's comma, 0 for anything else.
# A good field maps to 1 x 11 then 2, compared as three 32-bit words (several times faster
# than a per-byte table lookup and reduction).
_FIELD_CLASS = np.zeros(256, dtype=np.uint8)
_FIELD_CLASS[np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", np.uint8)] = 1
_FIELD_CLASS[ord(",")] = 2
_GOOD_FIELD = np.array([1] * _YTID_WIDTH + [2], dtype=np.uint8).view(np.uint32)


def _ytid_ok(field: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Where the field is 11 characters of [A-Za-z0-9_-] then the separator's comma, and
    the 11 bytes of each row (zeros where the field has the wrong length).

    Checked on the raw string buffers with numpy: a regex over two million rows costs
    several times more.
    """
    _, offsets_buffer, data_buffer = field.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[field.offset : field.offset + len(field) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    ok = np.diff(offsets) == _YTID_WIDTH + 1
    if ok.all():
        # The usual case: the fields lie back to back, so the buffer is an (n, 12) matrix.
        chars = data[offsets[0] : offsets[-1]].reshape(-1, _YTID_WIDTH + 1)
    else:
        chars = np.zeros((len(ok), _YTID_WIDTH + 1), dtype=np.uint8)
        chars[ok] = data[offsets[:-1][ok, None] + np.arange(_YTID_WIDTH + 1, dtype=np.int32)]
    words = np.take(_FIELD_CLASS, chars).view(np.uint32)
    ok &= (words[:, 0] == _GOOD_FIELD[0]) & (words[:, 1] == _GOOD_FIELD[1]) & (words[:, 2] == _GOOD_FIELD[2])
    return ok, chars[:, :_YTID_WIDTH]


def ytid_strings(matrix: np.ndarray) -> pa.Array:
    """An ``(n, 11)`` byte matrix of YTIDs as a string array, sharing its memory."""
    count = len(matrix)
    offsets = np.arange(0, count * _YTID_WIDTH + 1, _YTID_WIDTH, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(matrix))]
    )


def _to_seconds(field: pa.Array) -> np.ndarray:
    """The number before the separator's comma; NaN where there is none."""
    has_comma = _np(pc.ends_with(field, ","))
    try:
        # Dropping the last byte as binary is several times cheaper than a UTF-8 aware slice;
        # a field whose last character is not one byte has no comma and parses as no number.
        numbers = pc.cast(pc.binary_slice(field.cast(pa.binary()), 0, -1), pa.float64())
    except pa.ArrowInvalid:
        # Some value is not a number at all: find which with the (slower) pattern.
        text = pc.utf8_slice_codeunits(field, 0, -1)
        numeric = pc.match_substring_regex(text, _NUMBER.pattern.join("^$"))
        numbers = pc.cast(pc.if_else(numeric, text, "nan"), pa.float64())
    values = numbers.to_numpy(zero_copy_only=False).copy()
    values[~has_comma | ~np.isfinite(values)] = np.nan
    return values


def _describe(
    path: Path, data: memoryview | bytes, bad_rows: np.ndarray, ontology_ids: list[str]
) -> list[MalformedRow]:
    """File and line of every malformed row, with the reason, in line order."""
    table, invalid = _parse_numbered(path, data)
    invalid_lines = np.array([row.number for row in invalid], dtype=np.int64)
    total_lines = table.num_rows + len(invalid)
    row_lines = np.setdiff1d(np.arange(1, total_lines + 1), invalid_lines, assume_unique=True)
    known = set(ontology_ids)
    found: list[MalformedRow] = []
    for row in invalid:
        if row.text.lstrip().startswith("#"):
            continue
        found.append(
            MalformedRow(
                path.name,
                int(row.number),
                f"expected 4 fields separated by ', ' (YTID, start_seconds, end_seconds, "
                f"\"labels\"), found {row.actual_columns}",
            )
        )
    if len(bad_rows):
        values = table.take(pa.array(bad_rows)).to_pylist()
        for row_index, value in zip(bad_rows.tolist(), values):
            found.append(MalformedRow(path.name, int(row_lines[row_index]), _reason(value, known)))
    found.sort(key=lambda item: item.line)
    return found


def _reason(value: dict[str, str], known: set[str]) -> str:
    ytid = value["ytid"].removesuffix(",")
    start, end = value["start"].removesuffix(","), value["end"].removesuffix(",")
    labels = value["labels"]
    if not value["ytid"].endswith(",") or not value["start"].endswith(",") or not value["end"].endswith(","):
        return "fields must be separated by ', '"
    problems = []
    if not is_valid_ytid(ytid):
        problems.append(f"YTID {_shorten(ytid)!r} is not 11 characters of [A-Za-z0-9_-]")
    times_ok = True
    for name, text in (("start_seconds", start), ("end_seconds", end)):
        if not _NUMBER.fullmatch(text):
            problems.append(f"{name} {text!r} is not a number >= 0")
            times_ok = False
    if times_ok and float(end) <= float(start):
        problems.append(f"end_seconds {end} is not after start_seconds {start}")
    quoted = labels.count('"') == 2 and labels.startswith('"') and labels.endswith('"')
    if not quoted:
        problems.append(f"labels {_shorten(labels)!r} are not one double-quoted list")
    else:
        unknown = [label for label in labels.strip('"').split(",") if label not in known]
        if unknown:
            shown = ", ".join(repr(_shorten(label)) for label in unknown[:3])
            problems.append(f"label(s) {shown} not in the ontology")
    return "; ".join(problems) or "malformed row"


def _shorten(text: str, limit: int = 60) -> str:
    """A field as quoted in a message: a hostile line cannot make the message huge."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"
