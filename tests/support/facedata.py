"""Where the face evaluation data lives, and what a test does when it is absent.

The data (`../shared/facedata` on the development machines, or `FACEDATA_DIR`) is not in the
repository: its licences forbid redistribution. Tests that need it skip with the reason when it is
missing, except where `ZHILIAN_REQUIRE_FACEDATA=1` (CI) makes its absence a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backend.face.dataset import default_data_dir

FACEDATA = default_data_dir()


def require_facedata() -> Path:
    """The data folder; skips (or, in CI, fails) the calling test when it is missing."""
    if not (FACEDATA / "MANIFEST.csv").is_file():
        reason = f"face evaluation data not found at {FACEDATA} (set FACEDATA_DIR; see README)"
        if os.environ.get("ZHILIAN_REQUIRE_FACEDATA") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return FACEDATA
