/** The optional admin listener: /healthz (200 only while listening with a loaded config) and /metrics. */
import { createServer, type Server } from 'node:http';
/** Anything that renders Prometheus text: one server's metrics, or a cluster's aggregate. */
export interface MetricsSource {
  text(): Promise<string>;
  readonly contentType: string;
}

export interface AdminOptions {
  host: string;
  port: number;
  metrics: MetricsSource;
  healthy: () => boolean;
}

export async function startAdmin(o: AdminOptions): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (url === '/healthz') {
      const ok = o.healthy();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'not ready\n');
      return;
    }
    if (url === '/metrics') {
      o.metrics.text().then(
        (body) => res.writeHead(200, { 'content-type': o.metrics.contentType }).end(body),
        () => res.writeHead(500).end(),
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /healthz or /metrics\n');
  });
  server.on('clientError', (_e, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : o.port,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
