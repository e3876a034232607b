#!/usr/bin/env node
// Builds the native addon (native/ -> native/build/Release/parafork.node) with node-gyp.
// node-gyp normally downloads Node's headers; the Node.js we run already carries them (the npm
// package `node` and the official tarballs ship include/node next to bin/), so we point node-gyp
// at that directory and nothing is fetched.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// `--install` is the package's npm install script: it builds the addon where parafork is installed
// as a dependency (the tarball ships native/ sources, not a binary). A source checkout (it has src/)
// builds with `npm run build` instead, so `npm ci` there never compiles with whatever Node runs npm.
if (process.argv.includes('--install') && existsSync(path.join(root, 'src'))) process.exit(0);
const require = createRequire(import.meta.url);
// In this repository node-gyp is a devDependency; where parafork is installed as a package (its
// `install` script runs this) npm hands its own bundled node-gyp over as npm_config_node_gyp.
function findNodeGyp() {
  try {
    return require.resolve('node-gyp/bin/node-gyp.js');
  } catch (error) {
    if (process.env.npm_config_node_gyp) return process.env.npm_config_node_gyp;
    throw error;
  }
}
const nodeGyp = findNodeGyp();

const installPrefix = path.resolve(path.dirname(process.execPath), '..');
const headersNextToNode = existsSync(path.join(installPrefix, 'include', 'node', 'node_api.h'));
// `build` after the first `rebuild` lets make skip what is up to date, so `npm test` can build first;
// but a build directory configured against other headers (another Node, or npm's nodedir before
// the fix below) is configured again.
const configGypi = path.join(root, 'native', 'build', 'config.gypi');
const configuredFor = existsSync(configGypi) ? /"nodedir": "([^"]*)"/.exec(readFileSync(configGypi, 'utf8'))?.[1] : undefined;
const configured =
  existsSync(path.join(root, 'native', 'build', 'Makefile')) && (!headersNextToNode || configuredFor === installPrefix);
const command = configured && process.env.PARAFORK_NATIVE_REBUILD !== '1' ? 'build' : 'rebuild';
const args = [nodeGyp, command, '--directory', path.join(root, 'native'), '--jobs', 'max'];
if (headersNextToNode) args.push(`--nodedir=${installPrefix}`);
if (process.env.PARAFORK_NATIVE_DEBUG === '1') args.push('--debug');

// Under `npm run`, npm hands node-gyp its own config as npm_config_* variables, and node-gyp lets
// them override its command line. Debian's npm defaults `nodedir` to /usr, the system Node's
// headers (Node 20 here: Node-API 9 at most), so it is set to the same directory as --nodedir.
const env = { ...process.env };
if (headersNextToNode) env.npm_config_nodedir = installPrefix;
// node-gyp's and make's lines are shown only when the build fails (or PARAFORK_NATIVE_VERBOSE=1):
// a build that works has nothing to say, and warnings are errors here (-Werror).
const verbose = process.env.PARAFORK_NATIVE_VERBOSE === '1';
const result = spawnSync(process.execPath, args, { stdio: verbose ? 'inherit' : ['ignore', 'pipe', 'pipe'], env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
if (result.status !== 0) {
  if (!verbose) process.stderr.write(`${result.stdout ?? ''}${result.stderr ?? ''}`);
  console.error(
    `parafork: building the native addon failed (node-gyp exit ${result.status ?? result.signal}).` +
      (headersNextToNode ? '' : ` No Node.js headers were found under ${installPrefix}/include/node.`),
  );
  process.exit(1);
}
