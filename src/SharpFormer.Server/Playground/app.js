// SharpFormer playground: plain JavaScript, no framework, nothing loaded from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k === "style") e.style.cssText = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function svgEl(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

const pct = (p) => (100 * p).toFixed(p >= 0.1 ? 1 : 2) + "%";

async function post(path, body) {
  const r = await fetch("/playground/api/" + path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const data = await r.json();
  if (!r.ok) throw new Error(data.error || ("HTTP " + r.status));
  return data;
}

function showError(out, e) {
  out.replaceChildren(el("div", { class: "error" }, e.message));
}

/** Runs an async action from a button, disabling it meanwhile and showing errors in `out`. */
function wire(button, out, action) {
  const run = async () => {
    button.disabled = true;
    try { await action(); } catch (e) { showError(out, e); } finally { button.disabled = false; }
  };
  button.addEventListener("click", run);
  return run;
}

function fillSelect(select, names, prefer) {
  select.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
  const best = names.find((n) => prefer && n.includes(prefer));
  if (best) select.value = best;
  select.disabled = names.length === 0;
}

// ---- fill-mask ------------------------------------------------------------------------------------------

function barTable(rows, best) {
  return el("table", { class: "bars" }, ...rows.map((r, i) => el("tr", { class: i === best ? "best" : "" },
    el("td", {}, r.label), el("td", { class: "bar" }, el("span", { style: `width:${Math.max(0.5, 100 * r.score)}%` })), el("td", {}, pct(r.score)))));
}

async function fillMask() {
  const out = $("fill-out");
  const data = await post("fill-mask", { model: $("fill-model").value, text: $("fill-text").value, top_k: 5 });
  const parts = [];
  const text = $("fill-text").value;
  // The sentence with each blank filled by its most likely token, highlighted.
  const filled = el("div", { class: "filled" });
  let last = 0;
  data.masks.forEach((m, i) => {
    filled.append(text.slice(last, m.start));
    const tok = data.joint.length > 0 ? data.joint[0].tokens[i] : m.candidates[0].token;
    filled.append(el("b", {}, tok));
    last = m.end;
  });
  filled.append(text.slice(last));
  parts.push(filled);
  data.masks.forEach((m, i) => {
    parts.push(el("div", { class: "mask-title" }, data.masks.length > 1 ? `blank ${i + 1}` : "candidates"));
    const t = barTable(m.candidates.map((c) => ({ label: c.token, score: c.score })), 0);
    t.dataset.topToken = m.candidates[0].token;
    t.classList.add("mask-candidates");
    parts.push(t);
  });
  if (data.joint.length > 0) {
    parts.push(el("div", { class: "mask-title" }, "best joint fillings (blanks filled left to right)"));
    parts.push(barTable(data.joint.map((j) => ({ label: j.tokens.join(""), score: j.probability })), 0));
  }
  out.replaceChildren(...parts);
}

// ---- sentiment ----------------------------------------------------------------------------------------------

async function classify() {
  const out = $("sent-out");
  const data = await post("classify", { model: $("sent-model").value, text: $("sent-text").value });
  out.dataset.label = data.label;
  out.replaceChildren(el("div", { class: "verdict " + data.label }, data.label),
    barTable(data.scores.map((s) => ({ label: s.label, score: s.score })), 0));
}

// ---- entities ---------------------------------------------------------------------------------------------

const entityColours = ["#fde68a", "#bfdbfe", "#bbf7d0", "#fecaca", "#ddd6fe", "#fed7aa", "#a5f3fc", "#fbcfe8", "#d9f99d", "#e5e7eb"];
const colourOf = {};
function entityColour(label) {
  if (!(label in colourOf)) colourOf[label] = entityColours[Object.keys(colourOf).length % entityColours.length];
  return colourOf[label];
}

async function ner() {
  const out = $("ner-out");
  const data = await post("ner", { model: $("ner-model").value, text: $("ner-text").value });
  const text = data.text;
  const line = el("div", { class: "ner-text" });
  let last = 0;
  for (const e of [...data.entities].sort((a, b) => a.start - b.start)) {
    if (e.start < last) continue;
    line.append(text.slice(last, e.start));
    const mark = el("mark", { class: "ent", style: `--c:${entityColour(e.label)}`, title: `${e.label} ${pct(e.score)}`, "data-label": e.label },
      text.slice(e.start, e.end), el("small", {}, e.label));
    line.append(mark);
    last = e.end;
  }
  line.append(text.slice(last));
  const legend = el("div", { class: "legend" }, data.entities.length === 0 ? "no entity found"
    : data.entities.map((e) => `${e.word}: ${e.label} ${pct(e.score)}`).join(" · "));
  out.replaceChildren(line, legend);
}

// ---- attention ----------------------------------------------------------------------------------------------

/**
 * An attention view in `root`: layer and head pickers, a head view and a matrix with token labels on both axes.
 * `load(layer, head)` returns the route's answer ({tokens, matrix, layers, heads, kind}).
 */
function attentionView(root, load) {
  const layerSel = el("select", { "aria-label": "layer", class: "attn-layer" });
  const headSel = el("select", { "aria-label": "head", class: "attn-head" });
  const title = el("span", { class: "muted" });
  const figs = el("div", { class: "attn-figs" });
  let shape = null;   // the last answer; the pickers appear with the first one

  function setOptions(sel, n, value) {
    if (sel.options.length !== n) sel.replaceChildren(...Array.from({ length: n }, (_, i) => el("option", { value: String(i) }, String(i))));
    sel.value = String(value);
  }

  async function show(layer, head) {
    const data = await load(layer, head);
    if (!shape) root.replaceChildren(el("div", { class: "attn-controls" }, "layer ", layerSel, " head ", headSel, title), figs);
    shape = data;
    setOptions(layerSel, data.layers, data.layer);
    setOptions(headSel, data.heads, data.head);
    title.textContent = ` ${data.kind} · ${data.tokens.length} tokens`;
    root.dataset.rendered = `layer=${data.layer};head=${data.head}`;
    figs.replaceChildren(headView(data), matrixView(data));
  }

  const change = () => show(Number(layerSel.value), Number(headSel.value)).catch((e) => figs.replaceChildren(el("div", { class: "error" }, e.message)));
  layerSel.addEventListener("change", change);
  headSel.addEventListener("change", change);
  return { show: (layer = 0, head = 0) => show(shape ? Number(layerSel.value) : layer, shape ? Number(headSel.value) : head) };
}

const clip = (s) => (s.length > 8 ? s.slice(0, 7) + "…" : s);

/** Two columns of tokens, a line from each query (left) to each key (right), opacity = weight; hover a token to see its row. */
function headView(data) {
  const n = data.tokens.length, rowH = 20, colW = 70, gap = 120;
  const w = colW * 2 + gap, h = n * rowH + 24;
  const svg = svgEl("svg", { width: w, height: h, class: "headview", viewBox: `0 0 ${w} ${h}` });
  const lines = svgEl("g");
  svg.append(svgEl("text", { x: colW - 4, y: 12, "text-anchor": "end", "font-size": 11, fill: "#6b7280" }, "query"),
    svgEl("text", { x: colW + gap + 4, y: 12, "font-size": 11, fill: "#6b7280" }, "key"), lines);
  const y = (i) => 24 + i * rowH + rowH / 2;
  const draw = (only) => {
    lines.replaceChildren();
    for (let q = 0; q < n; q++) {
      if (only !== null && q !== only) continue;
      for (let k = 0; k < n; k++) {
        const wgt = data.matrix[q][k];
        if (wgt < 0.01) continue;
        lines.append(svgEl("line", { x1: colW, y1: y(q), x2: colW + gap, y2: y(k), class: "headline",
          "stroke-width": only === null ? 1.5 : 3, "stroke-opacity": Math.min(1, only === null ? wgt : wgt * 1.2).toFixed(3) }));
      }
    }
  };
  const labels = [];
  for (let i = 0; i < n; i++) {
    const left = svgEl("text", { x: colW - 4, y: y(i) + 4, "text-anchor": "end", class: "tok" }, clip(data.tokens[i]));
    const right = svgEl("text", { x: colW + gap + 4, y: y(i) + 4, class: "tok" }, clip(data.tokens[i]));
    left.addEventListener("mouseenter", () => { draw(i); left.classList.add("on"); });
    left.addEventListener("mouseleave", () => { draw(null); left.classList.remove("on"); });
    labels.push(left, right);
  }
  svg.append(...labels);
  draw(null);
  return el("div", {}, el("div", { class: "fig-title" }, "head view"), svg);
}

/** The matrix: rows = queries, columns = keys, darker = more weight; masked (future) cells grey; labels on both axes. */
function matrixView(data) {
  const n = data.tokens.length;
  const cell = Math.max(10, Math.min(28, Math.floor(360 / n)));
  const left = 64, top = 58;
  const w = left + n * cell + 4, h = top + n * cell + 4;
  const svg = svgEl("svg", { width: w, height: h, class: "matrix", viewBox: `0 0 ${w} ${h}` });
  const fs = Math.min(13, cell - 1);
  for (let i = 0; i < n; i++) {
    const label = clip(data.tokens[i]);
    svg.append(svgEl("text", { x: left - 4, y: top + i * cell + cell / 2 + fs / 3, "text-anchor": "end", "font-size": fs, class: "ylabel" }, label));
    const cx = left + i * cell + cell / 2;
    svg.append(svgEl("text", { x: cx, y: top - 4, "font-size": fs, class: "xlabel", transform: `rotate(-60 ${cx} ${top - 4})` }, label));
  }
  const max = Math.max(...data.matrix.flat());
  for (let q = 0; q < n; q++)
    for (let k = 0; k < n; k++) {
      const wgt = data.matrix[q][k];
      const masked = data.kind === "causal" && k > q;
      const a = max > 0 ? wgt / max : 0;
      const fill = masked ? "#e5e7eb" : `rgb(${Math.round(255 - a * 222)},${Math.round(255 - a * 180)},${Math.round(255 - a * 90)})`;
      const r = svgEl("rect", { x: left + k * cell, y: top + q * cell, width: cell - 1, height: cell - 1, fill });
      r.append(svgEl("title", {}, `${data.tokens[q]} → ${data.tokens[k]}: ${masked ? "masked" : wgt.toFixed(3)}`));
      svg.append(r);
    }
  return el("div", {}, el("div", { class: "fig-title" }, "matrix (query ↓, key →)"), svg);
}

const encAttention = attentionView($("enc-attn-view"), (layer, head) =>
  post("attention", { model: $("enc-attn-model").value, text: $("enc-attn-text").value, layer, head }));

// ---- generation ---------------------------------------------------------------------------------------------

let decAttention = null;
let generated = null;   // the last finished generation: {model, ids} (prompt and continuation)
let generating = null;

function tokenDetail(t, index) {
  const rows = [...t.alternatives];
  if (!rows.some((a) => a.id === t.id)) rows.push(t);
  $("gen-detail").replaceChildren(
    el("div", { class: "mask-title" }, `token ${index + 1}: “${t.token}” — model ${pct(t.p)}, sampled from ${pct(t.sampled_p)}`),
    el("table", {}, el("tr", {}, el("th", {}, "token"), el("th", {}, "model p"), el("th", {}, "sampling p")),
      ...rows.map((a) => el("tr", { class: a.id === t.id ? "chosen" : "" }, el("td", {}, a.token), el("td", {}, pct(a.p)), el("td", {}, pct(a.sampled_p))))));
}

/** Reads server-sent events from a fetch response, calling onEvent(kind, data) for each. */
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let kind = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) kind = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      onEvent(kind, JSON.parse(data));
    }
  }
}

async function generate() {
  const out = $("gen-out");
  if (generating) { generating.abort(); return; }
  const num = (id) => ($(id).value === "" ? null : Number($(id).value));
  const body = {
    model: $("gen-model").value, prompt: $("gen-prompt").value, max_tokens: num("gen-max"),
    temperature: num("gen-temp"), top_p: num("gen-topp"), top_k: num("gen-topk"), seed: num("gen-seed"), alternatives: 5,
  };
  generating = new AbortController();
  const button = $("gen-run");
  button.textContent = "Stop";
  button.disabled = false;
  out.dataset.state = "streaming";
  out.replaceChildren(el("span", { class: "prompt" }, body.prompt));
  $("gen-detail").replaceChildren();
  const tokens = [];
  try {
    const r = await fetch("/playground/api/generate", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal: generating.signal });
    if (!r.ok) throw new Error((await r.json()).error || ("HTTP " + r.status));
    await readEvents(r, (kind, d) => {
      if (kind === "token") {
        const i = tokens.length;
        tokens.push(d);
        const shown = d.text !== "" ? d.text : d.token;
        const span = el("span", { class: "tok" + (d.text === "" ? " special" : ""), style: `--a:${(0.12 + 0.6 * d.p).toFixed(3)}`,
          title: `${pct(d.p)}`, "data-p": d.p.toFixed(4), "data-id": d.id }, shown);
        span.addEventListener("click", () => {
          out.querySelectorAll(".tok.sel").forEach((s) => s.classList.remove("sel"));
          span.classList.add("sel");
          tokenDetail(d, i);
        });
        out.append(span);
      } else if (kind === "text" && d.text) {
        out.append(d.text);
      } else if (kind === "done") {
        generated = { model: body.model, ids: d.ids };
        out.dataset.state = "done";
        out.append(el("div", { class: "finish" }, `${d.completion_tokens} tokens · finished: ${d.finish_reason}`));
        if (tokens.length > 0) { out.querySelector(".tok").classList.add("sel"); tokenDetail(tokens[0], 0); }
      } else if (kind === "error") {
        throw new Error(d.error);
      }
    });
    if (out.dataset.state === "done") await showDecoderAttention();
  } catch (e) {
    if (e.name === "AbortError") out.dataset.state = "stopped";
    else { out.dataset.state = "error"; out.append(el("div", { class: "error" }, e.message)); }
  } finally {
    generating = null;
    button.textContent = "Generate";
  }
}

async function showDecoderAttention() {
  if (!decAttention) decAttention = attentionView($("dec-attn-view"), (layer, head) => post("attention", { model: generated.model, ids: generated.ids, layer, head }));
  await decAttention.show();
}

// ---- start ------------------------------------------------------------------------------------------------------

async function start() {
  const r = await fetch("/playground/api/models");
  const models = await r.json();
  const encoders = (task) => models.encoders.filter((m) => m.tasks.includes(task)).map((m) => m.name);
  fillSelect($("fill-model"), encoders("fill-mask"));
  fillSelect($("sent-model"), encoders("classify"), "sentiment");
  fillSelect($("ner-model"), encoders("ner"));
  fillSelect($("enc-attn-model"), encoders("attention"));
  fillSelect($("gen-model"), models.decoders.map((m) => m.name));
  const useDefaults = () => {
    const d = models.decoders.find((m) => m.name === $("gen-model").value);
    if (!d) return;
    $("gen-temp").value = d.defaults.temperature;
    $("gen-topp").value = d.defaults.top_p;
    $("gen-topk").value = d.defaults.top_k;
    $("gen-max").max = d.context;
  };
  $("gen-model").addEventListener("change", useDefaults);
  useDefaults();
  const runs = [
    [$("fill-run"), $("fill-out"), fillMask, encoders("fill-mask")],
    [$("sent-run"), $("sent-out"), classify, encoders("classify")],
    [$("ner-run"), $("ner-out"), ner, encoders("ner")],
    [$("enc-attn-run"), $("enc-attn-view"), () => encAttention.show(), encoders("attention")],
  ];
  for (const [button, out, action, available] of runs) {
    wire(button, out, action);
    if (available.length === 0) { button.disabled = true; out.replaceChildren(el("p", { class: "muted" }, "no served model can do this")); }
  }
  $("gen-run").addEventListener("click", generate);
  if (models.decoders.length === 0) { $("gen-run").disabled = true; $("gen-out").replaceChildren(el("p", { class: "muted" }, "no decoder is served")); }
  // Enter in a text box runs its card.
  for (const [input, button] of [["fill-text", "fill-run"], ["sent-text", "sent-run"], ["ner-text", "ner-run"], ["enc-attn-text", "enc-attn-run"], ["gen-prompt", "gen-run"]])
    $(input).addEventListener("keydown", (e) => { if (e.key === "Enter" && !$(button).disabled) $(button).click(); });
  $("status").textContent = `serving ${models.encoders.length} encoder(s), ${models.decoders.length} decoder(s)`;
  document.body.dataset.ready = "true";
}

start().catch((e) => { $("status").textContent = "could not load the models: " + e.message; $("status").className = "error"; });
