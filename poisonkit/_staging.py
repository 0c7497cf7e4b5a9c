"""Writing a whole folder (a poisoned export) so that a reader sees it absent or complete:
the run holds a lock on the destination, fills a staging folder whose name belongs to this
run only, and renames it into place.

Names beside the destination DEST (all hidden):
  .DEST.lock                    the lock (flock); holds the owner's pid and run token
  .DEST.<pid>.<token>.partial   a run's staging folder
  .DEST.<pid>.<token>.old       the previous copy, moved aside while the new one moves in

Cleanup only touches names of exactly this pattern for this DEST (`.race.*` globbing once
deleted the live staging of `.race.v2`), and only those whose owner pid is dead (or is
this process, whose earlier runs are over since it holds the lock). A previous copy left
aside by a run killed mid-publish is moved back, so no kill loses the published data.
"""
from __future__ import annotations

import errno
import fcntl
import os
import re
import secrets
import shutil
from pathlib import Path


class DestinationBusy(RuntimeError):
    """Another live run holds the destination's lock."""


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class DestinationLock:
    """An exclusive, non-blocking flock on `.DEST.lock`, released (and the file removed) on
    exit. A second run to the same destination fails at once, naming the holder."""

    def __init__(self, dest: Path, token: str):
        self.dest, self.token = dest, token
        self.path = dest.with_name(f".{dest.name}.lock")
        self.fd: int | None = None

    def __enter__(self) -> "DestinationLock":
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise DestinationBusy(f"out: another run is writing {self.dest} (lock "
                                          f"{self.path}: pid/run {holder}); wait for it to "
                                          "finish or choose another --out") from None
                raise
            # The holder before us may have removed the file after we opened it: a lock on
            # an unlinked file guards nothing, so retry on the file now at the path.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {self.token}\n".encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        # Unlink while still holding the lock; a waiter that opened the old file retries.
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = None


def _leftover_pattern(dest: Path) -> re.Pattern:
    return re.compile(rf"\.{re.escape(dest.name)}\.(\d+)\.([0-9a-f]{{16}})\.(partial|old)")


def stale_leftovers(dest: Path, token: str) -> list[Path]:
    """This destination's staging / set-aside folders whose run is over: owner pid dead, or
    this process (an earlier run of it; the caller holds the lock)."""
    pattern, found = _leftover_pattern(dest), []
    if not dest.parent.is_dir():
        return found
    for entry in dest.parent.iterdir():
        match = pattern.fullmatch(entry.name)
        if not match or match.group(2) == token:
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or not pid_alive(pid):
            found.append(entry)
    return found


class Staging:
    """with Staging(dest) as stage: fill stage.path, then stage.publish().

    Holds the destination lock for the whole block, clears this destination's stale
    leftovers first (restoring a previous copy a killed publish left aside), and removes
    its own staging folder on any exception (KeyboardInterrupt included)."""

    def __init__(self, dest: str | os.PathLike):
        self.dest = Path(dest)
        self.token = secrets.token_hex(8)
        tag = f".{self.dest.name}.{os.getpid()}.{self.token}"
        self.path = self.dest.with_name(f"{tag}.partial")
        self.old = self.dest.with_name(f"{tag}.old")
        self.lock = DestinationLock(self.dest, self.token)

    def __enter__(self) -> "Staging":
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self.lock.__enter__()
        try:
            self._clear_stale()
            self.path.mkdir()
        except BaseException:
            self.lock.__exit__(None, None, None)
            raise
        return self

    def _clear_stale(self) -> None:
        leftovers = stale_leftovers(self.dest, self.token)
        aside = [p for p in leftovers if p.name.endswith(".old")]
        if aside and not self.dest.exists():  # killed between the two renames of publish
            aside[0].rename(self.dest)
        for leftover in leftovers:
            shutil.rmtree(leftover, ignore_errors=True)

    def publish(self) -> None:
        """Moves the staging folder into place; a previous copy is moved aside first and
        removed only after the new one is in place."""
        replaced = self.dest.exists()
        if replaced:
            self.dest.rename(self.old)
        self.path.rename(self.dest)
        if replaced:
            shutil.rmtree(self.old, ignore_errors=True)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is not None:
                shutil.rmtree(self.path, ignore_errors=True)
        finally:
            self.lock.__exit__(None, None, None)
