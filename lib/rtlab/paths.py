"""Where rtlab finds its bundled data (clips, manifest, provider profiles, price table)."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent.parent


def data_dir() -> Path:
    """``$RTLAB_DATA`` when set, else the repository's ``data/`` folder."""
    env = os.environ.get("RTLAB_DATA")
    return Path(env) if env else REPO_DIR / "data"
