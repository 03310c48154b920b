#!/usr/bin/env python3
"""k8s_checks.py — proves, offline, that a set of Kubernetes objects meets Scout's security guide
(shared/seeds/SECURITY-GUIDE.md). Used on k8s/ + k8s/security/ (tests/deploy/test_k8s.py) and on
the Helm chart's rendered output (tests/deploy/test_helm.py). Every check returns a list of
human-readable problems; an empty list means the item holds.

What each function proves, by the guide's "Production Security Checklist" item:
  Network policies enabled ............. check_network_policies: computes, from the NetworkPolicies,
        every (source, destination, port) flow they allow and asserts it is exactly the guide's
        "Network Policies" list (frontend -> backend:8000; nginx -> frontend:3000 and backend:8000;
        backend -> redis:6379; prometheus -> backend:8000; external -> nginx:80 unless
        allow_external=False) plus DNS (backend, frontend, nginx -> kube-dns:53 UDP/TCP); and that
        every pod is under a default-deny for both Ingress and Egress.
  Pod security standards enabled ....... check_namespace_pss: every namespaced object names its
        namespace, and that Namespace enforces, audits and warns at "restricted" (version latest).
  Non-root containers running .......... check_pod_security: pod and container securityContext
        (runAsNonRoot, uid/gid 1000, fsGroup 1000, seccomp RuntimeDefault, no privilege escalation,
        read-only root, capabilities drop ALL and add none, not privileged), no host namespaces,
        hostPath or hostPort, only restricted-profile volume types and safe sysctls, and /tmp
        writable through an emptyDir — the guide's "Pod Security Standards" list.
  RBAC enabled with minimal permissions  check_rbac: no ClusterRole/ClusterRoleBinding; Roles grant
        only get/list/watch, no wildcards, nothing on Secrets or pod exec/attach/port-forward;
        RoleBindings bind a Role (not a ClusterRole) to the backend's ServiceAccount only; the
        backend runs as that ServiceAccount and no pod mounts an API token.
  Authentication token configured ...... check_auth_and_redis: the backend runs with
  Redis authentication enabled           SCOUT_PROTECTED_API=true and gets SCOUT_AUTH_TOKEN and
        REDIS_PASSWORD (or their _FILE forms) from a Secret that exists and holds the key, never a
        literal; redis-server runs with --requirepass $(VAR) where VAR comes from the same Secret key.
  Secrets used instead of ConfigMaps ... check_secrets_not_in_configmaps: no ConfigMap key or value
        looks like a secret (password/token/secret keys with real values, 32+ byte base64/hex
        strings, credentials in URLs, requirepass lines); no secret-looking env var is a literal in
        a pod spec; every Secret carries data (valid base64) or stringData.
  Resource limits configured ........... check_resources: every container and initContainer has cpu
        and memory requests and limits, and no limit is below its request.
  Health checks enabled ................ check_probes: every container of a long-running workload
        has liveness and readiness probes aimed at a declared port; the backend's liveness and
        startup probes GET /docs on 8000 and its readiness GET /readyz on 8000; frontend and nginx
        probe GET / on 3000 and 80.

Components are told apart by the pod label app.kubernetes.io/component (backend, frontend, nginx,
redis, prometheus). Prometheus is not part of these manifests; the flow check models it as a pod
labelled component=prometheus in the application's namespace. Everything outside the namespace
(clients outside the cluster, pods in other namespaces, kube-system) is "external", except the
DNS service (k8s-app=kube-dns in kube-system) as a destination.

Also here: compute_flows (the flow set itself), validate_schemas (the Kubernetes OpenAPI schemas
through node tests/deploy/validate/validate.mjs; raises SchemaToolMissing without node/npm), and
nginx_config_from_deploy / sync_nginx (k8s/nginx-configmap.yaml is deploy/nginx/ with the
Services' names, plus a checksum annotation on nginx's pod template so a change rolls the pods).

CLI: python3 tests/deploy/k8s_checks.py [--no-external] FILE|DIR|- ...  prints the problems and
exits 1 when there are any. `--sync-nginx` rewrites k8s/nginx-configmap.yaml from deploy/nginx/
and the checksum annotation in k8s/nginx.yaml.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import os
import re
import sys
from collections import Counter
from pathlib import Path

import yaml

UID = 1000
GID = 1000
APP_COMPONENT = "app.kubernetes.io/component"

# --- loading -----------------------------------------------------------------------------------


def _docs_from_text(text: str) -> list[dict]:
    out = []
    for doc in yaml.safe_load_all(text):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ValueError(f"a YAML document is not a mapping: {doc!r:.60}")
        if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            out.extend(i for i in doc["items"] if i)
        else:
            out.append(doc)
    return out


def load_objects(texts_or_paths) -> list[dict]:
    """Kubernetes objects from YAML: each item may be a path to a file, a directory (its *.yaml,
    *.yml and *.json files, like `kubectl apply -f DIR`), "-" for stdin, YAML text, or an object
    (dict). A single item may be passed without a list. Empty documents are skipped; `kind: List`
    is flattened."""
    if isinstance(texts_or_paths, (str, bytes, os.PathLike, dict)):
        texts_or_paths = [texts_or_paths]
    objects: list[dict] = []
    for item in texts_or_paths:
        if isinstance(item, dict):
            objects.append(item)
            continue
        if isinstance(item, bytes):
            item = item.decode()
        if isinstance(item, str) and item == "-":
            objects.extend(_docs_from_text(sys.stdin.read()))
            continue
        is_path = isinstance(item, os.PathLike) or ("\n" not in item and len(item) < 4096 and Path(item).exists())
        if not is_path:
            objects.extend(_docs_from_text(item))
            continue
        p = Path(item)
        if p.is_dir():
            for f in sorted(p.iterdir()):
                if f.is_file() and f.suffix in (".yaml", ".yml", ".json"):
                    objects.extend(_docs_from_text(f.read_text()))
        else:
            objects.extend(_docs_from_text(p.read_text()))
    return objects


# --- object helpers ----------------------------------------------------------------------------

POD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod")
LONG_RUNNING = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")
CLUSTER_SCOPED = {
    "Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass",
    "CustomResourceDefinition", "PriorityClass", "IngressClass", "RuntimeClass",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "CSIDriver", "VolumeAttachment",
}


def _meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


def ident(obj: dict) -> str:
    m = _meta(obj)
    ns = m.get("namespace")
    return f"{obj.get('kind')}/{ns + '/' if ns else ''}{m.get('name')}"


def pod_template(obj: dict) -> tuple[dict, dict] | None:
    """(pod metadata, pod spec) of a pod-bearing object, else None."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return _meta(obj), spec
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    elif kind not in POD_KINDS:
        return None
    t = spec.get("template") or {}
    return (t.get("metadata") or {}), (t.get("spec") or {})


def workloads(objects):
    """(object, pod metadata, pod spec) for every pod-bearing object."""
    for o in objects:
        pt = pod_template(o)
        if pt is not None:
            yield o, pt[0], pt[1]


def _containers(spec: dict, init: bool = True):
    for c in spec.get("containers") or []:
        yield "container", c
    if init:
        for c in spec.get("initContainers") or []:
            yield "initContainer", c


def component(obj: dict, pod_meta: dict) -> str:
    labels = pod_meta.get("labels") or {}
    return labels.get(APP_COMPONENT) or _meta(obj).get("name") or "?"


def _long_running(obj: dict, spec: dict) -> bool:
    if obj.get("kind") in LONG_RUNNING:
        return True
    return obj.get("kind") == "Pod" and spec.get("restartPolicy", "Always") == "Always"


# --- pod security ------------------------------------------------------------------------------

RESTRICTED_VOLUME_TYPES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                           "persistentVolumeClaim", "projected", "secret"}
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes"}


def check_pod_security(objects) -> list[str]:
    """Non-root, read-only root, no capabilities, no escalation, seccomp, /tmp on an emptyDir."""
    problems = []
    for obj, _pm, spec in workloads(objects):
        who = ident(obj)
        psc = spec.get("securityContext") or {}
        if psc.get("runAsNonRoot") is not True:
            problems.append(f"{who}: pod securityContext.runAsNonRoot is not true")
        for field, want in (("runAsUser", UID), ("runAsGroup", GID), ("fsGroup", GID)):
            if psc.get(field) != want:
                problems.append(f"{who}: pod securityContext.{field} is {psc.get(field)!r}, not {want}")
        if ((psc.get("seccompProfile") or {}).get("type")) != "RuntimeDefault":
            problems.append(f"{who}: pod securityContext.seccompProfile.type is not RuntimeDefault")
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(host) is True:
                problems.append(f"{who}: {host} is true")
        for s in psc.get("sysctls") or []:
            if s.get("name") not in SAFE_SYSCTLS:
                problems.append(f"{who}: sysctl {s.get('name')} is not in the restricted profile's safe set")
        volumes = {}
        for v in spec.get("volumes") or []:
            types = [k for k in v if k != "name"]
            volumes[v.get("name")] = types[0] if types else "emptyDir"
            for t in types:
                if t not in RESTRICTED_VOLUME_TYPES:
                    problems.append(f"{who}: volume {v.get('name')} is of type {t}, not allowed by the restricted profile")
        for role, c in _containers(spec):
            cwho = f"{who} {role} {c.get('name')}"
            sc = c.get("securityContext") or {}
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{cwho}: allowPrivilegeEscalation is not false")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{cwho}: readOnlyRootFilesystem is not true")
            if sc.get("privileged") is True:
                problems.append(f"{cwho}: privileged is true")
            caps = sc.get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []):
                problems.append(f"{cwho}: capabilities.drop does not contain ALL")
            if caps.get("add"):
                problems.append(f"{cwho}: capabilities.add is {caps.get('add')}")
            if sc.get("procMount") not in (None, "Default"):
                problems.append(f"{cwho}: procMount is {sc.get('procMount')}")
            eff = lambda f: sc[f] if f in sc else psc.get(f)  # noqa: E731 (the container overrides the pod)
            if eff("runAsNonRoot") is not True:
                problems.append(f"{cwho}: runAsNonRoot is not true")
            if eff("runAsUser") != UID:
                problems.append(f"{cwho}: runs as uid {eff('runAsUser')!r}, not {UID}")
            if eff("runAsGroup") != GID:
                problems.append(f"{cwho}: runs as gid {eff('runAsGroup')!r}, not {GID}")
            csec = (sc.get("seccompProfile") or {}).get("type")
            if csec not in (None, "RuntimeDefault", "Localhost"):
                problems.append(f"{cwho}: seccompProfile.type is {csec}")
            for p in c.get("ports") or []:
                if p.get("hostPort"):
                    problems.append(f"{cwho}: uses hostPort {p.get('hostPort')}")
            tmp = [m for m in c.get("volumeMounts") or [] if (m.get("mountPath") or "").rstrip("/") == "/tmp"]
            if not tmp:
                problems.append(f"{cwho}: /tmp is not a mounted volume (the root filesystem is read-only)")
            elif volumes.get(tmp[0].get("name")) != "emptyDir":
                problems.append(f"{cwho}: /tmp is mounted from {volumes.get(tmp[0].get('name'))!r}, not an emptyDir")
            elif tmp[0].get("readOnly"):
                problems.append(f"{cwho}: /tmp is mounted read-only")
    return problems


# --- resources ---------------------------------------------------------------------------------

_SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
           "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}


def quantity(q) -> float:
    """A Kubernetes resource quantity ("100m", "512Mi", 2, "1e3") as a number."""
    if isinstance(q, (int, float)) and not isinstance(q, bool):
        return float(q)
    m = re.fullmatch(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?\s*", str(q))
    if not m:
        raise ValueError(f"not a quantity: {q!r}")
    return float(m.group(1)) * _SUFFIX.get(m.group(2) or "", 1)


def check_resources(objects) -> list[str]:
    """cpu and memory requests and limits on every container and initContainer."""
    problems = []
    for obj, _pm, spec in workloads(objects):
        for role, c in _containers(spec):
            cwho = f"{ident(obj)} {role} {c.get('name')}"
            res = c.get("resources") or {}
            for kind in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    v = (res.get(kind) or {}).get(r)
                    if v in (None, ""):
                        problems.append(f"{cwho}: no {r} {kind[:-1]}")
                        continue
                    try:
                        if quantity(v) <= 0:
                            problems.append(f"{cwho}: {r} {kind[:-1]} {v!r} is not positive")
                    except ValueError as e:
                        problems.append(f"{cwho}: {r} {kind[:-1]}: {e}")
            for r in ("cpu", "memory"):
                req, lim = (res.get("requests") or {}).get(r), (res.get("limits") or {}).get(r)
                try:
                    if req is not None and lim is not None and quantity(lim) < quantity(req):
                        problems.append(f"{cwho}: {r} limit {lim} is below its request {req}")
                except ValueError:
                    pass
    return problems


# --- probes ------------------------------------------------------------------------------------

# Per component: (container port, {probe: (path, port)}) the conventions prescribe.
EXPECTED_PROBES = {
    "backend": (8000, {"livenessProbe": ("/docs", 8000), "startupProbe": ("/docs", 8000),
                       "readinessProbe": ("/readyz", 8000)}),
    "frontend": (3000, {"livenessProbe": ("/", 3000), "readinessProbe": ("/", 3000)}),
    # nginx answers /nginx-health itself (deploy/nginx/scout-routes.conf), so an upstream outage
    # neither restarts nor unlists it.
    "nginx": (80, {"livenessProbe": ("/nginx-health", 80), "readinessProbe": ("/nginx-health", 80)}),
}


def _port_number(c: dict, port) -> int | None:
    """A probe's or a policy's port (number or container port name) as a number of container c."""
    if isinstance(port, int):
        return port
    for p in c.get("ports") or []:
        if p.get("name") == port:
            return p.get("containerPort")
    return None


def check_probes(objects) -> list[str]:
    """Liveness and readiness on every long-running container; the components' prescribed probes."""
    problems = []
    for obj, pm, spec in workloads(objects):
        if not _long_running(obj, spec):
            continue
        comp = component(obj, pm)
        for _role, c in _containers(spec, init=False):
            cwho = f"{ident(obj)} container {c.get('name')}"
            declared = {p.get("containerPort") for p in c.get("ports") or []}
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                pr = c.get(probe)
                if pr is None:
                    if probe != "startupProbe":
                        problems.append(f"{cwho}: no {probe}")
                    continue
                handler = [h for h in ("httpGet", "tcpSocket", "exec", "grpc") if h in pr]
                if len(handler) != 1:
                    problems.append(f"{cwho}: {probe} has no single handler (httpGet, tcpSocket, exec or grpc)")
                    continue
                if handler[0] in ("httpGet", "tcpSocket", "grpc"):
                    n = _port_number(c, pr[handler[0]].get("port"))
                    if n not in declared:
                        problems.append(f"{cwho}: {probe} aims at port {pr[handler[0]].get('port')!r}, "
                                        f"which the container does not declare")
        if comp in EXPECTED_PROBES:
            port, probes = EXPECTED_PROBES[comp]
            mains = [c for _r, c in _containers(spec, init=False)
                     if port in {p.get("containerPort") for p in c.get("ports") or []}]
            if not mains:
                problems.append(f"{ident(obj)}: no container of the {comp} declares port {port}")
            for c in mains:
                for probe, (path, pport) in probes.items():
                    h = (c.get(probe) or {}).get("httpGet")
                    if not h or h.get("path") != path or _port_number(c, h.get("port")) != pport:
                        problems.append(f"{ident(obj)} container {c.get('name')}: {probe} is not "
                                        f"GET {path} on port {pport}")
    return problems


# --- secrets and ConfigMaps --------------------------------------------------------------------

_SECRET_WORDS = {"password", "passwd", "pass", "pwd", "secret", "secrets", "token", "apikey",
                 "credential", "credentials", "passphrase"}


def secret_looking_key(key: str) -> bool:
    words = [w.lower() for w in re.split(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])", key) if w]
    if any(w in _SECRET_WORDS for w in words):
        return True
    return any(a in ("api", "private", "access", "signing", "encryption") and b == "key"
               for a, b in zip(words, words[1:]))


def _trivial_value(v) -> bool:
    """Values that cannot be a secret: empty, booleans, numbers, durations, absolute paths."""
    s = str(v).strip()
    return (s == "" or s.lower() in ("true", "false", "yes", "no", "on", "off")
            or re.fullmatch(r"[+-]?\d+(\.\d+)?[a-zA-Z]{0,2}", s) is not None or s.startswith("/"))


def _entropy(s: str) -> float:
    n = len(s)
    return -sum(k / n * math.log2(k / n) for k in Counter(s).values())


_B64_RUN = re.compile(r"(sha(?:256|384|512)-)?([A-Za-z0-9+/_-]{40,}={0,2})")
_HEX_RUN = re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{64,}(?![0-9A-Za-z])")
_URL_CRED = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:[^/\s@]+@")
_ASSIGN = re.compile(r"(?i)\b(requirepass|masterauth|password|passwd|secret|token)\b\s*[=:\s]\s*[\"']?([^\s\"'$;]{6,})")


def secret_looking_value(text: str) -> str | None:
    """Why a piece of text looks like it holds a secret, or None."""
    for m in _B64_RUN.finditer(text):
        if m.group(1):  # a CSP or SRI hash is a public digest, not a secret
            continue
        run = m.group(2)
        if (re.search(r"\d", run) and re.search(r"[A-Z]", run) and re.search(r"[a-z]", run)
                and _entropy(run) >= 4.2):
            return f"a random-looking base64 string of {len(run)} characters"
    if _HEX_RUN.search(text):
        return "a hex string of 32 bytes or more"
    if _URL_CRED.search(text):
        return "a URL with a password in it"
    m = _ASSIGN.search(text)
    if m and not _trivial_value(m.group(2)):
        return f"a {m.group(1).lower()} assignment"
    return None


def check_secrets_not_in_configmaps(objects) -> list[str]:
    """No secrets in ConfigMaps or literal env values; Secrets carry data or stringData."""
    problems = []
    for o in objects:
        kind, who = o.get("kind"), ident(o)
        if kind == "ConfigMap":
            for k, v in (o.get("data") or {}).items():
                if secret_looking_key(k) and not _trivial_value(v):
                    problems.append(f"{who}: key {k} looks like a secret; put it in a Secret")
                why = secret_looking_value(str(v))
                if why:
                    problems.append(f"{who}: the value of {k} contains {why}; put it in a Secret")
            for k in (o.get("binaryData") or {}):
                if secret_looking_key(k):
                    problems.append(f"{who}: binary key {k} looks like a secret; put it in a Secret")
        elif kind == "Secret":
            data, sdata = o.get("data"), o.get("stringData")
            if not data and not sdata:
                problems.append(f"{who}: has neither data nor stringData")
            for k, v in (data or {}).items():
                try:
                    base64.b64decode(str(v), validate=True)
                except (binascii.Error, ValueError):
                    problems.append(f"{who}: data.{k} is not valid base64")
    for obj, _pm, spec in workloads(objects):
        for role, c in _containers(spec):
            for e in c.get("env") or []:
                if "value" in e and secret_looking_key(e.get("name", "")) and not _trivial_value(e["value"]):
                    problems.append(f"{ident(obj)} {role} {c.get('name')}: env {e.get('name')} is a literal "
                                    f"value in the pod spec; take it from a Secret")
    return problems


# --- RBAC --------------------------------------------------------------------------------------

BACKEND_SA = "scout-backend"
READ_VERBS = {"get", "list", "watch"}
FORBIDDEN_RESOURCES = {"secrets", "pods/exec", "pods/attach", "pods/portforward", "serviceaccounts/token",
                       "roles", "rolebindings", "clusterroles", "clusterrolebindings"}


def check_rbac(objects) -> list[str]:
    """Namespace-scoped, read-only, minimal RBAC bound only to the backend's ServiceAccount."""
    problems = []
    roles = {}
    sas = {}
    for o in objects:
        kind, who, m = o.get("kind"), ident(o), _meta(o)
        if kind in ("ClusterRole", "ClusterRoleBinding"):
            problems.append(f"{who}: cluster-wide RBAC; Scout's permissions must stay in its namespace")
        elif kind == "Role":
            roles[(m.get("namespace"), m.get("name"))] = o
            for i, rule in enumerate(o.get("rules") or []):
                rwho = f"{who} rule {i}"
                for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                    if "*" in (rule.get(field) or []):
                        problems.append(f"{rwho}: wildcard in {field}")
                for r in rule.get("resources") or []:
                    if r in FORBIDDEN_RESOURCES or r.split("/")[0] == "secrets":
                        problems.append(f"{rwho}: grants access to {r}")
                extra = set(rule.get("verbs") or []) - READ_VERBS - {"*"}
                if extra:
                    problems.append(f"{rwho}: grants {sorted(extra)}; only get, list and watch are minimal")
        elif kind == "ServiceAccount":
            sas[(m.get("namespace"), m.get("name"))] = o
    for o in objects:
        if o.get("kind") != "RoleBinding":
            continue
        who, ns = ident(o), _meta(o).get("namespace")
        ref = o.get("roleRef") or {}
        if ref.get("kind") != "Role":
            problems.append(f"{who}: binds a {ref.get('kind')}, not a namespaced Role")
        elif (ns, ref.get("name")) not in roles:
            problems.append(f"{who}: binds Role {ref.get('name')}, which is not defined")
        subjects = o.get("subjects") or []
        if not subjects:
            problems.append(f"{who}: has no subjects")
        for s in subjects:
            if s.get("kind") != "ServiceAccount" or s.get("name") != BACKEND_SA or s.get("namespace", ns) != ns:
                problems.append(f"{who}: binds {s.get('kind')} {s.get('namespace', ns)}/{s.get('name')}; "
                                f"only ServiceAccount {BACKEND_SA} of the namespace may be bound")
    saw_backend = False
    for obj, pm, spec in workloads(objects):
        who, ns = ident(obj), _meta(obj).get("namespace")
        sa_name = spec.get("serviceAccountName") or "default"
        if component(obj, pm) == "backend":
            saw_backend = True
            if sa_name != BACKEND_SA:
                problems.append(f"{who}: runs as ServiceAccount {sa_name}, not its dedicated {BACKEND_SA}")
            elif (ns, BACKEND_SA) not in sas:
                problems.append(f"{who}: ServiceAccount {BACKEND_SA} is not defined")
        mount = spec.get("automountServiceAccountToken")
        if mount is None:
            mount = (sas.get((ns, sa_name)) or {}).get("automountServiceAccountToken", True)
        if mount is not False:
            problems.append(f"{who}: mounts a Kubernetes API token (set automountServiceAccountToken: false)")
    if not saw_backend:
        problems.append("no backend workload (app.kubernetes.io/component: backend) found")
    return problems


# --- namespace and Pod Security Standards ------------------------------------------------------

PSS_LABEL = "pod-security.kubernetes.io/"


def check_namespace_pss(objects) -> list[str]:
    """Every namespaced object's namespace exists here and enforces the restricted profile."""
    problems = []
    namespaces = {_meta(o).get("name"): o for o in objects if o.get("kind") == "Namespace"}
    used = set()
    for o in objects:
        if o.get("kind") in CLUSTER_SCOPED:
            continue
        ns = _meta(o).get("namespace")
        if not ns:
            problems.append(f"{ident(o)}: has no metadata.namespace (it would land in whatever namespace "
                            f"the current context uses)")
        else:
            used.add(ns)
    for ns in sorted(used):
        if ns not in namespaces:
            problems.append(f"namespace {ns} is used but no Namespace object with Pod Security labels defines it")
    for name, o in sorted(namespaces.items()):
        labels = _meta(o).get("labels") or {}
        for mode in ("enforce", "audit", "warn"):
            if labels.get(PSS_LABEL + mode) != "restricted":
                problems.append(f"Namespace/{name}: {PSS_LABEL}{mode} is {labels.get(PSS_LABEL + mode)!r}, "
                                f"not 'restricted'")
            if labels.get(PSS_LABEL + mode + "-version", "latest") != "latest":
                problems.append(f"Namespace/{name}: {PSS_LABEL}{mode}-version is not 'latest'")
    return problems


# --- authentication and Redis ------------------------------------------------------------------


def _find(objects, kind, ns, name):
    for o in objects:
        m = _meta(o)
        if o.get("kind") == kind and m.get("name") == name and m.get("namespace") == ns:
            return o
    return None


def _secret_has(secret: dict, key: str) -> bool:
    return key in (secret.get("data") or {}) or key in (secret.get("stringData") or {})


def container_env(objects, ns, c: dict) -> dict:
    """Effective environment of container c: name -> ("value", v) | ("secret", name, key) |
    ("configmap", name, key) | ("other", source). Explicit env overrides envFrom."""
    env = {}
    for ef in c.get("envFrom") or []:
        prefix = ef.get("prefix", "")
        if "configMapRef" in ef:
            cm = _find(objects, "ConfigMap", ns, ef["configMapRef"].get("name"))
            for k, v in ((cm or {}).get("data") or {}).items():
                env[prefix + k] = ("value", str(v))
        elif "secretRef" in ef:
            sname = ef["secretRef"].get("name")
            sec = _find(objects, "Secret", ns, sname) or {}
            for k in list((sec.get("data") or {})) + list((sec.get("stringData") or {})):
                env[prefix + k] = ("secret", sname, k)
    for e in c.get("env") or []:
        name = e.get("name")
        if "value" in e:
            env[name] = ("value", str(e["value"]))
        elif "secretKeyRef" in (e.get("valueFrom") or {}):
            r = e["valueFrom"]["secretKeyRef"]
            env[name] = ("secret", r.get("name"), r.get("key"))
        elif "configMapKeyRef" in (e.get("valueFrom") or {}):
            r = e["valueFrom"]["configMapKeyRef"]
            cm = _find(objects, "ConfigMap", ns, r.get("name")) or {}
            v = (cm.get("data") or {}).get(r.get("key"))
            env[name] = ("value", str(v)) if v is not None else ("configmap", r.get("name"), r.get("key"))
        else:
            env[name] = ("other", e.get("valueFrom"))
    return env


def _secret_source(objects, ns, spec, c, env, var) -> tuple[list[str], tuple | None]:
    """Where var (or var_FILE) of container c comes from: problems, and (secret, key) when found."""
    src = env.get(var)
    if src is not None:
        if src[0] == "secret":
            sec = _find(objects, "Secret", ns, src[1])
            if sec is None:
                return [f"{var} comes from Secret {src[1]}, which is not defined"], None
            if not _secret_has(sec, src[2]):
                return [f"{var} comes from key {src[2]} of Secret {src[1]}, which has no such key"], None
            return [], (src[1], src[2])
        if src[0] == "value":
            return [f"{var} is a literal value in the pod spec or a ConfigMap, not a Secret"], None
        return [f"{var} does not come from a Secret ({src})"], None
    fsrc = env.get(var + "_FILE")
    if fsrc is None or fsrc[0] != "value":
        return [f"{var} (or {var}_FILE) is not set"], None
    path = fsrc[1]
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    for m in c.get("volumeMounts") or []:
        mp = (m.get("mountPath") or "").rstrip("/")
        if not path.startswith(mp + "/") and path != mp:
            continue
        sv = (volumes.get(m.get("name")) or {}).get("secret")
        if not sv:
            return [f"{var}_FILE={path} is not on a Secret volume"], None
        rel = path[len(mp) + 1:] if m.get("subPath") is None else m.get("subPath")
        key = rel
        for item in sv.get("items") or []:
            if item.get("path") == rel:
                key = item.get("key")
        sec = _find(objects, "Secret", ns, sv.get("secretName"))
        if sec is None or not _secret_has(sec, key):
            return [f"{var}_FILE={path} names key {key} of Secret {sv.get('secretName')}, which is not defined"], None
        return [], (sv.get("secretName"), key)
    return [f"{var}_FILE={path} is not under any mounted volume"], None


def check_auth_and_redis(objects) -> list[str]:
    """Protected API with the token and the Redis password from a Secret; Redis requires it."""
    problems = []
    backend_redis_sources = set()
    backends = redises = 0
    for obj, pm, spec in workloads(objects):
        comp, ns, who = component(obj, pm), _meta(obj).get("namespace"), ident(obj)
        if comp == "backend":
            backends += 1
            mains = [c for _r, c in _containers(spec, init=False)
                     if 8000 in {p.get("containerPort") for p in c.get("ports") or []}] or \
                [c for _r, c in _containers(spec, init=False)]
            for c in mains:
                cwho = f"{who} container {c.get('name')}"
                env = container_env(objects, ns, c)
                prot = env.get("SCOUT_PROTECTED_API")
                if not prot or prot[0] != "value" or prot[1].strip().lower() != "true":
                    problems.append(f"{cwho}: SCOUT_PROTECTED_API is not \"true\" (the API would be open)")
                errs, _ = _secret_source(objects, ns, spec, c, env, "SCOUT_AUTH_TOKEN")
                problems += [f"{cwho}: {e}" for e in errs]
                errs, src = _secret_source(objects, ns, spec, c, env, "REDIS_PASSWORD")
                problems += [f"{cwho}: {e}" for e in errs]
                if src:
                    backend_redis_sources.add(src)
                host = env.get("REDIS_HOST")
                if not host or host[0] != "value" or not host[1]:
                    problems.append(f"{cwho}: REDIS_HOST is not set (the backend would not use Redis)")
        if comp == "redis":
            redises += 1
            conts = [c for _r, c in _containers(spec, init=False)]
            servers = [c for c in conts if any("redis-server" in str(a) for a in (c.get("command") or []) + (c.get("args") or []))
                       or str(c.get("image", "")).split("/")[-1].split(":")[0].split("@")[0] in ("redis", "scout-redis")]
            for c in servers or conts:
                cwho = f"{who} container {c.get('name')}"
                argv = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
                if "--requirepass" not in argv or argv.index("--requirepass") + 1 >= len(argv):
                    problems.append(f"{cwho}: redis-server does not run with --requirepass")
                    continue
                val = argv[argv.index("--requirepass") + 1]
                m = re.fullmatch(r"\$\((\w+)\)", val)
                if not m:
                    problems.append(f"{cwho}: --requirepass is given a literal value, not $(VAR) from a Secret")
                    continue
                env = container_env(objects, ns, c)
                errs, src = _secret_source(objects, ns, spec, c, env, m.group(1))
                if "_FILE" in "".join(errs) or env.get(m.group(1)) is None:
                    errs = [f"--requirepass $({m.group(1)}) but {m.group(1)} is not set from a Secret"]
                problems += [f"{cwho}: {e}" for e in errs]
                if src and backend_redis_sources and src not in backend_redis_sources:
                    problems.append(f"{cwho}: the Redis password comes from {src}, the backend's from "
                                    f"{sorted(backend_redis_sources)}")
    if not backends:
        problems.append("no backend workload (app.kubernetes.io/component: backend) found")
    if not redises:
        problems.append("no Redis workload (app.kubernetes.io/component: redis) found")
    return problems


# --- network policies --------------------------------------------------------------------------

EXPECTED_FLOWS = frozenset({
    ("frontend", "backend", "8000/TCP"),
    ("nginx", "frontend", "3000/TCP"),
    ("nginx", "backend", "8000/TCP"),
    ("backend", "redis", "6379/TCP"),
    ("prometheus", "backend", "8000/TCP"),
} | {(c, "kube-dns", f"53/{p}") for c in ("backend", "frontend", "nginx") for p in ("UDP", "TCP")})
EXTERNAL_FLOW = ("external", "nginx", "80/TCP")


def expected_flows(allow_external: bool = True) -> set:
    return set(EXPECTED_FLOWS) | ({EXTERNAL_FLOW} if allow_external else set())


def selector_matches(sel: dict | None, labels: dict) -> bool:
    """Kubernetes label selector semantics; an empty selector matches everything."""
    if sel is None:
        return True
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in sel.get("matchExpressions") or []:
        k, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(k) not in vals:
            return False
        if op == "NotIn" and k in labels and labels[k] in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


class _Endpoint:
    """A pod as the flow computation sees it. `name` is what flows report; ns None = outside the
    cluster; `isolated` says whether this namespace's policies can select it."""

    def __init__(self, name, ns, ns_labels, labels, ports, isolated):
        self.name, self.ns, self.ns_labels, self.labels = name, ns, ns_labels, labels
        self.ports, self.isolated = ports, isolated  # ports: [(number, protocol, name)]


def _peer_matches(peer: dict, policy_ns: str, ep: _Endpoint) -> bool:
    if "ipBlock" in peer:
        return ep.ns is None  # ipBlocks are meant for addresses outside the cluster
    if ep.ns is None:
        return False
    nsel, psel = peer.get("namespaceSelector"), peer.get("podSelector")
    if nsel is None:
        return ep.ns == policy_ns and selector_matches(psel, ep.labels)
    return selector_matches(nsel, ep.ns_labels) and selector_matches(psel, ep.labels)


def _port_matches(rule_ports, cand, dst: _Endpoint) -> bool:
    if not rule_ports:
        return True
    num, proto, name = cand
    for rp in rule_ports:
        if rp.get("protocol", "TCP") != proto:
            continue
        port = rp.get("port")
        if port is None:
            return True
        if num is None:
            continue
        if isinstance(port, int):
            if num == port or (rp.get("endPort") and port <= num <= rp["endPort"]):
                return True
        elif name is not None and name == port:
            return True
    return False


def _policy_types(pol: dict) -> list[str]:
    spec = pol.get("spec") or {}
    if spec.get("policyTypes"):
        return spec["policyTypes"]
    return ["Ingress"] + (["Egress"] if "egress" in spec else [])


def _allowed(policies, ep: _Endpoint, other: _Endpoint, cand, direction: str) -> bool:
    """Does ep's side allow traffic with `other` on port cand in direction Ingress/Egress?"""
    if not ep.isolated:
        return True
    selecting = [p for p in policies if _meta(p).get("namespace") == ep.ns
                 and selector_matches((p.get("spec") or {}).get("podSelector") or {}, ep.labels)
                 and direction in _policy_types(p)]
    if not selecting:
        return True
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for p in selecting:
        for rule in (p.get("spec") or {}).get(key) or []:
            peers = rule.get(peers_key)
            if peers and not any(_peer_matches(peer, ep.ns, other) for peer in peers):
                continue
            if _port_matches(rule.get("ports"), cand, ep if direction == "Ingress" else other):
                return True
    return False


def _endpoints(objects):
    workload_eps = []
    ns_objs = {_meta(o).get("name"): o for o in objects if o.get("kind") == "Namespace"}

    def ns_labels(ns):
        labels = dict((_meta(ns_objs[ns]).get("labels") or {})) if ns in ns_objs else {}
        labels["kubernetes.io/metadata.name"] = ns
        return labels

    for obj, pm, spec in workloads(objects):
        ns = _meta(obj).get("namespace") or "default"
        ports = [(p.get("containerPort"), p.get("protocol", "TCP"), p.get("name"))
                 for _r, c in _containers(spec, init=False) for p in c.get("ports") or []]
        workload_eps.append(_Endpoint(component(obj, pm), ns, ns_labels(ns), pm.get("labels") or {}, ports, True))
    app_ns = sorted({e.ns for e in workload_eps})
    virtual = []
    if app_ns and not any(e.name == "prometheus" for e in workload_eps):
        virtual.append(_Endpoint("prometheus", app_ns[0], ns_labels(app_ns[0]),
                                 {APP_COMPONENT: "prometheus", "app.kubernetes.io/name": "prometheus"},
                                 [(9090, "TCP", "web")], True))
    ks = {"kubernetes.io/metadata.name": "kube-system"}
    dns = _Endpoint("kube-dns", "kube-system", ks, {"k8s-app": "kube-dns"},
                    [(53, "UDP", "dns"), (53, "TCP", "dns-tcp")], False)
    outside = [
        _Endpoint("external", None, {}, {}, [], False),                       # outside the cluster
        _Endpoint("external", "elsewhere", {"kubernetes.io/metadata.name": "elsewhere"}, {}, [], False),
        _Endpoint("external", "kube-system", ks, {"component": "kube-apiserver"}, [], False),
    ]
    return workload_eps + virtual, dns, outside


def compute_flows(objects) -> set:
    """Every (source, destination, "port/PROTO") the NetworkPolicies allow, where a port of "*"
    means "a port no container declares" (a rule open to every port). Sources and destinations
    are components; anything outside the namespace is "external" (kube-dns is itself only as a
    destination)."""
    policies = [o for o in objects if o.get("kind") == "NetworkPolicy"]
    inside, dns, outside = _endpoints(objects)
    mentioned = set()
    for p in policies:
        for key in ("ingress", "egress"):
            for rule in (p.get("spec") or {}).get(key) or []:
                for rp in rule.get("ports") or []:
                    if isinstance(rp.get("port"), int):
                        mentioned.add((rp["port"], rp.get("protocol", "TCP"), None))
    anyports = {(None, "TCP", None), (None, "UDP", None)}
    flows = set()
    sources = inside + outside + [_Endpoint("external", dns.ns, dns.ns_labels, dns.labels, dns.ports, False)]
    for src in sources:
        for dst in inside + [dns] + outside:
            if src.ns not in [e.ns for e in inside] and dst.ns not in [e.ns for e in inside]:
                continue  # neither side is ours
            cands = {(n, pr, nm) for n, pr, nm in dst.ports} | mentioned | anyports
            for cand in cands:
                named = [(n, pr, nm) for n, pr, nm in dst.ports if n == cand[0] and pr == cand[1]]
                cand = named[0] if named else cand
                if _allowed(policies, src, dst, cand, "Egress") and _allowed(policies, dst, src, cand, "Ingress"):
                    flows.add((src.name, dst.name, f"{cand[0] if cand[0] is not None else '*'}/{cand[1]}"))
    return flows


def check_network_policies(objects, allow_external: bool = True) -> list[str]:
    """The allowed flows are exactly the guide's list; every pod is under a default-deny."""
    problems = []
    policies = [o for o in objects if o.get("kind") == "NetworkPolicy"]
    inside, _dns, _outside = _endpoints(objects)
    for ep in inside:
        if ep.name == "prometheus" and ep.labels.get("app.kubernetes.io/name") == "prometheus":
            continue  # the modelled Prometheus is not deployed here
        for direction, key in (("Ingress", "ingress"), ("Egress", "egress")):
            deny = [p for p in policies if _meta(p).get("namespace") == ep.ns
                    and selector_matches((p.get("spec") or {}).get("podSelector") or {}, ep.labels)
                    and direction in _policy_types(p) and not (p.get("spec") or {}).get(key)]
            if not deny:
                problems.append(f"pods of {ep.name} in {ep.ns} are not under a default-deny NetworkPolicy for {direction}")
    flows = compute_flows(objects)
    want = expected_flows(allow_external)
    for f in sorted(flows - want):
        problems.append(f"NetworkPolicies allow a flow the security guide does not list: {f[0]} -> {f[1]}:{f[2]}")
    for f in sorted(want - flows):
        problems.append(f"NetworkPolicies do not allow the guide's flow {f[0]} -> {f[1]}:{f[2]}")
    return problems


# --- everything --------------------------------------------------------------------------------


def check_all(objects, *, allow_external: bool = True) -> list[str]:
    """All of the guide's checklist items; an empty list means every one holds."""
    problems = []
    problems += check_namespace_pss(objects)
    problems += check_pod_security(objects)
    problems += check_resources(objects)
    problems += check_probes(objects)
    problems += check_secrets_not_in_configmaps(objects)
    problems += check_rbac(objects)
    problems += check_auth_and_redis(objects)
    problems += check_network_policies(objects, allow_external=allow_external)
    return list(dict.fromkeys(problems))


# --- schema validation (node tests/deploy/validate/validate.mjs) --------------------------------

VALIDATE_DIR = Path(__file__).resolve().parent / "validate"


class SchemaToolMissing(RuntimeError):
    """node or npm is not installed, so the schemas cannot be checked here."""


def _validator_installed() -> bool:
    import json

    lock = json.loads((VALIDATE_DIR / "package-lock.json").read_text())
    want = lock["packages"]["node_modules/kubernetes-models"]["version"]
    have = VALIDATE_DIR / "node_modules" / "kubernetes-models" / "package.json"
    return have.exists() and json.loads(have.read_text()).get("version") == want


def validate_schemas(yaml_text: str) -> list[str]:
    """Problems the Kubernetes OpenAPI schemas find in a multi-document YAML text (empty = valid).
    Installs the validator's locked dependencies with `npm ci` on first use. Raises
    SchemaToolMissing when node or npm is not installed."""
    import shutil
    import subprocess

    if not shutil.which("node") or not shutil.which("npm"):
        raise SchemaToolMissing("node and npm are needed for schema validation (Debian: nodejs npm)")
    if not _validator_installed():
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=VALIDATE_DIR,
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"npm ci in {VALIDATE_DIR} failed:\n{r.stdout}{r.stderr}")
    r = subprocess.run(["node", str(VALIDATE_DIR / "validate.mjs"), "-"], input=yaml_text,
                       capture_output=True, text=True, timeout=120)
    lines = r.stdout.splitlines()
    if r.returncode not in (0, 1) or not lines or not lines[-1].startswith("validated "):
        raise RuntimeError(f"validate.mjs failed (exit {r.returncode}):\n{r.stdout}{r.stderr}")
    return lines[:-1]


# --- the nginx ConfigMap, kept equal to deploy/nginx/ -------------------------------------------

REPO = Path(__file__).resolve().parents[2]
NGINX_UPSTREAMS = {"server backend:8000": "server scout-backend:8000",
                   "server frontend:3000": "server scout-frontend:3000"}


def nginx_config_from_deploy(nginx_dir=REPO / "deploy" / "nginx") -> dict:
    """The data of ConfigMap scout-nginx: deploy/nginx/nginx.conf with its two upstream servers
    renamed to the Services, and scout-routes.conf unchanged."""
    d = Path(nginx_dir)
    conf = (d / "nginx.conf").read_text()
    for old, new in NGINX_UPSTREAMS.items():
        if conf.count(old) != 1:
            raise ValueError(f"{d / 'nginx.conf'} should contain `{old}` exactly once")
        conf = conf.replace(old, new)
    return {"nginx.conf": conf, "scout-routes.conf": (d / "scout-routes.conf").read_text()}


def config_checksum(data: dict) -> str:
    h = hashlib.sha256()
    for k in sorted(data):
        h.update(k.encode() + b"\0" + data[k].encode() + b"\0")
    return h.hexdigest()


def _literal_yaml(data: dict) -> str:
    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper, s):
        return dumper.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None)

    Dumper.add_representer(str, text)
    return yaml.dump(data, Dumper=Dumper, sort_keys=False, width=4096, allow_unicode=True)


def sync_nginx(k8s_dir=REPO / "k8s", nginx_dir=REPO / "deploy" / "nginx") -> None:
    """Rewrite k8s/nginx-configmap.yaml from deploy/nginx/ and the checksum in k8s/nginx.yaml."""
    data = nginx_config_from_deploy(nginx_dir)
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "scout-nginx", "namespace": "scout",
                       "labels": {"app.kubernetes.io/name": "scout", "app.kubernetes.io/part-of": "scout",
                                  APP_COMPONENT: "nginx"}},
          "data": data}
    header = ("# ConfigMap scout-nginx: nginx's configuration, generated from deploy/nginx/ (the upstream\n"
              "# servers renamed to the Services scout-backend and scout-frontend) by\n"
              "#   python3 tests/deploy/k8s_checks.py --sync-nginx\n"
              "# which also updates the checksum annotation of k8s/nginx.yaml; do not edit by hand\n"
              "# (tests/deploy/test_k8s.py fails when this copy and deploy/nginx/ differ).\n")
    (Path(k8s_dir) / "nginx-configmap.yaml").write_text(header + _literal_yaml(cm))
    dep = Path(k8s_dir) / "nginx.yaml"
    text, n = re.subn(r'(checksum/nginx-config: )"[^"]*"', rf'\1"{config_checksum(data)}"', dep.read_text())
    if n != 1:
        raise ValueError(f"{dep} should carry one checksum/nginx-config annotation")
    dep.write_text(text)


def main(argv: list[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Check Kubernetes objects against Scout's security guide.")
    ap.add_argument("files", nargs="*", help="YAML files or directories, or - for stdin")
    ap.add_argument("--no-external", action="store_true",
                    help="expect no external access to nginx (networkPolicy.allowExternalAccess=false)")
    ap.add_argument("--sync-nginx", action="store_true",
                    help="rewrite k8s/nginx-configmap.yaml and its checksum from deploy/nginx/")
    args = ap.parse_args(argv)
    if args.sync_nginx:
        sync_nginx()
        return 0
    if not args.files:
        ap.error("no files given")
    problems = check_all(load_objects(args.files), allow_external=not args.no_external)
    for p in problems:
        print(p)
    if not problems:
        print("no problems found", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
