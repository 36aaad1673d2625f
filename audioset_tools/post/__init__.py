"""Post-processing of a downloaded dataset for meta-learning.

Each step reads the dataset's manifest (or a derived folder's index), writes into its own
folder that mirrors the class-folder tree, and skips work already done:

- :mod:`.clean`: quarantine silent, non-finite, unreadable or wrong-length clips;
- :mod:`.npy`: wav -> npy arrays (float32 or int16, optional per-clip z-normalisation);
- :mod:`.features`: log-mel spectrograms (numpy, batched; :mod:`.melspec` holds the maths);
- :mod:`.pack`: one memory-mappable array per split plus its index;
- :mod:`.stats`: normalisation statistics from the meta-train classes only.

Nothing here imports torch; :mod:`audioset_tools.loaders.torch_data` holds the PyTorch loaders.
"""
