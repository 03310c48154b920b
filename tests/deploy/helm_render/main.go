// helm_render: renders a Helm chart the way `helm template` does, for machines without Helm.
//
// Helm is not packaged for Debian and this project's CI has no internet, so the chart in
// charts/scout is rendered by this small program instead. It implements the subset of Helm's
// engine the chart uses, on top of the same libraries Helm itself uses (Go's text/template,
// Masterminds/sprig for the function library, sigs.k8s.io/yaml for values and toYaml):
//
//   - Chart.yaml and values.yaml are loaded; `-f FILE` and `--set` / `--set-string` overrides are
//     deep-merged over the defaults in command-line order (a null removes a key, as in Helm);
//   - .Values, .Release (Name, Namespace, Service, IsInstall, IsUpgrade, Revision), .Chart
//     (Name, Version, AppVersion, Description, Type, ApiVersion), .Template (Name, BasePath),
//     .Files.Get (the chart's files outside templates/) and a minimal .Capabilities
//     (KubeVersion.{Version,Major,Minor,GitVersion} from --kube-version, default v1.29.0;
//     APIVersions.Has); Chart.yaml's kubeVersion constraint is checked against that version;
//   - sprig's functions without env/expandenv (Helm removes them too), plus Helm's include, tpl,
//     toYaml, fromYaml, toJson, fromJson, required, fail and lookup (always empty, as in
//     `helm template` without a cluster); "<no value>" prints as the empty string;
//   - every templates/* file is parsed (files starting with "_" are partials only), every other
//     file except NOTES.txt is rendered, split on "---", whitespace-only documents are dropped,
//     each document must be a YAML mapping with apiVersion, kind and metadata.name, and the
//     documents are printed in Helm's install order by kind, each after "# Source: <template>".
//
// Not implemented (the chart must not use them): subcharts and dependencies, .Files.Glob /
// AsConfig / AsSecrets / Lines, .helmignore, hooks, values.schema.json validation, library
// charts, post-renderers, `helm lint` rules.
// Real `helm template` / `helm lint --strict` should still be run where Helm is available.
//
// Build offline against Debian's Go packages in GOPATH mode (the import paths are the
// GOPATH ones, hence no go.mod):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o /tmp/helm_render .
//
// Usage:
//
//	helm_render [--name R] [--namespace NS] [-f values.yaml]... [--set k=v]...
//	            [--set-string k=v]... [--kube-version V] [--notes] CHART_DIR
//
// Exit status: 0 rendered, 1 the chart failed to render (message on stderr), 2 bad usage.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/semver"
	"github.com/Masterminds/sprig"
	"sigs.k8s.io/yaml"
)

type values = map[string]interface{}

// override is one -f / --set / --set-string argument, applied in command-line order.
type override struct {
	kind string // "file", "set" or "set-string"
	arg  string
}

type options struct {
	release     string
	namespace   string
	kubeVersion string
	overrides   []override
	notes       bool
	chartDir    string
}

func usage(msg string) {
	fmt.Fprintf(os.Stderr, "helm_render: %s\nusage: helm_render [--name R] [--namespace NS] "+
		"[-f values.yaml]... [--set k=v]... [--set-string k=v]... [--kube-version V] [--notes] CHART_DIR\n", msg)
	os.Exit(2)
}

func parseArgs(args []string) options {
	o := options{release: "scout", namespace: "scout", kubeVersion: "v1.29.0"}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(a, "=")
		needVal := func() string {
			if hasVal {
				return val
			}
			if i+1 >= len(args) {
				usage(a + " needs a value")
			}
			i++
			return args[i]
		}
		switch name {
		case "--name":
			o.release = needVal()
		case "-n", "--namespace":
			o.namespace = needVal()
		case "-f", "--values":
			o.overrides = append(o.overrides, override{"file", needVal()})
		case "--set":
			o.overrides = append(o.overrides, override{"set", needVal()})
		case "--set-string":
			o.overrides = append(o.overrides, override{"set-string", needVal()})
		case "--kube-version":
			o.kubeVersion = needVal()
		case "--notes":
			o.notes = true
		case "-h", "--help":
			usage("renders a chart like `helm template`")
		default:
			if strings.HasPrefix(a, "-") {
				usage("unknown option " + a)
			}
			if o.chartDir != "" {
				usage("only one chart directory")
			}
			o.chartDir = a
		}
	}
	if o.chartDir == "" {
		usage("no chart directory")
	}
	return o
}

// loadYAMLMap reads a YAML mapping with Helm's loader semantics (YAML → JSON, so numbers are
// float64 and keys are strings). An empty file is an empty mapping.
func loadYAMLMap(file string) (values, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	v := values{}
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if v == nil {
		v = values{}
	}
	return v, nil
}

// mergeValues deep-merges src over dst (dst is modified): maps merge key by key, anything else
// replaces, and a nil in src deletes the key, as Helm's coalescing of user values does.
func mergeValues(dst, src values) values {
	for k, sv := range src {
		if sv == nil {
			delete(dst, k)
			continue
		}
		sm, sIsMap := sv.(map[string]interface{})
		dm, dIsMap := dst[k].(map[string]interface{})
		if sIsMap && dIsMap {
			dst[k] = mergeValues(dm, sm)
		} else {
			dst[k] = sv
		}
	}
	return dst
}

// splitUnescaped splits s on sep where sep is not preceded by a backslash; the backslashes that
// escape sep are removed, others are kept.
func splitUnescaped(s string, sep byte) []string {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && s[i+1] == sep {
			cur.WriteByte(sep)
			i++
			continue
		}
		if s[i] == sep {
			parts = append(parts, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(s[i])
	}
	return append(parts, cur.String())
}

// typedValue follows Helm's --set typing: true/false → bool, null → nil, an integer that does not
// start with 0 → int64; everything else stays a string. --set-string keeps every value a string.
func typedValue(s string, asString bool) interface{} {
	if asString {
		return s
	}
	switch strings.ToLower(s) {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	}
	if s == "0" || (!strings.HasPrefix(s, "0") && !strings.HasPrefix(s, "-0") && s != "") {
		if iv, err := strconv.ParseInt(s, 10, 64); err == nil {
			return iv
		}
	}
	return s
}

var indexRE = regexp.MustCompile(`^([^\[\]]+)\[(\d+)\]$`)

// setPath stores val at the dotted path keys (a key may carry a list index, "a[0]").
func setPath(root values, keys []string, val interface{}) error {
	cur := root
	for i, k := range keys {
		last := i == len(keys)-1
		if m := indexRE.FindStringSubmatch(k); m != nil {
			name := m[1]
			idx, _ := strconv.Atoi(m[2])
			if idx > 1000 {
				return fmt.Errorf("list index %d too large in %q", idx, k)
			}
			list, _ := cur[name].([]interface{})
			for len(list) <= idx {
				list = append(list, nil)
			}
			if last {
				list[idx] = val
				cur[name] = list
				return nil
			}
			next, ok := list[idx].(map[string]interface{})
			if !ok {
				next = values{}
				list[idx] = next
			}
			cur[name] = list
			cur = next
			continue
		}
		if k == "" {
			return errors.New("empty key")
		}
		if last {
			cur[k] = val
			return nil
		}
		next, ok := cur[k].(map[string]interface{})
		if !ok {
			next = values{}
			cur[k] = next
		}
		cur = next
	}
	return nil
}

// parseSet turns one --set argument ("a.b=1,c={x,y}") into a values tree. Commas and dots in keys
// or values are escaped with a backslash, as with Helm.
func parseSet(arg string, asString bool) (values, error) {
	out := values{}
	// A {a,b} list holds commas that do not separate assignments: join them back.
	raw := splitUnescaped(arg, ',')
	var assigns []string
	for i := 0; i < len(raw); i++ {
		a := raw[i]
		if _, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(v, "{") && !strings.HasSuffix(v, "}") {
			for i+1 < len(raw) && !strings.HasSuffix(a, "}") {
				i++
				a += "," + raw[i]
			}
		}
		assigns = append(assigns, a)
	}
	for _, a := range assigns {
		if a == "" {
			continue
		}
		key, val, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("--set %q: key %q has no value", arg, a)
		}
		keys := splitUnescaped(key, '.')
		var v interface{}
		if strings.HasPrefix(val, "{") && strings.HasSuffix(val, "}") {
			list := []interface{}{}
			inner := val[1 : len(val)-1]
			if inner != "" {
				for _, item := range strings.Split(inner, ",") {
					list = append(list, typedValue(item, asString))
				}
			}
			v = list
		} else {
			v = typedValue(val, asString)
		}
		if err := setPath(out, keys, v); err != nil {
			return nil, fmt.Errorf("--set %q: %w", arg, err)
		}
	}
	return out, nil
}

// apiVersions implements .Capabilities.APIVersions.Has for the APIs the chart may probe.
type apiVersions []string

func (a apiVersions) Has(v string) bool {
	for _, x := range a {
		if x == v {
			return true
		}
	}
	return false
}

func capabilities(kube *semver.Version) values {
	v := "v" + kube.String()
	return values{
		"KubeVersion": values{"Version": v, "Major": strconv.FormatUint(kube.Major(), 10),
			"Minor": strconv.FormatUint(kube.Minor(), 10), "GitVersion": v},
		"APIVersions": apiVersions{
			"v1", "apps/v1", "policy/v1", "autoscaling/v2", "networking.k8s.io/v1",
			"rbac.authorization.k8s.io/v1", "batch/v1",
		},
		"HelmVersion": values{"Version": "v3-subset (helm_render)"},
	}
}

// chartFiles is .Files: the chart's non-template files, as Helm exposes them (Chart.yaml,
// values.yaml, values.schema.json, templates/ and charts/ are not among them). Only Get is
// implemented; a missing file is the empty string, as in Helm.
type chartFiles struct{ dir string }

func (f chartFiles) Get(name string) string {
	clean := path.Clean("/" + name)[1:]
	switch {
	case clean == "Chart.yaml", clean == "values.yaml", clean == "values.schema.json",
		strings.HasPrefix(clean, "templates/"), strings.HasPrefix(clean, "charts/"):
		return ""
	}
	data, err := os.ReadFile(filepath.Join(f.dir, filepath.FromSlash(clean)))
	if err != nil {
		return ""
	}
	return string(data)
}

// chartMeta exposes Chart.yaml under Helm's capitalised field names.
func chartMeta(c values) values {
	get := func(k string) interface{} {
		if v, ok := c[k]; ok {
			return v
		}
		return ""
	}
	return values{
		"Name": get("name"), "Version": get("version"), "AppVersion": get("appVersion"),
		"Description": get("description"), "Type": get("type"), "ApiVersion": get("apiVersion"),
		"KubeVersion": get("kubeVersion"), "Keywords": get("keywords"), "Home": get("home"),
	}
}

// funcMap is sprig's function library plus Helm's own functions; include and tpl need the
// template set, which is bound after parsing through the *template.Template pointer.
func funcMap(set **template.Template) template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	f["toYaml"] = func(v interface{}) string {
		data, err := yaml.Marshal(v)
		if err != nil {
			return ""
		}
		return strings.TrimSuffix(string(data), "\n")
	}
	f["fromYaml"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	f["fromJson"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	f["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return v, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return v, errors.New(msg)
		}
		return v, nil
	}
	f["fail"] = func(msg string) (string, error) { return "", errors.New(msg) }
	f["lookup"] = func(apiVersion, kind, namespace, name string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	f["include"] = func(name string, data interface{}) (string, error) {
		var buf bytes.Buffer
		if err := (*set).ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	f["tpl"] = func(text string, data interface{}) (string, error) {
		clone, err := (*set).Clone()
		if err != nil {
			return "", err
		}
		t, err := clone.New("tpl").Parse(text)
		if err != nil {
			return "", fmt.Errorf("tpl: %w", err)
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return "", err
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	return f
}

// installOrder is Helm's order of kinds for install (kinds not listed go last).
var installOrder = []string{
	"PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange",
	"PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList",
	"ConfigMap", "StorageClass", "PersistentVolume", "PersistentVolumeClaim",
	"CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
	"ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service",
	"DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
	"HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress",
	"APIService",
}

func kindRank(kind string) int {
	for i, k := range installOrder {
		if k == kind {
			return i
		}
	}
	return len(installOrder)
}

type manifest struct {
	source  string
	content string
	kind    string
}

var docSep = regexp.MustCompile(`(?m)^---[ \t]*(#.*)?$`)

// callErrRE pulls the message and position out of Go's "error calling required: ..." errors so
// that failures read like Helm's "execution error at (file:line:col): message".
var callErrRE = regexp.MustCompile(`^template: ([^:]+:\d+:\d+): executing .* error calling (?:required|fail): (.*)$`)

func friendlyError(err error) string {
	msg := err.Error()
	if m := callErrRE.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("execution error at (%s): %s", m[1], m[2])
	}
	return msg
}

func render(o options) (string, string, error) {
	chart, err := loadYAMLMap(filepath.Join(o.chartDir, "Chart.yaml"))
	if err != nil {
		return "", "", err
	}
	name, _ := chart["name"].(string)
	if name == "" {
		return "", "", errors.New("Chart.yaml: name is required")
	}
	if _, ok := chart["version"].(string); !ok {
		return "", "", errors.New("Chart.yaml: version is required (as a string)")
	}
	if deps, ok := chart["dependencies"]; ok && deps != nil {
		return "", "", errors.New("Chart.yaml: dependencies are not supported by helm_render")
	}
	kube, err := semver.NewVersion(o.kubeVersion)
	if err != nil {
		return "", "", fmt.Errorf("--kube-version %q: %w", o.kubeVersion, err)
	}
	if kc, ok := chart["kubeVersion"].(string); ok && kc != "" {
		c, err := semver.NewConstraint(kc)
		if err != nil {
			return "", "", fmt.Errorf("Chart.yaml: kubeVersion %q: %w", kc, err)
		}
		if !c.Check(kube) {
			return "", "", fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes v%s", kc, kube)
		}
	}
	vals, err := loadYAMLMap(filepath.Join(o.chartDir, "values.yaml"))
	if err != nil {
		return "", "", err
	}
	for _, ov := range o.overrides {
		var src values
		switch ov.kind {
		case "file":
			src, err = loadYAMLMap(ov.arg)
		default:
			src, err = parseSet(ov.arg, ov.kind == "set-string")
		}
		if err != nil {
			return "", "", err
		}
		vals = mergeValues(vals, src)
	}

	tdir := filepath.Join(o.chartDir, "templates")
	entries, err := os.ReadDir(tdir)
	if err != nil {
		return "", "", err
	}
	var set *template.Template
	set = template.New("gotpl").Funcs(funcMap(&set)).Option("missingkey=zero")
	var files []string
	for _, e := range entries {
		if e.IsDir() {
			return "", "", fmt.Errorf("templates/%s: subdirectories are not supported", e.Name())
		}
		text, err := os.ReadFile(filepath.Join(tdir, e.Name()))
		if err != nil {
			return "", "", err
		}
		tname := path.Join(name, "templates", e.Name())
		if _, err := set.New(tname).Parse(string(text)); err != nil {
			return "", "", err
		}
		files = append(files, e.Name())
	}
	sort.Strings(files)

	top := values{
		"Values": vals,
		"Release": values{
			"Name": o.release, "Namespace": o.namespace, "Service": "Helm",
			"IsInstall": true, "IsUpgrade": false, "Revision": 1,
		},
		"Chart":        chartMeta(chart),
		"Capabilities": capabilities(kube),
		"Files":        chartFiles{dir: o.chartDir},
	}
	var manifests []manifest
	notes := ""
	for _, f := range files {
		if strings.HasPrefix(f, "_") {
			continue
		}
		tname := path.Join(name, "templates", f)
		data := values{}
		for k, v := range top {
			data[k] = v
		}
		data["Template"] = values{"Name": tname, "BasePath": path.Join(name, "templates")}
		var buf bytes.Buffer
		if err := set.ExecuteTemplate(&buf, tname, data); err != nil {
			return "", "", errors.New(friendlyError(err))
		}
		out := strings.ReplaceAll(buf.String(), "<no value>", "")
		if f == "NOTES.txt" {
			notes = out
			continue
		}
		for _, doc := range docSep.Split(out, -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var obj map[string]interface{}
			if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
				return "", "", fmt.Errorf("%s: rendered YAML is invalid: %w\n%s", tname, err, doc)
			}
			if obj == nil {
				continue // only comments
			}
			kind, _ := obj["kind"].(string)
			api, _ := obj["apiVersion"].(string)
			meta, _ := obj["metadata"].(map[string]interface{})
			oname, _ := meta["name"].(string)
			if kind == "" || api == "" || oname == "" {
				return "", "", fmt.Errorf("%s: a rendered document lacks apiVersion, kind or metadata.name:\n%s", tname, doc)
			}
			manifests = append(manifests, manifest{tname, strings.Trim(doc, "\n"), kind})
		}
	}
	sort.SliceStable(manifests, func(i, j int) bool {
		return kindRank(manifests[i].kind) < kindRank(manifests[j].kind)
	})
	var sb strings.Builder
	for _, m := range manifests {
		fmt.Fprintf(&sb, "---\n# Source: %s\n%s\n", m.source, m.content)
	}
	return sb.String(), notes, nil
}

func main() {
	o := parseArgs(os.Args[1:])
	out, notes, err := render(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %s\n", err)
		os.Exit(1)
	}
	os.Stdout.WriteString(out)
	if o.notes && notes != "" {
		fmt.Fprintf(os.Stdout, "\nNOTES:\n%s\n", strings.TrimSpace(notes))
	}
}
