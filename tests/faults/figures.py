"""One row of figures per scenario, printed as a table at the end of the run."""

import os
from dataclasses import dataclass
from pathlib import Path

from tests.faults.checker import Verdict

# Kill scenarios repeat their fault this many times (`make faults REPEAT=n`).
REPEAT = int(os.environ.get("FAULT_REPEAT", "20"))

COLUMNS = (
    "scenario",
    "jobs",
    "lost",
    "dup exec",
    "dup effect",
    "API p99 in fault",
    "time to redelivery",
    "time to drain",
    "notes",
)


@dataclass(frozen=True)
class Row:
    scenario: str
    jobs: int
    lost: int
    dup_exec: int
    dup_effect: int
    api_p99: float | None = None
    redelivery: float | None = None
    drain: float | None = None
    notes: str = ""

    def cells(self) -> list[str]:
        return [
            self.scenario,
            str(self.jobs),
            str(self.lost),
            str(self.dup_exec),
            str(self.dup_effect),
            _milliseconds(self.api_p99),
            _seconds(self.redelivery),
            _seconds(self.drain),
            self.notes,
        ]


ROWS: list[Row] = []


def add_row(
    scenario: str,
    verdict: Verdict,
    *,
    api_p99: float | None = None,
    redelivery: float | None = None,
    drain: float | None = None,
    notes: str = "",
) -> None:
    ROWS.append(
        Row(
            scenario,
            verdict.jobs,
            len(verdict.lost),
            verdict.dup_exec,
            verdict.dup_effect,
            api_p99,
            redelivery,
            drain,
            notes,
        )
    )


def markdown_table(rows: list[Row]) -> list[str]:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    return lines + ["| " + " | ".join(row.cells()) + " |" for row in rows]


def write_table(rows: list[Row]) -> None:
    """Also keep the table in a file when FAULT_TABLE names one (make faults does)."""
    path = os.environ.get("FAULT_TABLE")
    if path and rows:
        Path(path).write_text("\n".join(markdown_table(rows)) + "\n")


def _milliseconds(value: float | None) -> str:
    return "–" if value is None else f"{value * 1000:.0f} ms"


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} s"


# Free-form figures of a test, printed beside the table.
FIGURES: list[str] = []


def report(name: str, **figures: object) -> None:
    """Keep a test's figures for the summary printed at the end of the run."""
    FIGURES.append(f"{name}: " + ", ".join(f"{key}={value}" for key, value in figures.items()))
