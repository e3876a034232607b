#!/usr/bin/env node
// `kubectl parafork ...`: kubectl runs this executable (kubectl-parafork on PATH) for `kubectl
// parafork`. One command, logs, read from wherever kubectl works, through the apiserver
// (src/k8s/task-log-client.ts).
//
// The agent learns who asks from a bearer token, which it has the apiserver review (TokenReview):
// the apiserver's pod proxy passes no identity of its own on, and a client certificate ends at the
// apiserver's TLS. A kubeconfig user without a token (a client certificate, basic auth, an exec
// plugin that gives a certificate) is told so before anything is asked, and how to read with a
// token of its own: --token-file, a ServiceAccount's token made with `kubectl create token`.
import { readFileSync } from 'node:fs';
import type https from 'node:https';

import { loadCredentials, type ApiCredentials } from '../k8s/kube-config.js';
import { streamTaskLog, TaskLogClientError } from '../k8s/task-log-client.js';
import { ConfigError } from '../config/agent-config.js';
import { logFlagsUsage, logQuery, parseLogFlags } from './log-flags.js';

const usage = `Usage: kubectl parafork logs TASK [flags]

Prints what a Task wrote to stdout and stderr, from the parafork agent on the node it ran on,
through the apiserver. You need get on the Task, get on its tasks/log subresource (the
parafork-log-reader ClusterRole, bound in the Task's namespace) and get on pods/proxy of the agent
Pods (the parafork-log-proxy Role in the agents' namespace), and a bearer token: the kubeconfig
user's (a token, a token file, or an exec plugin that gives one), or --token-file's. A user with a
client certificate reads with a ServiceAccount's token bound to those roles:

  kubectl parafork logs TASK --token-file <(kubectl create token SERVICEACCOUNT -n NS)

Flags:
${logFlagsUsage}
      --kubeconfig FILE   (default $KUBECONFIG, then ~/.kube/config)
      --token-file FILE   a bearer token to read with in place of the kubeconfig user's credentials
                          (the agent has the apiserver say whose it is: TokenReview)
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
    'token-file': { type: 'string' },
  });
  const kubeconfig = await loadCredentials(typeof values.kubeconfig === 'string' ? values.kubeconfig : undefined);
  const credentials = typeof values['token-file'] === 'string' ? withBearerToken(kubeconfig, readToken(values['token-file'])) : kubeconfig;
  await requireBearerToken(credentials);
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

class NoBearerTokenError extends Error {}

/** The kubeconfig's cluster and TLS trust, with `token` in place of its user's credentials. */
function withBearerToken(credentials: ApiCredentials, token: string): ApiCredentials {
  return {
    getCurrentCluster: () => credentials.getCurrentCluster(),
    applyToHTTPSOptions: async (options: https.RequestOptions) => {
      await credentials.applyToHTTPSOptions(options);
      // One identity for every request: the token's, not a client certificate's beside it.
      delete options.cert;
      delete options.key;
      options.headers = { ...(options.headers as Record<string, string> | undefined), Authorization: `Bearer ${token}` };
    },
  };
}

function readToken(file: string): string {
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (error) {
    throw new ConfigError(`--token-file ${file}: ${(error as Error).message}`);
  }
  if (token === '' || /\s/.test(token)) throw new ConfigError(`--token-file ${file} must hold one bearer token (kubectl create token SERVICEACCOUNT -n NS prints one)`);
  return token;
}

/** Refuses, saying what to do, credentials that carry no bearer token for the agent to review. */
async function requireBearerToken(credentials: ApiCredentials): Promise<void> {
  const options: https.RequestOptions = {};
  await credentials.applyToHTTPSOptions(options);
  const headers = (options.headers ?? {}) as Record<string, string>;
  const authorization = headers.Authorization ?? headers.authorization;
  if (authorization?.startsWith('Bearer ') === true) return;
  const has = options.cert !== undefined ? 'a client certificate' : authorization?.startsWith('Basic ') === true ? 'a user name and password' : 'no token';
  throw new NoBearerTokenError(
    [
      `your kubeconfig user authenticates with ${has}, and reading a Task's log needs a bearer token:`,
      'the agent asks the apiserver whose token it is (a client certificate ends at the apiserver, whose',
      'proxy passes no identity on). Read with a ServiceAccount token bound to the log roles instead:',
      '  kubectl create serviceaccount log-reader -n NS',
      '  kubectl create rolebinding log-reader --clusterrole=parafork-log-reader --serviceaccount=NS:log-reader -n NS',
      '  kubectl create rolebinding log-reader-proxy --role=parafork-log-proxy --serviceaccount=NS:log-reader -n parafork',
      '  kubectl parafork logs TASK -n NS --token-file <(kubectl create token log-reader -n NS)',
      '(docs/deployment.md, "Task logs").',
    ].join('\n'),
  );
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
    } else if (error instanceof TaskLogClientError || error instanceof NoBearerTokenError || (error as Error).name === 'KubeconfigError' || (error as Error).name === 'ApiError') {
      console.error(`kubectl parafork: ${(error as Error).message}`);
      process.exitCode = 1;
    } else {
      console.error(`kubectl parafork: ${(error as Error).stack ?? String(error)}`);
      process.exitCode = 1;
    }
  },
);
