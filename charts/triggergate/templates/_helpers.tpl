{{/*
Names, labels, the image, the arguments of `triggergate run`, the bus URL and the RBAC rules.
Values are described in values.yaml, which is generated from gateway/settings.py.
*/}}

{{- define "triggergate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the objects. At most 52 characters: a StatefulSet adds a controller-revision-hash
label of <name>-<10 characters>, and labels are limited to 63.
*/}}
{{- define "triggergate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "triggergate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "triggergate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "triggergate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "triggergate.labels" -}}
helm.sh/chart: {{ include "triggergate.chart" . }}
{{ include "triggergate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: gateway
{{- end }}

{{- define "triggergate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "triggergate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "triggergate.configMapName" -}}
{{- default (include "triggergate.fullname" .) .Values.config.existingConfigMap }}
{{- end }}

{{/* repository@digest when a digest is given, else repository:tag (the tag defaults to appVersion). */}}
{{- define "triggergate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Service and container port name of a webhook port: http-<port> (at most 15 characters). */}}
{{- define "triggergate.portName" -}}
{{- printf "http-%d" (int .) }}
{{- end }}

{{- define "triggergate.probePort" -}}
{{- if kindIs "invalid" .Values.probes.port }}{{ first .Values.webhook.ports | int }}{{ else }}{{ .Values.probes.port | int }}{{ end }}
{{- end }}

{{- define "triggergate.metricsPort" -}}
{{- if kindIs "invalid" .Values.metrics.port }}{{ first .Values.webhook.ports | int }}{{ else }}{{ .Values.metrics.port | int }}{{ end }}
{{- end }}

{{/*
"true" when the metrics port is not one of the webhook ports: the gateway then listens on it with
`--metrics-port` (every webhook port serves GET /metrics itself), and it is the container port "metrics".
*/}}
{{- define "triggergate.metricsPortIsExtra" -}}
{{- $port := include "triggergate.metricsPort" . | int }}
{{- $extra := true }}
{{- range .Values.webhook.ports }}{{ if eq (int .) $port }}{{ $extra = false }}{{ end }}{{ end }}
{{- $extra }}
{{- end }}

{{- define "triggergate.metricsPortName" -}}
{{- if eq (include "triggergate.metricsPortIsExtra" .) "true" }}metrics{{ else }}{{ include "triggergate.portName" (include "triggergate.metricsPort" .) }}{{ end }}
{{- end }}

{{/*
The --bus URL of the Kafka bus: kafka://<brokers>/<topic>?consumerGroup=<group>[&<option>=<value>...],
query values URL-encoded, options in key order.
*/}}
{{- define "triggergate.busURL" -}}
{{- $kafka := .Values.bus.kafka }}
{{- $query := list (printf "consumerGroup=%s" (urlquery $kafka.consumerGroup)) }}
{{- range $key, $value := $kafka.options }}
{{- $query = append $query (printf "%s=%s" (urlquery $key) (urlquery $value)) }}
{{- end }}
{{- printf "kafka://%s/%s?%s" $kafka.url $kafka.topic (join "&" $query) }}
{{- end }}

{{/* The arguments of the container (the image's ENTRYPOINT is `triggergate`), as a YAML list. */}}
{{- define "triggergate.args" -}}
{{- $args := list "run" .Values.config.mountPath
      "--state-dir" .Values.persistence.mountPath
      "--secrets-dir" .Values.secrets.mountPath
      "--log-format" .Values.logFormat
      "--log-level" .Values.logLevel
      "--host" "0.0.0.0"
      "--shutdown-grace" (.Values.shutdownGrace | int | toString) }}
{{- if eq .Values.bus.kind "kafka" }}
{{- $args = concat $args (list "--bus" (include "triggergate.busURL" .)) }}
{{- end }}
{{- if eq (include "triggergate.metricsPortIsExtra" .) "true" }}
{{- $args = concat $args (list "--metrics-port" (include "triggergate.metricsPort" .)) }}
{{- end }}
{{- if .Values.dryRun }}
{{- $args = append $args "--dry-run" }}
{{- end }}
{{- $args = concat $args .Values.extraArgs }}
{{- toYaml $args }}
{{- end }}

{{/* The namespaces whose Role lets the triggers work: targetNamespaces, else the release namespace. */}}
{{- define "triggergate.targetNamespaces" -}}
{{- toYaml (default (list .Release.Namespace) .Values.targetNamespaces) }}
{{- end }}

{{/*
What each argoWorkflow operation needs, exactly as docs/rbac.md says (tests/chart checks the two
against each other). Every operation includes `get` on workflows, which policy.k8s needs too.
*/}}
{{- define "triggergate.argoWorkflowRules" -}}
submit:
  - {apiGroup: argoproj.io, resource: workflows, verbs: [create, get]}
submit-from:
  - {apiGroup: argoproj.io, resource: workflows, verbs: [create, get]}
resubmit:
  - {apiGroup: argoproj.io, resource: workflows, verbs: [create, get]}
suspend:
  - {apiGroup: argoproj.io, resource: workflows, verbs: [get, patch]}
terminate:
  - {apiGroup: argoproj.io, resource: workflows, verbs: [get, patch]}
stop:
  - {apiGroup: argoproj.io, resource: workflows, verbs: [get, patch]}
resume:
  - {apiGroup: argoproj.io, resource: workflows, verbs: [get, update]}
retry:
  - {apiGroup: argoproj.io, resource: workflows, verbs: [get, update]}
  - {apiGroup: "", resource: pods, verbs: [delete, list]}
{{- end }}

{{/* Namespaced template kinds the triggers read (submit-from, load-time checks). */}}
{{- define "triggergate.argoTemplateRules" -}}
WorkflowTemplate:
  - {apiGroup: argoproj.io, resource: workflowtemplates, verbs: [get]}
CronWorkflow:
  - {apiGroup: argoproj.io, resource: cronworkflows, verbs: [get]}
{{- end }}

{{/* Verbs of a k8s trigger operation on its object's resource (docs/rbac.md). */}}
{{- define "triggergate.k8sOperationVerbs" -}}
create: [create, get]
update: [get, update]
patch: [get, patch]
delete: [delete, get]
{{- end }}

{{/*
The rules of the namespaced Role, as a YAML list: one rule per (API group, resource) with the union
of the verbs every configured trigger needs, sorted; then rbac.extraRules as given.
*/}}
{{- define "triggergate.namespacedRules" -}}
{{- $verbs := dict }}
{{- $grants := list }}
{{- $argo := include "triggergate.argoWorkflowRules" . | fromYaml }}
{{- range .Values.rbac.argoWorkflow.operations }}
{{- $grants = concat $grants (get $argo .) }}
{{- end }}
{{- $templates := include "triggergate.argoTemplateRules" . | fromYaml }}
{{- range .Values.rbac.argoWorkflow.templates }}
{{- $grants = concat $grants (get $templates . | default list) }}
{{- end }}
{{- $k8sVerbs := include "triggergate.k8sOperationVerbs" . | fromYaml }}
{{- range .Values.rbac.k8s }}
{{- $objectVerbs := list }}
{{- range .operations }}
{{- $objectVerbs = concat $objectVerbs (get $k8sVerbs .) }}
{{- end }}
{{- if and .createMissing (or (has "update" .operations) (has "patch" .operations)) }}
{{- $objectVerbs = append $objectVerbs "create" }}
{{- end }}
{{- $grants = append $grants (dict "apiGroup" .apiGroup "resource" .resource "verbs" $objectVerbs) }}
{{- end }}
{{- if .Values.rbac.configMapSource }}
{{- $grants = append $grants (dict "apiGroup" "" "resource" "configmaps" "verbs" (list "get")) }}
{{- end }}
{{- range $grants }}
{{- $key := printf "%s|%s" .apiGroup .resource }}
{{- $_ := set $verbs $key (concat (get $verbs $key | default list) .verbs) }}
{{- end }}
{{- $rules := list }}
{{- range $key := keys $verbs | sortAlpha }}
{{- $parts := splitList "|" $key }}
{{- $rules = append $rules (dict "apiGroups" (list (index $parts 0)) "resources" (list (index $parts 1)) "verbs" (get $verbs $key | uniq | sortAlpha)) }}
{{- end }}
{{- toYaml (concat $rules .Values.rbac.extraRules) }}
{{- end }}

{{/*
The chart's own checks, for what the schema cannot say or what `--skip-schema-validation` skipped.
Each message says which value to change and to what.
*/}}
{{- define "triggergate.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (ne .Values.bus.kind "kafka") }}
{{- fail (printf "replicas: %d needs bus.kind: kafka (and bus.kafka.url): the embedded bus is one SQLite file that only one process may use. Set replicas: 1, or run Kafka and set bus.kind: kafka" (int .Values.replicas)) }}
{{- end }}
{{- if and (eq .Values.bus.kind "kafka") (not .Values.bus.kafka.url) }}
{{- fail "bus.kafka.url is required when bus.kind is kafka: the brokers as host:port separated by commas, e.g. kafka-0.kafka:9092,kafka-1.kafka:9092" }}
{{- end }}
{{- if and (not .Values.config.existingConfigMap) (not .Values.config.manifests) }}
{{- fail "config: nothing to run. Set config.manifests (EventSource and Sensor YAML by file name, e.g. --set-file config.manifests.sensor\\.yaml=sensor.yaml) or config.existingConfigMap (a ConfigMap you created)" }}
{{- end }}
{{- if eq (toString .Values.image.tag) "latest" }}
{{- fail "image.tag: latest is not allowed; use a version tag (default: the chart's appVersion) or image.digest" }}
{{- end }}
{{- end }}
