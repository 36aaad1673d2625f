"""``audioset-tools demo``: the whole job on a built-in miniature AudioSet, offline.

- ``metadata/``: a miniature metadata set in the official formats (package data).
- :mod:`.catalog`: what the demo's media server does for each video of that set.
- :mod:`.sounds`: generates the source audio with the real ffmpeg.
- :mod:`.server`: a media server on 127.0.0.1 (HTTP Range, misbehaving on request).
- :mod:`.episodes`: draws a few N-way K-shot episodes (PyTorch when installed, numpy otherwise).
- :mod:`.steps`: runs every step through the real command line into one folder.
"""
