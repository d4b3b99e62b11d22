// kpr serve: the click-prompting page. Plain JS, no build step; talks to the JSON API only.
"use strict";

const $ = (id) => document.getElementById(id);
const NONE = null;
const POINT_RADIUS = 6;
const HIT_RADIUS = 11;

const state = {
  info: null,
  image: null, // {blob, bitmap, width, height, name}
  target: [], // 17 × ([x, y] | null), in crop pixels
  negatives: [], // people × 17 × ([x, y] | null)
  mode: "target", // where a left click places the active joint
  activeJoint: 0,
  activePerson: 0,
  selected: null, // {who: "target" | person index, joint}
  drag: null,
  history: [],
  scale: 1,
  querySeq: 0,
  inflight: null,
  timer: 0,
  galleryOffset: 0,
  hoverName: null,
};

// ---------------------------------------------------------------- helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "style") {
      for (const [prop, v] of Object.entries(value)) {
        if (prop.startsWith("--")) node.style.setProperty(prop, v);
        else node.style[prop] = v;
      }
    }
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function pretty(name) { return name.replaceAll("_", " "); }

let toastTimer = 0;
function toast(message, kind = "error") {
  const node = $("toast");
  node.textContent = message;
  node.className = `toast show ${kind === "info" ? "info" : ""}`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { node.className = "toast"; }, 4200);
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try { detail = (await response.json()).detail || detail; } catch { /* not JSON */ }
    const error = new Error(detail);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

const emptySkeleton = () => Array.from({ length: 17 }, () => NONE);
const skeletonOf = (who) => (who === "target" ? state.target : state.negatives[who]);
const placedCount = (skeleton) => skeleton.filter(Boolean).length;

function snapshot() {
  state.history.push(JSON.stringify({ target: state.target, negatives: state.negatives }));
  if (state.history.length > 100) state.history.shift();
}

function undo() {
  const last = state.history.pop();
  if (!last) return;
  const restored = JSON.parse(last);
  state.target = restored.target;
  state.negatives = restored.negatives;
  state.activePerson = Math.min(state.activePerson, Math.max(0, state.negatives.length - 1));
  state.selected = null;
  changed();
}

// ---------------------------------------------------------------- start-up

async function start() {
  try {
    state.info = await api("/api/info");
  } catch (error) {
    $("meta").replaceChildren(el("span", { class: "dot off" }), `server unreachable: ${error.message}`);
    return;
  }
  const info = state.info;
  const [h, w] = info.image_size;
  document.documentElement.style.setProperty("--ratio", `${w} / ${h}`);
  document.documentElement.style.setProperty("--slots", String(info.slots.length));
  $("meta").replaceChildren(el("span", { class: "dot" }), el("b", {}, info.gallery_size.toLocaleString()),
    " gallery crops · model ", el("b", {}, info.fingerprint), ` (${h}×${w}, ${info.slots.length - 1} parts)`);
  $("meta").title = info.checkpoint;
  state.target = emptySkeleton();
  buildGroups();
  bindEvents();
  render();
}

function buildGroups() {
  const list = $("groups");
  list.replaceChildren();
  const info = state.info;
  info.prompt_groups.forEach((group, g) => {
    const joints = info.keypoint_names.map((_, k) => k).filter((k) => info.keypoint_groups[k] === g);
    if (!joints.length) return;
    const item = el("li", { class: "group", "data-group": g },
      el("div", { class: "group-name" },
        el("span", { class: "swatch", style: { background: group.colour } }),
        pretty(group.name),
        g < 9 ? el("kbd", {}, String(g + 1)) : ""),
      el("div", { class: "joint-list" }, ...joints.map((k) => el("button", {
        class: "joint", "data-joint": k, style: { "--joint": info.keypoint_colours[k] },
        title: `${pretty(info.keypoint_names[k])}: select, then click the crop`,
        onclick: () => { state.activeJoint = k; render(); },
      }, shortJoint(info.keypoint_names[k])))));
    list.append(item);
  });
}

function shortJoint(name) {
  return name.replace("left_", "L ").replace("right_", "R ").replaceAll("_", " ");
}

// ---------------------------------------------------------------- loading a crop

async function loadCrop(blob, name, proposal) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob);
  } catch {
    toast(`${name}: the browser cannot decode this file as an image`);
    return;
  }
  state.image = { blob, bitmap, width: bitmap.width, height: bitmap.height, name };
  state.target = emptySkeleton();
  state.negatives = [];
  state.history = [];
  state.selected = null;
  state.activeJoint = 0;
  state.activePerson = 0;
  $("stage").classList.add("loaded");
  $("propose-button").disabled = !state.info.pose;
  $("clear-button").disabled = false;
  layoutCanvas();
  if (proposal) applyProposal(await proposal, false);
  else if (state.info.pose) await propose(false);
  changed();
}

function applyProposal(proposal, announce = true) {
  const toPoints = (skeleton) => skeleton.map(([x, y, c]) => (c > 0.3 ? [x, y] : NONE));
  snapshot();
  state.target = proposal.target ? toPoints(proposal.target) : emptySkeleton();
  state.negatives = proposal.negatives.map(toPoints).filter((s) => placedCount(s));
  state.activePerson = 0;
  state.activeJoint = firstUnplaced("target") ?? 0;
  if (announce) {
    const others = state.negatives.length;
    toast(proposal.target
      ? `proposed: target${others ? ` + ${others} other ${others === 1 ? "person" : "people"}` : ""}${proposal.ambiguous ? " (ambiguous: check who the target is)" : ""}`
      : "no person found: click to place the points", "info");
  }
}

async function propose(announce = true) {
  if (!state.image || !state.info.pose) return;
  const form = new FormData();
  form.append("image", state.image.blob, state.image.name);
  try {
    applyProposal(await api("/api/keypoints", { method: "POST", body: form }), announce);
  } catch (error) {
    toast(`keypoint proposal failed: ${error.message}`);
  }
  if (announce) changed();
}

function loadFile(file) {
  if (!file) return;
  loadCrop(file, file.name || "pasted image", null);
}

async function loadGalleryItem(name) {
  $("gallery-dialog").close();
  const path = encodeURIComponent(name);
  try {
    const response = await fetch(`/api/gallery/${path}`);
    if (!response.ok) throw new Error((await response.json()).detail);
    const proposal = api(`/api/keypoints/${path}`);
    await loadCrop(await response.blob(), name, proposal);
  } catch (error) {
    toast(`${name}: ${error.message}`);
  }
}

// ---------------------------------------------------------------- canvas

function layoutCanvas() {
  if (!state.image) return;
  const stage = $("stage");
  const canvas = $("canvas");
  const maxW = stage.clientWidth - 24;
  const maxH = Math.max(320, stage.clientHeight - 24);
  state.scale = Math.min(maxW / state.image.width, maxH / state.image.height, 8);
  const dpr = window.devicePixelRatio || 1;
  canvas.style.width = `${Math.round(state.image.width * state.scale)}px`;
  canvas.style.height = `${Math.round(state.image.height * state.scale)}px`;
  canvas.width = Math.round(state.image.width * state.scale * dpr);
  canvas.height = Math.round(state.image.height * state.scale * dpr);
  draw();
}

function draw() {
  if (!state.image) return;
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d");
  const dpr = window.devicePixelRatio || 1;
  const s = state.scale * dpr;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(state.image.bitmap, 0, 0, canvas.width, canvas.height);
  ctx.fillStyle = "rgba(0, 0, 0, 0.18)";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const info = state.info;
  state.negatives.forEach((skeleton, p) => drawSkeleton(ctx, skeleton, s, dpr, () => info.negative_colour, p, "person"));
  drawSkeleton(ctx, state.target, s, dpr, (k) => info.keypoint_colours[k], null, "target");
}

function drawSkeleton(ctx, skeleton, s, dpr, colour, person, who) {
  const info = state.info;
  const isNeg = who === "person";
  ctx.lineWidth = 2 * dpr;
  ctx.setLineDash(isNeg ? [5 * dpr, 4 * dpr] : []);
  for (const [a, b] of info.skeleton_edges) {
    if (!skeleton[a] || !skeleton[b]) continue;
    ctx.strokeStyle = isNeg ? "rgba(255, 80, 80, 0.85)" : colour(a);
    ctx.globalAlpha = isNeg ? 1 : 0.8;
    ctx.beginPath();
    ctx.moveTo(skeleton[a][0] * s, skeleton[a][1] * s);
    ctx.lineTo(skeleton[b][0] * s, skeleton[b][1] * s);
    ctx.stroke();
  }
  ctx.setLineDash([]);
  ctx.globalAlpha = 1;
  skeleton.forEach((point, k) => {
    if (!point) return;
    const x = point[0] * s;
    const y = point[1] * s;
    const sel = state.selected && state.selected.joint === k &&
      (isNeg ? state.selected.who === person : state.selected.who === "target");
    ctx.beginPath();
    if (isNeg) {
      const r = (POINT_RADIUS - 1) * dpr;
      ctx.moveTo(x - r, y - r); ctx.lineTo(x + r, y - r); ctx.lineTo(x + r, y + r); ctx.lineTo(x - r, y + r); ctx.closePath();
    } else {
      ctx.arc(x, y, POINT_RADIUS * dpr, 0, Math.PI * 2);
    }
    ctx.fillStyle = colour(k);
    ctx.fill();
    ctx.lineWidth = 2 * dpr;
    ctx.strokeStyle = "rgba(0, 0, 0, 0.85)";
    ctx.stroke();
    if (sel) {
      ctx.beginPath();
      ctx.arc(x, y, (POINT_RADIUS + 5) * dpr, 0, Math.PI * 2);
      ctx.strokeStyle = "#ffffff";
      ctx.lineWidth = 2 * dpr;
      ctx.stroke();
    }
  });
  if (isNeg) {
    const first = skeleton.find(Boolean);
    if (first) {
      ctx.font = `${11 * dpr}px system-ui, sans-serif`;
      ctx.fillStyle = "#ffb3b3";
      ctx.fillText(`other ${person + 1}`, first[0] * s + 9 * dpr, first[1] * s - 9 * dpr);
    }
  }
}

function toCrop(event) {
  const rect = $("canvas").getBoundingClientRect();
  const x = (event.clientX - rect.left) / state.scale;
  const y = (event.clientY - rect.top) / state.scale;
  return [Math.max(0, Math.min(state.image.width - 1, x)), Math.max(0, Math.min(state.image.height - 1, y))];
}

function hitTest(event) {
  const [x, y] = toCrop(event);
  const radius = HIT_RADIUS / state.scale;
  let best = null;
  let bestD = radius;
  const consider = (skeleton, who) => skeleton.forEach((p, k) => {
    if (!p) return;
    const d = Math.hypot(p[0] - x, p[1] - y);
    if (d <= bestD) { bestD = d; best = { who, joint: k }; }
  });
  state.negatives.forEach((skeleton, p) => consider(skeleton, p));
  consider(state.target, "target"); // the target wins ties: it is drawn on top
  return best;
}

function firstUnplaced(who, after = -1) {
  const skeleton = skeletonOf(who);
  if (!skeleton) return null;
  for (let i = 1; i <= 17; i++) {
    const k = (after + i) % 17;
    if (!skeleton[k]) return k;
  }
  return null;
}

function place(who, point) {
  snapshot();
  if (who !== "target") {
    while (state.negatives.length <= who) state.negatives.push(emptySkeleton());
  }
  const k = state.activeJoint;
  skeletonOf(who)[k] = point;
  state.selected = { who, joint: k };
  const next = firstUnplaced(who, k);
  if (next !== null) state.activeJoint = next;
  changed();
}

function removePoint(target) {
  if (!target) return;
  snapshot();
  skeletonOf(target.who)[target.joint] = NONE;
  if (target.who !== "target" && !placedCount(state.negatives[target.who])) {
    state.negatives.splice(target.who, 1);
    state.activePerson = Math.max(0, Math.min(state.activePerson, state.negatives.length - 1));
  }
  state.activeJoint = target.joint;
  state.selected = null;
  changed();
}

function onPointerDown(event) {
  if (!state.image) return;
  const hit = hitTest(event);
  if (event.button === 2) {
    event.preventDefault();
    if (hit && hit.who !== "target") return; // right-click on another person's point: keep it
    place(state.activePerson, toCrop(event));
    return;
  }
  if (event.button !== 0) return;
  if (hit) {
    state.selected = hit;
    state.activeJoint = hit.joint;
    if (hit.who !== "target") state.activePerson = hit.who;
    state.drag = { ...hit, moved: false, snap: JSON.stringify({ target: state.target, negatives: state.negatives }) };
    $("canvas").setPointerCapture(event.pointerId);
    render();
    return;
  }
  place(state.mode === "target" ? "target" : state.activePerson, toCrop(event));
}

function onPointerMove(event) {
  if (!state.image) return;
  const canvas = $("canvas");
  if (!state.drag) {
    canvas.style.cursor = hitTest(event) ? "grab" : "crosshair";
    return;
  }
  state.drag.moved = true;
  canvas.style.cursor = "grabbing";
  skeletonOf(state.drag.who)[state.drag.joint] = toCrop(event);
  draw();
}

function onPointerUp() {
  if (!state.drag) return;
  if (state.drag.moved) {
    state.history.push(state.drag.snap);
    changed();
  }
  state.drag = null;
}

// ---------------------------------------------------------------- side panel and hint

function render() {
  const info = state.info;
  const who = state.mode === "target" ? "target" : state.activePerson;
  const skeleton = skeletonOf(who) || emptySkeleton();
  for (const button of document.querySelectorAll(".joint")) {
    const k = Number(button.dataset.joint);
    button.classList.toggle("placed", Boolean(skeleton[k]));
    button.classList.toggle("active", k === state.activeJoint);
  }
  for (const group of document.querySelectorAll(".group")) {
    group.classList.toggle("active", Number(group.dataset.group) === info.keypoint_groups[state.activeJoint]);
  }
  $("mode-target").classList.toggle("on", state.mode === "target");
  $("mode-negative").classList.toggle("on", state.mode === "negative");
  $("mode-target").setAttribute("aria-checked", String(state.mode === "target"));
  $("mode-negative").setAttribute("aria-checked", String(state.mode === "negative"));
  const people = $("people");
  people.hidden = state.mode !== "negative" && !state.negatives.length;
  const count = Math.max(state.negatives.length, state.mode === "negative" ? state.activePerson + 1 : 0);
  people.replaceChildren(...Array.from({ length: count }, (_, p) => el("button", {
    class: p === state.activePerson ? "on" : "", title: "points of this person are negatives",
    onclick: () => { state.activePerson = p; state.mode = "negative"; render(); },
  }, `other ${p + 1}`)), el("button", { title: "another person (Shift+N)", onclick: newPerson }, "+"));
  const joint = info.keypoint_names[state.activeJoint];
  const colour = state.mode === "target" ? info.keypoint_colours[state.activeJoint] : info.negative_colour;
  $("hint").replaceChildren(...(state.image
    ? ["Click to place ", el("span", { class: "chip", style: { background: colour } }),
      el("b", {}, pretty(joint)), " on ",
      el("b", {}, state.mode === "target" ? "the target" : `other ${state.activePerson + 1}`),
      " · right-click: on another person · drag to move · double-click or ", el("kbd", {}, "Del"), " to delete"]
    : ["Load a crop to start: drop it on the left, paste it, or pick one from the gallery."]));
  const placed = placedCount(state.target);
  const negatives = state.negatives.reduce((n, s) => n + placedCount(s), 0);
  const pill = $("prompt-pill");
  pill.textContent = placed || negatives
    ? `${placed} target point${placed === 1 ? "" : "s"}${negatives ? ` · ${negatives} negative` : ""}`
    : "no points";
  pill.classList.toggle("on", placed > 0);
  draw();
}

function newPerson() {
  state.mode = "negative";
  state.activePerson = state.negatives.length && placedCount(state.negatives[state.negatives.length - 1])
    ? state.negatives.length : Math.max(0, state.negatives.length - 1);
  state.activeJoint = 0;
  render();
}

function changed() {
  render();
  scheduleQuery();
}

// ---------------------------------------------------------------- querying

function promptJson() {
  const full = (skeleton) => skeleton.map((p) => (p ? [p[0], p[1], 1] : [0, 0, 0]));
  return JSON.stringify({
    keypoints: placedCount(state.target) ? full(state.target) : null,
    negatives: state.negatives.filter((s) => placedCount(s)).map(full),
  });
}

function scheduleQuery() {
  clearTimeout(state.timer);
  state.timer = setTimeout(runQuery, 120);
}

async function runQuery() {
  if (!state.image) return;
  const seq = ++state.querySeq;
  if (state.inflight) state.inflight.abort(); // only the latest prompt matters
  const controller = new AbortController();
  state.inflight = controller;
  const form = new FormData();
  form.append("image", state.image.blob, state.image.name);
  form.append("prompt", promptJson());
  setBusy(true);
  try {
    const result = await api("/api/query", { method: "POST", body: form, signal: controller.signal });
    if (seq !== state.querySeq) return;
    showResults(result);
    $("status").textContent = `${result.elapsed_ms.toFixed(0)} ms`;
  } catch (error) {
    if (error.name === "AbortError" || seq !== state.querySeq) return;
    $("status").textContent = "";
    toast(error.status === 503 ? "server busy: retrying…" : error.message);
    if (error.status === 503) setTimeout(scheduleQuery, 600);
  } finally {
    if (seq === state.querySeq) { setBusy(false); state.inflight = null; }
  }
}

function setBusy(busy) {
  for (const id of ["col-prompt", "col-empty"]) $(id).classList.toggle("busy", busy);
  if (busy) $("status").replaceChildren(el("span", { class: "spinner" }), "updating");
}

function showResults(result) {
  const without = result.without_prompt;
  const rankWithout = new Map(without.matches.map((m) => [m.name, m.rank]));
  const rankWith = new Map(result.matches.map((m) => [m.name, m.rank]));
  renderMaps($("maps-prompt"), result);
  renderMaps($("maps-empty"), without);
  renderMatches($("matches-prompt"), result.matches, rankWithout, result.prompted);
  renderMatches($("matches-empty"), without.matches, rankWith, false);
}

function renderMaps(container, retrieval) {
  const info = state.info;
  container.replaceChildren(...retrieval.part_maps.map((src, s) => {
    const visible = retrieval.visibility[s] > 0.5;
    return el("figure", {
      class: `map${visible ? "" : " hidden"}`, style: { "--slot": info.slot_colours[s] },
      title: `${pretty(info.slots[s])}: ${visible ? "visible" : "not visible"}`,
    }, el("img", { src, alt: info.slots[s] }), el("figcaption", {}, s === 0 ? "body" : pretty(info.slots[s])));
  }));
}

function renderMatches(container, matches, otherRanks, compare) {
  const info = state.info;
  const finite = matches.flatMap((m) => m.part_distances.filter((d) => d !== null));
  const top = Math.max(0.5, ...finite);
  container.replaceChildren(...matches.map((m) => {
    const other = otherRanks.get(m.name);
    let move = "";
    if (compare) {
      if (other === undefined) move = el("span", { class: "move new", title: "not in the top-k without the prompt" }, "new");
      else if (other !== m.rank) move = el("span", { class: `move ${other > m.rank ? "up" : "down"}`, title: `rank ${other} without the prompt` }, `${other > m.rank ? "▲" : "▼"}${Math.abs(other - m.rank)}`);
    }
    const bars = el("div", { class: "bars" }, ...m.part_distances.map((d, s) => el("span", {
      class: `bar${d === null ? " off" : ""}`,
      style: { "--slot": info.slot_colours[s], height: d === null ? "" : `${Math.max(6, (100 * d) / top)}%` },
      title: `${pretty(info.slots[s])}: ${d === null ? "not visible in both" : d.toFixed(3)}`,
    })));
    const card = el("li", {
      class: "match", "data-name": m.name, title: `${m.name} — click to query with this crop`,
      onclick: () => loadGalleryItem(m.name),
      onmouseenter: () => link(m.name, true), onmouseleave: () => link(m.name, false),
    },
    el("div", { class: "thumb" },
      el("img", { src: `/api/gallery/${encodeURIComponent(m.name)}`, alt: m.name, loading: "lazy" }),
      el("span", { class: "rank" }, `#${m.rank}`), move),
    el("div", { class: "distance" }, m.distance === null ? "—" : m.distance.toFixed(3)),
    bars,
    el("div", { class: "name" }, m.name));
    return card;
  }));
}

function link(name, on) {
  for (const card of document.querySelectorAll(".match")) {
    if (card.dataset.name === name) card.classList.toggle("linked", on);
  }
}

// ---------------------------------------------------------------- gallery dialog

async function openGallery() {
  const dialog = $("gallery-dialog");
  if (!dialog.open) dialog.showModal();
  if (!state.galleryOffset) await moreGallery();
}

async function moreGallery() {
  try {
    const page = await api(`/api/gallery?offset=${state.galleryOffset}&limit=60`);
    state.galleryOffset += page.names.length;
    $("gallery-count").textContent = `${state.galleryOffset} of ${page.total.toLocaleString()}`;
    $("gallery-more").hidden = state.galleryOffset >= page.total;
    $("thumbs").append(...page.names.map((name) => el("button", { title: name, onclick: () => loadGalleryItem(name) },
      el("img", { src: `/api/gallery/${encodeURIComponent(name)}`, alt: name, loading: "lazy" }),
      el("span", {}, name))));
  } catch (error) {
    toast(`gallery: ${error.message}`);
  }
}

// ---------------------------------------------------------------- events

function selectGroup(g) {
  const info = state.info;
  const joints = info.keypoint_names.map((_, k) => k).filter((k) => info.keypoint_groups[k] === g);
  if (!joints.length) return;
  const skeleton = skeletonOf(state.mode === "target" ? "target" : state.activePerson) || emptySkeleton();
  const inGroup = joints.includes(state.activeJoint);
  // First press: the group's first unplaced point; again: the next point of the group.
  state.activeJoint = inGroup
    ? joints[(joints.indexOf(state.activeJoint) + 1) % joints.length]
    : joints.find((k) => !skeleton[k]) ?? joints[0];
  render();
}

function onKey(event) {
  if (event.target.closest("input, textarea") || $("help-dialog").open) {
    if (event.key === "Escape") $("help-dialog").close();
    return;
  }
  if ($("gallery-dialog").open) return;
  const key = event.key;
  if ((event.ctrlKey || event.metaKey) && key.toLowerCase() === "z") { event.preventDefault(); undo(); return; }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (/^[1-9]$/.test(key)) { selectGroup(Number(key) - 1); return; }
  switch (key) {
    case "Tab":
      event.preventDefault();
      state.activeJoint = (state.activeJoint + (event.shiftKey ? 16 : 1)) % 17;
      render();
      break;
    case "n": state.mode = state.mode === "target" ? "negative" : "target"; render(); break;
    case "N": newPerson(); break;
    case "Delete": case "Backspace": event.preventDefault(); removePoint(state.selected); break;
    case "p": case "P": propose(); break;
    case "c": case "C": if (state.image) { snapshot(); state.target = emptySkeleton(); state.negatives = []; state.selected = null; changed(); } break;
    case "u": case "U": $("file-input").click(); break;
    case "g": case "G": openGallery(); break;
    case "?": $("help-dialog").showModal(); break;
    default: break;
  }
}

function bindEvents() {
  const canvas = $("canvas");
  const stage = $("stage");
  canvas.addEventListener("pointerdown", onPointerDown);
  canvas.addEventListener("pointermove", onPointerMove);
  canvas.addEventListener("pointerup", onPointerUp);
  canvas.addEventListener("pointercancel", onPointerUp);
  canvas.addEventListener("contextmenu", (e) => e.preventDefault());
  canvas.addEventListener("dblclick", (e) => removePoint(hitTest(e)));
  for (const id of ["file-input", "file-input-2"]) {
    $(id).addEventListener("change", (e) => { loadFile(e.target.files[0]); e.target.value = ""; });
  }
  stage.addEventListener("dragover", (e) => { e.preventDefault(); stage.classList.add("dragging"); });
  stage.addEventListener("dragleave", () => stage.classList.remove("dragging"));
  stage.addEventListener("drop", (e) => {
    e.preventDefault();
    stage.classList.remove("dragging");
    loadFile(e.dataTransfer.files[0]);
  });
  document.addEventListener("paste", (e) => {
    const item = [...e.clipboardData.items].find((i) => i.type.startsWith("image/"));
    if (item) loadFile(item.getAsFile());
  });
  document.addEventListener("keydown", onKey);
  $("mode-target").addEventListener("click", () => { state.mode = "target"; render(); });
  $("mode-negative").addEventListener("click", () => { state.mode = "negative"; render(); });
  $("propose-button").addEventListener("click", () => propose());
  $("clear-button").addEventListener("click", () => onKey({ key: "c", target: document.body, preventDefault() {} }));
  $("gallery-button").addEventListener("click", openGallery);
  $("gallery-link").addEventListener("click", (e) => { e.preventDefault(); openGallery(); });
  $("gallery-more").addEventListener("click", moreGallery);
  $("gallery-close").addEventListener("click", () => $("gallery-dialog").close());
  $("help-button").addEventListener("click", () => $("help-dialog").showModal());
  $("help-close").addEventListener("click", () => $("help-dialog").close());
  window.addEventListener("resize", layoutCanvas);
}

start();
