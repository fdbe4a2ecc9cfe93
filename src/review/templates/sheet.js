"use strict";
(function () {
  var data = JSON.parse(document.getElementById("evalwatch-sheet").textContent);
  var items = data.items || [];
  var KEY = "evalwatch-review:" + data.sheet_id;
  // The reviewer's name, remembered for every sheet of this origin (file:// or a server).
  var NAME_KEY = "evalwatch-review:reviewer";
  var store = null;
  try {
    store = window.localStorage;
    store.setItem(KEY + ":probe", "1");
    store.removeItem(KEY + ":probe");
  } catch (e) {
    store = null;
  }
  var state = { reviewer: "", pos: 0, blind: true, grades: {} };
  if (store) {
    try {
      var saved = JSON.parse(store.getItem(KEY) || "null");
      if (saved && typeof saved === "object") {
        state.reviewer = typeof saved.reviewer === "string" ? saved.reviewer : "";
        state.pos = Number.isInteger(saved.pos) ? saved.pos : 0;
        state.blind = saved.blind !== false;
        state.grades = saved.grades && typeof saved.grades === "object" ? saved.grades : {};
      }
    } catch (e) {
      /* a damaged save starts afresh */
    }
  }
  if (store && state.reviewer === "") {
    try { state.reviewer = store.getItem(NAME_KEY) || ""; } catch (e) { /* no name kept */ }
  }
  state.pos = Math.max(0, Math.min(items.length - 1, state.pos));

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function save() {
    if (!store) { return; }
    try {
      store.setItem(KEY, JSON.stringify(state));
    } catch (e) {
      say("could not save progress in this browser: " + e.message);
    }
  }
  function say(text) { $("status").textContent = text; }
  function gradeOf(item) { return state.grades[item.result_id] || null; }
  function graded(item) {
    var g = gradeOf(item);
    return !!(g && (g.verdict === "pass" || g.verdict === "fail"));
  }
  function gradedCount() { return items.filter(graded).length; }
  // The team's stored grades of an item (a page from the store carries them).
  function storedOf(item) {
    return (data.grades || []).filter(function (s) { return s.result_id === item.result_id; });
  }
  function describe(s) {
    var text = s.reviewer + (s.reviewer === state.reviewer.trim() ? " (you)" : "") + ": " + s.verdict;
    if (typeof s.quality === "number") { text += ", quality " + s.quality; }
    if (s.hallucination === true) { text += ", hallucination"; }
    if (s.hallucination === false) { text += ", no hallucination"; }
    if (s.note) { text += ": " + s.note; }
    return text + " (" + s.graded_at + ")";
  }
  function edit(fn) {
    var item = items[state.pos];
    if (!item) { return; }
    var g = gradeOf(item) || { verdict: null, quality: null, hallucination: null, note: "" };
    fn(g);
    state.grades[item.result_id] = g;
    save();
    render();
  }

  function section(title, body) {
    var s = el("section");
    s.appendChild(el("h3", null, title));
    s.appendChild(body);
    return s;
  }
  function pre(text, cls) { return el("pre", cls, text); }

  function renderStrip() {
    var strip = $("strip");
    strip.textContent = "";
    items.forEach(function (item, i) {
      var b = el("button", (graded(item) ? "graded" : "") + (i === state.pos ? " current" : ""), i + 1);
      b.type = "button";
      b.tabIndex = -1;
      b.title = item.case_id + " [" + item.provider + "]" + (graded(item) ? ": graded" : "");
      b.addEventListener("click", function () { go(i); });
      strip.appendChild(b);
    });
  }

  function button(label, cls, pressed, onClick) {
    var b = el("button", cls, label);
    b.type = "button";
    b.setAttribute("aria-pressed", pressed ? "true" : "false");
    b.addEventListener("click", onClick);
    return b;
  }

  function renderItem() {
    var main = $("main");
    main.textContent = "";
    if (items.length === 0) {
      main.appendChild(el("p", "muted", "This sheet has no items."));
      return;
    }
    var item = items[state.pos];
    var g = gradeOf(item) || {};
    var art = el("article", "item");
    art.id = "item";
    art.dataset.resultId = item.result_id;
    var h = el("h2", null, "Item " + (state.pos + 1) + " of " + items.length + ": ");
    h.appendChild(el("code", null, item.case_id));
    // The stratum (fail, flip, hallucination, ...) tells the automatic verdict: blind mode
    // hides it with the verdict.
    var hidden = state.blind && !graded(item);
    var stratum = el("span", "badge", hidden ? "sampled" : item.stratum);
    stratum.id = "stratum";
    h.appendChild(stratum);
    art.appendChild(h);
    var t = item.traffic || null;
    if (t) {
      var parts = ["source " + t.source, "model " + (t.model || "-")];
      if (t.feature) { parts.push("feature " + t.feature); }
      if (t.segment) { parts.push("segment " + t.segment); }
      if (t.region) { parts.push("region " + t.region); }
      parts.push(t.time);
      if (t.latency_ms !== null && t.latency_ms !== undefined) { parts.push(Math.round(t.latency_ms) + " ms"); }
      if (t.confidence !== null && t.confidence !== undefined) { parts.push("confidence " + t.confidence); }
      if (t.error) { parts.push("error " + t.error); }
      parts.push("record " + t.key);
      art.appendChild(el("p", "meta", parts.join(" · ")));
    } else {
      art.appendChild(el("p", "meta", "suite " + item.suite + " · provider " + item.provider +
        " · run " + item.run_id + (item.sample ? " · sample " + item.sample : "") + " · result " + item.result_id));
    }
    art.appendChild(section(t ? "Input" : "Prompt", pre(item.prompt)));
    var cols = el("div", "cols");
    var ctx = el("div");
    if (item.context && item.context.length) {
      item.context.forEach(function (c) { ctx.appendChild(pre(c)); });
    } else {
      ctx.appendChild(el("p", "muted", "No context."));
    }
    cols.appendChild(section("Context", ctx));
    cols.appendChild(section("Expected answer", item.expected !== null && item.expected !== undefined
      ? pre(item.expected) : el("p", "muted", item.expected_note || "None.")));
    art.appendChild(cols);
    var out = item.output === null || item.output === undefined
      ? el("p", "muted", "No output.") : pre(item.output);
    out.id = "output";
    art.appendChild(section("Output", out));

    var auto = el("div");
    auto.id = "auto";
    if (state.blind && !graded(item)) {
      auto.appendChild(el("p", "hidden-verdict", "Hidden until you grade this item (blind mode)."));
    } else {
      var v = el("p");
      v.appendChild(el("span", "badge " + item.auto.status, item.auto.status));
      if (item.auto.score !== null && item.auto.score !== undefined) {
        v.appendChild(document.createTextNode(" score " + Number(item.auto.score).toFixed(2)));
      }
      auto.appendChild(v);
      if (item.auto.assertions.length) {
        var ul = el("ul", "small");
        item.auto.assertions.forEach(function (a) {
          var word = a.unscorable ? "unscorable" : (a.pass ? "pass" : "fail");
          ul.appendChild(el("li", null, a.type + ": " + word +
            (a.score !== null && a.score !== undefined ? " (" + Number(a.score).toFixed(2) + ")" : "") +
            (a.reason ? " " + a.reason : "")));
        });
        auto.appendChild(ul);
      }
    }
    art.appendChild(section(t ? "Monitor verdict" : "Automatic verdict", auto));
    if (data.grades) {
      // Other reviewers' grades anchor a grader too: blind mode hides them with the verdict.
      var others = el("div");
      others.id = "others";
      var stored = storedOf(item);
      if (stored.length === 0) {
        others.appendChild(el("p", "muted", "No grade stored yet."));
      } else if (state.blind && !graded(item)) {
        others.appendChild(el("p", "hidden-verdict", stored.length + " stored grade(s), hidden until you grade this item (blind mode)."));
      } else {
        var list = el("ul", "small");
        stored.forEach(function (s) { list.appendChild(el("li", null, describe(s))); });
        others.appendChild(list);
      }
      art.appendChild(section("Reviewers' grades", others));
    }
    if (t) {
      // The user's vote anchors a grader like the automatic verdict: blind mode hides both.
      var fb = el("div");
      fb.id = "feedback";
      if (state.blind && !graded(item)) {
        fb.appendChild(el("p", "hidden-verdict", "Hidden until you grade this item (blind mode)."));
      } else if (t.vote) {
        var fv = el("p");
        fv.appendChild(el("span", "badge " + (t.vote === "negative" ? "failed" : (t.vote === "positive" ? "passed" : "")), t.vote));
        if (t.feedback_raw !== null && t.feedback_raw !== undefined) {
          fv.appendChild(document.createTextNode(" (" + t.feedback_raw + ")"));
        }
        fb.appendChild(fv);
        if (t.comment) { fb.appendChild(pre(t.comment)); }
      } else {
        fb.appendChild(el("p", "muted", "The user gave no feedback."));
      }
      art.appendChild(section("User feedback", fb));
    }

    var form = el("div", "grade");
    form.appendChild(el("strong", null, "Your grade:"));
    form.appendChild(button("Pass (p)", "pass", g.verdict === "pass", function () { edit(function (x) { x.verdict = "pass"; }); }));
    form.appendChild(button("Fail (f)", "fail", g.verdict === "fail", function () { edit(function (x) { x.verdict = "fail"; }); }));
    var q = el("span", null, "Quality ");
    [1, 2, 3, 4, 5].forEach(function (n) {
      q.appendChild(button(String(n), "q", g.quality === n, function () { edit(function (x) { x.quality = x.quality === n ? null : n; }); }));
    });
    form.appendChild(q);
    var hl = el("span", null, "Hallucination ");
    hl.appendChild(button("yes", "hy", g.hallucination === true, function () { edit(function (x) { x.hallucination = x.hallucination === true ? null : true; }); }));
    hl.appendChild(button("no", "hn", g.hallucination === false, function () { edit(function (x) { x.hallucination = x.hallucination === false ? null : false; }); }));
    form.appendChild(hl);
    var note = el("textarea");
    note.id = "note";
    note.placeholder = "Note (n)";
    note.maxLength = 10000;
    note.value = g.note || "";
    note.addEventListener("change", function () {
      var text = note.value;
      edit(function (x) { x.note = text; });
    });
    form.appendChild(note);
    art.appendChild(form);
    main.appendChild(art);
  }

  function render() {
    $("sheet-id").textContent = data.sheet_id;
    $("blind").checked = state.blind;
    if (document.activeElement !== $("reviewer")) { $("reviewer").value = state.reviewer; }
    $("progress").textContent = gradedCount() + " / " + items.length + " graded";
    renderStrip();
    renderItem();
  }

  function go(i) {
    if (items.length === 0) { return; }
    state.pos = Math.max(0, Math.min(items.length - 1, i));
    save();
    render();
    window.scrollTo(0, 0);
  }
  function nextUngraded() {
    for (var k = 1; k <= items.length; k++) {
      var i = (state.pos + k) % items.length;
      if (!graded(items[i])) { go(i); return; }
    }
    say("every item is graded");
  }

  function gradesFile() {
    var grades = [];
    items.forEach(function (item) {
      var g = gradeOf(item);
      if (!graded(item)) { return; }
      grades.push({
        result_id: item.result_id,
        verdict: g.verdict,
        quality: typeof g.quality === "number" ? g.quality : null,
        hallucination: typeof g.hallucination === "boolean" ? g.hallucination : null,
        note: g.note || ""
      });
    });
    return {
      sheet_id: data.sheet_id,
      reviewer: state.reviewer.trim(),
      exported_at: new Date().toISOString(),
      sheet_mac: data.mac,
      grades: grades
    };
  }
  function needReviewer() {
    if (state.reviewer.trim() !== "") { return false; }
    say("type your name in the Reviewer field first: grades are stored under it, one current grade per reviewer and item");
    $("reviewer").focus();
    return true;
  }
  function exportGrades() {
    if (needReviewer()) { return; }
    var file = gradesFile();
    var blob = new Blob([JSON.stringify(file, null, 2) + "\n"], { type: "application/json" });
    var a = el("a");
    a.href = URL.createObjectURL(blob);
    a.download = "grades-" + data.sheet_id + "-" + state.reviewer.trim().replace(/[^A-Za-z0-9_-]+/g, "_") + ".json";
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(a.href); }, 10000);
    say("exported " + file.grades.length + " grade(s); import them with: evalwatch review import " + a.download);
  }
  // Sent grades are stored: show them among the team's without a reload.
  function remember(file) {
    if (!data.grades) { return; }
    file.grades.forEach(function (g) {
      data.grades = data.grades.filter(function (s) {
        return !(s.result_id === g.result_id && s.reviewer === file.reviewer);
      });
      data.grades.push({ result_id: g.result_id, reviewer: file.reviewer, graded_at: file.exported_at,
        verdict: g.verdict, quality: g.quality, hallucination: g.hallucination, note: g.note });
    });
  }
  function sendGrades() {
    if (!data.submit || needReviewer()) { return; }
    var file = gradesFile();
    say("sending " + file.grades.length + " grade(s)...");
    fetch(data.submit.url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Authorization": "Bearer " + data.submit.token },
      body: JSON.stringify(file)
    }).then(function (r) {
      return r.text().then(function (t) {
        if (r.ok) { remember(file); render(); }
        say((r.ok ? "sent: " : "not accepted: ") + t);
      });
    }, function (e) { say("could not send: " + e.message); });
  }

  $("reviewer").addEventListener("input", function () {
    state.reviewer = $("reviewer").value;
    save();
    if (store) {
      try { store.setItem(NAME_KEY, state.reviewer.trim()); } catch (e) { /* kept per sheet */ }
    }
  });
  $("blind").addEventListener("change", function () { state.blind = $("blind").checked; save(); render(); });
  $("export").addEventListener("click", exportGrades);
  if (data.submit) {
    $("send").hidden = false;
    $("send-key").hidden = false;
    $("send").addEventListener("click", sendGrades);
  }
  if (!store) { say("this browser does not keep progress for this page: export before you close it"); }
  else if (data.closed) { say("this sheet is closed: every item has a grade; grades sent are still stored"); }

  document.addEventListener("keydown", function (ev) {
    var t = ev.target;
    var typing = t && (t.tagName === "INPUT" && t.type === "text" || t.tagName === "TEXTAREA");
    if (typing) {
      if (ev.key === "Escape") {
        if (t.id === "note") {
          var text = t.value;
          edit(function (x) { x.note = text; });
        }
        t.blur();
        ev.preventDefault();
      }
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    var k = ev.key;
    var handled = true;
    if (k === "j" || k === "ArrowRight") { go(state.pos + 1); }
    else if (k === "k" || k === "ArrowLeft") { go(state.pos - 1); }
    else if (k === "p") { edit(function (x) { x.verdict = "pass"; }); }
    else if (k === "f") { edit(function (x) { x.verdict = "fail"; }); }
    else if (k >= "1" && k <= "5" && k.length === 1) { var n = Number(k); edit(function (x) { x.quality = n; }); }
    else if (k === "h") {
      edit(function (x) { x.hallucination = x.hallucination === null || x.hallucination === undefined ? true : (x.hallucination === true ? false : null); });
    }
    else if (k === "n") { var note = $("note"); if (note) { note.focus(); } }
    else if (k === "b") { state.blind = !state.blind; save(); render(); }
    else if (k === "e") { exportGrades(); }
    else if (k === "s" && data.submit) { sendGrades(); }
    else if (k === "u") { nextUngraded(); }
    else { handled = false; }
    if (handled) { ev.preventDefault(); }
  });

  render();
})();
