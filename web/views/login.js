// Log in with a login (or email) and password; the API sets the session cookie.
import { add, api, h, state, loadMe, go, ApiError } from '../app.js';

export async function render(root) {
  const err = h('p', { class: 'error', role: 'alert', id: 'login-error' });
  const login = h('input', { id: 'login', name: 'login', autocomplete: 'username', required: true });
  const password = h('input', {
    id: 'password', name: 'password', type: 'password', autocomplete: 'current-password',
    required: true,
  });
  const form = h('form', { class: 'card login', onsubmit: submit },
    h('h1', {}, 'Log in to Mockarty'),
    h('label', { for: 'login' }, 'Login or email'), login,
    h('label', { for: 'password' }, 'Password'), password,
    err,
    h('button', { type: 'submit', class: 'primary', id: 'login-submit' }, 'Log in'));
  add(root, form);
  login.focus();

  async function submit(e) {
    e.preventDefault();
    err.textContent = '';
    try {
      await api('POST', '/api/v1/login', { login: login.value, password: password.value });
    } catch (x) {
      err.textContent = x instanceof ApiError && x.status === 401
        ? 'Invalid login or password.' : x.message;
      password.select();
      return;
    }
    password.value = '';
    state.me = null;
    await loadMe();
    go('#/mocks');
  }
}
