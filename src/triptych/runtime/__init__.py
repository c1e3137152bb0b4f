"""The local Nuclio-compatible runner: reads project.yaml (spec), runs replicas
(replica, supervisor) with Kafka, HTTP and cron triggers, dead letters, batching,
metrics; and the bridges to a real Nuclio (declare, deploy, nuclio_processor)."""
