// Layers point one way: cli -> agent -> controller/tasks -> launcher/sandbox/k8s/metrics/config/logs ->
// native. A module may import from its own folder and from layers below it, never above.
const layers = [
  ['cli'],
  ['agent', 'standalone'],
  ['controller', 'tasks'],
  ['launcher', 'sandbox', 'k8s', 'metrics', 'config', 'http', 'logs'],
  ['api'],
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
    name: 'native-only-through-loader',
    comment: 'Only src/native/binding.ts loads the addon; everything else goes through src/launcher.',
    severity: 'error',
    from: { path: '^src/', pathNot: '^src/(native|launcher)/' },
    to: { path: '^src/native/' },
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
