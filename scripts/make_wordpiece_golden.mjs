// Golden WordPiece encodings from an independent implementation: transformers.js
// (npm @xenova/transformers@2.17.2, a port of Hugging Face tokenizers' BertNormalizer +
// BertPreTokenizer + WordPiece). The vocabulary is synthetic, built here from the texts themselves
// (frequent words, 4-char word starts, "##" 2-3 char endings, single characters), so no third-party
// vocab is committed. Usage (see make_wordpiece_golden.sh):
//   node make_wordpiece_golden.mjs <shared-data-dir> <out-dir>
// Writes <out-dir>/wordpiece_vocab.txt and <out-dir>/wordpiece_golden.json.
import fs from 'fs';
import path from 'path';
// The tokenizers module alone: the package entry point also loads image/ONNX backends (sharp)
// whose native parts are not installed with --ignore-scripts.
import { pathToFileURL } from 'url';
const { BertTokenizer } = await import(
    pathToFileURL(path.resolve('node_modules/@xenova/transformers/src/tokenizers.js')).href);

const [dataDir, outDir] = process.argv.slice(2);
const items = [];
for (const name of ['amazon', 'imdb', 'yelp']) {
  const rows = JSON.parse(fs.readFileSync(path.join(dataDir, 'uci-sentiment-sentences', name + '.json'), 'utf8'));
  rows.forEach((r, i) => items.push({source: 'uci/' + name, index: i, text: r.text}));
}
const hand = [
  'Café crème brûlée, NAÏVE résumé — “quoted” ‘single’ «guillemets» … ellipsis',
  'don\'t won\'t can\'t it\'s O\'Neil rock\'n\'roll',
  '$5.99 (20% off!) #hashtag @user a+b=c ~tilde^caret `back` {brace} [bracket] |pipe| \\slash',
  '我爱自然语言处理 and ひらがな カタカナ 한국어',
  'emoji 😀 👍🏽 text',
  'tabs\tand\nnewlines\r\nand  double  spaces',
  'supercalifragilisticexpialidocious antidisestablishmentarianism',
  'x'.repeat(101) + ' ' + 'y'.repeat(100),
  'ÀÉÎÕÜ àéîõü ÇÑ çñ ß ø å æ',
  'mixed CASE Words And Numbers 12345 3.14159',
  '',
];
hand.forEach((t, i) => items.push({source: 'hand', index: i, text: t}));

// Synthetic vocab from lower-cased, accent-stripped text split on non-letters.
const norm = t => t.toLowerCase().normalize('NFD').replace(/\p{Mn}/gu, '');
const counts = new Map();
const chars = new Set();
for (const it of items) {
  const n = norm(it.text);
  for (const ch of n) if (!/\s/u.test(ch)) chars.add(ch);
  for (const w of n.split(/[^\p{L}\p{N}]+/u)) if (w) counts.set(w, (counts.get(w) || 0) + 1);
}
const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
const seen = new Set(vocab);
const add = t => { if (!seen.has(t)) { seen.add(t); vocab.push(t); } };
// Leave out a few characters (as words and as pieces) so that some words must become [UNK].
const withheld = new Set(['q', 'z', '7', 'ß']);
for (const ch of [...chars].sort()) if (!withheld.has(ch)) { add(ch); add('##' + ch); }
const words = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
for (const [w] of words.slice(0, 2500)) add(w);
for (const [w] of words.slice(2500)) {
  if ([...w].length > 5) { add([...w].slice(0, 4).join('')); add('##' + [...w].slice(-3).join('')); add('##' + [...w].slice(-2).join('')); }
}

const vocabMap = Object.fromEntries(vocab.map((t, i) => [t, i]));
const special = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].map(t => ({
  id: vocabMap[t], content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true}));
const tokenizerJSON = {
  version: '1.0', truncation: null, padding: null, added_tokens: special,
  normalizer: {type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true},
  pre_tokenizer: {type: 'BertPreTokenizer'},
  post_processor: {type: 'TemplateProcessing',
    single: [{SpecialToken: {id: '[CLS]', type_id: 0}}, {Sequence: {id: 'A', type_id: 0}}, {SpecialToken: {id: '[SEP]', type_id: 0}}],
    pair: [{SpecialToken: {id: '[CLS]', type_id: 0}}, {Sequence: {id: 'A', type_id: 0}}, {SpecialToken: {id: '[SEP]', type_id: 0}},
           {Sequence: {id: 'B', type_id: 1}}, {SpecialToken: {id: '[SEP]', type_id: 1}}],
    special_tokens: {'[CLS]': {id: '[CLS]', ids: [vocabMap['[CLS]']], tokens: ['[CLS]']},
                     '[SEP]': {id: '[SEP]', ids: [vocabMap['[SEP]']], tokens: ['[SEP]']}}},
  decoder: {type: 'WordPiece', prefix: '##', cleanup: true},
  model: {type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: vocabMap},
};
const tokenizerConfig = {do_lower_case: true, model_max_length: 1000000, cls_token: '[CLS]', sep_token: '[SEP]',
  pad_token: '[PAD]', unk_token: '[UNK]', mask_token: '[MASK]', tokenizer_class: 'BertTokenizer'};
const tok = new BertTokenizer(tokenizerJSON, tokenizerConfig);

fs.writeFileSync(path.join(outDir, 'wordpiece_vocab.txt'), vocab.join('\n') + '\n');
const out = items.map(it => {
  const o = {source: it.source, index: it.index, ids: tok.encode(it.text).join(' ')};
  if (it.source === 'hand') o.text = it.text;  // UCI texts are read from ../shared/data by the test
  return o;
});
fs.writeFileSync(path.join(outDir, 'wordpiece_golden.json'),
  JSON.stringify({generator: '@xenova/transformers@2.17.2 BertTokenizer (uncased, synthetic vocab)', node: process.version,
                  vocab_size: vocab.length, items: out}).replace(/\},\{"source"/g, '},\n{"source"') + '\n');
console.log(`vocab ${vocab.length}, ${out.length} encodings`);
