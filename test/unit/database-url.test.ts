/**
 * DATABASE_URL handling (src/db/url.ts): sslmode mapped as libpq does, bad URLs refused as CONFIG errors, and the
 * password never shown, neither in errors nor in the label used for logs.
 */
import { describe, expect, it } from 'vitest';
import { parseDatabaseUrl, redactUrl } from '../../src/db/url.js';
import { describeError } from '../../src/errors.js';
import { thrown } from '../support/errors.js';

const PASSWORD = 'Sup3r-Secret-Pw';
const BASE = `postgresql://ledger:${PASSWORD}@db.example.com:5432/pawledger`;

describe('parseDatabaseUrl', () => {
  it.each([
    ['no sslmode', '', false],
    ['sslmode=disable', '?sslmode=disable', false],
    ['sslmode=allow', '?sslmode=allow', false],
    ['sslmode=require', '?sslmode=require', { rejectUnauthorized: false }],
    ['sslmode=prefer', '?sslmode=prefer', { rejectUnauthorized: false }],
    ['sslmode=no-verify', '?sslmode=no-verify', { rejectUnauthorized: false }],
    ['ssl=true', '?ssl=true', { rejectUnauthorized: false }],
    ['ssl=false', '?ssl=false', false],
    ['sslmode=verify-ca', '?sslmode=verify-ca', { rejectUnauthorized: true }],
    ['sslmode=verify-full', '?sslmode=verify-full', { rejectUnauthorized: true }],
    ['sslmode=verify-full beside ssl=true', '?ssl=true&sslmode=verify-full', { rejectUnauthorized: true }],
  ])('maps %s to the ssl option', (_what, query, ssl) => {
    const t = parseDatabaseUrl(`${BASE}${query}`);
    expect(t.ssl).toEqual(ssl);
  });

  it('hands node-postgres a URL without sslmode/ssl (they would override the ssl option) but with everything else', () => {
    const t = parseDatabaseUrl(
      `postgres://ledger:${PASSWORD}@db.example.com:6543/pawledger?sslmode=require&application_name=pawledger&ssl=true`,
    );
    const u = new URL(t.connectionString);
    expect(u.searchParams.has('sslmode')).toBe(false);
    expect(u.searchParams.has('ssl')).toBe(false);
    expect(u.searchParams.get('application_name')).toBe('pawledger');
    expect([u.username, u.password, u.hostname, u.port, u.pathname]).toEqual([
      'ledger',
      PASSWORD,
      'db.example.com',
      '6543',
      '/pawledger',
    ]);
    expect(t.label).not.toContain(PASSWORD);
    expect(t.label).toContain('db.example.com');
  });

  it.each([
    ['a mysql URL', `mysql://ledger:${PASSWORD}@db.example.com/pawledger`],
    ['an http URL', `https://ledger:${PASSWORD}@db.example.com/pawledger`],
    ['a URL with no host', `postgresql://ledger:${PASSWORD}@/pawledger`],
    ['words', `ledger ${PASSWORD} db.example.com`],
    ['a libpq keyword string', `host=db.example.com user=ledger password=${PASSWORD}`],
    ['a URL with a bad port', `postgresql://ledger:${PASSWORD}@db.example.com:99999/pawledger`],
    ['an unknown sslmode', `${BASE}?sslmode=sometimes`],
    ['an empty string', ''],
  ])('refuses %s with CONFIG, never echoing the password', (_what, raw) => {
    const err = thrown(() => parseDatabaseUrl(raw));
    expect(err.code).toBe('CONFIG');
    expect(err.message).toContain('DATABASE_URL');
    expect(describeError(err)).not.toContain(PASSWORD);
    expect(JSON.stringify({ ...err, message: err.message, hint: err.hint })).not.toContain(PASSWORD);
  });
});

describe('redactUrl', () => {
  it('hides the password but keeps what tells the operator which server it is', () => {
    const r = redactUrl(`${BASE}?sslmode=require`);
    expect(r).not.toContain(PASSWORD);
    expect(r).toContain('ledger');
    expect(r).toContain('db.example.com:5432/pawledger');
    expect(r).toContain('sslmode=require');
  });

  it('hides a percent-encoded password', () => {
    const r = redactUrl('postgres://ledger:p%40ss%2Fw0rd@db.example.com/pawledger');
    expect(r).not.toMatch(/p%40ss|p@ss|w0rd/);
  });

  it('hides secrets passed as query parameters, and only those', () => {
    const r = redactUrl(
      'postgres://ledger@db.example.com/pawledger?password=pw111&sslkey=key222&api_token=tok333&client_secret=sec444&apikey=key555&application_name=ledgerapp',
    );
    for (const secret of ['pw111', 'key222', 'tok333', 'sec444', 'key555']) expect(r).not.toContain(secret);
    expect(r).toContain('application_name=ledgerapp');
  });

  it('says the URL is unparseable rather than printing it', () => {
    const r = redactUrl(`postgresql://ledger:${PASSWORD}@db.example.com:99999/pawledger`);
    expect(r).not.toContain(PASSWORD);
    expect(r).toBe('(unparseable URL)');
  });
});
