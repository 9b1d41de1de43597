/**
 * Child process of `bench/fetch.ts`: a paged JSON API on loopback, Ed-Fi-like student records
 * under offset/limit pagination, each page answered `delayMs` after its request arrived
 * (a `setTimeout`: a slow API, not a slow machine). It runs in its own process so that its CPU
 * does not share the event loop of the fetch it serves.
 *
 *   node --import tsx bench/fetch-server.ts <records> <delayMs> <pageSize>
 *
 * Prints one JSON line `{"port": n}` when listening. Routes:
 *   GET /data/v3/ed-fi/students?offset=&limit=   a page (`limit` at most 500, as Ed-Fi)
 *   GET /_stats                                  what was served since the last reset
 *   POST /_reset                                 reset the statistics
 * Pages of `pageSize` are serialized once at start (not timed by anyone): serving a page costs the
 * server a timer and a write, so the figures measure the fetch, not this server.
 */
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
import { mulberry32 } from '../scripts/random.ts';

export const STUDENTS_PATH = '/data/v3/ed-fi/students';
/** Ed-Fi's `limit` is at most 500. */
const MAX_LIMIT = 500;
const FIRST_ID = 600_000;

const FIRST = ['Ana', 'Mateo', 'Olivia', 'Liam', 'Sofia', 'Noah', 'Emma', 'Ethan', 'Ava', 'Lucas', 'Mia', 'Aiden', 'Chloe', 'Jayden', 'Zoe', 'Daniel'];
const LAST = ['Garcia', 'Smith', 'Johnson', 'Nguyen', 'Martinez', 'Brown', 'Lopez', 'Williams', 'Davis', 'Hernandez', 'Wilson', 'Anderson', 'Thomas', 'Moore'];
const CITIES = ['Austin', 'Grand Bend', 'San Antonio', 'Houston', 'El Paso', 'Dallas', 'Lubbock', 'Round Rock'];
const SEX = ['Female', 'Male', 'Not Selected'];

export interface Student {
  id: string;
  studentUniqueId: string;
  firstName: string;
  lastSurname: string;
  birthDate: string;
  birthCity: string;
  birthSexDescriptor: string;
  hispanicLatinoEthnicity: boolean;
  _etag: string;
  _lastModifiedDate: string;
}

/** The student at position `i` (0-based): deterministic, ten fields, about 330 bytes of JSON. */
export function student(i: number): Student {
  const r = mulberry32(i * 7919 + 17);
  const hex = () =>
    Math.floor(r() * 2 ** 32)
      .toString(16)
      .padStart(8, '0');
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  const birth = new Date(Date.UTC(2006, 0, 1) + Math.floor(r() * 12 * 365) * 86_400_000);
  return {
    id: `${hex()}${hex()}${hex()}${hex()}`,
    studentUniqueId: String(FIRST_ID + i),
    firstName: pick(FIRST),
    lastSurname: pick(LAST),
    birthDate: birth.toISOString().slice(0, 10),
    birthCity: pick(CITIES),
    birthSexDescriptor: `uri://ed-fi.org/SexDescriptor#${pick(SEX)}`,
    hispanicLatinoEthnicity: r() < 0.4,
    _etag: `52${String(Math.floor(r() * 1e15)).padStart(17, '0')}`,
    _lastModifiedDate: new Date(Date.UTC(2026, 8, 1) + i * 1000).toISOString(),
  };
}

/** The studentUniqueId of the student at position `i`. */
export const uniqueIdOf = (i: number) => String(FIRST_ID + i);

function page(total: number, offset: number, limit: number): Buffer {
  const out: Student[] = [];
  for (let i = offset; i < Math.min(total, offset + limit); i++) out.push(student(i));
  return Buffer.from(JSON.stringify(out));
}

async function main(): Promise<void> {
  const [total, delayMs, pageSize] = process.argv.slice(2).map(Number) as [number, number, number];
  const cache = new Map<string, Buffer>();
  for (let offset = 0; offset <= total; offset += pageSize) cache.set(`${offset}:${pageSize}`, page(total, offset, pageSize));

  // the connections pages were asked on (keep-alive reuse shows as far fewer connections than requests)
  let sockets = new WeakSet<Socket>();
  let stats = { requests: 0, pages: 0, records: 0, inFlight: 0, maxInFlight: 0, minHoldMs: Infinity, bytes: 0, connections: 0 };
  const server = createServer((req, res) => {
    const arrived = performance.now();
    const url = new URL(req.url!, 'http://127.0.0.1');
    if (url.pathname === '/_stats') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
    if (url.pathname === '/_reset') {
      stats = { requests: 0, pages: 0, records: 0, inFlight: 0, maxInFlight: 0, minHoldMs: Infinity, bytes: 0, connections: 0 };
      sockets = new WeakSet();
      return void res.writeHead(204).end();
    }
    if (url.pathname !== STUDENTS_PATH) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"not found"}');
    const offset = Number(url.searchParams.get('offset') ?? 0);
    const limit = Number(url.searchParams.get('limit') ?? 25);
    if (!Number.isInteger(offset) || offset < 0 || !Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
      return void res.writeHead(400, { 'content-type': 'application/json' }).end('{"message":"bad offset or limit"}');
    }
    stats.requests++;
    if (!sockets.has(req.socket)) {
      sockets.add(req.socket);
      stats.connections++;
    }
    stats.maxInFlight = Math.max(stats.maxInFlight, ++stats.inFlight);
    const body = cache.get(`${offset}:${limit}`) ?? page(total, offset, limit);
    const answer = () => {
      const held = performance.now() - arrived;
      // a timer may fire up to a millisecond early on the loop's cached clock: hold the rest too
      if (held < delayMs) return void setTimeout(answer, Math.max(1, Math.ceil(delayMs - held)));
      stats.inFlight--;
      stats.pages++;
      stats.records += Math.max(0, Math.min(limit, total - offset));
      stats.bytes += body.length;
      stats.minHoldMs = Math.min(stats.minHoldMs, held);
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length }).end(body);
    };
    setTimeout(answer, delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  console.log(JSON.stringify({ port: (server.address() as AddressInfo).port }));
  // the parent ends us by closing our stdin (or by a signal)
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
