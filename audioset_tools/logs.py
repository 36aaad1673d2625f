"""Logging set-up, done once at the entry point and never at import time."""

from __future__ import annotations

import logging
import sys

from tqdm import tqdm


class _TqdmHandler(logging.Handler):
    """Writes log lines through tqdm so they do not tear progress bars apart."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never crash the job
            self.handleError(record)


def configure_logging(verbosity: int = 0, quiet: bool = False) -> None:
    """``verbosity`` 0 = INFO, 1+ = DEBUG; ``quiet`` keeps only warnings and errors."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbosity > 0 else logging.INFO)
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        if isinstance(existing, _TqdmHandler):
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # yt-dlp and urllib3 are chatty at INFO; their messages reach us through our own adapter.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
