"""All a Triptych function's handler imports from Triptych's runtime side.

- `delivered`: the delivery wrapper (bounded retries, dead letters, the batch
  split), which keeps the same guarantees under the local runner and under
  Nuclio's processor; ``@delivered(batches=True)`` marks a handler that takes a
  list of events.
- `PermanentError`: raise it when retrying cannot help; the event is
  dead-lettered at once.
- `Delivery`: a Kafka trigger's delivery settings, for declarations.

The local runner (`triptych.runtime`) imports this package, never the reverse,
and pipeline logic imports nothing of the runner.
"""

from .delivery import (
    BATCH_ATTRIBUTE,
    DELIVERED_ATTRIBUTE,
    Delivery,
    DeliveryPlan,
    TriggerDelivery,
    delivered,
)
from .errors import PermanentError

__all__ = [
    "BATCH_ATTRIBUTE",
    "DELIVERED_ATTRIBUTE",
    "Delivery",
    "DeliveryPlan",
    "PermanentError",
    "TriggerDelivery",
    "delivered",
]
