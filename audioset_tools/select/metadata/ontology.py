"""ontology.json: the AudioSet class tree, read and checked."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ...errors import UserError
from .official import read_bytes


@dataclass(frozen=True)
class OntologyNode:
    id: str
    name: str
    child_ids: tuple[str, ...]
    restrictions: tuple[str, ...]

    @property
    def is_leaf(self) -> bool:
        return not self.child_ids


@dataclass(frozen=True)
class Ontology:
    """Nodes in file order: that order is the order users slice suitable classes with."""

    nodes: tuple[OntologyNode, ...]
    sha256: str

    @property
    def ids(self) -> list[str]:
        return [node.id for node in self.nodes]

    def index_of(self) -> dict[str, int]:
        return {node.id: i for i, node in enumerate(self.nodes)}


def read_ontology(path: Path) -> Ontology:
    """Parse and validate ontology.json; a corrupt file is a :class:`UserError` naming it."""
    raw, sha = read_bytes(path)
    fix = "Replace it with the published file (delete it and it is downloaded again)."
    try:
        entries = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}). {fix}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}. {fix}") from None
    except RecursionError:
        # The published file is 3 levels deep; a hostile one can nest past Python's stack.
        raise UserError(f"{path}: nested too deeply to be an AudioSet ontology. {fix}") from None
    if not isinstance(entries, list) or not entries:
        raise UserError(f"{path}: expected a non-empty JSON list of classes. {fix}")
    nodes: list[OntologyNode] = []
    seen: set[str] = set()
    for position, entry in enumerate(entries):
        where = f"{path}: entry {position}"
        if not isinstance(entry, dict):
            raise UserError(f"{where} is not an object. {fix}")
        node_id, name = entry.get("id"), entry.get("name")
        if not isinstance(node_id, str) or not node_id:
            raise UserError(f"{where} has no string 'id'. {fix}")
        if not isinstance(name, str) or not name:
            raise UserError(f"{where} ({node_id}) has no string 'name'. {fix}")
        if node_id in seen:
            raise UserError(f"{where}: id {node_id} appears twice. {fix}")
        seen.add(node_id)
        child_ids = entry.get("child_ids", [])
        restrictions = entry.get("restrictions", [])
        for key, value in (("child_ids", child_ids), ("restrictions", restrictions)):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise UserError(f"{where} ({node_id}): '{key}' must be a list of strings. {fix}")
        nodes.append(OntologyNode(node_id, name, tuple(child_ids), tuple(restrictions)))
    for node in nodes:
        unknown = [child for child in node.child_ids if child not in seen]
        if unknown:
            raise UserError(f"{path}: class {node.id} lists unknown child ids {unknown}. {fix}")
    return Ontology(tuple(nodes), sha)
