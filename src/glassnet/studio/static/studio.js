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
async function post(path, body) {
  pending++;
  status("working…");
  try {
    const r = await fetch("/api/" + path, {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify(body),
    });
    const data = await r.json();
    if (!r.ok) throw new Error(data.error || ("HTTP " + r.status));
    return data;
  } finally {
    pending--;
    if (!pending) status("");
  }
}
function status(text) { $("#status").textContent = text; }
function showError(err) {
  const box = $("#error");
  if (!err) { box.hidden = true; box.textContent = ""; return; }
  box.hidden = false;
  box.textContent = String(err.message || err);
}

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
function nameEl(q) {
  const seed = S.graph && S.graph.quantities[q] ? S.graph.quantities[q].seed : null;
  return el("span", {class: "name"}, label(q),
    !S.seedNames && seed ? el("span", {class: "seed", text: "(" + seed + ")"}) : null);
}

// A number of the step: focusable, clickable, carrying data-q/data-i/data-value.
// (No aria-label: the accessible name is the number itself, after its row's name; on
// focus the derivation panel, a live region, says which quantity it is.  Keeping a label
// per number up to date cost a third of an edit's redraw on a 4-16-16-3 network.)
function num(q, idx, v) {
  return el("button", {
    type: "button", class: "num", "data-q": q, "data-i": idx.join(","), "data-value": String(v),
    text: fmt(v), onclick: select, onfocus: select,
  });
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
function edit(q, idx, input) {
  const text = input.value.trim().replace("−", "-");
  const v = Number(text);
  if (text === "" || !Number.isFinite(v)) { input.classList.add("bad"); return; }
  input.classList.remove("bad");
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
    "aria-label": `${label(q)}${idx.length ? "[" + idx.join(",") + "]" : ""}`,
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
  const L = S.spec.layers.length;
  box.append(el("h2", {text: "Input, target and parameters (edit any)"}));
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
  renderParams();
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
      bias: e.classList.contains("bl"), value: e.dataset.value}));
  }
  for (const c of S.cells) {
    if (!values.has(c.q)) values.set(c.q, traceValue(c.q));
    let v = values.get(c.q);
    for (const k of c.idx) v = v[k];
    const value = String(v);
    if (c.value === value) continue;  // untouched by this edit
    c.value = value;
    c.e.dataset.value = value;
    c.e.textContent = c.bias ? "b " + fmt(v) : fmt(v);
  }
  const maxW = Math.max(1e-9, ...t.layers.flatMap((l) => l.W.flat().map(Math.abs)));
  for (const line of document.querySelectorAll("#net line[data-w]")) {
    const [k, i, j] = line.dataset.w.split(",").map(Number);
    const w = t.layers[k].W[i][j];
    line.setAttribute("stroke", w >= 0 ? "#2563eb" : "#dc2626");
    line.setAttribute("stroke-width", (0.6 + 3.4 * Math.abs(w) / maxW).toFixed(2));
  }
}
function renderExplore() {
  const t = S.trace;
  const shape = drawnShape();
  if (S.drawn === shape && S.cells) { updateInPlace(); return; }
  S.drawn = shape;
  S.cells = null;
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

// -- selecting a number: its derivation, its inputs and consumers ------------------------
function select(ev) {
  const node = ev.currentTarget;
  const q = node.dataset.q, i = node.dataset.i;
  if (!q || !S.trace || q === "lr") return;
  if (S.selected && S.selected[0] === q && S.selected[1] === i && ev.type === "focus") return;
  S.selected = [q, i];
  highlight();
  showDerivation().catch(showError);
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
  const head = el("h3", {text: `${label(q)}${i ? "[" + i + "]" : ""} = ${at(traceValue(q))}`});
  const body = el("div", {class: "deriv"});
  body.innerHTML = r.html;  // explain's MathML, made by the server from the trace
  const close = el("button", {type: "button", class: "close", text: "✕", "aria-label": "close the derivation",
    onclick: () => detail.classList.remove("open")});
  const whole = el("button", {type: "button", id: "whole", text: "the whole derivation", onclick: showWhole});
  detail.replaceChildren(close, head, body, whole);
  detail.classList.add("open");
  if (kind === "W" || kind === "dW") {
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
  const info = S.graph.quantities[q === "output" ? q : q] || {inputs: [], consumers: []};
  for (const s of info.inputs) document.querySelectorAll(`#explore [data-q="${s}"]`).forEach((e) => e.classList.add("src"));
  for (const s of info.consumers) document.querySelectorAll(`#explore [data-q="${s}"]`).forEach((e) => e.classList.add("use"));
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
    renderExplore();
    if (S.selected) showDerivation().catch(showError);
    if (S.mode === "practice") { renderSheet(); mark(); }
    setTimeout(saveFragment, 0);  // after the numbers are drawn: not part of an edit's wait
    // For bench/studio_load.py: edit -> every number redrawn (measured at the next frame).
    const start = S.editStart;
    requestAnimationFrame(() => {
      if (start !== undefined) document.body.dataset.editMs = String(performance.now() - start);
      document.body.dataset.seq = String(mine);
    });
  } catch (err) {
    if (mine === seq) showError(err);
  }
}

// -- practice -------------------------------------------------------------------------------
function shapeOf(v) { return Array.isArray(v) ? [v.length, ...shapeOf(v[0])] : []; }
function blank(v) { return Array.isArray(v) ? v.map(blank) : null; }
function getAt(v, idx) { return idx.reduce((a, k) => (a == null ? a : a[k]), v); }
function setAt(v, idx, x) { if (!idx.length) return x; let a = v; for (const k of idx.slice(0, -1)) a = a[k]; a[idx[idx.length - 1]] = x; return v; }

function renderSheet() {
  const box = $("#sheet");
  box.replaceChildren();
  const L = S.trace.layers.length;
  for (const q of S.graph.order) {
    if (["x", "y", "W", "b", "output"].includes(kindOf(q)[0])) continue;
    const right = traceValue(q);
    if (!(q in S.values)) S.values[q] = blank(right);
    const row = el("div", {class: "q", "data-row": q});
    row.append(nameEl(q));
    const boxes = el("span", {class: "boxes"});
    const walk = (v, idx) => {
      if (Array.isArray(v)) { v.forEach((e, k) => walk(e, [...idx, k])); if (idx.length === 0 && shapeOf(v).length > 1) {} return; }
      const typed = getAt(S.values[q], idx);
      const input = el("input", {type: "text", inputmode: "decimal", value: typed ?? "", "data-q": q, "data-i": idx.join(","),
        "aria-label": `${label(q)}${idx.length ? "[" + idx.join(",") + "]" : ""}`, autocomplete: "off"});
      const wrap = el("span", {class: "box", "data-q": q, "data-i": idx.join(",")}, input, el("span", {class: "mark", "aria-hidden": "true"}));
      let timer = null;
      const commit = () => {
        const text = input.value.trim();
        S.values[q] = setAt(S.values[q], idx, text === "" ? null : text);
        mark();
      };
      input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(commit, 400); });
      input.addEventListener("keydown", (e) => { if (e.key === "Enter") { clearTimeout(timer); commit(); } });
      boxes.append(wrap);
      if (idx.length > 1 && idx[idx.length - 1] === getAt(right, idx.slice(0, -1)).length - 1) boxes.append(el("br"));
    };
    walk(right, []);
    row.append(boxes);
    row.append(el("button", {type: "button", class: "rowbtn", text: "hint", "aria-label": `hint for ${label(q)}`, onclick: () => hint(q, row)}));
    row.append(el("button", {type: "button", class: "rowbtn", text: "reveal", "aria-label": `reveal ${label(q)}`, onclick: () => reveal(q)}));
    row.append(el("div", {class: "why", "aria-live": "polite"}));
    box.append(row);
  }
  void L;
}
let markSeq = 0;
async function mark() {
  const mine = ++markSeq;
  const values = {};
  for (const [q, v] of Object.entries(S.values)) if (JSON.stringify(v).match(/"/)) values[q] = v;
  saveFragment();
  if (!Object.keys(values).length) { applyMarks({entries: [], summary: {values: 0, ok: 0, follows: 0, wrong: 0}}); return; }
  try {
    const r = await post("check", {spec: S.spec, values});
    if (mine !== markSeq) return;
    showError(null);
    applyMarks(r);
  } catch (err) { if (mine === markSeq) showError(err); }
}
function applyMarks(report) {
  S.marks = report;
  document.querySelectorAll("#sheet .box").forEach((b) => {
    delete b.dataset.verdict; delete b.dataset.diagnosis;
    b.querySelector(".mark").textContent = "";
    b.querySelector("input").removeAttribute("aria-description");
  });
  document.querySelectorAll("#sheet .why").forEach((w) => w.replaceChildren());
  for (const e of report.entries) {
    const b = document.querySelector(`#sheet .box[data-q="${e.name}"][data-i="${e.index.join(",")}"]`);
    if (!b) continue;
    b.dataset.verdict = e.verdict;
    b.dataset.diagnosis = e.diagnosis || "";
    b.querySelector(".mark").textContent = {ok: "✓", follows: "→", wrong: "✗"}[e.verdict];
    const say = e.verdict === "ok" ? "ok" : e.verdict === "follows"
      ? `follows from your earlier numbers (right: ${e.expected.toPrecision(6)})`
      : `wrong${e.diagnosis ? ": " + e.diagnosis : ""}${e.explanation ? " — " + e.explanation : ""}`;
    b.querySelector("input").setAttribute("aria-description", say);
    if (e.verdict !== "ok") {
      const why = document.querySelector(`#sheet [data-row="${e.name}"] .why`);
      why.append(el("div", {}, el("span", {class: e.verdict, text: `[${e.index.join(",")}] ${e.verdict === "wrong" ? "✗" : "→"} `}), say));
    }
  }
  const s = report.summary;
  const total = document.querySelectorAll("#sheet .box").length;
  $("#progress").textContent = `${s.values} of ${total} boxes marked: ${s.ok} ✓ ok, ${s.follows} → follow, ${s.wrong} ✗ wrong`;
}
async function hint(q, row) {
  const why = row.querySelector(".why");
  try {
    const r = await post("explain", {spec: S.spec, quantity: q, round: S.round, digits: S.digits});
    const d = el("div", {class: "deriv"});
    d.innerHTML = r.html;
    const mine = (S.marks ? S.marks.entries : []).filter((e) => e.name === q && e.verdict !== "ok");
    why.replaceChildren(el("p", {class: "hint", text: "The rule (with the right numbers put in):"}), d,
      ...mine.map((e) => el("p", {text: `[${e.index.join(",")}] the rule on your own earlier numbers gives ${e.follows_from_given.toPrecision(6)}`})));
  } catch (err) { showError(err); }
}
function reveal(q) {
  const right = traceValue(q);
  const text = (v) => (Array.isArray(v) ? v.map(text) : String(v));
  S.values[q] = text(right);
  document.querySelectorAll(`#sheet .box[data-q="${q}"] input`).forEach((inp) => {
    inp.value = getAt(S.values[q], inp.dataset.i === "" ? [] : inp.dataset.i.split(",").map(Number));
  });
  mark();
}

// -- train ----------------------------------------------------------------------------------
function trainSpec() {
  const hidden = $("#hidden").value.split(",").map((s) => parseInt(s, 10)).filter((n) => n > 0).slice(0, 6);
  const act = $("#tact").value;
  return {
    name: "trained in glassnet studio", loss: "cross_entropy", lr: Number($("#tlr").value) || 0.5,
    input: [[0, 0]], target: [[1, 0]], seed: 0,
    layers: [...hidden.map((n) => ({units: n, activation: act, init: act === "relu" || act === "leaky_relu" ? "he" : "xavier"})),
      {units: 2, activation: "softmax"}],
  };
}
async function trainReset(text) {
  const spec = (await post("canonical", {spec: trainSpec()})).spec;
  const csv = text ?? (S.train ? S.train.csv : undefined);
  if (S.train) S.train.playing = false;
  S.train = {spec, history: [], steps: 0, playing: false, csv};
  await trainStep(0);
}
async function trainStep(n) {
  const T = S.train;
  const data = $("#dataset").value === "csv" ? {name: "csv", csv: T.csv}
    : {name: $("#dataset").value, n: 200, seed: 0, noise: Number($("#noise").value)};
  T.spec.lr = Number($("#tlr").value) || T.spec.lr;
  const r = await post("train", {spec: T.spec, data, steps: n});
  if (S.train !== T) return;
  T.spec = r.spec; T.steps += r.history.length; T.history.push(...r.history); T.last = r;
  drawTrain();
  saveFragment();
}
function drawTrain() {
  const T = S.train, r = T.last;
  $("#tsteps").textContent = String(T.steps);
  $("#tsteps").dataset.value = String(T.steps);
  $("#tloss").textContent = r.loss.toPrecision(4);
  $("#tloss").dataset.value = String(r.loss);
  $("#tacc").textContent = (100 * r.accuracy).toFixed(1) + " %";
  $("#tacc").dataset.value = String(r.accuracy);
  const c = $("#boundary"), ctx = c.getContext("2d"), n = r.grid.n;
  const cell = c.width / n;
  r.grid.output.forEach((row, gy) => row.forEach((p, gx) => {
    ctx.fillStyle = heat(p, 0, 1);
    ctx.fillRect(gx * cell, (n - 1 - gy) * cell, cell + 1, cell + 1);
  }));
  const toPx = (v) => ((v - r.grid.min) / (r.grid.max - r.grid.min)) * c.width;
  r.points.forEach(([px, py], k) => {
    ctx.beginPath();
    ctx.beginPath();
    ctx.arc(toPx(px), c.height - toPx(py), 3.2, 0, 2 * Math.PI);
    ctx.fillStyle = r.labels[k] ? "#1e3a8a" : "#9a3412";
    ctx.fill();
    ctx.strokeStyle = "#fff"; ctx.lineWidth = 0.8; ctx.stroke();
  });
  // curves: loss (red, scaled to its first value) and accuracy (blue, 0..1)
  const svg = $("#curves"), h = T.history;
  svg.replaceChildren();
  if (h.length) {
    const top = Math.max(...h.map((e) => e.loss));
    const xs = (k) => (h.length === 1 ? 0 : (k / (h.length - 1)) * 296) + 2;
    svg.append(el("polyline", {fill: "none", stroke: "#dc2626", "stroke-width": 1.5, id: "losscurve",
      "data-first": String(h[0].loss), "data-last": String(h[h.length - 1].loss),
      points: h.map((e, k) => `${xs(k).toFixed(1)},${(156 - (e.loss / top) * 150).toFixed(1)}`).join(" ")}));
    svg.append(el("polyline", {fill: "none", stroke: "#2563eb", "stroke-width": 1.5,
      points: h.map((e, k) => `${xs(k).toFixed(1)},${(156 - e.accuracy * 150).toFixed(1)}`).join(" ")}));
  }
  // the network with its current weights (width, colour and number)
  const layers = T.spec.layers.map((l) => ({W: l.weights}));
  renderNet($("#tnet"), layers, null, {width: 170, acts: T.spec.layers.map((l) => l.activation),
    bias: T.spec.layers.map((l) => l.bias)});
  $("#tnet").querySelectorAll("[data-q]").forEach((e) => { e.dataset.train = e.dataset.q; e.removeAttribute("data-q"); });
  const units = $("#units");
  units.replaceChildren();
  r.grid.hidden.forEach((layer, k) => layer.forEach((g, u) => {
    const cv = el("canvas", {width: n, height: n, "aria-label": `layer ${k + 1} unit ${u + 1} over the plane`});
    const cx = cv.getContext("2d");
    const flat = g.flat(), lo = Math.min(...flat), hi = Math.max(...flat);
    g.forEach((row, gy) => row.forEach((v, gx) => { cx.fillStyle = heat(v, lo, hi); cx.fillRect(gx, n - 1 - gy, 1, 1); }));
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
  T.playing = !T.playing;
  $("#play").textContent = T.playing ? "❚❚ pause" : "▶ play";
  while (T.playing && S.train === T) {
    try { await trainStep(10); } catch (err) { showError(err); T.playing = false; }
  }
  $("#play").textContent = "▶ play";
}
async function openTrainStep() {
  const T = S.train;
  if (!T || !T.last) return;
  T.playing = false;
  const p = T.last.points[0], y = T.last.labels[0];
  S.spec = {...T.spec, input: [p], target: [y ? [0, 1] : [1, 0]]};
  delete S.spec.seed;
  setMode("explore");
  await structureChanged();
  await showWhole();
}

// -- modes, sharing, files --------------------------------------------------------------
function setMode(mode) {
  S.mode = mode;
  document.body.dataset.mode = mode;
  for (const b of document.querySelectorAll(".modes button")) b.setAttribute("aria-pressed", String(b.dataset.mode === mode));
  for (const m of ["explore", "practice", "train"]) $("#" + m).hidden = m !== mode;
  if (mode === "practice" && S.trace) { renderSheet(); mark(); }
  if (mode === "train" && !S.train) trainReset().catch(showError);
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
function saveFragment() {
  if (!S.spec) return;
  const state = {spec: S.spec, mode: S.mode};
  if (S.round !== null) state.round = S.round;
  const typed = Object.fromEntries(Object.entries(S.values).filter(([, v]) => JSON.stringify(v).includes('"')));
  if (Object.keys(typed).length) state.values = typed;
  let frag = "#s=" + b64encode(JSON.stringify(state));
  if (S.hide.length) frag += "&hide=" + S.hide.join(",");
  history.replaceState(null, "", frag);
}
function readFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  S.hide = (params.get("hide") || "").split(",").map((s) => s.trim()).filter((s) => /^[a-z]+$/.test(s));
  document.body.className = S.hide.map((h) => "hide-" + h).join(" ");
  const s = params.get("s");
  if (!s) return null;
  try { return JSON.parse(b64decode(s)); } catch (err) { showError("the link's state could not be read: " + err.message); return null; }
}
async function open(state) {
  S.spec = state.spec;
  S.values = state.values || {};
  S.round = state.round ?? null;
  $("#round").value = S.round === null ? "" : String(S.round);
  S.marks = null;
  S.selected = null;
  await loadGraph();
  renderParams();
  await refresh();
  setMode(state.mode || "explore");
}
async function download() {
  const format = $("#download").value;
  $("#download").value = "";
  if (!format) return;
  try {
    const r = await post("export", {spec: S.spec, format, values: S.values, round: S.round, digits: S.digits});
    const url = URL.createObjectURL(new Blob([r.text], {type: r.mime}));
    const a = el("a", {href: url, download: r.filename});
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 5000);
  } catch (err) { showError(err); }
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
    if (!Number.isFinite(v) || v <= 0) { $("#lr").classList.add("bad"); return; }
    $("#lr").classList.remove("bad"); S.spec.lr = v; $("#lr").dataset.value = String(v); refresh();
  });
  $("#update_bias").addEventListener("change", () => { S.spec.update_bias = $("#update_bias").checked; refresh(); });
  $("#after").addEventListener("change", () => { if ($("#after").checked) S.spec.after = true; else delete S.spec.after; refresh(); });
  $("#round").addEventListener("change", () => { S.round = $("#round").value === "" ? null : Number($("#round").value); refresh(); });
  $("#digits").addEventListener("change", () => { S.digits = Number($("#digits").value); renderExplore(); });
  $("#seednames").addEventListener("change", () => { S.seedNames = $("#seednames").checked; renderParams(); renderExplore(); if (S.mode === "practice") { renderSheet(); mark(); } });
  $("#download").addEventListener("change", download);
  $("#upload").addEventListener("change", upload);
  $("#share").addEventListener("click", async () => {
    saveFragment();
    try { await navigator.clipboard.writeText(location.href); status("link copied"); } catch { status("the link is the page's address"); }
  });
  $("#reset").addEventListener("click", async () => open({spec: (await (await fetch("/api/example/seed")).json()).spec, mode: "explore"}));
  $("#play").addEventListener("click", () => play());
  $("#onestep").addEventListener("click", () => trainStep(1).catch(showError));
  $("#treset").addEventListener("click", () => trainReset().catch(showError));
  for (const id of ["#dataset", "#noise", "#hidden", "#tact"]) $(id).addEventListener("change", () => trainReset().catch(showError));
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
