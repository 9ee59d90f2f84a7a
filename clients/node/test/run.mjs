// usage: node test/run.mjs [NAME_PATTERN...]
//
// Run the client tests (node --test, TAP reporter) against one temporary
// cluster (test/cluster.mjs) and end with one line
// "node client tests: N passed, M failed" for tools/test.sh to count.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCluster, stopCluster } from './cluster.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
// arguments: patterns of the test names to run (--test-name-pattern)
const patterns = process.argv.slice(2).map((p) => `--test-name-pattern=${p}`);
const files = fs.readdirSync(here)
  .filter((f) => f.endsWith('.test.mjs'))
  .sort()
  .map((f) => path.join(here, f));

let cluster = null;
let passed = 0;
let failed = 0;
let rc = 1;
try {
  cluster = startCluster();
  const env = { ...process.env, MQ_TEST_PGHOST: cluster.host, MQ_TEST_PGPORT: String(cluster.port) };
  const child = spawn(process.execPath,
    ['--test', '--test-reporter=tap', '--test-concurrency=1', ...patterns, ...files],
    { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => {
    process.stdout.write(d);
    out += d;
  });
  rc = await new Promise((resolve) => child.on('close', (code) => resolve(code ?? 1)));
  const count = (name) => {
    const m = out.match(new RegExp(`^# ${name} (\\d+)$`, 'm'));
    return m ? Number(m[1]) : 0;
  };
  passed = count('pass');
  failed = count('fail') + count('cancelled');
  if (!/^# pass \d+$/m.test(out) || passed + failed === 0) failed = Math.max(failed, 1);
  if (rc !== 0 && failed === 0) failed = 1;
} catch (e) {
  console.error(`node client tests: ${e.stack || e}`);
  failed = Math.max(failed, 1);
} finally {
  if (cluster) stopCluster(cluster);
}
console.log(`node client tests: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
