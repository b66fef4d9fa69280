"""Re-hash stored objects; report and quarantine the ones that do not match."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pydantic import BaseModel, ConfigDict

from lepton.errors import NotFound
from lepton.store.objects import ObjectStore


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True)
    key: str
    problem: str  # "corrupt" | "missing"
    actual: str | None = None
    quarantined_to: str | None = None


class VerifyReport(BaseModel):
    model_config = ConfigDict(frozen=True)
    checked: int
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not self.findings


def verify_objects(
    store: ObjectStore, keys: Iterable[str], progress: Callable[[int], None] | None = None
) -> VerifyReport:
    findings = []
    checked = 0
    for key in dict.fromkeys(keys):
        checked += 1
        try:
            actual = store.verify(key)
        except NotFound:
            findings.append(Finding(key=key, problem="missing"))
            continue
        if actual != key:
            dest = store.quarantine(key)
            findings.append(Finding(key=key, problem="corrupt", actual=actual, quarantined_to=dest))
        if progress:
            progress(1)
    return VerifyReport(checked=checked, findings=tuple(findings))
