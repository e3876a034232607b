// Who is at the other end of a TCP connection, for endpoints that have no apiserver to ask (the
// manifest-folder agent's /tasks and /logs): a peer counts as the machine's administrator when it
// comes over loopback and its socket, found in this network namespace's /proc/net/tcp or tcp6
// (proc(5)), belongs to root or to the agent's own user. A peer from another machine, another
// network namespace, or another user of this one is not. The socket tables list each socket's
// local and remote address and its owner's uid; the peer's socket is the one whose local address is
// the connection's remote one and the other way round.
import { readFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { endianness } from 'node:os';

/** True when the connection comes from root or the agent's user on this machine, over loopback. */
export async function isLocalAdministrator(socket: Socket): Promise<boolean> {
  const peer = loopbackAddress(socket.remoteAddress);
  const own = loopbackAddress(socket.localAddress);
  if (peer === undefined || own === undefined || socket.remotePort === undefined || socket.localPort === undefined) return false;
  const uid = await socketOwner({ address: peer, port: socket.remotePort }, { address: own, port: socket.localPort });
  return uid !== undefined && (uid === 0 || uid === process.getuid?.());
}

interface Endpoint {
  /** Four bytes (IPv4) or sixteen (IPv6). */
  readonly address: readonly number[];
  readonly port: number;
}

/** The bytes of a loopback address as Node spells it (127.x.y.z, ::ffff:127.x.y.z, ::1); undefined for any other. */
function loopbackAddress(text: string | undefined): number[] | undefined {
  const v4 = /^(?:::ffff:)?(127)\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/i.exec(text ?? '');
  if (v4 !== null) return v4.slice(1).map(Number);
  return text === '::1' ? [...Array<number>(15).fill(0), 1] : undefined;
}

/** The IPv6 form of an address: IPv4 as ::ffff:a.b.c.d. */
function asIpv6(address: readonly number[]): number[] {
  return address.length === 16 ? [...address] : [...Array<number>(10).fill(0), 0xff, 0xff, ...address];
}

/** An endpoint as /proc/net/tcp* writes it: the address in 32-bit words of host byte order, the port big-endian, in hex. */
function procSpelling(endpoint: Endpoint): string {
  const words: string[] = [];
  for (let start = 0; start < endpoint.address.length; start += 4) {
    const word = endpoint.address.slice(start, start + 4);
    if (endianness() === 'LE') word.reverse();
    words.push(word.map((byte) => byte.toString(16).padStart(2, '0')).join(''));
  }
  return `${words.join('')}:${endpoint.port.toString(16).padStart(4, '0')}`.toUpperCase();
}

/** The uid owning the socket whose local end is `peer` and remote end `own`, or undefined. */
async function socketOwner(peer: Endpoint, own: Endpoint): Promise<number | undefined> {
  const tables: { file: string; peer: Endpoint; own: Endpoint }[] = [
    { file: '/proc/net/tcp6', peer: { ...peer, address: asIpv6(peer.address) }, own: { ...own, address: asIpv6(own.address) } },
  ];
  if (peer.address.length === 4 && own.address.length === 4) tables.unshift({ file: '/proc/net/tcp', peer, own });
  for (const table of tables) {
    const text = await readFile(table.file, 'utf8').catch(() => '');
    const local = procSpelling(table.peer);
    const remote = procSpelling(table.own);
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid ...
      const fields = line.trim().split(/\s+/);
      if (fields[1] === local && fields[2] === remote && fields[7] !== undefined) return Number(fields[7]);
    }
  }
  return undefined;
}
