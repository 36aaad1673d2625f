"""qa_true_counts.csv: Google's estimate of label quality per class."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...errors import UserError
from .official import read_bytes

HEADER = "label_id,num_rated,num_true"


@dataclass(frozen=True)
class QualityCount:
    num_rated: int
    num_true: int

    @property
    def quality(self) -> float | None:
        """num_true / num_rated, or None when nobody rated the class."""
        return self.num_true / self.num_rated if self.num_rated else None


@dataclass(frozen=True)
class QualityTable:
    counts: dict[str, QualityCount]
    sha256: str


def read_quality(path: Path) -> QualityTable:
    """Parse and validate qa_true_counts.csv; any bad line is a :class:`UserError` naming it."""
    raw, sha = read_bytes(path)
    fix = "Replace it with the published file (delete it and it is downloaded again)."
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}). {fix}") from None
    if not lines or lines[0].strip() != HEADER:
        raise UserError(f"{path}: line 1 must be the header '{HEADER}'. {fix}")
    counts: dict[str, QualityCount] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != 3:
            raise UserError(f"{path}, line {number}: expected 3 fields ({HEADER}), found {len(fields)}. {fix}")
        label, rated_text, true_text = fields
        if not (rated_text.isdigit() and true_text.isdigit()):
            raise UserError(f"{path}, line {number}: num_rated and num_true must be whole numbers >= 0. {fix}")
        rated, true = int(rated_text), int(true_text)
        if true > rated:
            raise UserError(f"{path}, line {number}: num_true ({true}) exceeds num_rated ({rated}). {fix}")
        if label in counts:
            raise UserError(f"{path}, line {number}: {label} appears twice. {fix}")
        counts[label] = QualityCount(rated, true)
    return QualityTable(counts, sha)
