"""The segment CSVs (balanced, unbalanced, eval): read fast, validated row by row.

Published format: three header lines starting with ``#``, then one segment per line::

    YTID, start_seconds, end_seconds, "label,label,..."

Fields are separated by ", " and labels contain no spaces, so pyarrow's multithreaded
reader splits each line on spaces with quoting disabled: every physical line becomes
exactly one row or one "invalid row" (wrong field count), so line numbers stay exact
even when a quote is left open. Validation is vectorised with pyarrow compute over
record batches, two threads at a time (the kernels release the GIL).

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

from ..errors import UserError
from ..ids import is_valid_ytid
from .official import read_bytes

log = logging.getLogger(__name__)

SUBSETS = ("balanced", "unbalanced", "eval")
_COLUMNS = ("ytid", "start", "end", "labels")
_NUMBER = re.compile(r"[0-9]+(\.[0-9]*)?")
_BLOCK_SIZE = 1 << 24
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

    Rows that failed validation stay in place (so row numbers are stable) with
    ``valid = False`` and no label codes. Label codes index the ontology's node list, in
    CSR form: the labels of row ``i`` are ``label_codes[label_offsets[i]:label_offsets[i+1]]``.
    """

    start: np.ndarray
    end: np.ndarray
    subset: np.ndarray
    valid: np.ndarray
    label_offsets: np.ndarray
    label_codes: np.ndarray
    files: list[SegmentFile]
    malformed: list[MalformedRow]
    _ytid_field: pa.ChunkedArray = field(repr=False)
    _start_field: pa.ChunkedArray = field(repr=False)
    _end_field: pa.ChunkedArray = field(repr=False)
    _label_field: pa.ChunkedArray = field(repr=False)

    def __len__(self) -> int:
        return len(self.start)

    def ytids(self, rows: np.ndarray) -> pa.Array:
        """The YouTube IDs of valid ``rows`` (the trailing separator removed)."""
        return pc.utf8_slice_codeunits(self._ytid_field.take(rows), 0, 11).combine_chunks()

    def labels_text(self, rows: np.ndarray) -> pa.Array:
        """All labels of ``rows``, comma-joined, without the surrounding quotes."""
        return pc.utf8_trim(self._label_field.take(rows), '"').combine_chunks()


@dataclass
class _Batch:
    ok: np.ndarray
    skip: np.ndarray
    start: np.ndarray
    end: np.ndarray
    label_lengths: np.ndarray
    label_codes: np.ndarray


def read_segments(paths: Mapping[str, Path], ontology_ids: list[str]) -> Segments:
    """Read the segment files given as ``{subset: path}`` in :data:`SUBSETS` order."""
    value_set = pa.array(ontology_ids, pa.string())
    parts: list[tuple[pa.Table, list[_Batch], np.ndarray]] = []
    files: list[SegmentFile] = []
    malformed: list[MalformedRow] = []
    ordered = [s for s in SUBSETS if s in paths]
    with ThreadPoolExecutor(_WORKERS) as pool:
        for subset in ordered:
            path = paths[subset]
            data, sha = read_bytes(path)
            table, invalid = _parse(path, data, use_threads=True)
            batches = list(pool.map(lambda b: _check_batch(b, value_set), table.to_batches()))
            ok = np.concatenate([b.ok for b in batches]) if batches else np.zeros(0, bool)
            file_malformed = _malformed_rows(path, data, table, invalid, batches, ontology_ids)
            malformed.extend(file_malformed)
            files.append(SegmentFile(subset, path.name, sha, int(ok.sum()), len(file_malformed)))
            parts.append((table, batches, ok))
            del data
    return _assemble(parts, ordered, files, malformed)


def _malformed_rows(
    path: Path, data: bytes, table: pa.Table, invalid: list, batches: list[_Batch], ontology_ids: list[str]
) -> list[MalformedRow]:
    bad = [np.flatnonzero(~b.ok & ~b.skip) for b in batches]
    sizes = np.cumsum([0, *(len(b.ok) for b in batches)])
    bad_rows = np.concatenate([rows + offset for rows, offset in zip(bad, sizes)]) if bad else np.zeros(0, np.int64)
    structural = [row for row in invalid if not row.text.lstrip().startswith("#")]
    if not len(bad_rows) and not structural:
        return []
    return _describe(path, data, table, bad_rows, ontology_ids)


def _parse(path: Path, data: bytes, *, use_threads: bool) -> tuple[pa.Table, list]:
    invalid: list = []

    def on_invalid(row) -> str:
        invalid.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(
                column_names=list(_COLUMNS), block_size=_BLOCK_SIZE, use_threads=use_threads
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=" ",
                quote_char=False,
                escape_char=False,
                newlines_in_values=False,
                ignore_empty_lines=False,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in _COLUMNS},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise UserError(_unreadable_message(path, data, exc)) from None
    return table, invalid


def _unreadable_message(path: Path, data: bytes, exc: Exception) -> str:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as bad:
        line = data.count(b"\n", 0, bad.start) + 1
        return (
            f"{path}, line {line}: not UTF-8 text ({bad.reason}). The file is corrupt; "
            f"replace it with the published file (delete it and it is downloaded again)."
        )
    return f"{path}: cannot be read as a segment CSV ({exc}). Replace it with the published file."


def _check_batch(batch: pa.RecordBatch, value_set: pa.Array) -> _Batch:
    ytid, start, end, labels = batch.columns
    skip = _np(
        pc.or_(
            pc.starts_with(ytid, "#"),  # a comment line that happens to have 4 fields
            pc.and_(pc.equal(ytid, ""), pc.equal(labels, "")),  # a blank line
        )
    )
    # A stray quote inside is not checked here: it ends up in a label, which then matches
    # no ontology id, so the row fails anyway and _reason() explains it.
    quoted = _np(
        pc.and_(
            pc.greater_equal(pc.binary_length(labels), 2),
            pc.and_(pc.starts_with(labels, '"'), pc.ends_with(labels, '"')),
        )
    )
    split = pc.split_pattern(pc.utf8_slice_codeunits(labels, 1, -1), ",")
    codes = pc.index_in(pc.list_flatten(split), value_set=value_set)
    codes_np = pc.fill_null(codes, -1).to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    lengths = pc.list_value_length(split).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    start_np = _to_seconds(start)
    end_np = _to_seconds(end)
    with np.errstate(invalid="ignore"):
        ok = _ytid_ok(ytid) & (start_np >= 0) & (end_np > start_np) & quoted & ~skip
    label_row = np.repeat(np.arange(len(lengths)), lengths)
    ok &= np.bincount(label_row[codes_np < 0], minlength=len(lengths)) == 0
    return _Batch(ok, skip, start_np, end_np, lengths, codes_np)


def _np(mask: pa.Array) -> np.ndarray:
    return mask.to_numpy(zero_copy_only=False).astype(bool, copy=False)


_YTID_BYTES = np.zeros(256, dtype=bool)
_YTID_BYTES[np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", np.uint8)] = True


def _ytid_ok(field: pa.Array) -> np.ndarray:
    """Field is 11 characters of [A-Za-z0-9_-] then the separator's comma.

    Checked on the raw string buffers with numpy: a regex over two million rows costs
    several times more.
    """
    _, offsets_buffer, data_buffer = field.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[field.offset : field.offset + len(field) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    ok = np.diff(offsets) == 12
    if ok.all():
        # The usual case: the fields lie back to back, so the buffer is an (n, 12) matrix.
        chars = data[offsets[0] : offsets[-1]].reshape(-1, 12)
    else:
        chars = data[offsets[:-1][ok, None] + np.arange(12, dtype=np.int32)]
    ok[ok] = _YTID_BYTES[chars[:, :11]].all(axis=1) & (chars[:, 11] == ord(","))
    return ok


def _to_seconds(field: pa.Array) -> np.ndarray:
    """The number before the separator's comma; NaN where there is none."""
    has_comma = _np(pc.ends_with(field, ","))
    text = pc.utf8_slice_codeunits(field, 0, -1)
    try:
        numbers = pc.cast(text, pa.float64())
    except pa.ArrowInvalid:
        # Some value is not a number at all: find which with the (slower) pattern.
        numeric = pc.match_substring_regex(text, _NUMBER.pattern.join("^$"))
        numbers = pc.cast(pc.if_else(numeric, text, "nan"), pa.float64())
    values = numbers.to_numpy(zero_copy_only=False).copy()
    values[~has_comma | ~np.isfinite(values)] = np.nan
    return values


def _describe(
    path: Path, data: bytes, table: pa.Table, bad_rows: np.ndarray, ontology_ids: list[str]
) -> list[MalformedRow]:
    """File and line of every malformed row, with the reason, in line order."""
    _, invalid = _parse(path, data, use_threads=False)
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
        problems.append(f"YTID {ytid!r} is not 11 characters of [A-Za-z0-9_-]")
    times_ok = True
    for name, text in (("start_seconds", start), ("end_seconds", end)):
        if not _NUMBER.fullmatch(text):
            problems.append(f"{name} {text!r} is not a number >= 0")
            times_ok = False
    if times_ok and float(end) <= float(start):
        problems.append(f"end_seconds {end} is not after start_seconds {start}")
    quoted = labels.count('"') == 2 and labels.startswith('"') and labels.endswith('"')
    if not quoted:
        problems.append(f"labels {labels!r} are not one double-quoted list")
    else:
        unknown = [label for label in labels.strip('"').split(",") if label not in known]
        if unknown:
            shown = ", ".join(repr(label) for label in unknown[:3])
            problems.append(f"label(s) {shown} not in the ontology")
    return "; ".join(problems) or "malformed row"


def _assemble(
    parts: list[tuple[pa.Table, list[_Batch], np.ndarray]],
    ordered: list[str],
    files: list[SegmentFile],
    malformed: list[MalformedRow],
) -> Segments:
    starts, ends, subsets, valids, lengths, codes = [], [], [], [], [], []
    columns: dict[str, list[pa.Array]] = {name: [] for name in _COLUMNS}
    for (table, batches, ok), subset in zip(parts, ordered):
        for batch in batches:
            starts.append(batch.start)
            ends.append(batch.end)
            if batch.ok.all():
                lengths.append(batch.label_lengths)
                codes.append(batch.label_codes)
            else:
                lengths.append(np.where(batch.ok, batch.label_lengths, 0))
                codes.append(batch.label_codes[np.repeat(batch.ok, batch.label_lengths)])
        valids.append(ok)
        subsets.append(np.full(len(ok), SUBSETS.index(subset), dtype=np.int8))
        for name in _COLUMNS:
            columns[name].extend(table.column(name).chunks)
    offsets = np.zeros(sum(len(x) for x in lengths) + 1, dtype=np.int64)
    if lengths:
        np.cumsum(np.concatenate(lengths), out=offsets[1:])

    def cat(arrays: list[np.ndarray], dtype) -> np.ndarray:
        return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.zeros(0, dtype)

    def chunked(name: str) -> pa.ChunkedArray:
        return pa.chunked_array(columns[name], type=pa.string())

    return Segments(
        start=cat(starts, np.float64),
        end=cat(ends, np.float64),
        subset=cat(subsets, np.int8),
        valid=cat(valids, bool),
        label_offsets=offsets,
        label_codes=cat(codes, np.int32),
        files=files,
        malformed=malformed,
        _ytid_field=chunked("ytid"),
        _start_field=chunked("start"),
        _end_field=chunked("end"),
        _label_field=chunked("labels"),
    )
