// Writes golden VADER scores from the reference JS implementation (npm vader-sentiment@1.1.3)
// for tests/reward/vader_test.cpp. Usage (see make_vader_golden.sh):
//   node make_vader_golden.js <shared-data-dir> <out.json>
// Texts: the 3 x 1000 UCI review sentences, 400 IMDB review texts from imdb-rarlhf, and a few
// hand-written phrases that exercise VADER's rules (caps, negation, "but", idioms, emoticons).
'use strict';
const fs = require('fs');
const path = require('path');
const vader = require('vader-sentiment');

// RFC 4180 CSV (quoted fields with "" escapes and embedded newlines) -> array of rows.
function parseCsv(text) {
  const rows = [];
  let row = [], field = '', i = 0, quoted = false;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i += 2; continue; }
      if (c === '"') { quoted = false; i++; continue; }
      field += c; i++; continue;
    }
    if (c === '"') { quoted = true; i++; continue; }
    if (c === ',') { row.push(field); field = ''; i++; continue; }
    if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field); rows.push(row); row = []; field = ''; i++; continue;
    }
    field += c; i++;
  }
  if (field.length || row.length) { row.push(field); rows.push(row); }
  return rows;
}

const [dataDir, outPath] = process.argv.slice(2);
const items = [];
for (const name of ['amazon', 'imdb', 'yelp']) {
  const rows = JSON.parse(fs.readFileSync(path.join(dataDir, 'uci-sentiment-sentences', name + '.json'), 'utf8'));
  for (const r of rows) items.push({source: 'uci/' + name, text: r.text});
}
// imdb-rarlhf: every 5th row of two files (200-char and 1000-char texts), 400 in all.
for (const [file, n] of [['critical_neg_texts_200char.csv', 250], ['critical_pos_texts.csv', 150]]) {
  const rows = parseCsv(fs.readFileSync(path.join(dataDir, 'imdb-rarlhf', file), 'utf8')).slice(1);
  for (let i = 0, k = 0; i < rows.length && k < n; i += 5, k++) {
    items.push({source: 'imdb-rarlhf/' + file, text: rows[i][2]});
  }
}
const handWritten = [
  'The movie was GREAT, but the ending was bad.',
  'I do not like this at all!!!',
  'This is the bomb, really.',
  'It was kind of good.',
  'It was never so good.',
  'He is the least funny comedian.',
  'At least it was not horrible.',
  'Yeah right, that was smart???',
  'VERY GOOD movie',
  'very GOOD movie',
  'I :) love :( it :-D',
  'Nothing good came of it... BUT the music was wonderful!',
  'what a bad ass car',
  'great\u00a0movie\u2003really good',
  'cafe\u0301 was nice, na\u00efve but lovely \ud83d\ude00',
  '\u212Aind of awful',
  'not bad, not bad at all',
  "isn't it wonderful? I can't stand it",
  'sort of okay, hardly excellent, barely adequate',
  '',
  '!!!',
  'a b c',
];
for (const t of handWritten) items.push({source: 'hand', text: t});

const out = items.map(it => Object.assign({}, it, {vader: vader.SentimentIntensityAnalyzer.polarity_scores(it.text)}));
fs.writeFileSync(outPath, JSON.stringify({generator: 'vader-sentiment@1.1.3 SentimentIntensityAnalyzer.polarity_scores',
  node: process.version, count: out.length, items: out}, null, 0).replace(/\},\{"source"/g, '},\n{"source"') + '\n');
console.log(`wrote ${out.length} texts to ${outPath}`);
