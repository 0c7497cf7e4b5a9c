"""Checks on an output path before any work: it must not be (or sit inside, or contain)
an input, must be writable, and must not replace an existing file or a non-empty folder
unless the user said so (--force). Long jobs run these first, so a bad --out is found
before minutes of poisoning or training, not after."""
from __future__ import annotations

import os
from pathlib import Path


def _overlaps(a: Path, b: Path) -> bool:
    """a and b are the same path, or one contains the other."""
    return a == b or a in b.parents or b in a.parents


def _writable_ancestor(path: Path) -> None:
    """Raises unless the nearest existing ancestor of path is a writable folder."""
    probe = path.parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise PermissionError(f"out: cannot create {path}: {probe} is not a writable folder")


def check_inputs_apart(out: Path, inputs, what: str = "out") -> None:
    """Raises when out is, contains or sits inside one of inputs (all resolved)."""
    for source in inputs:
        source = Path(source).resolve()
        same_file = out.exists() and source.exists() and os.path.samefile(out, source)
        if same_file or _overlaps(out, source):
            raise ValueError(f"{what}: {out} would overwrite, contain or sit inside the input "
                             f"{source}; refusing")


def check_output_file(out, inputs=(), force: bool = False) -> Path:
    """A file output (a fitted projection): never an input, an existing file only with
    force, never a folder."""
    out = Path(out).resolve()
    check_inputs_apart(out, inputs)
    if out.is_dir():
        raise IsADirectoryError(f"out: {out} is a folder; expected a file name")
    if out.exists() and not force:
        raise FileExistsError(f"out: {out} exists; pass --force to replace it")
    _writable_ancestor(out)
    if out.exists() and not os.access(out, os.W_OK):
        raise PermissionError(f"out: {out} is not writable")
    return out


def check_output_folder(out, inputs=(), force: bool = False, reuse: bool = False) -> Path:
    """A folder output written file by file (eval reports): never an input, never an
    existing file; a non-empty folder only with force (or reuse: --resume)."""
    out = Path(out).resolve()
    check_inputs_apart(out, inputs)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"out: {out} is an existing file; expected a folder")
    if out.is_dir():
        if any(out.iterdir()) and not (force or reuse):
            raise FileExistsError(f"out: {out} is not empty; pass --force to write over its "
                                  "files (or --resume to reuse finished runs)")
        if not os.access(out, os.W_OK | os.X_OK):
            raise PermissionError(f"out: {out} is not writable")
    else:
        _writable_ancestor(out)
    return out
