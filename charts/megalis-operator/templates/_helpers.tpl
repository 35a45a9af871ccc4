{{- define "megalis-operator.name" -}}megalis-operator{{- end -}}

{{- define "megalis-operator.fullname" -}}
{{- if contains "megalis-operator" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-megalis-operator" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "megalis-operator.selectorLabels" -}}
app.kubernetes.io/name: megalis-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "megalis-operator.labels" -}}
{{ include "megalis-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "megalis-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "megalis-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "megalis-operator.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}
