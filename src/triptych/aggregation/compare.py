"""The comparison of one image's answers: pure logic, no I/O.

Consensus is the majority class; a tie (e.g. three different answers, or two
classes with two votes each among four models) goes to the class with the
highest mean confidence among its voters. Agreement is `all` when every model
gave the consensus class, `majority` when more than half did, else `none`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    model_name: str
    model_version: str
    predicted_class: str
    confidence: float
    inference_ms: float


@dataclass(frozen=True)
class Comparison:
    model_set: str
    model_versions: dict[str, str]
    consensus_class: str
    consensus_confidence: float
    agreement_level: str
    agreement_ratio: float
    fastest_model: str
    fastest_inference_ms: float
    per_model: dict[str, dict]
    ground_truth_label: str | None
    consensus_correct: bool | None
    needs_review: bool


def model_set_key(answers: list[Answer]) -> str:
    """Canonical text of the model versions that answered: the comparison's identity."""
    return ",".join(sorted(f"{a.model_name}@{a.model_version}" for a in answers))


def compare(answers: list[Answer], ground_truth: str | None) -> Comparison:
    if not answers:
        raise ValueError("nothing to compare")
    if len({a.model_name for a in answers}) != len(answers):
        raise ValueError("one answer per model")
    votes: dict[str, list[Answer]] = defaultdict(list)
    for answer in answers:
        votes[answer.predicted_class].append(answer)

    def rank(label: str) -> tuple[int, float, str]:
        voters = votes[label]
        # The label itself last, so that even a perfect tie is decided the same way every time.
        return len(voters), sum(a.confidence for a in voters) / len(voters), label

    consensus = max(votes, key=rank)
    agreeing = len(votes[consensus])
    if agreeing == len(answers):
        level = "all"
    elif agreeing * 2 > len(answers):
        level = "majority"
    else:
        level = "none"
    fastest = min(answers, key=lambda a: (a.inference_ms, a.model_name))
    per_model = {
        a.model_name: {
            "version": a.model_version,
            "class": a.predicted_class,
            "confidence": a.confidence,
            "inference_ms": a.inference_ms,
            "correct": (a.predicted_class == ground_truth) if ground_truth is not None else None,
        }
        for a in answers
    }
    return Comparison(
        model_set=model_set_key(answers),
        model_versions={a.model_name: a.model_version for a in answers},
        consensus_class=consensus,
        consensus_confidence=sum(a.confidence for a in votes[consensus]) / agreeing,
        agreement_level=level,
        agreement_ratio=agreeing / len(answers),
        fastest_model=fastest.model_name,
        fastest_inference_ms=fastest.inference_ms,
        per_model=per_model,
        ground_truth_label=ground_truth,
        consensus_correct=(consensus == ground_truth) if ground_truth is not None else None,
        needs_review=level != "all",
    )
