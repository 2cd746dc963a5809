// Runners and runs: runners and resolvers with their state, API test collections, runs with live
// progress, results per request and assertion, reports to download; load tests when the server
// has the perf endpoints.
import {
  add, api, h, clear, state, can, act, fmtTime, pretty, table, download, hasEndpoint, toast,
} from '../app.js';

const DONE = ['succeeded', 'passed', 'failed', 'cancelled', 'timed_out', 'error', 'completed'];

export async function render(root) {
  const writer = can('runs:write');
  const runnersBox = h('div', { id: 'runners' });
  const colBox = h('div', { id: 'collections' });
  const runsBox = h('div', { id: 'runs' });
  const detail = h('div', { id: 'run-detail' });
  const perfBox = h('div', { id: 'perf' });
  add(root,
    h('div', { class: 'toolbar' }, h('h1', {}, 'Runners & runs')),
    h('h2', {}, 'Runners and resolvers'), runnersBox,
    h('h2', {}, `Collections in ${state.ns}`), colBox,
    h('h2', {}, 'Runs'), runsBox, detail,
    hasEndpoint('GET', '/api/v1/perf-results') ? [h('h2', {}, 'Load tests'), perfBox] : null);

  let watching = null;
  let alive = true;

  async function loadRunners() {
    const [runners, resolvers] = await Promise.all([
      api('GET', '/api/v1/runners').catch((e) => ({ error: e.message })),
      api('GET', '/api/v1/resolvers').catch(() => ({ items: [] })),
    ]);
    const rows = (runners.items || []).map((r) => ({ ...r, kind: 'runner' }))
      .concat((resolvers.items || []).map((r) => ({ ...r, kind: 'resolver' })));
    clear(runnersBox, runners.error ? h('p', { class: 'error' }, runners.error) : table([
      { label: 'Kind', get: (r) => r.kind },
      { label: 'Name', get: (r) => r.name || r.id },
      { label: 'State', get: (r) => h('b', { class: r.state === 'online' ? 'pass' : 'fail' }, r.state || r.status || '') },
      { label: 'Capabilities', get: (r) => (r.capabilities || []).join(', ') },
      { label: 'Scope', get: (r) => r.namespace || (r.shared || r.isShared ? 'shared' : '') },
      { label: 'Load', get: (r) => r.kind === 'runner' ? `${(r.runningTasks || r.tasks || []).length ?? r.running ?? 0}/${r.maxConcurrent ?? '?'}` : '' },
      { label: 'Last heartbeat', get: (r) => fmtTime(r.lastHeartbeat || r.lastSeen) },
    ], rows, { empty: 'No runner or resolver is connected.' }));
  }

  async function loadCollections() {
    let r;
    try {
      r = await api('GET', '/api/v1/api-tester/collections', undefined, { query: { namespace: state.ns } });
    } catch (e) {
      clear(colBox, h('p', { class: 'error' }, e.message));
      return;
    }
    clear(colBox, table([
      { label: 'Name', get: (c) => c.name },
      { label: 'Requests', class: 'num', get: (c) => String(c.requestCount ?? '') },
      { label: 'Created', get: (c) => fmtTime(c.createdAt) },
      {
        label: '', get: (c) => [
          writer ? h('button', {
            class: 'small primary', 'data-action': 'run', 'data-collection': c.id,
            onclick: () => run(c),
          }, 'Run') : null,
          h('button', {
            class: 'small',
            onclick: () => act(async () => download(`${c.name}.postman_collection.json`,
              JSON.stringify(await api('GET', `/api/v1/api-tester/collections/${c.id}/export`), null, 2))),
          }, 'Export'),
        ],
      },
    ], r.items || [], { empty: 'No collections. Import a Postman v2.1 collection through the API.' }));
  }

  async function loadRuns() {
    let r;
    try {
      r = await api('GET', '/api/v1/api-tester/test-runs', undefined, { query: { namespace: state.ns } });
    } catch (e) {
      clear(runsBox, h('p', { class: 'error' }, e.message));
      return;
    }
    clear(runsBox, table([
      { label: 'Run', get: (x) => h('button', { class: 'link', onclick: () => watch(x.id) }, x.id) },
      { label: 'Collection', get: (x) => x.collectionName || x.collectionId || '' },
      { label: 'Status', get: (x) => h('b', { class: statusClass(x.status) }, x.status) },
      { label: 'Passed', class: 'num', get: (x) => `${x.passedTests ?? ''}/${x.totalTests ?? ''}` },
      { label: 'Started', get: (x) => fmtTime(x.startedAt || x.createdAt) },
    ], (r.items || []).slice(0, 20), { empty: 'No runs yet.' }));
  }

  async function run(c) {
    const r = await act(() => api('POST', `/api/v1/api-tester/collections/${c.id}/execute`,
      { baseUrl: location.origin }), 'Run queued');
    if (r && r.id) {
      watch(r.id, c);
      loadRuns();
    }
  }

  // Live progress: the run is read every half second until it ends.
  async function watch(id, col) {
    watching = id;
    const total = col && col.requestCount;
    const bar = h('span');
    const progress = h('div', {
      class: 'progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100,
      id: 'run-progress',
    }, bar);
    const status = h('b', { id: 'run-status' }, 'pending');
    const count = h('span', { id: 'run-count', class: 'muted' });
    const results = h('div', { id: 'run-results' });
    const reports = h('div', { class: 'actions' });
    clear(detail, h('section', { class: 'card' },
      h('h2', {}, `Run ${id}`), h('div', { class: 'row' }, status, progress, count), reports,
      results));
    for (;;) {
      let x;
      try {
        x = await api('GET', `/api/v1/api-tester/test-runs/${id}`);
      } catch (e) {
        status.textContent = e.message;
        return;
      }
      if (!alive || watching !== id) return;
      const res = x.results || (x.result && x.result.results) || [];
      const n = total || x.requestCount || x.totalRequests || Math.max(res.length, 1);
      const finished = DONE.includes(x.status);
      const pct = finished ? 100 : Math.min(99, Math.round((100 * res.length) / n));
      bar.style.width = `${pct}%`; // CSSOM, allowed under style-src 'self'
      progress.setAttribute('aria-valuenow', String(pct));
      status.textContent = x.status;
      status.className = statusClass(x.status);
      count.textContent = `${res.length} of ${n} requests · ${x.passedTests ?? 0} passed, `
        + `${x.failedTests ?? 0} failed`;
      renderResults(results, res);
      if (finished) {
        clear(reports, ['json', 'junit', 'html'].map((f) => h('a', {
          class: 'button small', 'data-report': f,
          href: `/api/v1/api-tester/test-runs/${encodeURIComponent(id)}/report?format=${f}`,
          download: `run-${id}.${f === 'junit' ? 'xml' : f}`,
        }, `Report (${f})`)));
        loadRuns();
        return;
      }
      await new Promise((ok) => setTimeout(ok, 500));
    }
  }

  function renderResults(box, res) {
    clear(box, h('ul', { class: 'plain' }, res.map((r) => {
      const tests = r.tests || r.assertions || [];
      const ok = tests.every((t) => t.passed !== false && t.status !== 'failed');
      const resp = r.response || {};
      return h('li', {}, h('details', {},
        h('summary', {}, h('b', { class: ok ? 'pass' : 'fail' }, ok ? '✓' : '✗'), ' ',
          [r.name || r.requestName || '', (r.request && r.request.method) || r.method || '',
            resp.code || resp.status || '', `${r.duration ?? resp.responseTime ?? '?'} ms`,
            r.status || ''].filter((x) => x !== '').join(' · ')),
        h('ul', {}, tests.map((t) => h('li', { class: t.passed === false ? 'fail' : 'pass' },
          `${t.passed === false ? '✗' : '✓'} ${t.name}${t.message ? ` — ${t.message}` : ''}`))),
        r.error ? h('p', { class: 'error' }, typeof r.error === 'string' ? r.error
          : JSON.stringify(r.error)) : null,
        h('pre', {}, pretty(r))));
    })));
  }

  // Load tests (the perf endpoints, when the server has them): start one from a collection,
  // watch its throughput and latency each second, open the finished run's report.
  let perfWatch = null;
  const perfLive = h('div', { id: 'perf-live' });
  const perfList = h('div', { id: 'perf-results' });
  async function loadPerf() {
    if (!perfBox.firstChild) {
      const colSel = h('select', { name: 'col', 'aria-label': 'Collection' });
      api('GET', '/api/v1/api-tester/collections', undefined, { query: { namespace: state.ns } })
        .then((r) => clear(colSel, (r.items || []).map((c) => h('option', { value: c.id }, c.name))))
        .catch(() => {});
      add(perfBox, writer ? h('form', {
        class: 'filters', id: 'perf-form', onsubmit: async (e) => {
          e.preventDefault();
          const el = e.target.elements;
          const r = await act(() => api('POST', '/api/v1/perf/run-collection', {
            collectionId: el.col.value, vus: Number(el.vus.value), duration: el.duration.value,
            baseUrl: location.origin,
          }), 'Load test queued');
          if (r && (r.id || r.runId)) watchPerf(r.id || r.runId);
          loadPerf();
        },
      }, colSel,
      h('input', { name: 'vus', type: 'number', min: 1, value: 5, 'aria-label': 'Virtual users' }),
      h('input', { name: 'duration', value: '10s', 'aria-label': 'Duration' }),
      h('button', { type: 'submit' }, 'Start load test')) : null, perfList, perfLive);
    }
    try {
      const r = await api('GET', '/api/v1/perf-results', undefined, { query: { namespace: state.ns } });
      const items = r.items || (Array.isArray(r) ? r : []);
      clear(perfList, table([
        { label: 'Result', get: (x) => h('button', { class: 'link', onclick: () => watchPerf(x.id) }, x.id) },
        { label: 'Name', get: (x) => x.name || x.configId || '' },
        { label: 'Status', get: (x) => h('b', { class: statusClass(x.status) }, x.status || '') },
        { label: 'Requests', class: 'num', get: (x) => String(metric(x, 'http_reqs', 'count') ?? '') },
        { label: 'p95 ms', class: 'num', get: (x) => fmtNum(metric(x, 'http_req_duration', 'p(95)')) },
        { label: 'Started', get: (x) => x.startedAt || '' },
      ], items.slice(0, 20), { empty: 'No load tests yet.' }));
    } catch (e) {
      clear(perfList, h('p', { class: 'error' }, e.message));
    }
  }

  async function watchPerf(id) {
    perfWatch = id;
    for (let first = true; ; first = false) {
      let x;
      try {
        x = await api('GET', `/api/v1/perf-results/${encodeURIComponent(id)}`);
      } catch (e) {
        clear(perfLive, h('p', { class: 'error' }, e.message));
        return;
      }
      if (!alive || perfWatch !== id) return;
      const tl = x.timeline || [];
      const running = ['pending', 'running', 'queued'].includes(x.status);
      clear(perfLive, h('section', { class: 'card' },
        h('h3', {}, `Load test ${id}: `, h('b', { id: 'perf-status', class: statusClass(x.status) }, x.status)),
        h('div', { class: 'grid2' },
          chart('Throughput (requests/s)', tl.map((p) => [p.t, p.rps])),
          chart('Latency p95 (ms)', tl.map((p) => [p.t, p.p95]))),
        h('div', { class: 'actions' },
          running && writer ? h('button', {
            class: 'danger', onclick: () => act(() => api('POST', `/api/v1/perf/stop/${encodeURIComponent(id)}`), 'Stopping'),
          }, 'Stop') : null,
          !running ? h('a', {
            class: 'button', href: `/api/v1/perf-results/${encodeURIComponent(id)}/report`, target: '_blank',
            rel: 'noopener',
          }, 'Report (HTML)') : null)));
      if (first) perfLive.scrollIntoView({ block: 'nearest' });
      if (!running) {
        loadPerf();
        return;
      }
      await new Promise((ok) => setTimeout(ok, 1000));
    }
  }

  function refresh() {
    loadRunners();
    loadCollections();
    loadRuns();
    if (perfBox.isConnected) loadPerf();
  }
  refresh();
  const t = setInterval(() => {
    loadRunners();
    if (!watching) loadRuns();
  }, 3000);
  return () => {
    alive = false;
    clearInterval(t);
  };
}

function metric(x, name, field) {
  const m = x.metrics && x.metrics[name];
  return m ? m[field] : undefined;
}

function fmtNum(v) {
  return typeof v === 'number' ? v.toFixed(1) : '';
}

// A small line chart as SVG (no library): points [[x, y]], axes from 0 to the maximum.
function chart(title, points) {
  const NS = 'http://www.w3.org/2000/svg';
  const W = 480;
  const H = 160;
  const P = 36;
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('class', 'chart');
  svg.setAttribute('role', 'img');
  const maxX = Math.max(1, ...points.map((p) => p[0] || 0));
  const maxY = Math.max(1e-9, ...points.map((p) => p[1] || 0));
  const el = (tag, attrs, text) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
    return e;
  };
  el('line', { x1: P, y1: H - P / 2, x2: W - 4, y2: H - P / 2, class: 'axis' });
  el('line', { x1: P, y1: 4, x2: P, y2: H - P / 2, class: 'axis' });
  el('text', { x: 2, y: 12, class: 'tick' }, maxY >= 100 ? Math.round(maxY) : maxY.toFixed(1));
  el('text', { x: W - 30, y: H - 4, class: 'tick' }, `${Math.round(maxX)} s`);
  const xy = (p) => `${P + ((W - P - 8) * (p[0] || 0)) / maxX},${H - P / 2 - ((H - P / 2 - 8) * (p[1] || 0)) / maxY}`;
  if (points.length) el('polyline', { points: points.map(xy).join(' '), class: 'line' });
  svg.setAttribute('aria-label', `${title}: ${points.length} points, max ${maxY.toFixed(1)}`);
  return h('figure', { class: 'chart-box' }, h('figcaption', {}, title), svg);
}

function statusClass(s) {
  return s === 'succeeded' || s === 'passed' || s === 'completed' ? 'pass'
    : s === 'failed' || s === 'error' || s === 'timed_out' ? 'fail' : '';
}
