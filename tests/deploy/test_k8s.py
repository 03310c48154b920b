"""test_k8s.py — the Kubernetes manifests (k8s/, k8s/security/) meet the security guide, offline.

kustomize builds them into exactly the objects that the guide's plain `kubectl apply -f` applies;
the checker (k8s_checks.py) finds no problem; every object validates against the Kubernetes
OpenAPI schemas; nginx's ConfigMap is deploy/nginx/ with the Services' names; the placeholder
token is one scoutd refuses. The negative tests break the objects one way at a time and assert
the checker names the breakage, so a green run means the checks can fail.
Run: /usr/bin/python3 -m pytest tests/deploy/test_k8s.py
"""

import copy
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import k8s_checks as kc  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
SECURITY = K8S / "security"
CHECKER = Path(__file__).resolve().parent / "k8s_checks.py"


def plain_objects():
    """What `kubectl apply -f k8s/security/ && kubectl apply -f k8s/` applies, in that order."""
    return kc.load_objects([SECURITY, K8S])


@pytest.fixture
def objs():
    return copy.deepcopy(plain_objects())


def find(objects, kind, name):
    for o in objects:
        if o["kind"] == kind and o["metadata"]["name"] == name:
            return o
    raise KeyError(f"{kind}/{name}")


def podspec(objects, name):
    return find(objects, "Deployment", name)["spec"]["template"]["spec"]


def key(o):
    return (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])


def kubectl():
    k = shutil.which("kubectl")
    if not k:
        pytest.skip("kubectl is not installed (Debian 12: apt-get install kubernetes-client, whose kubectl "
                    "1.20 has `kubectl kustomize` and builds k8s/)")
    return k


# --- structure -----------------------------------------------------------------------------------


def test_kustomize_builds_exactly_what_plain_apply_applies():
    out = subprocess.run([kubectl(), "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    built = kc.load_objects(out.stdout)
    assert sorted(built, key=key) == sorted(plain_objects(), key=key)


def test_plain_apply_of_both_directories_reads_only_kubernetes_objects():
    # `kubectl apply -f DIR` reads *.yaml, *.yml and *.json; each must be a Kubernetes object
    # (the kustomization is the extension-less `Kustomization`, which apply -f skips).
    for d in (SECURITY, K8S):
        files = [f for f in d.iterdir() if f.is_file() and f.suffix in (".yaml", ".yml", ".json")]
        assert files
        for f in files:
            for doc in kc.load_objects(f):
                assert doc.get("apiVersion") and doc.get("kind") and doc["kind"] != "Kustomization", f
    assert (K8S / "Kustomization").exists() and not (K8S / "kustomization.yaml").exists()
    # Applied first, the security directory creates the namespace before anything lands in it.
    first = sorted(f.name for f in SECURITY.iterdir() if f.suffix == ".yaml")[0]
    assert [o["kind"] for o in kc.load_objects(SECURITY / first)] == ["Namespace"]


def test_every_object_carries_the_shared_labels_and_namespace():
    for o in plain_objects():
        labels = o["metadata"].get("labels") or {}
        assert labels.get("app.kubernetes.io/name") == "scout", key(o)
        assert labels.get("app.kubernetes.io/part-of") == "scout", key(o)
        if o["kind"] != "Namespace":
            assert o["metadata"].get("namespace") == "scout", key(o)


def test_workloads_follow_the_conventions():
    o = plain_objects()
    images = {n: podspec(o, n)["containers"][0]["image"] for n in
              ("scout-backend", "scout-frontend", "scout-nginx", "scout-redis")}
    assert images == {"scout-backend": "scout-backend:latest", "scout-frontend": "scout-frontend:latest",
                      "scout-nginx": "scout-nginx:latest", "scout-redis": "redis:7.2.5"}
    for n in images:
        assert podspec(o, n)["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    backend = find(o, "Deployment", "scout-backend")
    assert backend["spec"]["replicas"] == 2
    spec = backend["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "scout-backend" and spec["automountServiceAccountToken"] is False
    ann = backend["spec"]["template"]["metadata"]["annotations"]
    assert ann == {"prometheus.io/scrape": "true", "prometheus.io/port": "8000", "prometheus.io/path": "/metrics"}
    env = kc.container_env(o, "scout", spec["containers"][0])
    assert {k: v[1] for k, v in env.items() if v[0] == "value"} == {
        "SCOUT_HOST": "0.0.0.0", "SCOUT_PORT": "8000", "SCOUT_UI_PORT": "0", "SCOUT_DATA_DIR": "/data",
        "REDIS_HOST": "scout-redis", "REDIS_PORT": "6379", "SCOUT_PROTECTED_API": "true",
        "SCOUT_TOKEN_TTL_HOURS": "24", "SCOUT_LOG_LEVEL": "info",
        "SCOUT_TRUSTED_PROXIES": "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fd00::/8"}
    assert env["SCOUT_AUTH_TOKEN"] == ("secret", "scout-secrets", "auth-token")
    assert env["REDIS_PASSWORD"] == ("secret", "scout-secrets", "redis-password")
    ports = {s["metadata"]["name"]: s["spec"]["ports"][0]["port"] for s in o if s["kind"] == "Service"}
    assert ports == {"scout-backend": 8000, "scout-frontend": 3000, "scout-nginx": 80, "scout-redis": 6379}
    hpa = find(o, "HorizontalPodAutoscaler", "scout-backend")
    assert hpa["apiVersion"] == "autoscaling/v2" and hpa["spec"]["scaleTargetRef"]["name"] == "scout-backend"
    assert {p["metadata"]["name"] for p in o if p["kind"] == "PodDisruptionBudget"} == {"scout-backend", "scout-nginx"}
    redis_args = podspec(o, "scout-redis")["containers"][0]["args"]
    assert redis_args[redis_args.index("--appendonly") + 1] == "yes"
    vols = {v["name"]: v for v in podspec(o, "scout-redis")["volumes"]}
    assert vols["data"]["persistentVolumeClaim"]["claimName"] == "scout-redis-data"
    find(o, "PersistentVolumeClaim", "scout-redis-data")
    sysctls = podspec(o, "scout-nginx")["securityContext"]["sysctls"]
    assert {s["name"]: int(s["value"]) for s in sysctls}["net.ipv4.ip_unprivileged_port_start"] <= 80


# --- the checker on the real manifests -----------------------------------------------------------


def test_checker_finds_no_problem_in_the_manifests():
    assert kc.check_all(plain_objects()) == []


def test_allowed_flows_are_exactly_the_guides_list():
    assert kc.compute_flows(plain_objects()) == kc.expected_flows(allow_external=True)


def test_without_the_external_policy_nothing_reaches_nginx_from_outside():
    objs = [o for o in plain_objects() if o["metadata"]["name"] != "scout-nginx-external"]
    assert kc.compute_flows(objs) == kc.expected_flows(allow_external=False)
    assert kc.check_all(objs, allow_external=False) == []
    assert "external -> nginx:80/TCP" in " ".join(kc.check_network_policies(objs, allow_external=True))


def test_cli_exit_status_follows_the_problems(tmp_path):
    ok = subprocess.run([sys.executable, str(CHECKER), str(SECURITY), str(K8S)], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout == "", ok.stdout + ok.stderr
    objs = plain_objects()
    podspec(objs, "scout-frontend")["containers"][0]["securityContext"].pop("readOnlyRootFilesystem")
    bad = subprocess.run([sys.executable, str(CHECKER), "-"], input=yaml.safe_dump_all(objs),
                         capture_output=True, text=True)
    assert bad.returncode == 1
    assert "Deployment/scout/scout-frontend container frontend: readOnlyRootFilesystem is not true" in bad.stdout


# --- schemas -------------------------------------------------------------------------------------


def schema_problems(objects):
    try:
        return kc.validate_schemas(yaml.safe_dump_all(objects))
    except kc.SchemaToolMissing as e:
        pytest.skip(str(e))


def test_every_object_validates_against_the_kubernetes_schemas():
    assert schema_problems(plain_objects()) == []


def test_schema_validation_rejects_an_invalid_object(objs):
    podspec(objs, "scout-backend")["containers"][0]["ports"][0]["containerPort"] = "eight thousand"
    find(objs, "Service", "scout-redis")["spec"]["ports"][0].pop("port")
    problems = schema_problems(objs)
    assert len(problems) == 2, problems
    assert "Deployment/scout-backend" in problems[0] and "containerPort must be integer" in problems[0]
    assert "Service/scout-redis" in problems[1] and "must have required property port" in problems[1]


# --- nginx's configuration and the secret placeholders -------------------------------------------


def test_nginx_configmap_is_deploy_nginx_with_the_service_names():
    cm = find(plain_objects(), "ConfigMap", "scout-nginx")
    want = kc.nginx_config_from_deploy(REPO / "deploy" / "nginx")
    assert cm["data"]["scout-routes.conf"] == (REPO / "deploy/nginx/scout-routes.conf").read_text(), \
        "k8s/nginx-configmap.yaml is stale: run python3 tests/deploy/k8s_checks.py --sync-nginx"
    assert cm["data"] == want, "k8s/nginx-configmap.yaml is stale: run python3 tests/deploy/k8s_checks.py --sync-nginx"
    assert "server scout-backend:8000" in cm["data"]["nginx.conf"]
    assert "server scout-frontend:3000" in cm["data"]["nginx.conf"]
    ann = find(plain_objects(), "Deployment", "scout-nginx")["spec"]["template"]["metadata"]["annotations"]
    assert ann["checksum/nginx-config"] == kc.config_checksum(cm["data"]), \
        "the checksum annotation in k8s/nginx.yaml is stale: run python3 tests/deploy/k8s_checks.py --sync-nginx"
    mounts = {m["mountPath"]: m.get("subPath") for m in podspec(plain_objects(), "scout-nginx")["containers"][0]["volumeMounts"]}
    assert set(cm["data"]) <= set(mounts.values())


def test_nginx_accepts_the_kubernetes_configuration(tmp_path):
    """`nginx -t` passes on the ConfigMap's two files. nginx resolves upstream names while testing and
    the Service names exist only in a cluster, so this copy points them at 127.0.0.1."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not nginx:
        pytest.skip("nginx is not installed (Debian: nginx)")
    data = find(plain_objects(), "ConfigMap", "scout-nginx")["data"]
    conf = data["nginx.conf"].replace("scout-backend:8000", "127.0.0.1:8000").replace("scout-frontend:3000", "127.0.0.1:3000")
    (tmp_path / "nginx.conf").write_text(conf)
    (tmp_path / "scout-routes.conf").write_text(data["scout-routes.conf"])
    r = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


def test_secret_placeholders_are_unusable_so_scoutd_refuses_them(tmp_path):
    secret = find(plain_objects(), "Secret", "scout-secrets")
    assert set(secret["stringData"]) == {"auth-token", "redis-password"}
    token = secret["stringData"]["auth-token"]
    assert len(token) < 32, "the placeholder token must stay shorter than scoutd's 32-character minimum"
    scoutd = os.environ.get("SCOUTD") or str(REPO / "build" / "scoutd")
    if not os.access(scoutd, os.X_OK):
        pytest.skip(f"{scoutd} is not built (make build/scoutd)")
    with socket.socket() as sock:  # a free port, in case scoutd accepted the token and listened
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SCOUT_HOST": "127.0.0.1", "SCOUT_PORT": port,
           "SCOUT_UI_PORT": "0", "SCOUT_DATA_DIR": str(tmp_path), "SCOUT_PROTECTED_API": "true",
           "SCOUT_AUTH_TOKEN": token}
    r = subprocess.run([scoutd], env=env, capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "SCOUT_AUTH_TOKEN must be at least 32 characters" in r.stderr, r.stderr


def test_scoutd_starts_with_every_setting_of_the_configmap(tmp_path):
    """Each value in scout-config is one scoutd accepts (a malformed one stops it with exit 2).
    Only the address (loopback here), the data dir and Redis (no Redis Service outside a
    cluster: the embedded store stands in) are replaced."""
    import time
    import urllib.request
    scoutd = os.environ.get("SCOUTD") or str(REPO / "build" / "scoutd")
    if not os.access(scoutd, os.X_OK):
        pytest.skip(f"{scoutd} is not built (make build/scoutd)")
    data = dict(find(plain_objects(), "ConfigMap", "scout-config")["data"])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    for key in ("REDIS_HOST", "REDIS_PORT"):
        data.pop(key)
    env = {**data, "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SCOUT_HOST": "127.0.0.1", "SCOUT_PORT": port,
           "SCOUT_DATA_DIR": str(tmp_path), "SCOUT_AUTH_TOKEN": "k8s-configmap-test-token-0123456789abcdef"}
    p = subprocess.Popen([scoutd], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline, status = time.monotonic() + 15, None
        while time.monotonic() < deadline and p.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    status = r.status
                    break
            except OSError:
                time.sleep(0.1)
        assert status == 200, f"scoutd did not become ready with scout-config's settings: {p.poll()} " \
                              f"{p.stderr.read() if p.poll() is not None else ''}"
    finally:
        p.terminate()
        p.wait(timeout=15)


# --- negative tests: each breakage is reported ---------------------------------------------------


def _container(objs, dep, i=0):
    return podspec(objs, dep)["containers"][i]


def m_drop_read_only_root(objs):
    _container(objs, "scout-backend")["securityContext"].pop("readOnlyRootFilesystem")


def m_allow_escalation(objs):
    _container(objs, "scout-nginx")["securityContext"]["allowPrivilegeEscalation"] = True


def m_add_capability(objs):
    _container(objs, "scout-redis")["securityContext"]["capabilities"]["add"] = ["NET_ADMIN"]


def m_keep_capabilities(objs):
    _container(objs, "scout-frontend")["securityContext"]["capabilities"]["drop"] = ["NET_RAW"]


def m_container_as_root(objs):
    _container(objs, "scout-backend")["securityContext"]["runAsUser"] = 0


def m_pod_may_run_as_root(objs):
    podspec(objs, "scout-frontend")["securityContext"].pop("runAsNonRoot")


def m_no_seccomp(objs):
    podspec(objs, "scout-nginx")["securityContext"].pop("seccompProfile")


def m_privileged(objs):
    _container(objs, "scout-redis")["securityContext"]["privileged"] = True


def m_host_network(objs):
    podspec(objs, "scout-backend")["hostNetwork"] = True


def m_host_path(objs):
    podspec(objs, "scout-backend")["volumes"][1] = {"name": "data", "hostPath": {"path": "/var/lib/scout"}}


def m_tmp_not_mounted(objs):
    c = _container(objs, "scout-frontend")
    c["volumeMounts"] = [m for m in c["volumeMounts"] if m["mountPath"] != "/tmp"]


def m_tmp_on_config_map(objs):
    podspec(objs, "scout-frontend")["volumes"][0] = {"name": "tmp", "configMap": {"name": "scout-config"}}


def m_bare_init_container(objs):
    podspec(objs, "scout-backend")["initContainers"] = [{"name": "wait", "image": "scout-backend:latest"}]


def m_no_limits(objs):
    _container(objs, "scout-frontend")["resources"].pop("limits")


def m_no_memory_request(objs):
    _container(objs, "scout-redis")["resources"]["requests"].pop("memory")


def m_limit_below_request(objs):
    _container(objs, "scout-backend")["resources"]["limits"]["memory"] = "64Mi"


def m_no_readiness(objs):
    _container(objs, "scout-nginx").pop("readinessProbe")


def m_no_liveness(objs):
    _container(objs, "scout-redis").pop("livenessProbe")


def m_liveness_not_docs(objs):
    _container(objs, "scout-backend")["livenessProbe"]["httpGet"]["path"] = "/healthz"


def m_readiness_not_readyz(objs):
    _container(objs, "scout-backend")["readinessProbe"]["httpGet"]["path"] = "/docs"


def m_no_startup(objs):
    _container(objs, "scout-backend").pop("startupProbe")


def m_probe_wrong_port(objs):
    _container(objs, "scout-redis")["readinessProbe"]["tcpSocket"]["port"] = 6380


def m_password_in_configmap(objs):
    find(objs, "ConfigMap", "scout-config")["data"]["REDIS_PASSWORD"] = "hunter2hunter2"


def m_token_in_configmap_value(objs):
    find(objs, "ConfigMap", "scout-config")["data"]["EXTRA_ARGS"] = "--flag Zq3v9Xk2Lr8TnW4pB7yHc1Md6Fs0Ge5Ju2Ao9Ki3Rx8="


def m_redis_url_in_configmap(objs):
    find(objs, "ConfigMap", "scout-config")["data"]["SCOUT_REDIS_URL"] = "redis://:s3cretpass@scout-redis:6379"


def m_requirepass_in_configmap(objs):
    find(objs, "ConfigMap", "scout-nginx")["data"]["redis.conf"] = "appendonly yes\nrequirepass correcthorsebattery\n"


def m_literal_token_env(objs):
    env = _container(objs, "scout-backend")["env"]
    env[0] = {"name": "SCOUT_AUTH_TOKEN", "value": "a-literal-token-that-is-long-enough-1234"}


def m_unprotected_api(objs):
    find(objs, "ConfigMap", "scout-config")["data"]["SCOUT_PROTECTED_API"] = "false"


def m_secret_without_token(objs):
    find(objs, "Secret", "scout-secrets")["stringData"].pop("auth-token")


def m_secret_without_data(objs):
    find(objs, "Secret", "scout-secrets").pop("stringData")


def m_secret_bad_base64(objs):
    s = find(objs, "Secret", "scout-secrets")
    s.pop("stringData")
    s["data"] = {"auth-token": "not base64!", "redis-password": "UkVQTEFDRV9NRQ=="}


def m_redis_without_password(objs):
    args = _container(objs, "scout-redis")["args"]
    del args[0:2]


def m_redis_literal_password(objs):
    _container(objs, "scout-redis")["args"][1] = "password123"


def m_redis_password_other_key(objs):
    find(objs, "Secret", "scout-secrets")["stringData"]["other"] = "REPLACE_ME"
    _container(objs, "scout-redis")["env"][0]["valueFrom"]["secretKeyRef"]["key"] = "other"


def m_cluster_role(objs):
    objs.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                 "metadata": {"name": "scout-reader", "labels": {}},
                 "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]})


def m_role_wildcard(objs):
    find(objs, "Role", "scout-backend")["rules"][0]["verbs"] = ["*"]


def m_role_secrets(objs):
    find(objs, "Role", "scout-backend")["rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]})


def m_role_writes(objs):
    find(objs, "Role", "scout-backend")["rules"][0]["verbs"] = ["get", "update"]


def m_binding_to_cluster_role(objs):
    find(objs, "RoleBinding", "scout-backend")["roleRef"] = {"apiGroup": "rbac.authorization.k8s.io",
                                                             "kind": "ClusterRole", "name": "edit"}


def m_binding_to_default(objs):
    find(objs, "RoleBinding", "scout-backend")["subjects"].append(
        {"kind": "ServiceAccount", "name": "default", "namespace": "scout"})


def m_backend_default_sa(objs):
    podspec(objs, "scout-backend").pop("serviceAccountName")


def m_token_mounted(objs):
    podspec(objs, "scout-frontend").pop("automountServiceAccountToken")


def m_namespace_baseline(objs):
    find(objs, "Namespace", "scout")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "baseline"


def m_namespace_missing(objs):
    objs.remove(find(objs, "Namespace", "scout"))


def m_object_without_namespace(objs):
    find(objs, "Service", "scout-redis")["metadata"].pop("namespace")


def _policy(name, selector_component, types, ingress=None, egress=None):
    spec = {"podSelector": {"matchLabels": {"app.kubernetes.io/component": selector_component}}, "policyTypes": types}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": "scout", "labels": {}}, "spec": spec}


def _peer(comp):
    return {"podSelector": {"matchLabels": {"app.kubernetes.io/component": comp}}}


def m_frontend_to_redis(objs):
    objs.append(_policy("frontend-redis-out", "frontend", ["Egress"],
                        egress=[{"to": [_peer("redis")], "ports": [{"port": 6379}]}]))
    objs.append(_policy("frontend-redis-in", "redis", ["Ingress"],
                        ingress=[{"from": [_peer("frontend")], "ports": [{"port": 6379}]}]))


def m_no_default_deny(objs):
    objs.remove(find(objs, "NetworkPolicy", "scout-default-deny"))


def m_no_backend_to_redis(objs):
    find(objs, "NetworkPolicy", "scout-backend")["spec"]["egress"] = []


def m_backend_to_internet(objs):
    objs.append(_policy("backend-out", "backend", ["Egress"],
                        egress=[{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]))


def m_nginx_to_backend_any_port(objs):
    find(objs, "NetworkPolicy", "scout-backend")["spec"]["ingress"][0]["ports"] = None
    find(objs, "NetworkPolicy", "scout-nginx")["spec"]["egress"][1].pop("ports")


def m_backend_open_to_all_namespaces(objs):
    find(objs, "NetworkPolicy", "scout-backend")["spec"]["ingress"].append(
        {"from": [{"namespaceSelector": {}}], "ports": [{"port": 8000}]})


def m_dns_to_all_of_kube_system(objs):
    find(objs, "NetworkPolicy", "scout-dns-egress")["spec"]["egress"][0]["to"][0].pop("podSelector")


def m_prometheus_to_redis(objs):
    find(objs, "NetworkPolicy", "scout-prometheus")["spec"]["egress"].append({"to": [_peer("redis")]})
    find(objs, "NetworkPolicy", "scout-redis")["spec"]["ingress"].append({"from": [_peer("prometheus")]})


NEGATIVE = [
    (m_drop_read_only_root, "Deployment/scout/scout-backend container scoutd: readOnlyRootFilesystem is not true"),
    (m_allow_escalation, "container nginx: allowPrivilegeEscalation is not false"),
    (m_add_capability, "container redis: capabilities.add is ['NET_ADMIN']"),
    (m_keep_capabilities, "container frontend: capabilities.drop does not contain ALL"),
    (m_container_as_root, "container scoutd: runs as uid 0, not 1000"),
    (m_pod_may_run_as_root, "scout-frontend: pod securityContext.runAsNonRoot is not true"),
    (m_no_seccomp, "scout-nginx: pod securityContext.seccompProfile.type is not RuntimeDefault"),
    (m_privileged, "container redis: privileged is true"),
    (m_host_network, "scout-backend: hostNetwork is true"),
    (m_host_path, "volume data is of type hostPath"),
    (m_tmp_not_mounted, "container frontend: /tmp is not a mounted volume"),
    (m_tmp_on_config_map, "container frontend: /tmp is mounted from 'configMap', not an emptyDir"),
    (m_bare_init_container, "initContainer wait: readOnlyRootFilesystem is not true"),
    (m_bare_init_container, "initContainer wait: no memory limit"),
    (m_no_limits, "container frontend: no cpu limit"),
    (m_no_memory_request, "container redis: no memory request"),
    (m_limit_below_request, "container scoutd: memory limit 64Mi is below its request 128Mi"),
    (m_no_readiness, "container nginx: no readinessProbe"),
    (m_no_liveness, "container redis: no livenessProbe"),
    (m_liveness_not_docs, "container scoutd: livenessProbe is not GET /docs on port 8000"),
    (m_readiness_not_readyz, "container scoutd: readinessProbe is not GET /readyz on port 8000"),
    (m_no_startup, "container scoutd: startupProbe is not GET /docs on port 8000"),
    (m_probe_wrong_port, "container redis: readinessProbe aims at port 6380"),
    (m_password_in_configmap, "ConfigMap/scout/scout-config: key REDIS_PASSWORD looks like a secret"),
    (m_token_in_configmap_value, "value of EXTRA_ARGS contains a random-looking base64 string"),
    (m_redis_url_in_configmap, "value of SCOUT_REDIS_URL contains a URL with a password"),
    (m_requirepass_in_configmap, "value of redis.conf contains a requirepass assignment"),
    (m_literal_token_env, "env SCOUT_AUTH_TOKEN is a literal value in the pod spec"),
    (m_literal_token_env, "container scoutd: SCOUT_AUTH_TOKEN is a literal value"),
    (m_unprotected_api, "container scoutd: SCOUT_PROTECTED_API is not \"true\""),
    (m_secret_without_token, "SCOUT_AUTH_TOKEN comes from key auth-token of Secret scout-secrets, which has no such key"),
    (m_secret_without_data, "Secret/scout/scout-secrets: has neither data nor stringData"),
    (m_secret_bad_base64, "data.auth-token is not valid base64"),
    (m_redis_without_password, "container redis: redis-server does not run with --requirepass"),
    (m_redis_literal_password, "container redis: --requirepass is given a literal value"),
    (m_redis_password_other_key, "the Redis password comes from ('scout-secrets', 'other')"),
    (m_cluster_role, "ClusterRole/scout-reader: cluster-wide RBAC"),
    (m_role_wildcard, "Role/scout/scout-backend rule 0: wildcard in verbs"),
    (m_role_secrets, "Role/scout/scout-backend rule 1: grants access to secrets"),
    (m_role_writes, "grants ['update']; only get, list and watch are minimal"),
    (m_binding_to_cluster_role, "RoleBinding/scout/scout-backend: binds a ClusterRole"),
    (m_binding_to_default, "binds ServiceAccount scout/default"),
    (m_backend_default_sa, "scout-backend: runs as ServiceAccount default"),
    (m_token_mounted, "Deployment/scout/scout-frontend: mounts a Kubernetes API token"),
    (m_namespace_baseline, "pod-security.kubernetes.io/enforce is 'baseline'"),
    (m_namespace_missing, "namespace scout is used but no Namespace object"),
    (m_object_without_namespace, "Service/scout-redis: has no metadata.namespace"),
    (m_frontend_to_redis, "allow a flow the security guide does not list: frontend -> redis:6379/TCP"),
    (m_no_default_deny, "pods of backend in scout are not under a default-deny NetworkPolicy for Ingress"),
    (m_no_default_deny, "allow a flow the security guide does not list: redis -> external:*/TCP"),
    (m_no_backend_to_redis, "do not allow the guide's flow backend -> redis:6379/TCP"),
    (m_backend_to_internet, "does not list: backend -> external:*/TCP"),
    (m_nginx_to_backend_any_port, "does not list: nginx -> backend:*/TCP"),
    (m_backend_open_to_all_namespaces, "does not list: external -> backend:8000/TCP"),
    (m_dns_to_all_of_kube_system, "does not list: nginx -> external:53/UDP"),
    (m_prometheus_to_redis, "does not list: prometheus -> redis:6379/TCP"),
]


@pytest.mark.parametrize("mutate,expected", NEGATIVE, ids=[f"{m.__name__[2:]}-{i}" for i, (m, _e) in enumerate(NEGATIVE)])
def test_checker_reports_each_breakage(objs, mutate, expected):
    mutate(objs)
    problems = kc.check_all(objs)
    assert any(expected in p for p in problems), "\n".join(problems) or "no problem reported"


def test_an_ingress_rule_alone_opens_no_flow(objs):
    # frontend -> redis needs the frontend's egress too: the destination's consent alone is not a flow.
    objs.append(_policy("frontend-redis-in", "redis", ["Ingress"],
                        ingress=[{"from": [_peer("frontend")], "ports": [{"port": 6379}]}]))
    assert kc.check_all(objs) == []


def test_each_per_item_function_passes_on_the_manifests_alone():
    o = plain_objects()
    for f in (kc.check_pod_security, kc.check_resources, kc.check_probes, kc.check_secrets_not_in_configmaps,
              kc.check_rbac, kc.check_namespace_pss, kc.check_auth_and_redis):
        assert f(o) == [], f.__name__
    assert kc.check_network_policies(o, allow_external=True) == []


def test_load_objects_reads_paths_text_stdin_forms_and_skips_empty_documents(tmp_path):
    f = tmp_path / "two.yaml"
    f.write_text("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n\n---\n"
                 "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Secret, metadata: {name: b}}\n")
    assert [o["metadata"]["name"] for o in kc.load_objects(f)] == ["a", "b"]
    assert [o["metadata"]["name"] for o in kc.load_objects(str(f))] == ["a", "b"]
    assert [o["metadata"]["name"] for o in kc.load_objects([f.read_text(), tmp_path])] == ["a", "b", "a", "b"]
