// Prepares the training text and the fine-tuning files for recipes/train-models.sh.
// usage: node prepare-data.mjs POETRY_DIST_DIR SHARED_DATA_DIR OUT_DIR
// Everything written to OUT_DIR is derived from research/teaching data or third-party text: keep OUT_DIR outside git.
import fs from 'node:fs';
import path from 'node:path';
import { readLines, writer, docs, packed, chunked, segments, cluenerToBio, bioLines, countChars, charVocab } from './text-utils.mjs';

const [poetryDist, shared, out] = process.argv.slice(2);
if (!out) { console.error('usage: node prepare-data.mjs POETRY_DIST_DIR SHARED_DATA_DIR OUT_DIR'); process.exit(2); }
fs.mkdirSync(out, { recursive: true });
const W = writer(out);

// ---- Tang poems (chinese-poetry@2.0.1, MIT): dist/quantangshi/poet.tang.*.json = [{author, title, paragraphs[]}]
const tangDir = path.join(poetryDist, 'quantangshi');
const tangFiles = fs.readdirSync(tangDir).filter(f => /^poet\.tang\.\d+\.json$/.test(f)).sort((a, b) => parseInt(a.split('.')[2]) - parseInt(b.split('.')[2]));
let dropped = 0, kept = 0;
const poems = [];
for (const f of tangFiles) {
  for (const p of JSON.parse(fs.readFileSync(path.join(tangDir, f), 'utf8'))) {
    const lines = [];
    for (const para of p.paragraphs ?? []) {
      // Placeholder marks for lost/uncertain characters: □, {…}, bracketed variants.
      if (/[□{}\[\]［］（）()〔〕【】]/u.test(para)) { dropped++; continue; }
      const t = [...para].filter(ch => !/\s/u.test(ch)).join('');   // by code point (525 chars lie outside the BMP)
      if (t.length) { lines.push(t); kept++; }
    }
    if (lines.length) poems.push(lines.join(''));
  }
}
console.error(`poems: ${poems.length} (${kept} lines kept, ${dropped} lines with placeholder marks dropped)`);
const poemTrain = poems.filter((_, i) => i % 100 !== 0), poemEval = poems.filter((_, i) => i % 100 === 0);

// ---- Novels (public domain): one paragraph per line
const novelParas = [];
for (const f of ['hongloumeng.txt', 'shuihu.txt']) {
  for (const l of readLines(path.join(shared, 'corpus', f))) {
    const t = l.replace(/[\s\u3000]+/gu, '');
    if (t.length) novelParas.push(t);
  }
}
console.error(`novel paragraphs: ${novelParas.length}`);
const novelTrain = novelParas.filter((_, i) => i % 100 !== 1), novelEval = novelParas.filter((_, i) => i % 100 === 1);

// GPT-2 causal LM text: one document per line (poem / paragraph); each is followed by EOS in training.
W('clm-train.txt', [...poemTrain, ...novelTrain]);
W('clm-eval-poems.txt', poemEval);
W('clm-eval-novels.txt', novelEval);

// BERT MLM+NSP: documents (paragraphs) of segments (sentences merged up to ~60 characters), blank line between documents.
W('mlm-train.txt', docs(novelTrain).flatMap(d => [d, '']));
W('mlm-eval.txt', docs(novelEval).flatMap(d => [d, '']));

// Task-adaptive pre-training text (Gururangan et al. 2020, "Don't Stop Pretraining"): the novels plus the unlabelled
// TEXT of the fine-tuning TRAIN splits and other modern Chinese train splits — never a dev/test split. Short items
// (questions, news sentences) are packed into segments of up to ~60 characters so sequences are not mostly padding.
const modern = [];
for (const l of readLines(path.join(shared, 'sentiment/chnsenticorp/train.tsv'))) if (l.trim()) modern.push(segments(l.slice(0, l.lastIndexOf('\t')).replace(/[\s\u3000]+/gu, '')).join('\n'));
modern.push(...chunked(packed(readLines(path.join(shared, 'ner/cluener2020/train.json')).filter(l => l.trim()).map(l => JSON.parse(l).text))));
modern.push(...chunked(packed(readLines(path.join(shared, 'ner/weibo/train.json')).filter(l => l.trim()).map(l => JSON.parse(l).text.join('')))));
modern.push(...chunked(packed(readLines(path.join(shared, 'similarity/afqmc/train.txt')).filter(l => l.trim()).map(l => l.split('\t')[0]))));
modern.push(...chunked(packed(readLines(path.join(shared, 'similarity/sts-b-zh/cnsd-sts-train.txt')).filter(l => l.trim()).flatMap(l => l.split('||').slice(1, 3)))));
modern.push(...chunked(packed(readLines(path.join(shared, 'similarity/lcqmc/dev.txt')).filter(l => l.trim()).filter((_, i) => i % 4 !== 0).flatMap(l => l.split('\t').slice(0, 2)))));
W('mlm-adapt-train.txt', [...docs(novelTrain), ...modern].flatMap(d => [d, '']));

// ---- ChnSentiCorp: text<TAB>positive|negative  ->  JSONL {"text","label"}
const senti = split => readLines(path.join(shared, 'sentiment/chnsenticorp', split + '.tsv')).filter(l => l.trim()).map(l => {
  const i = l.lastIndexOf('\t'); return JSON.stringify({ text: l.slice(0, i), label: l.slice(i + 1).trim() });
});
W('sentiment-train.jsonl', senti('train'));
W('sentiment-dev.jsonl', senti('dev'));

// ---- CLUENER2020: {"text", "label": {type: {mention: [[start, end_inclusive]]}}} -> BIO, one character per line
const bio = file => bioLines(readLines(file).filter(l => l.trim()).map(cluenerToBio));
W('ner-train.bio', bio(path.join(shared, 'ner/cluener2020/train.json')));
W('ner-dev.bio', bio(path.join(shared, 'ner/cluener2020/dev.json')));

// ---- LCQMC: only dev.txt (8,802 pairs) is available. Deterministic split: every 4th pair (line index % 4 == 0, 2,201 pairs)
// is held out as the test set; the other 6,601 pairs train the pair classifier.
const lcqmc = readLines(path.join(shared, 'similarity/lcqmc/dev.txt')).filter(l => l.trim()).map(l => l.split('\t'));
const pairJson = ([a, b, y]) => JSON.stringify({ text: a, text_pair: b, label: y.trim() });
W('lcqmc-train.jsonl', lcqmc.filter((_, i) => i % 4 !== 0).map(pairJson));
W('lcqmc-test.jsonl', lcqmc.filter((_, i) => i % 4 === 0).map(pairJson));
W('lcqmc-test.txt', lcqmc.filter((_, i) => i % 4 === 0).map(x => x.join('\t')));

// ---- Character vocabulary (BERT style, lower-cased like do_lower_case): pre-training text + fine-tuning TRAIN splits.
const counts = new Map();
const add = s => countChars(counts, s);
[...poemTrain, ...novelTrain].forEach(add);
readLines(path.join(shared, 'sentiment/chnsenticorp/train.tsv')).forEach(add);
for (const l of readLines(path.join(shared, 'ner/cluener2020/train.json'))) if (l.trim()) add(JSON.parse(l).text);
lcqmc.filter((_, i) => i % 4 !== 0).forEach(([a, b]) => { add(a); add(b); });
const vocab = charVocab(counts, parseInt(process.env.SF_MAX_VOCAB ?? '8000'), 2);
const tokDir = path.join(out, 'tokenizer'); fs.mkdirSync(tokDir, { recursive: true });
fs.writeFileSync(path.join(tokDir, 'vocab.txt'), vocab.join('\n') + '\n');
console.error(`vocab: ${vocab.length} entries (${[...counts.values()].filter(n => n >= 2).length} characters occur at least twice)`);
