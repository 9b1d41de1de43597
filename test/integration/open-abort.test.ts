/**
 * Opening a source that times out is aborted, not left running: the stage step's S3 GET of an
 * object, against a loopback server that accepts the request and never answers, is cancelled
 * when `read.limits.maxSeconds` runs out — the server sees its connection closed — and the error
 * names the file and the limit.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSource } from '../../functions/read/open.ts';
import { objectSource } from '../../functions/stage/stage-object.ts';

let server: Server;
let s3: S3Client;
/** Each request the server got: when its connection closed, if it did. */
const requests: { url: string; closedAt?: number }[] = [];

beforeAll(async () => {
  // accepts every request, reads it, and never answers
  server = createServer((req: IncomingMessage) => {
    const seen: { url: string; closedAt?: number } = { url: req.url ?? '' };
    requests.push(seen);
    req.socket.on('close', () => (seen.closedAt = performance.now()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  s3 = new S3Client({ endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
});
afterAll(async () => {
  s3?.destroy();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
});

describe('opening an object that never answers', () => {
  it('fails at the time limit, naming the file, and cancels the request (its connection is closed)', async () => {
    const ref = { bucket: 'landing', key: 'incoming/city/d/never.csv', versionId: 'v1' };
    const started = performance.now();
    const error = await openSource(objectSource(s3, ref), { limits: { maxSeconds: 1 } }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    const failedAt = performance.now();

    expect(error?.message).toBe('incoming/city/d/never.csv: opening it took more than 1 s (reading its first bytes and rows), beyond the limit of 1 (read.limits.maxSeconds): refused');
    expect(failedAt - started).toBeLessThan(3000);
    expect(requests.map((r) => r.url)).toEqual(['/landing/incoming/city/d/never.csv?versionId=v1&x-id=GetObject']);
    // the request is aborted with the timeout, not left waiting for an answer that never comes
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(requests[0]!.closedAt, 'the connection of the timed-out GET is still open').toBeDefined();
    expect(requests[0]!.closedAt! - failedAt).toBeLessThan(500);
  });
});
