// validate.mjs — validates Kubernetes objects against the official Kubernetes OpenAPI schemas,
// as compiled into the npm package kubernetes-models (one validator per apiVersion and kind:
// types, required fields, enums, formats such as quantities and int-or-string).
// Usage: node validate.mjs FILE...   (YAML, multi-document; "-" or no FILE reads stdin)
// Prints one line per invalid object and a summary; exits 0 when every object is valid, 1 when
// one is not (or has an apiVersion/kind the schemas do not know), 2 on unreadable input.
// kubernetes-models does not reject unknown fields; tests/deploy/k8s_checks.py requires the
// security-relevant ones by name, so a misspelt field there still fails.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

async function modelFor(apiVersion, kind) {
  if (typeof apiVersion !== "string" || typeof kind !== "string") return null;
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : [null, apiVersion];
  const spec = `kubernetes-models/${group ? `${group}/` : ""}${version}`;
  let mod;
  try {
    mod = await import(spec);
  } catch {
    return null;
  }
  return Object.hasOwn(mod, kind) ? mod[kind] : null;
}

function readInputs(args) {
  const names = args.length ? args : ["-"];
  return names.map((name) => ({ name, text: readFileSync(name === "-" ? 0 : name, "utf8") }));
}

async function main() {
  let inputs;
  try {
    inputs = readInputs(process.argv.slice(2));
  } catch (e) {
    console.error(`validate.mjs: ${e.message}`);
    return 2;
  }
  let count = 0;
  const problems = [];
  for (const { name, text } of inputs) {
    const docs = parseAllDocuments(text, { uniqueKeys: true });
    for (const [i, doc] of (Array.isArray(docs) ? docs : [docs]).entries()) {
      const where = `${name}#${i + 1}`;
      if (doc.errors.length) {
        problems.push(`${where}: YAML error: ${doc.errors[0].message}`);
        continue;
      }
      const obj = doc.toJS();
      if (obj === null || obj === undefined) continue;
      count += 1;
      const label = `${where} ${obj.kind}/${obj.metadata?.name}`;
      const Model = await modelFor(obj.apiVersion, obj.kind);
      if (!Model) {
        problems.push(`${label}: no schema for apiVersion ${obj.apiVersion} kind ${obj.kind}`);
        continue;
      }
      if (!obj.metadata?.name) problems.push(`${label}: metadata.name is missing`);
      try {
        new Model(obj).validate();
      } catch (e) {
        problems.push(`${label}: ${e.message}`);
      }
    }
  }
  for (const p of problems) console.log(p);
  console.log(`validated ${count} objects, ${problems.length} invalid`);
  return problems.length ? 1 : 0;
}

process.exitCode = await main();
