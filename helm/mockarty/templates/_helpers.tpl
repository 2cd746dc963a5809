{{/* Names and labels shared by the templates. */}}
{{- define "mockarty.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "mockarty.operatorName" -}}
{{- printf "%s-operator" (include "mockarty.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mockarty.serviceAccountName" -}}
{{- default (include "mockarty.operatorName" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "mockarty.selectorLabels" -}}
app.kubernetes.io/name: mockarty
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "mockarty.labels" -}}
{{ include "mockarty.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}
