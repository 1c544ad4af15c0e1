"""process: decode the frame and run the configured processors on it."""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np
from django.conf import settings
from django.utils.module_loading import import_string

from detektr_project.celery import app
from frame_tracking import DropReason, FailReason, FrameMetadata, Stage
from tasks import frame_bytes
from tasks.processors import BaseProcessor, ProcessorError
from tasks.stage import Message, run_stage


@cache
def processors() -> tuple[BaseProcessor, ...]:
    return tuple(import_string(path)() for path in settings.FRAME_PROCESSORS)


def decode_flag() -> int:
    """The processors' common decode (BaseProcessor.decode), else full colour."""
    wanted = {processor.decode for processor in processors()}
    return wanted.pop() if len(wanted) == 1 else cv2.IMREAD_COLOR


def analyse(meta: FrameMetadata) -> None:
    data = frame_bytes.load(meta.frame_id)
    if data is None:
        meta.drop(Stage.PROCESS, DropReason.MISSING_BYTES, "frame bytes expired before processing")
        return
    image = cv2.imdecode(np.frombuffer(data, np.uint8), decode_flag())
    if image is None:
        detail = f"{len(data)} bytes do not decode as an image"
        meta.fail(Stage.PROCESS, FailReason.CORRUPT_FRAME, detail)
        return
    errors = []
    for processor in processors():
        try:
            meta.results[processor.name] = processor(image, meta)
        except ProcessorError as exc:
            meta.results[processor.name] = {"error": str(exc)}
            errors.append(f"{processor.name}: {exc}")
    if errors:
        meta.fail(Stage.PROCESS, FailReason.PROCESSOR_ERROR, "; ".join(errors))


@app.task(
    name="detektr.process",
    autoretry_for=frame_bytes.REDIS_DOWN,
    **frame_bytes.RETRY_POLICY,
)
def process(payload: Message) -> Message:
    return run_stage(Stage.PROCESS, payload, analyse)
