// glassnet studio: the page.  It computes nothing: every number shown comes from the
// server's /api/step (glassnet's trace), every mark from /api/check, every derivation
// from /api/explain.  This file only edits the spec, draws, and asks.
"use strict";

const S = {
  spec: null,        // the spec as JSON (the TOML spec's fields), every weight written out
  trace: null,       // Trace.to_dict() of the spec's step
  graph: null,       // {quantities: {name: {inputs, consumers, seed}}, order}
  mode: "explore",
  round: null,
  digits: 4,
  seedNames: false,
  values: {},        // practice: name -> nested arrays of typed text (or null)
  marks: null,
  selected: null,    // [q, i] of the number whose derivation is shown
  hide: [],
  train: null,
  lock: null,        // a teacher's lock: {hint, reveal, explore, files, answers} (see lockFrom)
  sheet: null,       // /api/sheet: the givens and the unknowns' shapes
  sheetKey: null,
  focusIdx: {},      // practice: quantity -> the index of its box last focused
  links: null,       // the selected number's inputs and consumers (/api/links)
  lastEdit: null,    // the box whose edit the last /api/step answered (errors go beside it)
};
const BATCHED = new Set(["x", "y", "z", "a", "da_dz", "dL_da", "delta", "loss_terms", "output"]);
const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...kids) {
  const ns = ["svg", "g", "circle", "line", "text", "path", "polyline", "rect", "title"].includes(tag)
    ? "http://www.w3.org/2000/svg" : null;
  const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}

// -- talking to the engine ----------------------------------------------------------------
let pending = 0;
const LOST = "The studio's server is not answering: is glassnet studio still running?";
async function post(path, body) {
  pending++;
  status("working…");
  try {
    let r;
    try {
      r = await fetch("/api/" + path, {
        method: "POST",
        headers: {"Content-Type": "application/json"},
        body: JSON.stringify(body),
      });
    } catch {  // no answer at all (the server stopped, or the network): said plainly
      const e = new Error(LOST);
      e.lost = true;
      throw e;
    }
    let data;
    try { data = await r.json(); } catch { throw new Error(`the server answered ${r.status} without JSON`); }
    if (!r.ok) throw new Error(data.error || ("HTTP " + r.status));
    return data;
  } finally {
    pending--;
    if (!pending) status("");
  }
}
function status(text) { $("#status").textContent = text; }
// The banner at the top: only for what belongs to no box (a lost server, a bad link).
// ``retry``: what to do again once the server answers (a "retry" button).
function showError(err, retry) {
  const box = $("#error");
  if (!err) { box.hidden = true; box.replaceChildren(); return; }
  box.hidden = false;
  box.replaceChildren(el("span", {text: String(err.message || err)}));
  if (retry) {
    box.append(" ", el("button", {type: "button", id: "retry", text: "retry",
      onclick: () => { showError(null); retry(); }}));
  }
}
function lostServer(err, retry) { showError(err, retry); }

// -- names and numbers ---------------------------------------------------------------------
function kindOf(q) {
  const m = /^(z|a|dL_da|delta|dW|db|W|b)(\d+)(_new)?$/.exec(q);
  if (m) return [m[1] + (m[3] || ""), +m[2]];
  const d = /^da(\d+)_dz(\d+)$/.exec(q);
  if (d) return ["da_dz", +d[1]];
  return [q, 0];
}
function traceValue(name) {
  let t = S.trace;
  let q = name;
  if (name.endsWith("@after")) {  // the forward pass and loss with the updated weights
    t = {...S.trace.after, input: S.trace.input, target: S.trace.target};
    q = name.slice(0, -6);
  }
  const [kind, layer] = kindOf(q);
  const top = {x: "input", y: "target", loss_terms: "loss_terms", loss: "loss", output: "output"};
  let v = kind in top ? t[top[kind]] : t.layers[layer - 1][kind];
  if (BATCHED.has(kind) && t.input.length === 1) v = v[0];
  return v;
}
function fmt(v) {
  if (S.round !== null) return v.toFixed(S.round);
  if (v === 0) return "0";
  const s = Number(v.toPrecision(S.digits));
  return String(s);
}
function label(q) {
  const seed = S.graph && S.graph.quantities[q] ? S.graph.quantities[q].seed : null;
  return S.seedNames && seed ? seed : q;
}
// A number's accessible name: "h1_out2, layer 1 unit 2 activation, 0.5987" (the words
// from the server's /api/graph; the seed's name where it has one).
function numName(q, idx, v) {
  const after = q.endsWith("@after");
  const base = after ? q.slice(0, -6) : q;
  const info = S.graph && S.graph.quantities[base];
  const kind = kindOf(base)[0];
  const batched = BATCHED.has(kind) && S.spec && S.spec.input.length > 1;
  const rest = batched ? idx.slice(1) : idx;
  const u = rest[rest.length - 1], j = rest[0], k = rest[1];
  const words = (info ? info.describe : base).replace("{u}", u + 1).replace("{j}", j + 1).replace("{k}", k + 1);
  const seed = info && info.seed;
  // In the names the page shows: the seed's counts units from 1 (h1_out2), ours indexes
  // from 0 (a1[1]).
  const entry = S.seedNames && seed && rest.length === 1 && !["W", "dW", "W_new"].includes(kind) ? seed + (u + 1)
    : (S.seedNames && seed ? seed : base) + (idx.length ? "[" + idx.join(",") + "]" : "");
  return `${entry}, ${batched ? "sample " + (idx[0] + 1) + ", " : ""}${after ? "after the update, " : ""}${words}` +
    (v === undefined ? "" : ", " + fmt(v));
}
function nameEl(q) {
  const seed = S.graph && S.graph.quantities[q] ? S.graph.quantities[q].seed : null;
  return el("span", {class: "name"}, label(q),
    !S.seedNames && seed ? el("span", {class: "seed", text: "(" + seed + ")"}) : null);
}

// A number of the step: focusable, clickable, carrying data-q/data-i/data-value.  Its
// accessible name is its content: which number it is (visually hidden, written once),
// then the value (the only text an edit rewrites) — "h1_out2, layer 1 unit 2
// activation, 0.5987".
function num(q, idx, v) {
  const b = el("button", {
    type: "button", class: "num", "data-q": q, "data-i": idx.join(","), "data-value": String(v),
    onclick: select, onfocus: select,
  });
  b.append(el("span", {class: "sr", text: numName(q, idx) + ", "}), document.createTextNode(fmt(v)));
  return b;
}
// Any nested array of numbers as a table of num()s (a vector as one row).
function grid(q, v, make) {
  make = make || num;
  if (!Array.isArray(v)) return make(q, [], v);
  const t = el("table", {class: "m"});
  const rows = Array.isArray(v[0]) ? v : [v];
  rows.forEach((row, r) => {
    const tr = el("tr");
    row.forEach((x, c) => {
      if (Array.isArray(x)) {  // a 3-D value (Jacobian of a batch): nest
        tr.append(el("td", {}, grid(q, x, (qq, idx, y) => make(qq, [r, c, ...idx.slice(-1)], y))));
      } else {
        tr.append(el("td", {}, make(q, Array.isArray(v[0]) ? [r, c] : [c], x)));
      }
    });
    t.append(tr);
  });
  return t;
}
function quantity(q, parent) {
  const v = traceValue(q);
  parent.append(el("div", {class: "q"}, nameEl(q), grid(q, v)));
}

// -- explore: parameters (editable) --------------------------------------------------------
// A message beside a box (an edit's own, or the server's about it); "" clears it.
function say(input, text) {
  let m = input.nextElementSibling;
  if (!m || !m.classList.contains("msg")) {
    m = el("span", {class: "msg", role: "alert", id: "msg-" + Math.random().toString(36).slice(2)});
    input.after(m);
    input.setAttribute("aria-describedby", m.id);
  }
  m.textContent = text;
  input.classList.toggle("bad", !!text);
  input.setAttribute("aria-invalid", text ? "true" : "false");
}
// While a box holds no valid number the step's numbers are of the old value: greyed.
function stale(on) { document.body.classList.toggle("stale", on); }
function edit(q, idx, input) {
  const text = input.value.trim().replace("−", "-");
  if (!isNumber(text)) { say(input, NOT_A_NUMBER); stale(true); return; }
  const v = Number(text);
  say(input, "");
  S.lastEdit = input;
  input.dataset.value = String(v);
  S.editStart = performance.now();
  const [kind, layer] = kindOf(q);
  let target;
  if (kind === "x") target = S.spec.input;
  else if (kind === "y") target = S.spec.target;
  else if (kind === "W") target = S.spec.layers[layer - 1].weights;
  else if (kind === "b") target = S.spec.layers[layer - 1].bias;
  if (target === S.spec.input || target === S.spec.target) {
    if (idx.length === 1) idx = [0, idx[0]];
  }
  if (idx.length === 1) target[idx[0]] = v; else target[idx[0]][idx[1]] = v;
  refresh();
}
function param(q, idx, v) {
  const cls = q[0] === "W" ? "ctl-weights" : q[0] === "b" ? "ctl-biases" : "";
  const input = el("input", {
    type: "text", inputmode: "decimal", class: "p " + cls, value: String(v),
    "data-q": q, "data-i": idx.join(","), "data-value": String(v),
    "aria-label": numName(q, idx),
    onfocus: select,
  });
  let timer = null;
  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => edit(q, idx, input), 120); });
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") { clearTimeout(timer); edit(q, idx, input); } });
  return input;
}
function batchFree(rows) { return rows.length === 1 ? rows[0] : rows; }

function renderParams() {
  const box = $("#params");
  box.replaceChildren();
  if (S.cnn) { renderCnnParams(box); return; }
  const L = S.spec.layers.length;
  box.append(el("h2", {text: "Input, target and parameters (edit any)"}));
  const sizes = [S.spec.layers[0].weights.length, ...S.spec.layers.map((l) => l.bias.length)].join("-");
  const sz = el("input", {type: "text", id: "sizes", value: sizes, size: 12, "aria-label": "layer sizes, inputs first (e.g. 2-2-1)"});
  sz.addEventListener("keydown", (e) => { if (e.key === "Enter") setSizes(sz); });
  sz.addEventListener("change", () => setSizes(sz));
  box.append(el("p", {class: "ctl-sizes"}, el("label", {}, "sizes (inputs-…-outputs) ", sz)));
  box.append(el("div", {class: "q"}, nameEl("x"), grid("x", batchFree(S.spec.input), param)));
  box.append(el("div", {class: "q"}, nameEl("y"), grid("y", batchFree(S.spec.target), param)));
  S.spec.layers.forEach((layer, k) => {
    const l = k + 1;
    const act = el("select", {"aria-label": `activation of layer ${l}`, class: "ctl-activations"});
    const acts = S.graph.activations;  // name -> its options' defaults (the engine's registry)
    for (const a of Object.keys(acts)) act.append(el("option", {selected: a === layer.activation, text: a}));
    act.addEventListener("change", () => {
      for (const opts of Object.values(acts)) for (const k of Object.keys(opts)) delete layer[k];
      layer.activation = act.value;
      Object.assign(layer, acts[act.value] || {});
      refresh();
    });
    const units = layer.bias.length;
    const ctl = el("div", {class: "layerctl"},
      el("h3", {text: `Layer ${l}${l === L ? " (output)" : ""}: ${units} unit${units > 1 ? "s" : ""}`}),
      act,
      el("span", {class: "ctl-sizes"},
        el("button", {type: "button", text: "+ unit", "aria-label": `add a unit to layer ${l}`, onclick: () => resize(l, +1)}),
        el("button", {type: "button", text: "− unit", "aria-label": `remove a unit from layer ${l}`, onclick: () => resize(l, -1)}),
        l < L ? el("button", {type: "button", text: "remove layer", "aria-label": `remove layer ${l}`, onclick: () => removeLayer(l)}) : null,
        l === L ? el("button", {type: "button", text: "+ hidden layer", "aria-label": "add a hidden layer before the output", onclick: addLayer}) : null));
    box.append(ctl);
    box.append(el("div", {class: "q ctl-weights"}, nameEl(`W${l}`), grid(`W${l}`, layer.weights, param)));
    box.append(el("div", {class: "q ctl-biases"}, nameEl(`b${l}`), grid(`b${l}`, layer.bias, param)));
  });
  $("#loss").value = S.spec.loss;
  $("#lr").value = String(S.spec.lr);
  $("#lr").dataset.value = String(S.spec.lr);
  $("#update_bias").checked = S.spec.update_bias !== false;
  $("#after").checked = S.spec.after === true;
}

// Structure edits: new weights are 0.1 and new biases 0 (plain numbers a person can
// follow and change); the engine checks the result like any spec.
function resize(l, by) {
  const layers = S.spec.layers, layer = layers[l - 1];
  const n = layer.bias.length;
  if (n + by < 1) return;
  if (by > 0) {
    layer.weights.forEach((row) => row.push(0.1));
    layer.bias.push(0);
    if (l < layers.length) layers[l].weights.push(layers[l].weights[0].map(() => 0.1));
    else S.spec.target.forEach((row) => row.push(0));
  } else {
    layer.weights.forEach((row) => row.pop());
    layer.bias.pop();
    if (l < layers.length) layers[l].weights.pop();
    else S.spec.target.forEach((row) => row.pop());
  }
  structureChanged();
}
// Sizes typed directly ("2-2-1"): weights and biases kept where they still fit, new
// ones 0.1 and 0 as for "+ unit"; x and y cut or padded with zeros.
function setSizes(input) {
  const parts = input.value.trim().split(/\s*[-,x×]\s*/).map(Number);
  if (parts.length < 2 || parts.length > 17 || !parts.every((n) => Number.isInteger(n) && n >= 1 && n <= 256)) {
    say(input, "expected 2 to 17 sizes from 1 to 256, inputs first, e.g. 2-2-1");
    return;
  }
  const now = [S.spec.layers[0].weights.length, ...S.spec.layers.map((l) => l.bias.length)].join("-");
  if (parts.join("-") === now) { say(input, ""); return; }
  say(input, "");
  S.lastEdit = input;
  const old = S.spec.layers, L = parts.length - 1;
  S.spec.layers = Array.from({length: L}, (_, k) => {
    const o = k === L - 1 ? old[old.length - 1] : old[k] && k < old.length - 1 ? old[k] : null;
    const layer = {...(o || {activation: "sigmoid"})};
    layer.weights = Array.from({length: parts[k]}, (_, i) => Array.from({length: parts[k + 1]},
      (_, j) => (o && o.weights[i] && o.weights[i][j] !== undefined ? o.weights[i][j] : 0.1)));
    layer.bias = Array.from({length: parts[k + 1]}, (_, j) => (o && o.bias[j] !== undefined ? o.bias[j] : 0));
    return layer;
  });
  const fit = (rows, n) => rows.map((r) => Array.from({length: n}, (_, i) => r[i] ?? 0));
  S.spec.input = fit(S.spec.input, parts[0]);
  S.spec.target = fit(S.spec.target, parts[L]);
  structureChanged();
}
function addLayer() {
  const layers = S.spec.layers;
  if (layers.length >= 16) return;
  const last = layers[layers.length - 1];
  const n = last.weights.length;  // the output layer's inputs: keep them, insert n units
  const W = Array.from({length: n}, (_, i) => Array.from({length: n}, (_, j) => (i === j ? 1 : 0.1)));
  layers.splice(layers.length - 1, 0, {weights: W, bias: Array(n).fill(0), activation: "sigmoid"});
  structureChanged();
}
function removeLayer(l) {
  const layers = S.spec.layers;
  if (layers.length < 2 || l >= layers.length) return;
  const width = layers[l - 1].weights.length;  // what fed the removed layer
  const next = layers[l];
  const cols = next.weights[0].length;
  next.weights = Array.from({length: width}, (_, i) => next.weights[i] || Array(cols).fill(0.1));
  layers.splice(l - 1, 1);
  structureChanged();
}
async function structureChanged() {
  S.values = {};
  S.marks = null;
  S.selected = null;
  await loadGraph();
  const sizesTyped = S.lastEdit && S.lastEdit.id === "sizes";
  renderParams();
  if (sizesTyped) S.lastEdit = $("#sizes");  // the server's answer about them goes there
  await refresh();
}
async function loadGraph() {
  S.graph = await post("graph", {layers: S.spec.layers.length});
}

// -- explore: the step (read-only, from the trace) --------------------------------------
function renderStep() {
  const t = S.trace, L = t.layers.length, box = $("#step");
  box.replaceChildren();
  box.append(el("p", {class: "legend hint"}, "Selected number: its inputs ", el("span", {class: "src", text: "like this"}),
    ", what it feeds ", el("span", {class: "use", text: "like this"}), "."));
  box.append(el("h2", {text: "Forward pass"}));
  for (let l = 1; l <= L; l++) {
    box.append(el("h3", {text: `Layer ${l} (${t.layers[l - 1].activation})`}));
    quantity(`z${l}`, box);
    quantity(`a${l}`, box);
  }
  box.append(el("h2", {text: "The error"}));
  quantity("loss_terms", box);
  quantity("loss", box);
  box.append(el("h2", {text: "Backward pass"}));
  for (let l = L; l >= 1; l--) {
    box.append(el("h3", {text: `Layer ${l} (${t.layers[l - 1].activation})`}));
    for (const q of [`dL_da${l}`, `da${l}_dz${l}`, `delta${l}`, `dW${l}`, `db${l}`]) quantity(q, box);
  }
  box.append(el("h2", {text: "Update"}));
  box.append(el("p", {class: "hint", text: `W′ = W − η·dW with η = ${t.lr}` + (t.update_bias ? "; b′ = b − η·db" : "; biases stay fixed")}));
  for (let l = 1; l <= L; l++) { quantity(`W${l}_new`, box); quantity(`b${l}_new`, box); }
  if (t.after) {
    box.append(el("h2", {text: "After the update: the same input through the new weights"}));
    for (let l = 1; l <= L; l++) { quantity(`z${l}@after`, box); quantity(`a${l}@after`, box); }
    quantity("loss_terms@after", box);
    box.append(el("div", {class: "q"}, el("span", {class: "name", text: "loss"}),
      el("span", {text: " before "}), num("loss", [], t.loss), el("span", {text: " after "}),
      num("loss@after", [], t.after.loss)));
  }
}

function renderNet(target, layers, x, opts) {
  // The network as SVG: units with z and a, every weight as a line (width and colour by
  // size) with its number as text.  Numbers carry data-q/data-i/data-value.
  opts = opts || {};
  const sizes = [x ? x.length : layers[0].W.length, ...layers.map((l) => l.W[0].length)];
  const colW = opts.width || 150, rowH = 84, top = 34;
  const width = colW * (sizes.length - 1) + 120, height = top + rowH * Math.max(...sizes) + 10;
  const svg = el("svg", {viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "the network"});
  const pos = (c, u) => [60 + c * colW, top + rowH * (u + 0.5) + (rowH * (Math.max(...sizes) - sizes[c])) / 2];
  const maxW = Math.max(1e-9, ...layers.flatMap((l) => l.W.flat().map(Math.abs)));
  layers.forEach((layer, k) => {
    layer.W.forEach((row, i) => row.forEach((w, j) => {
      const [x1, y1] = pos(k, i), [x2, y2] = pos(k + 1, j);
      svg.append(el("line", {x1, y1, x2, y2, "data-w": `${k},${i},${j}`, stroke: w >= 0 ? "#2563eb" : "#dc2626",
        "stroke-width": (0.6 + 3.4 * Math.abs(w) / maxW).toFixed(2), "stroke-opacity": 0.55}));
    }));
  });
  if (!opts.noWeightText) layers.forEach((layer, k) => layer.W.forEach((row, i) => row.forEach((w, j) => {
    const [x1, y1] = pos(k, i), [x2, y2] = pos(k + 1, j);
    const f = 0.22 + 0.16 * (j % 3);
    const attrs = {x: x1 + (x2 - x1) * f, y: y1 + (y2 - y1) * f - 2, class: "wl num ctl-weights", "text-anchor": "middle",
      "data-q": `W${k + 1}`, "data-i": `${i},${j}`, "data-value": String(w), text: fmt(w)};
    const t = el("text", attrs);
    t.addEventListener("click", select);
    svg.append(t);
  })));
  sizes.forEach((n, c) => {
    for (let u = 0; u < n; u++) {
      const [cx, cy] = pos(c, u);
      const g = el("g", {class: "unit" + (c === sizes.length - 1 ? " output" : "")});
      g.append(el("circle", {cx, cy, r: 24}));
      const cell = (q, v, dy) => {
        const t = el("text", {x: cx, y: cy + dy, "text-anchor": "middle", class: "num", "data-q": q, "data-i": String(u),
          "data-value": String(v), text: fmt(v)});
        t.addEventListener("click", select);
        return t;
      };
      if (c === 0 && x) g.append(cell("x", x[u], 4));
      else if (c > 0 && opts.za) {
        g.append(cell(`z${c}`, opts.za[c - 1].z[u], -4));
        g.append(cell(`a${c}`, opts.za[c - 1].a[u], 11));
      }
      if (c > 0 && opts.bias) {
        const b = opts.bias[c - 1][u];
        const t = el("text", {x: cx, y: cy + 36, "text-anchor": "middle", class: "num bl ctl-biases",
          "data-q": `b${c}`, "data-i": String(u), "data-value": String(b), text: "b " + fmt(b)});
        t.addEventListener("click", select);
        g.append(t);
      }
      svg.append(g);
    }
    svg.append(el("text", {x: pos(c, 0)[0], y: 14, "text-anchor": "middle", class: "hdr",
      text: c === 0 ? "input" : `layer ${c}${opts.acts ? " · " + opts.acts[c - 1] : ""}`}));
  });
  target.replaceChildren(svg);
}

// The shape of what is drawn: when an edit keeps it, numbers are updated in place
// (much faster than drawing again for a 4-16-16-3 network).
function drawnShape() {
  const t = S.trace;
  return JSON.stringify([t.input.length, t.layers.map((l) => [l.W.length, l.W[0].length, l.activation]),
    S.round, S.digits, S.seedNames, t.update_bias, t.lr, !!t.after]);
}
function updateInPlace() {
  const t = S.trace;
  const values = new Map();  // each quantity looked up once
  if (!S.cells) {  // every drawn number, with its index parsed once per full drawing
    S.cells = Array.from(document.querySelectorAll("#explore [data-q]:not(input)"), (e) => ({
      e, q: e.dataset.q, idx: e.dataset.i === "" ? [] : e.dataset.i.split(",").map(Number),
      bias: e.classList.contains("bl"), value: e.dataset.value,
      text: e.tagName === "BUTTON" ? e.lastChild : e}));  // (a button's value text node)
  }
  for (const c of S.cells) {
    if (!values.has(c.q)) values.set(c.q, traceValue(c.q));
    let v = values.get(c.q);
    for (const k of c.idx) v = v[k];
    const value = String(v);
    if (c.value === value) continue;  // untouched by this edit
    c.value = value;
    c.e.dataset.value = value;
    c.text.textContent = c.bias ? "b " + fmt(v) : fmt(v);
  }
  // The weights' lines: only those whose look changed (an edit of one weight changes one
  // line, unless it changes the largest weight, which scales them all).
  const maxW = Math.max(1e-9, ...t.layers.flatMap((l) => l.W.flat().map(Math.abs)));
  if (!S.lines) {
    S.lines = Array.from(document.querySelectorAll("#net line[data-w]"), (e) => ({e, at: e.dataset.w.split(",").map(Number), look: ""}));
  }
  for (const line of S.lines) {
    const [k, i, j] = line.at;
    const w = t.layers[k].W[i][j];
    const colour = w >= 0 ? "#2563eb" : "#dc2626", width = (0.6 + 3.4 * Math.abs(w) / maxW).toFixed(2);
    if (line.look === colour + width) continue;
    line.look = colour + width;
    line.e.setAttribute("stroke", colour);
    line.e.setAttribute("stroke-width", width);
  }
}
function renderExplore() {
  if (S.cnn) { renderCnn().catch((err) => showError(err, err.lost ? renderCnn : null)); return; }
  const t = S.trace;
  const shape = drawnShape();
  if (S.drawn === shape && S.cells) { updateInPlace(); return; }
  S.drawn = shape;
  S.cells = null;
  S.lines = null;
  const one = t.input.length === 1;
  renderNet($("#net"), t.layers, one ? t.input[0] : null, {
    za: one ? t.layers.map((l) => ({z: l.z[0], a: l.a[0]})) : null,
    acts: t.layers.map((l) => l.activation),
    bias: t.layers.map((l) => l.b),
  });
  $("#net svg").append(el("text", {x: 4, y: $("#net svg").viewBox.baseVal.height - 4, class: "hint",
    text: one ? "in each unit: z (top), a (bottom); b below; weights on the lines" : "weights on the lines (a batch: see the step below)"}));
  renderStep();
  highlight();
  updateInPlace();  // (indexes every drawn number for the next edit; changes nothing now)
}

// -- explore a CNN: explain's grids, every cell a number to click ------------------------
// The step of a network with feature maps is drawn as glassnet explain writes it (its
// generic page: each 4-D quantity as grids of its numbers); each cell becomes a button
// carrying the cell's data-q/data-i (the full index, sample first).  Read-only but for
// the settings above (loss, learning rate, biases, rounding, digits).
function renderCnnParams(box) {
  box.append(el("p", {class: "hint", id: "cnnnote", text: "A CNN opens read-only: its numbers are " +
    "explain's, drawn as grids; click or focus any cell for its derivation. The loss, learning rate, " +
    "biases and rounding above still apply; to change an input or a kernel, edit the spec file and " +
    "open it again (open file). Practice and Train are for dense networks."}));
  $("#loss").value = S.spec.loss;
  $("#lr").value = String(S.spec.lr);
  $("#lr").dataset.value = String(S.spec.lr);
  $("#update_bias").checked = S.spec.update_bias !== false;
  $("#after").checked = S.spec.after === true;
}
function shapeText(v) { return shapeOf(v).slice(1).join("×"); }
let cnnSeq = 0;
async function renderCnn() {
  const t = S.trace, mine = ++cnnSeq;
  const boxes = [el("li", {class: "lay"}, el("strong", {text: "input"}), el("span", {text: shapeText(t.input)}))];
  t.layers.forEach((l) => {
    const act = l.activation && l.activation !== "identity" ? ` (${l.activation})` : "";
    boxes.push(el("li", {class: "lay"}, el("strong", {text: `${l.index}. ${l.type}${act}`}),
      el("span", {text: "→ " + shapeText(l.a)})));
  });
  $("#net").replaceChildren(el("ol", {class: "cnnnet", "aria-label": "the layers, each with its output's shape"}, ...boxes));
  const r = await post("explain", {spec: S.spec, round: S.round, digits: S.digits, fragment: true});
  if (mine !== cnnSeq) return;
  const body = el("div", {class: "deriv cnnstep"});
  body.innerHTML = r.html;  // explain's sections, made by the server from the trace
  for (const td of body.querySelectorAll("td[data-q]")) {
    const q = td.dataset.q, i = td.dataset.i;
    const b = el("button", {type: "button", class: "num cell", "data-q": q, "data-i": i,
      "data-value": td.textContent.replace(" ▲", ""), onclick: select, onfocus: select});
    b.append(el("span", {class: "sr", text: `${q}[${i}], `}), ...td.childNodes);
    td.removeAttribute("data-q");
    td.removeAttribute("data-i");
    td.replaceChildren(b);
  }
  $("#step").replaceChildren(el("p", {class: "legend hint"}, "Selected number: its inputs ",
    el("span", {class: "src", text: "like this"}), ", what it feeds ", el("span", {class: "use", text: "like this"}), "."), body);
  highlight();
}

// -- selecting a number: its derivation, its inputs and consumers ------------------------
function select(ev) {
  const node = ev.currentTarget;
  const q = node.dataset.q, i = node.dataset.i;
  if (!q || !S.trace || q === "lr") return;
  if (S.selected && S.selected[0] === q && S.selected[1] === i && ev.type === "focus") return;
  S.selected = [q, i];
  S.clickStart = performance.now();  // for bench/studio_load.py: click -> derivation drawn
  S.links = null;
  highlight();
  showDerivation().catch(derivationError);
  loadLinks(q, i).catch(showError);
}
// The selected number's inputs and consumers, number by number, from the server's step
// graph (/api/links): z1[0] lights x, the weights into unit 0 and b1[0].
async function loadLinks(q, i) {
  if (q.endsWith("@after")) return;
  const r = await post("links", {spec: S.spec, quantity: q, index: i});
  if (!S.selected || S.selected[0] !== q || S.selected[1] !== i) return;
  S.links = r;
  highlight();
}
// The selected number's derivation block, from explain (asked again after each edit).
async function showDerivation() {
  if (!S.selected) return;
  const [q, i] = S.selected;
  const detail = $("#detail");
  const [kind, layer] = kindOf(q);
  const r = await post("explain", {spec: S.spec, quantity: q, index: i, round: S.round, digits: S.digits});
  if (!S.selected || S.selected[0] !== q || S.selected[1] !== i) return;
  const at = (v) => (i === "" ? v : i.split(",").reduce((a, k) => a[+k], v));
  // (a CNN's quantities are explain's, named as its grids name them: the block says the value)
  const head = el("h3", {text: `${label(q)}${i ? "[" + i + "]" : ""}` + (S.cnn ? "" : ` = ${at(traceValue(q))}`)});
  const body = el("div", {class: "deriv"});
  body.innerHTML = r.html;  // explain's MathML, made by the server from the trace
  const close = el("button", {type: "button", class: "close", text: "✕", "aria-label": "close the derivation",
    onclick: () => detail.classList.remove("open")});
  const whole = el("button", {type: "button", id: "whole", text: "the whole derivation", onclick: showWhole});
  detail.replaceChildren(close, head, body, whole);
  detail.classList.add("open");
  const start = S.clickStart;
  S.clickStart = undefined;
  if (start !== undefined) requestAnimationFrame(() => { document.body.dataset.derivMs = String(performance.now() - start); });
  if ((kind === "W" || kind === "dW") && !S.cnn) {
    const [a, b] = i.split(",").map(Number);
    const out = el("p", {class: "fd"});
    detail.append(el("button", {type: "button", text: "check this gradient", id: "gradcheck",
      onclick: async () => {
        try {
          const g = await post("gradcheck", {spec: S.spec, layer, i: a, j: b});
          out.replaceChildren(
            el("span", {}, "finite difference (L(w+ε) − L(w−ε)) / 2ε: "),
            el("strong", {"data-fd": String(g.finite_difference), text: g.finite_difference.toPrecision(8)}),
            el("br"), el("span", {}, `backprop dW${layer}[${i}]: `),
            el("strong", {"data-bp": String(g.backprop), text: g.backprop.toPrecision(8)}),
            el("br"), el("span", {class: "hint", text: `difference ${g.abs_error.toExponential(2)} (ε = ${g.eps})`}));
        } catch (err) { showError(err); }
      }}), out);
  }
}
// A derivation the server refused (a quantity too wide to derive on the page): said in
// the panel, where the derivation would have been.
function derivationError(err) {
  if (err.lost) { lostServer(err, showDerivation); return; }
  const detail = $("#detail");
  const close = el("button", {type: "button", class: "close", text: "✕", "aria-label": "close the derivation",
    onclick: () => detail.classList.remove("open")});
  detail.replaceChildren(close, el("p", {class: "wrong", role: "alert", text: "✗ " + err.message}));
  detail.classList.add("open");
}
// The whole derivation of the step (explain's document) in the panel.
async function showWhole() {
  S.selected = null;
  highlight();
  try {
    const r = await post("explain", {spec: S.spec, round: S.round, digits: S.digits, fragment: true});
    const body = el("div", {class: "deriv whole"});
    body.innerHTML = r.html;
    const close = el("button", {type: "button", class: "close", text: "✕", "aria-label": "close the derivation",
      onclick: () => $("#detail").classList.remove("open")});
    $("#detail").replaceChildren(close, el("h3", {text: "The whole derivation"}), body);
    $("#detail").classList.add("open");
    $("#detail").scrollTop = 0;
  } catch (err) { showError(err); }
}
function highlight() {
  document.querySelectorAll(".sel, .src, .use").forEach((e) => e.classList.remove("sel", "src", "use"));
  if (!S.selected || !S.graph) return;
  const [q, i] = S.selected;
  const L = S.links || {inputs: [], consumers: []};
  const at = (n, k) => `#explore [data-q="${n}"][data-i="${k}"]`;
  // In the picture, a weight's line too (data-w is "layer-1,i,j").
  const line = (n, k) => { const m = /^W(\d+)$/.exec(n); return m ? `, #net line[data-w="${m[1] - 1},${k}"]` : ""; };
  for (const [n, k] of L.inputs) document.querySelectorAll(at(n, k) + line(n, k)).forEach((e) => e.classList.add("src"));
  for (const [n, k] of L.consumers) document.querySelectorAll(at(n, k) + line(n, k)).forEach((e) => e.classList.add("use"));
  document.querySelectorAll(`#explore [data-q="${q}"][data-i="${i}"]`).forEach((e) => e.classList.add("sel"));
}

// -- the step, refreshed after every edit -------------------------------------------------
let seq = 0;
async function refresh() {
  const mine = ++seq;
  try {
    const t = await post("step", {spec: S.spec, round: S.round});
    if (mine !== seq) return;  // a newer edit's answer will come
    S.trace = t;
    showError(null);
    stale(false);
    if (S.lastEdit) say(S.lastEdit, "");
    for (const e of document.querySelectorAll("#controls .bad")) say(e, "");
    renderExplore();
    if (S.selected) showDerivation().catch(derivationError);
    if (S.mode === "practice") await showPractice();
    saveSoon();  // after the numbers are drawn: not part of an edit's wait
    // For bench/studio_load.py: edit -> every number redrawn (measured at the next frame).
    const start = S.editStart;
    requestAnimationFrame(() => {
      if (start !== undefined) document.body.dataset.editMs = String(performance.now() - start);
      document.body.dataset.seq = String(mine);
    });
  } catch (err) {
    if (mine !== seq) return;
    stale(true);
    // The server's message beside what caused it: the box last edited, else the banner.
    if (err.lost) lostServer(err, refresh);
    else if (S.lastEdit && S.lastEdit.isConnected) say(S.lastEdit, err.message);
    else showError(err, refresh);
  }
}

// -- practice -------------------------------------------------------------------------------
function shapeOf(v) { return Array.isArray(v) ? [v.length, ...shapeOf(v[0])] : []; }
function blankOf(shape) { return shape.length ? Array.from({length: shape[0]}, () => blankOf(shape.slice(1))) : null; }
function getAt(v, idx) { return idx.reduce((a, k) => (a == null ? a : a[k]), v); }
function setAt(v, idx, x) { if (!idx.length) return x; let a = v; for (const k of idx.slice(0, -1)) a = a[k]; a[idx[idx.length - 1]] = x; return v; }
function indexes(shape) {
  let out = [[]];
  for (const n of shape) out = out.flatMap((i) => Array.from({length: n}, (_, k) => [...i, k]));
  return out;
}
// What a person may type: a number as the worksheet writes one (the server's rule too).
const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
function isNumber(text) { const t = text.trim().replace("−", "-"); return NUMBER.test(t) && Number.isFinite(Number(t)); }
const NOT_A_NUMBER = "expected a number such as 0.27 or -1.5e-3";

// The lock of a teacher's link: what a student may open (nothing unless listed).
function lockFrom(text) {
  const t = new Set(text.split(",").map((s) => s.trim()));
  return {hint: t.has("hint-own") ? "own" : t.has("hint-rule") ? "rule" : "off",
    reveal: t.has("reveal"), explore: t.has("explore"), files: t.has("files"), answers: t.has("answers")};
}
function lockText(lock) {
  const t = [];
  if (lock.hint !== "off") t.push("hint-" + lock.hint);
  for (const k of ["reveal", "explore", "files", "answers"]) if (lock[k]) t.push(k);
  return t.length ? t.join(",") : "none";
}
// True when the page may ask for (and show) right values: not locked, or the lock allows it.
function answersShown() { return !S.lock || S.lock.answers; }
function locked() { return !answersShown(); }

// The sheet: the givens (read-only, in the spec's layout) and the unknowns (from the
// server's /api/sheet: shapes only, no computed value).
async function loadSheet() {
  const key = JSON.stringify(S.spec);
  if (S.sheet && S.sheetKey === key) return;
  S.sheet = await post("sheet", {spec: S.spec, locked: locked()});
  S.sheetKey = key;
}
// A given number: read-only text (no tab stop: the keyboard goes from box to box), named
// for a screen reader as a step's number is ("W1[2,0], weight from input 3 to …, 0.4").
function givenCell(q, idx, v) {
  const e = el("span", {class: "given", "data-q": q, "data-i": idx.join(","), "data-value": String(v)});
  e.append(el("span", {class: "sr", text: numName(q, idx) + ", "}), document.createTextNode(fmt(v)));
  return e;
}
function renderSheet() {
  const sh = S.sheet, box = $("#sheet");
  box.replaceChildren();
  const L = sh.settings.activations.length;
  const given = el("section", {class: "givens", "aria-label": "Given"}, el("h2", {text: "Given"}));
  const st = sh.settings;
  given.append(el("p", {class: "settings"},
    el("span", {}, "loss ", el("strong", {"data-given": "loss", text: st.loss})), " · ",
    el("span", {}, "learning rate η = ", el("strong", {"data-given": "lr", text: String(st.lr)})), " · ",
    el("span", {}, "biases ", el("strong", {"data-given": "update_bias", text: st.update_bias ? "updated" : "fixed"}))));
  for (const g of sh.givens) {
    const [kind, layer] = kindOf(g.name);
    if (kind === "W") given.append(el("h3", {text: `Layer ${layer}${layer === L ? " (output)" : ""}: ${st.activations[layer - 1]}`}));
    given.append(el("div", {class: "q"}, nameEl(g.name), grid(g.name, g.value, givenCell)));
  }
  box.append(given);
  box.append(el("h2", {text: "Work out, in this order"}));
  for (const u of sh.unknowns) {
    const q = u.name;
    if (!(q in S.values) || JSON.stringify(shapeOf(S.values[q])) !== JSON.stringify(u.shape)) S.values[q] = blankOf(u.shape);
    const row = el("div", {class: "q", "data-row": q});
    row.append(nameEl(q));
    const boxes = el("table", {class: "m boxes"});
    const rows = u.shape.length > 1 ? indexes(u.shape.slice(0, -1)) : [[]];
    const cols = u.shape.length ? u.shape[u.shape.length - 1] : 0;
    for (const r of rows) {
      const tr = el("tr");
      for (let c = 0; c < Math.max(cols, 1); c++) tr.append(el("td", {}, sheetBox(q, u.shape.length ? [...r, c] : [])));
      boxes.append(tr);
    }
    row.append(boxes);
    const tools = el("span", {class: "rowtools"});
    if (hintLevel() !== "off") tools.append(el("button", {type: "button", class: "rowbtn", text: "hint", "aria-label": `hint for ${label(q)}`, onclick: () => hint(q, row)}));
    if (!S.lock || S.lock.reveal) tools.append(el("button", {type: "button", class: "rowbtn", text: "reveal", "aria-label": `reveal ${label(q)}`, onclick: () => reveal(q)}));
    row.append(tools);
    row.append(el("div", {class: "why", "aria-live": "polite"}));
    box.append(row);
  }
}
function hintLevel() { return S.lock ? S.lock.hint : "own"; }
function sheetBox(q, idx) {
  const i = idx.join(",");
  const typed = getAt(S.values[q], idx);
  const id = `m-${q}-${i.replace(/,/g, "-")}`;
  const input = el("input", {type: "text", inputmode: "decimal", value: typed ?? "", "data-q": q, "data-i": i,
    "aria-label": numName(q, idx), "aria-describedby": id, autocomplete: "off", spellcheck: "false"});
  const wrap = el("span", {class: "box", "data-q": q, "data-i": i}, input,
    el("span", {class: "mark", "aria-hidden": "true"}), el("span", {class: "msg", id}));
  let timer = null;
  const commit = () => {
    const text = input.value.trim();
    S.values[q] = setAt(S.values[q], idx, text === "" ? null : text);
    S.focusIdx[q] = i;
    mark();
  };
  input.addEventListener("focus", () => { S.focusIdx[q] = i; });
  input.addEventListener("input", () => {
    wrap.dataset.stale = "1";  // its mark is for the old text until the new one is marked
    clearTimeout(timer); timer = setTimeout(commit, 400);
  });
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") { clearTimeout(timer); commit(); } });
  return wrap;
}
// The values to mark: every box's text, except text that is no number (that box gets
// its own message; the others are still marked).
function markable() {
  const out = {}, bad = [];
  for (const [q, v] of Object.entries(S.values)) {
    let any = false;
    const clean = (x, idx) => {
      if (Array.isArray(x)) return x.map((e, k) => clean(e, [...idx, k]));
      if (x === null || x === undefined || x === "") return null;
      if (!isNumber(x)) { bad.push([q, idx.join(",")]); return null; }
      any = true;
      return x;
    };
    const c = clean(v, []);
    if (any) out[q] = c;
  }
  return [out, bad];
}
let markSeq = 0;
async function mark() {
  const mine = ++markSeq;
  const [values, bad] = markable();
  saveFragment();
  let report = {entries: [], summary: {values: 0, ok: 0, follows: 0, wrong: 0}};
  if (Object.keys(values).length) {
    try {
      report = await post("check", {spec: S.spec, values, locked: locked()});
    } catch (err) {
      if (mine !== markSeq) return;
      if (err.lost) { lostServer(err, mark); return; }
      // The server names the field (values.z1): its message goes beside that row.
      const m = /values\.([A-Za-z0-9_@]+)/.exec(err.message);
      const row = m && document.querySelector(`#sheet [data-row="${S.graph.quantities[m[1]] ? m[1] : ""}"] .why`);
      (row || $("#progress")).replaceChildren(el("span", {class: "wrong", role: "alert", text: "✗ " + err.message}));
      return;
    }
  }
  if (mine !== markSeq) return;
  showError(null);
  applyMarks(report, bad);
}
function applyMarks(report, bad) {
  S.marks = report;
  document.querySelectorAll("#sheet .box").forEach((b) => {
    delete b.dataset.verdict; delete b.dataset.diagnosis; delete b.dataset.stale;
    b.querySelector(".mark").textContent = "";
    b.querySelector(".msg").textContent = "";
  });
  document.querySelectorAll("#sheet .why").forEach((w) => w.replaceChildren());
  for (const [q, i] of bad || []) {
    const b = document.querySelector(`#sheet .box[data-q="${q}"][data-i="${i}"]`);
    if (!b) continue;
    b.dataset.verdict = "bad";
    b.querySelector(".mark").textContent = "?";
    b.querySelector(".msg").textContent = NOT_A_NUMBER;
  }
  for (const e of report.entries) {
    const b = document.querySelector(`#sheet .box[data-q="${e.name}"][data-i="${e.index.join(",")}"]`);
    if (!b) continue;
    b.dataset.verdict = e.verdict;
    b.dataset.diagnosis = e.diagnosis || "";
    b.querySelector(".mark").textContent = {ok: "✓", follows: "→", wrong: "✗"}[e.verdict];
    const right = answersShown() && typeof e.expected === "number" ? ` (right: ${e.expected.toPrecision(6)})` : "";
    // A "possible" diagnosis is a guess: never shown as certain.
    const named = e.diagnosis ? (e.match === "exact" ? e.diagnosis : "possibly " + e.diagnosis) : "";
    const say = e.verdict === "ok" ? "ok" : e.verdict === "follows"
      ? `follows from your earlier numbers${right}`
      : `wrong${named ? ": " + named : ""}${e.explanation ? " — " + e.explanation : ""}`;
    b.querySelector(".msg").textContent = e.verdict === "ok" ? "" : e.verdict === "follows" ? "follows" : (named || "wrong");
    b.querySelector(".msg").dataset.say = say;
    if (e.verdict !== "ok") {
      const why = document.querySelector(`#sheet [data-row="${e.name}"] .why`);
      why.append(el("div", {}, el("span", {class: e.verdict, text: `[${e.index.join(",")}] ${e.verdict === "wrong" ? "✗" : "→"} `}), say));
    }
  }
  const s = report.summary;
  const total = document.querySelectorAll("#sheet .box").length;
  $("#progress").textContent = `${s.values} of ${total} boxes marked: ${s.ok} ✓ ok, ${s.follows} → follow, ${s.wrong} ✗ wrong` +
    (bad && bad.length ? `; ${bad.length} not a number` : "");
}
// A hint: the rule for one number (the box last focused in the row), with the student's
// own earlier numbers put in (level "own"), from explain's block — never its result.
async function hint(q, row) {
  const why = row.querySelector(".why");
  const u = S.sheet.unknowns.find((x) => x.name === q);
  const i = S.focusIdx[q] ?? indexes(u.shape)[0].join(",");
  const [values] = markable();
  try {
    const r = await post("hint", {spec: S.spec, quantity: q, index: i, level: hintLevel(), values, digits: S.digits, locked: locked()});
    const d = el("div", {class: "deriv"});
    d.innerHTML = r.html;  // explain's MathML, made by the server
    const head = r.level === "own" && r.used.length
      ? `with your ${r.used.map((x) => `${x.name} = ${x.text}`).join(", ")}:`
      : r.level === "own" ? "the rule, with the given numbers put in:" : "the rule:";
    const parts = [el("p", {class: "hint", text: `hint for ${label(q)}${i ? "[" + i + "]" : ""}, ${head}`}), d];
    if (r.missing.length) parts.push(el("p", {class: "hint", text: `? = not typed yet: ${r.missing.join(", ")}`}));
    parts.push(el("p", {class: "hint", text: "the result is yours to work out."}));
    why.replaceChildren(...parts);
  } catch (err) {
    if (err.lost) lostServer(err, () => hint(q, row)); else why.replaceChildren(el("span", {class: "wrong", role: "alert", text: "✗ " + err.message}));
  }
}
async function reveal(q) {
  if (!S.trace) {
    try { S.trace = await post("step", {spec: S.spec, round: S.round}); } catch (err) { showError(err, () => reveal(q)); return; }
  }
  const right = traceValue(q);
  const text = (v) => (Array.isArray(v) ? v.map(text) : String(v));
  S.values[q] = text(right);
  document.querySelectorAll(`#sheet .box[data-q="${q}"] input`).forEach((inp) => {
    inp.value = getAt(S.values[q], inp.dataset.i === "" ? [] : inp.dataset.i.split(",").map(Number));
  });
  mark();
}
// Teacher's side: a locked link to this sheet (no typed values), the blank sheet, the key.
function lockedLink() {
  const lock = {hint: $("#lockhint").value, reveal: $("#lockreveal").checked, explore: $("#lockexplore").checked,
    files: $("#lockfiles").checked, answers: $("#lockanswers").checked};
  const state = {spec: S.spec, mode: "practice"};
  return location.origin + location.pathname + "#s=" + b64encode(JSON.stringify(state)) + "&mode=practice&lock=" + lockText(lock);
}

// -- train ----------------------------------------------------------------------------------
const REGRESSION = new Set(["plane", "bumps"]);
// The Train controls, checked where they are typed: a bad value is said beside its box
// and nothing is sent (null).
function trainSettings() {
  return {dataset: $("#dataset").value, noise: $("#noise").value, hidden: $("#hidden").value, act: $("#tact").value,
    lr: $("#tlr").value, test: $("#ttest").value, batch: $("#tbatch").value, l2: $("#tl2").value,
    steps: S.train ? S.train.steps : 0};
}
function applyTrainSettings(t) {
  for (const [id, k] of [["#noise", "noise"], ["#hidden", "hidden"], ["#tact", "act"], ["#tlr", "lr"], ["#ttest", "test"], ["#tbatch", "batch"], ["#tl2", "l2"]]) {
    if (typeof t[k] === "string") $(id).value = t[k];
  }
  if (typeof t.dataset === "string" && t.dataset !== "csv") $("#dataset").value = t.dataset;
}
function trainSpec() {
  const parts = $("#hidden").value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const hidden = parts.map(Number);
  const okSizes = hidden.length <= 6 && hidden.every((n) => Number.isInteger(n) && n >= 1 && n <= 256);
  say($("#hidden"), okSizes ? "" : "expected up to 6 sizes from 1 to 256, comma separated (e.g. 4,4)");
  const lr = Number($("#tlr").value);
  const okLr = isNumber($("#tlr").value) && lr > 0 && lr <= 10;
  say($("#tlr"), okLr ? "" : "expected a learning rate above 0, at most 10");
  const b = $("#tbatch").value.trim();
  const okBatch = b === "" || (/^\d+$/.test(b) && +b >= 1 && +b <= 1000);
  say($("#tbatch"), okBatch ? "" : "expected a whole number from 1 to 1000, or empty for all");
  if (!okSizes || !okLr || !okBatch) return null;
  const act = $("#tact").value;
  const reg = REGRESSION.has($("#dataset").value);
  return {
    name: "trained in glassnet studio", loss: reg ? "mse" : "cross_entropy", lr,
    input: [[0, 0]], target: reg ? [[0]] : [[1, 0]], seed: 0,
    layers: [...hidden.map((n) => ({units: n, activation: act, init: act === "relu" || act === "leaky_relu" ? "he" : "xavier"})),
      reg ? {units: 1, activation: "identity"} : {units: 2, activation: "softmax"}],
  };
}
function trainError(err, retry) {
  if (err.lost) { lostServer(err, retry); return; }
  $("#tstopped").replaceChildren(el("span", {class: "wrong", role: "alert", text: "✗ " + err.message}));
}
async function trainReset(text) {
  const wanted = trainSpec();
  if (!wanted) return;
  const spec = (await post("canonical", {spec: wanted})).spec;
  const csv = text ?? (S.train ? S.train.csv : undefined);
  if (S.train) S.train.playing = false;
  S.train = {spec, history: [], steps: 0, playing: false, csv};
  await trainStep(0);
}
async function trainStep(n) {
  const T = S.train;
  if (!T) return;
  const data = $("#dataset").value === "csv" ? {name: "csv", csv: T.csv}
    : {name: $("#dataset").value, n: 200, seed: 0, noise: Number($("#noise").value)};
  data.test = Number($("#ttest").value);
  const wanted = trainSpec();
  if (!wanted) { T.playing = false; return; }
  T.spec.lr = wanted.lr;
  const body = {spec: T.spec, data, steps: n, l2: Number($("#tl2").value)};
  if ($("#tbatch").value.trim()) body.batch = Number($("#tbatch").value);
  const r = await post("train", body);
  if (S.train !== T) return;
  T.spec = r.spec; T.steps += r.history.length; T.history.push(...r.history); T.last = r;
  showError(null);
  $("#tstopped").textContent = r.stopped || "";
  drawTrain();
  saveFragment();
}
function drawTrain() {
  const T = S.train, r = T.last;
  $("#tsteps").textContent = String(T.steps);
  $("#tsteps").dataset.value = String(T.steps);
  $("#tloss").textContent = r.loss.toPrecision(4);
  $("#tloss").dataset.value = String(r.loss);
  $("#tacc").textContent = r.accuracy === undefined ? "—" : (100 * r.accuracy).toFixed(1) + " %";
  if (r.accuracy !== undefined) $("#tacc").dataset.value = String(r.accuracy);
  $("#ttloss").textContent = r.test_loss === undefined ? "—" : r.test_loss.toPrecision(4);
  const c = $("#boundary"), ctx = c.getContext("2d"), n = r.grid.n;
  const cell = c.width / n;
  const flat = r.grid.output.flat();
  const [lo, hi] = r.regression ? [Math.min(...flat), Math.max(...flat)] : [0, 1];
  r.grid.output.forEach((row, gy) => row.forEach((p, gx) => {
    ctx.fillStyle = heat(p, lo, hi);
    ctx.fillRect(gx * cell, (n - 1 - gy) * cell, cell + 1, cell + 1);
  }));
  const toPx = (v) => ((v - r.grid.min) / (r.grid.max - r.grid.min)) * c.width;
  const held = new Set(r.test || []);
  const labs = r.labels, lmin = Math.min(...labs), lmax = Math.max(...labs);
  r.points.forEach(([px, py], k) => {
    ctx.beginPath();
    const x = toPx(px), y = c.height - toPx(py);
    // Not colour alone: class 1 a circle, class 0 a diamond (regression: circles);
    // held-out points drawn with a thick black edge, training points a thin white one.
    if (r.regression || labs[k]) ctx.arc(x, y, 3.4, 0, 2 * Math.PI);
    else { ctx.moveTo(x, y - 4.2); ctx.lineTo(x + 4.2, y); ctx.lineTo(x, y + 4.2); ctx.lineTo(x - 4.2, y); ctx.closePath(); }
    ctx.fillStyle = r.regression ? heat(labs[k], lmin, lmax) : labs[k] ? "#1e3a8a" : "#9a3412";
    ctx.fill();
    ctx.strokeStyle = held.has(k) ? "#000" : "#fff"; ctx.lineWidth = held.has(k) ? 1.6 : 0.8; ctx.stroke();
  });
  // curves: loss (solid), test loss (dashed), both scaled to the largest; accuracy dotted 0..1;
  // each labelled at its end, so no curve is told by colour alone
  const svg = $("#curves"), h = T.history;
  svg.replaceChildren();
  if (h.length) {
    const top = Math.max(...h.map((e) => Math.max(e.loss, e.val_loss ?? 0)));
    const xs = (k) => (h.length === 1 ? 0 : (k / (h.length - 1)) * 260) + 2;
    const line = (get, attrs, name) => {
      const pts = h.map((e, k) => [xs(k), get(e)]).filter(([, v]) => v !== undefined);
      if (!pts.length) return;
      svg.append(el("polyline", {fill: "none", "stroke-width": 1.5, ...attrs,
        points: pts.map(([x, v]) => `${x.toFixed(1)},${(156 - v * 150).toFixed(1)}`).join(" ")}));
      const [x, v] = pts[pts.length - 1];
      svg.append(el("text", {x: x + 3, y: (156 - v * 150 + 3).toFixed(1), class: "curvelabel", text: name}));
    };
    line((e) => e.loss / top, {stroke: "#dc2626", id: "losscurve", "data-first": String(h[0].loss), "data-last": String(h[h.length - 1].loss)}, "loss");
    line((e) => (e.val_loss === undefined ? undefined : e.val_loss / top), {stroke: "#7c3aed", "stroke-dasharray": "5 3", id: "testcurve"}, "test");
    line((e) => e.accuracy, {stroke: "#2563eb", "stroke-dasharray": "1.5 2.5", id: "acccurve"}, "acc");
  }
  // the network with its current weights (width, colour and number)
  const layers = T.spec.layers.map((l) => ({W: l.weights}));
  renderNet($("#tnet"), layers, null, {width: 170, acts: T.spec.layers.map((l) => l.activation),
    bias: T.spec.layers.map((l) => l.bias)});
  $("#tnet").querySelectorAll("[data-q]").forEach((e) => { e.dataset.train = e.dataset.q; e.removeAttribute("data-q"); });
  const units = $("#units");
  units.replaceChildren();
  r.grid.hidden.forEach((layer, k) => layer.forEach((g, u) => {
    const cv = el("canvas", {width: n, height: n, role: "img", "aria-label": `layer ${k + 1} unit ${u + 1} over the plane`});
    const cx = cv.getContext("2d");
    const f = g.flat(), glo = Math.min(...f), ghi = Math.max(...f);
    g.forEach((row, gy) => row.forEach((v, gx) => { cx.fillStyle = heat(v, glo, ghi); cx.fillRect(gx, n - 1 - gy, 1, 1); }));
    units.append(el("figure", {}, cv, el("figcaption", {text: `layer ${k + 1} · unit ${u + 1}`})));
  }));
}
function heat(v, lo, hi) {
  const t = hi > lo ? Math.min(1, Math.max(0, (v - lo) / (hi - lo))) : 0.5;
  const a = [234, 88, 12], b = [29, 78, 216], m = [248, 250, 252];
  const mix = t < 0.5 ? a.map((x, i) => x + (m[i] - x) * (t / 0.5)) : m.map((x, i) => x + (b[i] - x) * ((t - 0.5) / 0.5));
  return `rgb(${mix.map(Math.round).join(",")})`;
}
async function play() {
  const T = S.train;
  if (!T) return;
  T.playing = !T.playing;
  $("#play").textContent = T.playing ? "❚❚ pause" : "▶ play";
  while (T.playing && S.train === T) {
    try { await trainStep(10); } catch (err) { trainError(err, play); T.playing = false; }
  }
  $("#play").textContent = "▶ play";
}
// A link's Train settings: the same data, sizes, rate and split, trained again to the
// same step count (the data and the initial weights are seeded, so the numbers match).
async function trainFromLink(t) {
  applyTrainSettings(t);
  await trainReset();
  let left = Math.min(Number(t.steps) || 0, 5000);
  while (left > 0 && S.train) { const k = Math.min(left, 500); await trainStep(k); left -= k; }
}
async function openTrainStep() {
  const T = S.train;
  if (!T || !T.last) return;
  T.playing = false;
  const p = T.last.points[0], y = T.last.labels[0];
  S.spec = {...T.spec, input: [p], target: [T.last.regression ? [y] : y ? [0, 1] : [1, 0]]};
  delete S.spec.seed;
  setMode("explore");
  await structureChanged();
  await showWhole();
}

// -- modes, sharing, files --------------------------------------------------------------
async function showPractice() {
  try {
    const key = JSON.stringify(S.spec);
    const again = !S.sheet || S.sheetKey !== key || !$("#sheet .box");
    await loadSheet();
    if (again) renderSheet();
    await mark();
  } catch (err) { showError(err, S.cnn && !err.lost ? null : showPractice); }
}
function setMode(mode) {
  if (S.lock && !S.lock.explore && mode !== "practice") mode = "practice";  // the lock's rule
  S.mode = mode;
  if (S.cnn) showError(null);  // (Practice's refusal of a CNN is said while there only)
  document.body.dataset.mode = mode;
  for (const b of document.querySelectorAll(".modes button")) b.setAttribute("aria-pressed", String(b.dataset.mode === mode));
  for (const m of ["explore", "practice", "train"]) $("#" + m).hidden = m !== mode;
  if (mode === "practice" && S.spec) showPractice();
  if (mode === "train" && !S.train) {
    const t = S.trainLink;
    S.trainLink = null;
    (t ? trainFromLink(t) : trainReset()).catch((err) => trainError(err, () => setMode("train")));
  }
  saveFragment();
}
function b64encode(text) {
  const bytes = new TextEncoder().encode(text);
  let bin = ""; bytes.forEach((b) => { bin += String.fromCharCode(b); });
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
function b64decode(s) {
  const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/"));
  return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}
let saveTimer = null;
// (body[data-saving] while a save waits: tests read the link once it is written)
function saveSoon() { clearTimeout(saveTimer); document.body.dataset.saving = "1"; saveTimer = setTimeout(saveFragment, 250); }
function saveFragment() {
  clearTimeout(saveTimer);
  delete document.body.dataset.saving;
  if (!S.spec) return;
  const state = {spec: S.spec, mode: S.mode};
  if (S.round !== null) state.round = S.round;
  const typed = Object.fromEntries(Object.entries(S.values).filter(([, v]) => JSON.stringify(v).includes('"')));
  if (Object.keys(typed).length) state.values = typed;
  let frag = "#s=" + b64encode(JSON.stringify(state));
  if (S.hide.length) frag += "&hide=" + S.hide.join(",");
  if (S.lock) frag += "&mode=practice&lock=" + lockText(S.lock);
  if (S.mode === "train" && S.train) frag += "&train=" + b64encode(JSON.stringify(trainSettings()));
  history.replaceState(null, "", frag);
}
function readFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  S.hide = (params.get("hide") || "").split(",").map((s) => s.trim()).filter((s) => /^[a-z]+$/.test(s));
  S.lock = params.has("lock") ? lockFrom(params.get("lock")) : null;
  const classes = S.hide.map((h) => "hide-" + h);
  if (S.lock) {
    classes.push("locked");
    if (!S.lock.explore) classes.push("hide-tabs");
    if (!S.lock.files) classes.push("hide-files");
  }
  document.body.className = classes.join(" ");
  const t = params.get("train");
  if (t) { try { S.trainLink = JSON.parse(b64decode(t)); } catch { S.trainLink = null; } }
  const s = params.get("s");
  if (!s) return null;
  try {
    const state = JSON.parse(b64decode(s));
    const mode = params.get("mode");
    if (["explore", "practice", "train"].includes(mode)) state.mode = mode;
    return state;
  } catch (err) { showError("the link's state could not be read: " + err.message); return null; }
}
async function open(state) {
  S.spec = state.spec;
  S.values = state.values || {};
  S.round = state.round ?? null;
  $("#round").value = S.round === null ? "" : String(S.round);
  S.marks = null;
  S.selected = null;
  S.sheet = null;
  S.trace = null;
  S.drawn = null;
  // Feature maps in (batch, channels, height, width): a CNN, shown as explain draws it.
  S.cnn = shapeOf(S.spec.input).length === 4;
  document.body.classList.toggle("cnn", S.cnn);
  if (S.cnn) S.graph = {quantities: {}, order: [], activations: {}};
  else await loadGraph();
  // A locked sheet never asks for the step (every right value is in it) unless the
  // teacher allowed Explore.
  if (!S.lock || S.lock.explore) { renderParams(); await refresh(); }
  setMode(state.mode || "explore");
}
async function download() {
  const format = $("#download").value;
  $("#download").value = "";
  if (format) await downloadFormat(format);
}
async function downloadFormat(format) {
  // In Train, the spec is the trained network's.
  const spec = S.mode === "train" && S.train && format === "toml" ? S.train.spec : S.spec;
  try {
    const [values] = markable();
    const r = await post("export", {spec, format, values: format === "key" || format === "blank" ? {} : values,
      round: S.round, digits: S.digits, locked: !!S.lock && !S.lock.files});
    const url = URL.createObjectURL(new Blob([r.text], {type: r.mime}));
    const a = el("a", {href: url, download: r.filename});
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 5000);
  } catch (err) { showError(err, err.lost ? () => downloadFormat(format) : null); }
}
async function upload(ev) {
  const file = ev.target.files[0];
  ev.target.value = "";
  if (!file) return;
  if (file.size > 2 * 1024 * 1024) { showError(`${file.name}: expected at most 2 MiB, got ${file.size} bytes`); return; }
  try {
    const state = await post("load", {name: file.name, text: await file.text()});
    await open(state);
  } catch (err) { showError(err); }
}

async function main() {
  for (const b of document.querySelectorAll(".modes button")) b.addEventListener("click", () => setMode(b.dataset.mode));
  $("#loss").addEventListener("change", () => { S.spec.loss = $("#loss").value; refresh(); });
  $("#lr").addEventListener("change", () => {
    const v = Number($("#lr").value);
    if (!isNumber($("#lr").value) || v <= 0) { say($("#lr"), "expected a positive number such as 0.1"); stale(true); return; }
    say($("#lr"), ""); S.lastEdit = $("#lr"); S.spec.lr = v; $("#lr").dataset.value = String(v); refresh();
  });
  $("#update_bias").addEventListener("change", () => { S.spec.update_bias = $("#update_bias").checked; refresh(); });
  $("#after").addEventListener("change", () => { if ($("#after").checked) S.spec.after = true; else delete S.spec.after; refresh(); });
  $("#round").addEventListener("change", () => { S.round = $("#round").value === "" ? null : Number($("#round").value); refresh(); });
  $("#digits").addEventListener("change", () => { S.digits = Number($("#digits").value); renderExplore(); });
  $("#seednames").addEventListener("change", () => { S.seedNames = $("#seednames").checked; renderParams(); renderExplore(); if (S.mode === "practice") { renderSheet(); mark(); } });
  $("#download").addEventListener("change", download);
  $("#mine").addEventListener("click", () => downloadFormat("worksheet"));
  $("#blank").addEventListener("click", () => downloadFormat("blank"));
  $("#key").addEventListener("click", () => downloadFormat("key"));
  $("#locklink").addEventListener("click", async () => {
    const link = lockedLink();
    $("#lockurl").value = link;
    try { await navigator.clipboard.writeText(link); status("locked link copied"); } catch { status("the locked link is in the box"); }
  });
  $("#upload").addEventListener("change", upload);
  $("#share").addEventListener("click", async () => {
    saveFragment();
    try { await navigator.clipboard.writeText(location.href); status("link copied"); } catch { status("the link is the page's address"); }
  });
  $("#reset").addEventListener("click", async () => open({spec: (await (await fetch("/api/example/seed")).json()).spec, mode: "explore"}));
  $("#play").addEventListener("click", () => play());
  $("#onestep").addEventListener("click", () => trainStep(1).catch(trainError));
  $("#treset").addEventListener("click", () => trainReset().catch(trainError));
  for (const id of ["#dataset", "#noise", "#hidden", "#tact", "#ttest"]) {
    $(id).addEventListener("change", () => trainReset().catch(trainError));
  }
  // rate, batch and L2 apply from the next step on (checked, and said beside, now)
  for (const id of ["#tlr", "#tbatch", "#tl2"]) $(id).addEventListener("change", () => { trainSpec(); saveFragment(); });
  $("#topen").addEventListener("click", () => openTrainStep().catch(showError));
  $("#whole").addEventListener("click", showWhole);
  $("#csvfile").addEventListener("change", async (ev) => {
    const file = ev.target.files[0];
    ev.target.value = "";
    if (!file) return;
    if (file.size > 2 * 1024 * 1024) { showError(`${file.name}: expected at most 2 MiB`); return; }
    const text = await file.text();
    const option = $("#dataset option[value='csv']");
    option.disabled = false;
    option.textContent = "CSV: " + file.name;
    $("#dataset").value = "csv";
    await trainReset(text).catch(showError);
  });
  window.addEventListener("hashchange", () => { const st = readFragment(); if (st && JSON.stringify(st.spec) !== JSON.stringify(S.spec)) open(st); });
  try {
    const state = readFragment() || await (await fetch("/api/initial")).json();
    await open(state);
    document.body.dataset.ready = "1";
  } catch (err) { showError(err); }
}
document.addEventListener("DOMContentLoaded", main);
