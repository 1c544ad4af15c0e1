"""Whether a frame's trace is complete: the one definition the analyzer, the canary and the
load test share.

A complete trace has one root, `capture_frame`; a span for each of buffer, process and store
(`run/detektr.<stage>`, as the Celery instrumentation names a task's run); every parent
present (no orphans); and `frame.id` on every stage span. A frame shed at the camera never
entered the pipeline: its capture span alone is complete.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

STAGES = ("buffer", "process", "store")
ROOT_SPAN = "capture_frame"


def stage_span_name(stage: str) -> str:
    return f"run/detektr.{stage}"


STAGE_OF_SPAN = {stage_span_name(stage): stage for stage in STAGES}


class Span(Protocol):
    """What the check needs of a span: JaegerSpan and the test receiver's spans have it."""

    @property
    def span_id(self) -> str: ...
    @property
    def parent_span_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def attributes(self) -> Mapping[str, object]: ...


@dataclass(frozen=True)
class Verdict:
    complete: bool
    missing_stages: tuple[str, ...] = ()
    orphans: tuple[str, ...] = ()  # names of spans whose parent is not in the trace
    problems: tuple[str, ...] = field(default=())  # every reason it is not complete

    def describe(self) -> str:
        return "complete" if self.complete else "; ".join(self.problems)


def judge(
    spans: Iterable[Span], *, frame_id: str, shed_at_camera: bool = False, external_parent: str = ""
) -> Verdict:
    """Judge one frame's trace. `external_parent`: a span id outside the pipeline that the
    root may hang from (a canary sent with --traceparent)."""
    spans = list(spans)
    if not spans:
        return Verdict(False, STAGES, (), ("no spans",))
    ids = {span.span_id for span in spans}
    problems: list[str] = []
    roots = [s for s in spans if not s.parent_span_id or s.parent_span_id == external_parent]
    orphans = tuple(
        sorted(
            s.name
            for s in spans
            if s.parent_span_id
            and s.parent_span_id not in ids
            and s.parent_span_id != external_parent
        )  # fmt: skip
    )
    if [root.name for root in roots] != [ROOT_SPAN]:
        names = ", ".join(sorted(root.name for root in roots)) or "none"
        problems.append(f"roots: {names} (want one {ROOT_SPAN})")
    if orphans:
        problems.append(f"orphan spans: {', '.join(orphans)}")
    present = {STAGE_OF_SPAN[s.name] for s in spans if s.name in STAGE_OF_SPAN}
    missing = () if shed_at_camera else tuple(s for s in STAGES if s not in present)
    if missing:
        problems.append(f"missing stages: {', '.join(missing)}")
    for span in spans:
        if span.name in STAGE_OF_SPAN and span.attributes.get("frame.id") != frame_id:
            problems.append(f"{span.name} lacks frame.id {frame_id}")
    return Verdict(not problems, missing, orphans, tuple(problems))


def shed_at_camera(status: str, stage: str) -> bool:
    """A frame dropped by capture itself: its chain was never sent."""
    return status == "dropped" and stage == "capture"
