// Throughput runner for `make bench` (bench/bench_policy.py): iam-simulate's authorize()
// on pre-loaded, pre-parsed policies. Usage: node bench.cjs CASES.json PASSES SAMPLES
// CASES.json is a JSON array in the `kubeiam policy simulate` case format. Every case's
// policies and request are built once (simulate.cjs prepare()), then the whole batch is
// decided PASSES times per sample. Prints one JSON object:
// {"cases": n, "errors": n, "rates": [decisions/s per sample], "cpuRates": [decisions per
// CPU-second of the process], "decisions": {...}}
'use strict';
const fs = require('fs');
const { authorize, prepare } = require('./simulate.cjs');

const [file, passesArg, samplesArg] = process.argv.slice(2);
const passes = Number(passesArg || 5);
const samples = Number(samplesArg || 5);
const raw = JSON.parse(fs.readFileSync(file, 'utf8'));

const prepared = [];
let errors = 0;
const decisions = {};
for (const c of raw) {
  try {
    const args = prepare(c);
    const result = authorize(args).result;
    decisions[result] = (decisions[result] || 0) + 1;
    prepared.push(args);
  } catch (err) {
    errors += 1;
  }
}

function pass() {
  for (let i = 0; i < prepared.length; i++) authorize(prepared[i]);
}

// Warm-up: let the JIT optimise every path (the first passes run 3-4x slower).
for (let p = 0; p < 30; p++) pass();
const rates = [];
const cpuRates = [];
for (let s = 0; s < samples; s++) {
  const start = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  for (let p = 0; p < passes; p++) pass();
  const cpu = process.cpuUsage(cpu0);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  rates.push((prepared.length * passes) / seconds);
  cpuRates.push((prepared.length * passes) / ((cpu.user + cpu.system) / 1e6));
}
const out = { cases: prepared.length, errors, rates, cpuRates, decisions };
process.stdout.write(JSON.stringify(out) + '\n');
