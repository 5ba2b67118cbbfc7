// Checks an event's data against its catalog entry as GET /v1/event-types
// describes it, in the browser, so the test sender can say what is wrong
// while you type. The server checks again on sending (and has the last word).

import { typeFields } from './api.js';

// The rule a catalog field's type text names.
function ruleOf(f) {
  const t = String(f.type || '').toLowerCase();
  const c = f.constraint || {};
  if (Array.isArray(c.values)) return { kind: 'enum', values: c.values, nullable: !!c.nullable };
  if (t.startsWith('integer')) return { kind: 'int', min: c.min, max: c.max, nullable: !!c.nullable || t.endsWith('or null') };
  if (t.startsWith('number')) return { kind: 'number', min: c.min, max: c.max, nullable: !!c.nullable || t.endsWith('or null') };
  if (t.startsWith('boolean')) return { kind: 'bool', nullable: !!c.nullable };
  if (t.includes('array of strings')) return { kind: 'strings', nonempty: t.startsWith('non-empty'), nullable: !!c.nullable };
  if (t.includes('@')) return { kind: 'email', nullable: !!c.nullable };
  return { kind: 'string', nullable: !!c.nullable };
}

function range(v, r) {
  if (r.min !== undefined && r.max !== undefined && (v < r.min || v > r.max)) return 'must be between ' + r.min + ' and ' + r.max;
  if (r.min !== undefined && v < r.min) return 'must be at least ' + r.min;
  if (r.max !== undefined && v > r.max) return 'must be at most ' + r.max;
  return null;
}

function problemOf(v, r) {
  if (v === null) return r.nullable ? null : 'must not be null';
  switch (r.kind) {
    case 'enum': return typeof v === 'string' && r.values.includes(v) ? null : 'must be one of ' + r.values.join(', ');
    case 'int': return Number.isInteger(v) ? range(v, r) : 'must be an integer';
    case 'number': return typeof v === 'number' ? range(v, r) : 'must be a number';
    case 'bool': return typeof v === 'boolean' ? null : 'must be true or false';
    case 'strings':
      if (!Array.isArray(v)) return 'must be an array of strings';
      if (r.nonempty && v.length === 0) return 'must not be empty';
      return v.every((x) => typeof x === 'string' && x !== '') ? null : 'must hold non-empty strings only';
    case 'email':
      return typeof v === 'string' && v.split('@').length === 2 ? null : 'must be a string containing one @';
    default: return typeof v === 'string' && v !== '' ? null : 'must be a non-empty string';
  }
}

// The problems of text (JSON) as data of type t: [{path, problem}], [] when
// it passes. A syntax error is one problem at "data".
export function checkData(t, text) {
  let data;
  try {
    data = JSON.parse(text);
  } catch (e) {
    return [{ path: 'data', problem: 'is not valid JSON: ' + e.message }];
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    return [{ path: 'data', problem: 'must be an object' }];
  }
  const out = [];
  // The catalog's own field list carries the constraints; typeFields() only the names.
  const list = Array.isArray(t.fields) ? t.fields.map((f) => ({ ...f, required: !!f.required })) : typeFields(t);
  for (const f of list) {
    const path = 'data.' + f.name;
    if (!(f.name in data)) {
      if (f.required) out.push({ path, problem: 'is required' });
      continue;
    }
    const p = problemOf(data[f.name], ruleOf(f));
    if (p) out.push({ path, problem: p });
  }
  return out;
}
