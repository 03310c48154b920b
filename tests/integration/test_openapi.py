"""The OpenAPI document (GET /openapi.json) and the reference page (GET /docs) against the real server.

The document must describe every route of the route table in src/api/routes.c (parsed here, so
that a route added without documentation fails this suite), with the access level the table
declares, and every documented operation must exist on the server. Then real traffic — every
endpoint, with valid bodies and with errors — is checked against it: each JSON answer must
validate against the schema documented for its status code, and must not carry a field the
schema does not document. The validator is a small one written here (no jsonschema package):
$ref, type, nullable, enum, required, properties, additionalProperties, items, allOf, oneOf,
anyOf, string/number/array/object bounds, pattern and the date-time and uuid formats.
"""

import json
import re

import pytest
import requests

from helpers import HTTP_TIMEOUT, MAX_BODY, REPO, raw_request

ROUTES_C = REPO / "src" / "api" / "routes.c"
COMMON_H = REPO / "src" / "util" / "common.h"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
ACCESS = {"ACCESS_OPEN": "open", "ACCESS_METRICS": "metrics", "ACCESS_CLIENT": "client", "ACCESS_ADMIN": "admin"}


# --------------------------------------------------------------------------- the route table


def source_routes():
    """[(METHOD, path with {id}, access)] from the ROUTES[] table of src/api/routes.c."""
    text = ROUTES_C.read_text()
    m = re.search(r"ROUTES\[\]\s*=\s*\{(.*?)\n\};", text, re.S)
    assert m, f"no ROUTES[] table found in {ROUTES_C}"
    table = re.sub(r"/\*.*?\*/|//[^\n]*", "", m.group(1), flags=re.S)
    entry = re.compile(r'\b(R|RP|RPS)\(\s*"([A-Z]+)"\s*,\s*"([^"]*)"\s*(?:,\s*"([^"]*)"\s*)?,\s*\w+\s*,\s*(\w+)\s*\)')
    routes = []
    for kind, method, prefix, suffix, access in entry.findall(table):
        path = prefix if kind == "R" else prefix + "{id}" + (suffix if kind == "RPS" else "")
        routes.append((method, path, access))
    entries = re.findall(r"(?<![\w\"])[A-Z][A-Z_]*\s*\(", table)
    assert len(routes) == len(entries), (
        f"routes.c has {len(entries)} entries but only {len(routes)} were understood: "
        f"teach source_routes() the new form")
    assert len(routes) >= 20, routes
    return routes


def shape(path):
    """A path with every {parameter} made anonymous: /api/update_model/{}."""
    return re.sub(r"\{[^}]*\}", "{}", path)


# --------------------------------------------------------------------------- the validator


class Validator:
    def __init__(self, doc):
        self.doc = doc

    def resolve(self, node):
        for _ in range(32):
            if not isinstance(node, dict) or "$ref" not in node:
                return node
            ref = node["$ref"]
            assert ref.startswith("#/"), f"only local $refs are supported: {ref}"
            target = self.doc
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                assert isinstance(target, dict) and part in target, f"unresolvable $ref {ref}"
                target = target[part]
            node = target
        raise AssertionError("$ref chain too long")

    def merged(self, schema):
        """allOf folded into one schema (properties and required united), for the field check."""
        schema = self.resolve(schema)
        if "allOf" not in schema:
            return schema
        out = {k: v for k, v in schema.items() if k != "allOf"}
        props, req = dict(out.get("properties", {})), list(out.get("required", []))
        for branch in schema["allOf"]:
            branch = self.merged(branch)
            props.update(branch.get("properties", {}))
            req += branch.get("required", [])
            for k, v in branch.items():
                if k not in ("properties", "required"):
                    out.setdefault(k, v)
        if props:
            out["properties"] = props
        if req:
            out["required"] = req
        return out

    def errors(self, schema, value, strict=True, where="$"):
        errs = []
        self._check(schema, value, where, errs, strict)
        seen, out = set(), []
        for e in errs:      # one report per problem, not one per array element
            key = re.sub(r"\[\d+\]", "[*]", e.split(": ")[0]) + e[len(e.split(": ")[0]):].split(",")[0]
            if key not in seen:
                seen.add(key)
                out.append(e)
        return out

    @staticmethod
    def _is(value, kind):
        if kind == "integer":
            return isinstance(value, int) and not isinstance(value, bool)
        if kind == "number":
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        return isinstance(value, {"string": str, "boolean": bool, "array": list, "object": dict}[kind])

    def _check(self, schema, v, where, errs, strict):
        schema = self.resolve(schema)
        if not isinstance(schema, dict):
            errs.append(f"{where}: schema is not an object: {schema!r}")
            return
        if v is None and schema.get("nullable"):
            return
        if "allOf" in schema:
            for branch in schema["allOf"]:
                self._check(branch, v, where, errs, False)
            if strict:
                self._check(self.merged(schema), v, where, errs, True)
            return
        for key in ("oneOf", "anyOf"):
            if key in schema:
                ok = [b for b in schema[key] if not self.errors(b, v, False, where)]
                if (key == "oneOf" and len(ok) != 1) or not ok:
                    errs.append(f"{where}: {json.dumps(v)[:80]} matches {len(ok)} of the {key} alternatives")
                elif strict:
                    self._check(ok[0], v, where, errs, True)
        kind = schema.get("type")
        if kind and not self._is(v, kind):
            errs.append(f"{where}: expected {kind}{' or null' if schema.get('nullable') else ''}, got {json.dumps(v)[:80]}")
            return
        if "enum" in schema and v not in schema["enum"]:
            errs.append(f"{where}: {v!r} is not one of {schema['enum']}")
        if isinstance(v, str):
            if len(v) < schema.get("minLength", 0) or len(v) > schema.get("maxLength", float("inf")):
                errs.append(f"{where}: length {len(v)} outside the documented bounds")
            if "pattern" in schema and not re.search(schema["pattern"], v):
                errs.append(f"{where}: {v!r} does not match {schema['pattern']}")
            fmt = schema.get("format")
            if fmt == "date-time" and not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", v):
                errs.append(f"{where}: {v!r} is not an ISO-8601 date-time")
            if fmt == "uuid" and not re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", v):
                errs.append(f"{where}: {v!r} is not a UUID")
        if self._is(v, "number"):
            if v < schema.get("minimum", float("-inf")) or v > schema.get("maximum", float("inf")):
                errs.append(f"{where}: {v} outside [{schema.get('minimum')}, {schema.get('maximum')}]")
        if isinstance(v, list):
            if len(v) < schema.get("minItems", 0) or len(v) > schema.get("maxItems", float("inf")):
                errs.append(f"{where}: {len(v)} items outside the documented bounds")
            if "items" in schema:
                for i, item in enumerate(v):
                    self._check(schema["items"], item, f"{where}[{i}]", errs, strict)
        if isinstance(v, dict):
            props = schema.get("properties", {})
            for name in schema.get("required", []):
                if name not in v:
                    errs.append(f"{where}: required field {name!r} is missing")
            if len(v) < schema.get("minProperties", 0) or len(v) > schema.get("maxProperties", float("inf")):
                errs.append(f"{where}: {len(v)} entries outside the documented bounds")
            extra = schema.get("additionalProperties")
            for k, item in v.items():
                if k in props:
                    self._check(props[k], item, f"{where}.{k}", errs, strict)
                    alias_of = props[k].get("x-alias-of")
                    if strict and alias_of in v and v[alias_of] != item:   # answers carry equal aliases
                        errs.append(f"{where}.{k}: alias of {alias_of!r} but {item!r} != {v[alias_of]!r}")
                elif extra is False:
                    errs.append(f"{where}: field {k!r} is not allowed")
                elif isinstance(extra, dict):
                    self._check(extra, item, f"{where}[{k!r}]", errs, strict)
                elif strict and props and extra is None:
                    errs.append(f"{where}: field {k!r} is not documented")


# --------------------------------------------------------------------------- the recorder


class Api:
    """Calls the server and checks every answer against the document; collects the problems."""

    def __init__(self, scout, doc):
        self.scout, self.doc, self.v = scout, doc, Validator(doc)
        self.problems, self.seen = [], set()
        self.templates = [(re.compile("^" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(p)) + "/?$"), p)
                          for p in doc["paths"]]

    def template(self, path):
        path = path.split("?")[0]
        return next((t for rx, t in self.templates if rx.match(path)), None)

    def call(self, method, path, body=..., expect=200, raw=None, headers=None, stream=False):
        """One request (JSON `body` unless `...`; `raw` bytes instead); asserts the status."""
        kw = {"headers": dict(headers or {}), "timeout": HTTP_TIMEOUT, "stream": stream}
        if raw is not None:
            kw["data"] = raw
            kw["headers"].setdefault("Content-Type", "application/json")
        elif body is not ...:
            kw["data"] = json.dumps(body)
            kw["headers"]["Content-Type"] = "application/json"
        r = requests.request(method, self.scout.url(path), **kw)
        if stream:
            first = next(r.iter_content(chunk_size=None), b"")
            r.close()
            content = first
        else:
            content = r.content
        assert r.status_code == expect, f"{method} {path} -> {r.status_code} (expected {expect}): {content[:300]!r}"
        self.check(method, path, r.status_code, r.headers, content, body if raw is None else ...)
        return r.json() if r.headers.get("Content-Type", "").startswith("application/json") else content

    def check(self, method, path, status, headers, content, sent=...):
        headers = {k.lower(): v for k, v in headers.items()}
        where = f"{method} {path.split('?')[0][:80]} -> {status}"
        template = self.template(path)
        ops = self.doc["paths"].get(template, {}) if template else {}
        op = ops.get(method.lower())
        if template is None:       # unknown path: the router's 404, the shared Error shape
            schema, documented = {"$ref": "#/components/schemas/Error"}, {}
        else:
            candidates = [op] if op else [o for m, o in ops.items() if m in METHODS]
            response = next((o["responses"][str(status)] for o in candidates if str(status) in o["responses"]), None)
            if response is None:
                self.problems.append(f"{where}: status {status} is not documented for {method} {template}")
                return
            response = self.v.resolve(response)
            documented = response.get("content", {})
            for h in response.get("headers", {}):
                if h.lower() not in headers:
                    self.problems.append(f"{where}: documented header {h} is missing")
            ctype = headers.get("content-type", "").split(";")[0].strip()
            if ctype not in documented:
                self.problems.append(f"{where}: content type {ctype!r} is not documented ({list(documented)})")
                return
            schema = documented[ctype].get("schema", {})
            self.seen.add((template, method.upper(), status))
            if op and sent is not ... and status == 200 and "requestBody" in op:
                rb = self.v.resolve(op["requestBody"])["content"]["application/json"]["schema"]
                for e in self.v.errors(rb, sent, strict=False):
                    self.problems.append(f"{where}: the valid request body we sent fails the documented schema: {e}")
            if not ctype.endswith("json"):
                if not isinstance(content, bytes) or (status == 200 and not content):
                    self.problems.append(f"{where}: empty {ctype} body")
                return
        try:
            value = json.loads(content)
        except ValueError:
            self.problems.append(f"{where}: body is not JSON: {content[:200]!r}")
            return
        for e in self.v.errors(schema, value, strict=True):
            self.problems.append(f"{where}: {e}")

    def raw(self, head, parts=(), **kw):
        resp = raw_request(self.scout, head, parts, **kw)
        method, path = head.split(b" ")[:2]
        self.check(method.decode(), path.decode(), resp.status, resp.headers, resp.body)
        return resp

    def assert_clean(self):
        assert not self.problems, "answers that do not match /openapi.json:\n  " + "\n  ".join(self.problems)


def load_doc(scout):
    r = scout.get("/openapi.json")
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Content-Type"].split(";")[0].strip() == "application/json", r.headers["Content-Type"]
    return r.json()


def operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method.upper(), op


@pytest.fixture
def doc(scout):
    return load_doc(scout)


@pytest.fixture
def api(scout, doc):
    return Api(scout, doc)


# --------------------------------------------------------------------------- the document itself


def test_the_validator_catches_what_it_should():
    doc = {"components": {"schemas": {
        "Label": {"oneOf": [{"type": "string", "maxLength": 3}, {"type": "integer"}]},
        "Base": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
        "Thing": {"allOf": [{"$ref": "#/components/schemas/Base"}, {
            "type": "object", "required": ["n"],
            "properties": {"n": {"type": "integer", "minimum": 0}, "at": {"type": "string", "format": "date-time",
                                                                          "nullable": True},
                           "alias": {"type": "string", "x-alias-of": "id"},
                           "labels": {"type": "array", "items": {"$ref": "#/components/schemas/Label"}},
                           "map": {"type": "object", "additionalProperties": {"type": "number"}}}}]}}}}
    v = Validator(doc)
    thing = {"$ref": "#/components/schemas/Thing"}
    good = {"id": "x", "n": 1, "at": None, "alias": "x", "labels": ["a", 7], "map": {"k": 1.5}}
    assert v.errors(thing, good) == []
    bad = [({"n": 1}, "required field 'id'"), (dict(good, n=True), "expected integer"),
           (dict(good, n=-1), "outside"), (dict(good, at="yesterday"), "date-time"),
           (dict(good, alias="y"), "alias of 'id'"), (dict(good, labels=[1.5]), "matches 0 of the oneOf"),
           (dict(good, labels=["long"]), "matches 0"), (dict(good, map={"k": "1"}), "expected number"),
           (dict(good, surprise=1), "field 'surprise' is not documented"), (None, "expected object")]
    for value, expected in bad:
        errs = v.errors(thing, value)
        assert any(expected in e for e in errs), (value, errs)
    assert v.errors(thing, dict(good, surprise=1), strict=False) == []


def test_openapi_json_is_an_openapi_3_document(doc):
    assert re.fullmatch(r"3\.\d+\.\d+", doc.get("openapi", "")), doc.get("openapi")
    assert doc["info"]["title"] and doc["info"]["version"] and doc["info"].get("description")
    assert isinstance(doc["paths"], dict) and doc["paths"]
    for path, method, op in operations(doc):
        assert path.startswith("/"), path
        assert op.get("summary") and op.get("description"), f"{method} {path} lacks a summary or description"
        assert op.get("responses") and "200" in op["responses"], f"{method} {path} documents no 200"
        assert op.get("tags") and op["tags"][0] in {t["name"] for t in doc["tags"]}, f"{method} {path} tag"
        for name in re.findall(r"\{([^}]+)\}", path):
            params = [p for p in op.get("parameters", []) if p["in"] == "path" and p["name"] == name]
            assert params and params[0]["required"] is True, f"{method} {path}: path parameter {name} undocumented"
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids)), "operationIds must be unique"


def test_every_ref_resolves_and_every_example_matches_its_schema(doc):
    v = Validator(doc)

    def walk(node, where):
        if isinstance(node, dict):
            if "$ref" in node:
                v.resolve(node)
            for k, child in node.items():
                walk(child, f"{where}/{k}")
        elif isinstance(node, list):
            for i, child in enumerate(node):
                walk(child, f"{where}/{i}")

    walk(doc, "#")
    problems = []
    for path, method, op in operations(doc):
        bodies = [("request", op.get("requestBody", {}))] + [(s, r) for s, r in op["responses"].items()]
        for what, node in bodies:
            for ctype, media in v.resolve(node).get("content", {}).items():
                if "example" in media and ctype == "application/json":
                    strict = what != "request"
                    problems += [f"{method} {path} {what} example: {e}"
                                 for e in v.errors(media["schema"], media["example"], strict)]
    assert not problems, "\n".join(problems)


def test_every_route_of_routes_c_is_documented_with_its_method_and_access(doc):
    documented = {(shape(p), m): op for p, m, op in operations(doc)}
    missing, wrong = [], []
    for method, path, access in source_routes():
        op = documented.get((shape(path), method))
        if op is None:
            missing.append(f"{method} {path}")
            continue
        level = ACCESS.get(access)
        assert level, f"{method} {path}: unknown access level {access}; document it in this test and the document"
        security = op.get("security")
        expected = {"open": [[]], "metrics": [[{}, {"bearerAuth": []}], [{"bearerAuth": []}, {}]],
                    "client": [[{"bearerAuth": []}]], "admin": [[{"bearerAuth": []}]]}[level]
        if security not in expected or op.get("x-scout-access") != level:
            wrong.append(f"{method} {path}: {access} but security={security} x-scout-access={op.get('x-scout-access')}")
        if level == "admin" and "403" not in op["responses"]:
            wrong.append(f"{method} {path}: admin scope but no 403 documented")
        if level != "open" and not {"401", "429"} <= set(op["responses"]):
            wrong.append(f"{method} {path}: a token may be needed but 401/429 are not documented")
    assert not missing, "routes of src/api/routes.c missing from /openapi.json: " + ", ".join(missing)
    assert not wrong, "\n".join(wrong)
    table = {(shape(p), m) for m, p, _ in source_routes()}
    extra = [f"{m} {p}" for (p, m) in documented if (p, m) not in table]
    assert not extra, "documented but not in src/api/routes.c: " + ", ".join(extra)


def test_security_scheme_and_shared_error_schema(doc):
    comps = doc["components"]
    assert comps["securitySchemes"]["bearerAuth"] == {**comps["securitySchemes"]["bearerAuth"],
                                                      "type": "http", "scheme": "bearer"}
    err = comps["schemas"]["Error"]
    assert err["type"] == "object" and err["required"] == ["detail"]
    assert err["properties"]["detail"]["type"] == "string"
    v = Validator(doc)
    for path, method, op in operations(doc):
        for status, response in op["responses"].items():
            if int(status) >= 400:
                content = v.resolve(response).get("content", {})
                assert list(content) == ["application/json"], f"{method} {path} {status}: {list(content)}"
                assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}, \
                    f"{method} {path} {status} does not use the shared Error schema"
        assert "405" in op["responses"] and "414" in op["responses"] and "431" in op["responses"], f"{method} {path}"
        if "requestBody" in op:
            assert "413" in op["responses"] and "400" in op["responses"], f"{method} {path}: body errors"


def test_documented_limits_match_the_source(doc):
    caps = {k: int(v) for k, v in re.findall(r"#define\s+(SCOUT_MAX_\w+)\s+(\d+)\b", COMMON_H.read_text())}
    caps["SCOUT_MAX_BODY"] = MAX_BODY
    s = doc["components"]["schemas"]
    create = s["CreateModelRequest"]["properties"]
    checks = {
        "SCOUT_MAX_NAME": create["name"]["maxLength"],
        "SCOUT_MAX_VARIANTS": create["variants"]["maxProperties"],
        "SCOUT_MAX_LABEL": next(b["maxLength"] for b in s["Label"]["oneOf"] if b["type"] == "string"),
        "SCOUT_MAX_FEATURES": create["features"]["maxItems"],
        "SCOUT_MAX_CONTEXT_KEY": create["features"]["items"]["maxLength"],
        "SCOUT_MAX_CONTEXT_KEYS": s["Context"]["maxProperties"],
        "SCOUT_MAX_CONTEXT_STR": next(b["maxLength"] for b in s["ContextValue"]["oneOf"] if b["type"] == "string"),
        "SCOUT_MAX_REQUEST_ID": s["FetchRequest"]["properties"]["request_id"]["maxLength"],
        "SCOUT_MAX_UPDATES": s["UpdateRequest"]["properties"]["updates"]["maxItems"],
    }
    wrong = [f"{k}: source {caps.get(k)} != documented {v}" for k, v in checks.items() if caps.get(k) != v]
    assert s["Update"]["properties"]["request_id"]["maxLength"] == caps["SCOUT_MAX_REQUEST_ID"]
    assert str(caps["SCOUT_MAX_BODY"]) in doc["components"]["responses"]["PayloadTooLarge"]["description"]
    assert str(caps["SCOUT_MAX_CONTEXT_KEY"]) in s["Context"]["description"]
    assert not wrong, "\n".join(wrong)


def test_every_documented_operation_exists_on_the_server(scout, doc):
    mid = scout.post("/api/create_model", {"name": "exists", "variants": {"0": "A", "1": "B"}}).json()["model_id"]
    tid = scout.post("/admin/generate_token", {"name": "exists", "scope": "client"}).json()["id"]
    v = Validator(doc)
    for path, method, op in sorted(operations(doc), key=lambda x: ("delete" in x[0] or "revoke" in x[0], x[0])):
        concrete = path.replace("{model_id}", mid).replace("{token_id}", tid)
        assert "{" not in concrete, f"no value for the parameters of {path}"
        body = v.resolve(op["requestBody"])["content"]["application/json"].get("example") if "requestBody" in op else None
        kw = {"timeout": HTTP_TIMEOUT, "stream": True}
        if body is not None:
            kw["json"] = body
        r = requests.request(method, scout.url(concrete), **kw)
        is_json = r.headers.get("Content-Type", "").startswith("application/json")
        detail = r.json().get("detail") if is_json and isinstance(r.json(), dict) else None
        r.close()
        assert r.status_code != 405, f"{method} {path}: 405, the server has no such method on this path"
        assert not (r.status_code == 404 and detail == "Not Found"), f"{method} {path}: the server has no such path"


# --------------------------------------------------------------------------- real traffic


def test_real_traffic_matches_the_documented_schemas(scout, api, doc):
    c = api.call
    assert c("GET", "/healthz") == {"status": "ok"}
    c("GET", "/readyz")
    c("GET", "/openapi.json")
    c("GET", "/docs")
    assert b"scout_api_requests_total" in c("GET", "/metrics")
    assert c("GET", "/api/models") == []

    # tests: a plain one, one with every option and an integer label
    mid = c("POST", "/api/create_model", {"name": "headline", "variants": {"0": "Save time", "1": "Save money"}})["model_id"]
    other = c("POST", "/api/create_model", {"name": "offer", "variants": {"0": "ten", "2": 25}, "policy": "egreedy",
                                            "epsilon": 0.2, "min_updates": 0, "features": ["device", "age"]})["cb_model_id"]
    c("GET", "/api/models")
    c("GET", f"/api/model_details/{mid}")          # before any event: null timestamps, empty analytics

    # decisions with both spellings, contexts of every value type, generated request ids
    got = c("POST", "/api/fetch_recommended_variant", {"cb_model_id": mid, "context": {"device": "mobile", "age": 31,
                                                        "returning": True}, "request_id": "req-1"})
    assert got["request_id"] == "req-1"
    c("POST", "/api/fetch_recommended_variant", {"model_id": mid})
    c("POST", "/api/fetch_recommended_variant", {"cb_model_id": mid, "context": None, "request_id": None})
    for age in range(8):
        c("POST", "/api/fetch_recommended_variant", {"cb_model_id": other, "context": {"age": age, "device": "d%d" % (age % 3)},
                                                     "request_id": f"o-{age}"})

    # rewards: joined by request id, by decision id or label, inline feature_* and context objects
    up = c("POST", f"/api/update_model/{mid}", {"updates": [
        {"request_id": "req-1", "reward": 1},
        {"decision": 0, "reward": 0, "context": {"device": "desktop"}},
        {"variant_id": "Save money", "reward": 2.5, "feature_device": "tablet"},
        {"variant": 1, "reward": 1, "request_id": "unknown-id", "context_used_for_prediction": False},
        {"request_id": "never-decided", "reward": 1}]})
    assert (up["processed_updates"], up["failed_updates"], up["redis_hits"]) == (4, 1, 1), up
    c("POST", f"/api/update_model/{other}", {"updates": [{"request_id": f"o-{i}", "reward": i % 2} for i in range(8)]
                                                        + [{"decision": 25, "reward": 3}]})
    c("POST", f"/api/update_model/{other}", {"updates": []})
    c("GET", "/api/models")
    details = c("GET", f"/api/model_details/{other}")
    assert details["feature_prediction_data"], details["feature_prediction_data"]
    c("GET", f"/api/model_details/{mid}")

    # the log, exported (one JSON line validates as one ExportRow) and weighed
    assert c("GET", f"/api/export/{mid}?format=jsonl&limit=1").count(b"\n") == 1
    c("GET", f"/api/export/{other}?format=csv")
    c("GET", f"/api/export/{other}?format=vw&missing_reward=0")
    c("POST", f"/api/evaluate/{other}", {"policy": "current", "missing_reward": 0})
    c("POST", f"/api/evaluate/{other}", {"policy": {"probabilities": {"ten": 0.5, "25": 0.5}}, "since": 0, "limit": 100})
    assert c("POST", f"/api/evaluate/{mid}", {"policy": {"variant": 1}, "since": 4e9})["rows"] == 0

    # global rollout and back
    c("POST", f"/api/rollout_global_variant/{mid}", {"variant": "Save money"})
    assert c("POST", "/api/fetch_recommended_variant", {"cb_model_id": mid})["is_global_rollout"] is True
    assert any(m["global_variant"] == "Save money" for m in c("GET", "/api/models"))
    c("POST", f"/api/rollout_global_variant/{other}", {"variant_id": 2})
    c("GET", f"/api/model_details/{other}")
    c("POST", f"/api/clear_global_variant/{mid}")
    c("POST", f"/api/clear_global_variant/{other}")

    # admin: protection, settings, store health
    c("GET", "/admin/get_protection")
    c("GET", "/admin/model_config")
    c("POST", "/admin/model_config", {"time_window_minutes": 30, "bucket_granularity_seconds": 120, "min_update_requests": 5})
    c("POST", "/admin/model_config", {"min_update_requests": 10})
    c("GET", "/admin/system_config")
    c("POST", "/admin/system_config", {"debug": True})
    c("POST", "/admin/system_config", {"host": "127.0.0.1", "port": scout.port, "debug": False})
    c("GET", "/admin/redis_config")
    c("POST", "/admin/redis_config", {"ttl": 3600})
    c("POST", "/admin/redis_config", {"host": "localhost", "port": 6379, "ttl": 86400})
    c("GET", "/admin/redis_health")
    assert c("POST", "/admin/backup", {"keep": 2})["tests"] == 2
    assert c("POST", "/admin/backup", raw=b"")["keep"] == 7

    # one test moved: exported with its events, imported back as a new test (deleted below)
    exported = c("GET", f"/admin/tests/{other}/export?events=true")
    moved = c("POST", "/admin/tests/import", dict(exported, name="offer (moved)"))
    assert moved["name"] == "offer (moved)" and moved["events"] == 9, moved
    c("GET", f"/admin/tests/{mid}/export")

    # tokens, with protection off
    assert c("GET", "/admin/tokens") == []
    admin = c("POST", "/admin/generate_token", raw=b"")
    client = c("POST", "/admin/generate_token", {"name": "checkout", "scope": "client", "ttl_hours": 0})
    assert client["expires_at"] is None and admin["scope"] == "admin"
    c("POST", "/admin/generate_token", {"name": "short", "ttl_seconds": 60})
    c("GET", "/admin/tokens")
    rotated = c("POST", f"/admin/tokens/{admin['id']}/rotate", {"grace_seconds": 30})
    assert rotated["replaces"] == admin["id"]
    c("POST", f"/admin/tokens/{client['id']}/rotate", raw=b"")
    c("POST", f"/admin/tokens/{client['id']}/revoke")
    assert c("GET", "/admin/get_protection")["tokens_count"] == 5
    c("POST", "/admin/set_protection", False)
    c("POST", "/admin/set_protection", {"protected_api": False})
    c("GET", "/logs/stream?level=info", stream=True)
    c("GET", "/logs/stream", stream=True)

    c("POST", f"/api/delete_model/{other}")
    c("POST", f"/api/delete_model/{mid}")
    c("POST", f"/api/delete_model/{moved['model_id']}")
    assert c("GET", "/api/models") == []
    c("GET", "/metrics")

    api.assert_clean()
    never = [f"{m} {p}" for p, m, _ in operations(doc) if (p, m, 200) not in api.seen]
    assert not never, "documented operations this test never saw answer 200: " + ", ".join(never)


def test_error_answers_match_the_documented_schemas(scout, api, doc):
    c = api.call
    mid = c("POST", "/api/create_model", {"name": "errors", "variants": {"0": "A", "1": "B"}})["model_id"]

    # 400: malformed JSON on every operation that reads a body, and invalid values
    for path, method, op in operations(doc):
        if "requestBody" in op:
            c(method, path.replace("{model_id}", mid).replace("{token_id}", "0000000000000000"), raw=b'{"a": ', expect=400)
    c("POST", "/api/create_model", raw=b"", expect=400)
    c("POST", "/api/create_model", {"name": "x", "variants": {"0": "A", "1": "A"}}, expect=400)
    c("POST", "/api/create_model", {"name": "x", "variants": {"a": "A"}}, expect=400)
    c("POST", "/api/create_model", {"name": "x" * 257, "variants": {"0": "A"}}, expect=400)
    c("POST", "/api/create_model", {"name": "x", "variants": {str(i): f"v{i}" for i in range(257)}}, expect=400)
    c("POST", "/api/create_model", {"name": "x", "variants": {"0": "A"}, "policy": "bayes-magic"}, expect=400)
    c("POST", "/api/fetch_recommended_variant", {"cb_model_id": mid, "context": {f"k{i}": i for i in range(65)}}, expect=400)
    c("POST", "/api/fetch_recommended_variant", {"cb_model_id": mid, "context": {"k" * 129: 1}}, expect=400)
    c("POST", "/api/fetch_recommended_variant", {"cb_model_id": mid, "context": {"k": "v" * 1025}}, expect=400)
    c("POST", "/api/fetch_recommended_variant", {"cb_model_id": mid, "request_id": "r" * 129}, expect=400)
    c("POST", f"/api/update_model/{mid}", {"updates": [{"decision": "Z", "reward": 1}]}, expect=400)
    c("POST", f"/api/update_model/{mid}", {"updates": [{"decision": 0, "reward": 1}] * 10001}, expect=400)
    c("POST", f"/api/rollout_global_variant/{mid}", {"variant": "nope"}, expect=400)
    c("POST", "/admin/model_config", {"time_window_minutes": 0}, expect=400)
    c("POST", "/admin/system_config", {"port": 70000}, expect=400)
    c("POST", "/admin/redis_config", {"host": ""}, expect=400)
    c("POST", "/admin/generate_token", {"scope": "root"}, expect=400)
    tid = c("POST", "/admin/generate_token", {"scope": "client"})["id"]
    c("POST", f"/admin/tokens/{tid}/rotate", {"grace_seconds": -1}, expect=400)
    c("POST", "/admin/backup", {"keep": 0}, expect=400)

    # 404: unknown test, unknown token, unknown path
    for path, method, _ in operations(doc):
        if "{model_id}" in path:
            c(method, path.replace("{model_id}", "no-such-test"), {"variant": 0, "updates": []}, expect=404)
        if "{token_id}" in path:
            c(method, path.replace("{token_id}", "ffffffffffffffff"), expect=404)
    c("POST", "/api/fetch_recommended_variant", {"cb_model_id": "no-such-test"}, expect=404)
    c("GET", "/no/such/path", expect=404)

    # 405: every path with a method it does not have
    for path, item in doc["paths"].items():
        wrong = "DELETE" if "get" in item and "post" in item else ("POST" if "get" in item else "GET")
        c(wrong, path.replace("{model_id}", mid).replace("{token_id}", tid), expect=405)

    # 409: protection on without an admin token
    c("POST", "/admin/set_protection", True, expect=409)

    # 422: well-formed JSON of the wrong shape
    c("POST", "/api/create_model", [1, 2], expect=422)
    c("POST", "/api/create_model", {"name": "x"}, expect=422)
    c("POST", "/api/fetch_recommended_variant", {}, expect=422)
    c("POST", "/api/fetch_recommended_variant", {"cb_model_id": mid, "context": 5}, expect=422)
    c("POST", f"/api/update_model/{mid}", {"updates": {}}, expect=422)
    c("POST", f"/api/update_model/{mid}", {"updates": [{"decision": 0}]}, expect=422)
    c("POST", f"/api/rollout_global_variant/{mid}", {}, expect=422)
    c("POST", "/admin/set_protection", "yes", expect=422)
    c("POST", "/admin/model_config", {"time_window_minutes": "60"}, expect=422)
    c("POST", "/admin/generate_token", {"ttl_seconds": 1.5}, expect=422)
    c("POST", f"/admin/tokens/{tid}/rotate", [], expect=422)
    c("POST", "/admin/backup", {"keep": "7"}, expect=422)
    c("GET", "/logs/stream?level=verbose", expect=400)

    # 413, 414, 431: limits of the request itself
    body = b'{"cb_model_id": "%s"}' % mid.encode()
    body += b" " * (MAX_BODY + 1 - len(body))
    head = (b"POST /api/fetch_recommended_variant HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))
    assert api.raw(head, [body[i:i + 65536] for i in range(0, len(body), 65536)], early_answer_wait=0.5).status == 413
    assert api.raw(b"GET /api/models?" + b"q" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").status == 414
    big = b"GET /api/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"p" * 20000 + b"\r\n\r\n"
    assert api.raw(big).status == 431
    api.assert_clean()


def test_auth_refusals_match_the_documented_schemas(scout_factory):
    scout = scout_factory(env={"SCOUT_METRICS_REQUIRE_TOKEN": "true", "SCOUT_AUTH_MAX_FAILURES": "5"})
    api = Api(scout, load_doc(scout))
    c = api.call
    admin = {"Authorization": "Bearer " + c("POST", "/admin/generate_token", {"name": "ops"})["token"]}
    client = {"Authorization": "Bearer " + c("POST", "/admin/generate_token", {"scope": "client"})["token"]}
    mid = c("POST", "/api/create_model", {"name": "auth", "variants": {"0": "A", "1": "B"}})["model_id"]
    c("GET", "/metrics", expect=401)
    c("GET", "/metrics", headers=client)
    c("POST", "/admin/set_protection", True)
    assert c("GET", "/admin/get_protection", headers=admin)["protected_api"] is True
    c("GET", "/api/models", expect=401)
    c("POST", "/api/fetch_recommended_variant", {"cb_model_id": mid}, expect=401)
    c("GET", "/api/models", headers={"Authorization": "Basic abc"}, expect=401)
    c("GET", "/api/models", headers=client, expect=403)
    c("GET", "/logs/stream", headers=client, expect=403)
    c("POST", "/admin/generate_token", {"name": "x"}, headers=client, expect=403)
    c("POST", "/api/fetch_recommended_variant", {"cb_model_id": mid}, headers=client)
    c("POST", f"/api/update_model/{mid}", {"updates": [{"decision": 0, "reward": 1}]}, headers=client)
    c("GET", "/docs")
    c("GET", "/healthz")
    for _ in range(8):         # SCOUT_AUTH_MAX_FAILURES (5) refusals in all, then 429 for the backoff
        r = requests.get(scout.url("/api/models"), headers={"Authorization": "Bearer sct_wrong"}, timeout=HTTP_TIMEOUT)
        api.check("GET", "/api/models", r.status_code, r.headers, r.content)
    c("GET", "/api/models", expect=429)
    c("GET", "/api/models", headers=admin)   # a valid token is never slowed down
    c("POST", "/admin/set_protection", {"protected_api": False}, headers=admin)
    api.assert_clean()
    assert any(s == 429 for (_, _, s) in api.seen) and any(s == 401 for (_, _, s) in api.seen)


# --------------------------------------------------------------------------- the page


def test_docs_page_is_self_contained_html(scout):
    r = scout.get("/docs")
    assert r.status_code == 200
    assert r.headers["Content-Type"].split(";")[0].strip().lower() == "text/html"
    html = r.text
    assert re.search(r"<html[^>]*\blang=", html, re.I) and "<title>" in html and 'name="viewport"' in html
    assert "/openapi.json" in html, "the page must render /openapi.json"
    own = {f"127.0.0.1:{scout.port}", f"localhost:{scout.port}"}
    foreign = [m.group(0) for m in re.finditer(r"https?://([^/\s\"'<>)`]+)", html, re.I) if m.group(1) not in own]
    assert not foreign, f"/docs refers to other hosts (it must work offline): {foreign}"
    assert not re.search(r"""(src|href)\s*=\s*["']?//""", html, re.I), "protocol-relative URL in /docs"
    assert not re.search(r"<script[^>]+\bsrc=|<link[^>]+\bhref=|@import|\burl\(\s*['\"]?(https?:|//)", html, re.I), \
        "/docs must inline its script and style"
