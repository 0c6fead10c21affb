import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

/** EnvVar is one entry of a service's envVars in render.yaml. */
interface EnvVar {
  key: string;
  fields: Record<string, string>;
}

// The blueprint is read with a small line parser (no YAML dependency): every `- key:` opens an env var, and the
// more-indented `name: value` lines under it are its fields (fromDatabase's name and property included).
function envVars(yaml: string): EnvVar[] {
  const vars: EnvVar[] = [];
  let current: (EnvVar & { indent: number }) | null = null;
  for (const line of yaml.split('\n')) {
    if (/^\s*#/.test(line) || line.trim() === '') continue;
    const open = /^(\s*)- key:\s*(\S+)\s*$/.exec(line);
    if (open) {
      current = { key: open[2]!, fields: {}, indent: open[1]!.length };
      vars.push(current);
      continue;
    }
    const field = /^(\s*)([A-Za-z]+):\s*(.*)$/.exec(line);
    if (current && field && field[1]!.length > current.indent) current.fields[field[2]!] = field[3]!.trim();
    else current = null;
  }
  return vars;
}

describe('render.yaml', () => {
  const yaml = read('render.yaml');
  const vars = envVars(yaml);
  const config = read('src/config.ts');
  const readme = read('README.md');

  it('names only variables the configuration reads and the README documents', () => {
    expect(vars.length).toBeGreaterThan(3);
    for (const { key } of vars) {
      expect(config, `src/config.ts does not read ${key}`).toMatch(new RegExp(`env\\.${key}\\b|'${key}'`));
      expect(readme, `README.md does not document ${key}`).toContain(`\`${key}\``);
    }
  });

  it('wires the database from the blueprint and leaves the secrets to be set in Render', () => {
    const byKey = new Map(vars.map((v) => [v.key, v.fields]));
    expect(byKey.get('DATABASE_URL')).toMatchObject({ property: 'connectionString' });
    const dbName = byKey.get('DATABASE_URL')!.name;
    expect(yaml).toMatch(new RegExp(`^databases:\\n  - name: ${dbName}$`, 'm'));
    for (const secret of ['LEDGER_ENCRYPTION_KEY', 'ADMIN_TOKEN', 'PINATA_JWT', 'RENDER_API_KEY'])
      expect(byKey.get(secret), secret).toEqual({ sync: 'false' });
    // No value of any kind is written into the file for a secret.
    expect(yaml).not.toMatch(/^\s*value:/m);
    expect(yaml).toMatch(/^\s+healthCheckPath: \/healthz$/m);
    expect(yaml).toMatch(/^\s+- type: web$/m);
  });

  it('builds from the Dockerfile, which runs production dependencies as a user other than root', () => {
    expect(yaml).toMatch(/^\s+dockerfilePath: \.\/Dockerfile$/m);
    const docker = read('Dockerfile');
    const stages = docker.split(/^FROM /m).slice(1);
    const final = stages.at(-1)!;
    expect(final).toMatch(/^node:20-slim\n/);
    expect(final).toMatch(/RUN npm ci --omit=dev/);
    const user = /^USER (\S+)$/m.exec(final);
    expect(user?.[1]).toBeDefined();
    expect(user?.[1]).not.toMatch(/^(root|0)$/);
    expect(final).toMatch(/CMD \["node", "bin\/pawledger\.js", "serve"\]/);
  });
});
