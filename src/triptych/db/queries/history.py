"""Read-side queries: history (see the package's docstring)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from .shared import LATEST_COMPARISON, Keyset

# --- history --------------------------------------------------------------------

AGREEMENT_LEVELS = ("all", "majority", "none")


@dataclass
class HistoryFilter:
    """What the History page (and the API's list endpoints) filter images by.
    `model` narrows `predicted_class` and `correct` to that model's answer; without
    it they apply to the consensus."""

    start: datetime
    end: datetime
    model: str | None = None
    predicted_class: str | None = None
    agreement: str | None = None  # all | majority | none | pending | quarantined
    correct: bool | None = None
    source: str | None = None
    search: str | None = None  # part of the filename, or the start of an image id
    params: dict = field(default_factory=dict, init=False, repr=False)

    def where(self) -> str:
        p = self.params = {"start": self.start, "end": self.end}
        clauses = ["i.uploaded_at >= %(start)s", "i.uploaded_at < %(end)s"]
        if self.source:
            clauses.append("i.source = %(source)s")
            p["source"] = self.source
        if self.search:
            escaped = self.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            p["search"] = f"%{escaped}%"  # served by the trigram index on filename
            id_range = uuid_prefix_range(self.search)
            if id_range:  # the start of an image id: a range of the primary key
                p["id_low"], p["id_high"] = id_range
                clauses.append("(i.filename ILIKE %(search)s OR i.image_id BETWEEN %(id_low)s AND %(id_high)s)")
            else:
                clauses.append("i.filename ILIKE %(search)s")
        if self.agreement in AGREEMENT_LEVELS:
            clauses.append("c.agreement_level = %(agreement)s")
            p["agreement"] = self.agreement
        elif self.agreement == "pending":
            clauses.append("c.agreement_level IS NULL AND i.status <> 'quarantined'")
        elif self.agreement == "quarantined":
            clauses.append("i.status = 'quarantined'")
        elif self.agreement:
            raise ValueError(f"unknown agreement filter {self.agreement!r}")
        if self.model:
            p["model"] = self.model
        if self.predicted_class:
            p["cls"] = self.predicted_class
            clauses.append(
                "c.per_model->%(model)s->>'class' = %(cls)s" if self.model else "c.consensus_class = %(cls)s"
            )
        if self.correct is not None:
            p["correct"] = self.correct
            clauses.append(
                "(c.per_model->%(model)s->>'correct')::boolean = %(correct)s"
                if self.model
                else "c.consensus_correct = %(correct)s"
            )
        elif self.model and not self.predicted_class:
            clauses.append("c.per_model ? %(model)s")
        return " AND ".join(clauses)


def uuid_prefix_range(text: str) -> tuple[str, str] | None:
    """The ids that start with `text` as (lowest, highest), when `text` can begin an
    image id (4 or more hex digits, dashes where a UUID has them); else None."""
    digits = text.strip().lower().replace("-", "")
    if not 4 <= len(digits) <= 32 or any(ch not in "0123456789abcdef" for ch in digits):
        return None
    return (str(uuid.UUID(digits.ljust(32, "0"))), str(uuid.UUID(digits.ljust(32, "f"))))


_HISTORY_FROM = f"FROM images i {LATEST_COMPARISON}"


# A position in a newest-first list: (timestamp, id) of the last row a page showed.
# The next page starts strictly after it, so rows arriving meanwhile never shift pages.


def history_rows(cur, f: HistoryFilter, offset: int = 0, limit: int = 50, after: Keyset | None = None) -> list[dict]:
    """One page of images (newest first) with their latest comparison: by offset
    (the dashboard's pages) or after a keyset (the API's cursors)."""
    where = f.where()
    if after is not None:
        where += " AND (i.uploaded_at, i.image_id) < (%(after_at)s, %(after_id)s)"
    cur.execute(
        f"""SELECT i.image_id, i.uploaded_at, i.filename, i.source, i.status, i.ground_truth_label,
                   i.quarantine_reason, c.consensus_class, c.consensus_confidence, c.agreement_level,
                   c.consensus_correct, c.per_model
            {_HISTORY_FROM} WHERE {where}
            ORDER BY i.uploaded_at DESC, i.image_id DESC OFFSET %(offset)s LIMIT %(limit)s""",
        {**f.params, "offset": offset, "limit": limit, "after_at": after and after[0], "after_id": after and after[1]},
    )
    return [dict(r) for r in cur.fetchall()]


def history_count(cur, f: HistoryFilter, cap: int = 10_000, budget_ms: int = 150) -> tuple[int | None, bool]:
    """How many images match, counted up to `cap`; the flag says the count stopped
    at the cap. A rare filter over a long range must look at every image in it, so
    the count gets `budget_ms` and answers None when it needs longer (the page then
    pages on without a total)."""
    import psycopg2.errors

    where = f.where()
    cur.execute("SAVEPOINT history_count")
    cur.execute("SET LOCAL statement_timeout = %s", (budget_ms,))
    try:
        cur.execute(
            f"SELECT count(*) AS n FROM (SELECT 1 {_HISTORY_FROM} WHERE {where} LIMIT %(cap)s) s",
            {**f.params, "cap": cap + 1},
        )
        n = cur.fetchone()["n"]
    except psycopg2.errors.QueryCanceled:
        n = None
    finally:
        # Whatever happened, the caller's transaction gets its own timeout back.
        cur.execute("ROLLBACK TO SAVEPOINT history_count")
    return (None, False) if n is None else (min(n, cap), n > cap)
