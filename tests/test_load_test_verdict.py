"""The load test's verdict: it names each criterion the run missed, with what it measured,
and none it met (the run's figures are plain numbers here; tests/e2e/test_load_test.py runs
the tool itself)."""

from __future__ import annotations

from workers.load_test import CameraResult, Criteria, missed, verdict


def total(**figures: float | int | None) -> CameraResult:
    met = {"loss_pct": 0.0, "complete_pct": 100.0, "p95_ms": 15.9}
    return CameraResult("total", captured=50, **{**met, **figures})  # type: ignore[arg-type]


def judged(result: CameraResult) -> tuple[dict[str, float | None], str]:
    failed = missed(result, Criteria())
    return failed, verdict(result, Criteria(), failed)


def test_it_names_only_the_criterion_that_failed_and_by_how_much() -> None:
    assert judged(total(complete_pct=0.0)) == (
        {"min_complete_pct": 0.0},
        "FAILED: completeness 0.00 % (needs > 99 %)",
    )


def test_it_names_every_criterion_that_failed() -> None:
    failed, text = judged(total(loss_pct=1.25, p95_ms=1416.0))
    assert failed == {"max_loss_pct": 1.25, "max_p95_ms": 1416.0}
    assert text == "FAILED: loss 1.25 % (needs < 1 %), p95 1416.00 ms (needs < 100 ms)"


def test_a_bound_reached_is_missed_as_the_comparison_says() -> None:
    failed, _ = judged(total(loss_pct=1.0, complete_pct=99.0, p95_ms=100.0))
    assert set(failed) == {"max_loss_pct", "min_complete_pct", "max_p95_ms"}


def test_a_figure_with_nothing_to_measure_it_on_says_so() -> None:
    failed, text = judged(total(complete_pct=None, p95_ms=None))
    assert failed == {"min_complete_pct": None, "max_p95_ms": None}
    assert text == (
        "FAILED: completeness - (needs > 99 %; no sampled frame to check), "
        "p95 - (needs < 100 ms; no frame stored)"
    )


def test_traces_jaeger_could_not_read_leave_completeness_not_measured() -> None:
    """The frames it did read prove nothing about the others: never PASSED."""
    failed, text = judged(total(complete_pct=100.0, unreadable=3))
    assert failed == {"min_complete_pct": 100.0}
    assert text == (
        "NOT MEASURED: completeness 100.00 % (needs > 99 %; Jaeger could not be read for 3 "
        "sampled frames)"
    )


def test_a_passing_run_shows_each_figure_against_its_bound() -> None:
    assert judged(total()) == (
        {},
        "PASSED: loss 0.00 % < 1 %, completeness 100.00 % > 99 %, p95 15.90 ms < 100 ms",
    )


def test_a_criterion_measured_and_missed_fails_the_run_whatever_jaeger_did() -> None:
    failed, text = judged(total(complete_pct=None, p95_ms=1416.0, unreadable=3))
    assert set(failed) == {"min_complete_pct", "max_p95_ms"}
    assert text.startswith("FAILED: completeness - (needs > 99 %; Jaeger could not be read ")
