"""A hypothesis-independent count of what the fuzz tests fed each op: inputs tried, inputs
the op returned a result for, and errors raised by exception type. Anything other than a
result or a documented error (RuntimeError / ValueError / TypeError naming the argument)
fails the test; a crash would end the run, so a finished run with this tally is the
"0 crashes" figure."""
from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from typing import Callable, Iterable

DOCUMENTED = (RuntimeError, ValueError, TypeError)


class Tally:
    def __init__(self):
        self.by_op: dict[str, Counter] = defaultdict(Counter)

    def record(self, op: str, outcome: str) -> None:
        self.by_op[op]["inputs"] += 1
        self.by_op[op][outcome] += 1

    def as_dict(self) -> dict:
        return {op: dict(sorted(c.items())) for op, c in sorted(self.by_op.items())}

    def write_json(self, path) -> None:
        with open(path, "w") as f:
            json.dump(self.as_dict(), f, indent=2)

    def lines(self) -> list[str]:
        out = [f"{'op':28s} {'inputs':>7s} {'returned':>8s}  errors"]
        for op, c in sorted(self.by_op.items()):
            errors = {k: v for k, v in c.items() if k not in ("inputs", "returned")}
            text = ", ".join(f"{v} {k}" for k, v in sorted(errors.items())) or "none"
            out.append(f"{op:28s} {c['inputs']:7d} {c['returned']:8d}  {text}")
        return out


TALLY = Tally()


def _names_one_of(message: str, names: Iterable[str]) -> bool:
    return any(re.search(rf"(?<![A-Za-z0-9_]){re.escape(n)}(?![A-Za-z0-9_])", message, re.I)
               for n in names)


def check_call(op: str, call: Callable, problems: Iterable[str], compare: Callable | None = None):
    """Runs call() once and checks it against the documented contract.

    problems: the argument names the documented rules find wrong with this input (empty:
    a valid input). A valid input must return, and compare(result) checks the answer
    against the reference; an invalid one must raise a documented exception whose message
    names one of the problems. Returns the result, or None after an error.
    """
    problems = list(problems)
    try:
        out = call()
    except DOCUMENTED as err:
        TALLY.record(op, type(err).__name__)
        assert problems, f"{op} refused a valid input: {type(err).__name__}: {err}"
        assert _names_one_of(str(err), problems), (
            f"{op}: error does not name any of {problems}: {type(err).__name__}: {err}")
        return None
    except BaseException as err:
        TALLY.record(op, f"undocumented {type(err).__name__}")
        raise
    TALLY.record(op, "returned")
    assert not problems, f"{op} accepted an input with {problems} wrong and returned a result"
    if compare is not None:
        compare(out)
    return out
