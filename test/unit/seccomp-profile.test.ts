// Reading Docker-format seccomp profiles: what is accepted, what each mistake is called, and how
// Docker's includes/excludes apply to a task with no capabilities. Then the store: paths that may
// not leave the profile directory, files that are missing, and compiling each profile once.
import { chmodSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { SeccompFilter, type SeccompFilterSpec } from '../../src/launcher/seccomp-filter.js';
import { loadNativeBinding } from '../../src/native/binding.js';
import { parseSeccompProfile, type SeccompHost } from '../../src/sandbox/seccomp-profile.js';
import { SeccompProfileStore, SeccompProfileUnavailable } from '../../src/sandbox/seccomp-profile-store.js';

const fixture = readFileSync(new URL('../security/fixtures/allow-list-profile.json', import.meta.url), 'utf8');
const amd64: SeccompHost = { architecture: 'amd64', kernelRelease: '5.10.0-30-amd64' };

function parse(profile: unknown, host: SeccompHost = amd64): SeccompFilterSpec {
  return parseSeccompProfile(JSON.stringify(profile), host);
}

function rulesFor(spec: SeccompFilterSpec, name: string) {
  return spec.rules.filter((rule) => rule.names.includes(name));
}

describe('parseSeccompProfile', () => {
  it('reads the allow-list fixture: default EPERM, rules with their actions and arguments', () => {
    const spec = parseSeccompProfile(fixture, amd64);
    expect(spec.defaultAction).toEqual({ action: 'SCMP_ACT_ERRNO', errno: 1 });
    expect(rulesFor(spec, 'read')).toEqual([{ names: expect.arrayContaining(['read', 'write']) as unknown, action: 'SCMP_ACT_ALLOW', args: [] }]);
    expect(rulesFor(spec, 'clone3')).toEqual([{ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errno: 38, args: [] }]);
    expect(rulesFor(spec, 'clone')[0]?.args).toEqual([{ index: 0, op: 'SCMP_CMP_MASKED_EQ', value: 0x7e020000n, valueTwo: 0n }]);
    expect(rulesFor(spec, 'personality')).toHaveLength(4);
  });

  it('applies includes/excludes as Docker does for a task without capabilities', () => {
    const spec = parseSeccompProfile(fixture, amd64);
    expect(rulesFor(spec, 'mount')).toEqual([]); // includes.caps: the task never holds one
    expect(rulesFor(spec, 'clone')).toHaveLength(1); // excludes.caps: nothing to exclude
    expect(rulesFor(spec, 'pidfd_getfd')).toHaveLength(1); // includes.minKernel 5.6 <= 5.10
    expect(rulesFor(parseSeccompProfile(fixture, { ...amd64, kernelRelease: '5.4.0' }), 'pidfd_getfd')).toEqual([]);
    expect(rulesFor(spec, 'modify_ldt')).toHaveLength(1); // includes.arches amd64
    expect(rulesFor(parseSeccompProfile(fixture, { ...amd64, architecture: 'arm64' }), 'modify_ldt')).toEqual([]);
    expect(rulesFor(parseSeccompProfile(fixture, { ...amd64, architecture: 's390x' }), 'clone')).toEqual([]); // excludes.arches
  });

  it('keeps 64-bit values exact', () => {
    const source = '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["ioctl"],"action":"SCMP_ACT_ERRNO","args":[{"index":1,"value":18446744073709551615,"valueTwo":18446744073709551614,"op":"SCMP_CMP_MASKED_EQ"}]}]}';
    expect(parseSeccompProfile(source, amd64).rules[0]?.args[0]).toMatchObject({ value: 2n ** 64n - 1n, valueTwo: 2n ** 64n - 2n });
  });

  it("reads the old singular 'name', and defaults errnoRet to EPERM", () => {
    const spec = parse({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ name: 'uname', action: 'SCMP_ACT_ERRNO' }] });
    expect(spec.rules).toEqual([{ names: ['uname'], action: 'SCMP_ACT_ERRNO', errno: 1, args: [] }]);
  });

  it('splits a rule that compares one argument twice into one rule per comparison, as runc does', () => {
    const spec = parse({
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [{ names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }, { index: 0, value: 10, op: 'SCMP_CMP_EQ' }] }],
    });
    expect(spec.rules.map((rule) => rule.args.map((arg) => arg.value))).toEqual([[1n], [10n]]);
  });

  it.each([
    ['not JSON', '{"defaultAction": ', /^not valid JSON: /],
    ['not an object', '[]', /^\(the profile\): must be an object/],
    ['no defaultAction', '{"syscalls": []}', /^defaultAction: must be a string, got undefined/],
    ['an unknown action', '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_MAYBE"}]}', /^syscalls\[0\]\.action: unknown action "SCMP_ACT_MAYBE"; one of SCMP_ACT_ALLOW, /],
    ['SCMP_ACT_NOTIFY', '{"defaultAction": "SCMP_ACT_NOTIFY"}', /^defaultAction: SCMP_ACT_NOTIFY needs a listener/],
    ['an unknown operator', '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_KILL", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]}', /^syscalls\[0\]\.args\[0\]\.op: unknown operator "SCMP_CMP_ABOUT"; one of SCMP_CMP_NE, /],
    ['missing names', '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_KILL"}]}', /^syscalls\[0\]: names no system call \('names' is missing or empty\)/],
    ['empty names', '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_KILL"}]}', /^syscalls\[0\]: names no system call/],
    ['name and names', '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "uname", "names": ["mkdir"], "action": "SCMP_ACT_KILL"}]}', /^syscalls\[0\]: has both 'name' and 'names'/],
    ['a name that is no system call name', '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["uname", "Make Dir"], "action": "SCMP_ACT_KILL"}]}', /^syscalls\[0\]\.names\[1\]: "Make Dir" is not a system call name/],
    ['an argument index past 5', '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_KILL", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}', /^syscalls\[0\]\.args\[0\]\.index: must be from 0 to 5, got 6/],
    ['a negative value', '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_KILL", "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]}', /^syscalls\[0\]\.args\[0\]\.value: must be from 0 to 18446744073709551615, got -1/],
    ['a value past 64 bits', '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_KILL", "args": [{"index": 0, "value": 18446744073709551616, "op": "SCMP_CMP_EQ"}]}]}', /^syscalls\[0\]\.args\[0\]\.value: must be from 0 to 18446744073709551615/],
    ['a fractional value', '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_KILL", "args": [{"index": 0, "value": 1.5, "op": "SCMP_CMP_EQ"}]}]}', /^syscalls\[0\]\.args\[0\]\.value: must be a whole number/],
    ['errnoRet with SCMP_ACT_ALLOW', '{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]}', /^syscalls\[0\]\.errnoRet: is only allowed with SCMP_ACT_ERRNO or SCMP_ACT_TRACE/],
    ['an errno past 4095', '{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 4096}', /^defaultErrnoRet: must be from 0 to 4095/],
    ['architectures and archMap', '{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}', /^'architectures' and 'archMap' are both given/],
    ['an unknown architecture', '{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}', /^architectures\[0\]: unknown architecture "SCMP_ARCH_Z80"/],
    ['filter flags', '{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"]}', /^flags: seccomp filter flags are not supported/],
    ['a listener', '{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}', /^listenerPath: a seccomp notify listener is not supported/],
    ['a bad minKernel', '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_KILL", "includes": {"minKernel": "five"}}]}', /^syscalls\[0\]\.includes\.minKernel: must be a kernel version like "5.8"/],
  ])('refuses %s, naming the field', (_case, source, message) => {
    expect(() => parseSeccompProfile(source, amd64)).toThrow(message);
  });

  it('checks a rule in full even when includes/excludes leave it out', () => {
    expect(() => parse({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mount'], action: 'SCMP_ACT_NOPE', includes: { caps: ['CAP_SYS_ADMIN'] } }] })).toThrow(/syscalls\[0\]\.action: unknown action/);
  });
});

describe('SeccompFilter.compile', () => {
  it('compiles the fixture for this architecture, skipping the names it does not know', () => {
    const filter = SeccompFilter.compile(parseSeccompProfile(fixture));
    expect(filter.unknownNames).toEqual(expect.arrayContaining(['chown32', 'fstat64', '_llseek', 'socketcall']));
    expect(filter.unknownNames).not.toContain('read');
    expect(filter.instructionCount).toBeGreaterThan(200);
    expect(filter.instructionCount).toBeLessThanOrEqual(4096);
  });

  it('checks the rules again before native code sees them', () => {
    const spec = { defaultAction: { action: 'SCMP_ACT_ALLOW' }, rules: [{ names: ['uname'], action: 'SCMP_ACT_ERRNO', errno: 1, args: [{ index: 0, op: 'SCMP_CMP_EQ', value: 1, valueTwo: 0n }] }] };
    expect(() => SeccompFilter.compile(spec as unknown as SeccompFilterSpec)).toThrow(/rules\[0\]\.args\[0\]\.value must be a bigint/);
  });

  it.each([
    ['an unknown action', { defaultAction: 'SCMP_ACT_SOMETIMES', defaultErrno: 0, rules: [] }, /profile\.defaultAction must be one of SCMP_ACT_ALLOW/],
    ['an errno past 4095', { defaultAction: 'SCMP_ACT_ERRNO', defaultErrno: 5000, rules: [] }, /profile\.defaultErrno must be a whole number from 0 to 4095/],
    ['a negative value', { defaultAction: 'SCMP_ACT_ALLOW', defaultErrno: 0, rules: [{ names: ['uname'], action: 'SCMP_ACT_KILL', errno: 0, args: [{ index: 0, op: 'SCMP_CMP_EQ', value: -1n, valueTwo: 0n }] }] }, /args\[0\]\.value must be from 0 to 2\^64-1/],
    ['an index repeated', { defaultAction: 'SCMP_ACT_ALLOW', defaultErrno: 0, rules: [{ names: ['uname'], action: 'SCMP_ACT_KILL', errno: 0, args: [0, 0].map((index) => ({ index, op: 'SCMP_CMP_EQ', value: 1n, valueTwo: 0n })) }] }, /args\[1\]\.index repeats an argument/],
    ['an unknown operator', { defaultAction: 'SCMP_ACT_ALLOW', defaultErrno: 0, rules: [{ names: ['uname'], action: 'SCMP_ACT_KILL', errno: 0, args: [{ index: 0, op: 'SCMP_CMP_NEAR', value: 1n, valueTwo: 0n }] }] }, /args\[0\]\.op must be one of SCMP_CMP_NE/],
  ])('native code checks the rules again: refuses %s', (_case, profile, message) => {
    expect(() => loadNativeBinding().compileSeccompProfile(profile)).toThrow(message);
  });

  it('refuses a profile too long for the kernel with code, errno and syscall', () => {
    // 5000 comparisons of one argument (about one instruction each): past the kernel's 4096.
    const rules = Array.from({ length: 5000 }, (_, value) => ({ names: ['ioctl'], action: 'SCMP_ACT_ALLOW', errno: 0, args: [{ index: 1, op: 'SCMP_CMP_EQ', value: BigInt(value), valueTwo: 0n }] }));
    let caught: unknown;
    try {
      loadNativeBinding().compileSeccompProfile({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrno: 1, rules });
    } catch (error) {
      caught = error;
    }
    expect(caught).toMatchObject({ syscall: 'seccomp', code: 'E2BIG', errno: -7, message: expect.stringMatching(/the kernel takes at most 4096/) as unknown });
  });
});

describe('SeccompProfileStore', () => {
  let directory: string;
  let compilations: number;
  let store: SeccompProfileStore;
  const denyUname = JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['uname'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }] });

  beforeEach(() => {
    directory = mkdtempSync(path.join(tmpdir(), 'parafork-seccomp-'));
    compilations = 0;
    store = new SeccompProfileStore({
      directory,
      compile: (spec) => {
        compilations++;
        return SeccompFilter.compile(spec);
      },
    });
  });
  afterEach(() => rmSync(directory, { recursive: true, force: true }));

  async function refusal(profile: string): Promise<SeccompProfileUnavailable> {
    const error = await store.load(profile).then(() => undefined, (caught: unknown) => caught);
    expect(error).toBeInstanceOf(SeccompProfileUnavailable);
    return error as SeccompProfileUnavailable;
  }

  it.each(['../etc/profile.json', 'profiles/../../x.json', '/etc/profile.json', ''])('refuses the path %j as InvalidSpec', async (profile) => {
    const error = await refusal(profile);
    expect(error.reason).toBe('InvalidSpec');
    expect(error.message).toMatch(/localhostProfile (must be a relative path without '\.\.'|is required)/);
  });

  it('fails a missing file as SandboxUnavailable, naming the file and the flag', async () => {
    const error = await refusal('missing.json');
    expect(error.reason).toBe('SandboxUnavailable');
    expect(error.message).toBe(`seccomp profile "missing.json" (${directory}/missing.json) does not exist on this node (profiles are read from the agent's --seccomp-profile-dir ${directory})`);
  });

  it('fails an invalid profile as SandboxUnavailable, naming the field', async () => {
    writeFileSync(path.join(directory, 'bad.json'), '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_KILL", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ROUGHLY"}]}]}');
    const error = await refusal('bad.json');
    expect(error.reason).toBe('SandboxUnavailable');
    expect(error.message).toMatch(/^seccomp profile "bad.json" \(.*\) is invalid: syscalls\[0\]\.args\[0\]\.op: unknown operator "SCMP_CMP_ROUGHLY"/);
  });

  it('refuses a profile others could rewrite', async () => {
    const file = path.join(directory, 'loose.json');
    writeFileSync(file, denyUname);
    chmodSync(file, 0o666);
    const error = await refusal('loose.json');
    expect(error).toMatchObject({ reason: 'SandboxUnavailable', message: expect.stringContaining('writable by its owner only') as unknown });
  });

  it('refuses a directory as the profile', async () => {
    const error = await refusal('.');
    expect(error.message).toMatch(/must name a file below the profile directory|is not a regular file/);
  });

  it('compiles a profile once, and again only when its file changes', async () => {
    const file = path.join(directory, 'deny-uname.json');
    writeFileSync(file, denyUname);
    const first = await store.load('deny-uname.json');
    expect(await store.load('deny-uname.json')).toBe(first);
    expect(await store.load('./deny-uname.json')).toBe(first);
    expect(compilations).toBe(1);
    writeFileSync(file, denyUname.replace('38', '13'));
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    const second = await store.load('deny-uname.json');
    expect(second).not.toBe(first);
    expect(compilations).toBe(2);
  });

  it("says in its 'seccomp profile compiled' line where the child attaches the profile", async () => {
    const lines: { fields: Record<string, unknown>; message: string }[] = [];
    const logged = new SeccompProfileStore({ directory, logger: { info: (fields: Record<string, unknown>, message: string) => lines.push({ fields, message }) } as never });
    writeFileSync(path.join(directory, 'deny-uname.json'), denyUname);
    writeFileSync(path.join(directory, 'deny-capset.json'), denyUname.replace('uname', 'capset'));
    expect((await logged.load('deny-uname.json')).attachPoint).toBe('privileged');
    expect((await logged.load('deny-capset.json')).attachPoint).toBe('last');
    expect(lines.map(({ fields }) => fields.attachPoint)).toEqual(['privileged', 'last']);
    expect(lines[0]!.message).toMatch(/attached while the child still holds CAP_SYS_ADMIN: a full net\.core\.bpf_jit_limit does not stop its Tasks/);
    expect(lines[1]!.message).toMatch(/attached last, as the Task's user: .* a full net\.core\.bpf_jit_limit fails its Tasks/);
  });

  it('shares one compiled filter between files with the same content', async () => {
    writeFileSync(path.join(directory, 'a.json'), denyUname);
    writeFileSync(path.join(directory, 'b.json'), denyUname);
    expect(await store.load('b.json')).toBe(await store.load('a.json'));
    expect(compilations).toBe(1);
  });
});

// Where the child attaches a compiled filter (native/src/seccomp_attach_point.h): while it still
// holds CAP_SYS_ADMIN only if the program allows (SCMP_ACT_ALLOW) every call the child makes after
// that point, for every value of the arguments that vary from spawn to spawn.
describe('SeccompFilter.attachPoint', () => {
  const allowAll = { action: 'SCMP_ACT_ALLOW' } as const;
  const allowAllBut = (...rules: SeccompFilterSpec['rules']): SeccompFilterSpec => ({ defaultAction: allowAll, rules });

  it("is 'privileged' for an allow-all profile (Kubernetes' default for unconfined-like profiles)", () => {
    expect(SeccompFilter.compile(allowAllBut()).attachPoint).toBe('privileged');
  });

  it("is 'privilegedUnlessEmptyingUserKeyrings' for the allow-list fixture, which lists the child's calls but not keyctl", () => {
    expect(SeccompFilter.compile(parseSeccompProfile(fixture, amd64)).attachPoint).toBe('privilegedUnlessEmptyingUserKeyrings');
  });

  it("is 'privileged' for the fixture with keyctl allowed too", () => {
    const spec = parseSeccompProfile(fixture, amd64);
    const withKeyctl = { ...spec, rules: [...spec.rules, { names: ['keyctl'], action: 'SCMP_ACT_ALLOW' as const, args: [] }] };
    expect(SeccompFilter.compile(withKeyctl).attachPoint).toBe('privileged');
  });

  it.each(['SCMP_ACT_ERRNO', 'SCMP_ACT_LOG', 'SCMP_ACT_TRACE', 'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_TRAP'] as const)(
    "is 'last' when %s answers any one of the child's calls after the attach point",
    (action) => {
      const calls = ['setgroups', 'setresgid', 'setresuid', 'capset', 'chdir', 'getcwd', 'close_range', 'fcntl', 'dup3', 'rt_sigprocmask', 'faccessat', 'statx', 'execveat', 'exit_group'];
      for (const name of calls) {
        expect([name, SeccompFilter.compile(allowAllBut({ names: [name], action, args: [] })).attachPoint]).toEqual([name, 'last']);
      }
    },
  );

  it("is 'last' when the answer depends on an argument that varies from spawn to spawn (setresuid's uid)", () => {
    const refusesOneUid = allowAllBut({ names: ['setresuid'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, op: 'SCMP_CMP_EQ', value: 12345n, valueTwo: 0n }] });
    expect(SeccompFilter.compile(refusesOneUid).attachPoint).toBe('last');
  });

  it("stays 'privileged' when a rule on an argument the child passes as a constant does not match it (close_range's flags)", () => {
    const closeRangeUnshare = 2n;
    const refusesUnshare = allowAllBut({ names: ['close_range'], action: 'SCMP_ACT_ERRNO', args: [{ index: 2, op: 'SCMP_CMP_MASKED_EQ', value: closeRangeUnshare, valueTwo: closeRangeUnshare }] });
    expect(SeccompFilter.compile(refusesUnshare).attachPoint).toBe('privileged');
  });

  it("is 'privilegedUnlessEmptyingUserKeyrings' when only keyctl is refused or logged", () => {
    expect(SeccompFilter.compile(allowAllBut({ names: ['keyctl'], action: 'SCMP_ACT_LOG', args: [] })).attachPoint).toBe('privilegedUnlessEmptyingUserKeyrings');
  });
});
