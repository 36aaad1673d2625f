"""CLI subcommands. Each module maps its arguments onto one library function.

A command module defines ``NAME``, ``HELP``, ``DESCRIPTION``, ``add_arguments(parser)``
and ``run(args, config) -> int``. ``CONFIG`` says what ``config`` is: ``"required"``
(the default: a validated control.yaml), ``"optional"`` (control.yaml when given or
present, else the defaults plus any --set) or ``"none"`` (None). Register it in :data:`COMMAND_MODULES`.
"""

COMMAND_MODULES = (
    "select",
    "doctor",
    "download",
    "sources",
    "clean",
    "to_npy",
    "melspec",
    "stats",
    "pack",
    "rebuild",
    "validate",
    "report",
    "export",
    "demo",
)
