// The vit-dfkd browser demo: classify a drawn / uploaded digit with an exported model in
// onnxruntime-web (wasm), show the top-3 classes and the ViT's class-attention map; run an exported
// DETR detector on a generated or uploaded canvas and draw its boxes. Plain ES module, no build step.
// A classifier served with its int8 model (dfkd export --quantize int8) is offered in both
// precisions: a float / int8 switch picks the one whose prediction is shown, every input runs through
// both, and a table shows each one's prediction, latency (median of its last LATENCY_WINDOW calls),
// file size and test accuracy (from the ONNX metadata). An int8 file that onnxruntime-web cannot load
// or run is said so, with the runtime's error, and the float model goes on alone.
// Everything a model needs (classes, input size, normalisation) comes from /models.json, which
// dfkd serve reads from each ONNX file's metadata_props.
import * as ort from '/ort/ort.wasm.bundle.min.mjs';

ort.env.wasm.wasmPaths = '/ort/';
ort.env.wasm.numThreads = 1; // no cross-origin isolation needed (no SharedArrayBuffer)

const $ = (id) => document.getElementById(id);
const status = (text, error = false) => {
  $('status').textContent = text;
  $('status').classList.toggle('error', error);
};

/** State the end-to-end test reads (window.dfkd). */
const state = {
  ready: false, models: [], lastInput: null, lastResult: null, lastDetections: null, runs: 0, detRuns: 0,
  /** The selected classifier's precision, and per model name: last LATENCY_WINDOW latencies (ms), last result, load / run error. */
  precision: 'float', latency: {}, byModel: {}, sessionErrors: {}, benchRuns: 0,
};
window.dfkd = state;

/** Latency is the median over each model's last LATENCY_WINDOW session.run calls. */
const LATENCY_WINDOW = 50;

const sessions = new Map();
async function session(model) {
  if (!sessions.has(model.name)) {
    sessions.set(model.name, (async () => {
      const s = await ort.InferenceSession.create(model.url, { executionProviders: ['wasm'] });
      if (model.task === 'classification') {
        // one untimed call: the first run allocates, and would stand out in the latency window
        const [c, h, w] = model.inputShape;
        await s.run({ input: new ort.Tensor('float32', new Float32Array(c * h * w), [1, c, h, w]) });
      }
      return s;
    })());
  }
  return sessions.get(model.name);
}

/** A session, or null with the runtime's message recorded (e.g. an int8 operator the wasm build lacks). */
async function trySession(model) {
  try {
    return await session(model);
  } catch (e) {
    state.sessionErrors[model.name] = String(e?.message ?? e);
    console.error(`${model.name}:`, e);
    return null;
  }
}

function recordLatency(name, ms) {
  const l = (state.latency[name] ??= []);
  l.push(ms);
  if (l.length > LATENCY_WINDOW) l.shift();
}

function median(values) {
  if (values.length === 0) return null;
  const v = [...values].sort((a, b) => a - b);
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

// ---- image helpers ---------------------------------------------------------------------------------

/** Grey values in [0, 1] of a canvas (mean of R, G, B). */
function greyOf(ctx, w, h) {
  const d = ctx.getImageData(0, 0, w, h).data;
  const g = new Float32Array(w * h);
  for (let i = 0; i < w * h; i++) g[i] = (d[4 * i] + d[4 * i + 1] + d[4 * i + 2]) / (3 * 255);
  return g;
}

function canvasOf(w, h) {
  const c = document.createElement('canvas');
  c.width = w;
  c.height = h;
  return c;
}

/**
 * MNIST-style preprocessing of a drawing (white on black): crop to the ink, scale the longer side to
 * 20/28 of the input, paste so the centre of mass sits in the middle (as the MNIST digits were made).
 */
function mnistStyle(grey, w, h, size) {
  let x0 = w, y0 = h, x1 = -1, y1 = -1;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (grey[y * w + x] > 0.1) {
    x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
  }
  if (x1 < 0) return null;
  const src = canvasOf(w, h);
  const sctx = src.getContext('2d');
  const img = sctx.createImageData(w, h);
  for (let i = 0; i < w * h; i++) {
    const v = Math.round(grey[i] * 255);
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v;
    img.data[4 * i + 3] = 255;
  }
  sctx.putImageData(img, 0, 0);
  const bw = x1 - x0 + 1, bh = y1 - y0 + 1;
  const box = Math.round((size * 20) / 28);
  const scale = box / Math.max(bw, bh);
  const sw = Math.max(1, Math.round(bw * scale)), sh = Math.max(1, Math.round(bh * scale));
  const small = canvasOf(sw, sh);
  const smctx = small.getContext('2d');
  smctx.imageSmoothingQuality = 'high';
  smctx.drawImage(src, x0, y0, bw, bh, 0, 0, sw, sh);
  const sg = greyOf(smctx, sw, sh);
  let m = 0, cx = 0, cy = 0;
  for (let y = 0; y < sh; y++) for (let x = 0; x < sw; x++) {
    const v = sg[y * sw + x];
    m += v; cx += v * x; cy += v * y;
  }
  const ox = Math.round(size / 2 - (m > 0 ? cx / m : sw / 2) - 0.5);
  const oy = Math.round(size / 2 - (m > 0 ? cy / m : sh / 2) - 0.5);
  const out = new Float32Array(size * size);
  for (let y = 0; y < sh; y++) for (let x = 0; x < sw; x++) {
    const tx = x + ox, ty = y + oy;
    if (tx >= 0 && ty >= 0 && tx < size && ty < size) out[ty * size + tx] = sg[y * sw + x];
  }
  return out;
}

/** Resize grey pixels to size×size (used for uploads that are not already the model's size). */
function resizeGrey(grey, w, h, size) {
  const c = canvasOf(w, h);
  const ctx = c.getContext('2d');
  const img = ctx.createImageData(w, h);
  for (let i = 0; i < w * h; i++) {
    const v = Math.round(grey[i] * 255);
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v;
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  const o = canvasOf(size, size);
  const octx = o.getContext('2d');
  octx.imageSmoothingQuality = 'high';
  octx.drawImage(c, 0, 0, size, size);
  return greyOf(octx, size, size);
}

function loadImage(file) {
  return new Promise((ok, fail) => {
    const url = URL.createObjectURL(file);
    const img = new Image();
    img.onload = () => ok(img);
    img.onerror = () => fail(new Error(`${file.name || 'the file'} is not an image this browser can read`));
    img.src = url;
  });
}

/** Grey pixels of an image, inverted when the background is light (digits are white on black). */
function imageGrey(img) {
  const c = canvasOf(img.naturalWidth, img.naturalHeight);
  const ctx = c.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const g = greyOf(ctx, c.width, c.height);
  const mean = g.reduce((a, b) => a + b, 0) / g.length;
  if (mean > 0.5) for (let i = 0; i < g.length; i++) g[i] = 1 - g[i];
  return { grey: g, w: c.width, h: c.height };
}

function drawGrey(canvas, grey, w, h) {
  const small = canvasOf(w, h);
  const sctx = small.getContext('2d');
  const img = sctx.createImageData(w, h);
  for (let i = 0; i < w * h; i++) {
    const v = Math.round(grey[i] * 255);
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v;
    img.data[4 * i + 3] = 255;
  }
  sctx.putImageData(img, 0, 0);
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
}

/** A perceptual colour map (dark blue → yellow) for the attention overlay. */
function heat(v) {
  const stops = [[13, 8, 135], [126, 3, 168], [204, 71, 120], [248, 149, 64], [240, 249, 33]];
  const t = Math.max(0, Math.min(1, v)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(t));
  const f = t - i;
  return stops[i].map((a, k) => Math.round(a + f * (stops[i + 1][k] - a)));
}

function softmax(row) {
  const m = Math.max(...row);
  const e = row.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

// ---- classification ----------------------------------------------------------------------------------

let current = null; // the selected classifier's /models.json entry

/** Colour planes [3 × size × size] in [0, 1] of an image resized to the model's size (colour models). */
function rgbPlanes(img, size) {
  const c = canvasOf(size, size);
  const ctx = c.getContext('2d');
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(img, 0, 0, size, size);
  const d = ctx.getImageData(0, 0, size, size).data;
  const out = new Float32Array(3 * size * size);
  for (let i = 0; i < size * size; i++) for (let k = 0; k < 3; k++) out[k * size * size + i] = d[4 * i + k] / 255;
  return out;
}

/** Draws CHW planes (1 or 3 channels) in [0, 1] onto a canvas, upscaled without smoothing. */
function drawPlanes(canvas, planes, c, w, h) {
  const small = canvasOf(w, h);
  const sctx = small.getContext('2d');
  const img = sctx.createImageData(w, h);
  for (let i = 0; i < w * h; i++) {
    for (let k = 0; k < 3; k++) img.data[4 * i + k] = Math.round(planes[(c === 3 ? k : 0) * w * h + i] * 255);
    img.data[4 * i + 3] = 255;
  }
  sctx.putImageData(img, 0, 0);
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
}

/** One timed run of a classifier on its input planes px [c × h × w] in [0, 1]. */
async function runClassifier(model, px) {
  const [c, h, w] = model.inputShape;
  // what the model is fed: the pixels, or (x − mean) / std when the file does not normalise itself
  const input = model.normalization === 'external' ? px.map((v, i) => (v - model.mean[Math.floor(i / (h * w))]) / model.std[Math.floor(i / (h * w))]) : px;
  const s = await session(model);
  const t0 = performance.now();
  const out = await s.run({ input: new ort.Tensor('float32', input, [1, c, h, w]) });
  const ms = performance.now() - t0;
  recordLatency(model.name, ms);
  const logits = Array.from(out.logits.data);
  const probs = softmax(logits);
  const order = probs.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0]);
  const top3 = order.slice(0, 3).map(([p, i]) => ({ index: i, name: model.classes[i] ?? String(i), p }));
  const attention = out.attention ? Array.from(out.attention.data) : null;
  return { model: model.name, precision: model.precision ?? 'float', input, logits, top3, attention, ms };
}

/**
 * Classifies `pixels`: one grey plane [h × w] (repeated over the model's channels) or all the
 * model's channel planes [c × h × w], values in [0, 1]. The selected model's result is shown; its
 * other precision (if served and runnable) runs on the same input for the comparison table.
 */
async function classify(pixels) {
  const model = current;
  const [c, h, w] = model.inputShape;
  const px = new Float32Array(c * h * w);
  if (pixels.length === c * h * w) px.set(pixels);
  else for (let k = 0; k < c; k++) px.set(pixels, k * h * w);
  const r = await runClassifier(model, px);
  const { input, top3, attention, ms } = r;

  drawPlanes($('input-view'), px, c, w, h);
  const av = $('attention-view').getContext('2d');
  av.clearRect(0, 0, 196, 196);
  if (attention && model.patchGrid) {
    const g = model.patchGrid;
    const max = Math.max(...attention);
    const cells = canvasOf(g, g);
    const cctx = cells.getContext('2d');
    const img = cctx.createImageData(g, g);
    attention.forEach((v, i) => {
      const [r, gg, b] = heat(v / max);
      img.data.set([r, gg, b, 255], 4 * i);
    });
    cctx.putImageData(img, 0, 0);
    av.globalAlpha = 0.55;
    av.imageSmoothingEnabled = true;
    av.drawImage(cells, 0, 0, 196, 196);
    av.globalAlpha = 1;
  }
  $('attention-view').hidden = !(attention && $('show-attention').checked);
  $('attention-toggle').hidden = !attention;

  $('prediction').textContent = top3[0].name;
  $('prediction').dataset.class = String(top3[0].index);
  $('top3').replaceChildren(...top3.map((t) => {
    const li = document.createElement('li');
    li.dataset.class = String(t.index);
    li.innerHTML = `<strong></strong> ${(100 * t.p).toFixed(1)}%<span class="bar" style="width:${Math.round(120 * t.p)}px"></span>`;
    li.querySelector('strong').textContent = t.name;
    return li;
  }));
  $('timing').textContent = `${model.name}${model.precision === 'int8' ? ' (int8)' : ''}: ${ms.toFixed(1)} ms in onnxruntime-web (wasm, 1 thread)`;
  state.lastInput = Array.from(input);
  state.lastPixels = Array.from(px);
  state.lastPx = px;
  state.lastResult = r;
  state.byModel[model.name] = r;
  const other = partnerOf(model);
  if (other && !state.sessionErrors[other.name]) {
    try {
      state.byModel[other.name] = await runClassifier(other, px);
    } catch (e) {
      state.sessionErrors[other.name] = String(e?.message ?? e);
      updatePrecisionControls();
    }
  }
  renderCompare();
  state.runs++;
}

async function classifyDrawing() {
  const [, h] = current.inputShape;
  const grey = greyOf($('draw').getContext('2d'), 280, 280);
  const px = mnistStyle(grey, 280, 280, h);
  if (!px) {
    status('draw a digit (white on black)');
    return;
  }
  await classify(px);
  status('ready');
}

async function classifyImage(img) {
  const [c, h, w] = current.inputShape;
  if (c === 3) {
    // A colour model (e.g. a CIFAR ResNet): the image's own colours, resized to the input size.
    const planes = rgbPlanes(img, h);
    drawPlanes($('draw'), planes, 3, h, w);
    await classify(planes);
    status('ready');
    return;
  }
  const { grey, w: iw, h: ih } = imageGrey(img);
  // Show it on the drawing canvas, then feed it: as is when it already has the model's size (e.g. an
  // MNIST digit), MNIST-style centred otherwise.
  drawGrey($('draw'), grey, iw, ih);
  const px = iw === w && ih === h ? grey : mnistStyle(grey, iw, ih, h) ?? resizeGrey(grey, iw, ih, h);
  await classify(px);
  status('ready');
}

function setUpDrawing() {
  const canvas = $('draw');
  const ctx = canvas.getContext('2d');
  const clear = () => {
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, 280, 280);
  };
  clear();
  let drawing = false;
  let last = null;
  const pos = (e) => {
    const r = canvas.getBoundingClientRect();
    return [((e.clientX - r.left) * 280) / r.width, ((e.clientY - r.top) * 280) / r.height];
  };
  canvas.addEventListener('pointerdown', (e) => {
    drawing = true;
    last = pos(e);
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!drawing) return;
    const p = pos(e);
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = 22;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.beginPath();
    ctx.moveTo(...last);
    ctx.lineTo(...p);
    ctx.stroke();
    last = p;
  });
  const end = () => {
    if (!drawing) return;
    drawing = false;
    classifyDrawing().catch((e) => status(e.message, true));
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
  $('clear').addEventListener('click', () => {
    clear();
    $('top3').replaceChildren();
    $('prediction').textContent = '';
    $('prediction').dataset.class = '';
  });
  $('upload').addEventListener('change', async (e) => {
    const f = e.target.files[0];
    if (!f) return;
    try {
      await classifyImage(await loadImage(f));
    } catch (err) {
      status(err.message, true);
    }
    e.target.value = '';
  });
  $('sample').addEventListener('click', async () => {
    const i = Math.floor(Math.random() * 1005);
    const r = await fetch(`/samples/digit/${i}.png`);
    if (!r.ok) return status(`no sample digits: ${await r.text()}`, true);
    await classifyImage(await loadImage(new File([await r.blob()], `digit-${i}.png`)));
    status(`MNIST test digit #${i} (label ${r.headers.get('X-Label')})`);
  });
  $('show-attention').addEventListener('change', () => {
    $('attention-view').hidden = !$('show-attention').checked || !state.lastResult?.attention;
  });
}

// ---- float / int8 -----------------------------------------------------------------------------------

let group = null; // the selected classifier: { key, float, int8 } (either may be null)
let groups = [];

/** Each float classifier with its int8 model (the served pair), and unpaired models on their own. */
function groupsOf(classifiers) {
  const byName = new Map(classifiers.map((m) => [m.name, m]));
  const out = [];
  for (const m of classifiers) {
    const partner = m.pair ? byName.get(m.pair) : null;
    if (m.precision === 'int8' && partner) continue; // listed with its float model
    out.push({ key: m.name, float: m.precision === 'int8' ? null : m, int8: m.precision === 'int8' ? m : partner ?? null });
  }
  return out;
}

function partnerOf(model) {
  if (!group) return null;
  const other = model === group.float ? group.int8 : group.float;
  return other && other !== model ? other : null;
}

const runnable = (m) => Boolean(m) && !state.sessionErrors[m.name];

function updatePrecisionControls() {
  for (const p of ['float', 'int8']) {
    const input = $(`precision-${p}`);
    input.disabled = !runnable(group?.[p]);
    input.checked = current?.precision === p || (p === 'float' && current && !current.precision);
  }
  $('precision').classList.toggle('unavailable', !(runnable(group?.float) && runnable(group?.int8)));
}

const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;

/** The float vs int8 table and the note under it. */
function renderCompare() {
  if (!group) return;
  for (const p of ['float', 'int8']) {
    const tr = document.querySelector(`#compare tr[data-precision="${p}"]`);
    const m = group[p];
    const cell = (k) => tr.querySelector(`.${k}`);
    tr.classList.toggle('selected', Boolean(m) && m === current);
    tr.dataset.model = m?.name ?? '';
    cell('pred').classList.remove('error');
    if (!m) {
      for (const k of ['name', 'pred', 'latency', 'size', 'acc']) cell(k).textContent = k === 'name' ? '—' : '';
      tr.dataset.latency = '';
      continue;
    }
    cell('name').textContent = m.name;
    const err = state.sessionErrors[m.name];
    const r = state.byModel[m.name];
    if (err) {
      cell('pred').textContent = 'cannot run in onnxruntime-web';
      cell('pred').classList.add('error');
    } else {
      cell('pred').textContent = r ? `${r.top3[0].name} (${(100 * r.top3[0].p).toFixed(1)}%)` : '';
    }
    cell('pred').dataset.class = r && !err ? String(r.top3[0].index) : '';
    const l = state.latency[m.name] ?? [];
    const med = median(l);
    cell('latency').textContent = med === null ? '—' : `${med.toFixed(2)} ms (median of ${l.length})`;
    tr.dataset.latency = med === null ? '' : String(med);
    const ratio = p === 'int8' && group.float ? ` (${(group.float.bytes / m.bytes).toFixed(2)}× smaller)` : '';
    cell('size').textContent = kib(m.bytes) + ratio;
    cell('acc').textContent = typeof m.testAcc === 'number' ? `${(100 * m.testAcc).toFixed(2)}%` : '—';
  }
  const note = $('int8-note');
  const i8 = group.int8;
  note.classList.remove('error');
  if (i8 && state.sessionErrors[i8.name]) {
    note.textContent = `The int8 model ${i8.name} cannot run in onnxruntime-web (wasm): ${state.sessionErrors[i8.name]}`;
    note.classList.add('error');
  } else if (i8) {
    const c = i8.calibration;
    note.textContent = `int8: ${i8.quantization ?? 'QDQ'}${c ? `; calibrated on ${c.images} ${c.kind} images of ${c.run} (${c.method}), no real image` : ''}.`;
  } else if (group.float?.int8Error) {
    note.textContent = `No int8 model for ${group.float.name}: ${group.float.int8Error}`;
  } else {
    note.textContent = `No int8 model is served for ${group.key}: give dfkd serve an x.int8.onnx beside x.onnx (dfkd export --quantize int8), or start it with --int8.`;
  }
  $('bench').disabled = ![group.float, group.int8].some(runnable);
}

/** Selects a precision of the current group (falls back to the other one if it cannot run); re-runs the last input if asked. */
async function setPrecision(p, rerun = true) {
  const want = runnable(group[p]) ? group[p] : runnable(group.float) ? group.float : group.int8;
  const changed = want !== current;
  current = want;
  state.precision = current.precision ?? 'float';
  $('input-size').textContent = current.inputShape.join('×');
  $('model-info').textContent = `${current.family}, ${current.classes.length} classes, ${(current.bytes / 1024).toFixed(0)} KiB${current.precision === 'int8' ? ', int8' : ''}`;
  updatePrecisionControls();
  renderCompare();
  if (rerun && changed && state.lastPx && state.lastPx.length === current.inputShape.reduce((a, b) => a * b, 1)) await classify(state.lastPx);
}

/** Times `rounds` calls of each model of the group on the current input, alternating which goes first. */
async function benchmark(rounds = LATENCY_WINDOW) {
  const members = [group.float, group.int8].filter(runnable);
  const n = current.inputShape.reduce((a, b) => a * b, 1);
  const px = state.lastPx && state.lastPx.length === n ? state.lastPx : new Float32Array(n);
  status(`timing ${rounds} runs of ${members.map((m) => m.name).join(' and ')}…`);
  for (let r = 0; r < rounds; r++) {
    for (const m of r % 2 ? [...members].reverse() : members) {
      try {
        await runClassifier(m, px);
      } catch (e) {
        state.sessionErrors[m.name] = String(e?.message ?? e);
      }
    }
  }
  renderCompare();
  updatePrecisionControls();
  state.benchRuns++;
  status(`timed ${rounds} runs of each: ${members.map((m) => `${m.name} ${median(state.latency[m.name] ?? [])?.toFixed(2) ?? '—'} ms`).join(', ')} (median)`);
}

// ---- detection ------------------------------------------------------------------------------------------

let detector = null;
let detPixels = null; // [size × size] grey in [0, 1] of the current canvas

async function detect() {
  const model = detector;
  const [c, h, w] = model.inputShape;
  const input = new Float32Array(c * h * w);
  for (let k = 0; k < c; k++) input.set(detPixels, k * h * w);
  if (model.normalization === 'external') for (let i = 0; i < input.length; i++) input[i] = (input[i] - model.mean[Math.floor(i / (h * w))]) / model.std[Math.floor(i / (h * w))];
  const s = await session(model);
  const t0 = performance.now();
  const out = await s.run({ input: new ort.Tensor('float32', input, [1, c, h, w]) });
  const ms = performance.now() - t0;
  const [, Q, K1] = out.logits.dims;
  const logits = out.logits.data;
  const boxes = out.boxes.data;
  const threshold = Number($('threshold').value);
  const found = [];
  for (let q = 0; q < Q; q++) {
    const p = softmax(Array.from(logits.subarray(q * K1, (q + 1) * K1)));
    let best = 0;
    for (let k = 1; k < K1 - 1; k++) if (p[k] > p[best]) best = k; // the last class is "no object"
    if (p[best] >= threshold) found.push({ query: q, index: best, name: model.classes[best] ?? String(best), score: p[best], box: Array.from(boxes.subarray(q * 4, q * 4 + 4)) });
  }
  found.sort((a, b) => b.score - a.score);
  const view = $('det-view');
  drawGrey(view, detPixels, w, h);
  const ctx = view.getContext('2d');
  ctx.lineWidth = 2;
  ctx.font = '13px system-ui, sans-serif';
  for (const d of found) {
    const [cx, cy, bw, bh] = d.box;
    const x = (cx - bw / 2) * view.width, y = (cy - bh / 2) * view.height;
    ctx.strokeStyle = '#36d399';
    ctx.strokeRect(x, y, bw * view.width, bh * view.height);
    ctx.fillStyle = '#36d399';
    ctx.fillText(`${d.name} ${(100 * d.score).toFixed(0)}%`, x + 2, Math.max(12, y - 3));
  }
  $('det-list').replaceChildren(...found.map((d) => {
    const li = document.createElement('li');
    li.textContent = `${d.name}: ${(100 * d.score).toFixed(1)}% at (${d.box.map((v) => v.toFixed(2)).join(', ')})`;
    return li;
  }));
  $('det-timing').textContent = `${model.name}: ${found.length} detection${found.length === 1 ? '' : 's'} ≥ ${threshold}, ${ms.toFixed(1)} ms (wasm, 1 thread)`;
  state.lastDetections = { model: model.name, threshold, detections: found, input: Array.from(input), logits: Array.from(logits), boxes: Array.from(boxes), ms };
  state.detRuns++;
}

function setUpDetection() {
  const [, h, w] = detector.inputShape;
  $('det-generate').addEventListener('click', async () => {
    const seed = Math.floor(Math.random() * 1e6);
    const r = await fetch(`/samples/canvas/${seed}.png`);
    if (!r.ok) return status(`no sample canvases: ${await r.text()}`, true);
    const img = await loadImage(new File([await r.blob()], 'canvas.png'));
    const { grey, w: iw, h: ih } = imageGrey(img);
    detPixels = iw === w && ih === h ? grey : resizeGrey(grey, iw, ih, h);
    await detect();
  });
  $('det-upload').addEventListener('change', async (e) => {
    const f = e.target.files[0];
    if (!f) return;
    try {
      const { grey, w: iw, h: ih } = imageGrey(await loadImage(f));
      detPixels = iw === w && ih === h ? grey : resizeGrey(grey, iw, ih, h);
      await detect();
    } catch (err) {
      status(err.message, true);
    }
    e.target.value = '';
  });
  $('threshold').addEventListener('change', () => detPixels && detect());
}

// ---- start ------------------------------------------------------------------------------------------------

async function main() {
  const r = await fetch('/models.json');
  if (!r.ok) throw new Error(`/models.json: ${r.status}`);
  const models = await r.json();
  state.models = models;
  const classifiers = models.filter((m) => m.task === 'classification' && m.inputShape.length === 3);
  const detectors = models.filter((m) => m.task === 'detection');
  if (classifiers.length === 0 && detectors.length === 0) throw new Error('no models: start dfkd serve with --model <run folder or .onnx>');
  if (classifiers.length > 0) {
    const sel = $('model');
    groups = groupsOf(classifiers);
    const label = (g) => {
      const m = g.float ?? g.int8;
      return `${m.name} (${m.preset})${g.float && g.int8 ? ' — float / int8' : g.int8 ? ' — int8' : ''}`;
    };
    sel.replaceChildren(...groups.map((g) => new Option(label(g), g.key)));
    $('latency-window').textContent = String(LATENCY_WINDOW);
    state.crossOriginIsolated = window.crossOriginIsolated === true;
    if (!state.crossOriginIsolated) $('latency-window').textContent += ' (this page is not cross-origin isolated, so its timer ticks in 0.1 ms)';
    const pick = async () => {
      group = groups.find((g) => g.key === sel.value);
      // both precisions load up front; one the runtime refuses is reported, not fatal
      await Promise.all([group.float, group.int8].filter(Boolean).map(trySession));
      if (![group.float, group.int8].some(runnable)) throw new Error(`${group.key}: onnxruntime-web cannot load it: ${state.sessionErrors[(group.float ?? group.int8).name]}`);
      current = null;
      await setPrecision(state.precision, false);
    };
    sel.addEventListener('change', () => pick().then(() => state.lastInput && classifyDrawing()).catch((e) => status(e.message, true)));
    for (const p of ['float', 'int8']) {
      $(`precision-${p}`).addEventListener('change', (e) => {
        if (e.target.checked) setPrecision(p).then(() => status('ready')).catch((err) => status(err.message, true));
      });
    }
    $('bench').addEventListener('click', () => benchmark().catch((e) => status(e.message, true)));
    await pick();
    setUpDrawing();
    $('classify').hidden = false;
  }
  if (detectors.length > 0) {
    const sel = $('detector');
    sel.replaceChildren(...detectors.map((m) => new Option(`${m.name} (${m.preset})`, m.name)));
    detector = detectors[0];
    sel.addEventListener('change', () => {
      detector = detectors.find((m) => m.name === sel.value);
      if (detPixels) detect().catch((e) => status(e.message, true));
    });
    await session(detector);
    setUpDetection();
    $('detect').hidden = false;
  }
  state.ready = true;
  status('ready');
}

main().catch((e) => {
  status(`error: ${e.message}`, true);
  console.error(e);
});
