// Paths and keys of the resources the agent works with.
import { taskGroup, taskPlural, taskVersion } from '../api/task.js';

/** The key of a namespaced object in caches and the work queue. */
export function objectKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export function splitObjectKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf('/');
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** Tasks in every namespace (list and watch). */
export const allTasksPath = `/apis/${taskGroup}/${taskVersion}/${taskPlural}`;

export function taskPath(namespace: string, name: string): string {
  return `/apis/${taskGroup}/${taskVersion}/namespaces/${encodeURIComponent(namespace)}/${taskPlural}/${encodeURIComponent(name)}`;
}

export function taskStatusPath(namespace: string, name: string): string {
  return `${taskPath(namespace, name)}/status`;
}

export function nodePath(name: string): string {
  return `/api/v1/nodes/${encodeURIComponent(name)}`;
}

export function eventsPath(namespace: string): string {
  return `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/events`;
}
