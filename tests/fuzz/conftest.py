"""The fuzz corpus' tally: every generated case's outcome, printed as one summary line after the run."""

from __future__ import annotations

from collections import Counter

import pytest

#: (input kind, outcome) -> cases; outcome is "exit 0", "exit 2" or "exit 3", or a failure ("traceback", "hung",
#: "not one line", "numpy repr", "partial output", "changed an input", "exit N"), which also fails its test.
OUTCOMES: Counter = Counter()


@pytest.fixture(scope="session")
def outcomes() -> Counter:
    return OUTCOMES


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001 -- pytest's hook signature
    if not OUTCOMES:
        return
    total = Counter()
    for (_, outcome), n in OUTCOMES.items():
        total[outcome] += n
    kinds = Counter()
    for (kind, _), n in OUTCOMES.items():
        kinds[kind] += n
    terminalreporter.write_line(
        f"fuzz: {sum(total.values())} generated cases, " + ", ".join(f"{k}: {total[k]}" for k in sorted(total))
        + " (by input: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) + f"); tracebacks: "
        f"{total['traceback']}")
