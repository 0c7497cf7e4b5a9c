"""Crash-safe file writes: every file poisonkit writes goes through a temporary name
beside its destination, then an atomic rename, so a reader never sees half a file."""
from __future__ import annotations

import json
import os
from pathlib import Path


def atomic_write(path: str | os.PathLike, write) -> Path:
    """write(tmp_path) fills a temporary file beside path, which then replaces path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | os.PathLike, obj) -> Path:
    text = json.dumps(obj, indent=1) + "\n"  # serialise first: a bad object writes nothing
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))
