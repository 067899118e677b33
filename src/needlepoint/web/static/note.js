// The session note: body chart, muscle search, site rows, CPT preview and the draft saved
// as you type. The page works without it (plain form posts); this only makes it fast.
(function () {
  "use strict";
  var form = document.getElementById("note");
  if (!form) return;
  var list = document.getElementById("muscle-list");
  var search = document.getElementById("muscle-search");
  var filterText = document.getElementById("muscle-filter");
  var sites = document.getElementById("sites");
  var template = document.getElementById("site-template");
  var status = document.getElementById("save-status");
  var cpt = JSON.parse(form.dataset.cpt || "[]");
  var region = null; // {key, side, view, label, mark}
  var timer = null, inflight = null, dirty = false, submitting = false;

  // --- muscle list: filtered by region and search ------------------------------------
  list.classList.add("js-filtered");
  function applyFilter() {
    var q = search.value.trim().toLowerCase();
    var shown = 0;
    Array.prototype.forEach.call(list.children, function (li) {
      var keys = li.dataset.chart.split(" ");
      var ok = (!region || keys.indexOf(region.key) >= 0) && (!q || li.dataset.search.indexOf(q) >= 0);
      li.hidden = !ok || (!region && !q);
      if (!li.hidden) shown++;
    });
    if (region) filterText.textContent = shown + " muscle(s) in " + region.label + (q ? " matching “" + q + "”" : "") + ".";
    else if (q) filterText.textContent = shown + " muscle(s) matching “" + q + "”.";
    else filterText.textContent = "Click a region of the chart or type a name.";
  }
  search.addEventListener("input", function () {
    // Typing searches the whole catalogue: the region clicked before no longer applies.
    if (region && search.value.trim()) {
      region = null;
      document.querySelectorAll("a.region.selected").forEach(function (x) { x.classList.remove("selected"); });
    }
    applyFilter();
  });
  search.addEventListener("keydown", function (e) {
    if (e.key === "Enter") {
      e.preventDefault();
      var first = list.querySelector("li:not([hidden]) button");
      if (first) first.click();
    }
  });

  // --- body chart ---------------------------------------------------------------------
  function svgPoint(svg, e) {
    var pt = svg.createSVGPoint();
    pt.x = e.clientX; pt.y = e.clientY;
    var p = pt.matrixTransform(svg.getScreenCTM().inverse());
    return Math.round(p.x * 10) / 10 + "," + Math.round(p.y * 10) / 10;
  }
  document.querySelectorAll("a.region").forEach(function (a) {
    a.addEventListener("click", function (e) {
      e.preventDefault();
      document.querySelectorAll("a.region.selected").forEach(function (x) { x.classList.remove("selected"); });
      a.classList.add("selected");
      var svg = a.ownerSVGElement;
      region = {
        key: a.dataset.chartKey, side: a.dataset.side, view: a.dataset.view,
        label: a.getAttribute("aria-label"),
        mark: e.detail ? a.dataset.view + ":" + svgPoint(svg, e) : ""
      };
      search.value = "";
      applyFilter();
    });
  });

  // One tab stop per view: arrow keys move between its regions (Enter lists the muscles).
  document.querySelectorAll("svg.body-chart").forEach(function (svg) {
    var links = Array.prototype.slice.call(svg.querySelectorAll("a.region"));
    links.forEach(function (a, k) {
      a.setAttribute("tabindex", k === 0 ? "0" : "-1");
      a.addEventListener("keydown", function (e) {
        var step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[e.key];
        if (!step) return;
        e.preventDefault();
        var next = links[(k + step + links.length) % links.length];
        links.forEach(function (x) { x.setAttribute("tabindex", "-1"); });
        next.setAttribute("tabindex", "0");
        next.focus();
      });
    });
  });

  // --- site rows ------------------------------------------------------------------------
  function nextIndex() {
    var n = 0;
    sites.querySelectorAll("li.site").forEach(function (li) { n = Math.max(n, +li.dataset.index + 1); });
    return n;
  }
  function drawMark(mark, name) {
    if (!mark) return;
    var parts = mark.split(":"), xy = parts[1].split(",");
    var svg = document.querySelector("svg.body-chart[data-view='" + parts[0] + "'] g.marks");
    var c = document.createElementNS("http://www.w3.org/2000/svg", "circle");
    c.setAttribute("cx", xy[0]); c.setAttribute("cy", xy[1]); c.setAttribute("r", "1.8");
    c.setAttribute("class", "tp-mark");
    var t = document.createElementNS("http://www.w3.org/2000/svg", "title");
    t.textContent = name; c.appendChild(t);
    svg.appendChild(c);
  }
  function addSite(muscleId, name, opts) {
    var i = nextIndex();
    var html = template.innerHTML.replace(/__i__/g, String(i));
    var holder = document.createElement("ol");
    holder.innerHTML = html;
    var li = holder.firstElementChild;
    li.dataset.muscle = muscleId;
    li.querySelector("[name$='-muscle_id']").value = muscleId;
    li.querySelector(".site-name").textContent = name;
    li.querySelector("button.remove").setAttribute("aria-label", "Remove " + name);
    var side = opts && opts.side;
    if (region && !side) {
      side = region.side;
      li.querySelector("[name$='-mark']").value = region.mark;
      drawMark(region.mark, name);
      region.mark = "";  // one clicked point marks one site
    }
    sites.appendChild(li);
    if (side) {
      li.querySelector("[name$='-side']").value = side;
      changed();
      if (!opts || !opts.quiet) li.querySelector("input.depth").focus();
    } else {
      askSide(li, muscleId, name);
    }
    return li;
  }
  // A muscle added by name has no side yet: ask (left, right or both), never assume one.
  function askSide(li, muscleId, name) {
    var box = document.createElement("div");
    box.className = "side-ask";
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", "Which side for " + name + "?");
    var q = document.createElement("span"); q.textContent = "Which side?"; box.appendChild(q);
    ["left", "right", "both"].forEach(function (s) {
      var b = document.createElement("button");
      b.type = "button"; b.className = "secondary"; b.dataset.side = s;
      b.textContent = s.charAt(0).toUpperCase() + s.slice(1);
      box.appendChild(b);
    });
    box.addEventListener("click", function (e) {
      var b = e.target.closest("button[data-side]");
      if (!b) return;
      var s = b.dataset.side;
      li.querySelector("[name$='-side']").value = s === "both" ? "left" : s;
      box.remove();
      if (s === "both") addSite(muscleId, name, { side: "right", quiet: true });
      changed();
      li.querySelector("input.depth").focus();
    });
    li.querySelector(".site-head").after(box);
    changed();
    box.querySelector("button").focus();
  }
  list.addEventListener("click", function (e) {
    var b = e.target.closest("button.muscle");
    if (!b) return;
    e.preventDefault();
    addSite(b.value, b.textContent.trim());
  });
  var favs = document.getElementById("fav-muscles");
  if (favs) favs.addEventListener("click", function (e) {
    var b = e.target.closest("button.muscle");
    if (!b) return;
    e.preventDefault();
    region = null;  // a favourite has no clicked side: it is asked
    addSite(b.value, b.textContent.trim());
  });
  // SOAP snippets: the chosen one is appended to its section's text, to edit there.
  document.querySelectorAll("select.snippet-pick").forEach(function (pick) {
    pick.addEventListener("change", function (e) {
      e.stopPropagation();
      if (!pick.value) return;
      var area = document.getElementById(pick.dataset.target);
      area.value = area.value ? area.value.replace(/\s*$/, "") + "\n" + pick.value : pick.value;
      pick.value = "";
      changed();
      area.focus();
    });
  });
  sites.addEventListener("click", function (e) {
    var b = e.target.closest("button.remove");
    if (!b) return;
    b.closest("li.site").remove();
    changed();
  });

  // After "copy last session's needling": the trigger point state of every site at once.
  var tpAll = document.getElementById("tp-all");
  var tpAllSelect = document.getElementById("tp-all-select");
  if (tpAllSelect) tpAllSelect.addEventListener("change", function (e) {
    e.stopPropagation();
    if (!tpAllSelect.value) return;
    sites.querySelectorAll("select[name$='-trigger_point']").forEach(function (s) { s.value = tpAllSelect.value; });
    changed();
  });

  function updateCount() {
    var rows = sites.querySelectorAll("li.site");
    if (tpAll) tpAll.hidden = rows.length < 2;
    document.getElementById("site-count").textContent = "(" + rows.length + ")";
    var muscles = {};
    rows.forEach(function (li) { muscles[li.dataset.muscle] = true; });
    var n = Object.keys(muscles).length;
    var code = null;
    cpt.forEach(function (c) { if (n >= c.min && (c.max === null || n <= c.max)) code = c; });
    document.getElementById("cpt-preview").textContent = code
      ? "Signing will bill CPT " + code.code + " (" + n + " muscle" + (n === 1 ? "" : "s") + "; " + code.descriptor + ")."
      : "No needling yet: no dry needling code will be billed.";
  }

  // --- the draft, saved as you type ------------------------------------------------------
  function changed() {
    dirty = true;
    updateCount();
    status.textContent = "Unsaved changes…";
    clearTimeout(timer);
    timer = setTimeout(saveDraft, 700);
  }
  // Fields the clinician has typed in or chosen: a draft's problems are shown for those
  // only (no "choose the side" beside a muscle just added, before anything was typed).
  var touched = {};
  function touch(e) { if (e.target && e.target.name) touched[e.target.name] = true; }
  form.addEventListener("input", touch, true);
  form.addEventListener("change", touch, true);
  form.addEventListener("input", function (e) { if (e.target !== search) changed(); });
  form.addEventListener("change", function (e) { if (e.target !== search && e.target !== tpAllSelect && !e.target.classList.contains("snippet-pick")) changed(); });

  function showProblems(body) {
    var blockers = document.getElementById("blockers");
    blockers.textContent = "";
    (body.blockers || []).forEach(function (b) {
      var p = document.createElement("p"); p.className = "finding action-refuse"; p.textContent = b;
      blockers.appendChild(p);
    });
    sites.querySelectorAll("li.site").forEach(function (li) {
      var box = li.querySelector(".site-problems");
      box.textContent = "";
      var i = li.dataset.index;
      (body.findings[i] || []).forEach(function (f) {
        var p = document.createElement("p");
        p.className = "finding action-" + f.action;
        var label = f.action === "refuse" ? "Refused" : f.action === "refuse_override" ? "Refused unless you write a reason" : "Caution";
        var strong = document.createElement("strong"); strong.textContent = label + ": ";
        p.appendChild(strong);
        p.appendChild(document.createTextNode(f.message + " "));
        if (f.sources && f.sources.length) {
          var s = document.createElement("span"); s.className = "sources";
          s.textContent = "Sources: " + f.sources.map(function (x) { return x.citation + (x.verified === true ? "" : " (unverified)"); }).join("; ");
          p.appendChild(s);
        }
        box.appendChild(p);
        if (f.action === "refuse_override") li.querySelector("details.more").open = true;
      });
      Object.keys(body.errors || {}).forEach(function (k) {
        if (k.indexOf("sites." + i + ".") !== 0) return;
        var field = form.elements[k.replace(/\./g, "-")];
        if (field && field.name && !touched[field.name] && !field.value) return;  // not yet typed
        body.errors[k].forEach(function (m) {
          var p = document.createElement("p"); p.className = "error"; p.textContent = m; box.appendChild(p);
        });
      });
      if ((body.left_out || []).indexOf(+i) >= 0) {
        var p = document.createElement("p"); p.className = "error";
        p.textContent = "This site is not in the saved draft yet: complete it or resolve the problem above.";
        box.appendChild(p);
      }
    });
  }

  function saveDraft() {
    clearTimeout(timer);
    if (submitting) return Promise.resolve();
    if (inflight) { inflight.then(function () { if (dirty) saveDraft(); }); return inflight; }
    dirty = false;
    var data = new FormData(form);
    status.textContent = "Saving draft…";
    inflight = fetch(form.dataset.autosave, { method: "POST", body: data, credentials: "same-origin" })
      .then(function (r) { return r.json().then(function (b) { return { ok: r.ok, body: b, status: r.status }; }); })
      .then(function (res) {
        var b = res.body;
        if (res.status === 401) { status.textContent = "You are signed out: sign in again in another tab, then keep typing."; return; }
        if (res.status === 503) {
          status.textContent = "The clinic's records are busy: this draft is not saved yet; trying again in a moment.";
          dirty = true;
          setTimeout(saveDraft, 2000);
          return;
        }
        if (b.stale) {
          status.textContent = "This note was changed elsewhere. Reload to see the latest version (copy any text you need first).";
          var link = document.createElement("a"); link.href = location.pathname; link.textContent = " Reload";
          status.appendChild(link);
          return;
        }
        if (b.saved) {
          form.elements.session_id.value = b.session_id;
          form.elements.version.value = b.version;
          form.action = b.action;
          if (location.pathname !== b.url) history.replaceState(null, "", b.url);
          var sub = document.querySelector("h1 .sub");
          if (sub) sub.textContent = sub.textContent.replace(/· new$/, "· draft");
          status.textContent = "Draft saved at " + b.saved_at + (b.left_out.length ? " (some sites not yet: see below)." : ".");
        } else {
          status.textContent = "Not saved: " + ((b.errors && b.errors[""]) || ["see the problems below"]).join(" ");
        }
        showProblems(b);
      })
      .catch(function () { status.textContent = "Offline: the draft will be saved when the connection returns."; dirty = true; })
      .then(function () { inflight = null; });
    return inflight;
  }

  // Signing or saving waits for a draft save under way, so the version is current.
  form.addEventListener("submit", function (e) {
    var submitter = e.submitter;
    if (submitter && submitter.name === "add_muscle") return;
    if (inflight || dirty) {
      e.preventDefault();
      clearTimeout(timer);
      var p = inflight || Promise.resolve();
      p.then(function () {
        // form.submit() sends no submitter: carry the button's intent in a hidden field.
        if (submitter && submitter.name) {
          var hidden = document.createElement("input");
          hidden.type = "hidden"; hidden.name = submitter.name; hidden.value = submitter.value;
          form.appendChild(hidden);
        }
        clearTimeout(timer);
        submitting = true;
        form.submit();
      });
      return;
    }
    // The form post saves everything: no draft save may race it.
    clearTimeout(timer);
    submitting = true;
  });
  window.addEventListener("pagehide", function () {
    // A first save still under way would create the draft twice: let it finish alone.
    var creating = inflight && !form.elements.session_id.value;
    if (dirty && !submitting && !creating && navigator.sendBeacon) navigator.sendBeacon(form.dataset.autosave, new FormData(form));
  });
  var copy = document.getElementById("copy-last");
  if (copy) copy.addEventListener("click", function (e) {
    if (!dirty && !inflight) return;
    e.preventDefault();
    saveDraft().then(function () {
      var sid = form.elements.session_id.value;
      location.href = sid ? "/sessions/" + sid + "?copy=last" : copy.href;
    });
  });
  applyFilter();
  updateCount();
  if (/copy=last/.test(location.search)) changed();
})();
