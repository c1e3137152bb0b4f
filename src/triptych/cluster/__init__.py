"""Several hosts: their topology, their network namespaces on one machine, and the `triptych cluster` manager."""
