// Traffic: the request journal as a live tail (Server-Sent Events from /api/v1/requests/stream
// when the server has it, else a poll of /api/v1/requests every half second), and the unmatched
// requests with their near-miss explanation and "create a mock from this request".
import {
  add, api, h, clear, state, can, toast, act, fmtTime, pretty, table, debounce, go, hasEndpoint,
  isAdmin,
} from '../app.js';

const KEEP = 300; // entries kept on screen
const POLL_MS = 500;

export async function render(root) {
  const f = { namespace: state.ns, mockId: '', method: '', path: '', status: '' };
  const mk = (id, ph, label) => h('input', { id, placeholder: ph, 'aria-label': label });
  const mockIn = mk('tail-mock', 'mock id', 'Mock id');
  const methodIn = h('select', { id: 'tail-method', 'aria-label': 'Method' },
    ['', 'GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'].map((m) =>
      h('option', { value: m }, m || 'any method')));
  const pathIn = mk('tail-path', '/exact/path', 'Path');
  const statusIn = h('select', { id: 'tail-status', 'aria-label': 'Status' },
    [['', 'any status'], ['2', '2xx'], ['3', '3xx'], ['4', '4xx'], ['5', '5xx'],
      ['unmatched', 'unmatched']].map(([v, l]) => h('option', { value: v }, l)));
  const nsIn = h('select', { id: 'tail-ns', 'aria-label': 'Namespace' },
    isAdmin() ? h('option', { value: '' }, 'all namespaces') : null,
    state.namespaces.map((n) => h('option', { value: n }, n)));
  nsIn.value = f.namespace;
  const pause = h('button', { id: 'tail-pause', 'aria-pressed': 'false' }, 'Pause');
  const mode = h('span', { class: 'muted', id: 'tail-mode' });
  const list = h('ol', { class: 'tail', id: 'tail', 'aria-live': 'off' });
  const unmatched = h('div', { id: 'unmatched' });
  const explainBox = h('div', { id: 'explain', class: 'explain' });

  add(root,
    h('div', { class: 'toolbar' }, h('h1', {}, 'Traffic'), h('span', { class: 'spacer' }), mode),
    h('div', { class: 'filters', role: 'search' }, nsIn, methodIn, pathIn, mockIn, statusIn, pause,
      h('button', { onclick: () => clear(list) }, 'Clear view')),
    h('div', { class: 'cols' },
      h('section', { class: 'grow' }, h('h2', {}, 'Live tail'), list),
      h('section', { class: 'narrow' }, h('h2', {}, 'Unmatched requests'), unmatched,
        explainBox)));

  let paused = false;
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.textContent = paused ? 'Resume' : 'Pause';
    pause.setAttribute('aria-pressed', String(paused));
  });

  const seen = new Set();
  function statusOk(e) {
    if (!f.status) return true;
    const st = String((e.response && e.response.status) || '');
    return f.status === 'unmatched' ? !e.mockId : st.startsWith(f.status);
  }
  function addEntries(entries) {
    if (paused) return;
    for (const e of entries) {
      const key = `${e.node || ''}/${e.id}`;
      if (seen.has(key) || !statusOk(e)) continue;
      seen.add(key);
      list.prepend(entryNode(e));
    }
    while (list.children.length > KEEP) list.lastChild.remove();
  }

  function entryNode(e) {
    const req = e.request || {};
    const st = (e.response && e.response.status) || 0;
    const cls = !e.mockId ? 'miss' : st >= 500 ? 'bad' : st >= 400 ? 'warn' : 'ok';
    const full = req.query ? `${req.path}?${req.query}` : req.path;
    return h('li', {
      class: `entry ${cls}`, 'data-path': req.path, 'data-mock': e.mockId || '',
      'data-shown': String(Date.now()), // when it appeared, for latency checks
    },
      h('details', {},
        h('summary', {},
          h('time', {}, new Date(e.timestamp).toLocaleTimeString(undefined, { hour12: false })),
          h('b', { class: 'method' }, req.method), h('span', { class: 'mono path' }, full),
          h('span', { class: `status s${String(st)[0]}` }, String(st)),
          h('span', { class: 'muted' }, e.mockId ? `mock ${e.mockId}` : 'no mock matched'),
          h('span', { class: 'muted' }, e.namespace),
          typeof e.durationMs === 'number' ? h('span', { class: 'muted' },
            `${e.durationMs.toFixed(2)} ms`) : null),
        h('div', { class: 'entry-body' },
          h('h4', {}, 'Request'),
          h('pre', {}, headerText(req.headers), req.body ? `\n${bodyText(req)}` : ''),
          h('h4', {}, 'Response'),
          h('pre', {}, pretty(e.response || {})),
          h('div', { class: 'actions' },
            e.mockId ? h('a', { class: 'button small', href: `#/mock?id=${encodeURIComponent(e.mockId)}` },
              'Open mock') : null,
            !e.mockId && can('mocks:write', e.namespace) ? h('button', {
              class: 'small', 'data-action': 'create-from',
              onclick: () => createFrom(e.namespace, req),
            }, 'Create a mock from this request') : null,
            !e.mockId ? h('button', {
              class: 'small', 'data-action': 'explain', onclick: () => explain(e.namespace, req),
            }, 'Why no match?') : null))));
  }

  // The live source: SSE when the server has the stream endpoint, else polling.
  let stop = () => {};
  function start() {
    stop();
    seen.clear();
    clear(list);
    const query = { namespace: f.namespace, mockId: f.mockId, method: f.method, path: f.path };
    if (hasEndpoint('GET', '/api/v1/requests/stream') && window.EventSource) {
      stop = startStream(query);
    } else {
      stop = startPoll(query);
    }
  }

  function startStream(query) {
    const q = new URLSearchParams(Object.entries(query).filter(([, v]) => v)).toString();
    const es = new EventSource(`/api/v1/requests/stream${q ? `?${q}` : ''}`,
      { withCredentials: true });
    mode.textContent = 'live (server-sent events)';
    const onEntry = (msg) => {
      try {
        const d = JSON.parse(msg.data);
        addEntries(Array.isArray(d) ? d.slice().reverse() : [d]);
      } catch (err) { /* a comment or keep-alive */ }
    };
    es.onmessage = onEntry;
    es.addEventListener('request', onEntry);
    es.addEventListener('entry', onEntry);
    es.onerror = () => {
      mode.textContent = 'reconnecting…';
    };
    es.onopen = () => {
      mode.textContent = 'live (server-sent events)';
    };
    return () => es.close();
  }

  function startPoll(query) {
    let alive = true;
    let timer = 0;
    mode.textContent = 'live (polling every 0.5 s)';
    const tick = async () => {
      try {
        const r = await api('GET', '/api/v1/requests', undefined, { query: { ...query, limit: 100 } });
        if (!alive) return;
        addEntries((r.items || r.requests || []).slice().reverse());
        mode.textContent = 'live (polling every 0.5 s)';
      } catch (err) {
        mode.textContent = `error: ${err.message}`;
      }
      if (alive) timer = setTimeout(tick, POLL_MS);
    };
    tick();
    return () => {
      alive = false;
      clearTimeout(timer);
    };
  }

  async function loadUnmatched() {
    let r;
    try {
      r = await api('GET', '/api/v1/undefined-requests', undefined,
        { query: { namespace: f.namespace } });
    } catch (e) {
      clear(unmatched, h('p', { class: 'error' }, e.message));
      return;
    }
    const items = (Array.isArray(r) ? r : r.items || [])
      .filter((u) => !u.ignored && (!f.namespace || u.namespace === f.namespace));
    clear(unmatched, table([
      { label: 'Request', class: 'mono', get: (u) => `${u.method} ${u.path}` },
      { label: 'Hits', class: 'num', get: (u) => String(u.hitCount ?? u.count ?? '') },
      { label: 'Last', get: (u) => fmtTime(u.lastSeen) },
      {
        label: '', get: (u) => [
          can('mocks:write', u.namespace) ? h('button', {
            class: 'small', 'data-action': 'create-from',
            onclick: () => createFrom(u.namespace, { method: u.method, path: u.path }),
          }, 'Create mock') : null,
          h('button', {
            class: 'small',
            onclick: () => explain(u.namespace, { method: u.method, path: u.path }),
          }, 'Why?'),
          can('requests:write', u.namespace) && u.id ? h('button', {
            class: 'small',
            onclick: () => act(() => api('PATCH',
              `/api/v1/undefined-requests/${encodeURIComponent(u.id)}/ignore`), 'Ignored')
              .then(loadUnmatched),
          }, 'Ignore') : null,
        ],
      },
    ], items, { empty: 'No unmatched requests.', class: 'compact' }));
  }

  // The near-miss explanation is the 404's "closest" list: replaying the recorded request to
  // the mock port shows it (the replay is itself journaled, as any request is).
  async function explain(ns, req) {
    if (!confirm(`Replay ${req.method} ${req.path} to see which mocks came close?`)) return;
    const base = ns && ns !== 'sandbox' ? `/stubs/${encodeURIComponent(ns)}` : '';
    const headers = {};
    for (const [k, v] of Object.entries(req.headers || {})) {
      if (/^(host|content-length|cookie|authorization|x-api-key|connection)$/i.test(k)) continue;
      headers[k] = Array.isArray(v) ? v.join(', ') : v;
    }
    const init = { method: req.method, headers, credentials: 'same-origin' };
    if (req.body && !/^(GET|HEAD)$/i.test(req.method)) init.body = req.body;
    let out;
    try {
      const r = await fetch(`${base}${req.path}${req.query ? `?${req.query}` : ''}`, init);
      const text = await r.text();
      let body;
      try {
        body = JSON.parse(text);
      } catch (e) {
        body = text;
      }
      out = r.status === 404 && body && body.closest
        ? h('div', {}, h('p', {}, `${req.method} ${req.path}: no mock matched. Closest:`),
          body.closest.length === 0 ? h('p', { class: 'muted' }, 'No mock shares its route.')
            : h('ol', {}, body.closest.map((c) => h('li', {},
              h('b', {}, c.id || ''), ' ',
              h('span', { class: 'mono' }, `${c.httpMethod || ''} ${c.route || ''}`),
              h('ul', {}, (c.failed || []).map((f) => h('li', {}, f))),
              !(c.failed || []).length ? h('p', { class: 'muted' }, c.note || 'route differs')
                : null))))
        : h('p', {}, `Replayed: ${r.status}${r.status === 404 ? ' (no explanation shown to you)'
          : ' — a mock answers it now'}`);
    } catch (e) {
      out = h('p', { class: 'error' }, e.message);
    }
    clear(explainBox, h('h3', {}, 'Near miss'), out);
    explainBox.scrollIntoView({ block: 'nearest' });
  }

  const restart = debounce(() => {
    f.namespace = nsIn.value;
    f.mockId = mockIn.value.trim();
    f.method = methodIn.value;
    f.path = pathIn.value.trim();
    f.status = statusIn.value;
    start();
    loadUnmatched();
  }, 250);
  for (const el of [nsIn, methodIn, statusIn]) el.addEventListener('change', restart);
  for (const el of [mockIn, pathIn]) el.addEventListener('input', restart);

  start();
  loadUnmatched();
  const unmatchedTimer = setInterval(loadUnmatched, 3000);
  return () => {
    stop();
    clearInterval(unmatchedTimer);
  };
}

function headerText(headers) {
  return Object.entries(headers || {}).map(([k, v]) =>
    `${k}: ${Array.isArray(v) ? v.join(', ') : v}`).join('\n');
}

function bodyText(req) {
  if (req.json !== undefined) return pretty(req.json);
  return req.body + (req.bodyTruncated ? '\n… (truncated)' : '');
}

// Opens the editor with a mock answering this request (method, exact path, its namespace).
export function createFrom(ns, req) {
  const def = {
    namespace: ns || state.ns,
    http: { route: req.path, httpMethod: (req.method || 'GET').toUpperCase() },
    response: { statusCode: 200, payload: {} },
  };
  sessionStorage.setItem('mk.prefill', JSON.stringify(def));
  toast(`New mock for ${req.method} ${req.path}: edit, then create`);
  go('#/mock?prefill=1');
}
