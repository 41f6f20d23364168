// Issue 19: honest train/dev/test splits of every labelled source, and a modern-Chinese pre-training corpus that
// contains no text of any dev/test split. See recipes/README.md ("Splits") for what each split is used for.
// usage: node prepare-splits.mjs SHARED_DATA_DIR OUT_DIR
// Everything written to OUT_DIR is derived from research/teaching-only data: keep OUT_DIR outside git.
//
// Determinism: a text goes to a split by u = first 32 bits of SHA-256(SALT + "\0" + key) / 2^32, where key is the
// text normalised by norm() below (a pair: both normalised sentences, sorted). The same text thus lands in the same
// bucket in every source (ChnSentiCorp and the online-shopping reviews share 5,378 texts), duplicates never straddle
// train and test, and changing SALT is the only way to draw other splits.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { readLines, writer, docs, packed, chunked, segments, cluenerToBio, bioLines, countChars, charVocab } from './text-utils.mjs';

const [shared, out] = process.argv.slice(2);
if (!out) { console.error('usage: node prepare-splits.mjs SHARED_DATA_DIR OUT_DIR'); process.exit(2); }
const SALT = 'sharpformer-issue19-splits-v1';
const HELD_OUT_CATEGORY = '蒙牛';      // online_shopping category kept out of every training set (cross-domain test)
const NGRAM = 12;                      // a pre-training item sharing 12 normalised characters in a row with an evaluation text is dropped
const W = writer(out);
const S = f => path.join(shared, f);
const nonEmpty = f => readLines(S(f)).filter(l => l.trim());

/** Comparison form: NFKC, lower case, no punctuation, symbols, separators, control characters or spaces. */
const norm = s => s.normalize('NFKC').toLowerCase().replace(/[\p{P}\p{S}\p{Z}\p{C}\s]/gu, '');
const bucket = key => crypto.createHash('sha256').update(SALT + '\0' + key).digest().readUInt32BE(0) / 2 ** 32;
const pairKey = (a, b) => [norm(a), norm(b)].sort().join('\t');
/** Split of an item: 'test' below testFrac, 'dev' below testFrac + devFrac, else 'train'. */
const split3 = (key, testFrac, devFrac = 0) => { const u = bucket(key); return u < testFrac ? 'test' : u < testFrac + devFrac ? 'dev' : 'train'; };

// ---------------------------------------------------------------- read every labelled source into {train, dev, test}
// Items: {text} (single texts), {a, b} (pairs), {chars, tags} (NER); label/score/category kept as fields.
const sources = {};
const tsvText = l => { const i = l.lastIndexOf('\t'); return { text: l.slice(0, i), label: l.slice(i + 1).trim() }; };
const by = (items, keyOf, testFrac, devFrac) => {
  const r = { train: [], dev: [], test: [] };
  for (const it of items) r[split3(keyOf(it), testFrac, devFrac)].push(it);
  return r;
};
const textKey = it => norm(it.text);
const nerText = it => it.chars.join('');

// ChnSentiCorp: official dev stays dev; test = 10 % of train.
{
  const r = by(nonEmpty('sentiment/chnsenticorp/train.tsv').map(tsvText), textKey, 0.10);
  sources.chnsenticorp = { kind: 'classify', train: r.train, dev: nonEmpty('sentiment/chnsenticorp/dev.tsv').map(tsvText), test: r.test };
}
// Online-shopping reviews: one category held out whole (cross-domain test); the other 8 split 80/10/10 (per category,
// since the bucket is per text). The file already excludes ChnSentiCorp dev reviews; a review that is also a
// ChnSentiCorp train review (6,165 of those) follows ChnSentiCorp's split, so that neither source's train set holds
// the other's dev or test text.
{
  const all = nonEmpty('sentiment/online_shopping/online_shopping.jsonl').map(l => JSON.parse(l));
  const csc = new Map(['train', 'test'].flatMap(k => sources.chnsenticorp[k].map(it => [textKey(it), k])));
  const r = { train: [], dev: [], test: [] };
  for (const o of all.filter(o => o.category !== HELD_OUT_CATEGORY)) r[csc.get(textKey(o)) ?? split3(textKey(o), 0.10, 0.10)].push(o);
  sources.online_shopping = { kind: 'classify', ...r, 'test-heldout-category': all.filter(o => o.category === HELD_OUT_CATEGORY) };
}
// TNEWS: official dev stays dev; test = 10 % of train.
{
  const r = by(nonEmpty('classification/tnews/train.tsv').map(tsvText), textKey, 0.10);
  sources.tnews = { kind: 'classify', train: r.train, dev: nonEmpty('classification/tnews/dev.tsv').map(tsvText), test: r.test };
}
// LCQMC: only its dev file is here: 70 % train (for us), 10 % dev, 20 % test (by pair).
{
  const pairs = nonEmpty('similarity/lcqmc/dev.txt').map(l => { const [a, b, y] = l.split('\t'); return { a, b, label: y.trim() }; });
  sources.lcqmc = { kind: 'pairs', ...by(pairs, p => pairKey(p.a, p.b), 0.20, 0.10) };
}
// AFQMC: official dev is the test set; dev = 10 % of train.
{
  const read = f => nonEmpty(f).map(l => { const [a, b, y] = l.split('\t'); return { a, b, label: y.trim() }; });
  const r = by(read('similarity/afqmc/train.txt'), p => pairKey(p.a, p.b), 0, 0.10);
  sources.afqmc = { kind: 'pairs', train: r.train, dev: r.dev, test: read('similarity/afqmc/dev.txt') };
}
// Chinese STS-B: official dev is the test set; dev = 10 % of train.
{
  const read = f => nonEmpty(f).map(l => { const [id, a, b, score] = l.split('||'); return { id, a, b, score: score.trim() }; });
  const r = by(read('similarity/sts-b-zh/cnsd-sts-train.txt'), p => pairKey(p.a, p.b), 0, 0.10);
  sources.stsb = { kind: 'sts', train: r.train, dev: r.dev, test: read('similarity/sts-b-zh/cnsd-sts-dev.txt') };
}
// CLUENER2020: official dev stays dev; test = 10 % of train.
{
  const read = f => nonEmpty(f).map(cluenerToBio);
  const r = by(read('ner/cluener2020/train.json'), it => norm(nerText(it)), 0.10);
  sources.cluener = { kind: 'ner', train: r.train, dev: read('ner/cluener2020/dev.json'), test: r.test };
}
// dh_msra: consecutive sentences come from the same news story, so whole blocks of 100 sentences go to one split
// (80/10/10): no story is both trained on and tested on.
{
  const sents = []; let chars = [], tags = [];
  for (const l of readLines(S('ner/dh_msra/dh_msra.txt'))) {
    if (!l.trim()) { if (chars.length) sents.push({ chars, tags }); chars = []; tags = []; continue; }
    const i = l.lastIndexOf('\t');
    chars.push(l.slice(0, i) || ' '); tags.push(l.slice(i + 1).trim());
  }
  if (chars.length) sents.push({ chars, tags });
  const r = { train: [], dev: [], test: [] };
  sents.forEach((s, i) => r[split3(`dh_msra#block${Math.floor(i / 100)}`, 0.10, 0.10)].push(s));
  sources.dh_msra = { kind: 'ner', ...r };
}
// Weibo NER: its official train/dev/test.
{
  const read = f => nonEmpty(f).map(l => { const o = JSON.parse(l); return { chars: o.text, tags: o.label }; });
  sources.weibo = { kind: 'ner', train: read('ner/weibo/train.json'), dev: read('ner/weibo/dev.json'), test: read('ner/weibo/test.json') };
}

// ---------------------------------------------------------------- evaluation texts, and labelled train sets without them
const textsOf = (kind, it) => kind === 'ner' ? [nerText(it)] : 'a' in it ? [it.a, it.b] : [it.text];
const evalKeys = new Set(), evalPairs = new Set(), evalGrams = new Set();
for (const src of Object.values(sources))
  for (const [name, items] of Object.entries(src)) {
    if (name === 'kind' || name === 'train') continue;
    for (const it of items) {
      if ('a' in it) evalPairs.add(pairKey(it.a, it.b));
      for (const t of textsOf(src.kind, it)) {
        const k = norm(t);
        if (!k) continue;
        evalKeys.add(k);
        const c = [...k];
        for (let i = 0; i + NGRAM <= c.length; i++) evalGrams.add(c.slice(i, i + NGRAM).join(''));
      }
    }
  }
console.error(`evaluation texts: ${evalKeys.size} distinct, ${evalPairs.size} pairs, ${evalGrams.size} ${NGRAM}-grams`);

// A training example whose text (a pair: the pair) equals an evaluation text of any source is dropped.
const summary = { salt: SALT, held_out_category: HELD_OUT_CATEGORY, ngram: NGRAM, splits: {}, dropped_from_train: {} };
for (const [name, src] of Object.entries(sources)) {
  const before = src.train.length;
  src.train = src.train.filter(it => 'a' in it ? !evalPairs.has(pairKey(it.a, it.b)) : !evalKeys.has(norm(src.kind === 'ner' ? nerText(it) : it.text)));
  summary.dropped_from_train[name] = before - src.train.length;
  summary.splits[name] = Object.fromEntries(Object.entries(src).filter(([k]) => k !== 'kind').map(([k, v]) => [k, v.length]));
}

// ---------------------------------------------------------------- write the splits in formats `train` and `evaluate` read
for (const [name, src] of Object.entries(sources))
  for (const [split, items] of Object.entries(src)) {
    if (split === 'kind') continue;
    const f = `splits/${name}/${split}`;
    if (src.kind === 'classify') W(`${f}.jsonl`, items.map(it => JSON.stringify(it.category ? { text: it.text, label: it.label, category: it.category } : { text: it.text, label: it.label })));
    else if (src.kind === 'pairs') W(`${f}.jsonl`, items.map(p => JSON.stringify({ text: p.a, text_pair: p.b, label: p.label })));
    else if (src.kind === 'sts') W(`${f}.txt`, items.map(p => [p.id, p.a, p.b, p.score].join('||')));
    else W(`${f}.bio`, bioLines(items));
  }

// ---------------------------------------------------------------- pre-training corpus: TRAIN text only, modern first
// Every item (review, sentence, headline, question, novel paragraph) is dropped when its normalised form equals an
// evaluation text or shares a 12-character run with one; exact repeats across sources are kept once.
const seen = new Set(), dropped = {}, kept = {};
/** The item without spaces, or null when it is empty, a repeat, or overlaps an evaluation text. */
function cleanOne(source, t0) {
  const t = t0.replace(/[\s\u3000]+/gu, '');
  const k = norm(t);
  if (!k || seen.has(k)) return null;
  seen.add(k);
  const c = [...k];
  let hit = evalKeys.has(k);
  for (let i = 0; !hit && i + NGRAM <= c.length; i++) hit = evalGrams.has(c.slice(i, i + NGRAM).join(''));
  const tally = hit ? dropped : kept;
  tally[source] = (tally[source] ?? 0) + 1;
  return hit ? null : t;
}
const clean = (source, items) => items.map(t => cleanOne(source, t)).filter(t => t !== null);
const pre = [];   // [source, document]
const add = (source, documents) => { for (const d of documents) pre.push([source, d]); };
// Reviews: one document per review, its sentences as segments (real next-sentence pairs).
for (const [name, src] of [['chnsenticorp', sources.chnsenticorp], ['online_shopping', sources.online_shopping]])
  add(name, clean(name, src.train.map(it => it.text)).map(t => segments(t).join('\n')));
// dh_msra: consecutive train sentences of a story, grouped as documents (sentences merged into ≤ 60-character segments).
add('dh_msra', docs(clean('dh_msra', sources.dh_msra.train.map(nerText))));
// Short items: packed into ≤ 60-character segments, four to a document.
add('tnews', chunked(packed(clean('tnews', sources.tnews.train.map(it => it.text)))));
add('cluener', chunked(packed(clean('cluener', sources.cluener.train.map(nerText)))));
add('weibo', chunked(packed(clean('weibo', sources.weibo.train.map(nerText)))));
for (const name of ['lcqmc', 'afqmc', 'stsb']) add(name, chunked(packed(clean(name, sources[name].train.flatMap(p => [p.a, p.b])))));
// Some of the novels (public domain): every other paragraph of 红楼梦 and 水浒传, grouped as documents.
{
  const paras = [];
  for (const f of ['hongloumeng.txt', 'shuihu.txt'])
    readLines(S('corpus/' + f)).map(l => l.replace(/[\s\u3000]+/gu, '')).filter(Boolean).forEach((t, i) => { if (i % 2 === 0) paras.push(t); });
  add('novels', docs(clean('novels', paras)));
}
// 1 % of the documents (by hash) are held out to measure masked-LM perplexity; the rest are shuffled deterministically
// so that every stretch of training sees every source.
const order = pre.map(([source, d], i) => ({ source, d, u: bucket(`doc#${i}#${d}`) }));
const evalDocs = order.filter(x => x.u >= 0.99), trainDocs = order.filter(x => x.u < 0.99).sort((x, y) => x.u - y.u);
W('pretrain/mlm-train.txt', trainDocs.flatMap(x => [x.d, '']));
W('pretrain/mlm-eval.txt', evalDocs.flatMap(x => [x.d, '']));
const charsOf = list => list.reduce((n, x) => n + [...x.d.replace(/\n/g, '')].length, 0);
summary.pretrain = { documents: trainDocs.length, characters: charsOf(trainDocs), eval_documents: evalDocs.length, eval_characters: charsOf(evalDocs),
  characters_by_source: Object.fromEntries(Object.keys(kept).map(s => [s, charsOf(trainDocs.filter(x => x.source === s))])), items_kept: kept, items_dropped_as_evaluation_text: dropped };

// ---------------------------------------------------------------- character vocabulary
// Characters of the pre-training text and of every labelled TRAIN split seen at least 3 times (at most SF_MAX_VOCAB entries).
const counts = new Map();
const count = s => countChars(counts, s);
trainDocs.forEach(x => count(x.d));
for (const src of Object.values(sources)) for (const it of src.train) textsOf(src.kind, it).forEach(count);
const vocab = charVocab(counts, parseInt(process.env.SF_MAX_VOCAB ?? '8000'), 3);
W('tokenizer/vocab.txt', vocab);
// Coverage: share of the non-space characters of every dev/test split that are in the vocabulary (the rest become [UNK]).
const inVocab = new Set(vocab);
let all = 0, known = 0;
for (const src of Object.values(sources))
  for (const [name, items] of Object.entries(src)) {
    if (name === 'kind' || name === 'train') continue;
    for (const it of items) for (const t of textsOf(src.kind, it)) for (const ch of t.toLowerCase()) {
      if (/\s/u.test(ch)) continue;
      all++; if (inVocab.has(ch) || /[a-z0-9]/.test(ch)) known++;
    }
  }
summary.vocab = { entries: vocab.length, characters_seen_3_times: [...counts.values()].filter(n => n >= 3).length, evaluation_text_coverage: +(known / all).toFixed(6) };
fs.writeFileSync(path.join(out, 'SUMMARY.json'), JSON.stringify(summary, null, 1) + '\n');
console.error(JSON.stringify(summary, null, 1));
