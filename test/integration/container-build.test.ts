// The container image without a container engine: the Dockerfile's builder stage is replayed,
// instruction by instruction, in an empty directory holding only the build context that
// .dockerignore lets through, and the runtime tree it produces is started the way the image
// starts it (ENTRYPOINT + CMD, PATH from ENV), against this run's apiserver, until /readyz says
// ready. Apt installs are the one step not replayed: the machine that runs the tests already has
// those packages (scripts/setup.sh).
//
// What it catches: a build step that depends on something outside the context (a file missing
// from .dockerignore's allowlist), a step that no longer works, a runtime tree missing what the
// agent loads, an entrypoint that does not start the agent, chart arguments the CLI refuses.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { startAgentCommand, type RunningAgentCommand } from '../helpers/agent-command.js';
import { execForm, readDockerfile } from '../helpers/dockerfile.js';
import { onlyObject, parseManifests, renderChart, repositoryRoot } from '../helpers/helm.js';

/** npm ci twice, node-gyp and tsc: about a minute on a warm npm cache. */
const buildTimeoutMs = 15 * 60_000;

/** .dockerignore as an allowlist: `*` first, then one `!path` per path the context keeps. */
function contextAllowlist(text: string): string[] {
  const patterns = text.split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));
  if (patterns[0] !== '*' || patterns.slice(1).some((pattern) => !pattern.startsWith('!'))) {
    throw new Error(`.dockerignore must be an allowlist ("*" then "!path" lines) for this test to copy the context; it is: ${patterns.join(' ')}`);
  }
  return patterns.slice(1).map((pattern) => pattern.slice(1).replace(/\/$/, ''));
}

/** The files Docker would send as the build context: the repository's (tracked or not ignored), filtered by .dockerignore. */
function buildContextFiles(allowlist: readonly string[]): string[] {
  const listed = spawnSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: repositoryRoot, encoding: 'utf8' });
  if (listed.status !== 0) throw new Error(`git ls-files failed: ${listed.stderr}`);
  return listed.stdout
    .split('\0')
    .filter((file) => file !== '' && existsSync(path.join(repositoryRoot, file)))
    .filter((file) => allowlist.some((allowed) => file === allowed || file.startsWith(`${allowed}/`)));
}

function runStep(command: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], timeout: buildTimeoutMs });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, output }));
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

const dockerfile = readDockerfile();
const builder = dockerfile.stages.find((stage) => stage.name === 'builder');
const runtime = dockerfile.stages.at(-1)!;

let scratch: string;
/** The runtime stage's filesystem, as far as the image adds to its base: /opt/parafork and so on. */
let imageRoot: string;
/** The environment the image's entrypoint runs with, paths mapped into imageRoot. */
let imageEnv: NodeJS.ProcessEnv;
let imageWorkdir: string;
let buildLog = '';
const agents: RunningAgentCommand[] = [];

function inImage(absolutePath: string): string {
  return path.join(imageRoot, absolutePath);
}

/** The image's ENTRYPOINT and CMD (exec form). */
function imageCommand(): { entrypoint: string[]; cmd: string[] } {
  return { entrypoint: execForm(runtime, 'ENTRYPOINT'), cmd: execForm(runtime, 'CMD') };
}

beforeAll(async () => {
  scratch = mkdtempSync(path.join(tmpdir(), 'parafork-container-'));
  const context = path.join(scratch, 'context');
  imageRoot = path.join(scratch, 'image');
  const builderRoot = path.join(scratch, 'builder');
  const allowlist = contextAllowlist(readFileSync(path.join(repositoryRoot, '.dockerignore'), 'utf8'));
  for (const file of buildContextFiles(allowlist)) {
    mkdirSync(path.dirname(path.join(context, file)), { recursive: true });
    cpSync(path.join(repositoryRoot, file), path.join(context, file), { preserveTimestamps: true });
  }
  if (!builder) throw new Error('the Dockerfile has no stage named builder');

  // What the runtime stage copies out of the builder: the paths the builder must fill.
  const copies = runtime.instructions
    .filter((instruction) => instruction.keyword === 'COPY' && instruction.argument.startsWith('--from=builder'))
    .map((instruction) => instruction.argument.split(/\s+/).slice(1) as [string, string]);
  // The builder writes to absolute paths; here they live under builderRoot.
  const mapAbsolute = (text: string): string => text.replace(/(^|\s)(\/[\w./-]+)/g, (_, space: string, absolute: string) => `${space}${path.join(builderRoot, absolute)}`);
  // A clean environment, as a build container has, but for how this machine reaches the npm
  // registry (its CA bundle and proxies); HOME keeps npm's cache warm.
  const network = Object.entries(process.env).filter(([name]) => /^(NODE_EXTRA_CA_CERTS|SSL_CERT_FILE|SSL_CERT_DIR|(HTTPS?|NO|ALL)_PROXY)$/i.test(name));
  const env: NodeJS.ProcessEnv = { ...Object.fromEntries(network), PATH: `${path.dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`, HOME: process.env.HOME };
  let workdir = builderRoot;
  for (const { keyword, argument } of builder.instructions) {
    if (keyword === 'WORKDIR') {
      workdir = path.join(builderRoot, argument);
      mkdirSync(workdir, { recursive: true });
    } else if (keyword === 'COPY') {
      const parts = argument.split(/\s+/);
      const destination = path.resolve(workdir, parts.at(-1)!);
      for (const source of parts.slice(0, -1)) {
        const from = path.join(context, source);
        const to = source === '.' ? destination : parts.length > 2 || parts.at(-1)!.endsWith('/') ? path.join(destination, path.basename(source)) : destination;
        mkdirSync(path.dirname(to), { recursive: true });
        cpSync(from, to, { recursive: true, preserveTimestamps: true });
      }
    } else if (keyword === 'RUN') {
      // System packages come from the machine (scripts/setup.sh installs the same ones).
      if (argument.startsWith('apt-get ')) continue;
      const command = mapAbsolute(argument);
      const started = performance.now();
      const step = await runStep(command, workdir, env);
      buildLog += `$ ${argument}\n${step.output}\n(${((performance.now() - started) / 1000).toFixed(1)} s)\n`;
      if (step.status !== 0) throw new Error(`RUN ${argument} failed (${step.status}):\n${step.output.slice(-4000)}`);
      process.stderr.write(`[container-build] RUN ${argument}: ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
    } else if (keyword !== 'ENV' && keyword !== 'ARG' && keyword !== 'LABEL') {
      throw new Error(`the builder stage uses ${keyword}, which this test cannot replay`);
    }
  }
  for (const [source, destination] of copies) {
    mkdirSync(path.dirname(inImage(destination)), { recursive: true });
    cpSync(path.join(builderRoot, source), inImage(destination), { recursive: true, verbatimSymlinks: true });
  }

  const pathEnv = runtime.instructions.find((instruction) => instruction.keyword === 'ENV' && instruction.argument.startsWith('PATH='))?.argument ?? '';
  const imagePath = /^PATH=(\S+)/.exec(pathEnv)?.[1] ?? '$PATH';
  imageEnv = {
    // The base image's PATH holds node; here the node running the tests stands in for it.
    PATH: imagePath
      .split(':')
      .map((entry) => (entry === '$PATH' ? `${path.dirname(process.execPath)}:/usr/bin:/bin` : inImage(entry)))
      .join(':'),
    NODE_ENV: 'production',
  };
  imageWorkdir = inImage(runtime.instructions.findLast((instruction) => instruction.keyword === 'WORKDIR')?.argument ?? '/');
}, buildTimeoutMs);

afterAll(async () => {
  await Promise.all(agents.map((agent) => agent.stop()));
  rmSync(scratch, { recursive: true, force: true });
});

async function startImage(args: readonly string[]): Promise<RunningAgentCommand> {
  const { entrypoint } = imageCommand();
  // A state directory of each agent's own: two agents of one node name on one --state-dir are
  // refused (each would sweep the other's logs), and the machine's /run/parafork is not the test's.
  const stateDirectory = mkdtempSync(path.join(scratch, 'state-'));
  const agent = await startAgentCommand({
    file: entrypoint[0]!,
    args: [...entrypoint.slice(1), ...args, '--state-dir', stateDirectory],
    env: { ...imageEnv, NODE_NAME: 'container-test-node' },
    cwd: imageWorkdir,
  });
  agents.push(agent);
  return agent;
}

describe('the Dockerfile', () => {
  it('builds on Node.js 24 and keeps compilers out of the runtime stage', () => {
    expect(dockerfile.stages.map((stage) => stage.from)).toEqual([expect.stringMatching(/^node:24[-.]/), expect.stringMatching(/^node:24[-.]/)]);
    expect(runtime.instructions.filter((instruction) => instruction.keyword === 'RUN')).toEqual([]);
  });

  it('produces a runtime tree of the built agent, its native binaries and production dependencies only', () => {
    expect(buildLog).toContain('$ scripts/container-build.sh build');
    const tree = inImage('/opt/parafork');
    expect(existsSync(path.join(tree, 'dist/cli/main.js'))).toBe(true);
    // The native products (the addon, which the agent loads at start, and any helper executable):
    // the same files a local build makes, without node-gyp's object files.
    const products = (directory: string): string[] =>
      readdirSync(directory, { withFileTypes: true })
        .filter((entry) => entry.isFile())
        .map((entry) => entry.name)
        .sort();
    expect(products(path.join(tree, 'native/build/Release'))).toEqual(products(path.join(repositoryRoot, 'native/build/Release')));
    expect(existsSync(path.join(tree, 'crds/task.yaml'))).toBe(true);
    expect(existsSync(path.join(tree, 'node_modules/@kubernetes/client-node'))).toBe(true);
    for (const devOnly of ['typescript', 'vitest', 'node-gyp', 'eslint']) expect(existsSync(path.join(tree, 'node_modules', devOnly)), devOnly).toBe(false);
    expect(readdirSync(tree).sort()).toEqual(['bin', 'crds', 'dist', 'native', 'node_modules', 'package-lock.json', 'package.json']);
  });

  it('starts the agent from its ENTRYPOINT and CMD, ready against the apiserver', async () => {
    const { entrypoint, cmd } = imageCommand();
    expect([...entrypoint, ...cmd]).toEqual(['parafork', 'agent']);
    const agent = await startImage([...cmd, '--kubeconfig', inject('kubeconfigPath'), '--listen-address', '127.0.0.1', '--port', '0']);
    expect(agent.logs()).toContain('"node":"container-test-node"');
    const healthz = await fetch(`http://127.0.0.1:${agent.port}/healthz`);
    expect(healthz.status).toBe(200);
  });

  it('starts the agent with the arguments the chart gives it', async () => {
    const port = await freePort();
    const manifests = await renderChart({ release: 'image', namespace: 'default', set: ['agent.listenAddress=127.0.0.1', `agent.port=${port}`], showOnly: ['templates/daemonset.yaml'] });
    const daemonSet = onlyObject(parseManifests(manifests), 'DaemonSet') as unknown as { spec: { template: { spec: { containers: { args: string[] }[] } } } };
    const chartArgs = daemonSet.spec.template.spec.containers[0]!.args;
    // In a Pod the agent finds the API in-cluster; here it gets a kubeconfig.
    const agent = await startImage([...chartArgs, '--kubeconfig', inject('kubeconfigPath')]);
    expect(agent.port).toBe(port);
  });
});
