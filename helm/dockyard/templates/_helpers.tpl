{{/* Names and labels. */}}

{{- define "dockyard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The prefix of every resource name: fullnameOverride, else the release name (with
"-dockyard" unless it holds the chart name already), at most 63 characters. */}}
{{- define "dockyard.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "dockyard.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "dockyard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dockyard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "dockyard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "dockyard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "dockyard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "dockyard.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "dockyard.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* A value as dockyard reads it from the environment. Numbers from values are float64:
whole ones are written as integers (1048576, never 1.048576e+06), others as Go prints them. */}}
{{- define "dockyard.scalar" -}}
{{- if kindIs "float64" . -}}
{{- if eq . (floor .) -}}{{- printf "%d" (int64 .) -}}{{- else -}}{{- printf "%v" . -}}{{- end -}}
{{- else -}}
{{- printf "%v" . -}}
{{- end -}}
{{- end -}}

{{/* Where the chart mounts things. */}}
{{- define "dockyard.configDir" -}}/etc/dockyard{{- end -}}
{{- define "dockyard.secretsDir" -}}/var/run/secrets/dockyard{{- end -}}

{{- define "dockyard.hasConfig" -}}
{{- if or .Values.config.dockyardYaml .Values.config.flows -}}true{{- end -}}
{{- end -}}

{{/* The Secret holding the API token ("" when there is none). */}}
{{- define "dockyard.apiTokenSecret" -}}
{{- if .Values.apiToken.existingSecret -}}
{{- .Values.apiToken.existingSecret -}}
{{- else if .Values.apiToken.generate -}}
{{- printf "%s-api-token" (include "dockyard.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The git credential files: {file name under source/: key in the Secret}. */}}
{{- define "dockyard.sourceFiles" -}}
{{- $c := .Values.sourceCredentials -}}
{{- $files := dict -}}
{{- if $c.tokenKey }}{{ $_ := set $files "token" $c.tokenKey }}{{ end -}}
{{- if $c.sshKeyKey }}{{ $_ := set $files "ssh-key" $c.sshKeyKey }}{{ end -}}
{{- if $c.knownHostsKey }}{{ $_ := set $files "known_hosts" $c.knownHostsKey }}{{ end -}}
{{- toJson $files -}}
{{- end -}}

{{/* Values that cannot work together fail the render with what to change. */}}
{{- define "dockyard.validate" -}}
{{- $replicas := int64 .Values.replicaCount -}}
{{- if and (gt $replicas 1) (not .Values.database.existingSecret) -}}
{{- fail (printf "replicaCount %d needs PostgreSQL: set database.existingSecret to a Secret that holds the postgresql:// URL (key database.key); SQLite on a volume serves one replica" $replicas) -}}
{{- end -}}
{{- $grace := .Values.settings.shutdownGrace -}}
{{- $kill := .Values.settings.killDelay -}}
{{- $needed := addf $grace $kill 5 -}}
{{- $given := .Values.terminationGracePeriodSeconds -}}
{{- if and (not (kindIs "invalid" $given)) (lt (float64 $given) $needed) -}}
{{- fail (printf "terminationGracePeriodSeconds %s is shorter than settings.shutdownGrace %s + settings.killDelay %s + 5 s to record the runs = %s: raise it to at least %d, lower the grace, or leave it null (derived: %d)" (include "dockyard.scalar" $given) (include "dockyard.scalar" $grace) (include "dockyard.scalar" $kill) (include "dockyard.scalar" $needed) (int64 (ceil $needed)) (int64 (ceil (addf $grace $kill .Values.shutdownMargin)))) -}}
{{- end -}}
{{- $c := .Values.sourceCredentials -}}
{{- $keys := list $c.tokenKey $c.sshKeyKey $c.knownHostsKey $c.webhookSecretKey | compact -}}
{{- if and $keys (not $c.existingSecret) -}}
{{- fail "sourceCredentials: tokenKey, sshKeyKey, knownHostsKey and webhookSecretKey are keys of sourceCredentials.existingSecret: set it to the Secret's name" -}}
{{- end -}}
{{- if and $c.existingSecret (not $keys) -}}
{{- fail (printf "sourceCredentials.existingSecret %q is set but no key of it is used: set tokenKey, sshKeyKey (with knownHostsKey) or webhookSecretKey" $c.existingSecret) -}}
{{- end -}}
{{- if and .Values.config.dockyardYaml .Values.settings.config -}}
{{- fail (printf "settings.config %q and config.dockyardYaml both name the dockyard.yaml to serve: give one (config.dockyardYaml is served from /etc/dockyard/dockyard.yaml)" .Values.settings.config) -}}
{{- end -}}
{{- if hasKey .Values.config.flows "dockyard.yaml" -}}
{{- fail "config.flows must not hold dockyard.yaml: give it as config.dockyardYaml" -}}
{{- end -}}
{{- end -}}

{{- define "dockyard.terminationGracePeriodSeconds" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds -}}
{{- int64 (ceil (addf .Values.settings.shutdownGrace .Values.settings.killDelay .Values.shutdownMargin)) -}}
{{- else -}}
{{- int64 .Values.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}

{{/* A setting's default when it is null in values (for the probe maths). */}}
{{- define "dockyard.settingOr" -}}
{{- $value := index .settings .key -}}
{{- if kindIs "invalid" $value }}{{ .default }}{{ else }}{{ include "dockyard.scalar" $value }}{{ end -}}
{{- end -}}

{{/* The probes: the chart's, with probes.<name> merged over them. */}}
{{- define "dockyard.probes" -}}
{{- $http := dict "path" "/health" "port" "http" -}}
{{- $liveness := dict "httpGet" $http "periodSeconds" 10 "timeoutSeconds" 5 "failureThreshold" 3 -}}
{{- $readiness := dict "httpGet" (dict "path" "/ready" "port" "http") "periodSeconds" 5 "timeoutSeconds" 5 "failureThreshold" 2 -}}
{{- $startupPeriod := .Values.probes.startup.periodSeconds | default 5 -}}
{{- $wait := include "dockyard.settingOr" (dict "settings" .Values.settings "key" "sourceStartupTimeout" "default" 300) | float64 -}}
{{- if .Values.database.existingSecret -}}
{{- $wait = addf $wait (include "dockyard.settingOr" (dict "settings" .Values.settings "key" "databaseWait" "default" 300) | float64) -}}
{{- end -}}
{{- $tries := int64 (ceil (divf (addf $wait 30) $startupPeriod)) -}}
{{- $startup := dict "httpGet" (dict "path" "/health" "port" "http") "periodSeconds" $startupPeriod "timeoutSeconds" 5 "failureThreshold" $tries -}}
{{- $probes := dict
    "livenessProbe" (mergeOverwrite $liveness (deepCopy .Values.probes.liveness))
    "readinessProbe" (mergeOverwrite $readiness (deepCopy .Values.probes.readiness))
    "startupProbe" (mergeOverwrite $startup (deepCopy .Values.probes.startup)) -}}
{{- toYaml $probes -}}
{{- end -}}
