// glassnet studio, graph mode: an expression's circuit.  The page computes nothing: every
// number is the server's (POST /api/circuit: glassnet.graphs' trace), every derivation
// explain's (POST /api/circuit_explain).  The state is in the URL fragment.
"use strict";
(() => {
  const $ = (s) => document.querySelector(s);
  let pending = 0;
  let chosen = null; // [node, what] of the number whose derivation is shown

  const typed = {}; // practice: the text of each box, by the name check reads (q, dq)
  let checkTimer = null;
  let checking = 0;

  function practising() {
    return $("#gpractice").checked;
  }

  function request() {
    const r = $("#ground").value;
    return {
      expression: $("#expr").value,
      values: $("#vals").value,
      round: r === "" ? null : Number(r),
      digits: Number($("#gdigits").value),
    };
  }

  async function post(path, data) {
    pending += 1;
    $("#status").textContent = "working…";
    try {
      const res = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(data),
      });
      const json = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(json.error || `the server answered ${res.status}`);
      return json;
    } finally {
      pending -= 1;
      if (pending === 0) $("#status").textContent = "";
    }
  }

  function showError(message) {
    const e = $("#error");
    e.textContent = message || "";
    e.hidden = !message;
  }

  function fragment() {
    const p = new URLSearchParams();
    p.set("e", $("#expr").value);
    p.set("v", $("#vals").value);
    if ($("#ground").value) p.set("r", $("#ground").value);
    p.set("d", $("#gdigits").value);
    if (practising()) p.set("p", "1");
    return "#" + p.toString();
  }

  function restore() {
    const p = new URLSearchParams(location.hash.slice(1));
    if (p.has("e")) $("#expr").value = p.get("e");
    if (p.has("v")) $("#vals").value = p.get("v");
    if (p.has("r")) $("#ground").value = p.get("r");
    if (p.has("d")) $("#gdigits").value = p.get("d");
    $("#gpractice").checked = p.get("p") === "1";
  }

  // -- practice: a worksheet of the circuit, each box marked by glassnet check --------

  function answerBox(name, label) {
    const cell = document.createElement("span");
    const box = document.createElement("input");
    box.type = "text";
    box.className = "ans";
    box.inputMode = "decimal";
    box.dataset.name = name;
    box.value = typed[name] || "";
    box.setAttribute("aria-label", label);
    const mark = document.createElement("span");
    mark.className = "mark";
    mark.id = `mark-${name}`;
    box.setAttribute("aria-describedby", mark.id);
    box.addEventListener("input", () => {
      typed[name] = box.value;
      box.classList.add("stale");
      clearTimeout(checkTimer);
      checkTimer = setTimeout(checkAll, 400);
    });
    box.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        clearTimeout(checkTimer);
        checkAll();
      }
    });
    cell.append(box, mark);
    return cell;
  }

  function renderSheet(answer) {
    $("#circuit").innerHTML = answer.svg; // the server's SVG, "?" for every unknown
    const out = answer.sheet.output;
    $("#gradhead").textContent = `d${out}/dnode`;
    const body = $("#nodes tbody");
    body.textContent = "";
    for (const n of answer.sheet.nodes) {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = n.name;
      const rule = document.createElement("td");
      rule.className = "rule";
      rule.textContent = n.rule || "given";
      const value = document.createElement("td");
      if (n.kind === "gate") value.append(answerBox(n.name, `value of ${n.name}`));
      else value.textContent = n.given;
      const grad = document.createElement("td");
      if (n.grad) grad.append(answerBox(`d${n.name}`, `d${out}/d${n.name}`));
      tr.append(th, rule, value, grad);
      body.append(tr);
    }
    $("#gprogress").hidden = false;
    $("#detail").textContent = "";
    const hint = document.createElement("p");
    hint.className = "hint";
    hint.textContent =
      "Work forward, then back from the output: type each value and gradient. " +
      "✓ ok, → follows from your earlier numbers, ✗ wrong with the mistake named.";
    $("#detail").append(hint);
    return checkAll();
  }

  async function checkAll() {
    const boxes = [...document.querySelectorAll("#nodes input.ans")];
    const answers = {};
    for (const b of boxes) if (b.value.trim() !== "") answers[b.dataset.name] = b.value;
    checking += 1;
    const mine = checking;
    let result;
    try {
      result = await post("/api/circuit_check", { ...request(), answers });
    } catch (err) {
      showError(err.message);
      return;
    }
    if (mine !== checking) return; // a later check is on its way
    const marks = {};
    for (const e of result.entries) marks[e.name] = e;
    let ok = 0;
    for (const b of boxes) {
      const name = b.dataset.name;
      const mark = document.getElementById(`mark-${name}`);
      b.classList.remove("stale");
      const e = marks[name];
      if (name in result.bad) {
        b.dataset.verdict = "bad";
        mark.dataset.verdict = "bad";
        mark.textContent = `? ${result.bad[name]}`;
      } else if (e) {
        b.dataset.verdict = e.verdict;
        b.dataset.mistake = e.mistake || "";
        mark.dataset.verdict = e.verdict;
        const sign = { ok: "✓ ok", follows: "→ follows", wrong: "✗ wrong" }[e.verdict];
        mark.textContent = e.mistake ? `${sign}: ${e.mistake} (${e.title})` : sign;
        if (e.verdict === "ok") ok += 1;
      } else {
        delete b.dataset.verdict;
        delete b.dataset.mistake;
        delete mark.dataset.verdict;
        mark.textContent = "";
      }
    }
    $("#gprogress").textContent = `${ok} of ${boxes.length} ok`;
    document.body.dataset.checked = String(mine);
  }

  function numButton(node, what, value, shown, label) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = `num ${what}`;
    b.dataset.node = node;
    b.dataset.what = what;
    b.dataset.value = JSON.stringify(value);
    b.textContent = shown;
    b.setAttribute("aria-label", `${label}, ${shown}`);
    b.addEventListener("click", () => explain(node, what));
    b.addEventListener("focus", () => explain(node, what));
    return b;
  }

  function render(answer) {
    $("#circuit").innerHTML = answer.svg; // the server's SVG: its text escaped there
    for (const t of document.querySelectorAll("#circuit text.pick")) {
      t.addEventListener("click", () => explain(t.dataset.node, t.dataset.what));
    }
    const out = answer.trace.output;
    $("#gradhead").textContent = `d${out}/dnode`;
    const body = $("#nodes tbody");
    body.textContent = "";
    for (const n of answer.trace.nodes) {
      if (n.kind === "constant") continue;
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = n.name;
      const rule = document.createElement("td");
      rule.className = "rule";
      rule.textContent = n.rule || "given";
      const value = document.createElement("td");
      const shown = answer.shown[n.name];
      value.append(numButton(n.name, "value", n.value, shown.value, `value of ${n.name}`));
      const grad = document.createElement("td");
      if ("grad" in n) {
        grad.append(numButton(n.name, "grad", n.grad, shown.grad, `d${out}/d${n.name}`));
      }
      tr.append(th, rule, value, grad);
      body.append(tr);
    }
  }

  async function draw() {
    document.body.dataset.ready = "0";
    try {
      if (practising()) {
        const answer = await post("/api/circuit", { ...request(), practice: true });
        showError("");
        history.replaceState(null, "", fragment());
        await renderSheet(answer);
      } else {
        const answer = await post("/api/circuit", request());
        showError("");
        $("#gprogress").hidden = true;
        render(answer);
        if (!chosen && !$("#whole")) resetDetail();
        history.replaceState(null, "", fragment());
        if (chosen) await explain(...chosen);
      }
    } catch (err) {
      showError(err.message);
    }
    document.body.dataset.ready = "1";
  }

  function detail(title, html) {
    const d = $("#detail");
    d.textContent = "";
    const h = document.createElement("h3");
    h.textContent = title;
    const box = document.createElement("div");
    box.className = "deriv";
    box.innerHTML = html; // explain's MathML fragment from our own server
    const whole = document.createElement("button");
    whole.type = "button";
    whole.id = "whole";
    whole.textContent = "the whole derivation";
    whole.addEventListener("click", wholeDerivation);
    d.append(h, box, whole);
  }

  function resetDetail() {
    const d = $("#detail");
    d.textContent = "";
    const hint = document.createElement("p");
    hint.className = "hint";
    hint.textContent = "Click or focus any number to see how it was made.";
    const whole = document.createElement("button");
    whole.type = "button";
    whole.id = "whole";
    whole.textContent = "the whole derivation";
    whole.addEventListener("click", wholeDerivation);
    d.append(hint, whole);
  }

  async function explain(node, what) {
    chosen = [node, what];
    for (const b of document.querySelectorAll(".sel")) b.classList.remove("sel");
    for (const b of document.querySelectorAll(`[data-node="${CSS.escape(node)}"][data-what="${what}"]`)) {
      b.classList.add("sel");
    }
    try {
      const answer = await post("/api/circuit_explain", { ...request(), node, what });
      const out = document.querySelector("#gradhead").textContent.split("/")[0];
      detail(what === "value" ? `the value of ${node}` : `${out}/d${node}`, answer.html);
      document.body.dataset.explained = `${node}:${what}`;
    } catch (err) {
      showError(err.message);
    }
  }

  async function wholeDerivation() {
    try {
      const answer = await post("/api/circuit_explain", request());
      chosen = null;
      detail("the whole derivation", answer.html);
    } catch (err) {
      showError(err.message);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    restore();
    $("#draw").addEventListener("click", draw);
    $("#whole").addEventListener("click", wholeDerivation);
    $("#expr").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        draw();
      }
    });
    $("#vals").addEventListener("keydown", (e) => {
      if (e.key === "Enter") draw();
    });
    $("#ground").addEventListener("change", draw);
    $("#gdigits").addEventListener("change", draw);
    $("#gpractice").addEventListener("change", () => {
      chosen = null;
      draw();
    });
    $("#gshare").addEventListener("click", async () => {
      const url = location.origin + location.pathname + fragment();
      try {
        await navigator.clipboard.writeText(url);
        $("#status").textContent = "link copied";
      } catch (err) {
        $("#status").textContent = url;
      }
    });
    // A link opened in this tab again (only its fragment differs): its state.
    window.addEventListener("hashchange", () => {
      restore();
      draw();
    });
    draw();
  });
})();
