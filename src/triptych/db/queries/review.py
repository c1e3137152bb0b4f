"""Read-side queries: the review queue (see the package's docstring)."""

from __future__ import annotations

from .shared import LATEST_COMPARISON, Keyset

# --- the review queue ------------------------------------------------------------


def review_queue(cur, limit: int = 50, after: Keyset | None = None) -> tuple[list[dict], int]:
    """Images the models disagree on (newest first), and how many wait in all."""
    cur.execute(
        f"""SELECT i.image_id, i.uploaded_at, i.filename, i.source, i.ground_truth_label, c.consensus_class,
                   c.agreement_level, c.per_model
            FROM images i {LATEST_COMPARISON}
            WHERE i.needs_review AND (%(at)s::timestamptz IS NULL OR (i.uploaded_at, i.image_id) < (%(at)s, %(id)s::uuid))
            ORDER BY i.uploaded_at DESC, i.image_id DESC LIMIT %(limit)s""",
        {"limit": limit, "at": after and after[0], "id": after and after[1]},
    )
    rows = [dict(r) for r in cur.fetchall()]
    cur.execute("SELECT count(*) AS n FROM images WHERE needs_review")
    return rows, cur.fetchone()["n"]


def quarantined(cur, limit: int = 50, after: Keyset | None = None) -> tuple[list[dict], int]:
    """Objects ingest refused, with their reason (newest first), and how many in all."""
    cur.execute(
        """SELECT image_id, uploaded_at, filename, source, size_bytes, quarantine_reason, object_key
           FROM images WHERE status = 'quarantined'
             AND (%(at)s::timestamptz IS NULL OR (uploaded_at, image_id) < (%(at)s, %(id)s::uuid))
           ORDER BY uploaded_at DESC, image_id DESC LIMIT %(limit)s""",
        {"limit": limit, "at": after and after[0], "id": after and after[1]},
    )
    rows = [dict(r) for r in cur.fetchall()]
    cur.execute("SELECT count(*) AS n FROM images WHERE status = 'quarantined'")
    return rows, cur.fetchone()["n"]


def recent_classes(cur, sample: int = 5000) -> set[str]:
    """Classes the models answered lately: the label choices when the registry is away."""
    cur.execute(
        "SELECT DISTINCT predicted_class FROM (SELECT predicted_class FROM predictions "
        "ORDER BY created_at DESC LIMIT %s) s",
        (sample,),
    )
    return {r["predicted_class"] for r in cur.fetchall()}
