/**
 * Starts the stand-ins for a demo: Pinata (API and gateway), Render, and the Kubo RPC stand-in when
 * test/support/standins/kubo.ts provides one. Prints their URLs and the environment to point pawledger at them,
 * then runs until Ctrl-C.
 *
 *   node --import tsx test/support/standins/run.ts [--pinata-port N] [--gateway-port N] [--render-port N]
 *
 * Ports default to 7601 (Pinata API), 7602 (gateway), 7603 (Render); 0 picks free ones.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startPinataStandin } from './pinata.js';
import { startRenderStandin } from './render.js';

const { values } = parseArgs({
  options: {
    'pinata-port': { type: 'string', default: '7601' },
    'gateway-port': { type: 'string', default: '7602' },
    'render-port': { type: 'string', default: '7603' },
  },
});

const port = (name: keyof typeof values): number => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--${name} must be a port number`);
  return n;
};

const creds = { apiKey: 'demo-pinata-key', secretKey: 'demo-pinata-secret', jwt: 'demo.pinata.jwt' };
const render = { apiKey: 'rnd_demo_key', serviceId: 'srv-demo0000000000000000' };

const pinata = await startPinataStandin({ ...creds, port: port('pinata-port'), gatewayPort: port('gateway-port') });
const renderStandin = await startRenderStandin({ ...render, port: port('render-port') });
const closers: Array<() => Promise<void>> = [() => pinata.close(), () => renderStandin.close()];

const env: Record<string, string> = {
  PINATA_API_URL: pinata.url,
  PINATA_GATEWAY_URL: pinata.gatewayUrl,
  PINATA_API_KEY: creds.apiKey,
  PINATA_SECRET_KEY: creds.secretKey,
  RENDER_API_URL: renderStandin.url,
  RENDER_API_KEY: render.apiKey,
  RENDER_SERVICE_ID: render.serviceId,
};

const kuboPath = fileURLToPath(new URL('./kubo.ts', import.meta.url));
if (existsSync(kuboPath)) {
  const spec = './kubo.js'; // a variable, so this file compiles before kubo.ts exists
  const mod = (await import(spec)) as { startKuboStandin?: () => Promise<{ url: string; close(): Promise<void> }> };
  if (typeof mod.startKuboStandin === 'function') {
    const kubo = await mod.startKuboStandin();
    closers.push(() => kubo.close());
    env.IPFS_API_URL = kubo.url;
  }
}

console.log(`Pinata API      ${pinata.url}`);
console.log(`Pinata gateway  ${pinata.gatewayUrl}`);
console.log(`Render API      ${renderStandin.url}`);
if (env.IPFS_API_URL) console.log(`Kubo RPC        ${env.IPFS_API_URL}`);
console.log('\nEnvironment (stand-in credentials only; PINATA_JWT=demo.pinata.jwt also works):');
for (const [k, v] of Object.entries(env)) console.log(`export ${k}=${v}`);
console.log('\nCtrl-C stops them.');

const stop = async (): Promise<void> => {
  await Promise.allSettled(closers.map((c) => c()));
  process.exit(0);
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
