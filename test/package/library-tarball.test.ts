// The library as a user gets it: `npm pack` makes a tarball, a project elsewhere `npm install`s it
// (which builds the addon: the tarball ships native/ sources), and examples/launcher.mjs, the README's
// library example, runs there exactly as written and prints what its comments say. Slow (an npm
// install and an addon build, ~1-3 min); needs the npm registry or a warm npm cache for the
// package's dependencies, and the addon's compilers (scripts/setup.sh installs them).
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repositoryRoot = path.resolve(import.meta.dirname, '../..');
const example = path.join(repositoryRoot, 'examples/launcher.mjs');
const packageVersion = (JSON.parse(readFileSync(path.join(repositoryRoot, 'package.json'), 'utf8')) as { version: string }).version;

// npm and the addon build run on this test's Node (24 from scripts/setup.sh), quietly.
const env = {
  ...process.env,
  PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}`,
  npm_config_loglevel: 'error',
  npm_config_update_notifier: 'false',
  npm_config_fund: 'false',
  npm_config_audit: 'false',
};

function npm(args: readonly string[], cwd: string): string {
  return execFileSync('npm', args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 });
}

/** What the example's comments say each console.log prints: `console.log(...); // LINE`. */
function documentedOutput(source: string): string[] {
  return source
    .split('\n')
    .map((line) => /console\.log\(.*\); \/\/ (.*?)(?: \(\{.*\}\))?$/.exec(line)?.[1])
    .filter((line): line is string => line !== undefined);
}

describe('the npm package', () => {
  let scratch: string;
  let project: string;

  beforeAll(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-package-'));
    // --ignore-scripts: prepack would rebuild dist/ under the tests running beside this one; `npm
    // test` has built it already.
    npm(['pack', '--ignore-scripts', '--pack-destination', scratch], repositoryRoot);
    const tarball = readdirSync(scratch).find((file) => file.endsWith('.tgz'));
    if (tarball === undefined) throw new Error(`npm pack wrote no tarball into ${scratch}`);
    project = path.join(scratch, 'project');
    mkdirSync(project);
    writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'uses-parafork', private: true, type: 'module' }));
    npm(['install', '--prefer-offline', path.join(scratch, tarball)], project);
    copyFileSync(example, path.join(project, 'launcher.mjs'));
  }, 900_000);
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('runs examples/launcher.mjs, outside the repository, printing what its comments say', () => {
    const result = spawnSync(process.execPath, ['launcher.mjs'], { cwd: project, encoding: 'utf8', timeout: 60_000 });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const expected = documentedOutput(readFileSync(example, 'utf8'));
    expect(expected).toHaveLength(4);
    expect(result.stdout.trimEnd().split('\n')).toEqual(expected);
  });

  it('installs the parafork command', () => {
    expect(execFileSync(path.join(project, 'node_modules/.bin/parafork'), ['version'], { env, encoding: 'utf8' }).trim()).toBe(packageVersion);
  });

  it('is the example the README shows', () => {
    const readme = readFileSync(path.join(repositoryRoot, 'README.md'), 'utf8');
    const block = /```js\n\/\/ examples\/launcher\.mjs\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block, 'README.md: a ```js block opening with // examples/launcher.mjs').toBeDefined();
    expect(block).toBe(readFileSync(example, 'utf8'));
  });
});
