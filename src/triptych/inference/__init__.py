"""The inference functions' logic: the serving model (with hot swap) and the
batched classify step."""
