"""Reading what Prometheus scraped from every host: the one view of a pipeline
that runs on several machines (no single runner knows every replica)."""
