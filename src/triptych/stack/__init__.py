"""The local stack: real Kafka, MinIO, PostgreSQL and MLflow, installed and run
natively (no Docker) by `triptych up`, and left alone when their URLs are given."""
