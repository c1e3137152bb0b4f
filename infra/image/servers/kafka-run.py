#!/usr/bin/python3
"""Start Kafka as the apache/kafka image does: every KAFKA_<NAME> variable becomes the
property <name> (`_` -> `.`, `__` -> `_`, `___` -> `-`), the storage is formatted
with CLUSTER_ID once, then the broker runs in the foreground."""
import os
import re
import subprocess
import sys

NOT_PROPERTIES = {"KAFKA_HEAP_OPTS", "KAFKA_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_LOG4J_OPTS"}


def property_name(variable: str) -> str:
    name = variable[len("KAFKA_"):].lower()
    return re.sub(r"_+", lambda m: {1: ".", 2: "_", 3: "-"}.get(len(m.group()), m.group()), name)


props = {property_name(k): v for k, v in os.environ.items() if k.startswith("KAFKA_") and k not in NOT_PROPERTIES}
config = "/tmp/server.properties"
with open(config, "w") as f:
    f.writelines(f"{k}={v}\n" for k, v in sorted(props.items()))
heap = os.environ.get("KAFKA_HEAP_OPTS", "-Xmx512m -Xms512m").split()
java = ["java", *heap, "-Dlog4j.configuration=file:/opt/kafka/config/log4j.properties", "-cp", "/opt/kafka/libs/*"]
cluster_id = os.environ.get("CLUSTER_ID")
if not cluster_id:
    sys.exit("CLUSTER_ID is not set (kafka-storage.sh random-uuid makes one)")
subprocess.run([*java, "kafka.tools.StorageTool", "format", "--ignore-formatted", "-t", cluster_id, "-c", config],
               check=True)
os.execvp("java", [*java, "kafka.Kafka", config])
