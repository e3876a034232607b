// The manifests `parafork run` refuses, and how it says so (src/standalone/manifest-loader.ts):
// the mistakes a new user makes, each named with its file and what to change, every bad file of a
// folder at once.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { loadTaskManifests, ManifestError } from '../../src/standalone/manifest-loader.js';

const task = (metadata: string, spec = '{command: ["true"]}'): string => `apiVersion: parafork.dev/v1alpha1\nkind: Task\n${metadata}\nspec: ${spec}\n`;

describe('manifest mistakes', () => {
  let folder: string;
  beforeEach(() => {
    folder = mkdtempSync(path.join(tmpdir(), 'parafork-manifests-'));
  });
  afterEach(() => rmSync(folder, { recursive: true, force: true }));

  /** The ManifestError's message for a folder holding `files`. */
  function refusal(files: Record<string, string>): string {
    for (const [name, text] of Object.entries(files)) writeFileSync(path.join(folder, name), text);
    try {
      loadTaskManifests([folder]);
    } catch (error) {
      expect(error).toBeInstanceOf(ManifestError);
      return (error as Error).message;
    }
    throw new Error('the manifests were accepted');
  }

  it('names a misspelt metadata as the unknown field it is, not only a missing name', () => {
    expect(refusal({ 'a.yaml': task('metdata: {name: typo}') })).toBe(`${folder}/a.yaml#1: no metadata.name: the Task has no metadata, and an unknown field "metdata"`);
  });

  it('says that generateName is not for a Task run here, as kubectl apply refuses it', () => {
    expect(refusal({ 'a.yaml': task('metadata: {generateName: job-}') })).toMatch(/#1: no metadata\.name: a Task here needs a name of its own, as kubectl apply does \(generateName is only for kubectl create\)$/);
  });

  it('says what characters a name may have', () => {
    expect(refusal({ 'a.yaml': task('metadata: {name: My_Task}') })).toMatch(/#1: metadata\.name must be a lowercase DNS name \(a-z, 0-9, '-' and '\.'\), got "My_Task"$/);
  });

  it('says which apiVersion and kind a Task has beside what the file says', () => {
    expect(refusal({ 'a.yaml': 'apiVersion: parafork.dev/v1\nkind: Task\nmetadata: {name: a}\nspec: {command: ["true"]}\n' })).toMatch(
      /#1: not a Task: a Task has apiVersion parafork\.dev\/v1alpha1 and kind Task, this one apiVersion "parafork\.dev\/v1" and kind "Task"$/,
    );
  });

  it('names every bad file of a folder, a line each, so one pass fixes them all', () => {
    const message = refusal({
      'a-good.yaml': task('metadata: {name: good}'),
      'b-unknown.yaml': task('metadata: {name: typo}', '{comand: ["true"]}'),
      'c-yaml.yaml': 'apiVersion: parafork.dev/v1alpha1\nkind: Task\nmetadata:\n\tname: tabbed\n',
      'd-twice.yaml': task('metadata: {name: good}'),
    });
    expect(message.split('\n')).toEqual([
      `${folder}/b-unknown.yaml#1 (Task typo): spec: must have required property 'command'; spec: unknown field "comand"`,
      expect.stringMatching(new RegExp(`^${folder}/c-yaml\\.yaml: not valid YAML: tab characters`)) as string,
      `${folder}/d-twice.yaml#1: Task default/good is defined twice (first in ${folder}/a-good.yaml#1)`,
    ]);
  });

  it('names at most ten, then how many more', () => {
    const files = Object.fromEntries(Array.from({ length: 13 }, (_, index) => [`bad-${String(index).padStart(2, '0')}.yaml`, task('metadata: {name: Bad}')]));
    const lines = refusal(files).split('\n');
    expect(lines).toHaveLength(11);
    expect(lines.at(-1)).toBe('and 3 more problems');
  });

  it('keeps a file name\'s newline escaped: one problem stays one line', () => {
    const message = refusal({ 'a\nb.yaml': task('metadata: {name: Bad}') });
    expect(message.split('\n')).toHaveLength(1);
    expect(message).toContain('a\\u000ab.yaml#1');
  });
});
