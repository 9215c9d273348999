/**
 * The app behind the edge in the ingress benches, run in a container of the node image
 * (test/support/node-image.ts) as `node /app/server.mjs`, with the `ws` package bind-mounted at
 * /app/node_modules/ws. One process, no framework, so the backend is never what limits a run:
 *
 *   GET  /small              a 26-byte text answer (keep-alive)
 *   GET  /download?bytes=N   N bytes streamed with backpressure (a 256 KiB buffer written again and again)
 *   POST /upload             reads the body and answers {"bytes": N}
 *   WebSocket upgrade on any path: held open, messages echoed
 *
 * Prints `listening PORT` once it accepts connections.
 */
import http from 'node:http';
import { WebSocketServer } from 'ws';

const PORT = Number(process.env.PORT ?? 8080);
const SMALL = Buffer.from('hello from the edge bench\n');
const CHUNK = Buffer.alloc(256 * 1024, 0x61);

function download(res, total) {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
  let left = total;
  const pump = () => {
    while (left > 0) {
      const chunk = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
      left -= chunk.length;
      if (!res.write(chunk)) return void res.once('drain', pump);
    }
    res.end();
  };
  pump();
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/small') {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(SMALL.length) });
    return void res.end(SMALL);
  }
  const wanted = /^\/download\?bytes=(\d{1,13})$/.exec(req.url ?? '');
  if (req.method === 'GET' && wanted) return download(res, Number(wanted[1]));
  if (req.method === 'POST' && req.url === '/upload') {
    let bytes = 0;
    req.on('data', (c) => (bytes += c.length));
    req.on('end', () => {
      const body = JSON.stringify({ bytes });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
      res.end(body);
    });
    return;
  }
  res.writeHead(404, { 'content-length': '0' }).end();
});
// Long transfers and idle keep-alive connections are the point here: no server-side deadlines.
server.requestTimeout = 0;
server.headersTimeout = 60_000;
server.keepAliveTimeout = 600_000;

const sockets = new WebSocketServer({ server, perMessageDeflate: false });
sockets.on('connection', (ws) => ws.on('message', (data, binary) => ws.send(data, { binary })));

server.listen(PORT, '0.0.0.0', () => process.stdout.write(`listening ${PORT}\n`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
