// Layers point one way: cli -> agent/standalone -> runtime -> metrics -> controller/tasks ->
// sandbox/k8s/config/http/logs -> launcher -> store/api -> native. A module may import from its own
// folder and from layers below it, never above. metrics ranks above the layers it observes, so it
// implements their observer hooks by importing them (docs/ARCHITECTURE.md).
const layers = [
  ['cli'],
  ['agent', 'standalone'],
  ['runtime'],
  ['metrics'],
  ['controller', 'tasks'],
  ['sandbox', 'k8s', 'config', 'http', 'logs'],
  ['launcher'],
  ['store', 'api'],
  ['native'],
];

const rank = new Map(layers.flatMap((folders, index) => folders.map((folder) => [folder, index])));

const forbidden = [];
for (const [folder, index] of rank) {
  const above = [...rank].filter(([, otherIndex]) => otherIndex < index).map(([other]) => other);
  const disallowed = above;
  if (disallowed.length > 0) {
    forbidden.push({
      name: `layer-${folder}`,
      comment: `src/${folder} sits below ${disallowed.join(', ')}: it must not import them`,
      severity: 'error',
      from: { path: `^src/${folder}/` },
      to: { path: `^src/(${disallowed.join('|')})/` },
    });
  }
}

forbidden.push(
  {
    name: 'standalone-without-cluster',
    comment: 'Standalone mode runs without a cluster: it reaches the reconciler through src/store and src/runtime, never src/k8s.',
    severity: 'error',
    from: { path: '^src/standalone/' },
    to: { path: '^src/k8s/' },
  },
  {
    name: 'native-only-through-loader',
    comment: 'Only src/native/binding.ts loads the addon; everything else goes through src/launcher.',
    severity: 'error',
    from: { path: '^src/', pathNot: '^src/(native|launcher)/' },
    to: { path: '^src/native/' },
  },
  {
    name: 'library-imports-only-itself',
    comment:
      'src/launcher and src/native are the library published as `parafork` (src/index.ts): they import nothing else in src/, so the library never depends on the agent built on it.',
    severity: 'error',
    from: { path: '^src/(launcher|native)/' },
    to: { path: '^src/', pathNot: '^src/(launcher|native)/' },
  },
  {
    name: 'public-surface-is-the-library',
    comment: 'src/index.ts exports the library (src/launcher) and nothing of the agent.',
    severity: 'error',
    from: { path: '^src/index\\.ts$' },
    to: { path: '^src/', pathNot: '^src/launcher/' },
  },
  {
    name: 'no-circular',
    severity: 'error',
    from: {},
    to: { circular: true },
  },
);

module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
  },
};
