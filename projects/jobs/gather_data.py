"""MLRun job, the `retrain` workflow's first step: the training set, that is the
base data set plus every image labelled in Postgres, published as a data set of
its own with a recorded split (see triptych.lifecycle.training_set).

Result `training_set`: the set's description, passed on to each training step.
"""

from __future__ import annotations


def gather_data(context, run_id: str, dataset_id: str = "", train_count: int = 0, test_count: int = 0) -> None:
    from triptych.config import get_settings
    from triptych.db.connection import Database
    from triptych.lifecycle.steps import Step
    from triptych.lifecycle.training_set import base_dataset, gather

    settings = get_settings()
    db = Database(settings)
    with Step(db, run_id, "gather", context.uid) as step:
        base = dataset_id or base_dataset(settings)
        chosen = gather(run_id, base, settings, train_count or None, test_count or None, db)
        summary = chosen.as_dict()
        print(
            f"training set {chosen.dataset_id}: base {base} + {chosen.labelled_train} labelled to train, "
            f"{chosen.labelled_test} held out ({chosen.skipped_labels} with a label outside the classes)",
            flush=True,
        )
        step.done(summary)
    context.log_result("training_set", summary)
