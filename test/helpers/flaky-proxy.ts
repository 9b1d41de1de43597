/**
 * A server that misbehaves on purpose, in front of a real one (the test API, the Ed-Fi stand-in):
 * the next requests to a path get the failures a test plans — a status (503, 429 with
 * `Retry-After`) or a connection dropped before any answer — and every other request is passed
 * on to the server behind, its answer sent back as it came. So one plan of failures can be aimed
 * at any fetcher.
 */
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One planned failure: an answer with this status (and headers), or `drop`: the connection closed before any answer. */
export type Failure = { status: number; headers?: Record<string, string> } | 'drop';

export interface FlakyProxy {
  /** `http://127.0.0.1:<port>` */
  base: string;
  /** The next requests whose path is `path` (query ignored) get these failures, one each; `always` repeats the last one for good. */
  plan(path: string, failures: Failure[], options?: { always?: boolean }): void;
  /** What each request to `path` got: a status, or `drop`. */
  seen(path: string): (number | 'drop')[];
  close(): Promise<void>;
}

export async function startFlakyProxy(target: string): Promise<FlakyProxy> {
  const behind = new URL(target);
  const plans = new Map<string, { failures: Failure[]; always: boolean }>();
  const seen = new Map<string, (number | 'drop')[]>();
  const server = createServer((req, res) => {
    const path = new URL(req.url!, 'http://127.0.0.1').pathname;
    const log = seen.get(path) ?? [];
    seen.set(path, log);
    const plan = plans.get(path);
    const failure = plan && (plan.failures.length > 1 || !plan.always ? plan.failures.shift() : plan.failures[0]);
    if (failure === 'drop') {
      log.push('drop');
      req.socket.destroy();
      return;
    }
    if (failure) {
      log.push(failure.status);
      res.writeHead(failure.status, { 'content-type': 'text/plain', ...failure.headers }).end(`planned failure ${failure.status}`);
      return;
    }
    const onward = httpRequest({ host: behind.hostname, port: behind.port, method: req.method, path: req.url, headers: { ...req.headers, host: behind.host } }, (answer) => {
      log.push(answer.statusCode!);
      res.writeHead(answer.statusCode!, answer.statusMessage, answer.headers);
      answer.pipe(res);
    });
    onward.on('error', (error) => res.writeHead(502).end(error.message));
    req.pipe(onward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    plan: (path, failures, options = {}) => void plans.set(path, { failures: [...failures], always: options.always ?? false }),
    seen: (path) => seen.get(path) ?? [],
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
