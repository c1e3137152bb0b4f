"""Everything by which images enter Triptych: validation, object naming, the
upload and ingest logic, and the stream producers. All paths converge on the
MinIO bucket `images`."""
