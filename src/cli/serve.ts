// dfkd serve: the browser demo (web/) on localhost, with onnxruntime-web's wasm files from
// node_modules (no CDN) and the exported models. A model given as a run folder is exported in memory
// with dfkd export's code (dynamic batch, normalisation folded in); an .onnx file is served as is.
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
}

export interface ServeOptions {
  models: string[];
  port: number;
  host: string;
  quiet?: boolean;
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

/** An exported model's bytes: an .onnx file as is, a run folder exported in memory. */
async function modelBytes(given: string): Promise<Uint8Array> {
  // Relative paths: from the working directory, else from the repository (the default teachers).
  const path = existsSync(given) || isAbsolute(given) || !existsSync(join(REPO, given)) ? given : join(REPO, given);
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
    hasAttention: outputs.includes('attention'), bytes: bytes.length,
  };
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
  server: Server;
  close(): Promise<void>;
}

/** Starts the demo server (port 0 = any free port). Resolves once it listens. */
export async function startServer(o: ServeOptions): Promise<RunningServer> {
  if (!existsSync(join(WEB_DIR, 'index.html'))) throw new Error(`the demo page is missing: ${join(WEB_DIR, 'index.html')}`);
  const ortDir = ortWebDir();
  const models = new Map<string, { info: ServedModel; bytes: Uint8Array }>();
  for (const path of o.models) {
    const bytes = await modelBytes(path);
    let name = basename(path.replace(/[/\\]+$/, '')).replace(/\.onnx$/, '').replace(/[^A-Za-z0-9._-]/g, '_');
    if (name === 'model') name = basename(dirname(resolve(path)));
    while (models.has(name)) name = `${name}_`;
    models.set(name, { info: describe(name, bytes, path), bytes });
  }
  const samples = new Samples();

  const send = (res: ServerResponse, status: number, type: string, body: string | Uint8Array, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', ...headers });
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
    url, server, models: [...models.values()].map((m) => m.info),
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
    process.stdout.write(`  ${m.name}: ${m.preset} (${m.task}${m.hasAttention ? ', attention map' : ''}), ${(m.bytes / 1024).toFixed(0)} KiB, from ${m.source}\n`);
  }
  process.stdout.write('Ctrl-C to stop\n');
  const stop = (): void => {
    void s.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
