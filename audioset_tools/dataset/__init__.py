"""A dataset folder and its formats: names, manifests, quarantine, checks and reports.

``ids`` (what a valid YouTube ID is), ``layout`` (safe class folder and clip names,
containment), ``manifest`` (the per-class and global manifests, ``metadata.csv``),
``hf_card`` (the Hugging Face dataset card), ``quarantine``, ``lock`` (one writer per
folder), ``audio_info`` (facts about a finished clip), ``validate``, ``report`` and
``lhotse_export``. Every stage that reads or writes a dataset goes through these.
"""
