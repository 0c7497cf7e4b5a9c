"""Crash-safe file writes: every file poisonkit writes goes through a temporary name
beside its destination, then an atomic rename, so a reader never sees half a file; and the
matching reads of torch.save dicts, refusing anything else with a clear error."""
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


def save_dict(path: str | os.PathLike, payload: dict) -> Path:
    """torch.save of a dict of plain tensors and values (loadable with weights_only=True),
    through a temporary name."""
    import torch
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_dict(path: str | os.PathLike, argument: str, what: str) -> dict:
    """The dict save_dict wrote at path, on the CPU; FileNotFoundError or ValueError naming
    the argument and `what` the file should have held otherwise."""
    import torch
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{argument}: no such {what} file {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for non-torch files
        raise ValueError(f"{argument}: {path} is not a saved {what} ({e})") from e
    if not isinstance(payload, dict):
        raise ValueError(f"{argument}: {path} is not a saved {what}")
    return payload
