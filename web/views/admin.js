// Administration by role: namespaces and members (owners), users (administrators), tokens
// (a created secret is shown once, here, and never again), the audit log, webhooks.
import {
  add, api, h, clear, state, can, isAdmin, act, fmtTime, table, toast,
} from '../app.js';

const ROLES = ['viewer', 'editor', 'owner'];

export async function render(root) {
  const tabs = [
    { key: 'members', label: 'Namespaces & members', show: can('members:read') },
    { key: 'users', label: 'Users', show: isAdmin() },
    { key: 'tokens', label: 'Tokens', show: true },
    { key: 'audit', label: 'Audit log', show: can('audit:read') },
    { key: 'webhooks', label: 'Webhooks', show: can('webhooks:read') },
  ].filter((t) => t.show);
  const bar = h('div', { class: 'tabs', role: 'tablist' });
  const panel = h('div', { role: 'tabpanel', id: 'admin-panel' });
  add(root, h('div', { class: 'toolbar' }, h('h1', {}, 'Administration')), bar, panel);
  const show = (key) => {
    for (const b of bar.children) b.setAttribute('aria-selected', String(b.dataset.tab === key));
    clear(panel);
    ({ members, users, tokens, audit, webhooks })[key](panel);
  };
  clear(bar, tabs.map((t) => h('button', {
    role: 'tab', 'data-tab': t.key, onclick: () => show(t.key),
  }, t.label)));
  show(tabs[0].key);
}

async function members(panel) {
  const ns = state.ns;
  const list = h('div');
  const nsForm = isAdmin() ? h('form', {
    class: 'filters', onsubmit: async (e) => {
      e.preventDefault();
      const name = e.target.elements.nsname.value.trim();
      await act(() => api('POST', '/api/v1/namespaces', { name }), `Namespace ${name} ready`);
      if (!state.namespaces.includes(name)) state.namespaces.push(name);
    },
  }, h('input', { name: 'nsname', placeholder: 'new namespace', 'aria-label': 'New namespace' }),
  h('button', { type: 'submit' }, 'Create namespace')) : null;
  const users = isAdmin() ? await api('GET', '/api/v1/users').then((r) => r.items || r.users || r)
    .catch(() => []) : [];
  const addForm = can('members:write') ? h('form', {
    class: 'filters', onsubmit: async (e) => {
      e.preventDefault();
      const el = e.target.elements;
      await act(() => api('POST', `/api/v1/namespaces/${encodeURIComponent(ns)}/members`,
        { userId: el.user.value, role: el.role.value }), 'Member added');
      load();
    },
  },
  users.length ? h('select', { name: 'user', 'aria-label': 'User' },
    users.map((u) => h('option', { value: u.id }, u.login)))
    : h('input', { name: 'user', placeholder: 'user id', 'aria-label': 'User id' }),
  h('select', { name: 'role', 'aria-label': 'Role' }, ROLES.map((r) => h('option', { value: r }, r))),
  h('button', { type: 'submit' }, 'Add member')) : null;
  add(panel, h('h2', {}, `Members of ${ns}`), list, addForm, nsForm);
  async function load() {
    const r = await api('GET', `/api/v1/namespaces/${encodeURIComponent(ns)}/members`)
      .catch((e) => ({ error: e.message }));
    if (r.error) {
      clear(list, h('p', { class: 'error' }, r.error));
      return;
    }
    clear(list, table([
      { label: 'User', get: (m) => m.username || m.userId },
      { label: 'Email', get: (m) => m.email || '' },
      {
        label: 'Role', get: (m) => can('members:write') ? (() => {
          const s = h('select', {
            'aria-label': `Role of ${m.username}`,
            onchange: (e) => act(() => api('PUT', `/api/v1/namespaces/${encodeURIComponent(ns)}/members/${encodeURIComponent(m.userId)}`,
              { role: e.target.value }), 'Role changed'),
          }, ROLES.map((r) => h('option', { value: r }, r)));
          s.value = m.role;
          return s;
        })() : m.role,
      },
      {
        label: '', get: (m) => can('members:write') ? h('button', {
          class: 'small danger',
          onclick: () => act(() => api('DELETE', `/api/v1/namespaces/${encodeURIComponent(ns)}/members/${encodeURIComponent(m.userId)}`),
            'Removed').then(load),
        }, 'Remove') : null,
      },
    ], Array.isArray(r) ? r : r.items || r.members || [], { empty: 'No members.' }));
  }
  load();
}

async function users(panel) {
  const list = h('div');
  const form = h('form', { class: 'filters', onsubmit: create },
    h('input', { name: 'login', placeholder: 'login', 'aria-label': 'Login', required: true }),
    h('input', { name: 'email', placeholder: 'email', 'aria-label': 'Email' }),
    h('input', {
      name: 'password', type: 'password', placeholder: 'password (8+)', autocomplete: 'new-password',
      'aria-label': 'Password', required: true,
    }),
    h('select', { name: 'role', 'aria-label': 'System role' },
      h('option', { value: 'user' }, 'user'), h('option', { value: 'admin' }, 'admin')),
    h('button', { type: 'submit' }, 'Create user'));
  add(panel, h('h2', {}, 'Users'), list, form);
  async function create(e) {
    e.preventDefault();
    const el = e.target.elements;
    const body = { login: el.login.value, password: el.password.value, system_role: el.role.value };
    if (el.email.value) body.email = el.email.value;
    await act(() => api('POST', '/api/v1/users', body), `User ${el.login.value} created`);
    el.password.value = '';
    load();
  }
  async function load() {
    const r = await api('GET', '/api/v1/users').catch((e) => ({ error: e.message }));
    if (r.error) {
      clear(list, h('p', { class: 'error' }, r.error));
      return;
    }
    clear(list, table([
      { label: 'Login', get: (u) => u.login },
      { label: 'Email', get: (u) => u.email || '' },
      { label: 'System role', get: (u) => u.system_role || u.systemRole || '' },
      { label: 'Namespaces', get: (u) => (u.namespaces || []).map((n) => typeof n === 'string' ? n : `${n.namespace}:${n.role}`).join(', ') },
      {
        label: '', get: (u) => h('button', {
          class: 'small danger',
          onclick: () => confirm(`Delete user ${u.login}?`) &&
            act(() => api('DELETE', `/api/v1/users/${encodeURIComponent(u.id)}`), 'Deleted').then(load),
        }, 'Delete'),
      },
    ], r.items || r.users || (Array.isArray(r) ? r : [])));
  }
  load();
}

async function tokens(panel) {
  const list = h('div');
  const secret = h('div', { id: 'token-secret', 'aria-live': 'polite' });
  const form = h('form', { class: 'filters', onsubmit: create },
    h('input', { name: 'name', placeholder: 'token name', 'aria-label': 'Token name', required: true }),
    h('select', { name: 'kind', 'aria-label': 'Kind' },
      h('option', { value: 'personal' }, 'personal'),
      can('tokens:write') ? h('option', { value: 'integration' }, 'integration') : null),
    h('select', { name: 'ns', 'aria-label': 'Namespace' },
      isAdmin() ? h('option', { value: '' }, 'all namespaces') : null,
      state.namespaces.map((n) => h('option', { value: n }, n))),
    h('select', { name: 'role', 'aria-label': 'Role (integration)' },
      ROLES.map((r) => h('option', { value: r }, r)),
      isAdmin() ? h('option', { value: 'admin' }, 'admin') : null),
    h('button', { type: 'submit' }, 'Create token'));
  add(panel, h('h2', {}, 'Tokens'), secret, list, form);
  async function create(e) {
    e.preventDefault();
    const el = e.target.elements;
    const body = { name: el.name.value, kind: el.kind.value };
    if (el.ns.value) body.namespace = el.ns.value;
    if (el.kind.value === 'integration') body.role = el.role.value;
    const r = await act(() => api('POST', '/api/v1/auth/tokens', body));
    if (!r) return;
    // The secret exists only in this answer: shown once, never stored by the UI.
    const code = h('code', {}, r.token);
    clear(secret, h('div', { class: 'secret', role: 'alert' },
      h('p', {}, 'Copy the token now: it will not be shown again.'), code, ' ',
      h('button', {
        type: 'button', class: 'small',
        onclick: () => navigator.clipboard && navigator.clipboard.writeText(r.token)
          .then(() => toast('Copied')),
      }, 'Copy'),
      h('button', { type: 'button', class: 'small', onclick: () => clear(secret) }, 'Done')));
    load();
  }
  async function load() {
    const r = await api('GET', '/api/v1/auth/tokens').catch((e) => ({ error: e.message }));
    if (r.error) {
      clear(list, h('p', { class: 'error' }, r.error));
      return;
    }
    const items = r.items || r.tokens || (Array.isArray(r) ? r : []);
    clear(list, table([
      { label: 'Name', get: (t) => t.name },
      { label: 'Prefix', class: 'mono', get: (t) => t.prefix || t.token_prefix || '' },
      { label: 'Kind', get: (t) => t.kind || '' },
      { label: 'Scope', get: (t) => t.namespace || 'all' },
      { label: 'Last used', get: (t) => t.last_used_at || '—' },
      {
        label: '', get: (t) => h('button', {
          class: 'small danger',
          onclick: () => act(() => api('DELETE', `/api/v1/auth/tokens/${encodeURIComponent(t.id)}`),
            'Revoked').then(load),
        }, 'Revoke'),
      },
    ], items, { empty: 'No tokens.' }));
  }
  load();
}

async function audit(panel) {
  const actor = h('input', { placeholder: 'actor', 'aria-label': 'Actor' });
  const action = h('input', { placeholder: 'action', 'aria-label': 'Action' });
  const list = h('div', { id: 'audit' });
  add(panel, h('div', { class: 'filters' }, actor, action,
    h('button', { onclick: load }, 'Filter')), list);
  async function load() {
    const query = { actor: actor.value, action: action.value, limit: 200 };
    if (!isAdmin()) query.namespace = state.ns;
    const r = await api('GET', '/api/v1/audit', undefined, { query })
      .catch((e) => ({ error: e.message }));
    if (r.error) {
      clear(list, h('p', { class: 'error' }, r.error));
      return;
    }
    clear(list, table([
      { label: 'When', get: (a) => fmtTime(a.timestamp || a.at || a.createdAt) },
      { label: 'Actor', get: (a) => a.actor },
      { label: 'Action', class: 'mono', get: (a) => a.action },
      { label: 'Namespace', get: (a) => a.namespace || '' },
      { label: 'Object', get: (a) => [a.kind, a.object_id || a.objectId].filter(Boolean).join(' ') },
      { label: 'Status', get: (a) => String(a.status ?? '') },
    ], r.items || (Array.isArray(r) ? r : []), { class: 'compact', empty: 'No audit rows.' }));
  }
  load();
}

async function webhooks(panel) {
  const ns = state.ns;
  const list = h('div');
  const secret = h('div');
  const form = can('webhooks:write') ? h('form', {
    class: 'filters', onsubmit: async (e) => {
      e.preventDefault();
      const el = e.target.elements;
      const r = await act(() => api('POST', `/api/v1/namespaces/${encodeURIComponent(ns)}/webhooks`,
        { url: el.url.value }));
      if (r) {
        clear(secret, h('div', { class: 'secret', role: 'alert' },
          'Signing secret (shown once): ', h('code', {}, r.secret)));
        load();
      }
    },
  }, h('input', { name: 'url', placeholder: 'https://ci.example/hook', 'aria-label': 'URL', required: true }),
  h('button', { type: 'submit' }, 'Add webhook')) : null;
  add(panel, h('h2', {}, `Webhooks of ${ns}`), secret, list, form);
  async function load() {
    const r = await api('GET', `/api/v1/namespaces/${encodeURIComponent(ns)}/webhooks`)
      .catch((e) => ({ error: e.message }));
    if (r.error) {
      clear(list, h('p', { class: 'error' }, r.error));
      return;
    }
    clear(list, table([
      { label: 'URL', class: 'mono', get: (w) => w.url },
      { label: 'Events', get: (w) => (w.events || []).join(', ') },
      {
        label: '', get: (w) => can('webhooks:write') ? h('button', {
          class: 'small danger',
          onclick: () => act(() => api('DELETE', `/api/v1/namespaces/${encodeURIComponent(ns)}/webhooks/${encodeURIComponent(w.id)}`),
            'Removed').then(load),
        }, 'Remove') : null,
      },
    ], r.items || (Array.isArray(r) ? r : []), { empty: 'No webhooks.' }));
  }
  load();
}
