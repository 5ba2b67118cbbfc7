// Test: pick an endpoint and an event type, edit the sample (checked against
// the catalog as you type), send it, and watch the delivery it made until it
// ends (no reload).

import { api, typeName, typeSample, FINAL } from './api.js';
import { h, clear, errorBox, timeEl, fmtMs, prettyJson, selectField, announce } from './ui.js';
import { eventTypes, loadEndpoints } from './view_endpoints.js';
import { stateBadge, attemptWords } from './status.js';
import { checkData } from './validate.js';

const sent = []; // this tab's test sends, newest first: {endpoint, event, delivery_id, event_id, delivery}

export async function render(ctx) {
  const root = ctx.root;
  const fixed = ctx.endpoint || null;
  const [types, eps] = await Promise.all([eventTypes(ctx), fixed ? Promise.resolve([fixed]) : loadEndpoints()]);
  root.appendChild(h(ctx.embedded ? 'h2' : 'h1', { text: 'Send a test event' }));
  if (eps.length === 0) {
    root.appendChild(h('div', { class: 'card empty' },
      h('p', {}, 'There is no endpoint to send to yet. ',
        h('a', { href: '/endpoints/new', 'data-nav': true }, 'Create an endpoint'), ' first.')));
    return null;
  }
  const want = fixed ? fixed.id : ctx.query.get('endpoint');
  const epSel = selectField('Endpoint', eps.map((e) => ({ value: e.id, label: e.url + (e.status === 'disabled' ? ' (disabled)' : '') })),
    want && eps.some((e) => e.id === want) ? want : eps[0].id, null, { id: 'test-endpoint' });
  const names = types.map(typeName);
  const typeSel = selectField('Event type', names.map((n) => ({ value: n, label: n })),
    ctx.query.get('event') || names[0], null, { id: 'test-event' });
  const sampleBox = h('div', { class: 'sample' });
  const payloadId = 'test-payload';
  const payload = h('textarea', { id: payloadId, name: 'data', class: 'code-edit', rows: '12', spellcheck: 'false',
    autocomplete: 'off', 'aria-describedby': payloadId + '-help ' + payloadId + '-check' });
  const check = h('div', { id: payloadId + '-check', class: 'check-result', 'aria-live': 'polite' });
  const reset = h('button', { type: 'button', class: 'small' }, 'Reset to the sample');
  const err = h('div', { 'aria-live': 'polite' });
  const send = h('button', { type: 'submit', class: 'primary' }, 'Send test event');
  const results = h('div', { class: 'results', 'aria-live': 'polite', id: 'test-results' });

  const current = () => types.find((x) => typeName(x) === typeSel.select.value);
  // Live check against the catalog entry the dashboard already loaded.
  function validate() {
    const problems = checkData(current(), payload.value);
    clear(check);
    payload.setAttribute('aria-invalid', problems.length ? 'true' : 'false');
    send.disabled = problems.length > 0;
    if (problems.length === 0) {
      check.appendChild(h('p', { class: 'ok', text: 'Matches the catalog for ' + typeSel.select.value + '.' }));
    } else {
      check.appendChild(h('div', { class: 'field-error' },
        h('p', { text: problems.length + (problems.length === 1 ? ' problem' : ' problems') + ' to fix before sending:' }),
        h('ul', {}, problems.map((x) => h('li', {}, h('code', { text: x.path }), ' ', x.problem)))));
    }
    return problems;
  }
  function showSample() {
    const sample = typeSample(current());
    payload.value = sample === null ? '{}' : prettyJson(sample);
    validate();
  }
  typeSel.select.addEventListener('change', showSample);
  payload.addEventListener('input', validate);
  reset.addEventListener('click', () => { showSample(); payload.focus(); });
  sampleBox.append(
    h('div', { class: 'field' },
      h('label', { for: payloadId, text: 'Event data (JSON)' }),
      h('p', { class: 'help', id: payloadId + '-help', text: 'Starts as the catalog sample; edit it freely. The envelope adds the event id and timestamp.' }),
      payload, check, h('div', {}, reset)));
  showSample();

  const form = h('form', { class: 'card form test-form' },
    h('div', { class: 'row' }, fixed ? null : epSel.el, typeSel.el),
    sampleBox, err,
    h('div', { class: 'actions' }, send));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clear(err);
    if (validate().length > 0) {
      payload.focus();
      return;
    }
    send.disabled = true;
    const epId = epSel.select.value;
    const event = typeSel.select.value;
    try {
      const r = await api('POST', '/v1/endpoints/' + encodeURIComponent(epId) + '/test',
        { event, data: JSON.parse(payload.value) });
      const ep = eps.find((e) => e.id === epId);
      sent.unshift({ endpoint: ep ? ep.url : epId, url: ep ? ep.url : '', event, delivery_id: r.delivery_id,
                     event_id: r.event_id, delivery: null, error: null });
      announce('Test event sent; waiting for the delivery');
      await refresh();
      // Look a few more times at once: a fast receiver answers well within the poll period.
      for (let i = 0; i < 4 && ctx.alive() && !(sent[0].delivery && FINAL.has(sent[0].delivery.status)); i++) {
        await new Promise((res) => setTimeout(res, 300));
        await refresh();
      }
    } catch (e) {
      err.appendChild(errorBox(e));
    } finally {
      validate();
    }
  });
  root.appendChild(form);
  root.appendChild(h(ctx.embedded ? 'h3' : 'h2', { text: 'Sent from this page' }));
  root.appendChild(results);

  let drawn = '';
  function draw() {
    // Redraw only on change, so focus and reading position survive polling.
    const sig = JSON.stringify(sent.slice(0, 10).map((x) => [x.delivery, x.error && x.error.message]));
    if (sig === drawn && results.firstChild) return;
    drawn = sig;
    clear(results);
    if (sent.length === 0) {
      results.appendChild(h('p', { class: 'muted', text: 'Nothing sent yet. Deliveries you send appear here and update by themselves.' }));
      return;
    }
    const list = h('ul', { class: 'sent' });
    for (const s of sent.slice(0, 10)) {
      const d = s.delivery;
      const last = d && Array.isArray(d.attempts) && d.attempts.length ? d.attempts[d.attempts.length - 1] : null;
      list.appendChild(h('li', { class: 'card sent-item', 'data-delivery': s.delivery_id },
        h('div', { class: 'card-head' },
          h('a', { href: '/deliveries/' + encodeURIComponent(s.delivery_id), 'data-nav': true },
            h('code', { text: s.event })),
          d ? stateBadge(d) : h('span', { class: 'badge state tone-info' }, 'Sent')),
        h('p', { class: 'muted' }, 'to ', h('span', { class: 'ep-url', text: s.endpoint })),
        last ? h('p', { class: 'attempt-line' }, 'Attempt ', String(last.n), ': ',
          h('strong', { class: 'code', text: attemptWords(last, s.url) }),
          ' in ', fmtMs(last.duration_ms), ' at ', timeEl(last.at)) : h('p', { class: 'muted', text: 'Waiting for the first attempt…' }),
        s.error ? errorBox(s.error) : null));
    }
    results.appendChild(list);
  }

  async function refresh() {
    await Promise.all(sent.slice(0, 10).map(async (s) => {
      if (s.delivery && FINAL.has(s.delivery.status)) return;
      try {
        const before = s.delivery ? s.delivery.status : null;
        s.delivery = await api('GET', '/v1/deliveries/' + encodeURIComponent(s.delivery_id));
        s.error = null;
        if (before !== s.delivery.status && FINAL.has(s.delivery.status)) {
          announce('Test ' + s.event + ' ' + s.delivery.status);
        }
      } catch (e) {
        s.error = e;
      }
    }));
    if (ctx.alive()) draw();
  }
  draw();
  return { refresh };
}
