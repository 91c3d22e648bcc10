// Mints access tokens for `cargo xtask bench` with the OpenID provider's own private keys,
// as many as a load test needs (the provider's token endpoint is far too slow for that).
//
//   node mint.mjs KEYS_FILE TEMPLATE_TOKEN COUNT OUT_FILE
//
// Every token copies the header and claims of TEMPLATE_TOKEN (one the provider issued),
// with a fresh `jti` and an hour to live from now (a long run must not see them expire),
// and is signed with the key its `kid` names in KEYS_FILE (the provider's private JWK
// set). One token per line in OUT_FILE. Signs on every core.
import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const ALGORITHMS = { RS256: {}, ES256: { dsaEncoding: 'ieee-p1363' } };

function mint({ jwk, header, claims, count }) {
  const key = createPrivateKey({ key: jwk, format: 'jwk' });
  const options = ALGORITHMS[header.alg];
  const encodedHeader = Buffer.from(JSON.stringify(header)).toString('base64url');
  const tokens = [];
  for (let i = 0; i < count; i += 1) {
    const payload = Buffer.from(JSON.stringify({ ...claims, jti: randomUUID() })).toString('base64url');
    const input = `${encodedHeader}.${payload}`;
    const signature = sign('sha256', Buffer.from(input), { key, ...options });
    tokens.push(`${input}.${signature.toString('base64url')}`);
  }
  return tokens;
}

if (isMainThread) {
  const [keysFile, template, count, out] = process.argv.slice(2);
  const [header, issued] = template.split('.').slice(0, 2)
    .map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()));
  const now = Math.floor(Date.now() / 1000);
  const claims = { ...issued, iat: now, exp: now + 3600 };
  if (!ALGORITHMS[header.alg]) throw new Error(`cannot mint ${header.alg} tokens`);
  const jwk = JSON.parse(readFileSync(keysFile, 'utf8')).keys.find((k) => k.kid === header.kid);
  if (!jwk) throw new Error(`no private key ${header.kid} in ${keysFile}`);
  const total = Number(count);
  const threads = Math.min(availableParallelism(), Math.max(1, Math.ceil(total / 1000)));
  const shares = Array.from({ length: threads }, (_, i) => Math.floor((total + i) / threads));
  const parts = await Promise.all(shares.map((share) => new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), {
      workerData: { jwk, header, claims, count: share },
    });
    worker.once('message', resolve);
    worker.once('error', reject);
  })));
  // In slices: a million tokens joined at once would pass V8's longest string.
  const fd = openSync(out, 'w');
  for (const part of parts) {
    for (let at = 0; at < part.length; at += 10_000) {
      writeSync(fd, `${part.slice(at, at + 10_000).join('\n')}\n`);
    }
  }
  closeSync(fd);
} else {
  parentPort.postMessage(mint(workerData));
}
