// Text helpers shared by prepare-data.mjs (the shipped v1 models) and prepare-splits.mjs (issue 19's splits and corpus).
import fs from 'node:fs';
import path from 'node:path';

/** Lines of a UTF-8 file without BOM and CR. */
export const readLines = f => fs.readFileSync(f, 'utf8').replace(/^\uFEFF/, '').split('\n').map(l => l.replace(/\r$/, ''));

/** Writes lines to OUT/name (one per line) and logs the count. */
export const writer = out => (name, lines) => {
  fs.mkdirSync(path.dirname(path.join(out, name)), { recursive: true });
  fs.writeFileSync(path.join(out, name), lines.join('\n') + '\n');
  console.error(`${name}: ${lines.length} lines`);
};

/** A paragraph cut into segments: sentences merged up to ~max characters (code points), over-long ones cut. */
export function segments(para, max = 60) {
  const sents = para.match(/[^。！？；]*[。！？；]+[”’」』]*|[^。！？；]+$/gu) ?? [para];
  const segs = []; let cur = '';
  for (const s of sents) {
    if (cur && [...cur].length + [...s].length > max) { segs.push(cur); cur = ''; }
    cur += s;
    while ([...cur].length > max) { const c = [...cur]; segs.push(c.slice(0, max).join('')); cur = c.slice(max).join(''); }
  }
  if (cur) segs.push(cur);
  return segs;
}

/** MLM+NSP documents (segments joined by newlines); short paragraphs are grouped so most documents have two segments. */
export function docs(paras) {
  const out = []; let cur = [];
  for (const p of paras) { cur.push(...segments(p)); if (cur.length >= 2) { out.push(cur.join('\n')); cur = []; } }
  if (cur.length) out.push(cur.join('\n'));
  return out;
}

/** Short items (questions, headlines, sentences) packed into segments of up to ~max characters, each ended by a stop. */
export function packed(items, max = 60) {
  const segs = []; let cur = '';
  for (const it of items) {
    const t = it.replace(/[\s\u3000]+/gu, '');
    if (!t) continue;
    if (cur && [...cur].length + [...t].length > max) { segs.push(cur); cur = ''; }
    cur += /[。！？；?!.]$/u.test(t) ? t : t + '。';
  }
  if (cur) segs.push(cur);
  return segs;
}

/** Segments grouped n to a document. */
export const chunked = (segs, n = 4) => { const out = []; for (let i = 0; i < segs.length; i += n) out.push(segs.slice(i, i + n).join('\n')); return out; };

/** CLUENER2020 JSONL ({"text", "label": {type: {mention: [[start, end_inclusive]]}}}, code-point offsets) as BIO sentences. */
export function cluenerToBio(line) {
  const o = JSON.parse(line);
  const chars = [...o.text];
  const tags = chars.map(() => 'O');
  for (const [type, mentions] of Object.entries(o.label ?? {}))
    for (const spans of Object.values(mentions))
      for (const [s, e] of spans) { tags[s] = 'B-' + type; for (let k = s + 1; k <= e; k++) tags[k] = 'I-' + type; }
  return { chars, tags };
}

/** BIO sentences as CoNLL lines ("char TAG", whitespace characters written as "_"), a blank line after each. */
export const bioLines = sents => sents.flatMap(({ chars, tags }) => [...chars.map((c, i) => `${/\s/u.test(c) ? '_' : c} ${tags[i]}`), '']);

/** Adds the non-space characters of s, lower-cased (do_lower_case), to the counts map. */
export const countChars = (counts, s) => { for (const ch of s.toLowerCase()) if (!/\s/u.test(ch)) counts.set(ch, (counts.get(ch) ?? 0) + 1); };

/**
 * A BERT character vocabulary: the specials, the characters seen at least minCount times (most frequent first, at most
 * maxVocab entries in all, listed by code point), and WordPiece continuations ##a–##9 so Latin words and numbers split
 * into characters instead of [UNK].
 */
export function charVocab(counts, maxVocab, minCount) {
  const specials = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
  const cont = [...'abcdefghijklmnopqrstuvwxyz0123456789'].map(c => '##' + c);
  const chars = [...counts.entries()].filter(([, n]) => n >= minCount).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, maxVocab - specials.length - cont.length).map(([c]) => c);
  return [...specials, ...chars.sort((a, b) => a.codePointAt(0) - b.codePointAt(0)), ...cont];
}
