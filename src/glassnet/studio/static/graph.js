// glassnet studio, graph mode: an expression's circuit.  The page computes nothing: every
// number is the server's (POST /api/circuit: glassnet.graphs' trace), every derivation
// explain's (POST /api/circuit_explain).  The state is in the URL fragment.
"use strict";
(() => {
  const $ = (s) => document.querySelector(s);
  let pending = 0;
  let chosen = null; // [node, what] of the number whose derivation is shown

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
    return "#" + p.toString();
  }

  function restore() {
    const p = new URLSearchParams(location.hash.slice(1));
    if (p.has("e")) $("#expr").value = p.get("e");
    if (p.has("v")) $("#vals").value = p.get("v");
    if (p.has("r")) $("#ground").value = p.get("r");
    if (p.has("d")) $("#gdigits").value = p.get("d");
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
      const answer = await post("/api/circuit", request());
      showError("");
      render(answer);
      history.replaceState(null, "", fragment());
      if (chosen) await explain(...chosen);
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
    $("#gshare").addEventListener("click", async () => {
      const url = location.origin + location.pathname + fragment();
      try {
        await navigator.clipboard.writeText(url);
        $("#status").textContent = "link copied";
      } catch (err) {
        $("#status").textContent = url;
      }
    });
    draw();
  });
})();
