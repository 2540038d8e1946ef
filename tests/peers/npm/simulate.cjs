// Batch runner for the IAM differential: kubeiam simulation cases (one JSON object per
// stdin line, the `kubeiam policy simulate` case format) through @cloud-copilot/iam-simulate.
// Prints one JSON line per case: {"decision": "Allowed|ImplicitlyDenied|ExplicitlyDenied"}
// or {"error": "..."} when the peer rejects or throws. One process for the whole batch.
'use strict';
const path = require('path');
const readline = require('readline');

const root = path.join(__dirname, 'node_modules', '@cloud-copilot', 'iam-simulate', 'dist', 'cjs');
const { loadPolicy } = require('@cloud-copilot/iam-policy');
const { authorize } = require(path.join(root, 'core_engine', 'CoreSimulatorEngine.js'));
const { DiscoveryContextKeyConstraints } = require(
  path.join(root, 'context_keys', 'discoveryContextKeyConstraints.js')
);
const { AwsRequestImpl } = require(path.join(root, 'request', 'request.js'));
const { RequestContextImpl } = require(path.join(root, 'requestContext.js'));
const { anonymousPrincipal } = require(path.join(root, 'simulation_engine', 'simulation.js'));

const FULL_RCP = {
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Principal: '*', Action: '*', Resource: '*' }]
};

function named(entry, fallback) {
  if (entry && typeof entry === 'object' && 'policy' in entry && !('Statement' in entry)) {
    return loadPolicy(entry.policy, { name: entry.name || fallback });
  }
  return loadPolicy(entry, { name: fallback });
}

function levels(value, prefix) {
  if (!value || value.length === 0) return [];
  if (value.every((v) => v && typeof v === 'object' && 'policies' in v)) {
    return value.map((lvl, i) => ({
      orgIdentifier: String(lvl.orgIdentifier ?? i),
      policies: lvl.policies.map((p, j) => named(p, `${prefix}-${i}-${j}`))
    }));
  }
  if (value.every((v) => Array.isArray(v))) {
    return value.map((lvl, i) => ({
      orgIdentifier: String(i),
      policies: lvl.map((p, j) => named(p, `${prefix}-${i}-${j}`))
    }));
  }
  return [{ orgIdentifier: '0', policies: value.map((p, j) => named(p, `${prefix}-0-${j}`)) }];
}

function accountOf(arn) {
  if (typeof arn !== 'string') return undefined;
  const parts = arn.split(':');
  return parts.length >= 6 && parts[0] === 'arn' && parts[4] ? parts[4] : undefined;
}

// The authorize() arguments for one case: policies loaded and parsed, request built.
function prepare(c) {
  const req = c.request;
  const principal = req.principal === null || req.principal === undefined || req.principal === '*'
    ? anonymousPrincipal
    : String(req.principal);
  const resource = req.resource ?? '*';
  const accountId = req.resourceAccount || accountOf(resource) ||
    (typeof principal === 'string' ? accountOf(principal) || (/^\d{12}$/.test(principal) ? principal : undefined) : undefined) ||
    '';
  const context = {};
  for (const [k, v] of Object.entries(req.context || {})) {
    context[k] = Array.isArray(v) ? v.map(String) : String(v);
  }
  const request = new AwsRequestImpl(principal, { resource, accountId }, req.action,
    new RequestContextImpl(context));
  const boundaries = (c.permissionBoundaries || []).map((p, i) => named(p, `boundary-${i}`));
  return {
    request,
    sessionPolicy: c.sessionPolicy ? named(c.sessionPolicy, 'session') : undefined,
    identityPolicies: (c.identityPolicies || []).map((p, i) => named(p, `identity-${i}`)),
    serviceControlPolicies: levels(c.scps, 'scp'),
    // RCPFullAWSAccess is attached at every level (as runSimulation does).
    resourceControlPolicies: levels(c.rcps, 'rcp').map((lvl) => ({
      orgIdentifier: lvl.orgIdentifier,
      policies: [...lvl.policies, loadPolicy(FULL_RCP, { name: 'RCPFullAWSAccess' })]
    })),
    resourcePolicy: c.resourcePolicy ? named(c.resourcePolicy, 'resource') : undefined,
    permissionBoundaries: boundaries.length ? boundaries : undefined,
    vpcEndpointPolicies: undefined,
    simulationParameters: {
      simulationMode: 'Strict',
      discoveryContextKeyConstraints: new DiscoveryContextKeyConstraints([])
    },
    serviceSettings: { s3: {} }
  };
}

function run(c) {
  return { decision: authorize(prepare(c)).result };
}

module.exports = { authorize, prepare };

if (require.main !== module) return;

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
const out = [];
rl.on('line', (line) => {
  if (!line.trim()) return;
  let result;
  try {
    result = run(JSON.parse(line));
  } catch (err) {
    result = { error: String(err && err.message ? err.message : err).slice(0, 300) };
  }
  out.push(JSON.stringify(result));
  if (out.length >= 256) process.stdout.write(out.splice(0).join('\n') + '\n');
});
rl.on('close', () => {
  if (out.length) process.stdout.write(out.join('\n') + '\n');
});
