"""Fetching one clip: resolve with yt-dlp, read only the segment with ffmpeg, verify, save.

Modules: ``outcomes`` (what can happen), ``clip`` (:func:`~.clip.fetch_clip`, the per-clip
pipeline, with its job, settings and result types), ``resolve`` (yt-dlp), ``segment``
(ffmpeg), ``classify`` (errors to outcomes), ``ffmpeg_bin``, ``cookies`` and ``js_runtime``
(the external pieces it needs). Scheduling many clips is :mod:`audioset_tools.download`'s job.
"""
