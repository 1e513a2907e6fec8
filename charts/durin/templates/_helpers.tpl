{{- define "durin.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "durin.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "durin.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "durin.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "durin.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "durin.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "durin.selectorLabels" -}}
app.kubernetes.io/name: {{ include "durin.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "durin.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "durin.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "durin.engineAddress" -}}
{{- if .Values.operator.engineAddress }}
{{- .Values.operator.engineAddress }}
{{- else }}
{{- printf "%s.%s.svc:%v" (include "durin.fullname" .) .Release.Namespace .Values.service.grpcPort }}
{{- end }}
{{- end }}

{{- define "durin.clusterTLSSecret" -}}
{{- default (printf "%s-cluster-tls" (include "durin.fullname" .)) .Values.cluster.tls.secretName }}
{{- end }}

{{- /* The UI's own labels: not the engine's selector, so the engine's Services never pick UI pods. */}}
{{- define "durin.uiSelectorLabels" -}}
app.kubernetes.io/name: {{ include "durin.name" . }}-ui
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: ui
{{- end }}

{{- define "durin.uiLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "durin.uiSelectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}
