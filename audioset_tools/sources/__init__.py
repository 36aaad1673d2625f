"""Where clips come from: each source turns a clip job into a clip file or a classified failure.

``archive/`` reads clips from local archives (folders of clips, HDF5 packs, Parquet mirrors).
The YouTube source still lives in ``fetch/``; both move behind one ``Source`` seam later.
"""
