// Mocks: the list of a namespace (search, tags, protocol, live/deleted, server-side pages) and the
// editor (a form for the common fields beside a JSON editor of the whole definition).
import {
  add, api, h, clear, state, can, toast, act, fmtTime, pretty, table, debounce, go, ApiError,
} from '../app.js';

const PAGE = 50;
const METHODS = ['ANY', 'GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];
const ACTIONS = ['equals', 'not_equals', 'contains', 'not_contains', 'matches', 'any', 'notEmpty',
  'empty'];
const COND_KINDS = [
  { key: 'conditions', label: 'Body conditions (JSONPath)', hint: '$.user.id' },
  { key: 'queryParams', label: 'Query conditions', hint: 'page' },
  { key: 'header', label: 'Header conditions', hint: 'X-Env' },
];

export async function render(root, ctx) {
  if (ctx.name === 'mock') return renderEditor(root, ctx.params);
  return renderList(root, ctx.params);
}

function protocolOf(m) {
  return m.grpc ? 'grpc' : m.socket ? 'socket' : m.soap ? 'soap' : 'http';
}

// ---- List -------------------------------------------------------------------------------------

async function renderList(root, params) {
  const writer = can('mocks:write');
  const f = {
    search: params.get('search') || '',
    tags: params.get('tags') || '',
    protocol: params.get('protocol') || '',
    deleted: params.get('deleted') === 'true',
    offset: Number(params.get('offset') || 0),
  };
  const search = h('input', {
    id: 'mock-search', type: 'search', placeholder: 'id, route or tag', value: f.search,
    'aria-label': 'Search mocks',
  });
  const tags = h('input', {
    id: 'mock-tags', list: 'tag-list', placeholder: 'tag1,tag2', value: f.tags,
    'aria-label': 'Tags (all of)',
  });
  const tagList = h('datalist', { id: 'tag-list' });
  const protocol = h('select', { id: 'mock-protocol', 'aria-label': 'Protocol' },
    h('option', { value: '' }, 'any protocol'),
    ['http', 'grpc'].map((p) => h('option', { value: p }, p)));
  protocol.value = f.protocol;
  const status = h('select', { id: 'mock-status', 'aria-label': 'Status' },
    h('option', { value: 'live' }, 'live'), h('option', { value: 'deleted' }, 'deleted'));
  status.value = f.deleted ? 'deleted' : 'live';
  const body = h('div', { id: 'mock-list' });
  const info = h('span', { class: 'muted', id: 'mock-total' });
  const prev = h('button', { id: 'page-prev', onclick: () => page(-1) }, '← Previous');
  const next = h('button', { id: 'page-next', onclick: () => page(1) }, 'Next →');

  add(root,
    h('div', { class: 'toolbar' },
      h('h1', {}, `Mocks in ${state.ns}`),
      h('span', { class: 'spacer' }),
      writer ? h('a', { class: 'button primary', href: '#/mock?new=1', id: 'new-mock' }, 'New mock')
        : null),
    h('div', { class: 'filters', role: 'search' }, search, tags, tagList, protocol, status),
    body,
    h('div', { class: 'pager' }, prev, info, next));

  api('GET', '/api/v1/tags', undefined, { query: { namespace: state.ns } })
    .then((t) => clear(tagList, (Array.isArray(t) ? t : t.tags || []).map((x) =>
      h('option', { value: typeof x === 'string' ? x : x.name }))))
    .catch(() => {});

  let seq = 0;
  async function load() {
    const my = ++seq;
    const query = {
      namespace: state.ns, search: f.search, tags: f.tags, protocol: f.protocol,
      offset: f.offset, limit: PAGE,
    };
    if (f.deleted) query.deleted = 'true';
    let res;
    try {
      res = await api('GET', '/api/v1/mocks', undefined, { query });
    } catch (e) {
      clear(body, h('p', { class: 'error' }, e.message));
      return;
    }
    if (my !== seq) return; // a newer filter already asked
    const items = res.items || [];
    const total = res.total || 0;
    info.textContent = total ? `${f.offset + 1}–${f.offset + items.length} of ${total}` : '0 mocks';
    prev.disabled = f.offset === 0;
    next.disabled = f.offset + items.length >= total;
    clear(body, table([
      { label: 'ID', get: (m) => h('a', { href: `#/mock?id=${encodeURIComponent(m.id)}` }, m.id) },
      { label: 'Method', get: (m) => (m.http && m.http.httpMethod) || (m.grpc ? 'gRPC' : 'ANY') },
      { label: 'Route', class: 'mono', get: (m) => mockRoute(m) },
      { label: 'Protocol', get: protocolOf },
      { label: 'Status', get: (m) => String((m.response && m.response.statusCode) || 200) },
      { label: 'Tags', get: (m) => (m.tags || []).map((t) => h('span', { class: 'tag' }, t)) },
      { label: 'Uses', class: 'num', get: (m) => String(m.useCounter ?? m.useCount ?? 0) },
      { label: 'Last use', get: (m) => fmtTime(m.lastUse) },
      { label: 'Actions', get: (m) => rowActions(m) },
    ], items, { empty: 'No mocks match.', rowAttrs: (m) => ({ 'data-id': m.id }) }));
  }

  function rowActions(m) {
    if (!writer) return h('a', { href: `#/mock?id=${encodeURIComponent(m.id)}` }, 'View');
    const id = encodeURIComponent(m.id);
    if (f.deleted) {
      return [
        h('button', {
          class: 'small', 'data-action': 'restore',
          onclick: () => act(() => api('POST', `/api/v1/mocks/${id}/restore`), 'Restored')
            .then(load),
        }, 'Restore'),
        h('button', {
          class: 'small danger', 'data-action': 'purge',
          onclick: () => confirm(`Purge ${m.id} for good?`) &&
            act(() => api('DELETE', `/api/v1/mocks/${id}/purge`), 'Purged').then(load),
        }, 'Purge'),
      ];
    }
    return [
      h('a', { class: 'button small', href: `#/mock?id=${id}` }, 'Edit'),
      h('a', { class: 'button small', href: `#/mock?clone=${id}`, 'data-action': 'clone' },
        'Clone'),
      h('button', {
        class: 'small danger', 'data-action': 'delete',
        onclick: () => act(() => api('DELETE', `/api/v1/mocks/${id}`), 'Deleted (restorable)')
          .then(load),
      }, 'Delete'),
    ];
  }

  function page(dir) {
    f.offset = Math.max(0, f.offset + dir * PAGE);
    load();
  }
  const refilter = () => {
    f.search = search.value;
    f.tags = tags.value;
    f.protocol = protocol.value;
    f.deleted = status.value === 'deleted';
    f.offset = 0;
    load();
  };
  search.addEventListener('input', debounce(refilter, 200));
  tags.addEventListener('input', debounce(refilter, 300));
  protocol.addEventListener('change', refilter);
  status.addEventListener('change', refilter);
  await load();
  search.focus();
}

function mockRoute(m) {
  if (m.http) return `${m.http.pathPrefix || ''}${m.http.route || ''}`;
  if (m.grpc) return `${m.grpc.service || ''}/${m.grpc.method || ''}`;
  return '';
}

// ---- Editor -----------------------------------------------------------------------------------

function getPath(obj, path) {
  return path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

function setPath(obj, path, value) {
  const keys = path.split('.');
  let o = obj;
  for (const k of keys.slice(0, -1)) {
    if (typeof o[k] !== 'object' || o[k] === null) o[k] = {};
    o = o[k];
  }
  const last = keys[keys.length - 1];
  if (value === undefined || value === '') delete o[last];
  else o[last] = value;
}

// A condition's value as typed: JSON when it parses (42, true, {"a":1}), else the text itself.
function parseLoose(text) {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    return text;
  }
}

function showLoose(v) {
  return v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v);
}

// Only the fields a user writes: the server-set ones would be refused or ignored.
const SERVER_FIELDS = ['createdAt', 'updatedAt', 'expireAt', 'closedAt', 'lastUse', 'useCount',
  'useCounter'];

function blankMock() {
  return { http: { route: '/', httpMethod: 'GET' }, response: { statusCode: 200, payload: {} } };
}

async function renderEditor(root, params) {
  const writer = can('mocks:write');
  const id = params.get('id');
  const cloneOf = params.get('clone');
  let def;
  let existing = null;
  if (id || cloneOf) {
    try {
      existing = await api('GET', `/api/v1/mocks/${encodeURIComponent(id || cloneOf)}`);
    } catch (e) {
      add(root, h('p', { class: 'error' }, e.message));
      return;
    }
    def = structuredClone(existing);
    for (const k of SERVER_FIELDS) delete def[k];
    if (cloneOf) {
      delete def.id;
      existing = null;
    }
  } else if (params.get('prefill')) {
    def = JSON.parse(sessionStorage.getItem('mk.prefill') || 'null') || blankMock();
  } else {
    def = blankMock();
  }
  const ns = (existing && existing.namespace) || def.namespace || state.ns;
  // gRPC (and other non-HTTP) mocks: the form keeps to the fields they share.
  const http = !Object.keys(def).some((k) => ['grpc', 'socket', 'kafka', 'mcp'].includes(k));
  const ro = !writer;

  const jsonBox = h('textarea', {
    id: 'mock-json', class: 'json', spellcheck: 'false', rows: 28, readonly: ro,
    'data-path': '', 'aria-label': 'The whole definition as JSON',
  });
  const jsonErr = h('p', { class: 'field-error', id: 'mock-json-error', role: 'alert' });
  const formErr = h('p', { class: 'error', id: 'mock-error', role: 'alert' });

  const field = (label, path, input) => {
    input.dataset.path = path;
    input.id = input.id || `f-${path.replace(/\W/g, '-')}`;
    if (ro) input.disabled = true;
    return h('div', { class: 'field' }, h('label', { for: input.id }, label), input);
  };
  const idIn = h('input', { placeholder: 'generated when empty', readonly: !!existing });
  const methodIn = h('select', {}, METHODS.map((m) => h('option', { value: m }, m)));
  const routeIn = h('input', { placeholder: '/users/:id', class: 'mono' });
  const prioIn = h('input', { type: 'number', placeholder: '0' });
  const tagsIn = h('input', { placeholder: 'smoke, v2' });
  const statusIn = h('input', { type: 'number', min: 100, max: 599 });
  const delayIn = h('input', { type: 'number', min: 0, placeholder: 'ms' });
  const headersIn = h('textarea', { rows: 3, class: 'mono', placeholder: 'Content-Type: application/json' });
  const payloadIn = h('textarea', { rows: 8, class: 'mono', placeholder: '{"name": "ann"}' });
  const condBox = h('div', { class: 'conds' });

  const form = h('form', { class: 'mock-form', id: 'mock-form', onsubmit: save },
    h('div', { class: 'row' },
      field('ID', 'id', idIn),
      h('div', { class: 'field' }, h('label', {}, 'Namespace'), h('output', {}, ns))),
    http ? h('div', { class: 'row' },
      field('Method', 'http.httpMethod', methodIn),
      field('Route', 'http.route', routeIn),
      field('Priority', 'priority', prioIn))
      : h('p', { class: 'muted' }, 'Not an HTTP mock: edit its request in the JSON.'),
    field('Tags (comma-separated)', 'tags', tagsIn),
    http ? condBox : null,
    h('h3', {}, 'Response'),
    h('div', { class: 'row' },
      field('Status', 'response.statusCode', statusIn),
      field('Delay (ms)', 'response.delay', delayIn)),
    field('Headers (one "Name: value" a line)', 'response.headers', headersIn),
    field('Payload (JSON, or text)', 'response.payload', payloadIn),
    formErr,
    writer ? h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary', id: 'mock-save' },
        existing ? 'Save' : 'Create'),
      h('a', { class: 'button', href: '#/mocks' }, 'Cancel')) : null);

  // Form -> definition -> JSON box.
  function fromForm() {
    setPath(def, 'id', idIn.value.trim() || undefined);
    if (http) {
      def.http = def.http || {};
      setPath(def, 'http.httpMethod', methodIn.value);
      setPath(def, 'http.route', routeIn.value);
      setPath(def, 'priority', prioIn.value === '' ? undefined : Number(prioIn.value));
    }
    const tags = tagsIn.value.split(',').map((t) => t.trim()).filter(Boolean);
    setPath(def, 'tags', tags.length ? tags : undefined);
    def.response = def.response || {};
    setPath(def, 'response.statusCode', statusIn.value === '' ? undefined : Number(statusIn.value));
    setPath(def, 'response.delay', delayIn.value === '' ? undefined : Number(delayIn.value));
    const hdrs = {};
    for (const line of headersIn.value.split('\n')) {
      const i = line.indexOf(':');
      if (i > 0) (hdrs[line.slice(0, i).trim()] ||= []).push(line.slice(i + 1).trim());
    }
    setPath(def, 'response.headers', Object.keys(hdrs).length ? hdrs : undefined);
    setPath(def, 'response.payload', parseLoose(payloadIn.value));
    jsonBox.value = JSON.stringify(def, null, 2);
  }

  // Definition -> form (after the JSON box changed, and at the start).
  function toForm() {
    idIn.value = def.id || '';
    methodIn.value = (getPath(def, 'http.httpMethod') || 'ANY').toUpperCase();
    routeIn.value = getPath(def, 'http.route') || '';
    prioIn.value = def.priority ?? '';
    tagsIn.value = (def.tags || []).join(', ');
    statusIn.value = getPath(def, 'response.statusCode') ?? '';
    delayIn.value = typeof getPath(def, 'response.delay') === 'number' ? def.response.delay : '';
    const hd = getPath(def, 'response.headers') || {};
    headersIn.value = Object.entries(hd).flatMap(([k, v]) =>
      (Array.isArray(v) ? v : [v]).map((x) => `${k}: ${x}`)).join('\n');
    const p = getPath(def, 'response.payload');
    payloadIn.value = p === undefined ? '' : pretty(p);
    renderConds();
  }

  function renderConds() {
    clear(condBox, COND_KINDS.map((k) => {
      const list = (def.http && def.http[k.key]) || [];
      return h('fieldset', { class: 'cond-kind' },
        h('legend', {}, k.label),
        list.map((c, i) => {
          const base = `http.${k.key}[${i}]`;
          const pathIn = h('input', { value: c.path || '', placeholder: k.hint, class: 'mono' });
          const actIn = h('select', {}, ACTIONS.map((a) => h('option', { value: a }, a)));
          actIn.value = c.assertAction || 'equals';
          const valIn = h('input', { value: showLoose(c.value), class: 'mono', placeholder: 'value' });
          const sync = () => {
            c.path = pathIn.value;
            c.assertAction = actIn.value;
            const v = parseLoose(valIn.value);
            if (v === undefined) delete c.value;
            else c.value = v;
            jsonBox.value = JSON.stringify(def, null, 2);
          };
          for (const el of [pathIn, actIn, valIn]) el.addEventListener('input', sync);
          return h('div', { class: 'row cond', 'data-path': base },
            field('Path', `${base}.path`, pathIn),
            field('Action', `${base}.assertAction`, actIn),
            field('Value', `${base}.value`, valIn),
            writer ? h('button', {
              type: 'button', class: 'small', 'aria-label': `Remove ${k.label} ${i + 1}`,
              onclick: () => {
                list.splice(i, 1);
                if (!list.length) delete def.http[k.key];
                renderConds();
                jsonBox.value = JSON.stringify(def, null, 2);
              },
            }, '✕') : null);
        }),
        writer ? h('button', {
          type: 'button', class: 'small', 'data-add': k.key,
          onclick: () => {
            def.http = def.http || {};
            (def.http[k.key] ||= []).push({ path: '', assertAction: 'equals' });
            renderConds();
            jsonBox.value = JSON.stringify(def, null, 2);
            condBox.querySelector(`[data-path="http.${k.key}[${def.http[k.key].length - 1}].path"]`)
              .focus();
          },
        }, `+ ${k.label.split(' ')[0].toLowerCase()} condition`) : null);
    }));
  }

  form.addEventListener('input', (e) => {
    if (!e.target.closest('.cond')) fromForm();
  });
  form.addEventListener('change', (e) => {
    if (!e.target.closest('.cond')) fromForm();
  });
  jsonBox.addEventListener('input', () => {
    try {
      const d = JSON.parse(jsonBox.value);
      if (typeof d !== 'object' || d === null || Array.isArray(d)) throw new Error('not an object');
      def = d;
      jsonErr.textContent = '';
      jsonBox.removeAttribute('aria-invalid');
      toForm();
    } catch (e) {
      jsonErr.textContent = `Not valid JSON: ${e.message}`;
      jsonBox.setAttribute('aria-invalid', 'true');
    }
  });

  function clearErrors() {
    formErr.textContent = '';
    for (const el of root.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
    for (const el of root.querySelectorAll('.field-error.api')) el.remove();
  }

  // Puts the API's message at the field it names, or the nearest enclosing one it has.
  function showError(e) {
    let path = e.field;
    let el = null;
    while (path) {
      el = root.querySelector(`[data-path="${CSS.escape(path)}"]`);
      if (el) break;
      const up = path.replace(/(\[\d+\]|\.[^.[\]]+)$/, '');
      if (up === path) break;
      path = up;
    }
    if (!el) el = jsonBox;
    const msg = h('p', { class: 'field-error api', role: 'alert', id: `err-${Date.now()}` },
      e.message);
    el.setAttribute('aria-invalid', 'true');
    el.setAttribute('aria-describedby', msg.id);
    el.after(msg);
    if (el.focus) el.focus();
    formErr.textContent = 'The server refused the mock; see the marked field.';
  }

  async function save(e) {
    e.preventDefault();
    clearErrors();
    let body;
    try {
      body = JSON.parse(jsonBox.value);
    } catch (x) {
      jsonErr.textContent = `Not valid JSON: ${x.message}`;
      jsonBox.focus();
      return;
    }
    try {
      const r = await api('POST', '/api/v1/mocks', body, { query: { namespace: ns } });
      const saved = r.mock || r;
      toast(r.overwritten ? `Saved ${saved.id}` : `Created ${saved.id}`);
      go(`#/mock?id=${encodeURIComponent(saved.id)}`);
    } catch (x) {
      if (x instanceof ApiError && x.status === 400) showError(x);
      else formErr.textContent = x.message;
    }
  }

  const side = h('section', { class: 'side' });
  add(root,
    h('div', { class: 'toolbar' },
      h('h1', {}, existing ? `Mock ${existing.id}` : cloneOf ? `Clone of ${cloneOf}` : 'New mock'),
      h('span', { class: 'spacer' }),
      h('a', { class: 'button', href: '#/mocks' }, '← All mocks')),
    ro ? h('p', { class: 'muted' }, 'Read-only: your role cannot change mocks here.') : null,
    h('div', { class: 'editor' },
      h('section', {}, form),
      h('section', {}, h('label', { for: 'mock-json' }, 'Definition (JSON)'), jsonBox, jsonErr),
      side));
  toForm();
  jsonBox.value = JSON.stringify(def, null, 2);
  if (existing) renderUsage(side, existing);
  (existing ? routeIn : idIn).focus();
}

async function renderUsage(side, m) {
  add(side, h('h3', {}, 'Use'),
    h('dl', { class: 'kv' },
      h('dt', {}, 'Use count'), h('dd', { id: 'use-count' }, String(m.useCounter ?? m.useCount ?? 0)),
      h('dt', {}, 'Last use'), h('dd', {}, fmtTime(m.lastUse)),
      h('dt', {}, 'Created'), h('dd', {}, fmtTime(m.createdAt)),
      h('dt', {}, 'Updated'), h('dd', {}, fmtTime(m.updatedAt))),
    h('h3', {}, 'Recent requests'));
  const box = h('div', { id: 'recent-requests' });
  add(side, box);
  try {
    const r = await api('GET', `/api/v1/mocks/${encodeURIComponent(m.id)}/logs`, undefined,
      { query: { limit: 10 } });
    const logs = r.logs || r.requests || [];
    clear(box, logs.length === 0 ? h('p', { class: 'muted' }, 'No requests yet.')
      : h('ul', { class: 'plain' }, logs.map((l) => h('li', {},
        h('details', {},
          h('summary', {}, `${fmtTime(l.timestamp)} ${l.request.method} ${l.request.path} → `
            + `${l.response && l.response.status}`),
          h('pre', {}, pretty(l.request)))))));
  } catch (e) {
    clear(box, h('p', { class: 'error' }, e.message));
  }
}
