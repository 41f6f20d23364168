using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpFormer.AttentionViews;

/// <summary>
/// A self-contained HTML viewer of an attention map in the spirit of bertviz: no network, the script, styles and
/// the attention probabilities (base64 float32, layer-major [L][H][T][T]) are inline. Head view (queries on the
/// left, keys on the right, lines as strong as the weights; hover a token to see what it attends to or what
/// attends to it), the selected head's heatmap, per-head statistics, and a model view of every layer × head as
/// thumbnails (click to select). The initial layer and head come from the URL hash (<c>#layer=1&amp;head=2</c>),
/// else from the builder's arguments; changing them updates the hash.
/// </summary>
public static class AttentionHtml
{
    /// <summary>Largest number of attention weights embedded (layers × heads × T × T): 16 MB of float32.</summary>
    public const long MaxWeights = 4_000_000;

    /// <summary>The id of the script element that holds the embedded data (JSON), for readers such as <see cref="ReadData"/>.</summary>
    public const string DataElementId = "attention-data";

    /// <summary>The self-contained HTML viewer of <paramref name="map"/> (no network access needed).</summary>
    /// <param name="map">The attention of one model on one text.</param>
    /// <param name="layer">The layer selected when the page opens (null: 0; the URL hash can override it).</param>
    /// <param name="head">The head selected when the page opens (null: 0).</param>
    public static string Build(AttentionMap map, int? layer = null, int? head = null)
    {
        if (layer is int l) map.CheckLayer(l);
        if (head is int h) map.CheckHead(h);
        long count = (long)map.Layers * map.Heads * map.Length * map.Length;
        if (count > MaxWeights)
            throw new SharpFormerException($"{map.Length} tokens × {map.Layers} layers × {map.Heads} heads is too much for one HTML page ({count:N0} weights, at most {MaxWeights:N0}); shorten the text");
        var floats = new float[count];
        int off = 0;
        foreach (var a in map.Attentions) { a.Data.CopyTo(floats, off); off += a.Length; }
        var bytes = new byte[count * 4];
        Buffer.BlockCopy(floats, 0, bytes, 0, bytes.Length);
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("the viewer's data is little-endian float32");

        var stats = new JsonArray();
        for (int li = 0; li < map.Layers; li++)
        {
            var row = new JsonArray();
            foreach (var s in HeadStatistics.OfLayer(map, li))
                row.Add(new JsonObject
                {
                    ["sink"] = Math.Round(s.SinkShare, 5), ["self"] = Math.Round(s.SelfShare, 5), ["prev"] = Math.Round(s.PreviousShare, 5),
                    ["entropy"] = Math.Round(s.MeanEntropyBits, 4), ["maxEntropy"] = Math.Round(s.MaxEntropyBits.Average(), 4), ["pattern"] = s.Pattern,
                });
            stats.Add(row);
        }
        var data = new JsonObject
        {
            ["model"] = map.ModelName, ["modelType"] = map.ModelType, ["causal"] = map.IsCausal, ["kind"] = map.KindName,
            ["text"] = map.Text, ["tokens"] = new JsonArray(map.Tokens.Select(t => (JsonNode)JsonValue.Create(t)!).ToArray()),
            ["labels"] = new JsonArray(map.Labels.Select(t => (JsonNode)JsonValue.Create(t)!).ToArray()),
            ["inputIds"] = new JsonArray(map.InputIds.Select(t => (JsonNode)JsonValue.Create(t)!).ToArray()),
            ["layers"] = map.Layers, ["heads"] = map.Heads, ["length"] = map.Length, ["kvHeads"] = map.KvHeads > 0 ? map.KvHeads : map.Heads,
            ["sinkName"] = map.SinkName, ["sinks"] = new JsonArray(map.SinkPositions.Select(t => (JsonNode)JsonValue.Create(t)!).ToArray()),
            ["initialLayer"] = layer ?? 0, ["initialHead"] = head ?? 0,
            ["stats"] = stats,
            ["weights"] = Convert.ToBase64String(bytes),
        };
        // The default encoder escapes < > & and non-ASCII, so the JSON cannot close the script element.
        var json = data.ToJsonString(new JsonSerializerOptions { WriteIndented = false });
        var title = System.Net.WebUtility.HtmlEncode($"attention · {map.ModelName} · {map.Text}");
        return Template.Replace("{{TITLE}}", title).Replace("{{DATA}}", json);
    }

    /// <summary>Reads the embedded data back: the weights as float32 (layer-major [L][H][T][T]) and the tokens.</summary>
    public static (float[] Weights, string[] Tokens, int Layers, int Heads, int Length) ReadData(string html)
    {
        var start = html.IndexOf($"<script id=\"{DataElementId}\" type=\"application/json\">", StringComparison.Ordinal);
        if (start < 0) throw new FormatException("no attention data in the page");
        start = html.IndexOf('>', start) + 1;
        var end = html.IndexOf("</script>", start, StringComparison.Ordinal);
        var o = JsonNode.Parse(html[start..end])!.AsObject();
        var bytes = Convert.FromBase64String(o["weights"]!.GetValue<string>());
        var w = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, w, 0, bytes.Length);
        return (w, o["tokens"]!.AsArray().Select(x => x!.GetValue<string>()).ToArray(),
            o["layers"]!.GetValue<int>(), o["heads"]!.GetValue<int>(), o["length"]!.GetValue<int>());
    }

    const string Template = """
<!DOCTYPE html>
<html lang="zh">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{TITLE}}</title>
<style>
  :root { --fg: #1b1f24; --muted: #6a737d; --line: #d0d7de; --accent: #0b5394; }
  * { box-sizing: border-box; }
  body { margin: 0; padding: 16px 20px 40px; font: 14px/1.45 "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", "WenQuanYi Micro Hei", system-ui, sans-serif; color: var(--fg); background: #fff; }
  h1 { font-size: 19px; margin: 0 0 2px; }
  h2 { font-size: 15px; margin: 22px 0 8px; }
  .meta { color: var(--muted); margin: 0; }
  .text { margin: 4px 0 12px; font-size: 15px; }
  nav { display: flex; gap: 18px; align-items: center; flex-wrap: wrap; padding: 8px 0; border-top: 1px solid var(--line); border-bottom: 1px solid var(--line); }
  nav label { display: inline-flex; gap: 6px; align-items: center; }
  select { font: inherit; padding: 2px 4px; }
  #status { color: var(--muted); }
  .views { display: flex; gap: 28px; flex-wrap: wrap; align-items: flex-start; margin-top: 12px; }
  #headview text { font-size: 13px; cursor: default; }
  #headview .tok rect { fill: transparent; }
  #headview .tok:hover rect, #headview .tok.hover rect { stroke: var(--accent); stroke-width: 1.5; }
  #heat { border: 1px solid #999; image-rendering: pixelated; }
  #info { min-height: 42px; color: var(--fg); margin-top: 6px; max-width: 900px; }
  table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
  th, td { padding: 3px 10px; border-bottom: 1px solid var(--line); text-align: right; }
  th:first-child, td:first-child { text-align: left; }
  tr.sel td { background: #eef5fc; font-weight: 600; }
  #grid { display: grid; gap: 6px; align-items: center; justify-content: start; }
  #grid .lab { color: var(--muted); font-size: 12px; text-align: center; }
  #grid canvas { border: 2px solid transparent; cursor: pointer; display: block; }
  #grid canvas.sel { border-color: #d62728; }
  #grid canvas:hover { border-color: var(--accent); }
  .legend { color: var(--muted); font-size: 12px; }
</style>
</head>
<body>
<header>
  <h1 id="title"></h1>
  <p class="meta" id="meta"></p>
  <p class="text" id="text"></p>
</header>
<nav>
  <label>Layer <select id="layer"></select></label>
  <label>Head <select id="head"></select></label>
  <label><input type="checkbox" id="allheads"> all heads in the head view</label>
  <span id="status"></span>
</nav>
<div class="views">
  <div>
    <h2>Head view</h2>
    <div class="legend">left: query tokens · right: key tokens · hover a token to see what it attends to (left) or what attends to it (right)</div>
    <svg id="headview" xmlns="http://www.w3.org/2000/svg"></svg>
  </div>
  <div>
    <h2>Attention matrix</h2>
    <div class="legend">rows: queries · columns: keys · white 0 → dark blue = the head's largest weight<span id="masknote"></span></div>
    <canvas id="heat"></canvas>
    <div id="info"></div>
  </div>
</div>
<h2>Heads of this layer</h2>
<table id="stats"></table>
<h2>Model view: every layer × head</h2>
<div class="legend">click a thumbnail to select its layer and head</div>
<div id="grid"></div>
<script id="attention-data" type="application/json">{{DATA}}</script>
<script>
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("attention-data").textContent);
  const T = D.length, L = D.layers, H = D.heads;
  const raw = atob(D.weights);
  const buf = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) buf[i] = raw.charCodeAt(i);
  const W = new Float32Array(buf.buffer);
  const w = (l, h, q, k) => W[((l * H + h) * T + q) * T + k];
  const STOPS = [[0, 247, 251, 255], [0.125, 222, 235, 247], [0.25, 198, 219, 239], [0.375, 158, 202, 225], [0.5, 107, 174, 214],
                 [0.625, 66, 146, 198], [0.75, 33, 113, 181], [0.875, 8, 81, 156], [1, 8, 48, 107]];
  const HEAD_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
                        "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd"];
  function colour(v, max) {
    let x = max > 0 ? Math.min(Math.max(v / max, 0), 1) : 0;
    for (let i = 1; i < STOPS.length; i++) {
      if (x > STOPS[i][0]) continue;
      const a = STOPS[i - 1], b = STOPS[i], f = (x - a[0]) / (b[0] - a[0]);
      return "rgb(" + [1, 2, 3].map(j => Math.round(a[j] + (b[j] - a[j]) * f)).join(",") + ")";
    }
    return "rgb(8,48,107)";
  }
  function headMax(l, h) { let m = 0; for (let i = 0; i < T * T; i++) m = Math.max(m, W[(l * H + h) * T * T + i]); return m; }
  const fmt = v => v.toFixed(3);
  const pct = v => (100 * v).toFixed(1) + "%";
  const el = (tag, attrs, text) => {
    const e = tag === "svg" || tag === "line" || tag === "text" || tag === "rect" || tag === "g"
      ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  };

  document.getElementById("title").textContent = "Attention · " + D.model;
  document.getElementById("meta").textContent = D.modelType + " · " + D.kind + " · " + L + " layers × " + H + " heads · " + T + " tokens";
  document.getElementById("text").textContent = "“" + D.text + "”";
  if (D.causal) document.getElementById("masknote").textContent = " · grey: masked (a decoder token cannot see later tokens)";

  const layerSel = document.getElementById("layer"), headSel = document.getElementById("head"), allHeads = document.getElementById("allheads");
  for (let l = 0; l < L; l++) layerSel.appendChild(el("option", { value: l }, String(l)));
  // Grouped-query attention: each option names the key/value head the query head reads.
  const G = H / (D.kvHeads || H);
  for (let h = 0; h < H; h++) headSel.appendChild(el("option", { value: h }, G > 1 ? `${h} (kv ${Math.floor(h / G)})` : String(h)));

  const state = { layer: D.initialLayer, head: D.initialHead, hover: null };
  function readHash() {
    const m = {};
    (location.hash || "").replace(/^#/, "").split("&").forEach(p => { const kv = p.split("="); if (kv.length === 2) m[kv[0]] = parseInt(kv[1], 10); });
    if (Number.isInteger(m.layer) && m.layer >= 0 && m.layer < L) state.layer = m.layer;
    if (Number.isInteger(m.head) && m.head >= 0 && m.head < H) state.head = m.head;
  }
  function writeHash() {
    const h = "#layer=" + state.layer + "&head=" + state.head;
    if (location.hash !== h) { try { history.replaceState(null, "", h); } catch (e) { /* file: URLs may refuse; the view still changes */ } }
  }

  // ---- head view (SVG): queries left, keys right -------------------------------------------------
  const ROW = 22, LEFT_W = Math.max(60, ...D.labels.map(s => 9 * Math.max(2, [...s].length))) + 10, GAP = 150;
  const svg = document.getElementById("headview");
  function drawHeadView() {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const width = 2 * LEFT_W + GAP, height = T * ROW + 10;
    svg.setAttribute("width", width); svg.setAttribute("height", height); svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    const heads = allHeads.checked ? [...Array(H).keys()] : [state.head];
    const lines = el("g");
    const hv = state.hover;
    for (const h of heads) {
      const col = allHeads.checked ? HEAD_COLOURS[h % HEAD_COLOURS.length] : HEAD_COLOURS[0];
      for (let q = 0; q < T; q++) for (let k = 0; k < T; k++) {
        if (hv && ((hv.side === "q" && hv.i !== q) || (hv.side === "k" && hv.i !== k))) continue;
        const v = w(state.layer, h, q, k);
        if (v < 0.01) continue;
        lines.appendChild(el("line", { x1: LEFT_W, y1: 5 + q * ROW + ROW / 2, x2: LEFT_W + GAP, y2: 5 + k * ROW + ROW / 2,
          stroke: col, "stroke-width": 2, "stroke-opacity": Math.min(1, v * (allHeads.checked ? 0.8 : 1)).toFixed(3) }));
      }
    }
    svg.appendChild(lines);
    for (const side of ["q", "k"]) for (let i = 0; i < T; i++) {
      const g = el("g", { class: "tok", "data-side": side, "data-index": i });
      const x = side === "q" ? 0 : LEFT_W + GAP, y = 5 + i * ROW;
      let fill = "transparent";
      if (hv && hv.side !== side) {
        const v = hv.side === "q" ? w(state.layer, state.head, hv.i, i) : w(state.layer, state.head, i, hv.i);
        fill = colour(v, headMax(state.layer, state.head));
      }
      const r = el("rect", { x: x + 2, y: y + 1, width: LEFT_W - 6, height: ROW - 2, rx: 3 });
      r.style.fill = fill;
      g.appendChild(r);
      g.appendChild(el("text", { x: side === "q" ? LEFT_W - 8 : x + 8, y: y + ROW / 2 + 5, "text-anchor": side === "q" ? "end" : "start" }, D.labels[i]));
      if (hv && hv.side === side && hv.i === i) g.setAttribute("class", "tok hover");
      g.addEventListener("mouseenter", () => { state.hover = { side: side, i: i }; render(false); });
      g.addEventListener("mouseleave", () => { state.hover = null; render(false); });
      svg.appendChild(g);
    }
  }

  // ---- heatmap of the selected head ----------------------------------------------------------------
  const heat = document.getElementById("heat"), info = document.getElementById("info");
  const CELL = Math.max(4, Math.min(28, Math.floor(420 / T)));
  function drawHeat() {
    heat.width = T * CELL; heat.height = T * CELL;
    const ctx = heat.getContext("2d");
    const max = headMax(state.layer, state.head);
    for (let q = 0; q < T; q++) for (let k = 0; k < T; k++) {
      ctx.fillStyle = D.causal && k > q ? "rgb(232,232,232)" : colour(w(state.layer, state.head, q, k), max);
      ctx.fillRect(k * CELL, q * CELL, CELL, CELL);
    }
    const hv = state.hover;
    if (hv) {
      ctx.strokeStyle = "#d62728"; ctx.lineWidth = 2;
      if (hv.side === "q") ctx.strokeRect(1, hv.i * CELL + 1, T * CELL - 2, CELL - 2);
      else ctx.strokeRect(hv.i * CELL + 1, 1, CELL - 2, T * CELL - 2);
    }
    if (hv) {
      const vals = [];
      for (let j = 0; j < T; j++) vals.push([j, hv.side === "q" ? w(state.layer, state.head, hv.i, j) : w(state.layer, state.head, j, hv.i)]);
      vals.sort((a, b) => b[1] - a[1]);
      info.textContent = (hv.side === "q" ? "“" + D.labels[hv.i] + "” (" + hv.i + ") attends to: " : "attending to “" + D.labels[hv.i] + "” (" + hv.i + "): ") +
        vals.slice(0, 6).map(p => D.labels[p[0]] + " (" + p[0] + ") " + fmt(p[1])).join(", ");
    } else info.textContent = "hover a token or a cell";
  }
  heat.addEventListener("mousemove", ev => {
    const r = heat.getBoundingClientRect();
    const k = Math.floor((ev.clientX - r.left) / CELL), q = Math.floor((ev.clientY - r.top) / CELL);
    if (q >= 0 && q < T && k >= 0 && k < T)
      info.textContent = "query “" + D.labels[q] + "” (" + q + ") → key “" + D.labels[k] + "” (" + k + "): " + fmt(w(state.layer, state.head, q, k)) +
        (D.causal && k > q ? " (masked)" : "");
  });

  // ---- statistics of the layer's heads ----------------------------------------------------------------
  function drawStats() {
    const t = document.getElementById("stats");
    while (t.firstChild) t.removeChild(t.firstChild);
    const hr = el("tr");
    ["head", "on " + D.sinkName, "on self", "on previous", "entropy (bits)", "of max", "pattern"].forEach(s => hr.appendChild(el("th", {}, s)));
    t.appendChild(hr);
    D.stats[state.layer].forEach((s, h) => {
      const tr = el("tr", h === state.head ? { class: "sel" } : {});
      [String(h), pct(s.sink), pct(s.self), pct(s.prev), s.entropy.toFixed(2), s.maxEntropy.toFixed(2), s.pattern].forEach(x => tr.appendChild(el("td", {}, x)));
      tr.addEventListener("click", () => select(state.layer, h));
      t.appendChild(tr);
    });
  }

  // ---- model view: thumbnails of every layer × head ------------------------------------------------
  const grid = document.getElementById("grid");
  const THUMB = Math.max(64, Math.min(110, 6 * T));
  const thumbs = [];
  function buildGrid() {
    grid.style.gridTemplateColumns = "auto repeat(" + H + ", " + (THUMB + 4) + "px)";
    grid.appendChild(el("div", { class: "lab" }, ""));
    for (let h = 0; h < H; h++) grid.appendChild(el("div", { class: "lab" }, "head " + h));
    for (let l = 0; l < L; l++) {
      grid.appendChild(el("div", { class: "lab" }, "layer " + l));
      thumbs.push([]);
      for (let h = 0; h < H; h++) {
        const c = el("canvas", { width: THUMB, height: THUMB, title: "layer " + l + ", head " + h });
        const ctx = c.getContext("2d"), s = THUMB / T, max = headMax(l, h);
        for (let q = 0; q < T; q++) for (let k = 0; k < T; k++) {
          ctx.fillStyle = D.causal && k > q ? "rgb(232,232,232)" : colour(w(l, h, q, k), max);
          ctx.fillRect(Math.floor(k * s), Math.floor(q * s), Math.ceil(s), Math.ceil(s));
        }
        c.addEventListener("click", () => select(l, h));
        grid.appendChild(c);
        thumbs[l].push(c);
      }
    }
  }

  function select(l, h) { state.layer = l; state.head = h; render(true); }
  function render(full) {
    layerSel.value = String(state.layer); headSel.value = String(state.head);
    drawHeadView(); drawHeat();
    if (full) {
      drawStats();
      thumbs.forEach((row, l) => row.forEach((c, h) => c.classList.toggle("sel", l === state.layer && h === state.head)));
      writeHash();
      document.getElementById("status").textContent = "layer " + state.layer + " · head " + state.head;
      document.body.setAttribute("data-rendered", "layer=" + state.layer + ";head=" + state.head);
    }
  }
  layerSel.addEventListener("change", () => select(parseInt(layerSel.value, 10), state.head));
  headSel.addEventListener("change", () => select(state.layer, parseInt(headSel.value, 10)));
  allHeads.addEventListener("change", () => render(false));
  window.addEventListener("hashchange", () => { readHash(); render(true); });
  readHash();
  buildGrid();
  render(true);
})();
</script>
</body>
</html>
""";
}
