{{/*
_helpers.tpl — named templates shared by the chart's manifests: labels, selectors, the security
contexts driven by security.podSecurity.*, the Secret and ServiceAccount names, and the checks
that refuse to render without the required secrets. Object names are fixed (scout-backend,
scout-frontend, scout-nginx, scout-redis, scout-config, scout-secrets) as in k8s/, so one release
per namespace.
*/}}

{{/* Labels of every object. Argument: dict "root" $ and optionally "component". */}}
{{- define "scout.labels" -}}
app.kubernetes.io/name: scout
app.kubernetes.io/part-of: scout
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end }}

{{/* Selector of a component's pods (immutable once deployed; the same as k8s/). */}}
{{- define "scout.selectorLabels" -}}
app.kubernetes.io/name: scout
app.kubernetes.io/component: {{ . }}
{{- end }}

{{/* Labels of a component's pods. Argument: dict "root" $ "component" name. */}}
{{- define "scout.podLabels" -}}
app.kubernetes.io/name: scout
app.kubernetes.io/part-of: scout
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end }}

{{/*
Pod securityContext. Argument: dict "root" $ and optionally "sysctls" (a list). With
security.podSecurity.enabled=false only the sysctls remain (nginx needs one to bind port 80).
*/}}
{{- define "scout.podSecurityContext" -}}
{{- $ps := .root.Values.security.podSecurity -}}
{{- if $ps.enabled }}
runAsNonRoot: {{ $ps.runAsNonRoot }}
runAsUser: {{ $ps.runAsUser }}
runAsGroup: {{ $ps.runAsGroup }}
fsGroup: {{ $ps.fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end }}
{{- with .sysctls }}
sysctls:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Container securityContext from security.podSecurity.*. Argument: $. */}}
{{- define "scout.containerSecurityContext" -}}
{{- $ps := .Values.security.podSecurity -}}
{{- if $ps.enabled }}
runAsNonRoot: {{ $ps.runAsNonRoot }}
runAsUser: {{ $ps.runAsUser }}
runAsGroup: {{ $ps.runAsGroup }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: {{ $ps.readOnlyRootFilesystem }}
{{- if $ps.dropAllCapabilities }}
capabilities:
  drop: [ALL]
{{- end }}
{{- end }}
{{- end }}

{{/* The Secret holding auth-token and redis-password: the chart's own or auth.existingSecret. */}}
{{- define "scout.secretName" -}}
{{- .Values.auth.existingSecret | default "scout-secrets" -}}
{{- end }}

{{/* The backend's ServiceAccount: its own with rbac.create, else rbac.existingServiceAccount. */}}
{{- define "scout.serviceAccountName" -}}
{{- if .Values.rbac.create -}}
scout-backend
{{- else -}}
{{- required "rbac.existingServiceAccount is required when rbac.create is false" .Values.rbac.existingServiceAccount -}}
{{- end -}}
{{- end }}

{{/* Does the backend get SCOUT_AUTH_TOKEN from the Secret? "true" or "". */}}
{{- define "scout.hasAuthToken" -}}
{{- if or .Values.auth.existingSecret .Values.auth.token -}}true{{- end -}}
{{- end }}

{{/*
Refuses to render without the secrets the settings need. The chart never invents a token
(randAlphaNum would change on every upgrade and lock clients out). Renders nothing.
*/}}
{{- define "scout.validateSecrets" -}}
{{- if not .Values.auth.existingSecret -}}
{{- if .Values.auth.protectedAPI -}}
{{- $_ := required "auth.token is required while auth.protectedAPI is true: --set auth.token=\"$(openssl rand -base64 32)\", or name an existing Secret with auth.existingSecret" .Values.auth.token -}}
{{- end -}}
{{- if and .Values.auth.token (lt (len (toString .Values.auth.token)) 32) -}}
{{- fail "auth.token must be at least 32 characters (scoutd refuses a shorter bootstrap token): use openssl rand -base64 32" -}}
{{- end -}}
{{- if .Values.redis.authEnabled -}}
{{- $_ := required "redis.password is required while redis.authEnabled is true: --set redis.password=\"$(openssl rand -base64 32)\", or name an existing Secret with auth.existingSecret" .Values.redis.password -}}
{{- end -}}
{{- end -}}
{{- end }}
