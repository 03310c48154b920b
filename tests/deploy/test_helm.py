"""test_helm.py — the Helm chart charts/scout, rendered without Helm, meets the security guide and
renders the same objects as the plain manifests k8s/ + k8s/security/.

Helm is not packaged for Debian, so tests/deploy/helm_render (a Go program on Debian's sprig and
sigs.k8s.io/yaml, the libraries Helm's engine uses) renders the chart like `helm template`; the
test builds it first and skips only when `go` is missing. Then: the default render passes every
check of k8s_checks.py and the Kubernetes schemas, and equals `kubectl kustomize k8s/` object by
object (the chart's extra Helm labels and checksum annotations aside); each of the guide's values
keys (networkPolicy.*, security.podSecurity.*, rbac.*, auth.*, redis.*) changes exactly what it
should, shown by the rendered objects and by the checker naming what a disabled item breaks; a
missing secret stops the render with a message that says what to set. A few tests run the
renderer on a throw-away chart to prove the Helm features the chart relies on behave as in Helm.

Run: /usr/bin/python3 -m pytest tests/deploy/test_helm.py
Refresh the chart's copy of deploy/nginx/: python3 tests/deploy/test_helm.py --sync-nginx
"""

import copy
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import k8s_checks as kc  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "scout"
K8S = REPO / "k8s"
RENDERER_SRC = Path(__file__).resolve().parent / "helm_render"
DEBIAN_GO_PACKAGES = "golang-go golang-github-masterminds-sprig-dev golang-k8s-sigs-yaml-dev"

# Fresh random values per run: nothing secret-looking is committed, and the length matches
# `openssl rand -base64 32` (44 characters).
TOKEN = secrets.token_urlsafe(33)
REDIS_PASSWORD = secrets.token_urlsafe(33)
SECRETS = (f"auth.token={TOKEN}", f"redis.password={REDIS_PASSWORD}")


# --- building and running the renderer ----------------------------------------------------------


@pytest.fixture(scope="session")
def renderer(tmp_path_factory):
    go = shutil.which("go")
    if not go:
        pytest.skip(f"go is missing, so the chart cannot be rendered without Helm "
                    f"(Debian: apt-get install {DEBIAN_GO_PACKAGES})")
    out = tmp_path_factory.mktemp("helm_render") / "helm_render"
    env = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode", GOFLAGS="")
    if not os.access(Path.home(), os.W_OK):
        env["GOCACHE"] = str(out.parent / "gocache")
    r = subprocess.run([go, "build", "-o", str(out), "."], cwd=RENDERER_SRC, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (f"building tests/deploy/helm_render failed (are Debian's Go libraries "
                               f"installed? apt-get install {DEBIAN_GO_PACKAGES}):\n{r.stderr}")
    return out


def run_renderer(renderer, *args, chart=CHART):
    return subprocess.run([str(renderer), *args, str(chart)], capture_output=True, text=True, timeout=60)


def render(renderer, *sets, secrets_given=True, extra=()):
    """The chart's objects with --set overrides (and the two secrets unless secrets_given=False)."""
    args = []
    for s in (SECRETS if secrets_given else ()) + sets:
        args += ["--set", s]
    r = run_renderer(renderer, *args, *extra)
    assert r.returncode == 0, f"render with {sets} failed:\n{r.stderr}"
    return kc.load_objects(r.stdout)


def render_error(renderer, *sets, secrets_given=False):
    args = []
    for s in (SECRETS if secrets_given else ()) + sets:
        args += ["--set", s]
    r = run_renderer(renderer, *args)
    assert r.returncode == 1, f"render with {sets} should fail, exit {r.returncode}:\n{r.stdout[:500]}"
    assert r.stdout == ""
    return r.stderr


@pytest.fixture(scope="session")
def default_objects(renderer):
    return render(renderer)


@pytest.fixture
def defaults(default_objects):
    return copy.deepcopy(default_objects)


def find(objects, kind, name):
    for o in objects:
        if o["kind"] == kind and o["metadata"]["name"] == name:
            return o
    raise KeyError(f"{kind}/{name}")


def find_all(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def key(o):
    return (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])


def podspec(objects, name):
    return find(objects, "Deployment", name)["spec"]["template"]["spec"]


def container(objects, name):
    return podspec(objects, name)["containers"][0]


def env_names(c):
    return [e["name"] for e in c.get("env") or []]


def config(objects):
    return find(objects, "ConfigMap", "scout-config")["data"]


def schema_problems(yaml_text):
    """What the Kubernetes schemas find wrong, through the k8s helper's validator, called the way
    tests/deploy/test_k8s.py calls it."""
    if not (Path(__file__).resolve().parent / "validate" / "validate.mjs").exists():
        pytest.skip("tests/deploy/validate/validate.mjs is not in the tree")
    try:
        return kc.validate_schemas(yaml_text)
    except kc.SchemaToolMissing as e:
        pytest.skip(str(e))


def k8s_objects():
    """`kubectl kustomize k8s/`, the objects the plain manifests apply."""
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl is not installed (Debian 12: apt-get install kubernetes-client)")
    r = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return kc.load_objects(r.stdout)


# --- the default render ---------------------------------------------------------------------------


def test_default_render_passes_every_check_of_the_security_guide(default_objects):
    assert kc.check_all(default_objects) == []


def test_default_render_validates_against_the_kubernetes_schemas(renderer):
    r = run_renderer(renderer, *sum((["--set", s] for s in SECRETS), []))
    assert r.returncode == 0, r.stderr
    assert schema_problems(r.stdout) == []


def test_every_toggle_combination_still_validates_against_the_schemas(renderer):
    # Every object any toggle renders differently, all in one validator run.
    variants = [
        ("networkPolicy.allowExternalAccess=false", "security.podSecurity.enabled=false",
         "rbac.create=false", "auth.protectedAPI=false", "redis.authEnabled=false",
         "redis.persistence.enabled=false", "backend.autoscaling.enabled=false"),
        ("security.podSecurity.runAsNonRoot=false", "security.podSecurity.readOnlyRootFilesystem=false",
         "security.podSecurity.dropAllCapabilities=false", "rbac.minimalPermissions=false",
         "networkPolicy.externalSources[0].ipBlock.cidr=10.0.0.0/8", "frontend.podDisruptionBudget.enabled=true"),
    ]
    text = ""
    for sets in variants:
        args = sum((["--set", s] for s in SECRETS + sets), [])
        r = run_renderer(renderer, *args)
        assert r.returncode == 0, r.stderr
        text += r.stdout
    assert schema_problems(text) == []


def test_output_is_a_helm_template_stream_in_install_order(renderer):
    r = run_renderer(renderer, *sum((["--set", s] for s in SECRETS), []))
    docs = re.split(r"(?m)^---\n", r.stdout)[1:]
    assert docs and all(d.startswith("# Source: scout/templates/") for d in docs)
    kinds = [yaml.safe_load(d)["kind"] for d in docs]
    assert kinds[0] == "Namespace" and kinds[-1] == "HorizontalPodAutoscaler"
    assert kinds.index("Secret") < kinds.index("Deployment") and kinds.index("ServiceAccount") < kinds.index("Deployment")
    assert "NOTES" not in r.stdout


def test_notes_render_and_name_the_secret_without_printing_it(renderer):
    r = run_renderer(renderer, "--notes", *sum((["--set", s] for s in SECRETS), []))
    notes = r.stdout.split("\nNOTES:\n", 1)[1]
    assert "port-forward svc/scout-nginx" in notes and "Secret scout-secrets" in notes
    assert TOKEN not in notes and REDIS_PASSWORD not in notes and "WARNING" not in notes
    r = run_renderer(renderer, "--notes", "--set", "auth.protectedAPI=false", "--set", "redis.authEnabled=false",
                     "--set", "networkPolicy.enabled=false")
    assert r.stdout.split("\nNOTES:\n", 1)[1].count("WARNING") == 3


# --- the same objects as k8s/ ----------------------------------------------------------------------

CHART_LABELS = {"app.kubernetes.io/instance", "app.kubernetes.io/managed-by", "helm.sh/chart"}
CHART_ANNOTATIONS = {"checksum/config", "checksum/secret"}


def _split_metadata(o):
    """(object without labels/annotations, labels, annotations, pod labels, pod annotations)."""
    o = copy.deepcopy(o)
    m = o["metadata"]
    labels, ann = m.pop("labels", {}), m.pop("annotations", {})
    pod_labels = pod_ann = {}
    t = (o.get("spec") or {}).get("template")
    if t:
        pod_labels, pod_ann = t["metadata"].pop("labels", {}), t["metadata"].pop("annotations", {})
    return o, labels, ann, pod_labels, pod_ann


def test_default_render_has_the_same_objects_as_kustomize_k8s(default_objects):
    assert sorted(map(key, default_objects)) == sorted(map(key, k8s_objects()))


def test_default_render_equals_k8s_object_by_object(default_objects):
    """Everything equal — images, ports, env, envFrom, probes, security contexts, volumes,
    resources, policies, RBAC rules, ConfigMap data — except the documented differences: the
    chart adds Helm's labels, two checksum annotations and keeps its Namespace on uninstall, the Secret's values come from the
    install command (k8s/ has placeholders), and with the HPA the chart leaves the backend's
    replica count to the HPA."""
    chart = {key(o): o for o in default_objects}
    for want in k8s_objects():
        got = chart[key(want)]
        g, g_labels, g_ann, g_plabels, g_pann = _split_metadata(got)
        w, w_labels, w_ann, w_plabels, w_pann = _split_metadata(want)
        who = "/".join(str(x) for x in key(want))
        assert set(g_labels) - set(w_labels) <= CHART_LABELS and w_labels.items() <= g_labels.items(), who
        if want["kind"] == "Namespace":  # `helm uninstall` must not delete the namespace and its volume
            assert g_ann.pop("helm.sh/resource-policy") == "keep"
        assert w_ann == g_ann, who
        assert set(g_plabels) - set(w_plabels) <= {"app.kubernetes.io/instance"}, who
        assert w_plabels.items() <= g_plabels.items(), who
        assert set(g_pann) - set(w_pann) <= CHART_ANNOTATIONS and w_pann.items() <= g_pann.items(), who
        if want["kind"] == "Secret":
            assert sorted(g["stringData"]) == sorted(w["stringData"]) == ["auth-token", "redis-password"]
            g["stringData"] = w["stringData"]
        if key(want) == ("Deployment", "scout", "scout-backend"):
            assert "replicas" not in g["spec"] and w["spec"].pop("replicas") == 2
        assert g == w, f"{who} differs from k8s/:\n{json.dumps(g, indent=1)}\n!=\n{json.dumps(w, indent=1)}"


def test_without_the_hpa_the_backend_has_the_k8s_replica_count(renderer):
    objs = render(renderer, "backend.autoscaling.enabled=false")
    assert find(objs, "Deployment", "scout-backend")["spec"]["replicas"] == \
        find(k8s_objects(), "Deployment", "scout-backend")["spec"]["replicas"]
    assert not find_all(objs, "HorizontalPodAutoscaler")
    objs = render(renderer, "backend.autoscaling.enabled=false", "backend.replicaCount=4")
    assert find(objs, "Deployment", "scout-backend")["spec"]["replicas"] == 4


def test_chart_nginx_files_are_deploy_nginx_with_the_service_names():
    want = kc.nginx_config_from_deploy(REPO / "deploy" / "nginx")
    got = {name: (CHART / "files" / name).read_text() for name in want}
    assert got == want, "charts/scout/files/ is stale: run python3 tests/deploy/test_helm.py --sync-nginx"


def test_nginx_checksum_annotation_follows_the_configuration(defaults):
    cm = find(defaults, "ConfigMap", "scout-nginx")["data"]
    ann = find(defaults, "Deployment", "scout-nginx")["spec"]["template"]["metadata"]["annotations"]
    assert ann["checksum/nginx-config"] == kc.config_checksum(cm)


def test_backend_checksums_change_with_its_config_and_secret(renderer, default_objects):
    def ann(objs):
        return find(objs, "Deployment", "scout-backend")["spec"]["template"]["metadata"]["annotations"]
    base = ann(default_objects)
    ttl = ann(render(renderer, "auth.tokenExpiration=12"))
    assert ttl["checksum/config"] != base["checksum/config"] and ttl["checksum/secret"] == base["checksum/secret"]
    rotated = ann(render(renderer, f"auth.token={secrets.token_urlsafe(33)}"))
    assert rotated["checksum/secret"] != base["checksum/secret"] and rotated["checksum/config"] == base["checksum/config"]


# --- the security guide's toggles -----------------------------------------------------------------


def _without(objects, kinds):
    return sorted((key(o) for o in objects if o["kind"] not in kinds))


def test_network_policy_disabled_renders_no_network_policy(renderer, default_objects):
    objs = render(renderer, "networkPolicy.enabled=false")
    assert not find_all(objs, "NetworkPolicy")
    assert _without(objs, {"NetworkPolicy"}) == _without(default_objects, {"NetworkPolicy"})
    problems = kc.check_network_policies(objs)
    assert any("default-deny" in p for p in problems), problems


def test_external_access_disabled_drops_only_the_external_policy(renderer, default_objects):
    objs = render(renderer, "networkPolicy.allowExternalAccess=false")
    assert kc.EXTERNAL_FLOW in kc.compute_flows(default_objects)
    assert not any(src == "external" for src, _dst, _port in kc.compute_flows(objs))
    assert kc.check_network_policies(objs, allow_external=False) == []
    assert kc.check_network_policies(default_objects, allow_external=False) != []
    assert kc.check_all(objs, allow_external=False) == []
    assert sorted(map(key, default_objects)) == \
        sorted(list(map(key, objs)) + [("NetworkPolicy", "scout", "scout-nginx-external")])


def test_external_sources_restrict_who_reaches_nginx(renderer):
    objs = render(renderer, "networkPolicy.externalSources[0].ipBlock.cidr=203.0.113.0/24")
    rule = find(objs, "NetworkPolicy", "scout-nginx-external")["spec"]["ingress"]
    assert rule == [{"ports": [{"protocol": "TCP", "port": 80}],
                     "from": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]}]


def test_pod_security_disabled_is_reported_by_the_checker(renderer):
    objs = render(renderer, "security.podSecurity.enabled=false")
    for d in find_all(objs, "Deployment"):
        spec = d["spec"]["template"]["spec"]
        assert "securityContext" not in spec["containers"][0]
        psc = spec.get("securityContext", {})
        if d["metadata"]["name"] == "scout-nginx":  # binding :80 as non-root still needs the sysctl
            assert psc == {"sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "80"}]}
        else:
            assert psc == {}
    problems = kc.check_pod_security(objs)
    for name, c in (("scout-backend", "scoutd"), ("scout-frontend", "frontend"), ("scout-nginx", "nginx"),
                    ("scout-redis", "redis")):
        who = f"Deployment/scout/{name}"
        assert f"{who}: pod securityContext.runAsNonRoot is not true" in problems
        assert f"{who}: pod securityContext.seccompProfile.type is not RuntimeDefault" in problems
        assert f"{who} container {c}: readOnlyRootFilesystem is not true" in problems
        assert f"{who} container {c}: capabilities.drop does not contain ALL" in problems
        assert f"{who} container {c}: allowPrivilegeEscalation is not false" in problems


@pytest.mark.parametrize("value, pod_field, container_field, want, problem", [
    ("runAsNonRoot", "runAsNonRoot", "runAsNonRoot", False, "runAsNonRoot is not true"),
    ("readOnlyRootFilesystem", None, "readOnlyRootFilesystem", False, "readOnlyRootFilesystem is not true"),
    ("dropAllCapabilities", None, "capabilities", None, "capabilities.drop does not contain ALL"),
])
def test_each_pod_security_switch_changes_its_field_only(renderer, default_objects, value, pod_field,
                                                         container_field, want, problem):
    objs = render(renderer, f"security.podSecurity.{value}=false")
    for d in find_all(objs, "Deployment"):
        name = d["metadata"]["name"]
        spec, base = d["spec"]["template"]["spec"], podspec(default_objects, name)
        psc, base_psc = copy.deepcopy(spec["securityContext"]), copy.deepcopy(base["securityContext"])
        if pod_field:
            assert psc.pop(pod_field) is want and base_psc.pop(pod_field) is True
        assert psc == base_psc, name
        sc = copy.deepcopy(spec["containers"][0]["securityContext"])
        base_sc = copy.deepcopy(base["containers"][0]["securityContext"])
        assert sc.pop(container_field, None) == want and base_sc.pop(container_field) not in (None, False)
        assert sc == base_sc, name
    assert any(problem in p for p in kc.check_pod_security(objs))


def test_rbac_disabled_creates_no_rbac_and_runs_as_the_existing_account(renderer, default_objects):
    objs = render(renderer, "rbac.create=false")
    assert not [o for o in objs if o["kind"] in ("ServiceAccount", "Role", "RoleBinding", "ClusterRole",
                                                  "ClusterRoleBinding")]
    assert _without(objs, {"ServiceAccount", "Role", "RoleBinding"}) == \
        _without(default_objects, {"ServiceAccount", "Role", "RoleBinding"})
    spec = podspec(objs, "scout-backend")
    assert spec["serviceAccountName"] == "default" and spec["automountServiceAccountToken"] is False
    assert "Deployment/scout/scout-backend: runs as ServiceAccount default, not its dedicated scout-backend" \
        in kc.check_rbac(objs)
    objs = render(renderer, "rbac.create=false", "rbac.existingServiceAccount=scout-runner")
    assert podspec(objs, "scout-backend")["serviceAccountName"] == "scout-runner"


def test_minimal_permissions_read_only_the_config_map(renderer, default_objects):
    assert find(default_objects, "Role", "scout-backend")["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["scout-config"], "verbs": ["get"]}]
    objs = render(renderer, "rbac.minimalPermissions=false")
    rules = find(objs, "Role", "scout-backend")["rules"]
    assert rules == [{"apiGroups": [""], "resources": ["configmaps", "services", "endpoints", "pods"],
                      "verbs": ["get", "list", "watch"]}]
    assert kc.check_rbac(objs) == []  # broader, still namespace-scoped and read-only, no Secrets


def test_protected_api_off_sets_scout_protected_api_false(renderer, default_objects):
    assert config(default_objects)["SCOUT_PROTECTED_API"] == "true"
    objs = render(renderer, "auth.protectedAPI=false")
    assert config(objs)["SCOUT_PROTECTED_API"] == "false"
    assert any('SCOUT_PROTECTED_API is not "true"' in p for p in kc.check_auth_and_redis(objs))
    # Without protection the token is optional; without one the backend gets no SCOUT_AUTH_TOKEN.
    objs = render(renderer, "auth.protectedAPI=false", f"redis.password={REDIS_PASSWORD}", secrets_given=False)
    assert env_names(container(objs, "scout-backend")) == ["REDIS_PASSWORD"]
    assert sorted(find(objs, "Secret", "scout-secrets")["stringData"]) == ["redis-password"]


def test_token_expiration_sets_scout_token_ttl_hours(renderer, default_objects):
    assert config(default_objects)["SCOUT_TOKEN_TTL_HOURS"] == "24"
    assert config(render(renderer, "auth.tokenExpiration=48"))["SCOUT_TOKEN_TTL_HOURS"] == "48"
    err = render_error(renderer, "auth.tokenExpiration=1.5", secrets_given=True)
    assert "auth.tokenExpiration must be a whole number of hours" in err


def test_token_and_password_reach_the_secret_and_only_the_secret(renderer):
    r = run_renderer(renderer, *sum((["--set", s] for s in SECRETS), []))
    objs = kc.load_objects(r.stdout)
    assert find(objs, "Secret", "scout-secrets")["stringData"] == {"auth-token": TOKEN, "redis-password": REDIS_PASSWORD}
    others = yaml.safe_dump_all([o for o in objs if o["kind"] != "Secret"])
    assert TOKEN not in others and REDIS_PASSWORD not in others
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container(objs, "scout-backend")["env"]}
    assert env == {"SCOUT_AUTH_TOKEN": {"name": "scout-secrets", "key": "auth-token"},
                   "REDIS_PASSWORD": {"name": "scout-secrets", "key": "redis-password"}}


def test_redis_auth_disabled_drops_requirepass_and_the_password(renderer):
    objs = render(renderer, "redis.authEnabled=false", f"auth.token={TOKEN}", secrets_given=False)
    redis = container(objs, "scout-redis")
    assert "--requirepass" not in redis["args"] and "env" not in redis
    assert redis["args"][:2] == ["--protected-mode", "no"]  # else Redis refuses every non-local client
    assert env_names(container(objs, "scout-backend")) == ["SCOUT_AUTH_TOKEN"]
    assert sorted(find(objs, "Secret", "scout-secrets")["stringData"]) == ["auth-token"]
    problems = kc.check_auth_and_redis(objs)
    assert any("REDIS_PASSWORD (or REDIS_PASSWORD_FILE) is not set" in p for p in problems)
    assert any("redis-server does not run with --requirepass" in p for p in problems)


def test_all_secrets_off_renders_no_secret(renderer):
    objs = render(renderer, "auth.protectedAPI=false", "redis.authEnabled=false", secrets_given=False)
    assert not find_all(objs, "Secret")
    assert "env" not in container(objs, "scout-backend")


@pytest.mark.parametrize("sets, message", [
    ((f"redis.password={REDIS_PASSWORD}",), "auth.token is required while auth.protectedAPI is true"),
    ((f"auth.token={TOKEN}",), "redis.password is required while redis.authEnabled is true"),
    (("auth.token=too-short-for-scoutd", f"redis.password={REDIS_PASSWORD}"),
     "auth.token must be at least 32 characters"),
])
def test_missing_or_weak_secrets_stop_the_render_with_a_clear_message(renderer, sets, message):
    err = render_error(renderer, *sets)
    assert err.startswith("Error: execution error at (scout/templates/") and message in err
    assert "openssl rand -base64 32" in err or "at least 32" in err
    assert REDIS_PASSWORD not in err and TOKEN not in err


def test_existing_secret_replaces_the_chart_secret(renderer):
    objs = render(renderer, "auth.existingSecret=scout-managed", secrets_given=False)
    assert not find_all(objs, "Secret")
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container(objs, "scout-backend")["env"]}
    assert refs == {"SCOUT_AUTH_TOKEN": {"name": "scout-managed", "key": "auth-token"},
                    "REDIS_PASSWORD": {"name": "scout-managed", "key": "redis-password"}}
    assert container(objs, "scout-redis")["env"][0]["valueFrom"]["secretKeyRef"] == \
        {"name": "scout-managed", "key": "redis-password"}
    # The checker wants the Secret among the objects; adding it (as the operator would) satisfies it.
    managed = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "scout-managed", "namespace": "scout"},
               "stringData": {"auth-token": "x", "redis-password": "y"}}
    assert kc.check_all(objs + [managed]) == []


def test_namespace_is_the_release_namespace_with_pss_labels(renderer):
    objs = render(renderer, extra=("--namespace", "experiments"))
    ns = find(objs, "Namespace", "experiments")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert {o["metadata"].get("namespace") for o in objs if o["kind"] != "Namespace"} == {"experiments"}
    assert kc.check_all(objs) == []
    objs = render(renderer, "namespace.create=false")
    assert not find_all(objs, "Namespace")
    assert "namespace scout is used but no Namespace object with Pod Security labels defines it" in \
        kc.check_namespace_pss(objs)


def test_images_replicas_resources_and_persistence_follow_the_values(renderer):
    objs = render(renderer, "backend.image.repository=registry.example/scout-backend", "backend.image.tag=1.4.2",
                  "nginx.image.tag=1.4.2", "frontend.replicaCount=3", "backend.resources.limits.memory=1Gi",
                  "redis.persistence.enabled=false", "nginx.service.type=LoadBalancer",
                  "backend.autoscaling.maxReplicas=10", "nginx.podDisruptionBudget.enabled=false")
    assert container(objs, "scout-backend")["image"] == "registry.example/scout-backend:1.4.2"
    assert container(objs, "scout-nginx")["image"] == "scout-nginx:1.4.2"
    assert find(objs, "Deployment", "scout-frontend")["spec"]["replicas"] == 3
    assert container(objs, "scout-backend")["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"},
                                                            "limits": {"cpu": "1", "memory": "1Gi"}}
    assert not find_all(objs, "PersistentVolumeClaim")
    assert {"name": "data", "emptyDir": {}} in podspec(objs, "scout-redis")["volumes"]
    assert find(objs, "Service", "scout-nginx")["spec"]["type"] == "LoadBalancer"
    assert find(objs, "HorizontalPodAutoscaler", "scout-backend")["spec"]["maxReplicas"] == 10
    assert [p["metadata"]["name"] for p in find_all(objs, "PodDisruptionBudget")] == ["scout-backend"]


def test_values_file_overrides_merge_deeply(renderer, tmp_path):
    f = tmp_path / "prod.yaml"
    f.write_text(yaml.safe_dump({"auth": {"token": TOKEN, "tokenExpiration": 8},
                                 "redis": {"password": REDIS_PASSWORD, "persistence": {"size": "20Gi"}},
                                 "backend": {"extraConfig": {"SCOUT_SYNC": "full"}}}))
    r = run_renderer(renderer, "-f", str(f), "--set", "auth.tokenExpiration=6")
    assert r.returncode == 0, r.stderr
    objs = kc.load_objects(r.stdout)
    cfg = config(objs)
    assert cfg["SCOUT_TOKEN_TTL_HOURS"] == "6" and cfg["SCOUT_SYNC"] == "full"
    assert cfg["SCOUT_PROTECTED_API"] == "true"  # sibling keys of auth survive the merge
    pvc = find(objs, "PersistentVolumeClaim", "scout-redis-data")["spec"]
    assert pvc["resources"]["requests"]["storage"] == "20Gi" and pvc["accessModes"] == ["ReadWriteOnce"]
    assert kc.check_all(objs) == []


# --- the renderer honours the Helm features the chart relies on ----------------------------------


def _tiny_chart(tmp_path, templates, values="", chart_extra=""):
    d = tmp_path / "tiny"
    (d / "templates").mkdir(parents=True)
    (d / "Chart.yaml").write_text(f"apiVersion: v2\nname: tiny\nversion: 1.2.3\nappVersion: \"9\"\n{chart_extra}")
    (d / "values.yaml").write_text(values)
    for name, text in templates.items():
        (d / "templates" / name).write_text(text)
    return d


def test_renderer_implements_include_tpl_yaml_functions_and_set_typing(renderer, tmp_path):
    chart = _tiny_chart(tmp_path, {
        "_defs.tpl": '{{- define "tiny.name" -}}{{ .Chart.Name }}-{{ .Release.Name }}{{- end }}\n'
                     "kind: NotRendered\n",
        "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                   '  name: {{ include "tiny.name" . }}\n  namespace: {{ .Release.Namespace }}\ndata:\n'
                   "  tpl: {{ tpl .Values.greeting . | quote }}\n"
                   "  types: {{ printf \"%T %T %T %T\" .Values.n .Values.b .Values.s .Values.z | quote }}\n"
                   "  s: {{ .Values.s | quote }}\n"
                   "  list: {{ .Values.l | default list | join \"+\" | quote }}\n"
                   "  dotted: \"{{ index .Values \"k.dot\" }}\"\n"
                   "  kept: {{ .Values.nested.keep | quote }}\n"
                   "  gone: {{ hasKey .Values.nested \"drop\" | quote }}\n"
                   "  roundtrip: {{ (fromYaml (toYaml .Values.nested)).keep | quote }}\n"
                   "  missing: \"{{ .Values.nothere }}\"\n"
                   "  chart: {{ printf \"%s %s\" .Chart.Version .Chart.AppVersion | quote }}\n"
                   "  template: {{ .Template.Name | quote }}\n"
                   "  env: {{ hasKey . \"env\" | quote }}\n"
                   "---\n\n---\n# only a comment\n",
        "NOTES.txt": "notes for {{ .Release.Name }}\n",
    }, values="greeting: 'hello {{ .Release.Name }}'\nnested:\n  keep: kept\n  drop: x\n")
    r = run_renderer(renderer, "--name", "demo", "--namespace", "ns1", "--set", "n=48,b=true,s=007,z=1.5",
                     "--set", "nested.drop=null", chart=chart)
    assert r.returncode == 0, r.stderr
    assert len(re.findall(r"(?m)^---$", r.stdout)) == 1 and "NotRendered" not in r.stdout and "notes for" not in r.stdout
    (cm,) = kc.load_objects(r.stdout)
    assert cm["metadata"] == {"name": "tiny-demo", "namespace": "ns1"}
    assert cm["data"] == {"tpl": "hello demo", "types": "int64 bool string string", "s": "007", "list": "", "dotted": "",
                          "kept": "kept",
                          "gone": "false", "roundtrip": "kept", "missing": "", "chart": "1.2.3 9",
                          "template": "tiny/templates/cm.yaml", "env": "false"}
    r = run_renderer(renderer, "--set-string", "n=48,b=true", "--set", "s=a\\,b", "--set", "l={x,y},k\\.dot=v",
                     chart=chart)
    (cm,) = kc.load_objects(r.stdout)
    assert cm["data"]["list"] == "x+y" and cm["data"]["dotted"] == "v"
    assert cm["data"]["types"] == "string string string <nil>" and cm["data"]["s"] == "a,b"
    assert cm["data"]["gone"] == "true"  # without --set nested.drop=null the default stays


def test_renderer_removes_env_functions_and_rejects_broken_output(renderer, tmp_path):
    env_chart = _tiny_chart(tmp_path / "a", {"x.yaml": '{{ env "HOME" }}\n'})
    r = run_renderer(renderer, chart=env_chart)
    assert r.returncode == 1 and 'function "env" not defined' in r.stderr
    bad = _tiny_chart(tmp_path / "b", {"x.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [unclosed\n"})
    r = run_renderer(renderer, chart=bad)
    assert r.returncode == 1 and "rendered YAML is invalid" in r.stderr
    nameless = _tiny_chart(tmp_path / "c", {"x.yaml": "apiVersion: v1\nkind: ConfigMap\ndata: {}\n"})
    r = run_renderer(renderer, chart=nameless)
    assert r.returncode == 1 and "lacks apiVersion, kind or metadata.name" in r.stderr
    old = _tiny_chart(tmp_path / "d", {"x.yaml": ""}, chart_extra='kubeVersion: ">=1.30.0-0"\n')
    r = run_renderer(renderer, chart=old)
    assert r.returncode == 1 and "incompatible with Kubernetes v1.29.0" in r.stderr
    assert run_renderer(renderer, "--kube-version", "1.31.2", chart=old).returncode == 0
    r = run_renderer(renderer, "--bogus", chart=old)
    assert r.returncode == 2 and "unknown option --bogus" in r.stderr


def test_renderer_reports_fail_and_required_with_their_position(renderer, tmp_path):
    chart = _tiny_chart(tmp_path, {"x.yaml": '{{ required "need .Values.a" .Values.a }}\n{{ fail "stop here" }}\n'})
    r = run_renderer(renderer, chart=chart)
    assert r.stderr.strip() == "Error: execution error at (tiny/templates/x.yaml:1:3): need .Values.a"
    r = run_renderer(renderer, "--set", "a=1", chart=chart)
    assert r.stderr.strip() == "Error: execution error at (tiny/templates/x.yaml:2:3): stop here"


# --- keeping the chart's copy of deploy/nginx/ current ---------------------------------------------


def sync_nginx():
    """Write charts/scout/files/ from deploy/nginx/ (the same data as k8s/nginx-configmap.yaml)."""
    for name, text in kc.nginx_config_from_deploy(REPO / "deploy" / "nginx").items():
        (CHART / "files" / name).write_text(text)
        print(f"wrote {CHART / 'files' / name}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--sync-nginx"]:
        sync_nginx()
        sys.exit(0)
    sys.exit("usage: python3 tests/deploy/test_helm.py --sync-nginx  (run the tests with pytest)")
