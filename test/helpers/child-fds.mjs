// Started by test/native/launcher-lifecycle.test.ts with extra inherited fds (3 and 4, not
// close-on-exec). Launches `ls /proc/self/fd` many times at once through the built Launcher, with
// pipes being created on other spawn threads meanwhile, and prints each child's fd list as JSON.
import { Launcher } from '../../dist/index.js';

const [lockMode, clonePath, countText] = process.argv.slice(2);
const launcher = new Launcher({ lockMode, clonePath, threads: 4 });
const listings = await Promise.all(
  Array.from({ length: Number(countText) }, async () => {
    const child = await launcher.spawn({ file: '/bin/ls', args: ['/proc/self/fd'], stdout: 'pipe', stderr: 'pipe' });
    let text = '';
    for await (const chunk of child.stdout) text += chunk;
    await child.exited;
    return text.split('\n').filter(Boolean).map(Number).sort((a, b) => a - b).join(',');
  }),
);
await launcher.close();
process.stdout.write(JSON.stringify([...new Set(listings)]));
