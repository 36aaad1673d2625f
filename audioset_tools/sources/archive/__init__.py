"""Local archives as a source of clips: folders of clips, HDF5 packs (PANNs, PaSST) and Parquet mirrors.

Public API: :class:`ArchiveSource`, a :class:`~..base.Source`:

- :meth:`ArchiveSource.open` (path, cache_dir, archive_format="auto", name, ffmpeg, progress)
  lists the archive, loads or builds its cached index;
- :meth:`ArchiveSource.produce` (a ``ClipJob``) writes the exact clip or says why not;
  :meth:`ArchiveSource.produce_segment` does the same from (ytid, start, end, spec, target);
- :meth:`ArchiveSource.holds`, :meth:`ArchiveSource.has` and :meth:`ArchiveSource.coverage`
  answer before any audio is read;
- :meth:`ArchiveSource.order_key` orders jobs so each Parquet row group is decoded once;
- :meth:`ArchiveSource.identity` describes the archive for run records.

See docs/sources.md for the formats, the naming patterns and the exactness rules.
"""

from .files import FORMAT_CHOICES, ArchiveFormat, list_archive
from .index import ArchiveIndex, Location, load_or_build_index
from .source import ArchiveSource

__all__ = [
    "FORMAT_CHOICES",
    "ArchiveFormat",
    "ArchiveIndex",
    "ArchiveSource",
    "Location",
    "list_archive",
    "load_or_build_index",
]
