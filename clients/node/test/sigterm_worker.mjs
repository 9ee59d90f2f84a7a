// Helper of the SIGTERM test: a Worker (concurrency 1) whose handler
// prints "start ID", sleeps SECONDS, prints "done ID"; exits with run()'s
// status.  usage: node sigterm_worker.mjs CONFIG_JSON QUEUE SECONDS

import { Worker } from '../index.js';

const [config, queue, seconds] = process.argv.slice(2);
const worker = new Worker(JSON.parse(config), queue, async (msg) => {
  console.log(`start ${msg.id}`);
  await new Promise((resolve) => setTimeout(resolve, Number(seconds) * 1000));
  console.log(`done ${msg.id}`);
}, { concurrency: 1, wait: 30 });
process.exitCode = await worker.run();
