// Where the agent's API credentials come from: a kubeconfig file or the in-cluster service
// account, read into what ApiClient needs (the server URL, TLS material, an Authorization header).
//
// Why not client-node's KubeConfig: loading it imports the whole generated API, undici, the OIDC,
// Azure and GCP auth plugins, ~75 MB of resident memory in an agent whose budget is 150 MB with
// 1,000 Tasks running (issue 7). What an agent on a node uses is small: a service account token
// (re-read as it rotates), or a kubeconfig with client certificates or a token; this reader does
// those. A kubeconfig whose user runs an exec or auth-provider plugin (every EKS, GKE and AKS
// kubeconfig) is handed to client-node's KubeConfig instead, imported only then (loadCredentials):
// that agent pays the memory, the others do not. ApiClient takes either: both have the two
// methods it calls, and it calls applyToHTTPSOptions again every 30 s, so client-node re-runs an
// exec plugin whose credential has expired.
import { existsSync, readFileSync } from 'node:fs';
import type https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { load } from 'js-yaml';

/** What ApiClient needs of its credentials; client-node's KubeConfig has the same two methods. */
export interface ApiCredentials {
  getCurrentCluster(): { readonly server: string } | null;
  /** Sets ca/cert/key/servername/rejectUnauthorized and the Authorization header; token files are read at each call. */
  applyToHTTPSOptions(options: https.RequestOptions): Promise<void>;
}

const serviceAccountDirectory = '/var/run/secrets/kubernetes.io/serviceaccount';

interface NamedEntry<T> {
  readonly name?: string;
  readonly cluster?: T;
  readonly user?: T;
  readonly context?: T;
}

interface KubeconfigCluster {
  readonly server?: string;
  readonly 'certificate-authority'?: string;
  readonly 'certificate-authority-data'?: string;
  readonly 'insecure-skip-tls-verify'?: boolean;
  readonly 'tls-server-name'?: string;
  readonly 'proxy-url'?: string;
}

interface KubeconfigUser {
  readonly token?: string;
  readonly tokenFile?: string;
  readonly 'client-certificate'?: string;
  readonly 'client-certificate-data'?: string;
  readonly 'client-key'?: string;
  readonly 'client-key-data'?: string;
  readonly username?: string;
  readonly password?: string;
  readonly exec?: unknown;
  readonly 'auth-provider'?: unknown;
}

interface KubeconfigFile {
  readonly 'current-context'?: string;
  readonly clusters?: readonly NamedEntry<KubeconfigCluster>[];
  readonly users?: readonly NamedEntry<KubeconfigUser>[];
  readonly contexts?: readonly NamedEntry<{ readonly cluster?: string; readonly user?: string }>[];
}

interface Material {
  readonly server: string;
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly servername?: string;
  readonly insecure: boolean;
  /** A fixed Authorization header value, or a file whose content is the bearer token. */
  readonly authorization?: string;
  readonly tokenFile?: string;
}

/** $KUBECONFIG (its first file), then ~/.kube/config; undefined: none, so in-cluster. */
function defaultKubeconfigFile(): string | undefined {
  const fromEnvironment = process.env.KUBECONFIG?.split(path.delimiter).find((file) => file.length > 0);
  if (fromEnvironment !== undefined) return fromEnvironment;
  const home = path.join(os.homedir(), '.kube', 'config');
  return existsSync(home) ? home : undefined;
}

function usesPlugin(user: KubeconfigUser): boolean {
  return user.exec !== undefined || user['auth-provider'] !== undefined;
}

/** Whether the current context's user of a parsed kubeconfig runs a plugin (the rest is checked by fromFile). */
function currentUserUsesPlugin(file: string): boolean {
  let parsed: KubeconfigFile;
  try {
    parsed = (load(readFileSync(file, 'utf8')) ?? {});
  } catch {
    return false; // fromFile reports it
  }
  const userName = parsed.contexts?.find((entry) => entry.name === parsed['current-context'])?.context?.user;
  const user = parsed.users?.find((entry) => entry.name === userName)?.user;
  return user !== undefined && usesPlugin(user);
}

/**
 * The agent's credentials: `file`, or else $KUBECONFIG, ~/.kube/config, in-cluster. This reader's
 * for in-cluster, certificate and token kubeconfigs; client-node's KubeConfig, imported here and
 * only here, for a user with an exec or auth-provider plugin.
 */
export async function loadCredentials(file: string | undefined): Promise<ApiCredentials> {
  const kubeconfigFile = file ?? defaultKubeconfigFile();
  if (kubeconfigFile === undefined) return AgentCredentials.inCluster();
  if (!currentUserUsesPlugin(kubeconfigFile)) return AgentCredentials.fromFile(kubeconfigFile);
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kubeConfig = new KubeConfig();
  try {
    kubeConfig.loadFromFile(kubeconfigFile);
  } catch (error) {
    throw new KubeconfigError(`cannot read the kubeconfig ${kubeconfigFile}: ${(error as Error).message}`);
  }
  if (kubeConfig.getCurrentCluster()?.proxyUrl !== undefined) throw new KubeconfigError(`the kubeconfig ${kubeconfigFile}'s cluster sets proxy-url, which the agent does not support`);
  return kubeConfig;
}

export class KubeconfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KubeconfigError';
  }
}

export class AgentCredentials implements ApiCredentials {
  readonly #material: Material;

  private constructor(material: Material) {
    this.#material = material;
  }

  /** As client-node's loadFromDefault: $KUBECONFIG (its first file), then ~/.kube/config, then in-cluster. */
  static fromDefault(): AgentCredentials {
    const file = defaultKubeconfigFile();
    return file === undefined ? AgentCredentials.inCluster() : AgentCredentials.fromFile(file);
  }

  /** The pod's service account: KUBERNETES_SERVICE_HOST/PORT, its CA and its (rotating) token. */
  static inCluster(): AgentCredentials {
    const host = process.env.KUBERNETES_SERVICE_HOST;
    const port = process.env.KUBERNETES_SERVICE_PORT;
    if (host === undefined || port === undefined) {
      throw new KubeconfigError('no kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config) and not in a cluster (KUBERNETES_SERVICE_HOST/PORT are unset)');
    }
    const hostPart = host.includes(':') ? `[${host}]` : host;
    return new AgentCredentials({
      server: `https://${hostPart}:${port}`,
      ca: readFileSync(path.join(serviceAccountDirectory, 'ca.crt')),
      insecure: false,
      tokenFile: path.join(serviceAccountDirectory, 'token'),
    });
  }

  /** The current context of a kubeconfig file; relative paths in it are relative to its folder. */
  static fromFile(file: string): AgentCredentials {
    let parsed: KubeconfigFile;
    try {
      parsed = (load(readFileSync(file, 'utf8')) ?? {});
    } catch (error) {
      throw new KubeconfigError(`cannot read the kubeconfig ${file}: ${(error as Error).message}`);
    }
    const contextName = parsed['current-context'];
    const context = parsed.contexts?.find((entry) => entry.name === contextName)?.context;
    if (contextName === undefined || context === undefined) throw new KubeconfigError(`the kubeconfig ${file} has no current context`);
    const cluster = parsed.clusters?.find((entry) => entry.name === context.cluster)?.cluster;
    if (cluster?.server === undefined) throw new KubeconfigError(`the kubeconfig ${file} has no cluster ${JSON.stringify(context.cluster)} with a server`);
    const user = parsed.users?.find((entry) => entry.name === context.user)?.user ?? {};
    if (usesPlugin(user)) {
      throw new KubeconfigError(`the kubeconfig ${file}'s user ${JSON.stringify(context.user)} runs an exec or auth-provider plugin: load it with loadCredentials`);
    }
    if (cluster['proxy-url'] !== undefined) throw new KubeconfigError(`the kubeconfig ${file}'s cluster sets proxy-url, which the agent does not support`);
    const directory = path.dirname(path.resolve(file));
    const fileOrData = (fileField: string | undefined, dataField: string | undefined): Buffer | undefined => {
      if (dataField !== undefined) return Buffer.from(dataField, 'base64');
      return fileField === undefined ? undefined : readFileSync(path.resolve(directory, fileField));
    };
    const ca = fileOrData(cluster['certificate-authority'], cluster['certificate-authority-data']);
    const cert = fileOrData(user['client-certificate'], user['client-certificate-data']);
    const key = fileOrData(user['client-key'], user['client-key-data']);
    const authorization = user.token !== undefined
      ? `Bearer ${user.token}`
      : user.username !== undefined ? `Basic ${Buffer.from(`${user.username}:${user.password ?? ''}`).toString('base64')}` : undefined;
    return new AgentCredentials({
      server: cluster.server,
      insecure: cluster['insecure-skip-tls-verify'] === true,
      ...(ca ? { ca } : {}),
      ...(cert ? { cert } : {}),
      ...(key ? { key } : {}),
      ...(cluster['tls-server-name'] !== undefined ? { servername: cluster['tls-server-name'] } : {}),
      ...(authorization !== undefined ? { authorization } : {}),
      ...(user.token === undefined && user.tokenFile !== undefined ? { tokenFile: path.resolve(directory, user.tokenFile) } : {}),
    });
  }

  getCurrentCluster(): { readonly server: string } {
    return { server: this.#material.server };
  }

  applyToHTTPSOptions(options: https.RequestOptions): Promise<void> {
    const material = this.#material;
    if (material.ca) options.ca = material.ca;
    if (material.cert) options.cert = material.cert;
    if (material.key) options.key = material.key;
    if (material.servername !== undefined) options.servername = material.servername;
    options.rejectUnauthorized = !material.insecure;
    const authorization = material.tokenFile !== undefined ? `Bearer ${readFileSync(material.tokenFile, 'utf8').trim()}` : material.authorization;
    if (authorization !== undefined) options.headers = { ...(options.headers as Record<string, string> | undefined), Authorization: authorization };
    return Promise.resolve();
  }
}
