"""What several of the read-side queries share."""

from __future__ import annotations

from datetime import datetime

# The newest comparison of an image: an image compared again by a newer model set
# shows its latest answers.
LATEST_COMPARISON = """
LEFT JOIN LATERAL (
    SELECT mc.consensus_class, mc.consensus_confidence, mc.agreement_level, mc.consensus_correct, mc.per_model,
           mc.fastest_model, mc.created_at AS compared_at
    FROM model_comparisons mc WHERE mc.image_id = i.image_id ORDER BY mc.updated_at DESC LIMIT 1
) c ON TRUE
"""

# A page's position in a newest-first listing: (uploaded_at, image_id) of its last row.
Keyset = tuple[datetime, str]
