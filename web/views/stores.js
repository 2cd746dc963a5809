// Stores: the namespace's global store (gS) and any chain store (cS): browse, set, delete keys.
import { add, api, h, clear, state, can, act, pretty, table } from '../app.js';

export async function render(root) {
  const writer = can('stores:write');
  const chainIn = h('input', { id: 'chain-id', placeholder: 'chain id', 'aria-label': 'Chain id' });
  const kind = h('select', { id: 'store-kind', 'aria-label': 'Store' },
    h('option', { value: 'global' }, 'Global store (gS)'),
    h('option', { value: 'chain' }, 'Chain store (cS)'));
  const box = h('div', { id: 'store' });
  const keyIn = h('input', { id: 'store-key', placeholder: 'key', 'aria-label': 'Key' });
  const valIn = h('textarea', {
    id: 'store-value', rows: 3, class: 'mono', placeholder: 'JSON value, or text',
    'aria-label': 'Value',
  });
  chainIn.hidden = true;
  add(root,
    h('div', { class: 'toolbar' }, h('h1', {}, `Stores in ${state.ns}`)),
    h('div', { class: 'filters' }, kind, chainIn, h('button', { onclick: load }, 'Show')),
    box,
    writer ? h('form', { class: 'card', onsubmit: setKey },
      h('h2', {}, 'Set a key'), h('div', { class: 'row' }, keyIn, valIn),
      h('div', { class: 'actions' }, h('button', { class: 'primary', type: 'submit' }, 'Set'),
        h('button', {
          type: 'button', class: 'danger',
          onclick: () => confirm('Clear the whole store?') &&
            act(() => api('DELETE', base(), undefined, { query: { namespace: state.ns } }),
              'Cleared').then(load),
        }, 'Clear store'))) : null);
  kind.addEventListener('change', () => {
    chainIn.hidden = kind.value !== 'chain';
    load();
  });

  function base() {
    return kind.value === 'chain'
      ? `/api/v1/stores/chain/${encodeURIComponent(chainIn.value.trim())}` : '/api/v1/stores/global';
  }

  async function load() {
    if (kind.value === 'chain' && !chainIn.value.trim()) {
      clear(box, h('p', { class: 'muted' }, 'Name a chain to browse its store.'));
      return;
    }
    let data;
    try {
      data = await api('GET', base(), undefined, { query: { namespace: state.ns } });
    } catch (e) {
      clear(box, h('p', { class: 'error' }, e.message));
      return;
    }
    const rows = Object.entries(data || {});
    clear(box, table([
      { label: 'Key', class: 'mono', get: ([k]) => k },
      { label: 'Value', get: ([, v]) => h('pre', {}, pretty(v)) },
      {
        label: '', get: ([k, v]) => writer ? [
          h('button', {
            class: 'small', onclick: () => {
              keyIn.value = k;
              valIn.value = typeof v === 'string' ? v : JSON.stringify(v, null, 2);
              valIn.focus();
            },
          }, 'Edit'),
          h('button', {
            class: 'small danger',
            onclick: () => act(() => api('DELETE', `${base()}/${encodeURIComponent(k)}`, undefined,
              { query: { namespace: state.ns } }), `Deleted ${k}`).then(load),
          }, 'Delete'),
        ] : null,
      },
    ], rows, { empty: 'The store is empty.' }));
  }

  async function setKey(e) {
    e.preventDefault();
    let value = valIn.value;
    try {
      value = JSON.parse(value);
    } catch (x) { /* text */ }
    await act(() => api('POST', base(), { key: keyIn.value, value, namespace: state.ns },
      { query: { namespace: state.ns } }), `Set ${keyIn.value}`);
    load();
  }
  load();
}
