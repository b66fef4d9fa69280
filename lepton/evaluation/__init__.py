"""Evaluation and selection: quality metrics with bootstrap CIs, cost
measurements, and the selection policy. Plain functions, no I/O."""

from lepton.evaluation.cost import dir_size_mb, measure_latency, measure_peak_memory
from lepton.evaluation.metrics import (
    ALL_METRICS,
    COST_METRICS,
    HIGHER_IS_BETTER,
    QUALITY_METRICS,
    QualityReport,
    confusion_matrix,
    metric_from_confusion,
    quality,
)
from lepton.evaluation.select import (
    CandidateInput,
    Constraint,
    Policy,
    Selection,
    build_decision,
    decide,
    paired_test,
)

__all__ = [
    "ALL_METRICS",
    "COST_METRICS",
    "HIGHER_IS_BETTER",
    "QUALITY_METRICS",
    "CandidateInput",
    "Constraint",
    "Policy",
    "QualityReport",
    "Selection",
    "build_decision",
    "confusion_matrix",
    "decide",
    "dir_size_mb",
    "measure_latency",
    "measure_peak_memory",
    "metric_from_confusion",
    "paired_test",
    "quality",
]
