// labup serve: the class dashboard. Plain script, no build step, no library.
// Everything shown comes from the server's event stream (/events) and is put on the page as
// text (textContent, createTextNode, numeric SVG attributes): never as HTML, since check
// messages come from the learners' containers.
"use strict";

(() => {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const MARK = { pass: "\u2713", fail: "\u2717", blocked: "!", skipped: "\u2013" };

  let model = null; // the snapshot, kept current by the events
  let selected = null; // the host whose details are shown

  // -- small helpers ----------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function clock(t) {
    if (t === null || t === undefined) return "never";
    return new Date(t * 1000).toLocaleTimeString([], { hour12: false });
  }

  function ago(t) {
    if (t === null || t === undefined) return "";
    const s = Math.max(0, Math.round(Date.now() / 1000 - t));
    if (s < 60) return `${s}s ago`;
    if (s < 3600) return `${Math.floor(s / 60)}m ago`;
    return `${Math.floor(s / 3600)}h ago`;
  }

  function num(x) {
    return Number.isInteger(x) ? String(x) : x.toFixed(1);
  }

  function learnerOf(host) {
    return model.learners.find((l) => l.host === host) || null;
  }

  function notice(text, level) {
    const item = el("div", { class: `notice ${level || "info"}`, role: "status" }, text);
    $("notices").append(item);
    setTimeout(() => item.remove(), level === "error" ? 15000 : 6000);
  }

  // -- the confirmation before every action -------------------------------------------------
  let pending = null;
  function confirmThen(text, action) {
    const dialog = $("confirm");
    $("confirm-text").textContent = text;
    pending = action;
    dialog.returnValue = "";
    dialog.showModal();
  }
  $("confirm").addEventListener("close", () => {
    const action = pending;
    pending = null;
    if ($("confirm").returnValue === "ok" && action) action();
  });

  async function post(path, body) {
    try {
      const answer = await fetch(path, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body),
      });
      const doc = await answer.json().catch(() => ({}));
      if (!answer.ok) notice(`refused: ${doc.error || answer.status}`, "error");
      else if (!doc.queued) notice("already queued");
    } catch (err) {
      notice(`the dashboard does not answer: ${err}`, "error");
    }
  }

  function recheck(host) {
    const who = host ? describe(host) : "every learner";
    confirmThen(`Re-check ${who} now?`, () => post("/api/recheck", host ? { host } : {}));
  }

  function reset(host) {
    confirmThen(
      `Reset the lab of ${describe(host)}? Their containers, networks and volumes are ` +
        "removed and the lab is brought up clean: their work in it is lost.",
      () => post("/api/reset", { host }),
    );
  }

  function download(format) {
    confirmThen(`Download the class report as ${format.toUpperCase()}?`, () => {
      const link = el("a", { href: `/report.${format}`, download: "" });
      document.body.append(link);
      link.click();
      link.remove();
    });
  }

  function describe(host) {
    const l = learnerOf(host);
    return l ? `${l.learner} (${l.host})` : host;
  }

  // -- rendering ----------------------------------------------------------------------------
  function renderAll() {
    $("lab-title").textContent = model.lab.title || model.lab.key;
    $("lab-key").textContent = model.lab.key;
    document.title = `${model.lab.key}: class dashboard`;
    renderHead();
    const body = $("grid").tBodies[0];
    body.replaceChildren(...model.learners.map(row));
    renderSummary();
    renderRound();
    renderObjectives();
    renderLearner();
  }

  function passCounts() {
    const counts = {};
    let graded = 0;
    for (const c of model.checks) counts[c.id] = 0;
    for (const l of model.learners) {
      if (l.status !== "graded") continue;
      graded += 1;
      for (const [id, cell] of Object.entries(l.checks)) {
        if (cell.status === "pass") counts[id] = (counts[id] || 0) + 1;
      }
    }
    return { counts, graded };
  }

  function renderHead() {
    const { counts, graded } = passCounts();
    const cells = [
      el("th", { class: "learner", scope: "col" }, "learner"),
      el("th", { scope: "col" }, "score"),
      el("th", { scope: "col" }, "last check"),
    ];
    for (const c of model.checks) {
      cells.push(
        el("th", { class: "check", scope: "col", title: c.description || c.id },
          el("span", { class: "check-id" }, c.id),
          el("small", {}, `${counts[c.id] || 0}/${graded} pass`)),
      );
    }
    $("grid").tHead.replaceChildren(el("tr", {}, ...cells));
  }

  function row(l) {
    const classes = ["learner-row", `status-${l.status}`];
    if (l.all_pass) classes.push("all-pass");
    if (l.busy) classes.push("busy");
    if (l.host === selected) classes.push("selected");
    const score = l.status === "graded"
      ? `${num(l.score)}/${num(l.total)}${l.percent === null ? "" : ` (${num(l.percent)}%)`}`
      : "\u2013";
    const busy = l.busy ? el("span", { class: "busy-mark" }, ` ${l.busy}\u2026`) : null;
    const cells = [
      el("th", { class: "learner", scope: "row" },
        el("span", { class: "name" }, l.learner), el("small", { class: "host" }, l.host), busy),
      el("td", { class: "score" }, score),
      el("td", { class: "checked", title: clock(l.checked_at) },
        el("span", { class: "time" }, clock(l.checked_at)),
        el("small", { class: "ago", "data-t": l.checked_at === null ? null : String(l.checked_at) },
          ago(l.checked_at))),
    ];
    if (l.status === "graded") {
      for (const c of model.checks) {
        const cell = l.checks[c.id];
        if (!cell) {
          cells.push(el("td", { class: "cell none", "data-check": c.id }, "?"));
          continue;
        }
        const tip = cell.message + (cell.hint ? `\nhint: ${cell.hint}` : "");
        cells.push(el("td", { class: `cell ${cell.status}`, "data-check": c.id, title: tip },
          MARK[cell.status] || cell.status));
      }
    } else {
      const text = l.status === "waiting" ? "not checked yet" : `${l.status}: ${l.error}`;
      cells.push(el("td", { class: `cell down ${l.status}`, colspan: String(model.checks.length) },
        text));
    }
    const tr = el("tr", { class: classes.join(" "), "data-host": l.host, tabindex: "0" }, ...cells);
    tr.addEventListener("click", () => select(l.host));
    tr.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        select(l.host);
      }
    });
    return tr;
  }

  function renderRow(l) {
    const old = $("grid").tBodies[0].querySelector(`tr[data-host="${CSS.escape(l.host)}"]`);
    const fresh = row(l);
    if (old) old.replaceWith(fresh);
    else $("grid").tBodies[0].append(fresh);
  }

  function renderSummary() {
    const n = model.learners.length;
    const graded = model.learners.filter((l) => l.status === "graded");
    const done = graded.filter((l) => l.all_pass).length;
    const down = model.learners.filter((l) => l.status === "unreachable").length;
    const percents = graded.map((l) => l.percent).filter((p) => p !== null);
    const avg = percents.length ? percents.reduce((a, b) => a + b, 0) / percents.length : null;
    let text = `${n} learner${n === 1 ? "" : "s"}: ${done} done`;
    if (avg !== null) text += `, average ${num(Math.round(avg * 10) / 10)}%`;
    if (down) text += `, ${down} unreachable`;
    $("summary").textContent = text;
  }

  function renderRound() {
    const r = model.round;
    let text;
    if (r.running) text = `${r.running === "round" ? "checking the class" : r.running}\u2026`;
    else if (r.finished) text = `last round ${clock(r.finished)}`;
    else text = "first round starting";
    if (!r.running && r.seconds !== null) text += ` (took ${r.seconds.toFixed(1)}s)`;
    if (!r.running && r.next) {
      const s = Math.max(0, Math.round(r.next - Date.now() / 1000));
      text += ` \u00b7 next in ${s}s`;
    } else if (!r.running && !r.every) {
      text += " \u00b7 rounds on demand only";
    }
    $("round-info").textContent = text;
    $("round-info").dataset.running = r.running ? "1" : "";
  }

  function renderObjectives() {
    const { counts, graded } = passCounts();
    const order = model.checks.map((c, i) => ({ c, i, n: counts[c.id] || 0 }));
    order.sort((a, b) => a.n - b.n || a.i - b.i);
    const stuck = order.find((o) => graded > 0 && o.n < graded);
    const items = order.map(({ c, n }) => {
      const isStuck = stuck && stuck.c.id === c.id;
      const share = graded ? n / graded : 0;
      return el("li", { class: `objective${isStuck ? " stuck" : ""}`, "data-check": c.id },
        el("div", { class: "objective-head" },
          el("span", { class: "check-id" }, c.id),
          isStuck ? el("span", { class: "badge" }, "most stuck") : null,
          el("span", { class: "count" }, `${n}/${graded} pass`)),
        el("div", { class: "description" }, c.description || ""),
        el("div", { class: "meter" }, meter(share)),
        chart(c.id));
    });
    $("objectives").replaceChildren(...items);
    renderHead();
  }

  function meter(share) {
    const fill = el("span", { class: "fill" });
    fill.style.width = `${Math.round(share * 100)}%`;
    return fill;
  }

  // How many learners passed this check after each round: a small step chart.
  function chart(id) {
    const w = 240;
    const h = 36;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    svg.setAttribute("class", "chart");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    const points = model.history.slice(-120);
    const top = Math.max(1, ...model.history.map((p) => p.graded));
    const label = document.createElementNS(SVG, "title");
    label.textContent = `${id}: learners passing over the last ${points.length} round(s)`;
    svg.append(label);
    if (points.length) {
      const step = points.length > 1 ? w / (points.length - 1) : w;
      const ys = points.map((p) => h - 2 - ((p.passing[id] || 0) / top) * (h - 4));
      let d = `M0 ${ys[0].toFixed(1)}`;
      ys.forEach((y, i) => {
        if (i) d += ` H${(i * step).toFixed(1)} V${y.toFixed(1)}`;
      });
      if (points.length === 1) d += ` H${w}`;
      const line = document.createElementNS(SVG, "path");
      line.setAttribute("d", d);
      line.setAttribute("class", "line");
      line.setAttribute("vector-effect", "non-scaling-stroke");
      svg.append(line);
    }
    return svg;
  }

  function select(host) {
    selected = host;
    for (const tr of $("grid").tBodies[0].rows) {
      tr.classList.toggle("selected", tr.dataset.host === host);
    }
    renderLearner();
  }

  function renderLearner() {
    const l = selected ? learnerOf(selected) : null;
    $("learner-body").hidden = !l;
    $("learner-hint").hidden = !!l;
    if (!l) {
      $("learner-title").textContent = "Learner";
      return;
    }
    $("learner-title").textContent = `${l.learner} (${l.host})`;
    const parts = [];
    if (l.status === "graded") {
      parts.push(`${num(l.score)}/${num(l.total)} points`);
      parts.push(l.all_pass ? "every check passes" : "some checks fail");
    } else {
      parts.push(l.status === "waiting" ? "not checked yet" : `${l.status}: ${l.error}`);
    }
    parts.push(`last checked ${clock(l.checked_at)}`);
    if (l.busy) parts.push(`${l.busy}\u2026`);
    $("learner-status").replaceChildren(
      el("span", { class: `state status-${l.status}` }, parts.join(" \u00b7 ")),
      ...(l.note ? [el("span", { class: "note" }, ` ${l.note}`)] : []),
    );
    const checks = model.checks.map((c) => {
      const cell = l.checks[c.id];
      const first = l.first_passed[c.id];
      return el("tr", { "data-check": c.id },
        el("th", { scope: "row", title: c.description || "" }, c.id),
        el("td", { class: `cell ${cell ? cell.status : "none"}` }, cell ? cell.status : "\u2013"),
        el("td", { class: "message" }, cell ? cell.message : ""),
        el("td", { class: "hint" }, cell ? cell.hint : ""),
        el("td", { class: "first" }, first ? clock(first) : "\u2013"));
    });
    $("learner-checks").tBodies[0].replaceChildren(...checks);
    const containers = l.containers.length
      ? l.containers.map((c) => el("tr", {},
        el("th", { scope: "row" }, c.name),
        el("td", { class: `state ${c.state}` }, c.state),
        el("td", {}, c.health || "\u2013"),
        el("td", {}, c.status)))
      : [el("tr", {}, el("td", { colspan: "4", class: "muted" }, "no container of the lab"))];
    $("learner-containers").tBodies[0].replaceChildren(...containers);
  }

  function tick() {
    for (const small of document.querySelectorAll("small.ago[data-t]")) {
      small.textContent = ago(Number(small.dataset.t));
    }
    if (model) renderRound();
  }

  // -- the event stream ---------------------------------------------------------------------
  function connect() {
    const source = new EventSource("/events");
    const conn = $("conn");
    source.addEventListener("open", () => {
      conn.textContent = "live";
      conn.className = "conn live";
    });
    source.addEventListener("error", () => {
      conn.textContent = "reconnecting";
      conn.className = "conn lost";
    });
    source.addEventListener("snapshot", (e) => {
      model = JSON.parse(e.data);
      renderAll();
    });
    source.addEventListener("learner", (e) => {
      if (!model) return;
      const l = JSON.parse(e.data);
      const i = model.learners.findIndex((x) => x.host === l.host);
      if (i >= 0) model.learners[i] = l;
      else model.learners.push(l);
      renderRow(l);
      renderSummary();
      renderObjectives();
      if (selected === l.host) renderLearner();
    });
    source.addEventListener("round", (e) => {
      if (!model) return;
      model.round = JSON.parse(e.data);
      renderRound();
    });
    source.addEventListener("history", (e) => {
      if (!model) return;
      model.history.push(JSON.parse(e.data));
      if (model.history.length > 720) model.history.shift();
      renderObjectives();
    });
    source.addEventListener("notice", (e) => {
      const n = JSON.parse(e.data);
      notice(n.text, n.level);
    });
  }

  $("recheck-all").addEventListener("click", () => recheck(null));
  $("recheck-one").addEventListener("click", () => selected && recheck(selected));
  $("reset-one").addEventListener("click", () => selected && reset(selected));
  for (const button of document.querySelectorAll("button.report")) {
    button.addEventListener("click", () => download(button.dataset.format));
  }
  setInterval(tick, 5000);
  connect();
})();
