"""MLRun job: train one model on a labelled data set in MinIO (by default the
generated one, published there first when missing), register it in MLflow, and
promote it to champion when it is better (see triptych.models.lifecycle).

    mlrun.new_function("train", kind="job", filename="projects/jobs/train_model.py",
                       handler="train_model").run(local=True, params={"model_name": "resnet50"})

Results (`run.status.results`): version, accuracy, promoted, reason, seconds, dataset_id.
"""

from __future__ import annotations


def train_model(context, model_name: str, dataset_id: str = "", train_count: int = 12000,
                test_count: int = 1000, epochs: int = 3,
                input_size: int = 32, batch_size: int = 32, learning_rate: float = 2e-3,
                policy: str = "if-better", min_improvement: float = 0.02) -> None:
    from triptych.datasets.synthetic import DATASET_ID
    from triptych.models.lifecycle import train_and_register
    from triptych.models.training import TrainConfig

    config = TrainConfig(epochs=epochs, input_size=input_size, batch_size=batch_size, learning_rate=learning_rate)

    def log_epoch(row: dict) -> None:
        line = (f"{model_name} epoch {row['epoch']}/{epochs}: loss {row['train_loss']:.3f}, "
                f"held-out accuracy {row['test_accuracy']:.3f} ({row['seconds']:.0f}s)")
        context.logger.info(line)
        print(line, flush=True)  # visible even when MLRun's logger is quieted

    # No data set named: the generated one. A count of 0 takes the whole split
    # (of a data set other than the generated one, which is made to measure).
    outcome = train_and_register(model_name, dataset_id or DATASET_ID, train_count or None, test_count or None,
                                 config, policy=policy, min_improvement=min_improvement, mlrun_run_uid=context.uid,
                                 log=log_epoch)
    context.log_results(outcome.as_dict())
