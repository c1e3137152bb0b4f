"""MLRun job: train one model, register it with its lineage, judge it beside the
champion on the same held-out images, and apply the promotion gate (see
triptych.lifecycle.candidate). A step of the `retrain` workflow, and what
`triptych models bootstrap --train` runs on its own.

    mlrun.new_function("train", kind="job", filename="projects/jobs/train_model.py",
                       handler="train_model").run(local=True, params={"model_name": "resnet50"})

Results (`run.status.results`): version, accuracy, champion_accuracy, decision,
promoted, reason, train_seconds, dataset_id, mlflow_run_id.
"""

from __future__ import annotations


def train_model(
    context,
    model_name: str,
    dataset_id: str = "",
    train_count: int = 12000,
    test_count: int = 1000,
    epochs: int = 3,
    input_size: int = 32,
    batch_size: int = 32,
    learning_rate: float = 2e-3,
    policy: str = "if-better",
    training_set: dict | None = None,
    run_id: str = "",
    threads: int = 0,
) -> None:
    from triptych.config import get_settings
    from triptych.datasets.synthetic import DATASET_ID
    from triptych.lifecycle.candidate import train_candidate
    from triptych.lifecycle.training_set import TrainingSet
    from triptych.models.training import TrainConfig

    config = TrainConfig(
        epochs=epochs,
        input_size=input_size,
        batch_size=batch_size,
        learning_rate=learning_rate,
        threads=threads or None,
    )

    def log_epoch(row: dict) -> None:
        line = (
            f"{model_name} epoch {row['epoch']}/{epochs}: loss {row['train_loss']:.3f}, "
            f"held-out accuracy {row['test_accuracy']:.3f} ({row['seconds']:.0f}s)"
        )
        context.logger.info(line)
        print(line, flush=True)  # visible even when MLRun's logger is quieted

    settings = get_settings()
    if training_set:
        chosen = TrainingSet.from_dict(training_set)
    else:
        # Outside a workflow: the named data set as it is (no gathering). A count of 0
        # takes the whole split of a data set other than the generated one.
        from triptych.datasets.bucket import publish_synthetic

        base = dataset_id or DATASET_ID
        if base == DATASET_ID:
            publish_synthetic(train_count, test_count, settings=settings)
        chosen = TrainingSet(base, train_count=train_count or None, test_count=test_count or None)
    outcome = train_candidate(model_name, chosen, config, settings, policy, run_id or None, context.uid, log_epoch)
    context.log_results(outcome.as_dict())
