// The explorer page of `gsasrec serve`: plain JavaScript over the service's own JSON API (nothing loaded
// from elsewhere). State: the loaded models, the history being built, the dataset user being shown.
"use strict";

const state = {
  models: [],          // GET /models: name and card of each
  history: [],         // [{item, name}] oldest first, the "Build a history" tab
  user: null,          // GET /users/{split}/{number}, the "A dataset user" tab
  mode: "build",       // which tab feeds the recommendations
  suggestions: [],     // [{item, name}] under the search box
  active: -1,          // the highlighted suggestion
  request: 0,          // a counter: answers to older requests are dropped
};

const $ = (id) => document.getElementById(id);

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

function label(item) {
  return item.name ? item.name : String(item.item);
}

// ---- messages ---------------------------------------------------------------------------------------
function showStatus(text, kind = "error") {
  const status = $("status");
  status.textContent = text;
  status.className = kind === "info" ? "info" : "";
  status.hidden = !text;
}

class ServiceError extends Error {}

// fetch + JSON with one message for every failure: the service down, or its own error detail.
async function api(path, body) {
  let response;
  try {
    response = await fetch(path, body === undefined ? {} : {
      method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(body)});
  } catch (error) {
    throw new ServiceError("The service is not answering (is gsasrec serve still running?): " + error.message);
  }
  let data = null;
  try { data = await response.json(); } catch (error) { /* no JSON body */ }
  if (!response.ok) {
    let detail = data && data.detail !== undefined ? data.detail : response.statusText;
    if (Array.isArray(detail)) detail = detail.map((d) => (d.loc || []).join(".") + ": " + d.msg).join("; ");
    throw new ServiceError(`The service refused the request (${response.status}): ${detail}`);
  }
  return data;
}

// ---- models -------------------------------------------------------------------------------------------
function formatNumber(value) {
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value)) return value.toLocaleString("en");
  return Math.abs(value) < 0.001 && value !== 0 ? value.toExponential(2) : value.toFixed(4);
}

function card(model) {
  const rows = [];
  const config = model.config || {};
  const add = (key, value) => { if (value !== undefined && value !== null) rows.push([key, value]); };
  add("dataset", config.dataset_name);
  add("loss", config.loss !== "gbce" ? config.loss : config.gbce_t === 0 ? "gBCE, t=0 (SASRec's BCE)" : `gBCE, t=${config.gbce_t}`);
  add("window / width / blocks", `${config.sequence_length} / ${config.embedding_dim} / ${config.num_blocks}`);
  add("transition term", model.transition_term);
  add("probability", model.calibrated ? "calibrated (gBCE with t=1)" : "sigmoid(score), not calibrated");
  add("steps", model.steps !== undefined ? formatNumber(model.steps) + (model.minutes ? ` (${model.minutes} min)` : "") : undefined);
  for (const [name, value] of Object.entries(model.test_metrics || {})) add("test " + name, formatNumber(value));
  if (!model.test_metrics) for (const [name, value] of Object.entries(model.val_metrics || {})) add("validation " + name, formatNumber(value));
  for (const [name, value] of Object.entries(model.calibration || {})) add(name, formatNumber(value));
  add("items", formatNumber(model.num_items));
  const list = element("dl");
  for (const [key, value] of rows) list.append(element("dt", {}, key), element("dd", {}, value));
  const details = element("details", {}, element("summary", {}, "training command and config"),
    element("pre", {}, (model.command ? "$ " + model.command + "\n\n" : "") + JSON.stringify(config, null, 1)));
  return element("article", {class: "card", "data-model": model.name}, element("h3", {}, model.name), list, details);
}

async function loadModels() {
  const data = await api("models");
  state.models = data.models;
  $("models").replaceChildren(...state.models.map(card));
  const first = state.models[0];
  $("tab-user").disabled = !first || !first.splits || !first.splits.test;
  updateUserCount();
}

// ---- building a history -----------------------------------------------------------------------------
let searchTimer = null;

function renderSuggestions() {
  const list = $("suggestions");
  list.replaceChildren(...state.suggestions.map((item, index) => element("li", {
    role: "option", id: "suggestion-" + index, "aria-selected": index === state.active ? "true" : "false",
    onmousedown: (event) => { event.preventDefault(); addItem(item); },
  }, label(item), element("span", {class: "id"}, "id " + item.item))));
  list.hidden = state.suggestions.length === 0;
  $("search").setAttribute("aria-expanded", list.hidden ? "false" : "true");
  if (state.active >= 0) $("search").setAttribute("aria-activedescendant", "suggestion-" + state.active);
  else $("search").removeAttribute("aria-activedescendant");
}

async function search(text) {
  if (!text.trim()) { state.suggestions = []; state.active = -1; renderSuggestions(); return; }
  try {
    const data = await api("items?limit=12&query=" + encodeURIComponent(text));
    if ($("search").value !== text) return;  // the user typed on meanwhile
    state.suggestions = data.items;
    state.active = data.items.length ? 0 : -1;
    renderSuggestions();
  } catch (error) { showStatus(error.message); }
}

function addItem(item) {
  state.history.push(item);
  $("search").value = "";
  state.suggestions = []; state.active = -1;
  renderSuggestions();
  showStatus("");
  historyChanged();
}

function moveItem(index, by) {
  const to = index + by;
  if (to < 0 || to >= state.history.length) return;
  [state.history[index], state.history[to]] = [state.history[to], state.history[index]];
  historyChanged();
  $("history").children[to].querySelector(by < 0 ? ".up" : ".down")?.focus();
}

function removeItem(index) {
  state.history.splice(index, 1);
  historyChanged();
  const left = $("history").children;
  (left[Math.min(index, left.length - 1)]?.querySelector(".remove") || $("search")).focus();
}

function renderHistory() {
  $("history").replaceChildren(...state.history.map((item, index) => element("li", {"data-item": item.item},
    element("div", {class: "entry"},
    element("span", {class: "title"}, label(item), element("span", {class: "id"}, "id " + item.item)),
    element("span", {class: "controls"},
      element("button", {type: "button", class: "up", "aria-label": "move up: " + label(item), onclick: () => moveItem(index, -1)}, "↑"),
      element("button", {type: "button", class: "down", "aria-label": "move down: " + label(item), onclick: () => moveItem(index, 1)}, "↓"),
      element("button", {type: "button", class: "remove", "aria-label": "remove: " + label(item), onclick: () => removeItem(index)}, "✕"))))));
  $("history-empty").hidden = state.history.length > 0;
}

function historyChanged() {
  renderHistory();
  if (state.mode === "build") recommend();
}

async function onSearchKey(event) {
  const count = state.suggestions.length;
  if (event.key === "ArrowDown" && count) { state.active = (state.active + 1) % count; renderSuggestions(); event.preventDefault(); }
  else if (event.key === "ArrowUp" && count) { state.active = (state.active - 1 + count) % count; renderSuggestions(); event.preventDefault(); }
  else if (event.key === "Escape") { state.suggestions = []; state.active = -1; renderSuggestions(); }
  else if (event.key === "Enter") {
    event.preventDefault();
    const text = $("search").value;
    if (!text.trim()) return;
    clearTimeout(searchTimer);
    if (!count || $("search").dataset.searched !== text) await search(text);
    if (state.suggestions.length) addItem(state.suggestions[Math.max(state.active, 0)]);
    else showStatus(`Unknown item: nothing in the catalogue matches "${text}" (try part of a title, or an item id).`);
  }
}

function onSearchInput() {
  clearTimeout(searchTimer);
  const text = $("search").value;
  searchTimer = setTimeout(async () => { await search(text); $("search").dataset.searched = text; }, 120);
}

// ---- a dataset user -----------------------------------------------------------------------------------
function updateUserCount() {
  const first = state.models[0];
  const count = first && first.splits ? first.splits[$("split").value] : 0;
  $("user-number").max = count || 1;
  $("user-count").textContent = count ? `of ${count.toLocaleString("en")}` : "(the dataset folder is not here)";
}

async function showUser(number) {
  try {
    state.user = await api(`users/${$("split").value}/${number}`);
    $("user-number").value = state.user.number;
    renderUser();
    showStatus("");
    recommend();
  } catch (error) { showStatus(error.message); }
}

function renderUser() {
  const user = state.user;
  const newest = [...user.history].reverse();  // most recent first
  const seen = user.sequence_length;
  const items = newest.map((item, index) => element("li", {class: index < seen ? "seen" : "unseen"},
    label(item), element("span", {class: "id"}, "id " + item.item)));
  $("user-view").replaceChildren(
    element("p", {}, `User ${user.number} of ${user.split}` + (user.user !== null ? ` (own id ${user.user})` : "") +
      `: ${user.history.length} items.`),
    element("p", {class: "held-out"}, "Held-out next item: ", element("strong", {}, label(user.held_out)),
      element("span", {class: "id"}, "id " + user.held_out.item)),
    element("p", {class: "hint"}, `History, most recent first; the marked ${Math.min(seen, newest.length)} are what the model sees (its window is ${seen}).`),
    element("ol", {"aria-label": "the user's history, most recent first"}, ...items));
}

function setMode(mode) {
  state.mode = mode;
  $("tab-build").setAttribute("aria-selected", mode === "build");
  $("tab-user").setAttribute("aria-selected", mode === "user");
  $("build").hidden = mode !== "build";
  $("user").hidden = mode !== "user";
  if (mode === "user" && !state.user) showUser(1); else recommend();
}

// ---- recommendations, models side by side ----------------------------------------------------------------
function currentInput() {
  if (state.mode === "user") return state.user ? {history: state.user.history, target: state.user.held_out} : null;
  return state.history.length ? {history: state.history, target: null} : null;
}

async function recommend() {
  const input = currentInput();
  const number = ++state.request;
  if (!input) { $("columns").replaceChildren(); $("shared-note").hidden = true; return; }
  const k = Math.max(1, Math.min(100, parseInt($("k").value, 10) || 10));
  const body = (model) => ({history: input.history.map((item) => item.item), k, model: model.name,
    exclude_seen: $("exclude-seen").checked, ...(input.target ? {target: input.target.item} : {})});
  let answers;
  try {
    answers = await Promise.all(state.models.map((model) => api("recommend", body(model))));
  } catch (error) {
    if (number === state.request) showStatus(error.message);
    return;
  }
  if (number !== state.request) return;  // a newer history is on its way
  const unknown = [...new Set(answers.flatMap((answer) => answer.unknown_items))];
  showStatus(unknown.length ? `Unknown item ids, ignored: ${unknown.join(", ")}` : "");
  renderColumns(answers, input.target);
}

function renderColumns(answers, target) {
  const lists = answers.map((answer) => new Set(answer.items.map((row) => String(row.item))));
  const shared = answers.length > 1 ? new Set([...lists[0]].filter((item) => lists.every((list) => list.has(item)))) : new Set();
  $("shared-note").hidden = shared.size === 0;
  const columns = answers.map((answer, index) => {
    const model = state.models[index];
    const top = Math.max(...answer.items.map((row) => row.probability), 1e-9);
    const rows = answer.items.map((row) => {
      const isShared = shared.has(String(row.item));
      const isTarget = target && String(row.item) === String(target.item);
      return element("tr", {class: [isShared ? "shared" : "", isTarget ? "target" : ""].join(" ").trim(), "data-item": row.item},
        element("td", {class: "num"}, row.rank),
        element("td", {}, isShared ? element("span", {class: "shared-mark", title: "in every model's list"}, "★ ") : "",
          label(row), element("span", {class: "id"}, "id " + row.item)),
        element("td", {class: "num"}, row.score.toFixed(3)),
        element("td", {class: "bar-cell", title: row.probability.toFixed(4)},
          element("span", {class: "bar", style: `width:${Math.max(2, 60 * row.probability / top)}px`}), " " + row.probability.toFixed(3)));
    });
    const heading = model.calibrated ? "probability" : "sigmoid(score)";
    const parts = [element("h3", {}, model.name)];
    if (target) {
      const rank = answer.target_rank;
      parts.push(element("p", {class: "target-rank"}, "Held-out item: ",
        rank ? element("strong", {}, `rank ${rank}`) : "not ranked (already in the history)",
        rank && rank > answer.items.length ? ` (outside the top ${answer.items.length})` : ""));
    }
    parts.push(element("table", {}, element("thead", {}, element("tr", {}, element("th", {}, "rank"),
      element("th", {}, "item"), element("th", {}, "score"), element("th", {title: model.calibrated
        ? "calibrated: trained with gBCE t=1" : "a monotone transform of the score, not calibrated"}, heading))),
      element("tbody", {}, ...rows)));
    return element("div", {class: "column", "data-model": model.name}, ...parts);
  });
  $("columns").replaceChildren(...columns);
}

// ---- wiring ---------------------------------------------------------------------------------------------
function start() {
  $("search").addEventListener("input", onSearchInput);
  $("search").addEventListener("keydown", onSearchKey);
  $("search").addEventListener("blur", () => { state.suggestions = []; renderSuggestions(); });
  $("clear").addEventListener("click", () => { state.history = []; historyChanged(); });
  $("tab-build").addEventListener("click", () => setMode("build"));
  $("tab-user").addEventListener("click", () => setMode("user"));
  $("user-show").addEventListener("click", () => showUser(parseInt($("user-number").value, 10) || 1));
  $("user-number").addEventListener("keydown", (event) => { if (event.key === "Enter") $("user-show").click(); });
  $("user-random").addEventListener("click", () => showUser("random"));
  $("split").addEventListener("change", () => { updateUserCount(); showUser(1); });
  $("k").addEventListener("change", recommend);
  $("exclude-seen").addEventListener("change", recommend);
  renderHistory();
  loadModels().catch((error) => showStatus(error.message));
}

start();
