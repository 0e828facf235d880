// Checks deploy/: every YAML file under deploy/k8s, every rendered
// kustomization (overlays/*, examples/*), every rendered object against the
// Kubernetes schemas (kubernetes-models) and the Go API types with unknown
// fields rejected (k8s-strict), the deployment rules the bridge depends on,
// and the Containerfile. Prints one line per test ("ok - ..." / "not ok - ..."
// / "skip - ..."), then "PASSED FAILED SKIPPED" as its last line.
//
// Run by deploy/validate.sh from the directory that holds node_modules:
//   node validate.mjs DEPLOY_DIR KUSTOMIZE K8S_STRICT [BINARY]
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { parseAllDocuments } from "yaml";

const [deployDir, kustomize, k8sStrict, binary] = process.argv.slice(2);
const k8sDir = join(deployDir, "k8s");
let passed = 0, failed = 0, skipped = 0;

function test(name, fn) {
  try {
    const result = fn();
    if (typeof result === "string" && result.startsWith("skip:")) {
      skipped++;
      console.log(`skip - ${name} (${result.slice(5).trim()})`);
      return;
    }
    passed++;
    if (process.env.VERBOSE) console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}\n    ${String(e.message ?? e).split("\n").join("\n    ")}`);
  }
}
function assert(cond, message) { if (!cond) throw new Error(message); }

// --- The bridge's settings (flag names; env AUDIOSOCKET_BRIDGE_<UPPER>). ---
const FLAGS = [
  "listen", "grpc_listen", "metrics_listen", "mode", "backend", "drain_timeout", "max_calls",
  "max_pull_streams", "log_level", "tls_cert_file", "tls_key_file", "tls_client_ca_file",
  "backend_tls_ca_file", "backend_tls_cert_file", "backend_tls_key_file", "auth_token_file",
  "config_file", "backend_attempts", "accept_timeout", "claim_timeout", "uuid_timeout",
  "first_audio_wait", "send_silence", "max_payload", "hold_audio_ms", "backend_queue_ms",
  "max_playout_ms", "playout_high_watermark_ms", "playout_low_watermark_ms", "max_unsent_ms",
  "write_stall_timeout", "io_threads",
];
const ENV_NAMES = new Set(FLAGS.map((f) => "AUDIOSOCKET_BRIDGE_" + f.toUpperCase()));

// --- Schema validation with kubernetes-models. ---
const MODELS = {
  "v1": "kubernetes-models/v1",
  "apps/v1": "kubernetes-models/apps/v1",
  "policy/v1": "kubernetes-models/policy/v1",
  "autoscaling/v2": "kubernetes-models/autoscaling/v2",
  "monitoring.coreos.com/v1": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1",
};
async function loadModel(apiVersion, kind) {
  const base = MODELS[apiVersion];
  if (!base) return null;
  try { return (await import(`${base}/${kind}`))[kind]; } catch { return null; }
}
async function schemaCheck(obj) {
  const Model = await loadModel(obj.apiVersion, obj.kind);
  if (!Model) throw new Error(`no schema for ${obj.apiVersion} ${obj.kind}`);
  new Model(obj).validate(); // throws with every violation
}
const isKustomization = (o) =>
  o && typeof o === "object" && String(o.apiVersion).startsWith("kustomize.config.k8s.io/");

function parseYaml(text, where) {
  const docs = parseAllDocuments(text);
  const objects = [];
  for (const doc of docs) {
    if (doc.errors.length) throw new Error(`${where}: ${doc.errors.map((e) => e.message).join("; ")}`);
    if (doc.warnings.length) throw new Error(`${where}: ${doc.warnings.map((e) => e.message).join("; ")}`);
    const o = doc.toJS();
    if (o !== null && o !== undefined) objects.push(o);
  }
  return objects;
}

function yamlFiles(dir) {
  const out = [];
  for (const e of readdirSync(dir).sort()) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...yamlFiles(p));
    else if (/\.ya?ml$/.test(e)) out.push(p);
  }
  return out;
}

// --- 1. Every YAML file parses; objects pass the schema; kustomizations refer to files that exist.
const files = yamlFiles(k8sDir);
for (const file of files) {
  const rel = relative(deployDir, file);
  let objects = [];
  let parseError = null;
  try { objects = parseYaml(readFileSync(file, "utf8"), rel); } catch (e) { parseError = e; }
  // Patches (strategic merge) are partial objects: parse only.
  const isPatch = files.some((f) => f.endsWith("kustomization.yaml") &&
    /patches:[\s\S]*path:\s*(\S+)/.test(readFileSync(f, "utf8")) &&
    [...readFileSync(f, "utf8").matchAll(/path:\s*(\S+)/g)].some((m) => resolve(dirname(f), m[1]) === file));
  for (const [i, obj] of objects.entries()) {
    // one test per document
    const label = `${rel}#${i} ${obj.kind ?? "?"} ${obj.metadata?.name ?? ""}`.trim();
    if (isKustomization(obj)) {
      test(`${label}: kustomization refers to existing files`, () => {
        assert(["Kustomization", "Component"].includes(obj.kind), `kind ${obj.kind}`);
        const refs = [...(obj.resources ?? []), ...(obj.components ?? []),
          ...(obj.patches ?? []).filter((p) => p.path).map((p) => p.path)];
        for (const r of refs) assert(existsSync(resolve(dirname(file), r)), `${r} does not exist`);
      });
    } else if (isPatch) {
      test(`${label}: patch parses and names its target`, () => {
        assert(obj.apiVersion && obj.kind && obj.metadata?.name, "apiVersion, kind, metadata.name needed");
      });
    } else {
      await testAsync(`${label}: schema`, () => schemaCheck(obj));
    }
  }
  if (parseError || objects.length === 0) {
    test(`${rel}: parses`, () => { throw parseError ?? new Error("no document"); });
  }
}

async function testAsync(name, fn) {
  try { await fn(); passed++; if (process.env.VERBOSE) console.log(`ok - ${name}`); } catch (e) {
    failed++;
    console.log(`not ok - ${name}\n    ${String(e.message ?? e).split("\n").join("\n    ")}`);
  }
}

// --- 2. Every overlay and example renders; every rendered object passes both validators.
const containerfile = readFileSync(join(deployDir, "Containerfile"), "utf8");
const imageUid = Number((containerfile.match(/^USER\s+(\d+)/m) ?? [])[1]);
const exposed = new Set([...containerfile.matchAll(/^EXPOSE\s+(.*)$/gm)]
  .flatMap((m) => m[1].trim().split(/\s+/)).map((p) => Number(p.split("/")[0])));

const renders = ["overlays", "examples"].flatMap((d) =>
  existsSync(join(k8sDir, d)) ? readdirSync(join(k8sDir, d)).sort().map((e) => join(k8sDir, d, e)) : [])
  .filter((d) => existsSync(join(d, "kustomization.yaml")));
test("there are push and pull overlays", () => {
  const names = renders.map((r) => relative(k8sDir, r));
  assert(names.includes("overlays/push") && names.includes("overlays/pull"), names.join(", "));
});

for (const dir of renders) {
  const rel = relative(deployDir, dir);
  let objects = null;
  test(`${rel}: kustomize build renders and parses`, () => {
    const out = execFileSync(kustomize, ["build", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    objects = parseYaml(out, rel);
    assert(objects.length > 0, "rendered nothing");
  });
  if (!objects) continue;

  for (const obj of objects) await testAsync(`${rel}: ${obj.kind} ${obj.metadata?.name}: schema`, () => schemaCheck(obj));

  let strict = [];
  test(`${rel}: k8s-strict ran`, () => {
    try {
      strict = execFileSync(k8sStrict, { input: JSON.stringify(objects), encoding: "utf8" }).trim().split("\n");
    } catch (e) {
      if (e.status !== 1) throw e; // 1 = some objects failed; reported below
      strict = String(e.stdout).trim().split("\n");
    }
  });
  for (const line of strict) {
    const [verdict, kind, name] = line.replace(/:.*/, "").split(" ");
    const what = `${rel}: ${kind} ${name}: no unknown fields (Go API types)`;
    // Kinds without a Go type here (ServiceMonitor) are covered by the schema check alone.
    if (verdict === "skip") continue;
    test(what, () => assert(verdict === "ok", line));
  }

  // --- Rules the bridge depends on, per render.
  const find = (kind, name) => objects.filter((o) => o.kind === kind && (!name || o.metadata.name === name));
  const [deploy] = find("Deployment", "audiosocket-bridge");
  const [config] = find("ConfigMap", "audiosocket-bridge-config");
  const pod = deploy?.spec.template.spec;
  const ctr = pod?.containers?.[0];
  const env = config?.data ?? {};
  const seconds = (d) => {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(String(d));
    assert(m, `cannot read duration ${d}`);
    return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2]];
  };

  test(`${rel}: one Deployment and one ConfigMap, loaded with envFrom`, () => {
    assert(deploy && config, "Deployment audiosocket-bridge and ConfigMap audiosocket-bridge-config");
    assert(ctr.envFrom?.some((e) => e.configMapRef?.name === config.metadata.name), "envFrom the ConfigMap");
  });
  if (!deploy || !config) continue;
  test(`${rel}: every ConfigMap key is a bridge flag (AUDIOSOCKET_BRIDGE_<FLAG>)`, () => {
    const bad = Object.keys(env).filter((k) => !ENV_NAMES.has(k));
    assert(bad.length === 0, `unknown: ${bad.join(", ")}`);
  });
  test(`${rel}: terminationGracePeriodSeconds > preStop + drain timeout`, () => {
    const drain = seconds(env.AUDIOSOCKET_BRIDGE_DRAIN_TIMEOUT ?? "30s");
    const cmd = ctr.lifecycle?.preStop?.exec?.command ?? [];
    const preStop = cmd[0] === "sleep" ? Number(cmd[1]) : (ctr.lifecycle?.preStop?.sleep?.seconds ?? 0);
    const grace = pod.terminationGracePeriodSeconds ?? 30;
    assert(grace > preStop + drain, `grace ${grace} s, preStop ${preStop} s, drain ${drain} s`);
  });
  test(`${rel}: liveness tolerates a whole drain (NOT_SERVING) without a restart`, () => {
    const l = ctr.livenessProbe;
    const window = (l.periodSeconds ?? 10) * (l.failureThreshold ?? 3);
    assert(window > seconds(env.AUDIOSOCKET_BRIDGE_DRAIN_TIMEOUT ?? "30s"), `liveness gives up after ${window} s`);
  });
  const tls = Boolean(env.AUDIOSOCKET_BRIDGE_TLS_CERT_FILE);
  test(`${rel}: probes are ${tls ? "TCP (gRPC port has TLS)" : "native gRPC health"} on the gRPC port`, () => {
    const grpcPort = Number(String(env.AUDIOSOCKET_BRIDGE_GRPC_LISTEN ?? ":50051").split(":").pop());
    for (const p of ["startupProbe", "readinessProbe", "livenessProbe"]) {
      const probe = ctr[p];
      assert(probe, `${p} missing`);
      const port = tls ? probe.tcpSocket?.port : probe.grpc?.port;
      assert(port === grpcPort, `${p}: ${JSON.stringify(probe)} (gRPC port ${grpcPort})`);
    }
  });
  test(`${rel}: container ports match the listen flags and the Containerfile's EXPOSE`, () => {
    const ports = Object.fromEntries(ctr.ports.map((p) => [p.name, p.containerPort]));
    const port = (k, d) => Number(String(env[k] ?? d).split(",")[0].split(":").pop());
    assert(ports.audiosocket === port("AUDIOSOCKET_BRIDGE_LISTEN", ":9092"), "audiosocket");
    assert(ports.grpc === port("AUDIOSOCKET_BRIDGE_GRPC_LISTEN", ":50051"), "grpc");
    assert(ports.metrics === port("AUDIOSOCKET_BRIDGE_METRICS_LISTEN", ":9090"), "metrics");
    for (const p of Object.values(ports)) assert(exposed.has(p), `port ${p} not in EXPOSE (${[...exposed]})`);
  });
  test(`${rel}: runs as the image's non-root uid, read-only root, no capabilities`, () => {
    const sc = pod.securityContext ?? {}, csc = ctr.securityContext ?? {};
    assert(sc.runAsNonRoot === true && sc.runAsUser === imageUid && imageUid > 0, `uid ${sc.runAsUser} vs USER ${imageUid}`);
    assert(csc.readOnlyRootFilesystem === true && csc.allowPrivilegeEscalation === false, "read-only, no escalation");
    assert(JSON.stringify(csc.capabilities?.drop) === '["ALL"]', "drop ALL");
  });
  test(`${rel}: resources requested, memory limited`, () => {
    const r = ctr.resources ?? {};
    assert(r.requests?.cpu && r.requests?.memory && r.limits?.memory, JSON.stringify(r));
  });
  test(`${rel}: files named by *_FILE settings are under a mounted volume`, () => {
    const mounts = (ctr.volumeMounts ?? []).map((m) => m.mountPath.replace(/\/$/, "") + "/");
    for (const [k, v] of Object.entries(env)) {
      if (k.endsWith("_FILE")) assert(mounts.some((m) => v.startsWith(m)), `${k}=${v} not under ${mounts}`);
    }
  });
  test(`${rel}: Services select the pods and target named container ports`, () => {
    const labels = deploy.spec.template.metadata.labels;
    const names = new Set(ctr.ports.map((p) => p.name));
    for (const s of find("Service").filter((s) => s.metadata.labels?.["app.kubernetes.io/name"] === "audiosocket-bridge")) {
      for (const [k, v] of Object.entries(s.spec.selector ?? {})) assert(labels[k] === v, `${s.metadata.name} selector ${k}`);
      for (const p of s.spec.ports) assert(names.has(p.targetPort), `${s.metadata.name} targetPort ${p.targetPort}`);
    }
  });
  test(`${rel}: AudioSocket Service is TCP, external, externalTrafficPolicy Local`, () => {
    const [s] = find("Service", "audiosocket-bridge-audiosocket");
    assert(s && ["LoadBalancer", "NodePort"].includes(s.spec.type), "type LoadBalancer or NodePort");
    assert(s.spec.externalTrafficPolicy === "Local" && s.spec.ports.every((p) => (p.protocol ?? "TCP") === "TCP"), "Local, TCP");
  });
  test(`${rel}: PDB, HPA and selectors point at the Deployment`, () => {
    const [pdb] = find("PodDisruptionBudget"), [hpa] = find("HorizontalPodAutoscaler");
    assert(pdb && hpa, "PodDisruptionBudget and HorizontalPodAutoscaler");
    const labels = deploy.spec.template.metadata.labels;
    for (const [k, v] of Object.entries(pdb.spec.selector.matchLabels)) assert(labels[k] === v, `PDB selector ${k}`);
    assert(hpa.spec.scaleTargetRef.kind === "Deployment" && hpa.spec.scaleTargetRef.name === deploy.metadata.name, "HPA target");
    assert(hpa.spec.metrics.some((m) => m.resource?.name === "cpu"), "HPA on CPU");
    assert(deploy.spec.strategy.rollingUpdate.maxUnavailable === 0, "rolling update keeps capacity (maxUnavailable 0)");
  });
  test(`${rel}: scraped by Prometheus (annotations or ServiceMonitor on the metrics port)`, () => {
    const a = deploy.spec.template.metadata.annotations ?? {};
    const metricsPort = String(ctr.ports.find((p) => p.name === "metrics").containerPort);
    assert(a["prometheus.io/scrape"] === "true" && a["prometheus.io/port"] === metricsPort, "annotations");
    for (const sm of find("ServiceMonitor")) assert(sm.spec.endpoints.every((e) => e.port === "metrics"), "ServiceMonitor port");
  });
  const mode = env.AUDIOSOCKET_BRIDGE_MODE;
  if (mode === "push") {
    test(`${rel}: push mode names a headless backend Service in the render`, () => {
      const m = /^dns:\/\/\/([^.:]+)\.([^.:]+)\.svc\.cluster\.local:(\d+)$/.exec(env.AUDIOSOCKET_BRIDGE_BACKEND ?? "");
      assert(m, `AUDIOSOCKET_BRIDGE_BACKEND=${env.AUDIOSOCKET_BRIDGE_BACKEND}`);
      const [s] = find("Service", m[1]);
      assert(s && s.spec.clusterIP === "None", `Service ${m[1]} headless`);
      assert(s.spec.ports.some((p) => p.port === Number(m[3])), `port ${m[3]}`);
    });
  } else if (mode === "pull") {
    test(`${rel}: pull mode has a headless gRPC Service for workers`, () => {
      const hs = find("Service").filter((s) => s.spec.clusterIP === "None" &&
        s.spec.selector?.["app.kubernetes.io/name"] === "audiosocket-bridge");
      assert(hs.length === 1 && hs[0].spec.publishNotReadyAddresses !== true, "one headless Service, ready pods only");
    });
  } else {
    test(`${rel}: mode is push or pull`, () => { throw new Error(`AUDIOSOCKET_BRIDGE_MODE=${mode}`); });
  }
}

// --- 3. Containerfile.
const stages = [...containerfile.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gim)];
const runtime = containerfile.slice(stages.at(-1)?.index ?? 0);
test("Containerfile: builder on Debian 12 with install-deps.sh and bazel -c opt", () => {
  assert(stages.length === 2, `${stages.length} stages`);
  assert(/ARG DEBIAN_IMAGE=\S*debian:12\s/.test(containerfile) && /ARG DEBIAN_SLIM_IMAGE=\S*debian:12-slim\s/.test(containerfile), "Debian 12 bases");
  assert(/tools\/install-deps\.sh/.test(containerfile) && /bazel .*build -c opt .*\/\/server:audiosocket-bridge/.test(containerfile), "build steps");
});
test("Containerfile: runtime has a numeric non-root USER, EXPOSE 9092 50051 9090, STOPSIGNAL SIGTERM, exec-form ENTRYPOINT", () => {
  assert(imageUid > 0 && /^USER\s+\d+(:\d+)?\s*$/m.test(runtime), "USER");
  for (const p of [9092, 50051, 9090]) assert(exposed.has(p), `EXPOSE ${p}`);
  assert(/^STOPSIGNAL\s+SIGTERM\s*$/m.test(runtime), "STOPSIGNAL");
  assert(/^ENTRYPOINT\s+\["[^"]+"\]\s*$/m.test(runtime), "ENTRYPOINT exec form");
});
const runtimePackages = ((runtime.match(/ARG RUNTIME_PACKAGES="([^"]*)"/) ?? [])[1] ?? "").split(/\s+/).filter(Boolean);
test("Containerfile: runtime packages are runtime libraries only (no -dev, no compilers)", () => {
  assert(runtimePackages.length > 0, "RUNTIME_PACKAGES");
  const bad = runtimePackages.filter((p) => /-dev$|^(gcc|g\+\+|clang|bazel|build-essential)/.test(p));
  assert(bad.length === 0, bad.join(" "));
});
const sh = (cmd, args) => execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
test("Containerfile: runtime packages exist in Debian 12's package lists", () => {
  try { sh("apt-cache", ["show", "libc6"]); } catch { return "skip: no apt package lists here (apt-get update)"; }
  for (const p of runtimePackages) {
    try { sh("apt-cache", ["show", p]); } catch { throw new Error(`apt-cache show ${p} failed`); }
  }
});
test("Containerfile: every shared library of the binary (ldd) comes from the runtime packages or their dependencies", () => {
  if (!binary || !existsSync(binary)) return "skip: no built binary (bazel build //server:audiosocket-bridge)";
  let closure;
  try {
    closure = new Set(sh("apt-cache", ["depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
      "--no-breaks", "--no-replaces", "--no-enhances", ...runtimePackages])
      .split("\n").map((l) => l.trim()).filter((l) => l && !l.includes(":") && !l.startsWith("<")));
  } catch { return "skip: apt-cache depends failed (package lists missing)"; }
  for (const p of runtimePackages) closure.add(p);
  const libs = sh("ldd", [binary]).split("\n").map((l) => /=>\s+(\/\S+)/.exec(l)?.[1]).filter(Boolean);
  assert(libs.length > 0, "ldd listed no libraries");
  // One dpkg -S for all paths, as ldd prints them and resolved (usrmerge).
  const resolved = libs.map((l) => execFileSync("readlink", ["-f", l], { encoding: "utf8" }).trim());
  let owners = "";
  try { owners = sh("dpkg", ["-S", ...new Set([...libs, ...resolved])]); } catch (e) { owners = String(e.stdout ?? ""); }
  const ownerOf = new Map();
  for (const line of owners.split("\n")) {
    const m = /^([^:]+)(?::[^:]+)?: (\/.*)$/.exec(line);
    if (m) for (const pkg of m[1].split(", ")) ownerOf.set(m[2], pkg);
  }
  const missing = [];
  for (const [i, lib] of libs.entries()) {
    const owner = ownerOf.get(lib) ?? ownerOf.get(resolved[i]);
    // A sanitizer build (--config=asan/tsan writes the same bazel-bin) links
    // runtimes that the -c opt image build never does.
    if (owner && /^lib(a|t|ub|l)san\d+$/.test(owner)) continue;
    if (!owner) missing.push(`${lib} (no Debian package owns it)`);
    else if (!closure.has(owner)) missing.push(`${lib} from ${owner}`);
  }
  assert(missing.length === 0, `not provided by RUNTIME_PACKAGES: ${missing.join(", ")}`);
});

console.log(`${passed} ${failed} ${skipped}`);
