// The wall map's, the field app's and the judicial office desk's two languages say the
// same things: for each, strings.zh.js and strings.en.js (web/wallmap/, web/field/,
// web/desk/) have exactly the same keys,
// and each key the same `{placeholders}`. A key
// one language lacks shows on the wall as its bare name (`incident_title`), and a
// placeholder one language lacks drops a number from the sentence, so either fails here,
// naming the key.
//
//   node tests/e2e/i18n.test.mjs
//
// needs nothing but Node: the string files are plain data modules (scripts/test runs this
// beside the browser test).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import zh from '../../web/wallmap/strings.zh.js';
import en from '../../web/wallmap/strings.en.js';
import fieldZh from '../../web/field/strings.zh.js';
import fieldEn from '../../web/field/strings.en.js';
import deskZh from '../../web/desk/strings.zh.js';
import deskEn from '../../web/desk/strings.en.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The `{name}`s a string fills in, sorted, the way `t()` in i18n.js finds them. */
function placeholders(text) {
  return [...new Set([...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]))].sort();
}

/**
 * Every string of a table by its dotted key (`state.closed`), as `t()` looks it up. A
 * value that is neither a string nor a nested table is kept as it is, so that it counts as
 * a difference.
 */
function leaves(table, prefix = '') {
  const out = new Map();
  for (const [key, value] of Object.entries(table)) {
    const dotted = prefix + key;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const [k, v] of leaves(value, `${dotted}.`)) out.set(k, v);
    } else {
      out.set(dotted, value);
    }
  }
  return out;
}

/** What differs between two languages' tables, one sentence per key, in key order. */
function differences(a, b, aName, bName) {
  const la = leaves(a);
  const lb = leaves(b);
  const found = [];
  for (const [key, value] of la) {
    if (!lb.has(key)) {
      found.push(`${key}: in ${aName}, missing from ${bName}`);
      continue;
    }
    const other = lb.get(key);
    if (typeof value !== 'string' || typeof other !== 'string') {
      found.push(`${key}: not a string in ${typeof value !== 'string' ? aName : bName}`);
      continue;
    }
    const pa = placeholders(value).join(', ');
    const pb = placeholders(other).join(', ');
    if (pa !== pb) found.push(`${key}: placeholders {${pa}} in ${aName} but {${pb}} in ${bName}`);
  }
  for (const key of lb.keys()) if (!la.has(key)) found.push(`${key}: in ${bName}, missing from ${aName}`);
  return found;
}

test('the Chinese and English strings have the same keys and the same placeholders per key', () => {
  const found = differences(zh, en, 'strings.zh.js', 'strings.en.js');
  assert.deepEqual(found, [], `the two languages differ:\n  ${found.join('\n  ')}`);
});

test("the field app's Chinese and English strings have the same keys and the same placeholders per key", () => {
  const found = differences(fieldZh, fieldEn, 'field/strings.zh.js', 'field/strings.en.js');
  assert.deepEqual(found, [], `the two languages differ:\n  ${found.join('\n  ')}`);
});

test("the judicial office desk's Chinese and English strings have the same keys and the same placeholders per key", () => {
  const found = differences(deskZh, deskEn, 'desk/strings.zh.js', 'desk/strings.en.js');
  assert.deepEqual(found, [], `the two languages differ:\n  ${found.join('\n  ')}`);
});

test('the check names the key that differs: a missing key, a nested one, a placeholder, a stray value', () => {
  const base = { title: 'a', incident_title: 'b #{id}', state: { new: 'c', closed: 'd' } };
  const table = [
    [{ title: 'a', state: { new: 'c', closed: 'd' } }, ['incident_title: in a, missing from b']],
    [{ title: 'a', incident_title: 'b #{id}', state: { new: 'c' } }, ['state.closed: in a, missing from b']],
    [{ ...base, extra: 'e' }, ['extra: in b, missing from a']],
    [{ ...base, incident_title: 'b #{n}' }, ['incident_title: placeholders {id} in a but {n} in b']],
    [{ ...base, incident_title: 'b' }, ['incident_title: placeholders {id} in a but {} in b']],
    [{ ...base, title: 7 }, ['title: not a string in b']],
    [base, []],
  ];
  for (const [other, expected] of table) assert.deepEqual(differences(base, other, 'a', 'b'), expected);
});

// The desk looks its strings up under `desk.`, beside the wall map's (i18n.js `addStrings`).
const deskPage = { ...zh, desk: deskZh };

for (const [page, strings] of [['web/index.html', zh], ['web/field/index.html', fieldZh], ['web/desk.html', deskPage]]) {
  test(`every key ${page} names has a string`, () => {
    const html = fs.readFileSync(path.join(ROOT, page), 'utf8');
    const named = [...html.matchAll(/data-i18n(?:-placeholder)?="([^"]+)"/g)].map((m) => m[1]);
    assert.ok(named.length > 10, `${page} names its strings with data-i18n: ${named.length} found`);
    const known = leaves(strings);
    const missing = named.filter((key) => typeof known.get(key) !== 'string');
    assert.deepEqual(missing, [], `${page} names keys that have no string: ${missing.join(', ')}`);
  });
}

for (const [app, strings, pattern] of [
  ['field', fieldZh, /\bt\('([a-z_.]+)'/g],
  // The desk's keys are in its strings (`desk.…`) or the wall map's; also those its
  // helpers take (`field('desk.f.note', …)`, `button('desk.take', …)`).
  ['desk', deskPage, /'(desk\.[a-z_.]+)'|\bt\('([a-z_.]+)'/g],
]) {
  test(`every key the ${app} modules look up with t('…') has a string`, () => {
    const dir = path.join(ROOT, 'web', app);
    const known = leaves(strings);
    const missing = [];
    for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.js') && !f.startsWith('strings.'))) {
      const text = fs.readFileSync(path.join(dir, file), 'utf8');
      // Literal keys only: a key built at run time (`state.${s}`) is checked by its table.
      for (const m of text.matchAll(pattern)) {
        const key = m[1] ?? m[2];
        if (typeof known.get(key) !== 'string') missing.push(`${file}: ${key}`);
      }
    }
    assert.deepEqual(missing, [], `keys with no string: ${missing.join(', ')}`);
  });
}
