// The Dockerfile read as data, for the tests that hold other builds to it: its stages and their
// instructions (test/integration/container-build.test.ts replays the builder stage;
// test/node/image.test.ts compares the runtime stage with the image scripts/build-image.sh builds).
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { repositoryRoot } from './helm.js';

export interface Instruction {
  readonly keyword: string;
  readonly argument: string;
}

export interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: readonly Instruction[];
}

/** The Dockerfile's stages, instructions joined across backslash-continued lines, comments dropped. */
export function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const logicalLines: string[] = [];
  let pending = '';
  for (const line of text.split('\n')) {
    if (/^\s*#/.test(line)) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const whole = (pending + line).trim();
    pending = '';
    if (whole !== '') logicalLines.push(whole);
  }
  const args = new Map<string, string>();
  const stages: { from: string; name: string | undefined; instructions: Instruction[] }[] = [];
  for (const line of logicalLines) {
    const [, keyword = '', argument = ''] = /^(\S+)\s+(.*)$/.exec(line) ?? [];
    if (keyword === 'ARG' && stages.length === 0) {
      const [name = '', value = ''] = argument.split('=');
      args.set(name, value);
    } else if (keyword === 'FROM') {
      const [, from = '', name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(argument) ?? [];
      stages.push({ from: from.replace(/\$\{(\w+)\}/g, (_, arg: string) => args.get(arg) ?? ''), name, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ keyword, argument });
    }
  }
  return { args, stages };
}

/** The repository's Dockerfile, parsed. */
export function readDockerfile(): { args: Map<string, string>; stages: Stage[] } {
  return parseDockerfile(readFileSync(path.join(repositoryRoot, 'Dockerfile'), 'utf8'));
}

/** The exec-form (JSON array) argument of the stage's last `keyword` instruction, [] when it has none. */
export function execForm(stage: Stage, keyword: string): string[] {
  return JSON.parse(stage.instructions.findLast((instruction) => instruction.keyword === keyword)?.argument ?? '[]') as string[];
}
