"""A person's label for an image (the review loop): stored on the image, its
comparisons' correctness recomputed, its per-minute model metrics refreshed, and
an audit event written, all in one transaction, so retraining sees the label and
the dashboard's accuracy figures agree with it."""

from __future__ import annotations

import json

from .store import recompute_window, refresh_shadow, window_start


class LabelRejected(ValueError):
    """The label was not stored; the message says why, for the person who set it."""


class UnknownImage(LabelRejected):
    pass


def set_ground_truth(cur, image_id: str, label: str, known_classes: set[str], who: str = "dashboard") -> dict:
    """Store `label` as the image's true class; returns the updated comparison
    summary. Nothing is written when the image is unknown, quarantined, or the
    label is not a class the models know."""
    label = (label or "").strip()
    if not label:
        raise LabelRejected("choose a label first")
    if known_classes and label not in known_classes:
        raise LabelRejected(f"{label!r} is not a class the models know ({', '.join(sorted(known_classes))})")
    cur.execute("SELECT status, ground_truth_label FROM images WHERE image_id = %s FOR UPDATE", (image_id,))
    image = cur.fetchone()
    if image is None:
        raise UnknownImage(f"no image {image_id}")
    if image["status"] == "quarantined":
        raise LabelRejected("this object was quarantined (it is not a usable image): it cannot be labelled")
    cur.execute(
        "UPDATE images SET ground_truth_label = %s, needs_review = FALSE WHERE image_id = %s", (label, image_id)
    )
    # Correctness of every model's answer and of the consensus follows the new label;
    # the image leaves the review queue.
    cur.execute(
        """UPDATE model_comparisons SET
               ground_truth_label = %(label)s,
               consensus_correct = consensus_class = %(label)s,
               per_model = (SELECT jsonb_object_agg(m.key, m.value || jsonb_build_object(
                                'correct', (m.value->>'class') = %(label)s))
                            FROM jsonb_each(per_model) m),
               needs_review = FALSE, updated_at = now()
           WHERE image_id = %(image_id)s
           RETURNING consensus_class, consensus_correct, per_model""",
        {"label": label, "image_id": image_id},
    )
    comparisons = cur.fetchall()
    refresh_shadow(cur, image_id)  # a challenger's answer is right or wrong by the same label
    cur.execute(
        "SELECT DISTINCT model_name, model_version, predicted_at FROM predictions WHERE image_id = %s "
        "AND role = 'champion'",
        (image_id,),
    )
    for p in cur.fetchall():
        recompute_window(cur, p["model_name"], p["model_version"], window_start(p["predicted_at"]))
    cur.execute(
        "SELECT log_system_event('label_set', 'info', %s, %s, %s::jsonb, %s::uuid, NULL)",
        (
            who,
            f"image {image_id} labelled {label!r}"
            + (f" (was {image['ground_truth_label']!r})" if image["ground_truth_label"] else ""),
            json.dumps({"label": label, "previous": image["ground_truth_label"]}),
            image_id,
        ),
    )
    latest = comparisons[0] if comparisons else None
    return {
        "image_id": image_id,
        "label": label,
        "previous": image["ground_truth_label"],
        "consensus_correct": latest["consensus_correct"] if latest else None,
        "per_model_correct": {m: v.get("correct") for m, v in latest["per_model"].items()} if latest else {},
    }
