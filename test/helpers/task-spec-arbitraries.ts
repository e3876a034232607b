// fast-check arbitraries for the property tests of Task specs (test/unit/task-spec-fuzz.test.ts,
// test/native/launcher-fuzz.test.ts): Task manifests that are mostly well-formed with adversarial
// values mixed in at every field (wrong types, NUL bytes, '..', huge and negative numbers, odd
// quantities, unknown fields), and Launcher spawn options as a careless or hostile caller might
// pass them.
import fc from 'fast-check';

import { taskApiVersion, taskKind, type Task } from '../../src/api/task.js';
import type { SpawnOptions } from '../../src/launcher/spawn-options.js';
import type { TaskSandbox } from '../../src/sandbox/task-sandbox.js';

/** Strings that have broken parsers, shells and path checks before. */
export const adversarialString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom(
    '', ' ', '\n', '\t', '/', '//', '/.', '..', '/..', '/a/../b', '../etc', 'a\0b', '/tmp/\0x', '\u0000',
    '$(id)', '`id`', '; rm -rf /', '*', '~', '%s%n', '\u202e', '\ud800', 'ｆｕｌｌ', '/proc/self/root',
    '__proto__', 'constructor', 'toString', 'hasOwnProperty', '-1', '1e309', 'NaN', 'null', 'true',
  ),
  fc.constant('x'.repeat(5_000)),
);

/** Any JSON value, for a field that should have been something else. */
const garbage: fc.Arbitrary<unknown> = fc.oneof(fc.jsonValue({ maxDepth: 2 }), adversarialString, fc.constantFrom(null, -1, 0, 1.5, 2 ** 53, -(2 ** 63), [], {}));

/** Mostly `arbitrary`, sometimes garbage of any type. */
function orGarbage<T>(arbitrary: fc.Arbitrary<T>): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 6, arbitrary }, { weight: 1, arbitrary: garbage });
}

const absolutePath = fc.oneof(
  fc.constantFrom('/', '/tmp', '/mnt', '/usr', '/nonexistent/dir', '/a/../b', '/proc', '//x', '/tmp/', '/dev/null', '/run/parafork/root'),
  fc.array(fc.stringMatching(/^[a-z0-9._-]{1,8}$/), { maxLength: 4 }).map((parts) => `/${parts.join('/')}`),
);
const pathLike = fc.oneof({ weight: 4, arbitrary: absolutePath }, { weight: 1, arbitrary: adversarialString });

const quantity = fc.oneof(
  fc.integer({ min: -10, max: 2 ** 40 }),
  fc.constantFrom('64Mi', '1', '0', '-1', '1e3', '100m', '0.5', '1Ki', '1Ei', '9999999999Ei', '1.5Gi', '+1', '0x10', 'abc', '', 'Infinity', 'NaN', '1e308', '1m', '0.0001', '1n'),
  fc.stringMatching(/^[0-9]{1,4}(\.[0-9]{1,3})?(m|k|M|G|Ki|Mi|Gi|Ti|Pi|Ei|e[0-9])?$/),
);

const wholeNumber = fc.oneof(fc.integer({ min: 0, max: 100 }), fc.integer(), fc.constantFrom(0, -1, 65534, 4294967294, 4294967295, 2 ** 53, 1.5));

const command = fc.oneof(
  { weight: 4, arbitrary: fc.array(fc.oneof(fc.constantFrom('true', '/bin/true', 'sh', '-c', 'exit 0', '/no/such/program'), adversarialString), { minLength: 1, maxLength: 4 }) },
  { weight: 1, arbitrary: fc.constant([] as string[]) },
);

const environment = fc.array(
  fc.record(
    {
      name: fc.oneof(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,10}$/), adversarialString, fc.constantFrom('PATH', 'A=B', '')),
      value: orGarbage(adversarialString),
    },
    { requiredKeys: ['name'] },
  ),
  { maxLength: 4 },
);

const mount = fc.record(
  { hostPath: orGarbage(pathLike), mountPath: orGarbage(pathLike), readOnly: orGarbage(fc.boolean()) },
  { requiredKeys: ['hostPath', 'mountPath'] },
);

const sandbox = fc.record(
  {
    network: orGarbage(fc.constantFrom('none', 'loopback', 'host', 'bridge', 'toString', '__proto__')),
    rootfs: orGarbage(pathLike),
    readOnlyRootFilesystem: orGarbage(fc.boolean()),
    tmpSizeLimit: orGarbage(quantity),
    mounts: orGarbage(fc.array(mount, { maxLength: 3 })),
    runAsUser: orGarbage(wholeNumber),
    runAsGroup: orGarbage(wholeNumber),
    userNamespace: orGarbage(fc.boolean()),
    seccomp: orGarbage(
      fc.record(
        { type: orGarbage(fc.constantFrom('RuntimeDefault', 'Localhost', 'Unconfined', 'runtime/default')), localhostProfile: orGarbage(adversarialString) },
        { requiredKeys: [] },
      ),
    ),
  },
  { requiredKeys: [] },
);

const taskSpec = fc.record(
  {
    command: orGarbage(command),
    args: orGarbage(fc.array(adversarialString, { maxLength: 3 })),
    env: orGarbage(environment),
    workingDir: orGarbage(pathLike),
    nodeName: orGarbage(fc.constantFrom('node-a', 'Node_A', '', 'a.b.c')),
    nodeSelector: orGarbage(fc.dictionary(fc.constantFrom('zone', 'parafork.dev/pool', ''), adversarialString, { maxKeys: 2 })),
    resources: orGarbage(fc.record({ limits: orGarbage(fc.record({ cpu: orGarbage(quantity), memory: orGarbage(quantity), pids: orGarbage(wholeNumber) }, { requiredKeys: [] })) }, { requiredKeys: [] })),
    sandbox: orGarbage(sandbox),
    activeDeadlineSeconds: orGarbage(wholeNumber),
    backoffLimit: orGarbage(wholeNumber),
    backoff: orGarbage(fc.record({ initialSeconds: orGarbage(wholeNumber), maxSeconds: orGarbage(wholeNumber) }, { requiredKeys: [] })),
    ttlSecondsAfterFinished: orGarbage(wholeNumber),
    suspend: orGarbage(fc.boolean()),
    // A field the CRD does not have: the loader must say which.
    unknownField: garbage,
  },
  { requiredKeys: ['command'] },
);

// What a careful user writes: every value of the type and in the range the CRD documents, its CEL
// rules kept, no NUL bytes (the agent refuses the rest before any launch: task-spec-checks.ts).
const plainString = fc.string({ maxLength: 12 }).map((text) => text.replaceAll('\0', ''));
const validMemory = fc.oneof(fc.integer({ min: 2 ** 20, max: 2 ** 34 }), fc.constantFrom('64Mi', '1Gi', '0.5Gi', '1e9', '16Mi', '1M'));
const validCpu = fc.oneof(fc.integer({ min: 1, max: 64 }), fc.constantFrom('100m', '1', '250m', '2', '1e3', '0.5', '1m'));
const validTmpSize = fc.oneof(fc.integer({ min: 1, max: 2 ** 28 }), fc.constantFrom('64Mi', '256Mi', '16Ki', '1e6'));
const mountPoint = absolutePath.filter((mountPath) => mountPath.replace(/\/+/g, '/') !== '/' && !mountPath.split('/').includes('..'));
const validSandbox = fc.record(
  {
    network: fc.constantFrom('none', 'loopback', 'host'),
    rootfs: absolutePath,
    readOnlyRootFilesystem: fc.boolean(),
    tmpSizeLimit: validTmpSize,
    mounts: fc.uniqueArray(fc.record({ hostPath: absolutePath, mountPath: mountPoint, readOnly: fc.boolean() }, { requiredKeys: ['hostPath', 'mountPath'] }), { maxLength: 3, selector: (entry) => entry.mountPath }),
    runAsUser: fc.integer({ min: 0, max: 4294967294 }),
    runAsGroup: fc.integer({ min: 0, max: 4294967294 }),
    userNamespace: fc.boolean(),
    seccomp: fc.oneof(fc.record({ type: fc.constantFrom('RuntimeDefault', 'Unconfined') }), fc.record({ type: fc.constant('Localhost'), localhostProfile: fc.constantFrom('profile.json', 'a/b.json') })),
  },
  { requiredKeys: [] },
);
const validSpec = fc.record(
  {
    command: fc.tuple(fc.constantFrom('true', '/bin/true', 'sh'), fc.array(fc.oneof(fc.constantFrom('-c', 'exit 0'), plainString), { maxLength: 2 })).map(([program, rest]) => [program, ...rest]),
    args: fc.array(plainString, { maxLength: 3 }),
    env: fc.uniqueArray(fc.record({ name: fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,10}$/), value: plainString }, { requiredKeys: ['name'] }), { maxLength: 3, selector: (entry) => entry.name }),
    workingDir: absolutePath,
    resources: fc.record({ limits: fc.record({ cpu: validCpu, memory: validMemory, pids: fc.integer({ min: 1, max: 4194304 }) }, { requiredKeys: [] }) }, { requiredKeys: [] }),
    sandbox: validSandbox,
    activeDeadlineSeconds: fc.integer({ min: 1, max: 10 ** 6 }),
    backoffLimit: fc.integer({ min: 0, max: 100 }),
    backoff: fc.record({ initialSeconds: fc.integer({ min: 1, max: 86400 }), maxSeconds: fc.constant(86400) }),
    ttlSecondsAfterFinished: fc.integer({ min: 0, max: 10 ** 6 }),
    suspend: fc.boolean(),
  },
  { requiredKeys: ['command'] },
);

const taskName = fc.oneof({ weight: 8, arbitrary: fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?$/) }, { weight: 1, arbitrary: garbage });

/** A Task manifest: the right apiVersion, kind and a name nearly always; a spec half careful, half adversarial. */
export const taskDocument: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 20,
    arbitrary: fc.record({
      apiVersion: fc.oneof({ weight: 20, arbitrary: fc.constant(taskApiVersion) }, { weight: 1, arbitrary: garbage }),
      kind: fc.oneof({ weight: 20, arbitrary: fc.constant(taskKind) }, { weight: 1, arbitrary: garbage }),
      metadata: fc.oneof({ weight: 20, arbitrary: fc.record({ name: taskName, namespace: orGarbage(fc.constantFrom('default', 'team-a')) }, { requiredKeys: ['name'] }) }, { weight: 1, arbitrary: garbage }),
      spec: fc.oneof({ weight: 10, arbitrary: validSpec }, { weight: 10, arbitrary: taskSpec }, { weight: 1, arbitrary: garbage }),
    }),
  },
  { weight: 1, arbitrary: garbage },
);

/** The spawn options the reconciler builds for a Task and its converted sandbox (as in task-reconciler.ts). */
export function spawnOptionsFor(task: Task, sandboxed: TaskSandbox): SpawnOptions {
  const [file, ...leadingArgs] = task.spec.command;
  const environment: Record<string, string> = {};
  for (const variable of task.spec.env ?? []) environment[variable.name] = variable.value ?? '';
  return {
    file,
    args: [...leadingArgs, ...(task.spec.args ?? [])],
    env: 'PATH' in environment ? environment : { PATH: '/usr/local/bin:/usr/bin:/bin', ...environment },
    cwd: sandboxed.cwd,
    stdout: 'ignore',
    stderr: 'ignore',
    sandbox: sandboxed.sandbox,
  };
}

const output = orGarbage(fc.oneof(fc.constantFrom('ignore', 'pipe', 'inherit'), fc.record({ file: orGarbage(pathLike), append: orGarbage(fc.boolean()) }, { requiredKeys: [] })));

const launcherSandbox = fc.record(
  {
    network: orGarbage(fc.constantFrom('none', 'loopback', 'host', 'toString', '__proto__', 'constructor')),
    rootfs: orGarbage(pathLike),
    readOnlyRootFilesystem: orGarbage(fc.boolean()),
    tmpSizeBytes: orGarbage(wholeNumber),
    mounts: orGarbage(fc.array(orGarbage(mount), { maxLength: 3 })),
    runAsUser: orGarbage(wholeNumber),
    runAsGroup: orGarbage(wholeNumber),
    hostname: orGarbage(fc.oneof(fc.constantFrom('parafork', 'a', 'x'.repeat(64), 'bad host', '-a'), adversarialString)),
    seccomp: orGarbage(fc.constantFrom('default', 'unconfined', 'other')),
    maxOpenFiles: orGarbage(wholeNumber),
    maxFileSizeBytes: orGarbage(wholeNumber),
    userNamespace: orGarbage(fc.boolean()),
  },
  { requiredKeys: [] },
);

/** Values only JavaScript callers can pass (no manifest has them). */
const scriptGarbage: fc.Arbitrary<unknown> = fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -0, 10n, undefined, () => 1, Symbol('x'), new Date(0));

/** Launcher.spawn options from a caller that checks nothing. */
export const adversarialSpawnOptions: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 20,
    arbitrary: fc.record(
      {
        file: orGarbage(fc.oneof(fc.constantFrom('/bin/true', 'true', '/no/such/program', 'sh'), adversarialString)),
        args: orGarbage(fc.array(orGarbage(adversarialString), { maxLength: 4 })),
        env: orGarbage(fc.dictionary(fc.oneof(fc.stringMatching(/^[A-Z_]{1,6}$/), adversarialString), orGarbage(adversarialString), { maxKeys: 4 })),
        cwd: orGarbage(pathLike),
        stdout: output,
        stderr: output,
        cgroup: orGarbage(pathLike),
        cgroupsV1: orGarbage(fc.array(orGarbage(pathLike), { maxLength: 2 })),
        sandbox: orGarbage(launcherSandbox),
      },
      { requiredKeys: ['file'] },
    ),
  },
  { weight: 1, arbitrary: fc.anything({ maxDepth: 2, withBigInt: true }) },
  { weight: 1, arbitrary: fc.record({ file: fc.oneof(scriptGarbage, fc.constant('/bin/true')), args: fc.array(scriptGarbage, { maxLength: 2 }), env: fc.dictionary(fc.constantFrom('A', 'PATH'), scriptGarbage, { maxKeys: 2 }), cwd: scriptGarbage, stdout: scriptGarbage, sandbox: fc.oneof(scriptGarbage, fc.record({ network: scriptGarbage, runAsUser: scriptGarbage, mounts: scriptGarbage }, { requiredKeys: [] })) }, { requiredKeys: [] }) },
);
