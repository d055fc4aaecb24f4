"""quilt3 reads its data and cache folders when first imported: keep them out of the user's home."""

from __future__ import annotations

import os
import tempfile

_scratch = tempfile.mkdtemp(prefix="omics-edp-quilt3-")
os.environ.setdefault("XDG_DATA_HOME", os.path.join(_scratch, "data"))
os.environ.setdefault("XDG_CACHE_HOME", os.path.join(_scratch, "cache"))
