// fastmf web: the page's script. Plain JavaScript, no libraries; every text from the server is set
// with textContent (never parsed as HTML).
"use strict";

const state = {
  info: null,
  ratings: new Map(),   // String(item id) -> {item, value, record}
  onboardingOffset: 0,
  nextOffset: null,
  request: 0,           // the number of the latest recommendation request (older answers are dropped)
  searchRequest: 0,
};

function $(id) { return document.getElementById(id); }

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

async function api(path, options) {
  const response = await fetch(path, options);
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    throw new Error(body && body.error ? body.error : `${response.status} ${response.statusText}`);
  }
  return body;
}

function ratingValues() {
  const info = state.info;
  if (info.feedback !== "ratings" || !info.rating_scale) return [1];
  const [lo, hi] = info.rating_scale;
  const values = [];
  for (let v = Math.ceil(lo); v <= Math.floor(hi); v += 1) values.push(v);
  return values.length ? values : [hi];
}

function metaLine(rec) {
  const parts = [];
  if (rec.year) parts.push(String(rec.year));
  if (rec.genres && rec.genres.length) parts.push(rec.genres.join(", "));
  if (rec.cold) parts.push("new: no ratings yet, placed by its features");
  else if (rec.n_ratings !== undefined) parts.push(`${rec.n_ratings.toLocaleString()} ratings`);
  return parts.join(" · ");
}

function titleOf(rec) {
  return rec.display_title || rec.title || `item ${rec.item}`;
}

function stars(rec) {
  const box = el("span", "stars");
  const mine = state.ratings.get(String(rec.item));
  if (state.info.feedback !== "ratings") {
    const like = el("button", "like" + (mine ? " on" : ""), mine ? "liked" : "like");
    like.type = "button";
    like.dataset.value = "1";
    like.setAttribute("aria-label", `like ${titleOf(rec)}`);
    like.addEventListener("click", () => rate(rec, mine ? null : 1));
    box.appendChild(like);
    return box;
  }
  for (const v of ratingValues()) {
    const b = el("button", mine && v <= mine.value ? "on" : "", "\u2605");
    b.type = "button";
    b.dataset.value = String(v);
    b.title = `rate ${v} of ${ratingValues().slice(-1)[0]}`;
    b.setAttribute("aria-label", `rate ${titleOf(rec)} ${v} of ${ratingValues().slice(-1)[0]}`);
    b.addEventListener("click", () => rate(rec, mine && mine.value === v ? null : v));
    box.appendChild(b);
  }
  return box;
}

function itemRow(rec, extra) {
  const li = el("li");
  li.dataset.item = String(rec.item);
  li._record = rec;  // so that its stars can be redrawn
  const text = el("div");
  const title = el("div", "title");
  if (state.info.similar_items) {
    const open = el("button", null, titleOf(rec));
    open.type = "button";
    open.className = "open-similar";
    open.title = "show similar movies";
    open.addEventListener("click", () => showSimilar(rec.item));
    title.appendChild(open);
  } else {
    title.textContent = titleOf(rec);
  }
  text.appendChild(title);
  const meta = metaLine(rec);
  if (meta) text.appendChild(el("div", "meta", meta));
  if (extra) extra(text);
  li.appendChild(text);
  li.appendChild(stars(rec));
  return li;
}

function fill(list, records, extra, empty) {
  list.replaceChildren();
  if (!records.length && empty) list.appendChild(el("li", "muted", empty));
  for (const rec of records) list.appendChild(itemRow(rec, extra));
}

// ------------------------------------------------------------------ rating and recommending
function rate(rec, value) {
  const key = String(rec.item);
  if (value === null) state.ratings.delete(key);
  else state.ratings.set(key, { item: rec.item, value, record: rec });
  refreshStars();
  renderMine();
  recommend();
}

function refreshStars() {
  // redraw the stars of every visible row of an item whose rating changed
  for (const li of document.querySelectorAll("li[data-item]")) {
    const rec = li._record;
    if (rec) li.replaceChild(stars(rec), li.querySelector(".stars"));
  }
}

function renderMine() {
  const list = $("my-ratings");
  const mine = [...state.ratings.values()];
  $("mine-title").textContent = `Your ratings (${mine.length})`;
  $("clear").hidden = !mine.length;
  fill(list, mine.map((r) => r.record), null, "none yet");
}

async function recommend() {
  const number = ++state.request;
  const ratings = [...state.ratings.values()].map((r) => [r.item, r.value]);
  const status = $("recs-status");
  try {
    const started = performance.now();
    const out = await api("/api/recommend", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ratings, n: 10 }),
    });
    if (number !== state.request) return;  // a newer rating is on its way
    showError("");
    fill($("recommendations"), out.items, null, "no more movies to recommend");
    // the "because" lines and scores (added after the rows exist, in order)
    const rows = $("recommendations").querySelectorAll("li[data-item]");
    out.items.forEach((rec, i) => {
      const text = rows[i].firstChild;
      if (rec.because) {
        text.appendChild(el("div", "because", `because you liked ${rec.because.display_title || rec.because.item}`));
      }
      rows[i].title = `model score ${rec.score.toFixed(3)}`;
    });
    const took = `${out.server_ms.toFixed(1)} ms on the server, ${(performance.now() - started).toFixed(0)} ms in all`;
    status.textContent = out.personal
      ? `Based on your ${out.n_rated} rating${out.n_rated === 1 ? "" : "s"}; updated in ${took}.`
      : "No ratings yet: these are the movies the model ranks first for anyone. Rate a movie to make them yours.";
    status.dataset.nRated = String(out.n_rated);
  } catch (e) {
    if (number === state.request) showError(`Could not update the recommendations: ${e.message}`);
  }
}

// ------------------------------------------------------------------ onboarding and search
async function loadOnboarding() {
  const exclude = [...state.ratings.keys()].join(",");
  const q = new URLSearchParams({ n: "10", offset: String(state.onboardingOffset) });
  if (exclude) q.set("exclude", exclude);
  try {
    const out = await api(`/api/onboarding?${q}`);
    state.nextOffset = out.next_offset;
    fill($("onboarding"), out.items, null, "no more movies");
    $("more").hidden = out.next_offset === null;
  } catch (e) {
    showError(`Could not load movies to rate: ${e.message}`);
  }
}

let searchTimer = null;
function onSearch() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(search, 150);
}

async function search() {
  const text = $("search").value.trim();
  const list = $("search-results");
  const number = ++state.searchRequest;
  if (!text) { list.replaceChildren(); return; }
  try {
    const out = await api(`/api/search?${new URLSearchParams({ q: text, n: "8" })}`);
    if (number !== state.searchRequest) return;
    fill(list, out.items, null, `no title contains "${text}"`);
    if (out.total > out.items.length) {
      list.appendChild(el("li", "muted", `${out.total - out.items.length} more match; type more of the title`));
    }
  } catch (e) {
    if (number === state.searchRequest) showError(`Search failed: ${e.message}`);
  }
}

// ------------------------------------------------------------------ similar items
async function showSimilar(item) {
  try {
    const out = await api(`/api/items/${encodeURIComponent(item)}/similar?n=10`);
    $("details-title").textContent = `Similar to ${titleOf(out.item)}`;
    const box = $("details-item");
    box.replaceChildren(el("div", "meta", metaLine(out.item)));
    fill($("similar"), out.items, null, "no similar movies");
    const rows = $("similar").querySelectorAll("li[data-item]");
    out.items.forEach((rec, i) => rows[i].firstChild.appendChild(el("div", "score", `similarity ${rec.similarity.toFixed(2)}`)));
    $("details").hidden = false;
    document.querySelector("main").classList.add("with-details");
  } catch (e) {
    showError(`Could not load similar movies: ${e.message}`);
  }
}

function closeSimilar() {
  $("details").hidden = true;
  document.querySelector("main").classList.remove("with-details");
}

// ------------------------------------------------------------------ start
async function start() {
  try {
    state.info = await api("/api/info");
  } catch (e) {
    showError(`Could not reach the server: ${e.message}`);
    return;
  }
  const info = state.info;
  const scale = info.rating_scale ? `ratings ${info.rating_scale[0]}-${info.rating_scale[1]}` : "likes";
  $("model-line").textContent = `${info.class} trained on ${info.n_ratings.toLocaleString()} ratings of ` +
    `${info.n_items.toLocaleString()} movies by ${info.n_users.toLocaleString()} people (${scale})`;
  if (info.feedback !== "ratings") {
    $("rate-hint").textContent = "Click \u201clike\u201d on movies you enjoyed. Your recommendations update after every click.";
  }
  if (!info.has_titles) {
    $("search").disabled = true;
    $("search").placeholder = "this model has no titles";
  }
  $("search").addEventListener("input", onSearch);
  $("more").addEventListener("click", () => {
    state.onboardingOffset = state.nextOffset || 0;
    loadOnboarding();
  });
  $("clear").addEventListener("click", () => {
    state.ratings.clear();
    refreshStars();
    renderMine();
    recommend();
  });
  $("close-details").addEventListener("click", closeSimilar);
  renderMine();
  await Promise.all([loadOnboarding(), recommend()]);
  document.body.dataset.ready = "1";
}

document.addEventListener("DOMContentLoaded", start);
