"""Reading the small CSV files users hand us (manifests, unavailable lists) with exact line numbers.

Each format module keeps its own columns and row rules; this one only turns a file into
(line number, row) pairs or a frame of text columns, and problems into one :class:`UserError`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import UserError

MAX_REPORTED_ERRORS = 20
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """A free-text cell (a class name, labels, a reason) that no spreadsheet runs as a formula.

    A leading apostrophe makes the cell plain text and keeps it readable; only text
    columns go through here, never numbers, so a negative number stays a number.
    :func:`from_spreadsheet_safe` undoes it when the tool reads its own CSVs back.
    """
    return f"'{text}" if isinstance(text, str) and text.startswith(_FORMULA_STARTS) else text


def from_spreadsheet_safe(text: str) -> str:
    if isinstance(text, str) and text.startswith("'") and text[1:].startswith(_FORMULA_STARTS):
        return text[1:]
    return text


@dataclass
class CsvRows:
    header: list[str]
    rows: list[tuple[int, dict[str, str]]]  # (line number, column -> text); the header is line 1
    errors: list[tuple[int, str]]  # (line number, message) of rows with the wrong number of fields


def read_csv_rows(path: Path, required: Sequence[str], what: str, expected: str) -> CsvRows:
    """Read a CSV whose header must hold ``required``; ``what`` names the file kind in messages
    and ``expected`` says what a good file looks like."""
    path = Path(path)
    try:
        # utf-8-sig: a file saved by a spreadsheet starts with a byte-order mark; it is not part of the header.
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the {what} ({exc})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip() for name in next(reader, [])]
    missing = [column for column in required if column not in header]
    if missing:
        raise UserError(f"{path}: not a {what}, missing column(s): {', '.join(missing)}\n  {expected}")
    if len(set(header)) != len(header):
        raise UserError(f"{path}: repeated column names in the header")
    rows: list[tuple[int, dict[str, str]]] = []
    errors: list[tuple[int, str]] = []
    for line_number, fields in enumerate(reader, start=2):
        if not fields:
            continue
        if len(fields) != len(header):
            errors.append((line_number, f"{path}:{line_number}: expected {len(header)} fields, found {len(fields)}"))
            continue
        rows.append((line_number, dict(zip(header, fields))))
    return CsvRows(header, rows, errors)


def raise_if_errors(errors: list[tuple[int, str]], title: str) -> None:
    """One UserError listing the first problems in line order, and how many more there are."""
    if not errors:
        return
    shown = [message for _, message in sorted(errors, key=lambda error: error[0])][:MAX_REPORTED_ERRORS]
    more = len(errors) - len(shown)
    tail = [f"... and {more} more problem(s)"] if more else []
    raise UserError(f"{title}:\n  " + "\n  ".join(shown + tail))


def read_text_frame(path: Path, required: Sequence[str], what: str, remedy: str) -> pd.DataFrame:
    """A CSV the tool wrote itself, as text columns (no NaN guessing); ``remedy`` says how to fix it.

    The caller decides what a missing file means; a file that cannot be parsed or lacks
    ``required`` columns is a :class:`UserError` naming the file.
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise UserError(f"{path}: unreadable {what} ({exc}); {remedy}") from None
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise UserError(f"{path}: the {what} lacks column(s) {', '.join(missing)}; {remedy}")
    return frame.map(from_spreadsheet_safe) if len(frame) else frame
