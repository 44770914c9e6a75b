// The ganedit editor page: plain JavaScript over the server's JSON API (no libraries).
"use strict";

const $ = (id) => document.getElementById(id);

const app = {
  generator: null,   // the loaded generator's description (POST /api/generator)
  face: null,        // the face id
  strengths: {},     // direction id -> slider value
  modes: {},         // mode attribute -> t (only the ones moved)
  startModes: {},    // the face's own mode coordinates
  inFlight: false,
  pending: false,
  renders: 0,
  timings: [],       // round trips of the updates, ms (the browser tests record them)
};
window.ganeditTimings = app.timings;

// ------------------------------------------------------------------ requests and errors

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

async function api(path, body, asBlob = false) {
  const options = body instanceof FormData
    ? { method: "POST", body }
    : body === undefined
      ? { method: "GET" }
      : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
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
      else if (data && data.detail) message = "expected a complete request, received " + JSON.stringify(data.detail).slice(0, 200);
    } catch (err) { /* not JSON: keep the status line */ }
    throw new Error(message);
  }
  return asBlob ? response.blob() : response.json();
}

async function guarded(action) {
  try {
    await action();
  } catch (err) {
    showError(err.message);
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

function requestRender() {
  if (!app.face) return;
  if (app.inFlight) {
    app.pending = true;  // only the latest state is rendered after the current one
    return;
  }
  app.inFlight = true;
  document.body.dataset.busy = "1";
  const began = performance.now();
  api("/api/render", { face: app.face, state: state(), compare: compareRequest() })
    .then((data) => {
      clearError();
      $("face-img").src = data.image;
      fillReadout($("readout"), data.readout);
      const roundTrip = performance.now() - began;
      if (app.timings.length < 10000) app.timings.push(roundTrip);
      $("latency").textContent = `update: ${roundTrip.toFixed(0)} ms round trip (server ${data.ms.toFixed(0)} ms)`;
      showCompare(data.compare);
      app.renders += 1;
      document.body.dataset.renders = String(app.renders);
    })
    .catch((err) => showError(err.message))
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
    if (kind !== "value") {
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = `${Math.max(0, Math.min(1, value)) * 80}px`;
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
      $(`compare-${side}-caption`).textContent = $(`compare-${side}`).selectedOptions[0].textContent;
    } else {
      img.removeAttribute("src");
      $(`compare-${side}-readout`).replaceChildren();
      $(`compare-${side}-caption`).textContent = "";
    }
  }
}

// ------------------------------------------------------------------ sliders

function sliderRange() {
  return units() === "calibrated" ? { min: -10, max: 10, step: 0.1 } : { min: -3, max: 3, step: 0.05 };
}

function makeSlider(container, key, label, title, range, value, onChange) {
  const row = document.createElement("div");
  row.className = "slider";
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = label;
  name.title = title;
  const input = document.createElement("input");
  input.type = "range";
  input.id = `slider-${key}`;
  input.dataset.key = key;
  input.min = range.min; input.max = range.max; input.step = range.step;
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

function directionLabel(d) {
  return `${d.attribute || d.id} · ${d.method || "direction"}`;
}

function buildSliders() {
  const box = $("sliders");
  box.replaceChildren();
  const g = app.generator;
  if (!g.directions.length) {
    box.textContent = "No directions loaded for this generator (ganedit ui -b BOUNDARY ...).";
  }
  for (const d of g.directions) {
    const title = `${d.id}: ${d.method || "?"} direction of ${d.attribute || "?"}, learned in ${d.space || "?"} on ${d.generator || "?"} (${d.path})`;
    makeSlider(box, d.id, directionLabel(d), title, sliderRange(), app.strengths[d.id] || 0, (v) => {
      app.strengths[d.id] = v;
      requestRender();
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
      requestRender();
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
  for (const select of [$("compare-a"), $("compare-b"), $("sweep-slider")]) {
    select.replaceChildren();
    for (const d of g.directions) select.add(new Option(`${directionLabel(d)} (${d.id})`, d.id));
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

function pickComparePair() {
  // Default: the first two directions of one attribute (e.g. interfacegan vs regression, age).
  const ds = app.generator.directions;
  for (let i = 0; i < ds.length; i++) {
    for (let j = i + 1; j < ds.length; j++) {
      if (ds[i].attribute && ds[i].attribute === ds[j].attribute) {
        $("compare-a").value = ds[i].id;
        $("compare-b").value = ds[j].id;
        return;
      }
    }
  }
  if (ds.length > 1) $("compare-b").value = ds[1].id;
}

function showLayers() {
  $("layer-start-value").textContent = $("layer-start").value;
  $("layer-stop-value").textContent = $("layer-stop").value;
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

function useFace(record) {
  app.face = record.face;
  app.startModes = record.modes || {};
  app.strengths = {};  // a new face starts unedited
  app.modes = {};
  const origin = record.origin || {};
  $("face-origin").textContent = Object.entries(origin).map(([k, v]) => `${k}: ${v}`).join(", ");
  document.body.dataset.face = record.face;
  buildSliders();
  requestRender();
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

async function upload() {
  const file = $("upload-file").files[0];
  if (!file) throw new Error("expected an image file to invert, received none (choose one first)");
  const form = new FormData();
  form.append("generator", app.generator.generator);
  form.append("file", file);
  $("upload-preview").src = URL.createObjectURL(file);
  $("upload-preview").hidden = false;
  $("progress-row").hidden = false;
  $("progress").removeAttribute("value");
  $("progress-text").textContent = "encoding…";
  try {
    const record = await api("/api/upload", form);
    useFace(record);
    const steps = Number($("pti-steps").value);
    if (steps > 0) {
      await tune(record.face, steps);
    } else {
      $("progress-row").hidden = true;
    }
  } catch (err) {
    $("progress-row").hidden = true;
    throw err;
  }
}

async function tune(face, steps) {
  let job = await api("/api/tune", { face, steps });
  $("progress").max = steps;
  while (job.state === "running") {
    $("progress").value = job.done;
    $("progress-text").textContent = `pivotal tuning: ${job.done} / ${steps}`;
    await new Promise((resolve) => setTimeout(resolve, 300));
    job = await api(`/api/job/${job.job}`);
  }
  $("progress").value = job.done;
  if (job.state === "failed") {
    $("progress-text").textContent = "pivotal tuning failed";
    throw new Error(job.error);
  }
  $("progress-text").textContent = `pivotal tuning: done (${job.done} steps)`;
  useFace({ face: job.face, modes: app.startModes, origin: job.origin });
}

async function changeUnits() {
  // Calibration runs on the server the first time a direction is used in calibrated units
  // (a second or two each); a direction too weak to calibrate answers with edit's message.
  app.strengths = {};
  buildSliders();
  requestRender();
}

async function checkBoundary() {
  const path = $("boundary-path").value.trim();
  $("boundary-result").textContent = "";
  const data = await api("/api/boundary", { generator: app.generator.generator, path });
  $("boundary-result").textContent = `usable: ${directionLabel(data.accepted)} (restart with -b to add a slider)`;
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
  $("generator-load").addEventListener("click", () => guarded(() => {
    const path = $("generator-path").value.trim();
    return loadGenerator(path || $("generator-select").value);
  }));
  $("generator-select").addEventListener("change", () => guarded(() => {
    $("generator-path").value = "";
    return loadGenerator($("generator-select").value);
  }));
  $("draw").addEventListener("click", () => guarded(drawSeed));
  $("draw-random").addEventListener("click", () => guarded(() => {
    $("seed").value = String(Math.floor(Math.random() * 1e6));
    return drawSeed();
  }));
  $("draw-bank").addEventListener("click", () => guarded(drawBank));
  $("upload").addEventListener("click", () => guarded(upload));
  $("units-calibrated").addEventListener("change", () => guarded(changeUnits));
  $("reset").addEventListener("click", () => {
    app.strengths = {};
    app.modes = {};
    buildSliders();
    requestRender();
  });
  for (const id of ["layer-start", "layer-stop"]) {
    $(id).addEventListener("input", () => {
      showLayers();
      requestRender();
    });
  }
  $("compare-on").addEventListener("change", requestRender);
  $("sweep-slider").addEventListener("change", sweepDefaults);
  $("compare-a").addEventListener("change", requestRender);
  $("compare-b").addEventListener("change", requestRender);
  $("compare-strength").addEventListener("input", () => {
    $("compare-strength-value").textContent = Number($("compare-strength").value).toFixed(2);
    requestRender();
  });
  $("boundary-check").addEventListener("click", () => guarded(checkBoundary));
  $("export-image").addEventListener("click", () => guarded(() => download("image")));
  $("export-latent").addEventListener("click", () => guarded(() => download("latent")));
  $("export-sidecar").addEventListener("click", () => guarded(() => download("sidecar")));
  $("export-sweep").addEventListener("click", () => guarded(() => download("sweep", sweepRequest())));
}

async function start() {
  wire();
  const info = await api("/api/info");
  const select = $("generator-select");
  for (const name of info.generators) select.add(new Option(name, name));
  if (!info.generators.includes(info.generator)) select.add(new Option(info.generator, info.generator));
  select.value = info.generator;
  await loadGenerator(info.generator);
  document.body.dataset.ready = "1";
}

window.addEventListener("DOMContentLoaded", () => guarded(start));
