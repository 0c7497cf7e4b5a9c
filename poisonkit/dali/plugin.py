"""Finding, checking and loading the DALI plugin (libpoisonkit_dali.so)."""
from __future__ import annotations

import os
import re
from pathlib import Path

# The DALI wheel pinned in requirements.txt; a plugin is only valid for the DALI version it
# was compiled against.
DALI_VERSION = "2.4.0"
PLUGIN_ENV = "POISONKIT_DALI_PLUGIN"
PLUGIN_NAME = "libpoisonkit_dali.so"
# Where the wheel build (setup.py's build_ext) puts the plugin: inside the package.
PACKAGED_PLUGIN = Path(__file__).resolve().parent / "lib" / PLUGIN_NAME
# A source checkout: `make dali` builds into <checkout>/build/dali.
_CHECKOUT = Path(__file__).resolve().parents[2]
_BUILT_FOR = re.compile(rb"poisonkit-dali-built-for:([0-9A-Za-z.+_-]+)\x00")
_loaded: Path | None = None


def plugin_candidates() -> list[Path]:
    """The places looked at, in order: $POISONKIT_DALI_PLUGIN alone when set; else the copy
    inside the installed package, then a source checkout's build/dali."""
    env = os.environ.get(PLUGIN_ENV)
    if env:
        return [Path(env)]
    candidates = [PACKAGED_PLUGIN]
    if (_CHECKOUT / "CMakeLists.txt").is_file():
        candidates.append(_CHECKOUT / "build" / "dali" / PLUGIN_NAME)
    return candidates


def plugin_path() -> Path:
    """The plugin that load() uses: the first candidate that exists (else the first one)."""
    candidates = plugin_candidates()
    return next((p for p in candidates if p.is_file()), candidates[0])


def plugin_dali_version(path: str | os.PathLike) -> str:
    """The DALI version a plugin file was compiled against (read without loading it)."""
    match = _BUILT_FOR.search(Path(path).read_bytes())
    if match is None:
        raise RuntimeError(f"poisonkit.dali: {path} is not a poisonkit DALI plugin "
                           "(no version marker)")
    return match.group(1).decode()


def load(path: str | os.PathLike | None = None) -> Path:
    """Loads the plugin (once per path) and returns its path.

    Raises ImportError when DALI is not installed, FileNotFoundError when the plugin is not
    found, RuntimeError when DALI or the plugin is not the pinned version.
    """
    global _loaded
    looked_at = [Path(path)] if path is not None else plugin_candidates()
    path = Path(path) if path is not None else plugin_path()
    if _loaded == path:
        return path
    try:
        import nvidia.dali as dali
        from nvidia.dali import plugin_manager
    except ImportError as e:
        raise ImportError(f"poisonkit.dali needs NVIDIA DALI {DALI_VERSION}: "
                          f"pip install 'poisonkit[dali]' (nvidia-dali-cuda130=={DALI_VERSION})"
                          ) from e
    if dali.__version__ != DALI_VERSION:
        raise RuntimeError(f"poisonkit.dali: DALI {dali.__version__} is installed but poisonkit "
                           f"pins {DALI_VERSION}: pip install nvidia-dali-cuda130=={DALI_VERSION}")
    if not path.is_file():
        raise FileNotFoundError(
            f"poisonkit.dali: DALI plugin not found (looked at {', '.join(map(str, looked_at))}): "
            f"install poisonkit from a wheel built with DALI present, run `make dali` in a "
            f"source checkout, or set ${PLUGIN_ENV}")
    built_for = plugin_dali_version(path)
    if built_for != dali.__version__:
        raise RuntimeError(f"poisonkit.dali: {path} was built for DALI {built_for}, but DALI "
                           f"{dali.__version__} is installed: rebuild it with `make dali`")
    plugin_manager.load_library(str(path))
    _loaded = path
    return path
