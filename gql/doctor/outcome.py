"""What a check found."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    """Works, but probably not as intended; does not fail the run."""
    FAIL = "fail"


@dataclass(frozen=True)
class Outcome:
    status: Status
    detail: str

    @classmethod
    def passed(cls, detail: str) -> Outcome:
        return cls(Status.PASS, detail)

    @classmethod
    def warned(cls, detail: str) -> Outcome:
        return cls(Status.WARN, detail)

    @classmethod
    def failed(cls, detail: str) -> Outcome:
        return cls(Status.FAIL, detail)


@dataclass(frozen=True)
class CheckResult:
    name: str
    outcome: Outcome

    @property
    def failed(self) -> bool:
        return self.outcome.status is Status.FAIL
