// imgsearch web page: search, per-user results with explanations, interactions, side by side.
// Plain JS, no build step. Talks to the gateway only (/api/*, /thumbs/*, /images/*).
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const state = {
  config: { users: ["alice", "bob"], default_weight: 0.5, k: 20 },
  searches: 0,          // completed renders (tests wait on body[data-searches])
  lastRanks: new Map(), // "user\u0000query" -> Map(image_id -> rank), to show what moved
  done: new Map(),      // user -> Map(image_id -> Set(event types))
  liveTimer: null,
  inflight: 0,
  token: sessionStorage.getItem("imgsearch.token") || "",  // outside demo mode: the user's JWT
};

function setStatus(text, isError = false) {
  const el = $("#status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

function guestId() {
  const rnd = Math.random().toString(16).slice(2, 8);
  return `guest-${rnd}`;
}

function currentUser() { return $("#user").value.trim(); }
function secondUser() { return $("#user2").value.trim(); }
function weight() { return Number($("#weight").value); }
function mmrLambda() { return Number($("#mmr").value); }

function clusterColour(id) {
  if (id < 0) return "#adb5bd";
  return `hsl(${(id * 67) % 360}deg 65% 50%)`;
}

function fmt(x) { return (Math.round(x * 1000) / 1000).toFixed(3); }

function doneSet(user, imageId) {
  if (!state.done.has(user)) state.done.set(user, new Map());
  const m = state.done.get(user);
  if (!m.has(imageId)) m.set(imageId, new Set());
  return m.get(imageId);
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  const resp = await fetch(path, { ...options, headers });
  let body = null;
  try { body = await resp.json(); } catch (_) { body = null; }
  if (!resp.ok) {
    const err = (body && body.error) || { code: `http_${resp.status}`, message: resp.statusText };
    const e = new Error(err.message);
    e.code = err.code;
    e.status = resp.status;
    throw e;
  }
  return body;
}

// ------------------------------------------------------------------ search
async function runSearch() {
  const q = $("#q").value.trim();
  const user = currentUser();
  if (!q) { setStatus("Type a query first."); return; }
  if (!user) { setStatus("Choose a user (or type a user id).", true); return; }
  const users = [user];
  if ($("#sbs").checked && secondUser() && secondUser() !== user) users.push(secondUser());
  syncUrl(q, users);
  state.inflight += 1;
  document.body.dataset.inflight = String(state.inflight);
  $("#results").dataset.state = "loading";
  setStatus(`Searching “${q}” for ${users.join(" and ")}…`);
  const t0 = performance.now();
  const results = await Promise.all(users.map((u) => searchOne(q, u)));
  state.inflight -= 1;
  document.body.dataset.inflight = String(state.inflight);
  render(q, results);
  const ms = Math.round(performance.now() - t0);
  const failed = results.filter((r) => r.error);
  if (failed.length) {
    setStatus(failed.map((r) => `${r.user}: ${r.error.message}`).join(" · "), true);
  } else {
    setStatus(`“${q}” · weight ${weight().toFixed(2)} · ${ms} ms · hover a result to see why it is there; ` +
      "View / Fav / Download teach the ranker your style.");
  }
  $("#results").dataset.state = failed.length ? "error" : "ready";
  state.searches += 1;
  document.body.dataset.searches = String(state.searches);
}

async function searchOne(q, user, extra = {}) {
  // extra (issue 15): similar_to, search_after; a similar_to search has no text
  const base = { user, k: String(state.config.k || 20), weight: String(weight()), ...extra };
  if (!extra.similar_to) base.q = q;
  const params = new URLSearchParams(base);
  params.set("mmr_lambda", String(mmrLambda()));
  try {
    return { user, resp: await api(`/api/search?${params}`) };
  } catch (e) {
    return { user, error: { code: e.code || "network", message: e.message, status: e.status } };
  }
}

// "Similar": the query is that indexed image's stored vector (similar_to), for the users shown
async function runSimilar(hit) {
  const user = currentUser();
  if (!user) { setStatus("Choose a user (or type a user id).", true); return; }
  const users = [user];
  if ($("#sbs").checked && secondUser() && secondUser() !== user) users.push(secondUser());
  const label = `like ${hit.image_id}`;
  $("#results").dataset.state = "loading";
  setStatus(`Searching images ${label} for ${users.join(" and ")}…`);
  const results = await Promise.all(users.map((u) => searchOne(label, u, { similar_to: hit.image_id })));
  for (const r of results) r.extra = { similar_to: hit.image_id };
  render(label, results);
  const failed = results.filter((r) => r.error);
  setStatus(failed.length ? failed.map((r) => `${r.user}: ${r.error.message}`).join(" · ") : `Images ${label}.`,
    Boolean(failed.length));
  $("#results").dataset.state = failed.length ? "error" : "ready";
}

// the next page of the same ranking (search_after = the last page's cursor): its order is kept even if
// the profile changed since, and a ranking made afresh goes on after the last hit shown
async function nextPage(q, user, resp, extra, col, button) {
  button.disabled = true;
  const r = await searchOne(q, user, { ...extra, search_after: resp.cursor });
  button.remove();
  if (r.error) { setStatus(`${user}: ${r.error.message}`, true); return; }
  const grid = $(".grid", col);
  for (const hit of r.resp.hits) grid.append(renderCard(user, hit, undefined, false));
  if (r.resp.has_more && r.resp.cursor) col.append(pageButton(q, user, r.resp, extra, col));
}

function pageButton(q, user, resp, extra, col) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "next-page";
  b.textContent = `More (page ${resp.page + 1})`;
  b.addEventListener("click", () => nextPage(q, user, resp, extra, col, b));
  return b;
}

function render(q, results) {
  const root = $("#results");
  root.replaceChildren();
  root.classList.toggle("side-by-side", results.length > 1);
  for (const r of results) root.append(renderColumn(q, r));
}

function renderColumn(q, { user, resp, error, extra }) {
  const col = document.createElement("section");
  col.className = "column";
  col.dataset.user = user;
  const head = document.createElement("div");
  head.className = "column-head";
  const h2 = document.createElement("h2");
  h2.textContent = user;
  head.append(h2);
  col.append(head);
  if (error) {
    const box = document.createElement("div");
    box.className = "error-box";
    box.dataset.code = error.code;
    box.textContent = error.status === 504
      ? `No answer in time (${error.message})`
      : `${error.code}: ${error.message}`;
    col.append(box);
    return col;
  }
  const badge = document.createElement("span");
  badge.className = "badge" + (resp.personalized ? " personalized" : "");
  badge.textContent = resp.personalized
    ? `personalized · ${resp.ranker} · w ${resp.personalization_weight.toFixed(2)}`
    : "relevance only";
  head.append(badge);
  const timing = document.createElement("span");
  timing.className = "notes";
  const t = resp.timings_ms || {};
  timing.textContent = ["embed", "knn", "rank"].filter((k) => k in t).map((k) => `${k} ${t[k].toFixed(0)} ms`).join(" · ");
  head.append(timing);
  if (resp.notes && resp.notes.length) {
    const notes = document.createElement("div");
    notes.className = "notes";
    notes.textContent = resp.notes.join(" · ");
    col.append(notes);
  }
  const key = `${user}\u0000${q}`;
  const before = state.lastRanks.get(key);
  const now = new Map();
  const grid = document.createElement("div");
  grid.className = "grid";
  for (const hit of resp.hits) {
    now.set(hit.image_id, hit.rank);
    grid.append(renderCard(user, hit, before ? before.get(hit.image_id) : undefined, Boolean(before)));
  }
  state.lastRanks.set(key, now);
  col.dataset.personalized = String(resp.personalized);
  col.dataset.ranking = resp.hits.map((h) => h.image_id).join(",");
  col.append(grid);
  if (!resp.hits.length) {
    const empty = document.createElement("div");
    empty.className = "notes";
    empty.textContent = "No results (is anything indexed yet?)";
    col.append(empty);
  }
  if (resp.has_more && resp.cursor) col.append(pageButton(q, user, resp, extra || {}, col));
  return col;
}

function renderCard(user, hit, previousRank, hadPrevious) {
  const card = $("#card-template").content.firstElementChild.cloneNode(true);
  card.dataset.imageId = hit.image_id;
  card.dataset.rank = String(hit.rank);
  card.dataset.cluster = String(hit.cluster_id);
  card.dataset.user = user;
  const img = $(".thumb", card);
  img.addEventListener("error", () => noPreview(img, hit));
  img.src = hit.thumb_url;
  img.alt = hit.image_id;
  let rankText = `#${hit.rank}`;
  if (hadPrevious) {
    if (previousRank === undefined) { rankText += " new"; card.classList.add("moved-up"); }
    else if (previousRank > hit.rank) { rankText += ` ▲${previousRank - hit.rank}`; card.classList.add("moved-up"); }
    else if (previousRank < hit.rank) { rankText += ` ▼${hit.rank - previousRank}`; }
  }
  $(".rank", card).textContent = rankText;
  const cap = $(".caption", card);
  const dot = document.createElement("span");
  dot.className = "cluster-dot";
  dot.style.background = clusterColour(hit.cluster_id);
  cap.append(dot, document.createTextNode(hit.image_id));
  cap.title = hit.image_id;
  $(".explain", card).append(explanation(hit));
  const done = doneSet(user, hit.image_id);
  markDone(card, done);
  card.addEventListener("mouseenter", () => placeExplanation(card));
  card.addEventListener("focus", () => placeExplanation(card));
  $(".thumb-wrap", card).addEventListener("click", () => openLightbox(user, hit));
  $(".act-view", card).addEventListener("click", () => openLightbox(user, hit));
  $(".act-fav", card).addEventListener("click", () => interact(user, hit, "favorite", card));
  $(".act-dl", card).addEventListener("click", () => download(user, hit, card));
  $(".act-hide", card).addEventListener("click", async () => {
    if (await interact(user, hit, "hide", card)) card.classList.add("hidden-by-user");
  });
  $(".act-nms", card).addEventListener("click", () => interact(user, hit, "not_my_style", card));
  $(".act-similar", card).addEventListener("click", () => runSimilar(hit));
  return card;
}

// an image ingested inline has no copy at the gateway (404 no_source): say so instead of a broken image
function noPreview(img, hit) {
  const box = document.createElement("div");
  box.className = "thumb-missing";
  box.dataset.imageId = hit.image_id;
  box.textContent = "no preview (image sent inline)";
  img.replaceWith(box);
}

function placeExplanation(card) {
  // keep the explanation inside the window at the grid's edges
  const r = card.getBoundingClientRect();
  const half = 125;
  const mid = r.left + r.width / 2;
  card.classList.toggle("edge-right", mid + half > document.documentElement.clientWidth - 4);
  card.classList.toggle("edge-left", mid - half < 4);
  card.classList.toggle("edge-bottom", r.bottom + 200 > window.innerHeight && r.top > 220);
}

function bar(value, cls = "") {
  const b = document.createElement("div");
  b.className = `bar ${cls}`;
  const i = document.createElement("i");
  i.style.width = `${Math.max(0, Math.min(1, value)) * 100}%`;
  b.append(i);
  return b;
}

function explanation(hit) {
  const frag = document.createDocumentFragment();
  const h4 = document.createElement("h4");
  h4.textContent = `#${hit.rank} ${hit.image_id}`;
  frag.append(h4);
  const table = document.createElement("table");
  const rows = [
    ["k-NN score", hit.knn_score, ""],
    ["personal score", hit.personal_score, "p"],
    ["blended", hit.blended_score, "b"],
  ];
  for (const [label, value, cls] of rows) {
    const tr = document.createElement("tr");
    const a = document.createElement("td"); a.textContent = label;
    const b = document.createElement("td"); b.append(bar(value, cls));
    const c = document.createElement("td"); c.className = "v"; c.textContent = fmt(value);
    tr.append(a, b, c);
    table.append(tr);
  }
  const tr = document.createElement("tr");
  const a = document.createElement("td"); a.textContent = "cluster (style)";
  const b = document.createElement("td"); b.colSpan = 2; b.className = "v";
  const dot = document.createElement("span"); dot.className = "cluster-dot"; dot.style.background = clusterColour(hit.cluster_id);
  b.append(dot, document.createTextNode(String(hit.cluster_id)));
  tr.append(a, b);
  table.append(tr);
  frag.append(table);
  const drivers = document.createElement("div");
  drivers.className = "drivers";
  if (hit.drivers && hit.drivers.length) {
    drivers.append(document.createTextNode("because you recently:"));
    const ul = document.createElement("ul");
    for (const d of hit.drivers) {
      const li = document.createElement("li");
      const [kind, ...rest] = d.split(":");
      li.textContent = `${kind} ${rest.join(":")}`;
      ul.append(li);
    }
    drivers.append(ul);
  } else {
    drivers.textContent = "no interactions behind this style yet";
  }
  frag.append(drivers);
  return frag;
}

function markDone(card, done) {
  $(".act-view", card).classList.toggle("done", done.has("view"));
  const fav = $(".act-fav", card);
  fav.classList.toggle("done", done.has("favorite"));
  fav.textContent = done.has("favorite") ? "★ Fav" : "☆ Fav";
  $(".act-dl", card).classList.toggle("done", done.has("download"));
  $(".act-hide", card).classList.toggle("done", done.has("hide"));
  $(".act-nms", card).classList.toggle("done", done.has("not_my_style"));
}

// ------------------------------------------------------------------ interactions
async function interact(user, hit, eventType, card) {
  try {
    await api("/api/interactions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user_id: user, image_id: hit.image_id, event_type: eventType }),
    });
  } catch (e) {
    setStatus(`Could not record ${eventType}: ${e.message}`, true);
    return false;
  }
  const done = doneSet(user, hit.image_id);
  done.add(eventType);
  document.querySelectorAll(`.card[data-user="${CSS.escape(user)}"][data-image-id="${CSS.escape(hit.image_id)}"]`)
    .forEach((c) => markDone(c, done));
  if (card) markDone(card, done);
  const count = [...(state.done.get(user) || new Map()).values()].reduce((n, s) => n + s.size, 0);
  document.body.dataset.interactions = String((Number(document.body.dataset.interactions) || 0) + 1);
  setStatus(`${eventType} of ${hit.image_id} recorded for ${user} (${count} this session)` +
    ($("#live").checked ? " — re-ranking…" : " — search again to see its effect."));
  if ($("#live").checked) {
    clearTimeout(state.liveTimer);
    state.liveTimer = setTimeout(() => { if (!state.inflight) runSearch(); }, 900);
  }
  return true;
}

function download(user, hit, card) {
  interact(user, hit, "download", card);
  const a = document.createElement("a");
  a.href = `${hit.image_url}?download=1`;
  a.download = "";
  document.body.append(a);
  a.click();
  a.remove();
}

function openLightbox(user, hit) {
  $("#lightbox-img").src = hit.image_url;
  $("#lightbox-img").alt = hit.image_id;
  $("#lightbox-caption").textContent =
    `${hit.image_id} · cluster ${hit.cluster_id} · k-NN ${fmt(hit.knn_score)} · personal ${fmt(hit.personal_score)}`;
  $("#lightbox").hidden = false;
  interact(user, hit, "view", null);
}

function closeLightbox() { $("#lightbox").hidden = true; }

// ------------------------------------------------------------------ users, controls
function renderPills() {
  const pills = $("#user-pills");
  pills.replaceChildren();
  const list = $("#known-users");
  list.replaceChildren();
  for (const u of state.config.users) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "pill";
    b.dataset.user = u;
    b.textContent = u;
    b.addEventListener("click", () => setUser(u));
    pills.append(b);
    const opt = document.createElement("option");
    opt.value = u;
    list.append(opt);
  }
  const guest = document.createElement("button");
  guest.type = "button";
  guest.className = "pill";
  guest.dataset.user = "__new__";
  guest.textContent = "new user";
  guest.title = "a fresh user id with no history";
  guest.addEventListener("click", () => setUser(guestId()));
  pills.append(guest);
}

function highlightPill() {
  const u = currentUser();
  document.querySelectorAll(".pill").forEach((p) => {
    const isGuest = p.dataset.user === "__new__" && u.startsWith("guest-");
    p.classList.toggle("active", p.dataset.user === u || isGuest);
  });
}

function setUser(u) {
  $("#user").value = u;
  highlightPill();
  if ($("#q").value.trim()) runSearch();
}

function syncUrl(q, users) {
  const p = new URLSearchParams({ q, user: users[0], weight: weight().toFixed(2) });
  if (mmrLambda() < 1) p.set("mmr_lambda", mmrLambda().toFixed(2));
  if (users[1]) p.set("compare", users[1]);
  history.replaceState(null, "", `?${p}`);
}

async function pollHealth() {
  const el = $("#health");
  try {
    const h = await api("/healthz");
    el.textContent = "gateway ok";
    el.className = "health ok";
    el.title = JSON.stringify(h);
  } catch (e) {
    el.textContent = "gateway unhealthy";
    el.className = "health bad";
    el.title = e.message;
  }
}

// outside demo mode the user is whoever the token says; a token may come in the URL fragment (#token=…)
function takeTokenFromFragment() {
  const frag = new URLSearchParams(location.hash.slice(1));
  if (frag.get("token")) {
    state.token = frag.get("token");
    sessionStorage.setItem("imgsearch.token", state.token);
    history.replaceState(null, "", location.pathname + location.search);
  }
}

async function signIn() {
  try {
    const me = await api("/api/whoami");
    $("#user").value = me.user_id;
    $("#signin").hidden = true;
    setStatus(`Signed in as ${me.user_id}.`);
    return true;
  } catch (e) {
    state.token = "";
    sessionStorage.removeItem("imgsearch.token");
    $("#signin").hidden = false;
    $("#signin-status").textContent = e.status === 401 ? `not signed in: ${e.message}` : e.message;
    return false;
  }
}

async function setUpAuth() {
  document.body.dataset.demo = String(Boolean(state.config.demo));
  if (state.config.demo) { $("#demo-banner").hidden = false; return; }
  // a signed-in user searches and acts as themself only: no user switching, no side by side
  $("#user").readOnly = true;
  document.querySelector("fieldset.compare").hidden = true;
  $("#user-pills").hidden = true;
  $("#signin").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    state.token = $("#token").value.trim();
    sessionStorage.setItem("imgsearch.token", state.token);
    $("#token").value = "";
    if (await signIn() && $("#q").value.trim()) runSearch();
  });
  takeTokenFromFragment();
  if (state.token) await signIn(); else $("#signin").hidden = false;
}

async function init() {
  try { state.config = await api("/api/config"); } catch (_) { /* defaults */ }
  await setUpAuth();
  if (state.config.demo) renderPills();
  const params = new URLSearchParams(location.search);
  $("#weight").value = params.get("weight") || String(state.config.default_weight ?? 0.5);
  $("#weight-value").textContent = weight().toFixed(2);
  $("#mmr").value = params.get("mmr_lambda") || String(state.config.default_mmr_lambda ?? 1);
  $("#mmr-value").textContent = mmrLambda().toFixed(2);
  if (state.config.demo) {
    $("#user").value = params.get("user") || state.config.users[0] || guestId();
    $("#user2").value = params.get("compare") || state.config.users[1] || "";
    $("#sbs").checked = Boolean(params.get("compare"));
  }
  $("#q").value = params.get("q") || "";
  highlightPill();

  $("#search-form").addEventListener("submit", (ev) => { ev.preventDefault(); runSearch(); });
  $("#user").addEventListener("change", () => { highlightPill(); if ($("#q").value.trim()) runSearch(); });
  $("#user").addEventListener("input", highlightPill);
  $("#weight").addEventListener("input", () => { $("#weight-value").textContent = weight().toFixed(2); });
  $("#weight").addEventListener("change", () => { if ($("#q").value.trim()) runSearch(); });
  $("#mmr").addEventListener("input", () => { $("#mmr-value").textContent = mmrLambda().toFixed(2); });
  $("#mmr").addEventListener("change", () => { if ($("#q").value.trim()) runSearch(); });
  $("#sbs").addEventListener("change", () => { if ($("#q").value.trim()) runSearch(); });
  $("#user2").addEventListener("change", () => { if ($("#sbs").checked && $("#q").value.trim()) runSearch(); });
  $("#lightbox").addEventListener("click", closeLightbox);
  $("#lightbox-img").addEventListener("error", () => {
    $("#lightbox-caption").textContent = `${$("#lightbox-img").alt}: no preview (the image was sent inline; ` +
      "the gateway keeps no copy)";
  });
  document.addEventListener("keydown", (ev) => { if (ev.key === "Escape") closeLightbox(); });
  pollHealth();
  setInterval(pollHealth, 15000);
  document.body.dataset.ready = "1";
  if ($("#q").value) runSearch();
}

document.addEventListener("DOMContentLoaded", init);
