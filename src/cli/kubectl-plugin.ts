#!/usr/bin/env node
// `kubectl parafork ...`: kubectl runs this executable (kubectl-parafork on PATH) for `kubectl
// parafork`. One command, logs, read from wherever kubectl works, through the apiserver
// (src/k8s/task-log-client.ts).
import { loadCredentials } from '../k8s/kube-config.js';
import { streamTaskLog, TaskLogClientError } from '../k8s/task-log-client.js';
import { ConfigError } from '../config/agent-config.js';
import { logFlagsUsage, logQuery, parseLogFlags } from './log-flags.js';

const usage = `Usage: kubectl parafork logs TASK [flags]

Prints what a Task wrote to stdout and stderr, from the parafork agent on the node it ran on,
through the apiserver. You need get on the Task, get on its tasks/log subresource (the
parafork-log-reader ClusterRole, bound in the Task's namespace) and get on pods/proxy of the agent
Pods (the parafork-log-proxy Role in the agents' namespace), and a kubeconfig user with a token.

Flags:
${logFlagsUsage}
      --kubeconfig FILE   (default $KUBECONFIG, then ~/.kube/config)
      --agent-namespace N the agents' namespace (default parafork)
      --agent-selector S  the agent Pods' labels (default app.kubernetes.io/name=parafork)`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h' || rest.includes('--help')) {
    console.log(usage);
    return 0;
  }
  if (command !== 'logs') {
    console.error(`kubectl parafork: unknown command ${JSON.stringify(command)}; run 'kubectl parafork help'`);
    return 2;
  }
  const { name, flags, values } = parseLogFlags(rest, {
    kubeconfig: { type: 'string' },
    'agent-namespace': { type: 'string', default: 'parafork' },
    'agent-selector': { type: 'string', default: 'app.kubernetes.io/name=parafork' },
  });
  const credentials = await loadCredentials(typeof values.kubeconfig === 'string' ? values.kubeconfig : undefined);
  const interrupted = new AbortController();
  process.once('SIGINT', () => interrupted.abort());
  await streamTaskLog(
    credentials,
    { namespace: flags.namespace, name, agentNamespace: String(values['agent-namespace']), agentSelector: String(values['agent-selector']), query: logQuery(flags) },
    (chunk) => process.stdout.write(chunk),
    interrupted.signal,
  );
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const code = (error as { code?: unknown }).code;
    if (error instanceof ConfigError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))) {
      console.error(`kubectl parafork: ${(error as Error).message}`);
      process.exitCode = 2;
    } else if (error instanceof TaskLogClientError || (error as Error).name === 'KubeconfigError' || (error as Error).name === 'ApiError') {
      console.error(`kubectl parafork: ${(error as Error).message}`);
      process.exitCode = 1;
    } else {
      console.error(`kubectl parafork: ${(error as Error).stack ?? String(error)}`);
      process.exitCode = 1;
    }
  },
);
