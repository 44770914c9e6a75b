// The ganedit editor page: plain JavaScript over the server's JSON API (no libraries).
"use strict";

const $ = (id) => document.getElementById(id);

const app = {
  info: null,        // GET /api/info
  generator: null,   // the loaded generator's description (POST /api/generator)
  face: null,        // the face id
  strengths: {},     // direction id -> slider value
  modes: {},         // mode attribute -> t (only the ones moved)
  startModes: {},    // the face's own mode coordinates
  range: { latent: 3, calibrated: 10 },  // |strength| the direction sliders reach, per unit
  needStart: false,  // the next render also returns the face unedited (the start image)
  renderCause: "slider-error",  // where a failed render's message goes
  renderErrorAt: null,  // where the last failed render's message is shown
  preview: null,     // the object URL of the uploaded image shown
  inFlight: false,
  pending: false,
  requests: 0,       // API requests in flight (the browser tests wait for 0)
  renders: 0,
  timings: [],       // round trips of the updates, ms (the browser tests record them)
};
window.ganeditTimings = app.timings;

// ------------------------------------------------------------------ requests and errors

// Errors are shown beside what caused them: each action names its error box; the banner at
// the top is for the page itself (its start, a server that stopped answering).
function showError(message, where = "error") {
  const box = $(where);
  box.textContent = message;
  box.hidden = false;
}

function clearError(where = "error") {
  $(where).hidden = true;
  $(where).textContent = "";
}

function track(delta) {
  app.requests += delta;
  document.body.dataset.requests = String(app.requests);
}

async function api(path, body, asBlob = false) {
  const options = body instanceof FormData
    ? { method: "POST", body }
    : body === undefined
      ? { method: "GET" }
      : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  track(1);
  try {
    let response;
    try {
      response = await fetch(path, options);
    } catch (err) {
      throw new Error("the editor's server does not answer (was it stopped?)");
    }
    if (!response.ok) {
      let message = `request failed (${response.status})`;
      try {
        const data = await response.json();
        if (data && typeof data.error === "string") message = data.error;
      } catch (err) { /* not JSON: keep the status line */ }
      throw new Error(message);
    }
    return await (asBlob ? response.blob() : response.json());
  } finally {
    track(-1);
  }
}

async function guarded(action, where = "error") {
  try {
    await action();
    clearError(where);
  } catch (err) {
    showError(err.message, where);
  }
}

// ------------------------------------------------------------------ the edit state

function units() {
  return $("units-calibrated").checked ? "calibrated" : "latent";
}

function layers() {
  const n = app.generator ? app.generator.num_ws : 0;
  if (!n) return null;
  const start = Number($("layer-start").value);
  const stop = Number($("layer-stop").value);
  if (start === 0 && stop === n) return null;
  return [start, stop];
}

function state() {
  return { strengths: { ...app.strengths }, modes: { ...app.modes }, layers: layers(), units: units() };
}

function compareRequest() {
  if (!$("compare-on").checked) return null;
  const a = $("compare-a").value;
  const b = $("compare-b").value;
  if (!a || !b) return null;
  return { a, b, strength: Number($("compare-strength").value) };
}

// ------------------------------------------------------------------ rendering

// `cause`: the error box beside the control that asked for this render (a slider, the
// side-by-side controls, a new face).
function requestRender(cause) {
  if (!app.face) return;
  if (cause) app.renderCause = cause;
  if (app.inFlight) {
    app.pending = true;  // only the latest state is rendered after the current one
    return;
  }
  app.inFlight = true;
  document.body.dataset.busy = "1";
  const began = performance.now();
  const face = app.face;
  const where = app.renderCause;
  const body = { face, state: state(), compare: compareRequest(), start: app.needStart };
  api("/api/render", body)
    .then((data) => {
      if (face !== app.face) return;  // a render of a face since replaced
      if (app.renderErrorAt) clearError(app.renderErrorAt);
      app.renderErrorAt = null;
      $("face-img").src = data.image;
      if (data.start) {
        $("start-img").src = data.start.image;
        app.needStart = false;
      }
      fillReadout($("readout"), data.readout);
      const roundTrip = performance.now() - began;
      if (app.timings.length < 10000) app.timings.push(roundTrip);
      $("latency").textContent = `update: ${roundTrip.toFixed(0)} ms round trip (server ${data.ms.toFixed(0)} ms)`;
      showCompare(data.compare);
      app.renders += 1;
      document.body.dataset.renderedFace = face;
      document.body.dataset.renders = String(app.renders);
    })
    .catch((err) => {
      if (app.renderErrorAt) clearError(app.renderErrorAt);
      app.renderErrorAt = where;
      showError(err.message, where);
    })
    .finally(() => {
      app.inFlight = false;
      document.body.dataset.busy = "";
      if (app.pending) {
        app.pending = false;
        requestRender();
      }
    });
}

// The read-out's entries in the evaluator's order with their kinds (POST /api/generator's
// `readout`): probabilities and the identity cosine get a bar, values (yaw in degrees for
// the face world's evaluator) are shown as numbers.
function fillReadout(table, readout) {
  table.replaceChildren();
  const kinds = (app.generator && app.generator.readout) || {};
  for (const key of Object.keys(kinds)) {
    if (!(key in readout)) continue;
    const value = readout[key];
    const kind = kinds[key];
    const row = table.insertRow();
    row.dataset.key = key;
    row.insertCell().textContent = key === "identity_cosine" ? "identity cos" : key;
    const cell = row.insertCell();
    cell.className = "value";
    cell.dataset.value = String(value);
    cell.textContent = kind === "value" ? (key === "yaw" ? `${value.toFixed(1)}°` : value.toFixed(2)) : value.toFixed(3);
    const barCell = row.insertCell();
    barCell.className = "bar-cell";
    if (kind !== "value") {
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = `${Math.max(0, Math.min(1, value)) * 100}%`;
      barCell.appendChild(bar);
    }
  }
}

function showCompare(items) {
  const on = items && items.length === 2;
  for (const [k, side] of [[0, "a"], [1, "b"]]) {
    const img = $(`compare-${side}-img`);
    img.hidden = !on;
    if (on) {
      img.src = items[k].image;
      fillReadout($(`compare-${side}-readout`), items[k].readout);
      const d = directionById($(`compare-${side}`).value);
      $(`compare-${side}-caption`).textContent = d ? d.label : "";
      $(`compare-${side}-caption`).title = d ? d.title : "";
    } else {
      img.removeAttribute("src");
      $(`compare-${side}-readout`).replaceChildren();
      $(`compare-${side}-caption`).textContent = "";
    }
  }
}

// ------------------------------------------------------------------ sliders

// A slider step near 1/60 of the range, rounded to 1, 2 or 5 times a power of ten (0.05 for
// the default +-3 in latent units, 0.1 for +-10 in calibrated units).
function niceStep(range) {
  const raw = range / 60;
  const power = 10 ** Math.floor(Math.log10(raw));
  const multiple = [5, 2, 1].find((m) => m * power <= raw) || 1;
  return multiple * power;
}

function sliderRange() {
  const r = app.range[units()];
  return { min: -r, max: r, step: niceStep(r) };
}

function makeSlider(container, key, label, title, range, value, onChange) {
  const row = document.createElement("div");
  row.className = "slider";
  const name = document.createElement("span");
  name.className = "name";
  name.id = `name-${key}`;
  name.textContent = label;
  name.title = title;
  const input = document.createElement("input");
  input.type = "range";
  input.id = `slider-${key}`;
  input.dataset.key = key;
  input.title = title;
  setRange(input, range);
  input.value = value;
  const shown = document.createElement("span");
  shown.className = "value";
  shown.id = `value-${key}`;
  shown.textContent = Number(value).toFixed(2);
  const reset = document.createElement("button");
  reset.type = "button";
  reset.textContent = "↺";
  reset.title = "back to the face's own value";
  input.addEventListener("input", () => {
    shown.textContent = Number(input.value).toFixed(2);
    const sweep = key.startsWith("mode-") ? `mode:${key.slice(5)}` : key;
    if ([...$("sweep-slider").options].some((o) => o.value === sweep) && $("sweep-slider").value !== sweep) {
      $("sweep-slider").value = sweep;
      sweepDefaults();
    }
    onChange(Number(input.value));
  });
  reset.addEventListener("click", () => {
    input.value = range.reset ?? 0;
    input.dispatchEvent(new Event("input"));
  });
  row.append(name, input, shown, reset);
  container.appendChild(row);
}

function setRange(input, range) {
  input.min = range.min;
  input.max = range.max;
  input.step = range.step;
}

function directionById(id) {
  return app.generator ? app.generator.directions.find((d) => d.id === id) : undefined;
}

function buildSliders() {
  const box = $("sliders");
  box.replaceChildren();
  const g = app.generator;
  if (!g.directions.length) {
    box.textContent = "No directions loaded for this generator (ganedit ui -b BOUNDARY ...).";
  }
  for (const d of g.directions) {
    makeSlider(box, d.id, d.label, d.title, sliderRange(), app.strengths[d.id] || 0, (v) => {
      app.strengths[d.id] = v;
      requestRender("slider-error");
    });
  }
  const modeBox = $("mode-sliders");
  modeBox.replaceChildren();
  if (g.modes.length) {
    const h = document.createElement("h3");
    h.textContent = "modes (t: 0 low, 0.5 neutral, 1 high)";
    modeBox.appendChild(h);
  }
  for (const attr of g.modes) {
    const own = app.startModes[attr] ?? 0.5;
    const range = { min: 0, max: 1, step: 0.01, reset: own };
    const value = app.modes[attr] ?? own;
    makeSlider(modeBox, `mode-${attr}`, `mode: ${attr}`, `the ${attr} mode of the self-conditioned generator`, range, value, (v) => {
      app.modes[attr] = v;
      requestRender("slider-error");
    });
  }
  const layerBox = $("layer-box");
  layerBox.hidden = !g.num_ws;
  if (g.num_ws) {
    $("layer-start").max = g.num_ws - 1;
    $("layer-stop").max = g.num_ws;
    $("layer-start").value = 0;
    $("layer-stop").value = g.num_ws;
    showLayers();
  }
  $("slider-range").value = String(app.range[units()]);
  setRange($("compare-strength"), sliderRange());
  showCompareStrength();
  for (const select of [$("compare-a"), $("compare-b"), $("sweep-slider")]) {
    select.replaceChildren();
    for (const d of g.directions) {
      const option = new Option(d.label, d.id);
      option.title = d.title;
      select.add(option);
    }
  }
  for (const attr of g.modes) $("sweep-slider").add(new Option(`mode: ${attr}`, `mode:${attr}`));
  pickComparePair();
  sweepDefaults();
  const refused = $("refused");
  refused.replaceChildren();
  for (const r of g.refused) {
    const li = document.createElement("li");
    li.textContent = r.reason;
    refused.appendChild(li);
  }
  $("refused-count").textContent = String(g.refused.length);
}

// Default side by side: two directions of one attribute learned by different methods (the
// sidecars' `method`), plain methods before their variants (conditional, exact quota), in
// the order the directions were given.
function pickComparePair() {
  const ds = app.generator.directions;
  const plain = ds.filter((d) => d.variant === d.method);
  for (const pool of [plain, ds]) {
    for (let i = 0; i < pool.length; i++) {
      for (let j = i + 1; j < pool.length; j++) {
        const [a, b] = [pool[i], pool[j]];
        if (a.attribute && a.attribute === b.attribute && a.method !== b.method) {
          $("compare-a").value = a.id;
          $("compare-b").value = b.id;
          showSelected();
          return;
        }
      }
    }
  }
  if (ds.length > 1) $("compare-b").value = ds[1].id;
  showSelected();
}

// A select shows its option's label cut to its width: the whole label is its tooltip.
function showSelected() {
  for (const select of [$("compare-a"), $("compare-b"), $("sweep-slider")]) {
    const option = select.selectedOptions[0];
    select.title = option ? option.title || option.textContent : "";
  }
}

function showLayers() {
  $("layer-start-value").textContent = $("layer-start").value;
  $("layer-stop-value").textContent = $("layer-stop").value;
}

function showCompareStrength() {
  $("compare-strength-value").textContent = Number($("compare-strength").value).toFixed(2);
}

// The direction sliders' range, set by the user (smile needs longer steps than +-3): every
// direction slider and the side-by-side strength follow it; values beyond it are clamped.
function changeRange() {
  const r = Number($("slider-range").value);
  const limit = app.info ? app.info.max_strength : 1000;
  if (!Number.isFinite(r) || r <= 0 || r > limit) {
    throw new Error(`expected a slider range above 0 and at most ${limit}, received ${$("slider-range").value || "nothing"}`);
  }
  app.range[units()] = r;
  const range = sliderRange();
  for (const d of app.generator.directions) {
    const input = $(`slider-${d.id}`);
    setRange(input, range);
    const value = Math.max(-r, Math.min(r, app.strengths[d.id] || 0));
    if (value !== (app.strengths[d.id] || 0)) app.strengths[d.id] = value;
    input.value = value;
    $(`value-${d.id}`).textContent = value.toFixed(2);
  }
  setRange($("compare-strength"), range);
  showCompareStrength();
  sweepDefaults();
  requestRender("slider-error");
}

// ------------------------------------------------------------------ actions

async function loadGenerator(name) {
  app.generator = await api("/api/generator", { generator: name });
  app.strengths = {};
  app.modes = {};
  $("units-calibrated").checked = false;
  const g = app.generator;
  $("generator-info").textContent = `${g.identity.name} · ${g.resolution} px · edits in ${g.space}` +
    (g.modes.length ? ` · modes: ${g.modes.join(", ")}` : "");
  document.body.dataset.generator = name;
  buildSliders();
  await drawSeed();
}

// `upload`: the image a face was inverted from (shown beside its reconstruction), or null.
function useFace(record, upload = null) {
  app.face = record.face;
  app.startModes = record.modes || {};
  app.strengths = {};  // a new face starts unedited
  app.modes = {};
  app.needStart = true;
  const origin = record.origin || {};
  $("face-origin").textContent = Object.entries(origin).map(([k, v]) => `${k}: ${v}`).join(", ");
  $("start-img").removeAttribute("src");
  $("start-caption").textContent = upload ? "reconstruction" : "start";
  $("upload-figure").hidden = !upload;
  if (app.preview && app.preview !== upload) URL.revokeObjectURL(app.preview);
  app.preview = upload;
  if (upload) $("upload-preview").src = upload;
  document.body.dataset.face = record.face;
  buildSliders();
  requestRender("face-error");
}

async function drawSeed() {
  const seed = Number($("seed").value);
  useFace(await api("/api/face", { generator: app.generator.generator, seed }));
}

async function drawBank() {
  const bank = $("bank-path").value.trim();
  const row = Number($("bank-row").value);
  useFace(await api("/api/face", { generator: app.generator.generator, bank, row }));
}

function uploadState(text, stateName) {
  $("progress-text").textContent = text;
  document.body.dataset.upload = stateName;
}

async function upload() {
  const file = $("upload-file").files[0];
  if (!file) throw new Error("expected an image file to invert, received none (choose one first)");
  const limit = app.info.max_upload_mb * 1e6;
  if (file.size > limit) {
    throw new Error(`expected an image of at most ${app.info.max_upload_mb} MB, received ${(file.size / 1e6).toPrecision(3)} MB (${file.name})`);
  }
  const form = new FormData();
  form.append("generator", app.generator.generator);
  form.append("file", file);
  form.append("align", $("upload-align").checked ? "true" : "false");
  const preview = URL.createObjectURL(file);
  $("upload").disabled = true;
  $("progress-row").hidden = false;
  $("progress").removeAttribute("value");
  uploadState("encoding…", "encoding");
  try {
    const record = await api("/api/upload", form);
    useFace(record, preview);
    const steps = Number($("pti-steps").value);
    if (steps > 0) {
      await tune(record.face, steps, preview);
    } else {
      $("progress-row").hidden = true;
      uploadState("", "done");
    }
  } catch (err) {
    $("progress-row").hidden = true;
    uploadState("", "failed");
    if (app.preview !== preview) URL.revokeObjectURL(preview);
    throw err;
  } finally {
    $("upload").disabled = false;
  }
}

async function tune(face, steps, preview) {
  let job = await api("/api/tune", { face, steps });
  $("progress").max = steps;
  uploadState(`pivotal tuning: 0 / ${steps}`, "tuning");
  while (job.state === "running") {
    $("progress").value = job.done;
    $("progress-text").textContent = `pivotal tuning: ${job.done} / ${steps}`;
    await new Promise((resolve) => setTimeout(resolve, 300));
    job = await api(`/api/job/${job.job}`);
  }
  $("progress").value = job.done;
  if (job.state === "failed") throw new Error(`pivotal tuning failed: ${job.error}`);
  useFace({ face: job.face, modes: app.startModes, origin: job.origin }, preview);
  uploadState(`pivotal tuning: done (${job.done} steps)`, "done");
}

async function changeUnits() {
  // Calibration runs on the server the first time a direction is used in calibrated units
  // (a second or two each); a direction too weak to calibrate answers with edit's message.
  app.strengths = {};
  buildSliders();
  requestRender("slider-error");
}

async function checkBoundary() {
  const path = $("boundary-path").value.trim();
  $("boundary-result").textContent = "";
  if (!path) throw new Error("expected a boundary .npy path to check, received none");
  const data = await api("/api/boundary", { generator: app.generator.generator, path });
  $("boundary-result").textContent = `usable: ${data.accepted.label} (restart with -b to add a slider)`;
  $("boundary-result").title = data.accepted.title;
}

async function download(kind, extra = {}) {
  if (!app.face) throw new Error("expected a face to export, received none");
  const blob = await api(`/api/export/${kind}`, { face: app.face, state: state(), ...extra }, true);
  const names = { image: "ganedit_face.png", latent: "ganedit_latent.npy", sidecar: "ganedit_latent.json" };
  const name = names[kind] || `ganedit_sweep.${extra.format}`;
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  document.body.dataset.exported = name;
}

function sweepDefaults() {
  // A mode's t runs from 0 to 1; a direction's strength over the slider's range.
  const mode = $("sweep-slider").value.startsWith("mode:");
  const range = sliderRange();
  $("sweep-start").value = mode ? 0 : range.min;
  $("sweep-end").value = mode ? 1 : range.max;
  showSelected();
}

function sweepRequest() {
  return {
    slider: $("sweep-slider").value,
    start: Number($("sweep-start").value),
    end: Number($("sweep-end").value),
    steps: Number($("sweep-steps").value),
    format: $("sweep-format").value,
  };
}

// ------------------------------------------------------------------ start

function wire() {
  const on = (id, event, handler) => $(id).addEventListener(event, handler);
  on("generator-load", "click", () => guarded(() => {
    const path = $("generator-path").value.trim();
    return loadGenerator(path || $("generator-select").value);
  }, "generator-error"));
  on("generator-select", "change", () => guarded(() => {
    $("generator-path").value = "";
    return loadGenerator($("generator-select").value);
  }, "generator-error"));
  on("draw", "click", () => guarded(drawSeed, "face-error"));
  on("draw-random", "click", () => guarded(() => {
    $("seed").value = String(Math.floor(Math.random() * 1e6));
    return drawSeed();
  }, "face-error"));
  on("draw-bank", "click", () => guarded(drawBank, "face-error"));
  on("upload", "click", () => guarded(upload, "upload-error"));
  on("units-calibrated", "change", () => guarded(changeUnits, "slider-error"));
  on("slider-range", "change", () => guarded(changeRange, "slider-error"));
  on("reset", "click", () => {
    app.strengths = {};
    app.modes = {};
    buildSliders();
    requestRender("slider-error");
  });
  for (const id of ["layer-start", "layer-stop"]) {
    on(id, "input", () => {
      showLayers();
      requestRender("slider-error");
    });
  }
  on("compare-on", "change", () => requestRender("compare-error"));
  on("sweep-slider", "change", sweepDefaults);
  for (const id of ["compare-a", "compare-b"]) {
    on(id, "change", () => {
      showSelected();
      requestRender("compare-error");
    });
  }
  on("compare-strength", "input", () => {
    showCompareStrength();
    requestRender("compare-error");
  });
  on("boundary-check", "click", () => guarded(checkBoundary, "boundary-error"));
  on("export-image", "click", () => guarded(() => download("image"), "export-error"));
  on("export-latent", "click", () => guarded(() => download("latent"), "export-error"));
  on("export-sidecar", "click", () => guarded(() => download("sidecar"), "export-error"));
  on("export-sweep", "click", () => guarded(() => download("sweep", sweepRequest()), "export-error"));
}

async function start() {
  wire();
  app.info = await api("/api/info");
  const select = $("generator-select");
  for (const name of app.info.generators) select.add(new Option(name, name));
  if (!app.info.generators.includes(app.info.generator)) select.add(new Option(app.info.generator, app.info.generator));
  select.value = app.info.generator;
  await loadGenerator(app.info.generator);
  document.body.dataset.ready = "1";
}

window.addEventListener("DOMContentLoaded", () => guarded(start));
