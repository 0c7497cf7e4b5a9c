"""Prints the fuzz tally (tally.py) at the end of the run and writes it as JSON to
$POISONKIT_FUZZ_TALLY (default: fuzz-tally.json in the system temp folder)."""
from __future__ import annotations

import os
import tempfile

from .tally import TALLY


def pytest_terminal_summary(terminalreporter):
    if not TALLY.by_op:
        return
    path = os.environ.get("POISONKIT_FUZZ_TALLY",
                          os.path.join(tempfile.gettempdir(), "fuzz-tally.json"))
    TALLY.write_json(path)
    terminalreporter.section("fuzz tally (generated inputs per op)")
    for line in TALLY.lines():
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"written to {path}")
