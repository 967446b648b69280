// dfkd serve: the browser demo (web/) on localhost, with onnxruntime-web's wasm files from
// node_modules (no CDN) and the exported models. A model given as a run folder is exported in memory
// with dfkd export's code (dynamic batch, normalisation folded in); an .onnx file is served as is.
//
// int8: a model's int8 file (dfkd export --quantize int8) is served beside it and paired with it — the
// page switches between the two and times both. An `x.int8.onnx` next to a served `x.onnx`, and a
// run folder's `model.int8.onnx` (what dfkd demo writes), are picked up by themselves; an int8 file
// given with --model pairs with the float model named as it less `.int8`. With --int8, every served
// classifier without one gets an int8 model made here by dfkd export's quantiser, calibrated on
// synthetic images of its own run (or --calibrate-from's) — never on real images; the real test split
// is read afterwards only, for the float and int8 accuracy in the int8 file's metadata.
//
//   GET /                      web/index.html (and the other files of web/)
//   GET /ort/<file>            onnxruntime-web's dist files (ort.wasm.bundle.min.mjs, *.wasm)
//   GET /models.json           [{ name, url, task, classes, inputShape, patchGrid, … }] from each model's metadata_props
//   GET /models/<name>.onnx    the model
//   GET /samples/digit/<i>.png          MNIST test digit i (28×28), with its label in X-Label
//   GET /samples/canvas/<seed>.png      a 64×64 canvas of real MNIST test digits (canvas-mnist's composer)
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, join, normalize as normalizePath, resolve, sep } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { decodeModel, metadataOf } from '../export/onnx-graph.js';
import { modelBasePath } from '../models/load.js';
import type { CalibrationSource } from '../export/calibration.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const WEB_DIR = join(REPO, 'web');

export interface ServedModel {
  name: string;
  url: string;
  task: 'classification' | 'detection';
  family: string;
  preset: string;
  classes: string[];
  inputShape: number[];
  normalization: string;
  mean: number[];
  std: number[];
  /** ViT: the patch grid of the 'attention' output. */
  patchGrid?: number;
  hasAttention: boolean;
  bytes: number;
  source: string;
  dataset: string;
  /** 'int8' for a file made by dfkd export --quantize int8 (its vit_dfkd.quantization metadata), else 'float'. */
  precision: 'float' | 'int8';
  /** The served model of the other precision (float ↔ int8), when both are served. */
  pair?: string;
  /**
   * Test accuracy from the ONNX metadata: an int8 file's vit_dfkd.test_acc_int8; for its float model
   * the same file's vit_dfkd.test_acc_float (both measured in ONNX Runtime on the test split), else the
   * float file's own vit_dfkd.test_acc (the model card's).
   */
  testAcc?: number;
  /** int8: its calibration set (vit_dfkd.calibration: synthetic images of a run) and scheme. */
  calibration?: { kind: string; run: string; method: string; images: number };
  quantization?: string;
  /** Why no int8 model could be made for this one (--int8). */
  int8Error?: string;
}

export interface ServeOptions {
  models: string[];
  port: number;
  host: string;
  quiet?: boolean;
  /** Make an int8 model (dfkd export's quantiser, data-free) for every served classifier that has none. */
  int8?: boolean;
  /** The run whose generator / image bank calibrates those (default: each model's own run folder). */
  calibrateFrom?: string;
  calibrationImages?: number;
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.wasm': 'application/wasm', '.onnx': 'application/octet-stream',
  '.png': 'image/png', '.svg': 'image/svg+xml', '.ico': 'image/x-icon',
};

function ortWebDir(): string {
  const req = createRequire(import.meta.url);
  const wasm = req.resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm');
  return dirname(wasm);
}

/** Relative paths: from the working directory, else from the repository (the default teachers). */
function resolveGiven(given: string): string {
  return existsSync(given) || isAbsolute(given) || !existsSync(join(REPO, given)) ? given : join(REPO, given);
}

/** The int8 file that goes with a served float model, if one is there: x.onnx → x.int8.onnx; a run folder → its model.int8.onnx. */
function int8Beside(given: string): string | null {
  const path = resolveGiven(given);
  let candidate: string | null = null;
  if (path.endsWith('.onnx')) candidate = path.endsWith('.int8.onnx') ? null : path.replace(/\.onnx$/, '.int8.onnx');
  else if (existsSync(path) && statSync(path).isDirectory()) candidate = join(path, 'model.int8.onnx');
  return candidate && existsSync(candidate) ? candidate : null;
}

/** A served model's name: the file or folder name (a run's model.onnx / model.int8.onnx: the run's name). */
function nameOf(path: string): string {
  let name = basename(path.replace(/[/\\]+$/, '')).replace(/\.onnx$/, '');
  if (name === 'model' || name === 'model.int8') name = basename(dirname(resolve(path))) + name.slice('model'.length);
  return name.replace(/[^A-Za-z0-9._-]/g, '_');
}

/** An exported model's bytes: an .onnx file as is, a run folder exported in memory. */
async function modelBytes(given: string): Promise<Uint8Array> {
  const path = resolveGiven(given);
  if (path.endsWith('.onnx')) {
    if (!existsSync(path)) throw new Error(`no ONNX file at ${path}`);
    return readFileSync(path);
  }
  const base = modelBasePath(path);
  if (!existsSync(`${base}.json`)) throw new Error(`no model at ${path}: give an .onnx file made by dfkd export, or a run folder with model.json / model.safetensors`);
  const card = JSON.parse(readFileSync(`${base}.json`, 'utf8')) as { task?: string };
  if (card.task === 'detect') {
    const [{ createDetector }, { loadCheckpointInto }, { detectorToOnnx }] = await Promise.all([import('../models/detr.js'), import('../export/checkpoint.js'), import('../export/onnx-detr.js')]);
    const c = card as { preset: string; overrides?: Record<string, unknown>; classNames: string[]; mean: number[]; std: number[]; dataset?: string };
    const model = createDetector(c.preset, c.overrides ?? {});
    loadCheckpointInto(base, model);
    model.eval();
    return detectorToOnnx(model, c, { dynamicBatch: true }).bytes;
  }
  const [{ loadClassifier }, { classifierToOnnx }] = await Promise.all([import('../models/load.js'), import('../export/onnx.js')]);
  const { model, card: cc } = loadClassifier(path);
  return classifierToOnnx(model, cc, { dynamicBatch: true }).bytes;
}

function describe(name: string, bytes: Uint8Array, source: string): ServedModel {
  const proto = decodeModel(bytes);
  const meta = metadataOf(proto);
  const json = <T>(k: string, fallback: T): T => {
    try {
      return meta[k] !== undefined ? (JSON.parse(meta[k]!) as T) : fallback;
    } catch {
      return fallback;
    }
  };
  const outputs = (proto.graph?.output ?? []).map((o) => o.name);
  if (!meta['vit_dfkd.classes']) throw new Error(`${source}: this ONNX file has no vit-dfkd metadata (export it with dfkd export)`);
  return {
    name, url: `/models/${encodeURIComponent(name)}.onnx`, source,
    task: meta['vit_dfkd.task'] === 'detection' ? 'detection' : 'classification',
    family: meta['vit_dfkd.family'] ?? '', preset: meta['vit_dfkd.preset'] ?? '',
    classes: json<string[]>('vit_dfkd.classes', []), inputShape: json<number[]>('vit_dfkd.input_shape', []),
    normalization: meta['vit_dfkd.normalization'] ?? 'folded', mean: json<number[]>('vit_dfkd.mean', []), std: json<number[]>('vit_dfkd.std', []),
    ...(meta['vit_dfkd.patch_grid'] ? { patchGrid: Number(meta['vit_dfkd.patch_grid']) } : {}),
    hasAttention: outputs.includes('attention'), bytes: bytes.length, dataset: meta['vit_dfkd.dataset'] ?? '',
    precision: (meta['vit_dfkd.quantization'] ?? '').startsWith('int8') ? 'int8' : 'float',
    ...(meta['vit_dfkd.quantization'] ? { quantization: meta['vit_dfkd.quantization'] } : {}),
    ...(json<CalibrationSource | null>('vit_dfkd.calibration', null) ? { calibration: pickCalibration(json<CalibrationSource>('vit_dfkd.calibration', {} as CalibrationSource)) } : {}),
    ...(accuracy(meta['vit_dfkd.test_acc_int8'] ?? meta['vit_dfkd.test_acc']) !== undefined ? { testAcc: accuracy(meta['vit_dfkd.test_acc_int8'] ?? meta['vit_dfkd.test_acc']) } : {}),
  };
}

const accuracy = (v: string | undefined): number | undefined => {
  const x = v === undefined ? Number.NaN : Number(v);
  return Number.isFinite(x) ? x : undefined;
};
const pickCalibration = (c: CalibrationSource): NonNullable<ServedModel['calibration']> => ({ kind: c.kind, run: c.run, method: c.method, images: c.images });

/**
 * The int8 model of a served float classifier, made here as dfkd export --quantize int8 makes it:
 * calibrated on synthetic images of `run` (the model's own run unless --calibrate-from), then — for
 * evaluation only — float and int8 accuracy on the real test split, recorded in its metadata.
 */
async function int8InMemory(floatBytes: Uint8Array, info: ServedModel, o: ServeOptions): Promise<Uint8Array> {
  if (info.task !== 'classification') throw new Error('detectors are served in float only (int8 quantisation is for classifiers)');
  const { syntheticCalibrationSet, runFolderOf, DEFAULT_CALIBRATION_IMAGES } = await import('../export/calibration.js');
  const run = o.calibrateFrom ?? runFolderOf(resolveGiven(info.source));
  if (!run) {
    throw new Error(`${info.source} is not in a distillation run folder, so there is no generator to calibrate an int8 model on; give --calibrate-from <run folder made by dfkd distill> (calibration uses synthetic images only)`);
  }
  const { quantizeOnnxInt8, withMetadata, WEIGHT_QMAX_REDUCED } = await import('../export/quantize.js');
  const cal = syntheticCalibrationSet(run, { count: o.calibrationImages ?? DEFAULT_CALIBRATION_IMAGES });
  let q: Awaited<ReturnType<typeof quantizeOnnxInt8>>;
  try {
    const [, c, h, w] = cal.images.shape;
    if (JSON.stringify([c, h, w]) !== JSON.stringify(info.inputShape)) throw new Error(`the generator of ${run} makes [${c}, ${h}, ${w}] images, the model takes [${info.inputShape.join(', ')}]; give --calibrate-from a run of its kind`);
    q = await quantizeOnnxInt8(floatBytes, cal.images);
  } finally {
    cal.images.dispose();
  }
  const props: Record<string, string> = {
    'vit_dfkd.quantization': `int8 QDQ: ${Math.log2(WEIGHT_QMAX_REDUCED + 1) + 1}-bit symmetric per-channel weights, uint8 per-tensor activations (min/max), Conv/Gemm/MatMul; LayerNorm, Softmax, GELU in float`,
    'vit_dfkd.calibration': JSON.stringify(cal.source),
    'vit_dfkd.bytes_float': String(floatBytes.length),
  };
  // Evaluation only, after calibration: the real test split never reaches the quantiser.
  if (info.dataset) {
    const [{ loadDataset }, { evaluateOnnx, loadOnnx }] = await Promise.all([import('../data/index.js'), import('../export/ort.js')]);
    let test: ReturnType<typeof loadDataset> | undefined;
    try {
      test = loadDataset(info.dataset, 'test');
    } catch {
      // no test split here: the int8 file goes without accuracy figures
    }
    if (test) {
      for (const [key, bytes] of [['vit_dfkd.test_acc_float', floatBytes], ['vit_dfkd.test_acc_int8', q.bytes]] as const) {
        const loaded = await loadOnnx(bytes, { threads: 1 });
        props[key] = String((await evaluateOnnx(loaded, test)).accuracy);
        await loaded.session.release();
      }
      test.images.dispose();
      test.labels.dispose();
    }
  }
  return withMetadata(q.bytes, props);
}

function pngOfGrey(pixels: Float32Array, w: number, h: number): Buffer {
  const png = new PNG({ width: w, height: h });
  for (let i = 0; i < w * h; i++) {
    const v = Math.max(0, Math.min(255, Math.round(pixels[i]! * 255)));
    png.data[4 * i] = png.data[4 * i + 1] = png.data[4 * i + 2] = v;
    png.data[4 * i + 3] = 255;
  }
  return PNG.sync.write(png);
}

/** Sample images from the real MNIST test split (loaded on first request). */
class Samples {
  private test: { images: Float32Array; labels: BigInt64Array; n: number } | null = null;
  private async load(): Promise<NonNullable<Samples['test']>> {
    if (!this.test) {
      const { loadMnist } = await import('../data/mnist.js');
      const d = loadMnist('test');
      this.test = { images: d.images.data() as Float32Array, labels: d.labels.data() as BigInt64Array, n: d.labels.size(0) };
      d.images.dispose();
      d.labels.dispose();
    }
    return this.test;
  }
  async digit(i: number): Promise<{ png: Buffer; label: number }> {
    const t = await this.load();
    if (!Number.isInteger(i) || i < 0 || i >= t.n) throw new RangeError(`digit index must be 0..${t.n - 1}`);
    return { png: pngOfGrey(t.images.subarray(i * 784, (i + 1) * 784), 28, 28), label: Number(t.labels[i]) };
  }
  async canvas(seed: number): Promise<{ png: Buffer; objects: unknown }> {
    const t = await this.load();
    if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError('seed must be a non-negative integer');
    const { composeCanvases } = await import('../data/canvas.js');
    const set = composeCanvases({ images: t.images, labels: t.labels, n: t.n, h: 28, w: 28, split: 'test' }, 1, seed);
    return { png: pngOfGrey(set.pixels, 64, 64), objects: set.objects[0] };
  }
}

export interface RunningServer {
  url: string;
  models: ServedModel[];
  /** What serving found or could not do (int8 models picked up, made, or refused, and why). */
  notes: string[];
  server: Server;
  close(): Promise<void>;
}

/** Starts the demo server (port 0 = any free port). Resolves once it listens. */
export async function startServer(o: ServeOptions): Promise<RunningServer> {
  if (!existsSync(join(WEB_DIR, 'index.html'))) throw new Error(`the demo page is missing: ${join(WEB_DIR, 'index.html')}`);
  const ortDir = ortWebDir();
  const list: { info: ServedModel; bytes: Uint8Array }[] = [];
  const notes: string[] = [];
  const taken = new Set<string>();
  const add = (path: string, bytes: Uint8Array, at = list.length): ServedModel => {
    let name = nameOf(path);
    while (taken.has(name)) name = `${name}_`;
    taken.add(name);
    const info = describe(name, bytes, path);
    list.splice(at, 0, { info, bytes });
    return info;
  };
  const given = new Set(o.models.map((p) => resolve(resolveGiven(p))));
  for (const path of o.models) {
    add(path, await modelBytes(path));
    const beside = int8Beside(path);
    if (beside && !given.has(resolve(beside))) {
      given.add(resolve(beside));
      const info = add(beside, readFileSync(beside));
      notes.push(`${info.name}: the int8 file beside ${path} (${beside})`);
    }
  }
  // pairs: an int8 model named <float name>.int8 goes with that float model
  const pairUp = (): void => {
    for (const { info } of list) {
      if (info.precision !== 'int8' || info.pair) continue;
      const f = list.find((m) => m.info.precision === 'float' && !m.info.pair && m.info.task === info.task && m.info.name === info.name.replace(/_*$/, '').replace(/\.int8$/, ''));
      if (!f) continue;
      info.pair = f.info.name;
      f.info.pair = info.name;
      const floatAcc = accuracy(metadataOf(decodeModel(list.find((m) => m.info === info)!.bytes))['vit_dfkd.test_acc_float']);
      if (floatAcc !== undefined) f.info.testAcc = floatAcc;
    }
  };
  pairUp();
  if (o.int8) {
    for (const m of [...list]) {
      if (m.info.precision !== 'float' || m.info.pair) continue;
      try {
        const bytes = await int8InMemory(m.bytes, m.info, o);
        const info = add(`${m.info.name}.int8.onnx`, bytes, list.indexOf(m) + 1);
        info.source = `${m.info.source} (int8, made by dfkd serve --int8)`;
        notes.push(`${info.name}: int8 of ${m.info.name}, calibrated on ${info.calibration?.images ?? '?'} synthetic images of ${info.calibration?.run ?? '?'} (${info.calibration?.method ?? '?'})`);
      } catch (e) {
        m.info.int8Error = (e as Error).message;
        notes.push(`${m.info.name}: no int8 model: ${m.info.int8Error}`);
      }
    }
    pairUp();
    if (!list.some((m) => m.info.precision === 'int8')) throw new Error(`--int8: no served model could be quantised:\n${notes.join('\n')}`);
  }
  const models = new Map(list.map((m) => [m.info.name, m]));
  const samples = new Samples();

  const send = (res: ServerResponse, status: number, type: string, body: string | Uint8Array, headers: Record<string, string> = {}): void => {
    // Cross-origin isolation (everything the page loads is from here): performance.now() then ticks in
    // microseconds, not Chromium's coarsened 0.1 ms, which the sub-millisecond LeNet latencies need.
    res.writeHead(status, {
      'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store',
      'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp', ...headers,
    });
    res.end(body);
  };
  const sendFile = (res: ServerResponse, root: string, rel: string): void => {
    const file = normalizePath(join(root, rel));
    if (!file.startsWith(root + sep) || !existsSync(file) || !statSync(file).isFile()) {
      send(res, 404, 'text/plain', `not found: ${rel}\n`);
      return;
    }
    send(res, 200, MIME[extname(file)] ?? 'application/octet-stream', readFileSync(file));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain', 'only GET\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = decodeURIComponent(url.pathname);
    if (path === '/models.json') {
      send(res, 200, MIME['.json']!, JSON.stringify([...models.values()].map((m) => m.info)));
    } else if (path.startsWith('/models/') && path.endsWith('.onnx')) {
      const m = models.get(path.slice('/models/'.length, -'.onnx'.length));
      if (m) send(res, 200, MIME['.onnx']!, m.bytes);
      else send(res, 404, 'text/plain', 'no such model\n');
    } else if (path.startsWith('/ort/')) {
      sendFile(res, ortDir, path.slice('/ort/'.length));
    } else if (/^\/samples\/digit\/\d+\.png$/.test(path)) {
      const { png, label } = await samples.digit(Number(/(\d+)\.png$/.exec(path)![1]));
      send(res, 200, MIME['.png']!, png, { 'X-Label': String(label) });
    } else if (/^\/samples\/canvas\/\d+\.png$/.test(path)) {
      const { png, objects } = await samples.canvas(Number(/(\d+)\.png$/.exec(path)![1]));
      send(res, 200, MIME['.png']!, png, { 'X-Objects': JSON.stringify(objects) });
    } else {
      sendFile(res, WEB_DIR, path === '/' ? 'index.html' : path.slice(1));
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      const err = e as Error;
      if (!res.headersSent) send(res, err instanceof RangeError ? 400 : 500, 'text/plain', `${err.message}\n`);
      else res.destroy();
    });
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', (e: NodeJS.ErrnoException) => fail(new Error(e.code === 'EADDRINUSE' ? `port ${o.port} is in use (try --port 0 for any free port)` : e.message)));
    server.listen(o.port, o.host, () => ok());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : o.port;
  const url = `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}/`;
  return {
    url, server, models: [...models.values()].map((m) => m.info), notes,
    close: () => new Promise<void>((ok) => {
      server.closeAllConnections();
      server.close(() => ok());
    }),
  };
}

/** dfkd serve: start, print the URL and the models, serve until interrupted. */
export async function runServeCommand(o: ServeOptions): Promise<void> {
  const s = await startServer(o);
  process.stdout.write(`vit-dfkd demo: ${s.url}\n`);
  for (const m of s.models) {
    const extra = [m.precision === 'int8' ? `int8${m.pair ? ` of ${m.pair}` : ''}` : '', m.hasAttention ? 'attention map' : '', m.testAcc !== undefined ? `test acc ${(100 * m.testAcc).toFixed(2)}%` : ''].filter(Boolean);
    process.stdout.write(`  ${m.name}: ${m.preset} (${[m.task, ...extra].join(', ')}), ${(m.bytes / 1024).toFixed(0)} KiB, from ${m.source}\n`);
  }
  for (const n of s.notes) process.stdout.write(`  note: ${n}\n`);
  process.stdout.write('Ctrl-C to stop\n');
  const stop = (): void => {
    void s.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
