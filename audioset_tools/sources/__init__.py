"""Where clips come from: each source turns a clip job into a clip file or a classified failure.

Shared by every source: ``output_spec`` (what a finished clip is: format, rate, channels,
exact length), ``outcomes`` (what can happen to a clip), ``abort`` (the switch that ends
work in flight), ``ffmpeg_bin`` (finding a usable ffmpeg). ``youtube/`` fetches segments
through yt-dlp and ffmpeg; ``archive/`` reads them from local archives (folders of clips,
HDF5 packs, Parquet mirrors).
"""
