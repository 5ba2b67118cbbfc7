// Delivery states and attempt errors in words a person reads: one place, so
// the list, the delivery page, the endpoint page and the test page agree.

import { h, fromNow } from './ui.js';

// Why an attempt got no answer (its error_class), as a short phrase.
const CLASS_WORDS = {
  dns: 'the host name did not resolve',
  connect: 'no connection to the receiver',
  tls: 'the TLS handshake or certificate failed',
  timeout: 'no answer in time',
  protocol: 'the answer was not valid HTTP',
  reset: 'the connection broke before an answer',
  blocked: 'the address rules refused the target',
};

// What each class means, and whether it is retried: the help behind the words.
export const CLASS_HELP = {
  dns: 'DNS: the receiver\'s host name did not resolve. Retried.',
  connect: 'Connect: nothing accepted a connection at the receiver\'s address. Retried.',
  tls: 'TLS: the handshake failed or the certificate was refused. Retried.',
  timeout: 'Timeout: the request went out but no answer came in time. Retried.',
  protocol: 'Protocol: the receiver answered something that is not HTTP. Retried.',
  reset: 'Reset: the connection broke before the answer was complete. Retried.',
  blocked: 'Blocked: the server\'s address rules refuse this target (allow it with --allow-networks). Not retried.',
};

// The host and port of an endpoint URL, "127.0.0.1:9101".
function hostPort(url) {
  try {
    const u = new URL(url);
    return u.host + (u.port ? '' : (u.protocol === 'https:' ? ':443' : ':80'));
  } catch (e) {
    return url || 'the receiver';
  }
}

// An attempt's outcome in plain words: "connection refused by 127.0.0.1:9101",
// "HTTP 404 Not Found answered", "no answer within 15 s"; url is the endpoint's.
export function attemptWords(a, url) {
  if (!a) return '';
  if (a.status_code) {
    const ok = a.status_code >= 200 && a.status_code < 300;
    return (ok ? 'Accepted: HTTP ' : 'Refused: HTTP ') + a.status_code + (ok ? '' : ' from ' + hostPort(url));
  }
  const raw = (a.error || '').toLowerCase();
  const where = hostPort(url);
  switch (a.error_class) {
    case 'connect':
      if (raw.includes('refused')) return 'Connection refused by ' + where;
      if (raw.includes('unreachable')) return 'Network unreachable for ' + where;
      return 'Could not connect to ' + where;
    case 'dns': return 'Host name not found: ' + where.replace(/:\d+$/, '');
    case 'tls': return 'TLS failed with ' + where + (raw.includes('certificate') ? ' (certificate refused)' : '');
    case 'timeout': return 'No answer from ' + where + ' in time';
    case 'protocol': return where + ' answered something that is not HTTP';
    case 'reset': return 'Connection to ' + where + ' broke before an answer';
    case 'blocked': return 'Blocked by the address rules: ' + where;
    default: return a.error ? 'Not sent: ' + a.error : 'No answer';
  }
}

// The phrase for an error class, or ''.
export function classWords(c) { return CLASS_WORDS[c] || ''; }

// Answers the schedule retries: 408, 429, 500, 502, 503 and 504; other codes fail at once.
const RETRIED = (code) => [408, 429, 500, 502, 503, 504].includes(code);

function lastAttempt(d) {
  return Array.isArray(d.attempts) && d.attempts.length ? d.attempts[d.attempts.length - 1] : null;
}

// The delivery's state as one sentence: {tone, text}. tone is the badge's
// colour class: ok, bad, warn or info.
export function deliveryState(d, now = Date.now()) {
  const n = typeof d.round_attempts === 'number' ? d.round_attempts : d.attempts_made;
  const of = d.max_attempts ? ' of ' + d.max_attempts : '';
  const code = d.last_status_code;
  switch (d.status) {
    case 'delivered':
      return { tone: 'ok', text: 'Delivered' + (code ? ' — HTTP ' + code : '') +
        (d.attempts_made > 1 ? ' after ' + d.attempts_made + ' attempts' : '') };
    case 'failed': {
      let why;
      if (code && RETRIED(code)) why = code + ' after ' + n + ' attempt' + (n === 1 ? '' : 's') + ', retries exhausted';
      else if (code) why = code + ', not retried';
      else if (d.last_error === 'endpoint deleted') why = 'endpoint deleted';
      else if (d.last_error === 'skipped') why = 'skipped when the endpoint was enabled';
      else if (d.last_error && /blocked/.test(d.last_error)) why = 'blocked by the address rules, not retried';
      else if (n > 0) why = 'no answer after ' + n + ' attempt' + (n === 1 ? '' : 's');
      else why = d.last_error || 'not sent';
      return { tone: 'bad', text: 'Failed — ' + why };
    }
    case 'held':
      return { tone: 'warn', text: 'Held — endpoint disabled' };
    case 'delivering':
      return { tone: 'info', text: 'Delivering — attempt ' + (n + 1) + of + ' under way' };
    case 'pending':
    default:
      if (n === 0) {
        return { tone: 'info', text: 'Queued — first attempt ' + (d.next_attempt_at ? fromNow(d.next_attempt_at, now) : 'soon') };
      }
      return { tone: 'warn', text: 'Retrying — attempt ' + (n + 1) + of + ', next ' +
        (d.next_attempt_at ? fromNow(d.next_attempt_at, now) : 'soon') };
  }
}

// A badge holding the delivery's state in words.
export function stateBadge(d) {
  const s = deliveryState(d);
  return h('span', { class: 'badge state tone-' + s.tone, 'data-status': d.status }, s.text);
}

export { lastAttempt };
