// The masked-path lists (src/launcher/sandbox-options.ts) as a library user and the agent give
// them: what is checked, what a spawn request carries, and what the agent always adds
// (src/config/agent-config.ts). test/security/sandbox-masked-paths.test.ts runs them for real.
import { describe, expect, it } from 'vitest';

import { agentMaskedPaths, ConfigError, parseAgentConfig } from '../../src/config/agent-config.js';
import { checkMaskedPaths, defaultMaskedPaths, toNativeSandbox } from '../../src/launcher/sandbox-options.js';
import { InvalidSpawnOptionError } from '../../src/launcher/spawn-error.js';

describe('masked paths', () => {
  it('the default list masks runc s /proc paths, the kernel command line and the node s secrets', () => {
    for (const path of ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/cmdline', '/root', '/home', '/run', '/var/run', '/etc/hostname', '/etc/shadow', '/var/lib/kubelet', '/etc/kubernetes', '/var/run/secrets', '/run/secrets']) {
      expect(defaultMaskedPaths).toContain(path);
    }
    expect(Object.isFrozen(defaultMaskedPaths)).toBe(true);
  });

  it('a spawn carries the default list, one path per line, unless it gives its own', () => {
    expect(toNativeSandbox({}, undefined).maskedPaths).toBe(defaultMaskedPaths.join('\n'));
    expect(toNativeSandbox({ maskedPaths: ['/srv/secret'] }, undefined).maskedPaths).toBe('/srv/secret');
    expect(toNativeSandbox({ maskedPaths: [] }, undefined).maskedPaths).toBe('');
  });

  it.each([
    ['a relative path', 'etc/shadow'],
    ['the whole root', '/'],
    ['a trailing slash', '/root/'],
    ['a .. component', '/etc/../root'],
    ['an empty component', '/etc//shadow'],
    ['a newline', '/etc/sha\ndow'],
    ['/proc itself', '/proc'],
    ['a path under /tmp (each task s own)', '/tmp/x'],
    ['a path under /dev', '/dev/null'],
  ])('refuses %s', (_name, path) => {
    expect(() => checkMaskedPaths([path], 'maskedPaths')).toThrow(InvalidSpawnOptionError);
    expect(() => toNativeSandbox({ maskedPaths: [path] }, undefined)).toThrow(/sandbox\.maskedPaths\[0\]/);
  });

  it('refuses a mount inside a masked directory, naming both, and allows one on a masked path itself', () => {
    expect(() => toNativeSandbox({ mounts: [{ hostPath: '/srv', mountPath: '/run/data' }] }, undefined)).toThrow(/mounts\[0\]\.mountPath must not lie inside a masked path: \/run\/data is inside \/run /);
    expect(toNativeSandbox({ mounts: [{ hostPath: '/srv', mountPath: '/home' }] }, undefined).mounts).toHaveLength(1);
    expect(toNativeSandbox({ mounts: [{ hostPath: '/srv', mountPath: '/run/data' }], maskedPaths: [] }, undefined).mounts).toHaveLength(1);
  });

  describe('the agent s list', () => {
    const own = { stateDirectory: '/var/lib/parafork', stagingDirectory: '/var/lib/parafork/root', environment: { HOME: '/home/agent' } };

    it("expands 'default' and adds the agent s state, staging and manifest directories, kubeconfig files and ~/.kube", () => {
      const paths = agentMaskedPaths('default,/srv/secrets', { ...own, manifestDirectory: '/srv/tasks', kubeconfig: '/etc/agent.kubeconfig', environment: { HOME: '/home/agent', KUBECONFIG: '/opt/a.yaml:/opt/b.yaml' } });
      expect(paths).toEqual(expect.arrayContaining([...defaultMaskedPaths, '/srv/secrets', '/var/lib/parafork', '/var/lib/parafork/root', '/srv/tasks', '/etc/agent.kubeconfig', '/opt/a.yaml', '/opt/b.yaml', '/home/agent/.kube']));
      // The kubeconfig's folder (here /etc) is not masked: only the file.
      expect(paths).not.toContain('/etc');
    });

    it('replaces the default list when it is not named, but always keeps the agent s own', () => {
      expect(agentMaskedPaths('/root', own)).toEqual(['/root', '/var/lib/parafork', '/var/lib/parafork/root', '/home/agent/.kube']);
      expect(agentMaskedPaths('', own)).toEqual(['/var/lib/parafork', '/var/lib/parafork/root', '/home/agent/.kube']);
    });

    it('leaves out its own paths under /tmp, which a task never sees (it has its own /tmp)', () => {
      expect(agentMaskedPaths('', { stateDirectory: '/tmp/state', stagingDirectory: '/tmp/state/root', environment: {} })).not.toContain('/tmp/state');
    });

    it('refuses a bad path in the flag with a ConfigError naming the flag', () => {
      expect(() => agentMaskedPaths('default,relative/path', own)).toThrow(ConfigError);
      expect(() => agentMaskedPaths('default,relative/path', own)).toThrow(/--sandbox-masked-paths/);
    });

    it('--sandbox-masked-paths reaches the config', () => {
      const config = parseAgentConfig(['--node-name', 'node-a', '--sandbox-masked-paths', 'default,/srv/secrets', '--state-dir', '/var/lib/parafork'], { HOME: '/root' });
      expect(config.sandboxMaskedPaths).toEqual(expect.arrayContaining(['/srv/secrets', '/var/lib/parafork', '/run/parafork/root', '/proc/kcore']));
    });
  });
});

describe('masked paths follow the host paths a task brings in', () => {
  it('refuses a hostPath or rootfs that is a masked path or lies inside one', () => {
    expect(() => toNativeSandbox({ mounts: [{ hostPath: '/var/run/secrets/kubernetes.io/serviceaccount', mountPath: '/mnt' }] }, undefined)).toThrow(
      /mounts\[0\]\.hostPath must not be a masked path or lie inside one: \/var\/run\/secrets\/kubernetes\.io\/serviceaccount is inside the masked path \/(var\/)?run/,
    );
    expect(() => toNativeSandbox({ mounts: [{ hostPath: '/etc/shadow', mountPath: '/mnt/shadow' }] }, undefined)).toThrow(/is the masked path \/etc\/shadow/);
    expect(() => toNativeSandbox({ rootfs: '/var/lib/kubelet/pods' }, undefined)).toThrow(/rootfs must not be a masked path or lie inside one/);
  });

  it('resolves links first: /proc/self/root is the whole host root', () => {
    expect(() => toNativeSandbox({ mounts: [{ hostPath: '/proc/self/root/etc/shadow', mountPath: '/mnt/x' }] }, undefined)).toThrow(/is the masked path \/etc\/shadow/);
  });

  it('masks a masked path inside a mount where the task sees it', () => {
    const masked = toNativeSandbox({ mounts: [{ hostPath: '/etc', mountPath: '/mnt/etc' }] }, undefined).maskedPaths.split('\n');
    expect(masked).toEqual(expect.arrayContaining(['/mnt/etc/shadow', '/mnt/etc/ssh', '/mnt/etc/hostname', '/etc/shadow']));
    const everything = toNativeSandbox({ mounts: [{ hostPath: '/', mountPath: '/host' }] }, undefined).maskedPaths.split('\n');
    expect(everything).toEqual(expect.arrayContaining(['/host/root', '/host/run', '/host/var/lib/kubelet']));
    expect(everything).not.toContain('/host/proc/kcore'); // each task's /proc is its own
  });

  it('masks the masked paths inside a rootfs where the task sees them', () => {
    const masked = toNativeSandbox({ rootfs: '/var' }, undefined).maskedPaths.split('\n');
    expect(masked).toEqual(expect.arrayContaining(['/lib/kubelet', '/log', '/run']));
  });

  it('takes the host s /proc and /sys only read-only (they are the kernel s knobs)', () => {
    expect(() => toNativeSandbox({ mounts: [{ hostPath: '/proc', mountPath: '/host/proc', readOnly: false }] }, undefined)).toThrow(/mounts\[0\]\.readOnly must be true for a host path in or holding the host's \/proc/);
    // The host's root holds them (as submounts, which a mount brings along).
    expect(() => toNativeSandbox({ mounts: [{ hostPath: '/', mountPath: '/host', readOnly: false }], maskedPaths: [] }, undefined)).toThrow(/holding the host's \/proc/);
    expect(() => toNativeSandbox({ mounts: [{ hostPath: '/sys/kernel', mountPath: '/mnt', readOnly: false }] }, undefined)).toThrow(/holding the host's \/sys/);
    expect(() => toNativeSandbox({ rootfs: '/proc/1/root/sys', readOnlyRootFilesystem: false }, undefined)).toThrow(/readOnlyRootFilesystem must be true/);
    expect(toNativeSandbox({ mounts: [{ hostPath: '/proc', mountPath: '/host/proc' }] }, undefined).mounts[0]?.readOnly).toBe(true);
  });

  it('leaves the usual spawn s list as it is', () => {
    expect(toNativeSandbox({ mounts: [{ hostPath: '/opt', mountPath: '/mnt' }] }, undefined).maskedPaths).toBe(defaultMaskedPaths.join('\n'));
  });
});
