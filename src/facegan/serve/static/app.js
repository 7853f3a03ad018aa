// facegan serve: the page. Plain JavaScript, no build step; everything comes from /api.
"use strict";

// Seeds are int64: BigInt keeps them exact (a JSON number would not past 2^53).
const MAX_SEED = 9223372036854775807n;
const PAGE = 16;
const VIEW_SIZE = 512;
const FPS = 15;

const $ = (id) => document.getElementById(id);

const state = {
  info: null,
  start: 0n,
  truncation: 1,
  labels: {},        // query key -> class value, or "random"
  gridToken: 0,      // only the newest grid answer is drawn
  viewerSeed: null,
  interp: { frames: [], index: 0, step: 1, timer: null },
};

// ------------------------------------------------------------------ helpers

function parseSeed(text) {
  const trimmed = String(text).trim();
  if (!/^[0-9]{1,19}$/.test(trimmed)) return null;
  const seed = BigInt(trimmed);
  return seed <= MAX_SEED ? seed : null;
}

function clampSeed(seed) {
  if (seed < 0n) return 0n;
  return seed > MAX_SEED ? MAX_SEED : seed;
}

function randomSeed() {
  const words = crypto.getRandomValues(new Uint32Array(1));
  return BigInt(words[0]);
}

// truncation and the label choices: what every image request carries
function imageParams() {
  const params = new URLSearchParams();
  params.set("truncation", state.truncation.toFixed(2));
  for (const [key, value] of Object.entries(state.labels)) {
    if (value !== "random") params.set(key, value);
  }
  return params;
}

async function getJSON(path, params) {
  const response = await fetch(`${path}?${params || ""}`);
  let body = {};
  try {
    body = await response.json();
  } catch (_) {
    // not JSON: the status line says enough
  }
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

function showStatus(message, isError = false) {
  const status = $("status");
  status.textContent = message;
  status.classList.toggle("error", isError);
}

function faceURL(seed, size) {
  const params = imageParams();
  params.set("seed", seed.toString());
  params.set("size", String(size));
  return `/api/face.png?${params}`;
}

function labelText(labels) {
  if (!labels) return "";
  return Object.entries(labels).map(([name, value]) => `${name} ${value}`).join(" · ");
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("a frame did not decode"));
    image.src = src;
  });
}

// ------------------------------------------------------------------ run info and controls

function renderInfo() {
  const info = state.info;
  document.title = `facegan · ${info.run}`;
  $("run-name").textContent = info.run;
  const parts = [
    info.arch,
    `${info.resolution}×${info.resolution}`,
    `latent ${info.latent_dim}`,
    `step ${info.step.toLocaleString("en-US")}`,
  ];
  if (info.conditional) parts.push(`conditional on ${info.attributes.map((a) => a.name).join(", ")}`);
  $("run-meta").textContent = parts.join(" · ");
  // Small images look better with crisp pixels than blurred.
  document.body.classList.toggle("pixelated", info.resolution < 64);
}

function buildLabelControls() {
  const box = $("labels");
  box.replaceChildren();
  for (const attribute of state.info.attributes) {
    const label = document.createElement("label");
    label.className = "field-label select-label";
    label.textContent = attribute.name;
    const select = document.createElement("select");
    select.id = `label-${attribute.param}`;
    select.dataset.param = attribute.param;
    select.append(new Option("random", "random"));
    // say it where the choice is made: not the data's class frequencies
    select.title = "random: each seed draws a class uniformly, not as often as the training data has it";
    for (const cls of attribute.classes) select.append(new Option(cls.label, cls.value));
    select.value = state.labels[attribute.param] || "random";
    select.addEventListener("change", () => {
      state.labels[attribute.param] = select.value;
      refresh();
    });
    label.append(select);
    box.append(label);
  }
}

// ------------------------------------------------------------------ the grid

function buildGrid() {
  const grid = $("grid");
  grid.replaceChildren();
  for (let i = 0; i < PAGE; i += 1) {
    const tile = document.createElement("button");
    tile.type = "button";
    tile.className = "face";
    const image = document.createElement("img");
    image.alt = "";
    image.width = 256;
    image.height = 256;
    const caption = document.createElement("span");
    caption.className = "caption";
    const seed = document.createElement("span");
    seed.className = "seed";
    const tags = document.createElement("span");
    tags.className = "tags";
    caption.append(seed, tags);
    tile.append(image, caption);
    tile.addEventListener("click", () => {
      if (tile.dataset.seed) openViewer(BigInt(tile.dataset.seed));
    });
    grid.append(tile);
  }
}

async function loadGrid() {
  const token = ++state.gridToken;
  const start = state.start;
  const count = MAX_SEED - start + 1n < BigInt(PAGE) ? Number(MAX_SEED - start + 1n) : PAGE;
  const params = imageParams();
  params.set("seed", start.toString());
  params.set("n", String(count));
  $("seed").value = start.toString();
  saveHash();
  $("grid").classList.add("loading");
  try {
    const data = await getJSON("/api/faces", params);
    if (token !== state.gridToken) return;
    renderGrid(start, data);
    showStatus("");
  } catch (err) {
    if (token === state.gridToken) showStatus(err.message, true);
  } finally {
    if (token === state.gridToken) $("grid").classList.remove("loading");
  }
}

function renderGrid(start, data) {
  const tiles = $("grid").children;
  for (let i = 0; i < tiles.length; i += 1) {
    const tile = tiles[i];
    const visible = i < data.images.length;
    tile.hidden = !visible;
    if (!visible) {
      delete tile.dataset.seed;
      continue;
    }
    const seed = (start + BigInt(i)).toString();
    const labels = data.labels ? labelText(data.labels[i]) : "";
    tile.dataset.seed = seed;
    tile.title = `Seed ${seed}${labels ? ` — ${labels}` : ""}: click to enlarge`;
    tile.querySelector("img").src = data.images[i];
    tile.querySelector("img").alt = `Face of seed ${seed}`;
    tile.querySelector(".seed").textContent = `seed ${seed}`;
    tile.querySelector(".tags").textContent = labels;
  }
}

function goTo(seed) {
  state.start = clampSeed(seed);
  loadGrid();
}

// Truncation and labels change every image on screen.
function refresh() {
  loadGrid();
  if (state.viewerSeed !== null) showViewer(state.viewerSeed);
}

// ------------------------------------------------------------------ the enlarged face

async function showViewer(seed) {
  state.viewerSeed = seed;
  const url = faceURL(seed, VIEW_SIZE);
  const image = $("viewer-image");
  image.src = url;
  image.alt = `Face of seed ${seed}`;
  $("viewer-title").textContent = `Seed ${seed}`;
  const download = $("viewer-download");
  download.href = url;
  download.download = `${state.info.run}-seed${seed.toString().padStart(4, "0")}.png`;
  $("viewer-labels").textContent = "";
  if (state.info.conditional) {
    // The labels a "random" attribute took for this seed.
    const params = imageParams();
    params.set("seed", seed.toString());
    params.set("n", "1");
    params.set("size", "8");
    try {
      const data = await getJSON("/api/faces", params);
      if (state.viewerSeed === seed) $("viewer-labels").textContent = labelText(data.labels[0]);
    } catch (err) {
      showStatus(err.message, true);
    }
  }
}

function openViewer(seed) {
  $("viewer").hidden = false;
  document.body.classList.add("modal-open");
  showViewer(seed);
  $("viewer-close").focus();
}

function closeViewer() {
  $("viewer").hidden = true;
  document.body.classList.remove("modal-open");
  state.viewerSeed = null;
}

function stepViewer(delta) {
  if (state.viewerSeed === null) return;
  showViewer(clampSeed(state.viewerSeed + delta));
}

// ------------------------------------------------------------------ interpolation

function setInterpStatus(message, isError = false) {
  const status = $("interp-status");
  status.textContent = message;
  status.classList.toggle("error", isError);
}

function drawFrame() {
  const { frames, index } = state.interp;
  if (!frames.length) return;
  const canvas = $("interp-canvas");
  const context = canvas.getContext("2d");
  context.imageSmoothingEnabled = state.info.resolution >= 64;
  context.imageSmoothingQuality = "high";
  context.drawImage(frames[index], 0, 0, canvas.width, canvas.height);
}

// Forward, then back: the loop has no jump from the last frame to the first.
function tick() {
  const interp = state.interp;
  drawFrame();
  if (interp.frames.length < 2) return;
  if (interp.index + interp.step < 0 || interp.index + interp.step >= interp.frames.length) {
    interp.step = -interp.step;
  }
  interp.index += interp.step;
}

function pauseInterpolation() {
  clearInterval(state.interp.timer);
  state.interp.timer = null;
}

function togglePause() {
  if (state.interp.timer) {
    pauseInterpolation();
    $("interp-pause").textContent = "Resume";
  } else if (state.interp.frames.length) {
    state.interp.timer = setInterval(tick, 1000 / FPS);
    $("interp-pause").textContent = "Pause";
  }
}

async function playInterpolation(event) {
  if (event) event.preventDefault();
  const from = parseSeed($("interp-from").value);
  const to = parseSeed($("interp-to").value);
  const frames = Number.parseInt($("interp-frames").value, 10);
  if (from === null || to === null) {
    setInterpStatus("Seeds are whole numbers from 0 to 9223372036854775807.", true);
    return;
  }
  const params = imageParams();
  params.set("from", from.toString());
  params.set("to", to.toString());
  params.set("frames", String(frames));
  setInterpStatus("Generating…");
  $("interp-play").disabled = true;
  try {
    const data = await getJSON("/api/interpolate", params);
    const images = await Promise.all(data.images.map(loadImage));
    pauseInterpolation();
    Object.assign(state.interp, { frames: images, index: 0, step: 1 });
    $("interp-canvas").dataset.frames = String(images.length);
    state.interp.timer = setInterval(tick, 1000 / FPS);
    $("interp-pause").disabled = false;
    $("interp-pause").textContent = "Pause";
    const labels = data.labels ? ` · ${labelText(data.labels)}` : "";
    setInterpStatus(`Seed ${from} → ${to}, ${images.length} frames${labels}`);
  } catch (err) {
    setInterpStatus(err.message, true);
  } finally {
    $("interp-play").disabled = false;
  }
}

// ------------------------------------------------------------------ the address bar keeps the view

function saveHash() {
  const params = imageParams();
  params.set("seed", state.start.toString());
  history.replaceState(null, "", `#${params}`);
}

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const seed = parseSeed(params.get("seed") || "");
  if (seed !== null) state.start = seed;
  const truncation = Number.parseFloat(params.get("truncation"));
  if (truncation >= 0 && truncation <= 1) state.truncation = truncation;
  for (const attribute of state.info.attributes) {
    const value = params.get(attribute.param);
    if (attribute.classes.some((cls) => cls.value === value)) state.labels[attribute.param] = value;
  }
}

// ------------------------------------------------------------------ wiring

function bindEvents() {
  $("seed-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const seed = parseSeed($("seed").value);
    if (seed === null) {
      showStatus("A seed is a whole number from 0 to 9223372036854775807.", true);
      return;
    }
    goTo(seed);
  });
  // Paging starts from the typed seed, even before Enter.
  const typed = () => parseSeed($("seed").value) ?? state.start;
  $("prev").addEventListener("click", () => goTo(typed() - BigInt(PAGE)));
  $("next").addEventListener("click", () => goTo(typed() + BigInt(PAGE)));
  $("random").addEventListener("click", () => goTo(randomSeed()));

  let debounce = null;
  $("truncation").addEventListener("input", () => {
    state.truncation = Number($("truncation").value);
    $("truncation-value").textContent = state.truncation.toFixed(2);
    clearTimeout(debounce);
    debounce = setTimeout(refresh, 200);
  });

  $("viewer-close").addEventListener("click", closeViewer);
  $("viewer").addEventListener("click", (event) => {
    if (event.target === $("viewer")) closeViewer();
  });
  $("viewer-prev").addEventListener("click", () => stepViewer(-1n));
  $("viewer-next").addEventListener("click", () => stepViewer(1n));
  $("viewer-image").addEventListener("error", () => showStatus("The face could not be generated.", true));
  $("viewer-from").addEventListener("click", () => {
    $("interp-from").value = state.viewerSeed.toString();
    closeViewer();
    playInterpolation();
  });
  $("viewer-to").addEventListener("click", () => {
    $("interp-to").value = state.viewerSeed.toString();
    closeViewer();
    playInterpolation();
  });
  document.addEventListener("keydown", (event) => {
    if ($("viewer").hidden) return;
    if (event.key === "Escape") closeViewer();
    else if (event.key === "ArrowLeft") stepViewer(-1n);
    else if (event.key === "ArrowRight") stepViewer(1n);
  });

  $("interp-form").addEventListener("submit", playInterpolation);
  $("interp-pause").addEventListener("click", togglePause);
}

async function init() {
  try {
    state.info = await getJSON("/api/info");
  } catch (err) {
    $("run-meta").textContent = "";
    showStatus(`Cannot read the run: ${err.message}`, true);
    return;
  }
  renderInfo();
  readHash();
  buildLabelControls();
  $("truncation").value = String(state.truncation);
  $("truncation-value").textContent = state.truncation.toFixed(2);
  buildGrid();
  bindEvents();
  $("interp-from").value = state.start.toString();
  $("interp-to").value = (state.start + 1n <= MAX_SEED ? state.start + 1n : 0n).toString();
  await loadGrid();
  playInterpolation();
}

init();
