// The page: a thin client of the REST API. Every answer comes from the server's
// /v1/predict and /v1/read, the same code as `digitrec predict` and `digitrec read`.
"use strict";

const SIDE = 280; // drawing coordinates, whatever the canvas's size on screen
const PEN = 18; // pen width in drawing coordinates: MNIST-like strokes
// The drawing is sent at 64x64, the smallest working size of the pipeline: enough for a
// digit, and several times faster to read than the full canvas.
const SEND_SIDE = 64;

const canvas = document.getElementById("canvas");
const pad = document.getElementById("pad");
const photo = document.getElementById("photo");
// A photo the browser cannot show (HEIC, outside Safari) is still read by the server:
// only its preview is left out, instead of a broken-image icon.
photo.addEventListener("error", () => (photo.hidden = true));
const prediction = document.getElementById("prediction");
const reason = document.getElementById("reason");
const top3 = document.getElementById("top3");
const seen = document.getElementById("model-input");
const feedback = document.getElementById("feedback");
const feedbackStatus = document.getElementById("feedback-status");
const pen = canvas.getContext("2d");

let hasInk = false; // anything drawn since the last clear
let last = null; // the pen's previous point while drawing
let generation = 0; // bumped by every clear or upload: older answers are dropped
let busy = false; // a prediction request is in flight
let dirty = false; // the drawing changed since the request in flight was sent
let lastPicture = null; // what the shown answer was made from, for "that's wrong"
let maxUpload = 10 * 2 ** 20; // bytes; the server's own limit replaces it below

fetch("/health")
  .then((response) => response.json())
  .then((health) => (maxUpload = health.max_upload_bytes))
  .catch(() => {});

function resize() {
  // The canvas's pixels follow its size on screen (and the screen's density), so strokes
  // stay sharp; drawing coordinates stay SIDE x SIDE.
  const box = canvas.getBoundingClientRect();
  const pixels = Math.max(1, Math.round(box.width * (window.devicePixelRatio || 1)));
  if (canvas.width === pixels) return;
  const old = hasInk ? copyOf(canvas, canvas.width) : null;
  canvas.width = canvas.height = pixels;
  pen.setTransform(pixels / SIDE, 0, 0, pixels / SIDE, 0, 0);
  paper();
  if (old) pen.drawImage(old, 0, 0, SIDE, SIDE);
}

function paper() {
  // Explicitly white: a transparent canvas exported as PNG is read as ink on black.
  pen.save();
  pen.setTransform(1, 0, 0, 1, 0, 0);
  pen.fillStyle = "#fff";
  pen.fillRect(0, 0, canvas.width, canvas.height);
  pen.restore();
}

function copyOf(source, side) {
  const copy = document.createElement("canvas");
  copy.width = copy.height = side;
  const context = copy.getContext("2d");
  context.fillStyle = "#fff";
  context.fillRect(0, 0, side, side);
  context.imageSmoothingQuality = "high";
  context.drawImage(source, 0, 0, side, side);
  return copy;
}

function drawingAsPng(side) {
  return new Promise((resolve) => copyOf(canvas, side).toBlob(resolve, "image/png"));
}

function point(event) {
  const box = canvas.getBoundingClientRect();
  return [
    ((event.clientX - box.left) * SIDE) / box.width,
    ((event.clientY - box.top) * SIDE) / box.height,
  ];
}

function stroke(from, to) {
  pen.strokeStyle = pen.fillStyle = "#000";
  pen.lineWidth = PEN;
  pen.lineCap = pen.lineJoin = "round";
  pen.beginPath();
  pen.moveTo(from[0], from[1]);
  pen.lineTo(to[0], to[1]);
  pen.stroke();
}

canvas.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  canvas.setPointerCapture(event.pointerId);
  if (!photo.hidden) clear();
  last = point(event);
  stroke(last, last); // a dot for a tap
  hasInk = true;
  predictSoon();
});

canvas.addEventListener("pointermove", (event) => {
  if (!last) return;
  // Coalesced events hold every point the pointer passed since the last frame: a fast
  // stroke stays a smooth line rather than a few straight segments.
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const each of events.length ? events : [event]) {
    const next = point(each);
    stroke(last, next);
    last = next;
  }
  predictSoon();
});

for (const name of ["pointerup", "pointercancel"]) {
  canvas.addEventListener(name, () => {
    if (!last) return;
    last = null;
    predictSoon();
  });
}

function predictSoon() {
  // At most one request in flight; the drawing as it is when that one returns is sent
  // next. The answer follows the pen as closely as the server allows, never queueing.
  dirty = true;
  feedbackStatus.textContent = ""; // a changed drawing is not the one saved
  if (!busy) sendDrawing();
}

async function sendDrawing() {
  dirty = false;
  if (!hasInk) return showEmpty();
  busy = true;
  const asked = generation;
  try {
    const png = await drawingAsPng(SEND_SIDE);
    const answer = await post("/v1/predict?include_input=true", png);
    if (asked === generation) {
      lastPicture = { blob: png, name: "drawing.png", drawing: true };
      showPrediction(answer);
    }
  } catch (error) {
    if (asked === generation) showError(error);
  } finally {
    busy = false;
  }
  if (dirty && asked === generation) setTimeout(sendDrawing, 30);
}

async function post(path, blob, name = "image.png", fields = {}) {
  const form = new FormData();
  form.append("image", blob, name);
  for (const [key, value] of Object.entries(fields)) form.append(key, value);
  const response = await fetch(path, { method: "POST", body: form });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new Error(`server answered ${response.status}`);
  }
  if (!response.ok) throw new Error(body.error || `server answered ${response.status}`);
  return body;
}

function setState(state, text, why = "") {
  prediction.dataset.state = state;
  prediction.textContent = text;
  reason.textContent = why;
}

function showEmpty() {
  setState("empty", "draw a digit");
  top3.replaceChildren();
  showSeen(null);
  feedback.hidden = true;
  feedbackStatus.textContent = "";
  lastPicture = null;
}

function showPrediction(answer) {
  if (answer.number) return showNumber(answer.number, answer.reason); // digits in a row
  if (answer.digit !== null) {
    setState("digit", String(answer.digit), `${percent(answer.confidence)} sure`);
  } else if (!answer.probabilities) {
    setState("empty", "draw a digit", answer.reason || ""); // blank: no ink found
  } else {
    setState("refused", "not a digit", answer.reason || "");
  }
  showTop3(answer.probabilities);
  showSeen(answer.input);
  feedback.hidden = !answer.probabilities;
  // The status is cleared when the picture changes, not here: an answer for the same
  // drawing can arrive after "saved", and must not wipe it.
}

function showReading(reading) {
  const digits = reading.digits.map((d) => `${d.digit ?? "?"} ${percent(d.confidence)}`);
  showNumber(reading.text, `${reading.digits.length} digits: ${digits.join(", ")}`);
}

function showNumber(text, why) {
  setState("number", text, why);
  top3.replaceChildren();
  showSeen(null);
  feedback.hidden = true; // feedback takes one digit per picture
}

function showError(error) {
  setState("error", "error", error.message || String(error));
}

function showTop3(probabilities) {
  top3.replaceChildren();
  if (!probabilities) return;
  const order = probabilities.map((p, digit) => [p, digit]).sort((a, b) => b[0] - a[0]);
  for (const [p, digit] of order.slice(0, 3)) {
    const row = document.createElement("li");
    row.innerHTML = '<span class="label"></span><span class="bar"><span></span></span><span></span>';
    row.children[0].textContent = digit;
    row.children[1].firstChild.style.width = `${(100 * p).toFixed(1)}%`;
    row.children[2].textContent = percent(p);
    top3.append(row);
  }
}

function showSeen(pixels) {
  // The 28x28 model input: white ink on black, as MNIST and the model have it.
  const context = seen.getContext("2d");
  const image = context.createImageData(28, 28);
  for (let i = 0; i < 28 * 28; i++) {
    const value = pixels ? pixels[Math.floor(i / 28)][i % 28] : 0;
    image.data.set([value, value, value, 255], 4 * i);
  }
  context.putImageData(image, 0, 0);
}

function percent(p) {
  return `${(100 * p).toFixed(p > 0.999 || p < 0.001 ? 1 : 0)}%`;
}

function clear() {
  generation++;
  hasInk = false;
  last = null;
  dirty = false;
  photo.hidden = true;
  photo.removeAttribute("src");
  paper();
  showEmpty();
}

document.getElementById("clear").addEventListener("click", clear);

// Photos: upload or drag and drop. A picture with several digits is read as a number.

async function readPhoto(file) {
  if (!file) return;
  clear();
  if (file.size > maxUpload) {
    // Refused here: a browser sends the whole body before it reads the server's 413.
    const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
    return showError(new Error(`${file.name} is ${mib(file.size)}; the limit is ${mib(maxUpload)}`));
  }
  const asked = generation;
  photo.src = URL.createObjectURL(file);
  photo.hidden = false;
  setState("empty", "reading...");
  try {
    const reading = await post("/v1/read", file, file.name);
    if (asked !== generation) return;
    if (reading.digits.length > 1) return showReading(reading);
    const answer = await post("/v1/predict?include_input=true", file, file.name);
    if (asked !== generation) return;
    lastPicture = { blob: file, name: file.name, drawing: false };
    showPrediction(answer);
  } catch (error) {
    if (asked === generation) showError(error);
  }
}

document.getElementById("upload").addEventListener("change", (event) => {
  readPhoto(event.target.files[0]);
  event.target.value = ""; // the same file again is a new upload
});

for (const name of ["dragenter", "dragover"]) {
  document.addEventListener(name, (event) => {
    event.preventDefault(); // or the browser opens the photo instead of the page
    pad.classList.add("dragging");
  });
}
for (const name of ["dragleave", "drop"]) {
  document.addEventListener(name, () => pad.classList.remove("dragging"));
}
document.addEventListener("drop", (event) => {
  event.preventDefault();
  readPhoto(event.dataTransfer.files[0]);
});

// "That's wrong, it was a N": the picture is saved on the server for `digitrec finetune`.

const fixDigits = document.getElementById("fix-digits");
for (let digit = 0; digit < 10; digit++) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = digit;
  button.id = `fix-${digit}`;
  button.title = `save this picture as a ${digit}, to fine-tune the model`;
  button.addEventListener("click", () => sendFeedback(digit));
  fixDigits.append(button);
}

async function sendFeedback(digit) {
  if (!lastPicture) return;
  // A drawing is saved at full size; the answer was made from its 64x64 copy.
  const blob = lastPicture.drawing ? await drawingAsPng(SIDE) : lastPicture.blob;
  try {
    const saved = await post("/v1/feedback", blob, lastPicture.name, { label: digit });
    feedbackStatus.textContent = `saved as a ${saved.label}, for digitrec finetune`;
  } catch (error) {
    feedbackStatus.textContent = `not saved: ${error.message}`;
  }
}

window.addEventListener("resize", resize);
resize();
showEmpty();
