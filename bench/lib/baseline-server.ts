/**
 * The HTTP protocol baseline for the ingest benchmark: a bare node:http server that reads the
 * body, parses it as JSON and answers 202 `{"accepted":n,"ingest_id":…}` at once — no framework,
 * no auth, no validation, no durability. Measured with the same load generator on the same cores,
 * it is the most any HTTP ingest endpoint can do here. Prints `listening <port>` when ready.
 */
import http from 'node:http';

const port = Number(process.argv[2] ?? 0);
let seq = 0;
const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    let accepted = 0;
    try {
      const body: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      accepted = Array.isArray(body) ? body.length : 0;
    } catch {
      res.writeHead(400).end();
      return;
    }
    seq += accepted;
    const payload = JSON.stringify({ accepted, ingest_id: `ing_c1_${seq}` });
    res.writeHead(202, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(payload),
    });
    res.end(payload);
  });
});
server.keepAliveTimeout = 72_000;
server.listen(port, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
