"""The one line each benchmark prints per target: ``<what> <value> target >= <goal> met|MISSED``."""

from __future__ import annotations


def target_line(what: str, value: float | int, op: str, goal: float, unit: str = "", digits: int = 1) -> None:
    met = value <= goal if op == "<=" else value >= goal
    shown = f"{value:8d}" if isinstance(value, int) else f"{value:8.{digits}f}"
    print(f"{what:<56} {shown}{unit}  target {op} {goal:g}{unit}  {'met' if met else 'MISSED'}")
