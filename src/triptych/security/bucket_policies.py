"""Least privilege in MinIO: each component signs its requests as its own user,
whose one policy allows only the buckets and prefixes its work needs.

- upload: put new images (it never reads, lists or deletes);
- ingest: read the images, list the bucket (its sweep), move a bad image under
  `quarantine/` (a copy there, then a delete of the original);
- infer: read the images;
- jobs: the data-quality job's quarantine and retention (read, list, move,
  delete) and its reports; the drift detectors read the training sets;
- retrain: read the images; publish and read the labelled data sets;
- api: what upload does (POST /upload runs the upload function's code), and
  what the dashboard does;
- dashboard: read the images and reports; cache Grad-CAM heatmaps under
  `reports/gradcam/` (it computes them on demand);
- aggregate, supervisor: no user (they never touch the buckets).

MLflow's artifacts go through MLflow's server (`--artifacts-destination`), which
signs as MinIO's root user; so do the CLI and provisioning. Locally the secret
keys are files under `<data>/credentials/s3/` (made by `triptych up`); on
Kubernetes a Secret each (`<release>-s3-<component>`).
"""

from __future__ import annotations

from urllib.parse import urlparse

from minio.credentials import StaticProvider
from minio.minioadmin import MinioAdmin

from ..config import COMPONENTS, Settings, component_s3_user

READ = ["s3:GetObject", "s3:GetObjectVersion"]
DELETE = ["s3:DeleteObject", "s3:DeleteObjectVersion"]
LIST = ["s3:ListBucket", "s3:ListBucketVersions"]
WRITE = ["s3:PutObject"]


def _rights(component: str, s: Settings) -> list[tuple[list[str], list[str]]]:
    """(actions, resources) pairs; resources are `bucket` or `bucket/prefix*`."""
    images, reports, datasets = s.images_bucket, s.reports_bucket, s.datasets_bucket
    quarantine = f"{images}/quarantine/*"
    return {
        "upload": [(WRITE, [f"{images}/*"])],
        "ingest": [(READ + DELETE, [f"{images}/*"]), (WRITE, [quarantine]), (LIST, [images])],
        "infer": [(READ, [f"{images}/*"])],
        "jobs": [
            (READ + DELETE, [f"{images}/*"]),
            (WRITE, [quarantine, f"{reports}/*"]),
            (READ, [f"{datasets}/*"]),  # the drift detectors' reference: the champion's training set
            (LIST, [images, datasets]),
        ],
        "retrain": [(READ, [f"{images}/*"]), (READ + WRITE + DELETE, [f"{datasets}/*"]), (LIST, [datasets])],
        "api": [(READ, [f"{images}/*", f"{reports}/*"]), (WRITE, [f"{images}/*", f"{reports}/gradcam/*"])],
        "dashboard": [(READ, [f"{images}/*", f"{reports}/*"]), (WRITE, [f"{reports}/gradcam/*"])],
    }.get(component, [])


S3_COMPONENTS = tuple(c for c in COMPONENTS if _rights(c, Settings.model_construct()))


def policy_for(component: str, settings: Settings) -> dict:
    """The IAM policy document of a component's MinIO user."""
    rights = _rights(component, settings)
    if not rights:
        raise ValueError(f"component {component!r} has no rights in the buckets")
    # Clients ask a bucket's region before their first request to it.
    buckets = sorted({r.split("/", 1)[0] for _, resources in rights for r in resources})
    statements = [
        {"Effect": "Allow", "Action": actions, "Resource": [f"arn:aws:s3:::{r}" for r in resources]}
        for actions, resources in [*rights, (["s3:GetBucketLocation"], buckets)]
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def provision_users(settings: Settings, secret_keys: dict[str, str]) -> None:
    """Each component's MinIO user with its secret key and its one policy, signed as
    MinIO's root user (the settings' keys); idempotent: the policy is replaced, the
    user's key set again."""
    url = urlparse(settings.s3_url)
    admin = MinioAdmin(
        endpoint=url.netloc,
        credentials=StaticProvider(settings.s3_access_key, settings.s3_secret_key),
        secure=url.scheme == "https",
    )
    for component, secret_key in secret_keys.items():
        user = component_s3_user(component)
        admin.policy_add(user, policy=policy_for(component, settings))
        admin.user_add(user, secret_key)
        admin.policy_set(user, user=user)
