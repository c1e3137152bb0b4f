{{/* Names: every object is "<release>-triptych-<part>" unless the release is named triptych. */}}
{{- define "triptych.fullname" -}}
{{- if contains "triptych" .Release.Name -}}{{ .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else -}}{{ printf "%s-triptych" .Release.Name | trunc 40 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "triptych.labels" -}}
app.kubernetes.io/name: triptych
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "triptych.selector" -}}
app.kubernetes.io/name: triptych
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "triptych.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The image of the functions that train (torch): the serving image when none is given. */}}
{{- define "triptych.trainingImage" -}}
{{- if .Values.image.training.repository -}}
{{ .Values.image.training.repository }}:{{ .Values.image.training.tag | default .Values.image.tag | default .Chart.AppVersion }}
{{- else -}}{{ include "triptych.image" . }}{{- end -}}
{{- end -}}

{{/* Where each server is: the user's, or the one this chart runs. */}}
{{- define "triptych.kafkaBootstrap" -}}
{{- if .Values.kafka.bootstrap -}}{{ .Values.kafka.bootstrap }}
{{- else -}}
{{- $name := printf "%s-kafka" (include "triptych.fullname" .) -}}
{{- range $i := until (int .Values.kafka.replicas) -}}
{{- if $i }},{{ end }}{{ $name }}-{{ $i }}.{{ $name }}-headless.{{ $.Release.Namespace }}.svc:9092
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "triptych.s3Endpoint" -}}
{{ .Values.s3.endpoint | default (printf "http://%s-minio.%s.svc:9000" (include "triptych.fullname" .) .Release.Namespace) }}
{{- end -}}

{{- define "triptych.postgresHost" -}}
{{ .Values.postgres.host | default (printf "%s-postgres-rw.%s.svc" (include "triptych.fullname" .) .Release.Namespace) }}
{{- end -}}

{{- define "triptych.mlflowUri" -}}
{{ .Values.mlflow.trackingUri | default (printf "http://%s-mlflow.%s.svc:5000" (include "triptych.fullname" .) .Release.Namespace) }}
{{- end -}}

{{/*
The Host headers MLflow's server answers (it refuses others, against DNS rebinding):
its Service's names, and private addresses (a NodePort, a port-forward), which is
MLflow's own default.
*/}}
{{- define "triptych.mlflowAllowedHosts" -}}
{{- $name := printf "%s-mlflow" (include "triptych.fullname" .) -}}
{{- $svc := printf "%s.%s.svc" $name .Release.Namespace -}}
{{ $name }},{{ $name }}:*,{{ $svc }},{{ $svc }}:*,{{ $svc }}.cluster.local:*,localhost:*,127.0.0.1:*,10.*,172.*,192.168.*
{{- end -}}

{{- define "triptych.prometheusUrl" -}}
{{- if .Values.prometheus.enabled -}}http://{{ include "triptych.fullname" . }}-prometheus.{{ .Release.Namespace }}.svc:9090
{{- else -}}{{ .Values.prometheus.url }}{{- end -}}
{{- end -}}

{{/* A Service's type, and the nodePort of `port` when the chart exposes NodePorts (a development node). */}}
{{- define "triptych.serviceType" -}}
type: {{ if .root.Values.nodePorts.enabled }}NodePort{{ else }}ClusterIP{{ end }}
{{- end -}}
{{- define "triptych.nodePort" -}}
{{- if .root.Values.nodePorts.enabled }}, nodePort: {{ index .root.Values.nodePorts .name }}{{ end -}}
{{- end -}}

{{- define "triptych.s3Secret" -}}
{{ .Values.s3.existingSecret | default (printf "%s-s3" (include "triptych.fullname" .)) }}
{{- end -}}

{{- define "triptych.postgresSecret" -}}
{{ .Values.postgres.existingSecret | default (printf "%s-postgres" (include "triptych.fullname" .)) }}
{{- end -}}

{{- define "triptych.apiSecret" -}}
{{ .Values.api.existingSecret | default (printf "%s-api" (include "triptych.fullname" .)) }}
{{- end -}}

{{/*
The environment every function and application gets: the servers' addresses,
the credentials from Secrets (never in a value), and the user's extra settings.
Kubernetes expands $(VAR) from variables defined earlier in the same list.
Called with (dict "root" $ "component" NAME): a component logs in to PostgreSQL
with its own Secret (`<release>-pg-<component>`, postgres.componentRoles), and
"" is the database's owner (provisioning, MLflow).
*/}}
{{- define "triptych.env" -}}
{{- $root := .root -}}
- name: TRIPTYCH_KAFKA_BOOTSTRAP
  value: {{ include "triptych.kafkaBootstrap" $root | quote }}
- name: TRIPTYCH_KAFKA_REPLICATION_FACTOR
  value: {{ if $root.Values.kafka.bootstrap }}"1"{{ else }}{{ min 3 $root.Values.kafka.replicas | quote }}{{ end }}
{{- if include "triptych.kafkaSasl" $root }}
{{- /* A component logs in to Kafka as its own user; "" (provisioning, MLflow) as the admin. */}}
- name: TRIPTYCH_KAFKA_USERNAME
  valueFrom: {secretKeyRef: {name: {{ include "triptych.fullname" $root }}-kafka-{{ .component | default "admin" }}, key: username}}
- name: TRIPTYCH_KAFKA_PASSWORD
  valueFrom: {secretKeyRef: {name: {{ include "triptych.fullname" $root }}-kafka-{{ .component | default "admin" }}, key: password}}
{{- end }}
- name: TRIPTYCH_S3_ENDPOINT
  value: {{ include "triptych.s3Endpoint" $root | quote }}
{{- $s3Secret := include "triptych.s3Secret" $root }}
{{- $s3Own := has .component (include "triptych.s3Components" $root | fromJsonArray) }}
{{- if and .component (include "triptych.s3ComponentUsers" $root) }}
{{- $s3Secret = ternary (printf "%s-s3-%s" (include "triptych.fullname" $root) .component) "" $s3Own }}
{{- end }}
{{- /* A component that never touches the buckets gets no keys at all. */}}
{{- if $s3Secret }}
- name: TRIPTYCH_S3_ACCESS_KEY
  valueFrom: {secretKeyRef: {name: {{ $s3Secret }}, key: access-key}}
- name: TRIPTYCH_S3_SECRET_KEY
  valueFrom: {secretKeyRef: {name: {{ $s3Secret }}, key: secret-key}}
{{- end }}
{{- $pgSecret := include "triptych.postgresSecret" $root }}
{{- if and .component $root.Values.postgres.componentRoles }}
{{- $pgSecret = printf "%s-pg-%s" (include "triptych.fullname" $root) .component }}
{{- end }}
- name: TRIPTYCH_PG_USER
  valueFrom: {secretKeyRef: {name: {{ $pgSecret }}, key: username}}
- name: TRIPTYCH_PG_PASSWORD
  valueFrom: {secretKeyRef: {name: {{ $pgSecret }}, key: password}}
- name: TRIPTYCH_DATABASE_URL
  value: "postgresql://$(TRIPTYCH_PG_USER):$(TRIPTYCH_PG_PASSWORD)@{{ include "triptych.postgresHost" $root }}:{{ $root.Values.postgres.port }}/{{ $root.Values.postgres.database }}"
- name: TRIPTYCH_MLFLOW_DB
  value: {{ $root.Values.postgres.mlflowDatabase | quote }}
- name: TRIPTYCH_MLFLOW_TRACKING_URI
  value: {{ include "triptych.mlflowUri" $root | quote }}
- name: TRIPTYCH_PROMETHEUS_ENDPOINT
  value: {{ include "triptych.prometheusUrl" $root | quote }}
- name: TRIPTYCH_UPLOAD_ENDPOINT
  value: "http://nuclio-upload.{{ $root.Release.Namespace }}.svc:8080"
- name: TRIPTYCH_RETRAIN_ENDPOINT
  value: "http://nuclio-retrain.{{ $root.Release.Namespace }}.svc:8080"
- name: TRIPTYCH_JWT_SECRET
  valueFrom: {secretKeyRef: {name: {{ include "triptych.apiSecret" $root }}, key: jwt-secret}}
- name: MLFLOW_S3_ENDPOINT_URL
  value: {{ include "triptych.s3Endpoint" $root | quote }}
- name: AWS_ACCESS_KEY_ID
  value: $(TRIPTYCH_S3_ACCESS_KEY)
- name: AWS_SECRET_ACCESS_KEY
  value: $(TRIPTYCH_S3_SECRET_KEY)
- name: AWS_DEFAULT_REGION
  value: us-east-1
{{- range $name, $value := $root.Values.settings }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{- define "triptych.podSecurity" -}}
# No service-link variables: the release's Services (triptych-api ...) would read as TRIPTYCH_* settings.
enableServiceLinks: false
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  fsGroup: 10001
  seccompProfile: {type: RuntimeDefault}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "triptych.containerSecurity" -}}
securityContext:
  allowPrivilegeEscalation: false
  capabilities: {drop: [ALL]}
{{- end -}}

{{/* Every component with a PostgreSQL role of its own: triptych.config.COMPONENTS (a unit test holds them equal). */}}
{{- define "triptych.components" -}}
["upload", "ingest", "infer", "aggregate", "jobs", "retrain", "api", "dashboard", "supervisor"]
{{- end -}}

{{/* The components with a MinIO user of their own: triptych.security.bucket_policies.S3_COMPONENTS (a unit test holds them equal). */}}
{{- define "triptych.s3Components" -}}
["upload", "ingest", "infer", "jobs", "retrain", "api", "dashboard"]
{{- end -}}

{{/* Who logs in to the chart's Kafka with SASL/SCRAM: triptych.security.kafka_acls.KAFKA_USERS, and the admin (a unit test holds them equal). */}}
{{- define "triptych.kafkaUsers" -}}
["upload", "ingest", "infer", "aggregate", "jobs", "retrain", "api", "dashboard", "supervisor", "minio", "keda"]
{{- end -}}

{{/* Whether Kafka asks for logins: the chart's own Kafka with kafka.sasl.enabled. */}}
{{- define "triptych.kafkaSasl" -}}
{{- if and .Values.kafka.sasl.enabled (not .Values.kafka.bootstrap) }}true{{ end -}}
{{- end -}}

{{/* Where a function's Kafka trigger reads its password (Nuclio reads a password that names a file from the file). */}}
{{- define "triptych.kafkaPasswordDir" -}}/etc/triptych/kafka{{- end -}}

{{/* Whether each component signs as its own MinIO user: with the chart's MinIO only. */}}
{{- define "triptych.s3ComponentUsers" -}}
{{- if and .Values.s3.componentUsers (not .Values.s3.endpoint) }}true{{ end -}}
{{- end -}}
