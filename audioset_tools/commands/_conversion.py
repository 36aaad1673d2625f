"""The shared ending of to-npy and melspec: one summary line, exit 1 when clips failed."""

from __future__ import annotations

import logging

from ..post.derived import ConversionSummary

log = logging.getLogger(__name__)


def report(summary: ConversionSummary) -> int:
    log.info(
        "%d clip(s) converted, %d already done, %d failed; %d item(s) in %s",
        summary.converted, summary.skipped, len(summary.failed), summary.items, summary.index,
    )
    if summary.failed:
        log.warning("failed clips are left out of the index; audioset-tools clean quarantines unreadable ones")
        return 1
    return 0
