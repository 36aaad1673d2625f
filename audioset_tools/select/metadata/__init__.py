"""Reading the official AudioSet metadata files (and fetching the missing ones)."""

from .official import ensure_files, needed_files
from .ontology import Ontology, OntologyNode, read_ontology
from .quality import QualityCount, QualityTable, read_quality
from .segments import SUBSETS, MalformedRow, SegmentFile, Segments, read_segments

__all__ = [
    "SUBSETS",
    "MalformedRow",
    "Ontology",
    "OntologyNode",
    "QualityCount",
    "QualityTable",
    "SegmentFile",
    "Segments",
    "ensure_files",
    "needed_files",
    "read_ontology",
    "read_quality",
    "read_segments",
]
