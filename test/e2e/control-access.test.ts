/**
 * Who the control channel answers: the server's own user, on its socket of mode 0600 in a data folder of mode 0700.
 * Another user is refused by the CLI (it cannot reach the socket, or finds it someone else's), a socket whose modes
 * were loosened is refused by the CLI and by the server, and a client naming another user's process is refused.
 * Runs as root (CI does), with `setpriv` to be the other user.
 */
import { spawn } from 'node:child_process';
import { chmod, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LedgerStatus } from '../../src/service/ledger.js';
import { cliSandbox, type CliSandbox } from '../support/cli.js';
import { NOBODY, rawRequest, runAs, runCliAs } from '../support/control.js';
import { tempDir } from '../support/pg.js';
import { startServe, type ServeProcess } from '../support/serve-process.js';

const asRoot = process.getuid?.() === 0;
const TOKEN = 'control-access-token-0123456789';

describe.skipIf(!asRoot)('the control channel answers only the server’s own user', () => {
  let root: string;
  let cleanup: () => Promise<void>;
  let cli: CliSandbox;
  let server: ServeProcess;
  let dataDir: string;
  let sock: string;
  const add = (id: string) => ['property', 'add', '--id', id, '--name', 'n', '--address', 'a', '--owner', 'o'];
  const height = async () => ((await (await fetch(`${server.url}/status`)).json()) as LedgerStatus).height;
  const env = () => ({ ...cli.env, LEDGER_DATA_DIR: dataDir });

  beforeAll(async () => {
    ({ dir: root, cleanup } = await tempDir('control-access'));
    // Others may walk to the data folder; what keeps them out is the folder's and the socket's own modes.
    await chmod(root, 0o755);
    cli = cliSandbox(root);
    dataDir = join(root, 'blocks');
    sock = join(dataDir, 'control.sock');
    server = await startServe(root, { ...cli.env, LOG_LEVEL: 'info', LEDGER_DATA_DIR: dataDir, ADMIN_TOKEN: TOKEN });
  }, 60_000);
  afterAll(async () => {
    if (server) expect(await server.stop()).toBe(0);
    await cleanup();
  });

  it('refuses another user, who cannot reach the socket, with a message saying whose it is', async () => {
    const r = await runCliAs(NOBODY, root, env(), add('theirs'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`you (uid ${NOBODY}) may not reach the ledger in ${dataDir}: it belongs to uid 0`);
    expect(r.stderr).toContain('Run the command as the user the server runs as');
    expect(await height()).toBe(0);
  });

  it('refuses a socket whose modes were loosened, in the CLI and in the server, until they are put back', async () => {
    await chmod(sock, 0o666);
    try {
      const mine = cli.run('blocks', add('loose'));
      expect(mine.code).toBe(1);
      expect(mine.stderr).toContain(`refusing the control socket of the ledger in ${dataDir}: ${sock} has mode 0666`);
      // A client that skips the CLI's check is refused by the server itself.
      const raw = await rawRequest(sock, 'POST', '/properties', {
        body: { id: 'raw', name: 'n', address: 'a', owner: 'o' },
      });
      expect(raw.status).toBe(403);
      expect(raw.body.error?.message).toMatch(/the control socket no longer guards access .*mode 0666/);

      // Open to everyone, folder included: the other user reaches it, and both sides still refuse.
      await chmod(dataDir, 0o755);
      const theirs = await runCliAs(NOBODY, root, env(), add('theirs'));
      expect(theirs.code).toBe(1);
      expect(theirs.stderr).toContain(`${sock} is owned by uid 0, not by uid ${NOBODY}`);
      const script = `const r=require('http').request({socketPath:${JSON.stringify(sock)},method:'POST',path:'/properties',headers:{'content-type':'application/json'}},(res)=>{let t='';res.on('data',(c)=>t+=c);res.on('end',()=>console.log(res.statusCode+' '+t))});r.end(JSON.stringify({id:'theirs',name:'n',address:'a',owner:'o'}))`;
      const direct = await runAs(NOBODY, root, {}, ['-e', script]);
      expect(direct.stdout).toMatch(/^403 .*no longer guards access/);
      expect(await height()).toBe(0);
    } finally {
      await chmod(dataDir, 0o700);
      await chmod(sock, 0o600);
    }
    const back = cli.run('blocks', add('mine'));
    expect(back).toMatchObject({ code: 0, stderr: '' });
    expect(await height()).toBe(1);
  });

  it('refuses a client that names another user’s process, and logs who made each change', async () => {
    const other = spawn('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'sleep', '30']);
    try {
      await new Promise((r) => setTimeout(r, 300));
      const r = await rawRequest(sock, 'POST', '/properties', {
        headers: { 'pawledger-client-pid': String(other.pid), 'pawledger-client-user': 'nobody' },
        body: { id: 'blamed', name: 'n', address: 'a', owner: 'o' },
      });
      expect(r.status).toBe(403);
      expect(r.body.error?.message).toBe(`process ${other.pid} runs as uid ${NOBODY}, not as this server's uid 0`);
    } finally {
      other.kill();
    }
    const ok = await cli.start('blocks', add('logged'));
    expect(ok.code).toBe(0);
    expect(server.lines.join('\n')).toMatch(/Control channel: POST \/properties by root \(pid \d+\) answered 201/);
    expect(await readFile(join(dataDir, 'LOCK'), 'utf8')).toBe(`${server.child.pid}\n`);
  });
});
