// The Redub playground: every step is a call to this API with the key typed in the page.
"use strict";

const POLL_MS = 1000;
const STAGES = ["queued", "starting", "downloading", "probing", "analyzing", "rendering", "uploading", "done"];
const TERMINAL = new Set(["succeeded", "failed", "canceled"]);

const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const state = {
  inputs: null, // {video_url | video_file_id, audio_url | audio_file_id}
  originalSrc: null, // what the page plays as the original: the typed URL or a blob: URL of the file
  defaultSpeakers: new Set(), // the tracks the service dubs when `speakers` is left out
  chosen: new Set(),
  dubId: null,
};

class ApiProblem extends Error {
  constructor(status, body) {
    const problem = body || {};
    super(problem.detail || `The API answered ${status}.`);
    this.status = status;
    this.code = problem.code || "http_error";
    this.param = problem.param;
  }
}

function apiKey() {
  const key = $("api-key").value.trim();
  if (!key) throw new Error("Enter your API key first.");
  return key;
}

async function problemOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not a problem+json body (a proxy's page): the status says enough.
  }
  return new ApiProblem(response.status, body);
}

async function api(method, path, body, headers = {}) {
  const init = { method, headers: { Authorization: `Bearer ${apiKey()}`, ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) throw await problemOf(response);
  return response;
}

// Idempotency keys must be unique; crypto.randomUUID exists only in secure contexts, getRandomValues always.
function uniqueKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return "playground-" + Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

// XMLHttpRequest rather than fetch: it reports upload progress.
function upload(file, bar) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append("file", file, file.name);
    const request = new XMLHttpRequest();
    request.open("POST", "/v1/files");
    request.setRequestHeader("Authorization", `Bearer ${apiKey()}`);
    request.responseType = "json";
    bar.hidden = false;
    bar.value = 0;
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) bar.value = event.loaded / event.total;
    };
    request.onload = () => {
      if (request.status === 201) {
        bar.value = 1;
        resolve(request.response.id);
      } else {
        reject(new ApiProblem(request.status, request.response));
      }
    };
    request.onerror = () => reject(new Error(`The upload of ${file.name} failed (network error).`));
    request.send(form);
  });
}

async function sourceOf(name) {
  const file = $(`${name}-file`).files[0];
  const url = $(`${name}-url`).value.trim();
  if (file && url) throw new Error(`Give the ${name} as a file or as a URL, not both.`);
  if (!file && !url) throw new Error(`Choose a ${name} file or give its URL.`);
  if (url) return { fields: { [`${name}_url`]: url }, preview: url };
  const id = await upload(file, $(`${name}-upload`));
  return { fields: { [`${name}_file_id`]: id }, preview: URL.createObjectURL(file) };
}

async function poll(path, onUpdate) {
  for (;;) {
    const body = await (await api("GET", path)).json();
    onUpdate(body);
    if (TERMINAL.has(body.status)) return body;
    await sleep(POLL_MS);
  }
}

function showError(error) {
  const box = $("error");
  if (error instanceof ApiProblem) {
    const param = error.param ? ` (${error.param})` : "";
    box.textContent = `${error.code}${param}: ${error.message}`;
  } else {
    box.textContent = error.message || String(error);
  }
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

// --- 1. Preflight ---------------------------------------------------------------------------------

async function runPreflight() {
  clearError();
  for (const id of ["step-preflight", "step-dub", "step-result"]) $(id).hidden = true;
  const button = $("run-preflight");
  button.disabled = true;
  try {
    apiKey();
    $("preflight-status").textContent = "Uploading…";
    const video = await sourceOf("video");
    const audio = await sourceOf("audio");
    state.inputs = { ...video.fields, ...audio.fields };
    state.originalSrc = video.preview;
    const created = await (
      await api("POST", "/v1/dubs/preflight", { ...state.inputs, sync_mode: $("sync-mode").value })
    ).json();
    const done = await poll(`/v1/dubs/preflight/${created.id}`, (preflight) => {
      $("preflight-status").textContent = `Preflight ${preflight.status}…`;
    });
    if (done.status !== "succeeded") {
      $("preflight-status").textContent = "Preflight failed.";
      throw new ApiProblem(422, { code: done.error.code, detail: done.error.message });
    }
    $("preflight-status").textContent = "Preflight succeeded.";
    await showPreflight(done);
  } catch (error) {
    if (!$("preflight-status").textContent.endsWith("failed.")) $("preflight-status").textContent = "";
    showError(error);
  } finally {
    button.disabled = false;
  }
}

async function showPreflight(preflight) {
  const report = preflight.report;
  const analysis = report.analysis;
  state.defaultSpeakers = new Set(analysis.speakers);
  state.chosen = new Set(analysis.speakers);
  await showFrame(preflight.id, report.frame);
  showTimeline(analysis);
  showFacts(report);
  const warnings = [...analysis.warnings];
  if (analysis.frames_without_face) {
    warnings.push(`${analysis.frames_without_face} of ${analysis.frame_count} frames show no usable face; `
      + "they are left unchanged.");
  }
  if (!analysis.tracks.length) warnings.push("No face was found: the dub only replaces the audio.");
  $("warnings").replaceChildren(...warnings.map((text) => element("li", {}, text)));
  $("step-preflight").hidden = false;
  $("step-dub").hidden = false;
  updateChoice();
}

function element(tag, attributes, text) {
  const node = document.createElement(tag);
  // Styles go through CSSOM: the page's Content-Security-Policy refuses inline style attributes.
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "style") Object.assign(node.style, value);
    else node.setAttribute(name, value);
  }
  if (text !== undefined) node.textContent = text;
  return node;
}

async function showFrame(preflightId, frame) {
  const response = await api("GET", `/v1/dubs/preflight/${preflightId}/frame`);
  const image = $("frame-image");
  const loaded = new Promise((resolve, reject) => {
    image.onload = resolve;
    image.onerror = () => reject(new Error("The preflight's frame could not be shown."));
  });
  if (image.src.startsWith("blob:")) URL.revokeObjectURL(image.src);
  image.src = URL.createObjectURL(await response.blob());
  await loaded;
  $("frame").querySelectorAll(".face").forEach((box) => box.remove());
  for (const face of frame.faces) {
    const [x0, y0, x1, y1] = face.box;
    const box = element("button", {
      type: "button",
      class: "face" + (face.speaking ? " speaking" : ""),
      "data-track": String(face.track_id),
      "aria-pressed": "false",
      style: {
        left: `${(100 * x0) / frame.width}%`,
        top: `${(100 * y0) / frame.height}%`,
        width: `${(100 * (x1 - x0)) / frame.width}%`,
        height: `${(100 * (y1 - y0)) / frame.height}%`,
      },
    });
    const label = `Face ${face.track_id}` + (face.speaking ? " · speaking" : "");
    box.append(element("span", { class: "label" }, label));
    box.title = `Click to dub face ${face.track_id} or not`;
    box.addEventListener("click", () => toggleFace(face.track_id));
    $("frame").append(box);
  }
}

function showTimeline(analysis) {
  const frames = Math.max(analysis.frame_count, 1);
  const seconds = frames / analysis.frame_rate;
  const axis = Math.max(seconds, analysis.dub_voice ? analysis.dub_voice.duration_s : 0);
  const span = (first, last, name) => element("span", {
    class: name,
    style: {
      left: `${((100 * first) / frames) * (seconds / axis)}%`,
      width: `${((100 * (last - first + 1)) / frames) * (seconds / axis)}%`,
    },
  });
  const rows = analysis.tracks.map((track) => {
    const bar = element("div", { class: "bar" });
    bar.append(span(track.first_frame, track.last_frame, "present"));
    for (const [first, last] of track.speaking) bar.append(span(first, last, "speaking"));
    const row = element("div", { class: "track", "data-track": String(track.id) });
    row.append(element("span", { class: "name" }, `Face ${track.id}`), bar);
    row.addEventListener("click", () => toggleFace(track.id));
    return row;
  });
  if (analysis.dub_voice) {
    const bar = element("div", { class: "bar" });
    for (const [start, end] of analysis.dub_voice.segments) {
      bar.append(element("span", {
        class: "voice",
        style: { left: `${(100 * start) / axis}%`, width: `${(100 * (end - start)) / axis}%` },
      }));
    }
    const row = element("div", { class: "track" });
    row.append(element("span", { class: "name" }, "New audio (speech)"), bar);
    rows.push(row);
  }
  $("timeline").replaceChildren(...rows);
}

function showFacts(report) {
  const video = report.input.video;
  const plan = report.plan;
  const estimate = report.estimate;
  const facts = [
    `Video: ${video.width}×${video.height}, ${Number(video.frame_rate).toFixed(2)} fps, `
      + `${Number(video.duration_s).toFixed(2)} s; new audio ${Number(report.input.audio.duration_s).toFixed(2)} s.`,
    `Length plan (${plan.requested}): ${plan.mode}, ${plan.output_frames} frames `
      + `(${Number(plan.output_seconds).toFixed(2)} s), ${report.segment_count} segments.`,
    `Render estimate (${estimate.renderer}): ${estimate.render_seconds} s for ${estimate.frames_to_render} frames.`,
  ];
  $("facts").replaceChildren(...facts.map((text) => element("li", {}, text)));
}

function toggleFace(trackId) {
  if (state.chosen.has(trackId)) state.chosen.delete(trackId);
  else state.chosen.add(trackId);
  updateChoice();
}

function sameSet(a, b) {
  return a.size === b.size && [...a].every((item) => b.has(item));
}

function updateChoice() {
  for (const node of document.querySelectorAll("[data-track]")) {
    const chosen = state.chosen.has(Number(node.dataset.track));
    node.classList.toggle("chosen", chosen);
    if (node.classList.contains("face")) node.setAttribute("aria-pressed", String(chosen));
  }
  const ids = [...state.chosen].sort((a, b) => a - b);
  $("speaker-choice").textContent = ids.length
    ? `Dubbing face${ids.length > 1 ? "s" : ""} ${ids.join(", ")}`
      + (sameSet(state.chosen, state.defaultSpeakers) ? " (the service's own choice)." : ".")
    : "No face chosen: whoever speaks in the source is dubbed.";
}

// --- 2. Dub ---------------------------------------------------------------------------------------

function showProgress(dub) {
  const current = dub.progress.stage;
  const reached = STAGES.indexOf(current);
  $("stages").replaceChildren(...STAGES.map((stage, index) => {
    let name = "";
    if (dub.status === "succeeded" || index < reached) name = "done";
    else if (index === reached) name = dub.status === "failed" ? "failed" : "current";
    return element("li", { class: name, "data-stage": stage }, stage);
  }));
  const bar = $("stage-progress");
  bar.hidden = false;
  bar.value = dub.status === "succeeded" ? 100 : dub.progress.percent;
  const where = dub.status === "queued" && dub.queue_position ? ` (position ${dub.queue_position})` : "";
  $("dub-status").textContent = `Dub ${dub.status}${where}: ${current} ${Math.round(dub.progress.percent)}%`;
}

async function startDub() {
  clearError();
  $("step-result").hidden = true;
  const button = $("start-dub");
  button.disabled = true;
  try {
    const body = { ...state.inputs, sync_mode: $("sync-mode").value };
    // The chosen faces are pinned by their preflight track ids (the dub's analysis finds the same tracks);
    // none chosen leaves the choice to the service.
    if (state.chosen.size) {
      body.speakers = [...state.chosen].sort((a, b) => a - b).map((id) => ({ track_id: id }));
    }
    const created = await (await api("POST", "/v1/dubs", body, { "Idempotency-Key": uniqueKey() })).json();
    state.dubId = created.id;
    $("cancel-dub").hidden = false;
    const done = await poll(`/v1/dubs/${created.id}`, showProgress);
    if (done.status === "failed") throw new ApiProblem(422, { code: done.error.code, detail: done.error.message });
    if (done.status === "succeeded") showResult(done);
  } catch (error) {
    showError(error);
  } finally {
    $("cancel-dub").hidden = true;
    button.disabled = false;
  }
}

async function cancelDub() {
  try {
    await api("POST", `/v1/dubs/${state.dubId}/cancel`);
  } catch (error) {
    showError(error);
  }
}

// --- 3. Compare: the dub leads, the original follows its clock ------------------------------------

const players = { original: null, dubbed: null, showing: "b" };

function formatTime(seconds) {
  const minutes = Math.floor(seconds / 60);
  return `${minutes}:${(seconds - minutes * 60).toFixed(1).padStart(4, "0")}`;
}

function follow() {
  const { original, dubbed } = players;
  const target = Math.min(dubbed.currentTime, original.duration || dubbed.currentTime);
  // Small drift is left alone: seeking a playing video stutters.
  if (Math.abs(original.currentTime - target) > 0.15) original.currentTime = target;
}

function showResult(dub) {
  const { original, dubbed } = players;
  original.src = state.originalSrc;
  dubbed.src = dub.output.url;
  $("download").href = dub.output.url;
  $("download").setAttribute("download", `dub-${dub.id}.mp4`);
  $("step-result").hidden = false;
}

function setupPlayers() {
  players.original = $("original");
  players.dubbed = $("dubbed");
  const { original, dubbed } = players;
  $("play-both").addEventListener("click", () => {
    if (dubbed.paused) {
      follow();
      dubbed.play().catch(showError);
    } else {
      dubbed.pause();
    }
  });
  dubbed.addEventListener("play", () => {
    $("play-both").textContent = "Pause";
    if (original.currentTime < (original.duration || Infinity)) original.play().catch(() => {});
  });
  dubbed.addEventListener("pause", () => {
    $("play-both").textContent = "Play";
    original.pause();
    follow();
  });
  dubbed.addEventListener("seeked", follow);
  dubbed.addEventListener("ratechange", () => { original.playbackRate = dubbed.playbackRate; });
  dubbed.addEventListener("timeupdate", () => {
    if (!dubbed.paused) follow();
    if (dubbed.duration) $("seek").value = String(Math.round((1000 * dubbed.currentTime) / dubbed.duration));
    $("clock").textContent = formatTime(dubbed.currentTime);
  });
  $("seek").addEventListener("input", () => {
    if (dubbed.duration) dubbed.currentTime = (Number($("seek").value) / 1000) * dubbed.duration;
  });
  $("toggle-view").addEventListener("click", () => {
    const ab = $("players").classList.toggle("ab");
    $("players").classList.toggle("side-by-side", !ab);
    $("toggle-view").textContent = ab ? "Side by side" : "A/B view";
    $("swap").hidden = !ab;
    showSide(ab ? players.showing : null);
  });
  $("swap").addEventListener("click", () => showSide(players.showing === "a" ? "b" : "a"));
}

// In A/B view one video is shown and heard at a time; side by side both show and the dub is heard.
function showSide(side) {
  if (side) players.showing = side;
  for (const figure of document.querySelectorAll("#players figure")) {
    figure.hidden = side !== null && figure.dataset.side !== side;
  }
  players.original.muted = side !== "a";
  players.dubbed.muted = side === "a";
  $("swap").textContent = players.showing === "a" ? "Show dub (B)" : "Show original (A)";
}

document.addEventListener("DOMContentLoaded", () => {
  $("run-preflight").addEventListener("click", runPreflight);
  $("start-dub").addEventListener("click", startDub);
  $("cancel-dub").addEventListener("click", cancelDub);
  setupPlayers();
});
