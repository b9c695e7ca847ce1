{{/*
Chart name.
*/}}
{{- define "ecomops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Full name prefix of every resource: <release>-<chart>, or <release> when it contains the chart name.
Component names are appended (max 15 chars), so the prefix is kept to 47 characters.
*/}}
{{- define "ecomops.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 47 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 47 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 47 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "ecomops.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The component names, in a stable order.
*/}}
{{- define "ecomops.componentNames" -}}
order inventory pricing recommendation risk support
{{- end -}}

{{/*
Merged settings of one component: `default` overlaid with `components.<name>`; `env`,
`envFrom`, `extraEnv`, `extraVolumes` and `extraVolumeMounts` are concatenated (default first).
Call with (dict "root" $ "name" "order"); returns YAML.
*/}}
{{- define "ecomops.component" -}}
{{- $root := .root -}}
{{- $own := index $root.Values.components .name | default dict -}}
{{- $c := mergeOverwrite (deepCopy $root.Values.default) (deepCopy $own) -}}
{{- $_ := set $c "env" (concat ($root.Values.default.env | default list) ($own.env | default list)) -}}
{{- $_ := set $c "envFrom" (concat ($root.Values.default.envFrom | default list) ($own.envFrom | default list)) -}}
{{- range $key := list "extraEnv" "extraVolumes" "extraVolumeMounts" }}
{{- $_ := set $c $key (concat ((index $root.Values.default $key) | default list) ((index $own $key) | default list)) -}}
{{- end }}
{{- $_ := set $c "name" .name -}}
{{- $_ := set $c "fullname" (printf "%s-%s" (include "ecomops.fullname" $root) .name) -}}
{{- $_ := set $c "prefix" (upper .name) -}}
{{- toYaml $c -}}
{{- end -}}

{{/*
Common labels. Call with (dict "root" $ "component" "order").
*/}}
{{- define "ecomops.labels" -}}
helm.sh/chart: {{ include "ecomops.chart" .root }}
{{ include "ecomops.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: ecomops
{{- end -}}

{{- define "ecomops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ecomops.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}

{{/*
Container image reference.
*/}}
{{- define "ecomops.image" -}}
{{- $img := .Values.image -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end -}}

{{- define "ecomops.serviceAccountName" -}}
{{- $c := .c -}}
{{- if $c.serviceAccount.create -}}
{{- default $c.fullname $c.serviceAccount.name -}}
{{- else -}}
{{- default "default" $c.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
Pod-level securityContext (hardened; only the ids are configurable).
*/}}
{{- define "ecomops.podSecurityContext" -}}
runAsNonRoot: true
{{- with .securityContext.runAsUser }}
runAsUser: {{ . }}
{{- end }}
{{- with .securityContext.runAsGroup }}
runAsGroup: {{ . }}
{{- end }}
{{- with .securityContext.fsGroup }}
fsGroup: {{ . }}
{{- end }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Container-level securityContext (hardened, fixed).
*/}}
{{- define "ecomops.containerSecurityContext" -}}
runAsNonRoot: true
{{- with .securityContext.runAsUser }}
runAsUser: {{ . }}
{{- end }}
{{- with .securityContext.runAsGroup }}
runAsGroup: {{ . }}
{{- end }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Environment shared by every ecomops process (services and hook Jobs). Call with $ (root).
*/}}
{{- define "ecomops.sharedEnv" -}}
{{- $v := .Values -}}
- name: ECOMOPS_ENV
  value: {{ $v.config.env | quote }}
- name: ECOMOPS_LOG_LEVEL
  value: {{ $v.config.logLevel | quote }}
- name: ECOMOPS_MAX_BODY_BYTES
  value: {{ $v.config.maxBodyBytes | int64 | quote }}
- name: ECOMOPS_RATE_LIMIT_PER_MINUTE
  value: {{ $v.config.rateLimitPerMinute | int64 | quote }}
- name: ECOMOPS_ACCESS_LOG
  value: {{ $v.config.accessLog | toString | quote }}
{{- with $v.tracing.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with $v.tracing.sampler }}
- name: OTEL_TRACES_SAMPLER
  value: {{ . | quote }}
{{- end }}
{{- with $v.tracing.samplerArg }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ . | quote }}
{{- end }}
{{- with $v.tracing.resourceAttributes }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ . | quote }}
{{- end }}
- name: ECOMOPS_KAFKA_BOOTSTRAP
  value: {{ required "kafka.bootstrap is required" $v.kafka.bootstrap | quote }}
- name: ECOMOPS_KAFKA_SECURITY_PROTOCOL
  value: {{ $v.kafka.securityProtocol | quote }}
{{- if $v.kafka.sasl.mechanism }}
- name: ECOMOPS_KAFKA_SASL_MECHANISM
  value: {{ $v.kafka.sasl.mechanism | quote }}
- name: ECOMOPS_KAFKA_SASL_USERNAME
  value: {{ required "kafka.sasl.username is required when kafka.sasl.mechanism is set" $v.kafka.sasl.username | quote }}
- name: ECOMOPS_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ required "kafka.sasl.passwordSecret.name is required when kafka.sasl.mechanism is set" $v.kafka.sasl.passwordSecret.name | quote }}
      key: {{ $v.kafka.sasl.passwordSecret.key | quote }}
{{- end }}
{{- if $v.auth.jwt.jwksUrl }}
- name: ECOMOPS_JWT_JWKS_URL
  value: {{ $v.auth.jwt.jwksUrl | quote }}
{{- else }}
- name: ECOMOPS_JWT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ default (printf "%s-jwt" (include "ecomops.fullname" .)) $v.auth.jwt.secret.name | quote }}
      key: {{ $v.auth.jwt.secret.key | quote }}
{{- end }}
- name: ECOMOPS_JWT_ISSUER
  value: {{ $v.auth.jwt.issuer | quote }}
- name: ECOMOPS_JWT_AUDIENCE
  value: {{ $v.auth.jwt.audience | quote }}
{{- end -}}

{{/*
Database URL of one component. Call with the merged component.
*/}}
{{- define "ecomops.databaseEnv" -}}
- name: {{ .prefix }}_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ default (printf "%s-database" .fullname) .database.secretName | quote }}
      key: {{ .database.key | quote }}
{{- end -}}

{{/*
A NetworkPolicy peer list from {cidrs, namespaceSelector, podSelector}; empty output = any.
*/}}
{{- define "ecomops.peers" -}}
{{- range .cidrs }}
- ipBlock:
    cidr: {{ . | quote }}
{{- end }}
{{- if or .namespaceSelector .podSelector }}
{{- $p := dict }}
{{- with .namespaceSelector }}{{ $_ := set $p "namespaceSelector" . }}{{ end }}
{{- with .podSelector }}{{ $_ := set $p "podSelector" . }}{{ end }}
{{ list $p | toYaml }}
{{- end }}
{{- end -}}

{{/*
An egress rule to {cidrs, ports, namespaceSelector, podSelector} over TCP.
*/}}
{{- define "ecomops.egressRule" -}}
{{- $peers := include "ecomops.peers" . | trim -}}
- ports:
  {{- range .ports }}
    - protocol: TCP
      port: {{ . }}
  {{- end }}
  {{- if $peers }}
  to:
    {{- $peers | nindent 4 }}
  {{- end }}
{{- end -}}
