"""Whether a frame's trace is complete: the one definition the analyzer, the canary and the
load test share.

A complete trace has one root, `capture_frame`; a span for each of buffer, process and store
(`run/detektr.<stage>`, as the Celery instrumentation names a task's run); every parent
present (no orphans); and `frame.id` on every stage span. A frame shed at the camera never
entered the pipeline: its capture span alone is complete.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol, TypedDict

from frame_tracking.jaeger import JaegerError

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


class FrameRef(TypedDict):
    """What the check needs of a frame's row (a subset of the /frames API's frame)."""

    frame_id: str
    camera_id: str
    trace_id: str
    status: str
    stage: str
    sampled: bool


# trace id -> its spans; None: the backend has no such trace; JaegerError: it could not say.
FetchTrace = Callable[[str], Sequence[Span] | None]
# frame -> the spans carrying its frame.id in traces other than its own (a split), if any.
FindElsewhere = Callable[[FrameRef], Sequence[Span]]

EXAMPLES = 5  # frame ids kept per kind of problem


@dataclass
class FrameCheck:
    frame: FrameRef
    verdict: Verdict | None  # None: the backend could not be asked (see error)
    error: str = ""
    error_kind: str = ""
    missing_from_backend: bool = False
    split: bool = False


@dataclass
class CompletenessReport:
    frames: int = 0  # frames in the window
    not_sampled: int = 0  # not exported: nothing to check
    checked: int = 0  # sampled frames whose trace the backend answered for
    complete: int = 0
    missing_from_backend: int = 0  # sampled, but the backend has no trace at all
    missing_stage: Counter[str] = field(default_factory=Counter)  # stage -> frames lacking it
    orphan_spans: int = 0
    frames_with_orphans: int = 0
    split: int = 0  # frames whose stages went on in another trace
    unreadable: int = 0  # the backend failed to answer (errors holds why)
    errors: Counter[str] = field(default_factory=Counter)  # "kind: message" -> frames
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def complete_pct(self) -> float | None:
        return round(100 * self.complete / self.checked, 3) if self.checked else None

    def to_dict(self) -> dict[str, object]:
        # Not dataclasses.asdict: it rebuilds a Counter from (key, value) pairs as keys.
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}
        plain = {k: dict(v) if isinstance(v, dict) else v for k, v in fields.items()}
        return {**plain, "complete_pct": self.complete_pct}

    def add(self, check: FrameCheck) -> None:
        self.frames += 1
        frame_id = check.frame["frame_id"]
        if not check.frame["sampled"]:
            self.not_sampled += 1
            return
        if check.verdict is None:
            self.unreadable += 1
            self.errors[f"{check.error_kind}: {check.error}"] += 1
            self._example("unreadable", frame_id)
            return
        self.checked += 1
        verdict = check.verdict
        if verdict.complete:
            self.complete += 1
            return
        self._example("incomplete", frame_id)
        if check.missing_from_backend:
            self.missing_from_backend += 1
            self._example("missing from the trace backend", frame_id)
            return
        for stage in verdict.missing_stages:
            self.missing_stage[stage] += 1
            self._example(f"missing {stage}", frame_id)
        if verdict.orphans:
            self.orphan_spans += len(verdict.orphans)
            self.frames_with_orphans += 1
            self._example("orphan spans", frame_id)
        if check.split:
            self.split += 1
            self._example("split in two", frame_id)

    def _example(self, kind: str, frame_id: str) -> None:
        examples = self.examples.setdefault(kind, [])
        if len(examples) < EXAMPLES:
            examples.append(frame_id)


def check_frame(
    frame: FrameRef, fetch: FetchTrace, find_elsewhere: FindElsewhere | None = None
) -> FrameCheck:
    """Fetch one sampled frame's trace and judge it; a backend failure is kept, not raised."""
    if not frame["sampled"]:
        return FrameCheck(frame, None)
    shed = shed_at_camera(frame["status"], frame["stage"])
    try:
        spans = fetch(frame["trace_id"])
    except JaegerError as exc:
        return FrameCheck(frame, None, _untraced(exc, frame), exc.kind)
    if spans is None:
        verdict = Verdict(False, () if shed else STAGES, (), ("not in the trace backend",))
        return FrameCheck(frame, verdict, missing_from_backend=True)
    verdict = judge(spans, frame_id=frame["frame_id"], shed_at_camera=shed)
    split = False
    if verdict.missing_stages and find_elsewhere is not None:
        try:
            elsewhere = find_elsewhere(frame)
        except JaegerError as exc:
            return FrameCheck(frame, verdict, f"looking for the rest: {_untraced(exc, frame)}",
                              exc.kind)  # fmt: skip
        found = {STAGE_OF_SPAN[s.name] for s in elsewhere if s.name in STAGE_OF_SPAN}
        split = bool(found & set(verdict.missing_stages))
    return FrameCheck(frame, verdict, split=split)


def _untraced(error: JaegerError, frame: FrameRef) -> str:
    """The error without the frame's trace id (its URL names it): the same failure for every
    frame is one line of a report's errors, not one line a frame."""
    return str(error).replace(frame["trace_id"].lower(), "<trace id>")


def check_frames(
    frames: Iterable[FrameRef],
    fetch: FetchTrace,
    *,
    find_elsewhere: FindElsewhere | None = None,
    concurrency: int = 8,
) -> Iterator[FrameCheck]:
    """check_frame for each frame, `concurrency` at a time, in the frames' order."""
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        yield from pool.map(lambda frame: check_frame(frame, fetch, find_elsewhere), frames)
