import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as the test API saw it. */
export interface ApiRequest {
  method: string;
  url: URL;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** What a route answers: JSON (`json`) or raw text (`text`), with a status and headers. */
export interface ApiAnswer {
  status?: number;
  headers?: Record<string, string>;
  json?: unknown;
  text?: string | Buffer;
}

export type Route = (req: ApiRequest) => ApiAnswer | Promise<ApiAnswer>;

export interface ApiServer {
  /** `http://127.0.0.1:<port>` */
  base: string;
  /** Every request, in order. */
  requests: ApiRequest[];
  /** Answer requests whose path is `path` (query ignored) with `route`; replaces an earlier route. */
  route(path: string, route: Route): void;
  close(): Promise<void>;
}

/** A JSON API on loopback (random port) whose routes each test declares. Unknown paths answer 404. */
export async function startApiServer(): Promise<ApiServer> {
  const routes = new Map<string, Route>();
  const requests: ApiRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const request: ApiRequest = { method: req.method!, url: new URL(req.url!, 'http://127.0.0.1'), headers: req.headers, body: Buffer.concat(chunks).toString() };
      requests.push(request);
      const route = routes.get(request.url.pathname);
      Promise.resolve(route ? route(request) : { status: 404, json: { error: 'not found' } })
        .then((answer) => {
          const json = answer.json !== undefined;
          res.writeHead(answer.status ?? 200, { ...(json ? { 'content-type': 'application/json' } : {}), ...answer.headers });
          res.end(json ? JSON.stringify(answer.json) : (answer.text ?? ''));
        })
        .catch((error: Error) => res.writeHead(599).end(error.message));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    requests,
    route: (path, route) => void routes.set(path, route),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** `n` records `{id, name, updated_at}` starting at id `from`, updated one minute apart from `since`. */
export function makeRecords(from: number, n: number, since = '2026-11-01T00:00:00Z'): { id: number; name: string; updated_at: string }[] {
  const start = Date.parse(since);
  return Array.from({ length: n }, (_, i) => ({ id: from + i, name: `item ${from + i}`, updated_at: new Date(start + (from + i) * 60_000).toISOString() }));
}
