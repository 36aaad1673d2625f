"""YouTube as a source: resolve with yt-dlp, read only the segment with ffmpeg, verify, save.

Modules: ``clip`` (:func:`~.clip.fetch_clip`, the per-clip pipeline, with its job,
settings and result types), ``resolve`` (yt-dlp), ``segment`` (ffmpeg), ``classify`` and
``network_errors`` (errors to outcomes), ``cookies``, ``js_runtime`` and
``ytdlp_tooling`` (the external pieces it needs), ``reachability`` (is the site there,
before a run). Scheduling many clips is :mod:`audioset_tools.download`'s job.
"""
