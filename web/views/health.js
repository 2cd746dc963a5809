// Health: this admin's /health and key metrics, and the resolvers the coordinator knows.
import { add, api, h, clear, can, fmtTime, table } from '../app.js';

const KEY_METRICS = /^(mockarty_http_requests_total|mockarty_mocks|mockarty_journal_entries|mockarty_journal_bytes|process_resident_memory_bytes|mockarty_runners)/;

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
    const sums = {};
    for (const line of metrics.split('\n')) {
      if (line.startsWith('#') || !KEY_METRICS.test(line)) continue;
      const [name] = line.split(/[{ ]/);
      sums[name] = (sums[name] || 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
    }
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
            h('dt', { class: 'mono' }, k), h('dd', { class: 'metric' }, String(Math.round(v)))])))),
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
