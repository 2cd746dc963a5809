// Health: this admin's /health and key metrics, and the resolvers the coordinator knows.
import { add, api, h, clear, can, fmtTime, table } from '../app.js';

// Sums of a few Prometheus series from /metrics: [label, test(name, labels)].
const KEY_METRICS = [
  ['requests served', (n) => n === 'http_requests_total'],
  ['answers 4xx', (n, l) => n === 'http_requests_total' && /status="4/.test(l)],
  ['answers 5xx', (n, l) => n === 'http_requests_total' && /status="5/.test(l)],
  ['mocks', (n) => n === 'mockarty_mocks'],
  ['journal entries', (n) => n === 'mockarty_journal_entries'],
  ['journal bytes', (n) => n === 'mockarty_journal_bytes'],
];

function keyMetrics(text) {
  const out = Object.fromEntries(KEY_METRICS.map(([k]) => [k, 0]));
  let durSum = 0;
  let durCount = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const v = Number(m[3]);
    for (const [k, test] of KEY_METRICS) if (test(m[1], m[2] || '')) out[k] += v;
    if (m[1] === 'http_request_duration_seconds_sum') durSum += v;
    if (m[1] === 'http_request_duration_seconds_count') durCount += v;
  }
  if (durCount) out['mean latency (ms)'] = ((1000 * durSum) / durCount).toFixed(2);
  return out;
}

export async function render(root) {
  const box = h('div', { id: 'health' });
  add(root, h('div', { class: 'toolbar' }, h('h1', {}, 'Health')), box);
  async function load() {
    const health = await fetch('/health').then((r) => r.json()).catch((e) => ({ error: e.message }));
    const metrics = await fetch('/metrics').then((r) => r.text()).catch(() => '');
    let resolvers = [];
    if (can('runs:read', '*')) {
      resolvers = await api('GET', '/api/v1/resolvers').then((r) => r.items || r || [])
        .catch(() => []);
    }
    const sums = keyMetrics(metrics);
    clear(box,
      h('div', { class: 'grid2' },
        h('section', { class: 'card' },
          h('h2', {}, `Admin (${health.role || 'admin'})`),
          h('p', {}, 'Status: ', h('b', { class: health.status === 'pass' ? 'pass' : 'fail', id: 'health-status' },
            health.status || 'unknown')),
          h('dl', { class: 'kv' },
            h('dt', {}, 'Release'), h('dd', {}, health.releaseId || ''),
            h('dt', {}, 'Uptime'), h('dd', {}, health.uptime || ''),
            h('dt', {}, 'Mocks'), h('dd', {}, String((health.checks && health.checks.snapshot
              && health.checks.snapshot.mocks) ?? '')),
            h('dt', {}, 'Memory RSS'), h('dd', {}, `${(health.system || {}).memRssMb || '?'} MB`),
            Object.entries(health.components || {}).map(([k, v]) => [
              h('dt', {}, k), h('dd', {}, `${v.status}${v.latency ? ` (${v.latency})` : ''}`)]))),
        h('section', { class: 'card' },
          h('h2', {}, 'Key metrics'),
          h('dl', { class: 'kv' }, Object.entries(sums).map(([k, v]) => [
            h('dt', {}, k), h('dd', { class: 'metric' }, String(v))])))),
      h('h2', {}, 'Resolvers'),
      table([
        { label: 'Name', get: (r) => r.name || r.id },
        { label: 'Address', get: (r) => r.address || r.addr || '' },
        { label: 'State', get: (r) => r.state || r.status || '' },
        { label: 'Last heartbeat', get: (r) => fmtTime(r.lastHeartbeat || r.lastSeen) },
      ], Array.isArray(resolvers) ? resolvers : [], { empty: 'No resolver registered.' }));
  }
  await load();
  const t = setInterval(load, 5000);
  return () => clearInterval(t);
}
