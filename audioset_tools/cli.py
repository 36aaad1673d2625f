"""The ``audioset-tools`` command and the shared plumbing of the top-level scripts."""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sqlite3
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from . import __version__
from .commands import COMMAND_MODULES
from .config import DEFAULT_CONFIG_NAME, load_config
from .errors import (
    EXIT_TERMINATED,
    Terminated,
    UserError,
    describe_os_error,
    disk_full_error,
    is_disk_full,
)
from .logs import configure_logging

log = logging.getLogger(__name__)

_WORKFLOW = """\
typical workflow (every parameter lives in control.yaml; override with --set):
  audioset-tools demo            the whole job offline on built-in data (try it first; an install self-test)
  audioset-tools select          classes, seeded candidates, class splits (= get_relevant_meta_data.py)
  audioset-tools doctor          check ffmpeg, yt-dlp, JavaScript runtime, cookies, output folder, network
  audioset-tools download        fetch the clips, resumable (= download_data.py)
  audioset-tools validate [DIR]  prove a dataset matches its manifests; report [DIR] draws figures
  audioset-tools rebuild ...     the same dataset from a manifest (= rebuild_from_manifest.py)
  audioset-tools clean, melspec, stats, pack   post-processing for few-shot training
  audioset-tools export lhotse [DIR]   lhotse manifests of a dataset (extra [lhotse])

Run 'audioset-tools COMMAND --help' for a command's options and exit codes."""


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        default=None,
        help=f"control file with every parameter (default: ./{DEFAULT_CONFIG_NAME})",
    )
    common.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override one config key, e.g. --set download.workers=4 (repeatable)",
    )
    common.add_argument("-v", "--verbose", action="count", default=0, help="more log detail")
    common.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bars, warnings and errors only"
    )
    return common


def _load_command(name: str) -> ModuleType:
    return importlib.import_module(f"{__package__}.commands.{name}")


def _add_command(subparsers, module: ModuleType, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        module.NAME,
        parents=[common],
        help=module.HELP,
        description=module.DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    module.add_arguments(parser)
    parser.set_defaults(_command=module)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``only`` (a command name) just that command's subparser,
    so a command does not pay for importing every other command's libraries."""
    parser = argparse.ArgumentParser(
        prog="audioset-tools",
        description="Build clean, reproducible few-shot slices of Google's AudioSet.",
        epilog=_WORKFLOW,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    common = _common_options()
    for name in COMMAND_MODULES:
        if only is None or name == only.replace("-", "_"):
            _add_command(subparsers, _load_command(name), common)
    return parser


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


def _execute(module: ModuleType, args: argparse.Namespace) -> int:
    configure_logging(args.verbose, args.quiet)
    if threading.current_thread() is not threading.main_thread():
        return _execute_command(module, args)
    # SIGTERM (kill, systemd, SLURM, Docker) unwinds like Ctrl-C: temporaries removed, locks
    # released; a download installs its own graceful handler on top of this one.
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return _execute_command(module, args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _execute_command(module: ModuleType, args: argparse.Namespace) -> int:
    try:
        config = None
        needs = getattr(module, "CONFIG", "required")
        if needs != "none":
            config = load_config(args.config, args.overrides, required=needs == "required")
        return int(module.run(args, config))
    except UserError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        # What the system refused (a full disk, a read-only or missing folder, a file where a
        # folder should be): one line naming the path and the cause, never a traceback.
        if is_disk_full(exc):
            error: UserError = disk_full_error(Path(exc.filename).parent if exc.filename else Path.cwd())
        else:
            error = UserError(describe_os_error(exc))
        print(f"error: {error.message}", file=sys.stderr)
        return error.exit_code
    except sqlite3.DatabaseError as exc:
        # The modules that open a ledger name it; this is the last line of defence.
        print(f"error: a database could not be read or written ({exc}); if it is a damaged "
              f"ledger.sqlite3, move it aside and run again", file=sys.stderr)
        return 2
    except Terminated:
        print("terminated (SIGTERM); finished work is kept, run the same command again to resume", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("interrupted; finished work is kept, run the same command again to resume", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``audioset-tools`` console command."""
    words = list(sys.argv[1:] if argv is None else argv)
    # The first word names the command (the top level has no option taking a value).
    first = next((word for word in words if not word.startswith("-")), None)
    known = first is not None and first.replace("-", "_") in COMMAND_MODULES
    args = build_parser(first if known else None).parse_args(words)
    return _execute(args._command, args)


def run_script(command: str, argv: Sequence[str] | None, prog: str) -> int:
    """Entry point of a top-level script that runs one subcommand (e.g. get_relevant_meta_data.py)."""
    module = _load_command(command)
    parser = argparse.ArgumentParser(
        prog=prog,
        parents=[_common_options()],
        description=module.DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    return _execute(module, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
