// Imports: OpenAPI, HAR, WireMock, Postman, GraphQL: upload or paste, preview (stores nothing),
// then create the mocks in one transaction.
import { add, api, h, clear, state, can, toast, table, hasEndpoint } from '../app.js';

const KINDS = [
  { key: 'openapi', label: 'OpenAPI 3 (JSON or YAML)', path: '/api/v1/generators/openapi' },
  { key: 'har', label: 'HAR 1.2 capture', path: '/api/v1/generators/har' },
  { key: 'wiremock', label: 'WireMock mappings', path: '/api/v1/import/wiremock' },
  { key: 'postman', label: 'Postman v2.1 collection', path: '/api/v1/import/postman' },
  { key: 'graphql', label: 'GraphQL SDL', path: '/api/v1/generators/graphql' },
];

export async function render(root) {
  const kinds = KINDS.filter((k) => !state.endpoints || hasEndpoint('POST', `${k.path}/preview`));
  const kind = h('select', { id: 'import-kind', 'aria-label': 'Format' },
    kinds.map((k) => h('option', { value: k.key }, k.label)));
  const file = h('input', { type: 'file', id: 'import-file', 'aria-label': 'File' });
  const text = h('textarea', {
    id: 'import-text', rows: 12, class: 'mono', placeholder: 'or paste the document here',
    'aria-label': 'Document',
  });
  const out = h('div', { id: 'import-preview' });
  const create = h('button', { class: 'primary', id: 'import-create', disabled: true }, 'Create mocks');
  add(root,
    h('div', { class: 'toolbar' }, h('h1', {}, `Import into ${state.ns}`)),
    h('div', { class: 'card' },
      h('div', { class: 'filters' }, kind, file),
      text,
      h('div', { class: 'actions' },
        h('button', { id: 'import-preview-btn', onclick: preview }, 'Preview'),
        can('mocks:write') ? create : null)),
    out);
  file.addEventListener('change', async () => {
    if (file.files[0]) text.value = await file.files[0].text();
  });
  create.addEventListener('click', doCreate);

  function target() {
    return kinds.find((k) => k.key === kind.value);
  }
  function send(path) {
    return api('POST', path, text.value, {
      raw: true, contentType: 'application/json', query: { namespace: state.ns },
    });
  }
  async function preview() {
    create.disabled = true;
    let r;
    try {
      r = await send(`${target().path}/preview`);
    } catch (e) {
      clear(out, h('p', { class: 'error', role: 'alert' }, e.message));
      return;
    }
    const mocks = r.mocks || r.items || (Array.isArray(r) ? r : []);
    clear(out, h('h2', {}, `${mocks.length} mocks would be created`),
      (r.warnings || []).length ? h('ul', { class: 'error' }, r.warnings.map((w) =>
        h('li', {}, typeof w === 'string' ? w : JSON.stringify(w)))) : null,
      table([
        { label: 'ID', get: (m) => m.id || '(generated)' },
        { label: 'Method', get: (m) => (m.http && m.http.httpMethod) || '' },
        { label: 'Route', class: 'mono', get: (m) => (m.http && m.http.route) || '' },
        { label: 'Status', get: (m) => String((m.response && m.response.statusCode) || 200) },
      ], mocks));
    create.disabled = mocks.length === 0;
  }
  async function doCreate() {
    try {
      const r = await send(target().path);
      toast(`Created ${r.created ?? r.total ?? (r.items || []).length} mocks`);
      create.disabled = true;
    } catch (e) {
      toast(e.message, 'error');
    }
  }
}
