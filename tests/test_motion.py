"""Motion is scored at capture against the camera's previous frame: the same stream gives
the same scores, whichever worker processes the frames."""

from __future__ import annotations

import numpy as np

from workers.motion import THUMBNAIL, Motion, thumbnail
from workers.sources import SyntheticSource


def frames(count: int) -> list[np.ndarray]:
    source = SyntheticSource(width=1280, height=720)
    source.open()
    return [source.read() for _ in range(count)]  # type: ignore[misc]


def test_each_frame_is_compared_with_the_one_before_it() -> None:
    motion = Motion()
    images = frames(3)
    results = [motion.score(f"frame-{n}", image) for n, image in enumerate(images)]
    assert results[0] == {"score": None, "reference": None}
    assert [r["reference"] for r in results[1:]] == ["frame-0", "frame-1"]
    assert all(r["score"] is not None and r["score"] > 0 for r in results[1:])  # it scrolls


def test_a_still_scene_scores_zero_and_the_scores_repeat_exactly() -> None:
    image = frames(1)[0]
    motion = Motion()
    motion.score("a", image)
    assert motion.score("b", image.copy())["score"] == 0.0
    images = frames(5)
    one, two = Motion(), Motion()
    assert [one.score(str(n), i)["score"] for n, i in enumerate(images)] == [
        two.score(str(n), i)["score"] for n, i in enumerate(images)
    ]


def test_the_thumbnail_is_small_and_grey() -> None:
    small = thumbnail(frames(1)[0])
    assert small.shape == (THUMBNAIL[1], THUMBNAIL[0])
    assert small.dtype == np.uint8
