"""A deep, fresh fuzz run of tests/hardening (CI runs 80 derandomized examples per test):
`python -m benchmarks.fuzz_run --examples 10000` runs each tests/hardening/test_fuzz_*.py with
POISONKIT_FUZZ_RANDOM=1 and POISONKIT_FUZZ_EXAMPLES, and writes (after each file) the per-op tally (inputs
tried, results returned, documented errors by type) and every failing test with its
falsifying example to benchmarks/results/fuzz.json and fuzz.md.

A failing test stops after hypothesis shrinks its first failure, so its op's count is the
inputs tried up to then, not --examples."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def failures(junit: Path) -> list[dict]:
    out = []
    for case in ET.parse(junit).iter("testcase"):
        for bad in list(case.findall("failure")) + list(case.findall("error")):
            text = bad.text or ""
            at = max(text.find("Falsifying example"), text.find("Failing test case"))
            out.append({"test": f"{case.get('classname')}::{case.get('name')}",
                        "message": (bad.get("message") or "")[:500],
                        "falsifying_example": text[at:at + 1500] if at >= 0 else ""})
    return out


def markdown(record: dict) -> str:
    lines = [f"# Fuzz run: {record['examples']} generated inputs per test, random seed",
             "", f"`{record['command']}`, {record['seconds']:.0f} s on {record['machine']}; "
             f"pytest exit status {record['exit_status']}.", "",
             "| op | inputs | returned | documented errors |", "|---|---|---|---|"]
    for op, c in record["tally"].items():
        errors = {k: v for k, v in c.items() if k not in ("inputs", "returned")}
        text = ", ".join(f"{v} {k}" for k, v in sorted(errors.items())) or "none"
        lines.append(f"| {op} | {c.get('inputs', 0)} | {c.get('returned', 0)} | {text} |")
    lines += ["", f"Failing tests: {len(record['failures'])}", ""]
    for f in record["failures"]:
        lines += [f"- `{f['test']}`: {f['message'].splitlines()[0] if f['message'] else ''}",
                  "", "```", f["falsifying_example"] or "(no example printed)", "```", ""]
    return "\n".join(lines) + "\n"


def run_file(test_file: Path, examples: int, tmp: Path) -> tuple[int, dict, list]:
    """pytest on one fuzz file: (exit status, tally, failures). One process per file, so a
    run stopped part way keeps the files already done."""
    tally, junit = tmp / f"{test_file.stem}.tally.json", tmp / f"{test_file.stem}.xml"
    env = {**os.environ, "POISONKIT_FUZZ_RANDOM": "1", "POISONKIT_FUZZ_EXAMPLES": str(examples),
           "POISONKIT_FUZZ_TALLY": str(tally)}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
           str(test_file.relative_to(ROOT)), f"--junitxml={junit}"]
    status = subprocess.call(cmd, cwd=ROOT, env=env)
    return (status, json.loads(tally.read_text()) if tally.exists() else {},
            failures(junit) if junit.exists() else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=10000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--only", default=None, help="comma-separated fuzz file stems")
    args = parser.parse_args()
    files = sorted((ROOT / "tests" / "hardening").glob("test_fuzz_*.py"))
    if args.only:
        files = [f for f in files if f.stem in args.only.split(",")]
    record = {"examples": args.examples, "exit_status": 0, "seconds": 0.0,
              "machine": f"{os.cpu_count()} CPUs, shared with other jobs",
              "command": f"POISONKIT_FUZZ_RANDOM=1 POISONKIT_FUZZ_EXAMPLES={args.examples} "
                         "pytest tests/hardening/test_fuzz_*.py (one process per file)",
              "tally": {}, "failures": []}
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for test_file in files:
            status, tally, failed = run_file(test_file, args.examples, Path(tmp))
            record["exit_status"] = max(record["exit_status"], status)
            record["tally"].update(tally)
            record["failures"] += failed
            record["seconds"] = time.time() - start
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "fuzz.json").write_text(json.dumps(record, indent=1) + "\n")
            (args.out / "fuzz.md").write_text(markdown(record))
    print(markdown(record))


if __name__ == "__main__":
    main()
