"""CLI subcommands. Each module maps its arguments onto one library function.

A command module defines ``NAME``, ``HELP``, ``DESCRIPTION``, ``add_arguments(parser)``
and ``run(args, config) -> int``; ``NEEDS_CONFIG = False`` lets it run without a
control.yaml. Register it in :data:`COMMAND_MODULES`.
"""

COMMAND_MODULES = (
    "select",
    "doctor",
    "download",
    "clean",
    "to_npy",
    "melspec",
    "stats",
    "pack",
    "rebuild",
    "validate",
    "report",
)
