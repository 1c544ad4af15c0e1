"""process: decode the frame and run the configured processors on it."""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from detektr_project.celery import app
from frame_tracking import DropReason, FailReason, FrameMetadata, Stage
from tasks import frame_bytes
from tasks.processors import BaseProcessor, ProcessorError
from tasks.stage import Message, run_stage


def processor_classes() -> tuple[type[BaseProcessor], ...]:
    """FRAME_PROCESSORS, imported. A worker that serves the process queue calls this as it
    starts (detektr_project/worker_signals.py), so a bad entry stops it there."""
    return tuple(processor_class(path) for path in settings.FRAME_PROCESSORS)


def processor_class(path: str) -> type[BaseProcessor]:
    try:
        found = import_string(path)
    except Exception as exc:  # a missing module or class, or a module that fails to import
        raise ImproperlyConfigured(
            f"FRAME_PROCESSORS: {path!r} cannot be imported: {type(exc).__name__}: {exc}"
        ) from exc
    if not (isinstance(found, type) and issubclass(found, BaseProcessor)):
        kind = "class" if isinstance(found, type) else type(found).__name__
        raise ImproperlyConfigured(
            f"FRAME_PROCESSORS: {path!r} is a {kind}, not a processor "
            f"(a subclass of tasks.processors.BaseProcessor)"
        )
    return found


@cache
def processors() -> tuple[BaseProcessor, ...]:
    """The processors of this process, made at its first frame (in each pool process: a
    processor may hold what does not survive fork) or, in a solo or threads worker, at start."""
    return tuple(made(processor) for processor in processor_classes())


def made(processor: type[BaseProcessor]) -> BaseProcessor:
    try:
        return processor()
    except Exception as exc:  # its model file is missing…
        path = f"{processor.__module__}.{processor.__qualname__}"
        raise ImproperlyConfigured(
            f"FRAME_PROCESSORS: {path!r} cannot be made: {type(exc).__name__}: {exc}"
        ) from exc


def decode_flag() -> int:
    """The processors' common decode (BaseProcessor.decode), else full colour."""
    wanted = {processor.decode for processor in processors()}
    return wanted.pop() if len(wanted) == 1 else cv2.IMREAD_COLOR


def error_of(exc: Exception) -> str:
    """ProcessorError already reads "Type: message" of what the processor raised."""
    return str(exc) if isinstance(exc, ProcessorError) else f"{type(exc).__name__}: {exc}"


def analyse(meta: FrameMetadata) -> None:
    # Whatever goes wrong with a processor ends the frame as failed, the error in its row;
    # a failed task instead would leave the frame to expire, unexplained.
    try:
        loaded = processors()
    except ImproperlyConfigured as exc:  # prefork: a pool process makes them at its 1st frame
        meta.fail(Stage.PROCESS, FailReason.PROCESSOR_ERROR, str(exc))
        return
    data = frame_bytes.load(meta.frame_id)
    if data is None:
        meta.drop(Stage.PROCESS, DropReason.MISSING_BYTES, "frame bytes expired before processing")
        return
    image = cv2.imdecode(np.frombuffer(data, np.uint8), decode_flag())
    if image is None:
        detail = f"{len(data)} bytes do not decode as an image"
        meta.fail(Stage.PROCESS, FailReason.CORRUPT_FRAME, detail)
        return
    run_processors(loaded, image, meta)


def run_processors(
    loaded: tuple[BaseProcessor, ...], image: np.ndarray, meta: FrameMetadata
) -> None:
    """Each processor's result, or its error; one that fails leaves the others' results."""
    errors = []
    for processor in loaded:
        try:
            meta.results[processor.name] = processor(image, meta)
        except Exception as exc:  # ProcessorError, or from a processor with its own __call__
            meta.results[processor.name] = {"error": error_of(exc)}
            errors.append(f"{processor.name}: {error_of(exc)}")
    if errors:
        meta.fail(Stage.PROCESS, FailReason.PROCESSOR_ERROR, "; ".join(errors))


@app.task(
    name="detektr.process",
    autoretry_for=frame_bytes.REDIS_DOWN,
    **frame_bytes.RETRY_POLICY,
)
def process(payload: Message) -> Message:
    return run_stage(Stage.PROCESS, payload, analyse)
