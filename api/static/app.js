// Dream Lab's web page: the same HTTP API as any client, no framework, no build step.
// Event streams are read with fetch (not EventSource) so that an API key can go in a header.
"use strict";

const TERMINAL = ["succeeded", "failed", "canceled"];
const $ = (id) => document.getElementById(id);
const cards = new Map(); // job id -> {el, job, following}
let apiKey = localStorage.getItem("dreamlab-key") || "";
let modes = {};

function authHeaders(extra = {}) {
  return apiKey ? { ...extra, Authorization: `Bearer ${apiKey}` } : extra;
}

async function api(method, path, body) {
  const init = { method, headers: authHeaders(body ? { "content-type": "application/json" } : {}) };
  if (body) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  if (response.status === 401) $("key-form").hidden = false;
  const isJson = (response.headers.get("content-type") || "").includes("json");
  const data = isJson ? await response.json() : null;
  if (!response.ok) throw new Error((data && data.error && data.error.message) || `HTTP ${response.status}`);
  return data;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

// ---- the form ----

async function loadModes() {
  const listing = await api("GET", "/api/modes");
  const select = $("mode");
  select.replaceChildren();
  for (const mode of listing.modes) {
    modes[mode.name] = mode;
    select.append(el("option", { value: mode.name }, mode.name));
  }
  select.value = listing.default_mode || listing.modes[0].name;
  showDefaults();
}

function showDefaults() {
  const mode = modes[$("mode").value];
  if (!mode) return;
  $("size").placeholder = mode.default_size;
  $("steps").placeholder = mode.default_steps;
  $("guidance").placeholder = mode.default_guidance;
  $("negative_prompt").placeholder = mode.negative_prompt || "";
}

function formBody() {
  const body = { mode: $("mode").value, prompt: $("prompt").value };
  const text = { negative_prompt: "negative_prompt", size: "size" };
  const numbers = { steps: "num_inference_steps", guidance: "guidance_scale", seed: "seed" };
  for (const [id, field] of Object.entries(text)) if ($(id).value) body[field] = $(id).value;
  for (const [id, field] of Object.entries(numbers)) if ($(id).value !== "") body[field] = Number($(id).value);
  if ($("superres").checked) {
    body.superres = true;
    body.superres_magnitude = Number($("superres_magnitude").value);
  }
  return body;
}

async function submitJob(event) {
  event.preventDefault();
  $("form-error").textContent = "";
  $("submit").disabled = true;
  try {
    const job = await api("POST", "/api/jobs", formBody());
    follow(showJob(job, true));
  } catch (error) {
    $("form-error").textContent = error.message;
  } finally {
    $("submit").disabled = false;
  }
}

// ---- the gallery ----

function describe(job) {
  const p = job.params || {};
  const parts = [job.mode, p.width && `${p.width}x${p.height}`, p.steps && `${p.steps} steps`,
    p.guidance !== undefined && `cfg ${p.guidance}`, p.seed !== undefined && `seed ${p.seed}`];
  return parts.filter(Boolean).join(" · ");
}

function showJob(job, first = false) {
  let card = cards.get(job.id);
  if (!card) {
    card = { el: el("article", { class: "card", "data-job": job.id }), job, following: false };
    cards.set(job.id, card);
    if (first) $("gallery").prepend(card.el);
    else $("gallery").append(card.el);
  }
  card.job = { ...card.job, ...job };
  render(card);
  return card;
}

function render(card) {
  const job = card.job;
  const prompt = (job.params && (job.params.prompt || job.params.handler)) || job.kind;
  const progress = job.progress && job.status === "running"
    ? el("progress", { max: job.progress.total, value: job.progress.step }) : null;
  const queued = job.status === "queued" && job.position ? ` (position ${job.position})` : "";
  const status = el("div", { class: "status" }, job.status + queued
    + (job.progress && job.status === "running" ? ` ${job.progress.step}/${job.progress.total}` : ""));
  const actions = el("div", { class: "actions" });
  if (!TERMINAL.includes(job.status)) {
    actions.append(el("button", { class: "cancel", type: "button", onclick: () => cancel(card) }, "Cancel"));
  }
  if (card.imageUrl) {
    actions.append(el("a", { href: card.imageUrl, download: `${job.id}.${card.imageType === "image/jpeg" ? "jpg" : "png"}` }, "Download"));
  }
  const thumb = card.imageUrl ? el("img", { src: card.imageUrl, alt: prompt })
    : el("div", { class: "thumb" }, job.status);
  const error = job.error ? el("div", { class: "error" }, job.error.message) : null;
  card.el.dataset.status = job.status;
  const parts = [thumb, status, progress, el("div", {}, prompt), el("small", {}, describe(job)), error, actions];
  card.el.replaceChildren(...parts.filter(Boolean));
}

async function loadImage(card) {
  const result = card.job.result;
  if (card.imageUrl || !result || !result.url) return;
  const response = await fetch(result.url, { headers: authHeaders() });
  if (!response.ok) return;
  const blob = await response.blob();
  card.imageType = blob.type;
  card.imageUrl = URL.createObjectURL(blob);
  render(card);
}

async function cancel(card) {
  try {
    showJob(await api("POST", `/api/jobs/${card.job.id}/cancel`));
  } catch (error) {
    card.job.error = { message: error.message };
    render(card);
  }
}

async function loadGallery() {
  const page = await api("GET", "/api/jobs?limit=24");
  for (const job of page.jobs) {
    const card = showJob(job);
    if (job.status === "succeeded") loadImage(card);
    else if (!TERMINAL.includes(job.status)) follow(card);
  }
}

// ---- live progress: the job's event stream, read with fetch ----

async function follow(card) {
  if (card.following) return;
  card.following = true;
  try {
    const response = await fetch(`/api/jobs/${card.job.id}/events`, { headers: authHeaders() });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        onEvent(card, buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  } catch (error) {
    await poll(card); // no stream to be had (or it broke): poll instead
  } finally {
    card.following = false;
  }
}

function onEvent(card, frame) {
  let name = "message";
  const data = [];
  for (const line of frame.split("\n")) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trim());
  }
  if (!data.length) return; // a keepalive comment
  const payload = JSON.parse(data.join("\n"));
  if (name === "progress") showJob({ id: card.job.id, status: "running", progress: payload });
  else showJob({ ...payload, status: name });
  if (name === "succeeded") loadImage(card);
}

async function poll(card) {
  while (!TERMINAL.includes(card.job.status)) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    showJob(await api("GET", `/api/jobs/${card.job.id}`));
  }
  loadImage(card);
}

// ---- the fleet panel ----

function megabytes(bytes) {
  return bytes ? `${Math.round(bytes / 2 ** 20)} MB` : "";
}

async function loadFleet() {
  try {
    const fleet = await api("GET", "/api/models/status");
    const workers = el("table", {}, el("tr", {}, ...["worker", "mode", "state", "memory"].map((h) => el("th", {}, h))));
    for (const w of fleet.workers) {
      const memory = w.memory || {};
      const used = memory.total_bytes ? `${megabytes(memory.models_bytes)} (${megabytes(memory.free_bytes)} free)` : "";
      workers.append(el("tr", {}, el("td", {}, w.name), el("td", {}, w.mode || ""), el("td", {}, w.state || ""), el("td", {}, used)));
    }
    const queues = el("table", {}, el("tr", {}, el("th", {}, "mode"), el("th", {}, "waiting")));
    for (const [name, queue] of Object.entries(fleet.queues)) {
      queues.append(el("tr", {}, el("td", {}, name), el("td", {}, String(queue.waiting))));
    }
    const serving = `serving: ${fleet.current_modes.join(", ") || "none"} · ${fleet.waiting_total} of ${fleet.queue_max} waiting`;
    $("fleet-body").replaceChildren(el("p", {}, serving), workers, queues);
  } catch (error) {
    $("fleet-body").textContent = error.message;
  }
}

// ---- start ----

$("mode").addEventListener("change", showDefaults);
$("job-form").addEventListener("submit", submitJob);
$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  apiKey = $("key").value.trim();
  localStorage.setItem("dreamlab-key", apiKey);
  $("key-form").hidden = true;
  start();
});

function start() {
  loadModes().catch((error) => ($("form-error").textContent = error.message));
  loadGallery().catch((error) => ($("gallery").textContent = error.message));
  loadFleet();
}

start();
setInterval(loadFleet, 5000);
