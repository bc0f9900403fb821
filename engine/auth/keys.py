"""Secret keys: from the environment, or generated once and kept in the data folder (mode 600)."""
from __future__ import annotations

import os
import secrets
from pathlib import Path


def load_or_create(data_dir: Path, name: str, from_env: str = "") -> str:
    """`from_env` when set; else the key in `<data_dir>/<name>`, created with 0600 on first use. Never logged."""
    if from_env:
        return from_env
    path = Path(data_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text().strip()
        if len(key) < 32:
            raise RuntimeError(f"{path} holds no usable key; delete it to generate a new one")
        return key
    key = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key
