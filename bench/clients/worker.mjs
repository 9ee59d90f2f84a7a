// bench/clients/worker.mjs QUEUE COUNT CONCURRENCY [BATCH]: the Node client's
// Worker (clients/node) with an empty handler, on libpq's PG* variables,
// until COUNT messages are acked; prints "acked N in S s: R msg/s; cpu U
// us/msg" (U: this process's CPU time, user + system, per acked message) and
// exits 0, or 1 if not every message was acked within 10 minutes
// (bench/run.sh, workload WC).

import { Worker } from '../../clients/node/index.js';

const [queue, count, concurrency] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const batch = Number(process.argv[5] || 50);
const w = new Worker(undefined, queue, () => {}, {
  concurrency, batch, wait: 1, applicationName: 'mq_bench_node', signals: false,
});
const t0 = performance.now();
const cpu0 = process.cpuUsage();
w.start();
const deadline = t0 + 600000;
while (w.stats.acked < count && performance.now() < deadline)
  await new Promise((resolve) => setTimeout(resolve, 5));
const secs = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
await w.stop();
const { acked } = w.stats;
const cpuPer = (cpu.user + cpu.system) / Math.max(acked, 1);
console.log(`acked ${acked} in ${secs.toFixed(3)} s: ${Math.round(acked / secs)} msg/s; ` +
            `cpu ${cpuPer.toFixed(1)} us/msg; stats ${JSON.stringify(w.stats)}`);
process.exitCode = acked === count ? 0 : 1;
