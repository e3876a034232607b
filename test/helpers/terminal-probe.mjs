// Started by test/security/sandbox-terminal.test.ts under a pseudo-terminal that is its
// controlling terminal (util-linux `script`), as `parafork run` is when an operator starts it from
// a shell. Runs one sandboxed and one plain Python payload through the built Launcher; each
// reports its session and controlling terminal and tries to open /dev/tty. Prints one JSON line
// between markers (the pty turns "\n" into "\r\n" and may echo).
import { readFileSync } from 'node:fs';

import { Launcher } from '../../dist/index.js';

const payload = `
import errno, json, os
def stat(pid):
    text = open('/proc/%s/stat' % pid).read()
    fields = text[text.rfind(')') + 2:].split()
    return {'session': int(fields[3]), 'ttyNr': int(fields[4])}
result = {'self': stat('self'), 'sid': os.getsid(0), 'stdioTtys': [os.isatty(fd) for fd in range(3)]}
try:
    os.close(os.open('/dev/tty', os.O_RDWR | os.O_NOCTTY))
    result['devTty'] = 'opened'
except OSError as error:
    result['devTty'] = errno.errorcode[error.errno]
result['terminalDevices'] = [name for name in ('tty', 'console', 'pts', 'ptmx', 'tty0') if os.path.exists('/dev/' + name)]
print(json.dumps(result))
`;

function ownTtyNr() {
  const text = readFileSync('/proc/self/stat', 'utf8');
  return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[4]);
}

async function run(launcher, sandbox) {
  const child = await launcher.spawn({ file: '/usr/bin/python3', args: ['-c', payload], stdout: 'pipe', ...(sandbox ? { sandbox } : {}) });
  let text = '';
  for await (const chunk of child.stdout) text += chunk;
  await child.exited;
  return JSON.parse(text);
}

const launcher = new Launcher({ threads: 2 });
const report = { probe: { ttyNr: ownTtyNr() }, sandboxed: await run(launcher, {}), plain: await run(launcher, undefined) };
await launcher.close();
process.stdout.write(`<<<${JSON.stringify(report)}>>>\n`);
