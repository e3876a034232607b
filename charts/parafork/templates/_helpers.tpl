{{/*
Names and labels of every resource the chart creates: templates take them from here and nowhere
else, so a rename or a new label is one edit.
*/}}

{{/* The chart's name, or nameOverride. */}}
{{- define "parafork.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every resource name: fullnameOverride, else the release name, followed by the
chart's name unless the release name already contains it. 63 characters: some name fields are DNS
labels.
*/}}
{{- define "parafork.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* chart-version, for the helm.sh/chart label. */}}
{{- define "parafork.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels that select the agent Pods. Never change them: a DaemonSet's selector is immutable. */}}
{{- define "parafork.selectorLabels" -}}
app.kubernetes.io/name: {{ include "parafork.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every resource: the selector labels, the chart's and the release's, and commonLabels. */}}
{{- define "parafork.labels" -}}
{{ include "parafork.selectorLabels" . }}
helm.sh/chart: {{ include "parafork.chart" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: agent
app.kubernetes.io/part-of: parafork
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The ServiceAccount the agent runs as. */}}
{{- define "parafork.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "parafork.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The ClusterRole and its binding are cluster-wide: their name carries the release namespace too, so
the same release name in two namespaces does not collide.
*/}}
{{- define "parafork.clusterRoleName" -}}
{{- printf "%s-%s" (include "parafork.fullname" .) .Release.Namespace | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The metrics Service; the ServiceMonitor selects it by these names. */}}
{{- define "parafork.metricsServiceName" -}}
{{- printf "%s-metrics" (include "parafork.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "parafork.dashboardsConfigMapName" -}}
{{- printf "%s-dashboards" (include "parafork.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* repository:tag, or repository@digest when a digest pins it. */}}
{{- define "parafork.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
How long the kubelet waits after SIGTERM: unless set, long enough for the agent's own shutdown
(running Tasks get shutdownGraceSeconds, then SIGTERM to SIGKILL takes terminationGraceSeconds)
plus 15 s to record what it stopped.
*/}}
{{- define "parafork.terminationGracePeriodSeconds" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add .Values.agent.shutdownGraceSeconds .Values.agent.terminationGraceSeconds 15 }}
{{- else }}
{{- .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/* True (non-empty) when the ServiceMonitor is asked for and the cluster serves its API. */}}
{{- define "parafork.serviceMonitorRendered" -}}
{{- if and .Values.serviceMonitor.enabled .Values.service.enabled (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor") -}}
true
{{- end }}
{{- end }}

{{/* A flag's value as written: a string as it is, a number whole (Helm reads numbers as floats, which print as 1.073741824e+09). */}}
{{- define "parafork.flagValue" -}}
{{- if kindIs "string" . }}{{ . }}{{ else }}{{ int64 . }}{{ end }}
{{- end }}

{{/*
The ValidatingAdmissionPolicy and its binding are cluster-wide: their name carries the release
namespace too, as the ClusterRole's does.
*/}}
{{- define "parafork.sandboxPolicyName" -}}
{{- printf "%s-%s-sandbox-policy" (include "parafork.fullname" .) .Release.Namespace }}
{{- end }}

{{/*
CEL: whether the host path expression given (a string) lies inside sandboxPolicy.allowedHostPaths,
as the agent's lexical check has it (src/sandbox/sandbox-policy.ts): no '..' component, equal to an
allowed path or below it. The agent then also resolves links, which CEL cannot.
*/}}
{{- define "parafork.celInsideAllowedHostPaths" -}}
(!{{ . }}.split('/').exists(part, part == '..') && variables.allowedHostPaths.exists(allowed, {{ . }} == allowed || {{ . }}.startsWith(allowed + '/')))
{{- end }}

{{/* CEL: why the host path expression given is not inside the allowed host paths, as the agent words it. */}}
{{- define "parafork.celOutsideAllowedHostPathsWhy" -}}
({{ . }}.split('/').exists(part, part == '..') ? "a host path with '..' is not checked against the agent's allowed host paths (" + variables.allowedHostPathsText + ")" : "it is not inside the agent's allowed host paths (" + variables.allowedHostPathsText + ")")
{{- end }}

{{/*
The node directory of the agent's state (values state.hostPath): one per release by default.
*/}}
{{- define "parafork.stateHostPath" -}}
{{- .Values.state.hostPath | default (printf "/var/lib/parafork/%s" .Release.Name) }}
{{- end }}

{{/*
The agent's Localhost seccomp profile, relative to the kubelet's profile directory (values
agentSeccompProfile): one per release, written by the DaemonSet's init container.
*/}}
{{- define "parafork.agentSeccompProfile" -}}
{{- printf "parafork/%s-agent.json" (include "parafork.fullname" .) }}
{{- end }}

{{/*
The agent container's securityContext: values.securityContext, with the chart's Localhost seccomp
profile when agentSeccompProfile.install is on.
*/}}
{{- define "parafork.agentSecurityContext" -}}
{{- $context := deepCopy .Values.securityContext }}
{{- if .Values.agentSeccompProfile.install }}
{{- if not .Values.seccompProfiles.hostPath }}
{{- fail "agentSeccompProfile.install needs seccompProfiles.hostPath, the kubelet's seccomp profile directory, to write the agent's profile into" }}
{{- end }}
{{- $_ := set $context "seccompProfile" (dict "type" "Localhost" "localhostProfile" (include "parafork.agentSeccompProfile" .)) }}
{{- end }}
{{- toYaml $context }}
{{- end }}
