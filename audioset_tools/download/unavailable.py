"""``unavailable.csv``: videos known to be gone, shared between users.

Columns ``ytid, reason, last_checked`` (UTC ISO 8601, e.g. ``2026-11-25T14:05:00Z``).
Exported from a ledger, imported into another one, where those videos are then skipped
like the ones that ledger found dead itself (``--retry-failed`` tries them again).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from pathlib import Path

from ..atomic import atomic_write_text
from ..dataset.ids import is_valid_ytid
from ..tables import (
    from_spreadsheet_safe,
    raise_if_errors,
    read_csv_rows,
    spreadsheet_safe,
)
from .ledger import Ledger

UNAVAILABLE_COLUMNS = ("ytid", "reason", "last_checked")


def export_unavailable(ledger: Ledger, path: Path) -> int:
    """Write every video the ledger knows to be unavailable; return how many."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(UNAVAILABLE_COLUMNS)
    count = 0
    for ytid, reason, last_checked in ledger.unavailable_videos():
        writer.writerow((ytid, spreadsheet_safe(" ".join(reason.split())), last_checked))
        count += 1
    atomic_write_text(Path(path), buffer.getvalue())
    return count


def _normalise_time(text: str) -> str | None:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except OverflowError:  # e.g. 9999-12-31T23:59:59-01:00 is past year 9999 in UTC
        return None


def read_unavailable(path: Path) -> list[tuple[str, str, str]]:
    """Read and validate an unavailable.csv; :class:`UserError` names the file and line of each problem."""
    path = Path(path)
    table = read_csv_rows(
        path, UNAVAILABLE_COLUMNS, "unavailable list",
        f"An unavailable list has the header {','.join(UNAVAILABLE_COLUMNS)} (as written by --export-unavailable).",
    )
    rows: list[tuple[str, str, str]] = []
    errors = list(table.errors)
    for line_number, fields in table.rows:
        ytid = fields["ytid"].strip()
        checked = _normalise_time(fields["last_checked"])
        if not is_valid_ytid(ytid):
            errors.append((line_number, f"{path}:{line_number}: ytid must be 11 characters of [A-Za-z0-9_-], got {ytid!r}"))
        if checked is None:
            errors.append((
                line_number,
                f"{path}:{line_number}: last_checked must be an ISO 8601 time such as 2026-11-25T14:05:00Z",
            ))
        if checked and is_valid_ytid(ytid):
            rows.append((ytid, " ".join(from_spreadsheet_safe(fields["reason"]).split()), checked))
    raise_if_errors(errors, "invalid unavailable list")
    return rows


def import_unavailable(ledger: Ledger, path: Path) -> int:
    """Merge an unavailable.csv into the ledger (all or nothing); return the rows read."""
    return ledger.import_unavailable(read_unavailable(path))
