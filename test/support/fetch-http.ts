/**
 * A real HTTP server on 127.0.0.1 for fetch tests: routes are handlers, and
 * every request is recorded (method, path, headers, status, body bytes sent)
 * so tests can assert what went over the wire.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  status?: number;
  bodyBytes: number;
}

/** Handles the n-th request (1-based) to its path. */
export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void | Promise<void>;

export class TestServer {
  readonly requests: RecordedRequest[] = [];
  private readonly routes = new Map<string, Handler>();
  private readonly counts = new Map<string, number>();

  private constructor(private readonly server: http.Server) {}

  static async start(): Promise<TestServer> {
    const server = http.createServer();
    const test = new TestServer(server);
    server.on('request', (req, res) => test.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return test;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  route(path: string, handler: Handler): void {
    this.routes.set(path, handler);
    this.counts.set(path, 0);
  }

  requestsTo(path: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0] as string;
    const record: RecordedRequest = { method: req.method ?? '', path, headers: req.headers, bodyBytes: 0 };
    this.requests.push(record);
    const write = res.write.bind(res) as (...args: unknown[]) => boolean;
    const end = res.end.bind(res) as (...args: unknown[]) => http.ServerResponse;
    const count = (chunk: unknown): void => {
      if (typeof chunk === 'string' || Buffer.isBuffer(chunk)) record.bodyBytes += Buffer.byteLength(chunk);
    };
    res.write = ((chunk: unknown, ...rest: unknown[]) => {
      count(chunk);
      return write(chunk, ...rest);
    }) as typeof res.write;
    res.end = ((chunk?: unknown, ...rest: unknown[]) => {
      if (typeof chunk !== 'function') count(chunk);
      return end(chunk, ...rest);
    }) as typeof res.end;
    res.on('finish', () => {
      record.status = res.statusCode;
    });
    const handler = this.routes.get(path);
    if (!handler) {
      res.statusCode = 404;
      res.end('not found\n');
      return;
    }
    const n = (this.counts.get(path) ?? 0) + 1;
    this.counts.set(path, n);
    void Promise.resolve(handler(req, res, n)).catch((error: unknown) => {
      res.destroy(error as Error);
    });
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export interface StaticFile {
  body: Buffer;
  etag?: string;
  lastModified?: string;
}

/**
 * Serves `file()` (read at each request, so a test can change it) with its
 * validators, answering 304 to a matching If-None-Match or If-Modified-Since.
 */
export function staticFile(file: () => StaticFile): Handler {
  return (req, res) => {
    const f = file();
    const inm = req.headers['if-none-match'];
    const ims = req.headers['if-modified-since'];
    const fresh = inm !== undefined ? f.etag !== undefined && inm === f.etag : ims !== undefined && f.lastModified !== undefined && ims === f.lastModified;
    if (f.etag) res.setHeader('ETag', f.etag);
    if (f.lastModified) res.setHeader('Last-Modified', f.lastModified);
    if (fresh) {
      res.statusCode = 304;
      res.end();
      return;
    }
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Content-Length', f.body.length);
    res.end(f.body);
  };
}

/** A port on 127.0.0.1 with nothing listening on it. */
export async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
