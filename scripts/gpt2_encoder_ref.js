// Runs the JS reference GPT-2 tokenizer (npm gpt-3-encoder@1.1.4, resolved through NODE_PATH) for
// scripts/make_tokenizer_golden.sh and scripts/bench_tokenizer.sh. Not part of the product.
//   node gpt2_encoder_ref.js golden DATA_DIR          -> golden JSON on stdout
//   node gpt2_encoder_ref.js corpus DATA_DIR          -> the benchmark corpus (JSON array of texts)
//   node gpt2_encoder_ref.js bench CORPUS.json [SECS] -> JS encode throughput (cold pass + warm passes)
'use strict';
const fs = require('fs');
const path = require('path');

// Minimal RFC 4180 CSV reader (quoted fields, "" escapes, newlines inside quotes).
function readCsv(file) {
  const s = fs.readFileSync(file, 'utf-8');
  const rows = [];
  let row = [], field = '', i = 0, quoted = false;
  while (i < s.length) {
    const c = s[i];
    if (quoted) {
      if (c === '"' && s[i + 1] === '"') { field += '"'; i += 2; continue; }
      if (c === '"') { quoted = false; i++; continue; }
      field += c; i++; continue;
    }
    if (c === '"') { quoted = true; i++; continue; }
    if (c === ',') { row.push(field); field = ''; i++; continue; }
    if (c === '\n' || c === '\r') {
      if (c === '\r' && s[i + 1] === '\n') i++;
      row.push(field); rows.push(row); row = []; field = ''; i++; continue;
    }
    field += c; i++;
  }
  if (field.length > 0 || row.length > 0) { row.push(field); rows.push(row); }
  return rows;
}

function uciTexts(dataDir) {
  const out = [];
  for (const name of ['imdb', 'amazon', 'yelp']) {
    const file = path.join(dataDir, 'uci-sentiment-sentences', name + '.json');
    for (const e of JSON.parse(fs.readFileSync(file, 'utf-8'))) if (e.text) out.push(e.text);
  }
  return out;
}

function imdbTexts(dataDir, file) {
  const rows = readCsv(path.join(dataDir, 'imdb-rarlhf', file));
  const col = rows[0].indexOf('review');
  return rows.slice(1).map(r => r[col]).filter(t => t && t.length > 0);
}

// Deterministic subsample: every k-th item.
const every = (arr, n) => arr.filter((_, i) => i % Math.max(1, Math.floor(arr.length / n)) === 0).slice(0, n);

// Edge cases for the pre-tokenizer and BPE: whitespace runs, contractions, digits, scripts, marks.
function edgeCases() {
  const base = [
    '', ' ', '  ', '\t', '\n', '\r\n', 'a', 'A', '!', ' a', 'a ', 'a  ', ' a ', '   leading', 'trailing   ',
    'a  b', 'a   b', 'a \t b', 'a\t\tb', 'a\n\nb', '\n\n\nx', 'x\n\n', 'x \n y', 'line1\r\nline2\r\n', 'tab\tseparated\tvalues',
    ' \n \n ', '\t \t', 'end with space ', 'end with newline\n', 'end with two newlines\n\n',
    "I'm", "I'M", "IT'S", "it's", "he'S", "'s", "''s", "'re'", "you'll've", "'", "'dog", "rock'n'roll", "don't", "DON'T",
    "we'd", "they've", "she'll", "y'all", "'tis", "o'clock", 'don\u2019t', "x's's's", "' s", "'S'T'RE",
    '0', '7', '42', ' 42', '123456789', '3.14159', '1,000,000', '$12.50!', '50%', '2024-01-01', '12:30pm', '#1', 'v2.0.1',
    '\u0663\u0664\u0665', '\u00bd \u00b2 \u00b3', '\u216b \u2167', '\u2460\u2461', 'abc123def', '123abc', 'x\u00b2+y\u00b2',
    '\u{1F600}', '\u{1F44D}\u{1F3FD}', '\u{1F468}\u200D\u{1F469}\u200D\u{1F467}', 'I \u2764\uFE0F NY', 'great movie \u{1F3AC}\u{1F37F}!!',
    '\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8', '\u4e2d\u6587 \u5b57\u7b26', '\ud55c\uad6d\uc5b4 \ubb38\uc7a5', '\u6f22\u5b57\u3001\u304b\u306a\u3002',
    'Caf\u00e9', 'na\u00efve', '\u00c5ngstr\u00f6m', 'r\u00e9sum\u00e9', 'e\u0301', 'Cafe\u0301 au lait', 'n\u0303o\u0308', 'Z\u0351\u036b\u0343a\u0310\u0306l\u0352g\u0344o\u0308',
    '\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd', '\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645', 'abc \u05e9\u05dc\u05d5\u05dd 123', '\u202eRTL override\u202c',
    '\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! Hello', '\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5', '\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e', '\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35',
    'a\u00a0b', 'a\u00a0\u00a0b', 'a\u3000b', 'a\u2028b', 'a\u2029b', 'a\ufeffb', 'a\u0085b', 'a\u200bb', 'a\u1680b', 'a\u2003 b', ' \u00a0x', '\u00a0 x',
    '\u0000', 'a\u0001\u0002b', '\u007f', 'a\u001fb', '\u{1D518}\u{1D52B}\u{1D526}\u{1D520}\u{1D52C}\u{1D521}\u{1D522}', '\u{1D7D9}\u{1D7DA}',
    '<br /><br />', 'He said "yes","no"', '"a","b","c"', '[1],[2]', "'a','b'", '{"k":"v"}', 'f(x),"y"', 'a.,"b"', '...', '?!?!', '--', '\u2014\u2014',
    '<|endoftext', 'endoftext|>', '< |endoftext| >',
    'http://www.example.com/some/path?query=1&other=two#frag', 'user@example.com',
  ];
  const long = [
    'a'.repeat(200), '='.repeat(150), '!'.repeat(97), 'ha'.repeat(80), ' '.repeat(100) + 'x', 'x' + '\n'.repeat(70),
    'Supercalifragilisticexpialidocious'.repeat(6),
    'https://example.com/' + 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(5),
    'QmFzZTY0IGVuY29kZWQgdGV4dCBpcyBhIGdvb2QgdGVzdCBvZiB0aGUgbWVyZ2UgbG9vcCBmb3IgbG9uZyB3b3Jkcw==QmFzZTY0IGVuY29kZWQ',
    '\u00e9'.repeat(90), '\u65e5\u672c'.repeat(40),
  ];
  return base.concat(long);
}

function loadEncoder() {
  try {
    return require('gpt-3-encoder');
  } catch (e) {
    console.error('gpt2_encoder_ref.js: cannot load gpt-3-encoder (set NODE_PATH to its node_modules): ' + e.message);
    process.exit(1);
  }
}

const [mode, arg, arg2] = process.argv.slice(2);
if (mode === 'golden') {
  const { encode, decode } = loadEncoder();
  const groups = [
    ['edge', edgeCases()],
    ['uci', every(uciTexts(arg), 300)],
    ['imdb200', every(imdbTexts(arg, 'critical_neg_texts_200char.csv'), 60)],
    ['imdb1000', every(imdbTexts(arg, 'critical_pos_texts.csv'), 25)],
  ];
  const cases = [];
  for (const [source, texts] of groups) {
    for (const text of texts) {
      const ids = encode(text);
      cases.push({ source, text, ids, roundtrip: decode(ids) === text });
    }
  }
  const out = {
    generator: 'npm gpt-3-encoder@1.1.4 encode()/decode(), node ' + process.version,
    note: 'made by scripts/make_tokenizer_golden.sh; texts: edge cases + samples of ../shared/data (UCI CC BY 4.0, IMDB)',
    cases,
  };
  // One case per line: small diffs when regenerated.
  process.stdout.write('{"generator":' + JSON.stringify(out.generator) + ',\n"note":' + JSON.stringify(out.note) +
    ',\n"cases":[\n' + cases.map(c => JSON.stringify(c)).join(',\n') + '\n]}\n');
} else if (mode === 'corpus') {
  const texts = uciTexts(arg);
  for (const f of ['critical_neg_texts.csv', 'critical_pos_texts.csv', 'critical_neg_texts_200char.csv',
                   'tails_neg_texts_200char.csv', 'tails_pos_texts_200char.csv']) {
    for (const t of imdbTexts(arg, f)) texts.push(t);
  }
  process.stdout.write(JSON.stringify(texts));
} else if (mode === 'bench') {
  const { encode } = loadEncoder();
  const texts = JSON.parse(fs.readFileSync(arg, 'utf-8'));
  const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t, 'utf-8'), 0);
  const minSecs = Number(arg2 || 3);
  // CPU seconds (user + system), like Google Benchmark's default, so a busy machine skews neither side.
  const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
  let t0 = cpu();
  let tokens = 0;
  for (const t of texts) tokens += encode(t).length;
  const cold = cpu() - t0;
  let passes = 0;
  let warm = 0;
  t0 = cpu();
  do {
    for (const t of texts) encode(t);
    passes++;
    warm = cpu() - t0;
  } while (warm < minSecs);
  console.log(JSON.stringify({ texts: texts.length, bytes, tokens, cold_mb_s: bytes / cold / 1e6,
                               warm_mb_s: bytes * passes / warm / 1e6 }));
} else {
  console.error('usage: node gpt2_encoder_ref.js golden DATA_DIR | corpus DATA_DIR | bench CORPUS.json [SECS]');
  process.exit(2);
}
