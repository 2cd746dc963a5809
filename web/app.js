// The Mockarty UI shell: the API client (session cookie, same-origin writes), who is logged in
// and what their roles allow, the router between views, and small DOM helpers the views share.

export const state = {
  me: null, // GET /api/v1/me
  ns: localStorage.getItem('mk.ns') || 'sandbox',
  namespaces: [],
  endpoints: null, // GET /api/v1/endpoints, to show only what this server has
};

// ---- API client ------------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, body, text) {
    const msg = (body && body.error) || text || `HTTP ${status}`;
    super(msg);
    this.status = status;
    this.code = body && body.code;
    // The API names the offending field first: "http.conditions[1].value: invalid regular ...".
    const m = /^([A-Za-z_][\w-]*(?:\[\d+\]|\.[A-Za-z_][\w-]*)*): /.exec(msg);
    this.field = m ? m[1] : null;
  }
}

function withQuery(path, query) {
  if (!query) return path;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? `${path}${path.includes('?') ? '&' : '?'}${s}` : path;
}

// Calls the API with the session cookie. Writes from a page of this origin carry its Origin
// header (the server's CSRF check) and X-Requested-With, which no cross-site form can send.
export async function api(method, path, body, opts = {}) {
  const init = {
    method,
    credentials: 'same-origin',
    headers: { Accept: 'application/json', 'X-Requested-With': 'mockarty-ui' },
  };
  if (body !== undefined) {
    if (opts.raw) {
      init.body = body;
      if (opts.contentType) init.headers['Content-Type'] = opts.contentType;
    } else {
      init.body = JSON.stringify(body);
      init.headers['Content-Type'] = 'application/json';
    }
  }
  const r = await fetch(withQuery(path, opts.query), init);
  if (opts.response) return r;
  const text = await r.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (e) {
    data = null;
  }
  if (!r.ok) {
    if (r.status === 401 && !path.endsWith('/login') && state.me) {
      state.me = null;
      go('#/login');
    }
    throw new ApiError(r.status, data, text);
  }
  return data === null && text ? text : data;
}

export function hasEndpoint(method, path) {
  return (state.endpoints || []).some((e) => e.method === method && e.path === path);
}

// ---- Roles (docs/security.md) -----------------------------------------------------------------

const READ = ['mocks:read', 'stores:read', 'requests:read', 'runs:read', 'namespaces:read',
  'members:read'];
const WRITE = ['mocks:write', 'stores:write', 'requests:write', 'runs:write'];
const OWNER = ['members:write', 'tokens:write', 'webhooks:read', 'webhooks:write', 'audit:read'];
const ROLE_PERMS = {
  viewer: READ,
  editor: READ.concat(WRITE),
  owner: READ.concat(WRITE, OWNER),
};

export function isAdmin() {
  return !!(state.me && state.me.admin);
}

// Whether the caller holds perm in ns (the current namespace by default; '*' for any).
export function can(perm, ns = state.ns) {
  if (!state.me) return false;
  if (state.me.admin) return true;
  const roles = state.me.roles || {};
  const has = (role) => (ROLE_PERMS[role] || []).includes(perm);
  if (ns === '*') return Object.values(roles).some(has);
  return has(roles[ns]);
}

// ---- DOM helpers ------------------------------------------------------------------------------

// h('button', {class: 'x', onclick: fn}, 'text', child): never parses HTML, so API data stays text.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// el.append(...) that skips null/false/undefined children (conditional controls).
export function add(el, ...children) {
  append(el, children);
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let toastTimer = 0;
export function toast(msg, kind = 'ok') {
  const t = document.getElementById('toast');
  t.textContent = msg;
  t.className = `toast show ${kind}`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.className = 'toast'), kind === 'error' ? 6000 : 2500);
}

export function fmtTime(ms) {
  if (!ms) return '—';
  const d = new Date(ms);
  return d.toLocaleString(undefined, { hour12: false });
}

export function pretty(v) {
  return typeof v === 'string' ? v : JSON.stringify(v, null, 2);
}

// A table from rows: cols = [{label, get(row) -> node or text, class}].
export function table(cols, rows, opts = {}) {
  return h('table', { class: `grid ${opts.class || ''}` },
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col', class: c.class }, c.label)))),
    h('tbody', {}, rows.length === 0
      ? h('tr', {}, h('td', { colspan: cols.length, class: 'muted' }, opts.empty || 'Nothing here.'))
      : rows.map((r) => h('tr', opts.rowAttrs ? opts.rowAttrs(r) : {},
        cols.map((c) => h('td', { class: c.class }, c.get(r)))))));
}

export function debounce(fn, ms) {
  let t = 0;
  return (...a) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...a), ms);
  };
}

// Runs an async action from a button, showing API errors as a toast.
export async function act(fn, okMsg) {
  try {
    const r = await fn();
    if (okMsg) toast(okMsg);
    return r;
  } catch (e) {
    toast(e.message, 'error');
    return undefined;
  }
}

export function download(name, text, type = 'application/json') {
  const a = h('a', { href: URL.createObjectURL(new Blob([text], { type })), download: name });
  document.body.append(a);
  a.click();
  a.remove();
}

// ---- Router -----------------------------------------------------------------------------------

const ROUTES = [
  { name: 'mocks', label: 'Mocks', perm: 'mocks:read' },
  { name: 'mock', label: null, perm: 'mocks:read', module: 'mocks' },
  { name: 'traffic', label: 'Traffic', perm: 'requests:read' },
  { name: 'stores', label: 'Stores', perm: 'stores:read' },
  { name: 'imports', label: 'Imports', perm: 'mocks:read' },
  { name: 'runs', label: 'Runners & runs', perm: 'runs:read' },
  { name: 'admin', label: 'Administration', perm: 'members:read' },
  { name: 'health', label: 'Health', perm: null },
  { name: 'login', label: null, perm: null },
];

export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

export function params() {
  const q = location.hash.indexOf('?');
  return new URLSearchParams(q < 0 ? '' : location.hash.slice(q + 1));
}

let cleanup = null;
let routing = 0;

async function route() {
  const seq = ++routing;
  const hash = location.hash.replace(/^#\/?/, '');
  const name = hash.split(/[/?]/)[0] || 'mocks';
  const r = ROUTES.find((x) => x.name === name) || ROUTES[0];
  if (typeof cleanup === 'function') cleanup();
  cleanup = null;
  const view = document.getElementById('view');
  if (!state.me && r.name !== 'login') {
    await loadMe();
    if (seq !== routing) return;
    if (!state.me) {
      go('#/login');
      return;
    }
  }
  renderChrome(r.name);
  if (r.perm && !can(r.perm, '*')) {
    clear(view, h('p', { class: 'error' }, 'Your role does not allow this view.'));
    return;
  }
  const mod = await import(`./views/${r.module || r.name}.js`);
  if (seq !== routing) return;
  clear(view);
  document.title = `${r.label || name} · Mockarty`;
  try {
    cleanup = await mod.render(view, { name, params: params() });
  } catch (e) {
    view.append(h('p', { class: 'error' }, e.message));
  }
}

export async function loadMe() {
  try {
    state.me = await api('GET', '/api/v1/me');
  } catch (e) {
    state.me = null;
    return;
  }
  try {
    const [ns, eps] = await Promise.all([
      api('GET', '/api/v1/namespaces').catch(() => ({ namespaces: [] })),
      api('GET', '/api/v1/endpoints').catch(() => []),
    ]);
    state.namespaces = ns.namespaces || [];
    state.endpoints = Array.isArray(eps) ? eps : eps.endpoints || [];
  } catch (e) {
    state.namespaces = [];
  }
  if (!state.namespaces.includes(state.ns) && state.namespaces.length) setNs(state.namespaces[0]);
}

export function setNs(ns) {
  state.ns = ns;
  localStorage.setItem('mk.ns', ns);
  const pick = document.getElementById('ns-pick');
  if (pick) pick.value = ns;
}

function renderChrome(current) {
  const nav = document.getElementById('nav');
  const loggedIn = !!state.me && current !== 'login';
  clear(nav, loggedIn ? ROUTES.filter((r) => r.label && (!r.perm || can(r.perm, '*'))).map((r) =>
    h('a', {
      href: `#/${r.name}`,
      'aria-current': r.name === current || (current === 'mock' && r.name === 'mocks')
        ? 'page' : null,
    }, r.label)) : []);
  const pick = document.getElementById('ns-pick');
  document.getElementById('ns-pick-label').hidden = !loggedIn;
  clear(pick, state.namespaces.map((n) => h('option', { value: n }, n)));
  pick.value = state.ns;
  const who = document.getElementById('who');
  if (!loggedIn) {
    clear(who);
    return;
  }
  const p = state.me.principal || {};
  const user = state.me.user;
  const role = state.me.admin ? 'admin' : (state.me.roles || {})[state.ns] || 'no role';
  clear(who,
    h('span', { class: 'muted', title: `credential: ${p.kind || ''}` },
      `${user ? user.login : p.login || p.kind || 'anonymous'} · ${role}`),
    user && p.kind !== 'anonymous'
      ? h('button', { class: 'link', id: 'logout', onclick: logout }, 'Log out') : null);
}

async function logout() {
  await act(() => api('POST', '/api/v1/auth/logout', {}));
  state.me = null;
  go('#/login');
}

function init() {
  document.getElementById('ns-pick').addEventListener('change', (e) => {
    setNs(e.target.value);
    route();
  });
  window.addEventListener('hashchange', route);
  route();
}

init();
