// Paths and keys of the resources the agent works with.
import { taskGroup, taskPlural, taskVersion } from '../api/task.js';

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
