// A throwaway PostgreSQL cluster with mq preloaded, for the client tests.
//
// MQ_TEST_PGHOST set (test/run.mjs sets it): use that cluster (socket
// directory MQ_TEST_PGHOST, port MQ_TEST_PGPORT, user postgres). Otherwise
// initdb/pg_ctl from PG_BINDIR (or PATH) start one in a temporary
// directory, reachable only through a Unix socket there, stopped when the
// process exits.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

const bin = (name) => (process.env.PG_BINDIR ? path.join(process.env.PG_BINDIR, name) : name);

export function startCluster() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mq-nodetest-'));
  const data = path.join(dir, 'data');
  execFileSync(bin('initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync'],
    { stdio: 'ignore' });
  fs.appendFileSync(path.join(data, 'postgresql.conf'), `
listen_addresses = ''
unix_socket_directories = '${dir}'
port = 5432
shared_preload_libraries = 'mq'
mq.worker_enabled = off
max_connections = 60
fsync = off
`);
  execFileSync(bin('pg_ctl'), ['-D', data, '-l', path.join(dir, 'log'), '-w', '-t', '60', 'start'],
    { stdio: 'ignore' });
  return { dir, host: dir, port: 5432 };
}

export function stopCluster(c) {
  try {
    execFileSync(bin('pg_ctl'), ['-D', path.join(c.dir, 'data'), '-m', 'immediate', '-w', 'stop'],
      { stdio: 'ignore' });
  } catch {
    // already stopped
  }
  if (process.env.MQ_KEEP_TMP !== '1') fs.rmSync(c.dir, { recursive: true, force: true });
}

let own = null;

// The connection settings (a pg.Client config) of the test cluster, with
// CREATE EXTENSION mq done.
export async function connection() {
  let config;
  if (process.env.MQ_TEST_PGHOST) {
    config = { host: process.env.MQ_TEST_PGHOST, port: Number(process.env.MQ_TEST_PGPORT || 5432),
      user: 'postgres', database: 'postgres' };
  } else {
    if (!own) {
      own = startCluster();
      process.on('exit', () => stopCluster(own));
    }
    config = { host: own.host, port: own.port, user: 'postgres', database: 'postgres' };
  }
  const c = new pg.Client(config);
  await c.connect();
  await c.query('CREATE EXTENSION IF NOT EXISTS mq');
  await c.end();
  return config;
}
