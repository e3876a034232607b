// What one index of a Task array sees of its index: environment variables, and the same values
// in args. The variable names are those of Indexed Jobs (JOB_COMPLETION_INDEX) next to parafork's
// own, so a program written for an Indexed Job runs unchanged.
//
// In args, $(NAME) of these three names is replaced, as a Pod's args expand $(VAR): a program
// that takes its shard on the command line needs no shell around it. $$( is the escape for a
// literal $(. Nothing else is expanded (not the Task's other env, not $$ alone: `sh -c 'kill $$'`
// keeps meaning what it means), so args of Tasks that are not arrays are passed exactly as before.
import type { Task, TaskSpec } from '../api/task.js';
import { specEnvironment, withSearchPath, type TaskCommand } from './task-launch.js';

/** The index, from 0. */
export const taskIndexVariable = 'PARAFORK_TASK_INDEX';
/** The index again, under the name Kubernetes Indexed Jobs give it. */
export const jobCompletionIndexVariable = 'JOB_COMPLETION_INDEX';
/** spec.completions. */
export const taskCountVariable = 'PARAFORK_TASK_COUNT';

function checkIndex(index: number, completions: number): void {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(completions) || index < 0 || index >= completions) {
    throw new RangeError(`index ${index} is not within an array of ${completions}`);
  }
}

/** The variables one index gets; they override any of the same name in spec.env. */
export function indexEnvironment(index: number, completions: number): Readonly<Record<string, string>> {
  checkIndex(index, completions);
  return { [taskIndexVariable]: String(index), [jobCompletionIndexVariable]: String(index), [taskCountVariable]: String(completions) };
}

const reference = /\$\$\(|\$\((PARAFORK_TASK_INDEX|JOB_COMPLETION_INDEX|PARAFORK_TASK_COUNT)\)/g;

/** `args` with $(PARAFORK_TASK_INDEX), $(JOB_COMPLETION_INDEX) and $(PARAFORK_TASK_COUNT) replaced, and $$( made $(. */
export function expandIndexArguments(args: readonly string[], environment: Readonly<Record<string, string>>): string[] {
  return args.map((argument) =>
    argument.includes('$') ? argument.replace(reference, (match: string, name: string | undefined) => (name === undefined ? '$(' : environment[name] ?? match)) : argument,
  );
}

/**
 * The Task as one index runs it: spec.env with the index's variables (replacing any of the same
 * name) and args with their $(NAME) references expanded; everything else as it is. What the launch
 * of a single attempt makes of a Task then serves each index unchanged.
 */
export function taskForIndex(task: Task, index: number): Task {
  const variables = indexEnvironment(index, task.spec.completions ?? 0);
  const env = [...specEnvironmentWithoutIndexVariables(task.spec), ...Object.entries(variables).map(([name, value]) => ({ name, value }))];
  return { ...task, spec: { ...task.spec, env, ...(task.spec.args !== undefined ? { args: expandIndexArguments(task.spec.args, variables) } : {}) } };
}

const indexVariableNames: ReadonlySet<string> = new Set([taskIndexVariable, jobCompletionIndexVariable, taskCountVariable]);

type TaskEnvironment = NonNullable<Task['spec']['env']>;

/**
 * spec.env without the index's variables, by the env list it came from: the same for every index
 * of an array, so filtered once per list rather than per index (a Task from the watch is a new
 * object at each change and is never edited in place).
 */
const filteredEnvironments = new WeakMap<TaskEnvironment, TaskEnvironment>();

function specEnvironmentWithoutIndexVariables(spec: Task['spec']): TaskEnvironment {
  const given = spec.env;
  if (given === undefined) return [];
  let env = filteredEnvironments.get(given);
  if (env === undefined) {
    env = given.filter((variable) => !indexVariableNames.has(variable.name));
    filteredEnvironments.set(given, env);
  }
  return env;
}

/**
 * What every index of an array runs alike, made once per spec (a Task from the watch is a new
 * object at each change and is never edited in place): the environment without the index's
 * variables (PATH included), and the arguments when none of them names the index.
 */
interface IndexCommandTemplate {
  readonly file: string;
  readonly leadingArgs: readonly string[];
  /** spec.args, when one of them has a `$` to expand; undefined: `fixedArgs` serve every index. */
  readonly expandedArgs: readonly string[] | undefined;
  readonly fixedArgs: readonly string[];
  readonly environment: Readonly<Record<string, string>>;
}

const indexCommandTemplates = new WeakMap<TaskSpec, IndexCommandTemplate>();

function indexCommandTemplate(spec: TaskSpec): IndexCommandTemplate {
  let template = indexCommandTemplates.get(spec);
  if (template === undefined) {
    const [file, ...leadingArgs] = spec.command;
    const args = spec.args ?? [];
    template = {
      file,
      leadingArgs,
      expandedArgs: args.some((argument) => argument.includes('$')) ? args : undefined,
      fixedArgs: Object.freeze([...leadingArgs, ...args]),
      environment: withSearchPath(specEnvironment(specEnvironmentWithoutIndexVariables(spec))),
    };
    indexCommandTemplates.set(spec, template);
  }
  return template;
}

/**
 * The command one index runs: what the launch of `taskForIndex(task, index)` would run (a unit
 * test compares them), made without a copy of the Task, its env list and its args for each index.
 * Per index: the environment with the index's three variables (last, replacing any of the same
 * name), and the args only where they have a reference to expand.
 */
export function indexCommand(spec: TaskSpec, index: number): TaskCommand {
  const completions = spec.completions ?? 0;
  checkIndex(index, completions);
  const template = indexCommandTemplate(spec);
  const indexText = String(index);
  const count = String(completions);
  const env = { ...template.environment, [taskIndexVariable]: indexText, [jobCompletionIndexVariable]: indexText, [taskCountVariable]: count };
  const args = template.expandedArgs === undefined ? template.fixedArgs : [...template.leadingArgs, ...expandIndexArguments(template.expandedArgs, env)];
  return { file: template.file, args, env };
}
