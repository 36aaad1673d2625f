"""Stage 1, selection: official metadata in, suitable classes, seeded candidates and splits out.

``metadata/`` reads the official files; ``selection`` and ``splits`` are pure functions
(``stable_order`` is their seeded ordering); ``step`` runs the stage end to end and
``outputs`` owns the files it writes into ``paths.meta_dir`` (and reads them back for
the download stage).
"""
