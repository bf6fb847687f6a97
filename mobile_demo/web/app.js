// tfface in the browser: camera (getUserMedia) -> BlazeFace -> 3DDFA_V2 crop -> tfface TFLite model
// (one landmark re-crop) -> 68 landmarks + pose drawn on a canvas, ms/frame shown. LiteRT.js (WebAssembly
// CPU, XNNPack) runs the same .tflite files as the Python edge app; every asset is served locally.
import {loadLiteRt, loadAndCompile, Tensor} from '@litertjs/core';
import {DEFAULTS, FaceTracker} from './smoothing.js';
import {ANCHOR_CONFIGS, ssdAnchors, letterbox, decodeDetections, roiFromBox, roiFromLandmarks, cropFace, decodeParams, meshBasis,
  frontTriangles} from './pipeline.js';

const ROOT = new URL('../../', import.meta.url);  // the repository root (serve it with any static server)
const params = new URLSearchParams(location.search);
const FILES = {
  wasm: new URL('mobile_demo/web/node_modules/@litertjs/core/wasm/', ROOT).href,
  short: new URL('tfface/assets/mediapipe/face_detection_short_range.tflite', ROOT).href,
  full: new URL('tfface/assets/mediapipe/face_detection_full_range_sparse.tflite', ROOT).href,
  model: new URL(`mobile_demo/models/${params.get('model') || 'tfface_mb05_3ddfa_fp16.tflite'}`, ROOT).href,
  metadata: new URL('mobile_demo/models/metadata.json', ROOT).href,
  basis: new URL('mobile_demo/models/landmark_basis.json', ROOT).href,
  mesh: new URL('mobile_demo/models/mesh_basis.json', ROOT).href,
};
const MESH = params.get('mesh') === '1';  // ?mesh=1 draws the face mesh (as the edge app's --mesh)
// ?detector=auto (default: short-range, full-range on frames where it finds no face), short or full
const DETECTOR = params.get('detector') || 'auto';
const CONTOURS = [[0, 16, false], [17, 21, false], [22, 26, false], [27, 30, false], [31, 35, false],
                  [36, 41, true], [42, 47, true], [48, 59, true], [60, 67, true]];

// What tests and curious users read: window.tfface.{ready, error, frames, ms, last, capture()}.
const state = window.tfface = {ready: false, error: null, frames: 0, ms: null, stages: null, last: null};
const status = document.getElementById('status');
const show = (text) => { status.textContent = text; };

async function fetchJson(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

async function run1(model, tensor) {
  const input = new Tensor(tensor.data, tensor.shape);
  const outs = await model.run([input]);
  input.delete();
  const arrays = [];
  for (const t of outs) {
    const cpu = t.accelerator === 'wasm' ? t : await t.moveTo('wasm');
    arrays.push(cpu.toTypedArray().slice());
    cpu.delete();
  }
  return arrays;
}

class Pipeline {
  async init() {
    await loadLiteRt(FILES.wasm);
    const threads = Number(params.get('threads') || 1);
    const opts = {accelerator: 'wasm', cpuOptions: {numThreads: threads}};
    const kinds = DETECTOR === 'auto' ? ['short', 'full'] : [DETECTOR];
    if (!kinds.every((n) => ['short', 'full'].includes(n))) throw new Error(`?detector=${DETECTOR}: use auto, short or full`);
    let models;
    [models, this.model, this.metadata, this.basis] = await Promise.all([
      Promise.all(kinds.map((n) => loadAndCompile(FILES[n], opts))), loadAndCompile(FILES.model, opts),
      fetchJson(FILES.metadata), fetchJson(FILES.basis)]);
    this.detectors = models.map((model) => {
      const size = model.getInputDetails()[0].shape[1];
      // Output order by name: the box regressor has 16 values per anchor, the classifier 1.
      return {model, size, anchors: ssdAnchors(size, ...ANCHOR_CONFIGS[size]),
              outWidths: model.getOutputDetails().map((d) => d.shape[d.shape.length - 1])};
    });
    this.mesh = MESH ? meshBasis(await fetchJson(FILES.mesh)) : null;
    this.size = this.metadata.input.image_size;
    this.mean = this.metadata.params.mean;
    this.std = this.metadata.params.std;
    const names = this.model.getOutputDetails().map((d) => d.name);
    this.paramsIndex = names.indexOf(this.metadata.tflite.output_names.params_normalized);
    if (this.paramsIndex < 0) throw new Error(`model outputs ${names} lack the params output named in metadata.json`);
  }

  async detect(rgba, w, h) {
    for (const det of this.detectors) {  // auto: full-range only where short-range found nothing
      const faces = await this.detectWith(det, rgba, w, h);
      if (faces.length) return faces;
    }
    return [];
  }

  async detectWith(det, rgba, w, h) {
    const lb = letterbox(rgba, w, h, det.size);
    const x = new Float32Array(lb.pixels.length);
    for (let i = 0; i < x.length; i++) x[i] = lb.pixels[i] / 127.5 - 1;
    const outs = await run1(det.model, {data: x, shape: [1, det.size, det.size, 3]});
    const raw = outs[det.outWidths.indexOf(16)], logits = outs[det.outWidths.indexOf(1)];
    const toImage = (p) => [(p[0] * det.size - lb.ox) / lb.scale, (p[1] * det.size - lb.oy) / lb.scale];
    return decodeDetections(raw, logits, det.anchors, det.size).map((d) => ({
      box: [...toImage([d.box[0], d.box[1]]), ...toImage([d.box[2], d.box[3]])], score: d.score,
      keypoints: d.kps.map(toImage)}));
  }

  async face(rgba, w, h, roi) {
    const crop = cropFace(rgba, w, h, roi, this.size);
    const outs = await run1(this.model, {data: crop, shape: [1, this.size, this.size, 3]});
    const p = Array.from(outs[this.paramsIndex], (v, i) => v * this.std[i] + this.mean[i]);
    return {roi, params: p, ...decodeParams(p, roi, this.basis, this.size)};
  }

  async process(rgba, w, h, refine = 1) {
    const t0 = performance.now();
    const dets = await this.detect(rgba, w, h);
    const t1 = performance.now();
    const faces = [];
    for (const d of dets.slice(0, 8)) {
      let f = await this.face(rgba, w, h, roiFromBox(d.box));
      for (let i = 0; i < refine; i++) f = await this.face(rgba, w, h, roiFromLandmarks(f.landmarks));
      if (this.mesh) f.mesh = decodeParams(f.params, f.roi, this.mesh, this.size).landmarks;
      faces.push({box: d.box, score: d.score, ...f});
    }
    const t2 = performance.now();
    return {faces, detectMs: t1 - t0, modelMs: t2 - t1, ms: t2 - t0};
  }
}

function drawMesh(ctx, points, triangles) {
  ctx.lineWidth = 1;
  ctx.strokeStyle = 'rgba(235, 235, 235, 0.9)';
  ctx.beginPath();
  for (const [a, b, c] of frontTriangles(points, triangles)) {
    ctx.moveTo(points[a][0], points[a][1]); ctx.lineTo(points[b][0], points[b][1]);
    ctx.lineTo(points[c][0], points[c][1]); ctx.closePath();
  }
  ctx.stroke();
}

function draw(ctx, faces, thick, triangles) {
  for (const f of faces) {
    if (f.mesh) drawMesh(ctx, f.mesh, triangles);
    ctx.lineWidth = thick;
    ctx.strokeStyle = '#ffffff';
    ctx.strokeRect(f.box[0], f.box[1], f.box[2] - f.box[0], f.box[3] - f.box[1]);
    ctx.strokeStyle = '#3cdcff';
    for (const [a, b, closed] of CONTOURS) {
      ctx.beginPath();
      for (let i = a; i <= b; i++) ctx[i === a ? 'moveTo' : 'lineTo'](f.landmarks[i][0], f.landmarks[i][1]);
      if (closed) ctx.closePath();
      ctx.stroke();
    }
    ctx.fillStyle = '#ff5050';
    for (const [x, y] of f.landmarks) { ctx.beginPath(); ctx.arc(x, y, thick + 1, 0, 2 * Math.PI); ctx.fill(); }
    const xs = f.landmarks.map((p) => p[0]), ys = f.landmarks.map((p) => p[1]);
    const size = (Math.max(...xs) - Math.min(...xs) + Math.max(...ys) - Math.min(...ys)) / 2;
    const [ox, oy] = f.landmarks[30];
    ['#e62828', '#28c828', '#285af0'].forEach((colour, axis) => {  // head x, y, z (columns of R)
      const r = f.rotation;
      ctx.strokeStyle = colour; ctx.lineWidth = thick + 1;
      ctx.beginPath(); ctx.moveTo(ox, oy);
      ctx.lineTo(ox + 0.6 * size * r[0][axis], oy - 0.6 * size * r[1][axis]); ctx.stroke();
    });
    ctx.fillStyle = '#ffff00';
    ctx.font = `${Math.max(12, Math.round(size / 12))}px sans-serif`;
    ctx.fillText(`yaw ${f.pose[0].toFixed(0)} pitch ${f.pose[1].toFixed(0)} roll ${f.pose[2].toFixed(0)}`,
                 f.box[0], Math.max(12, f.box[1] - 6));
  }
}

async function main() {
  const video = document.getElementById('video');
  const canvas = document.getElementById('view');
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  show('loading LiteRT.js and the models...');
  const pipeline = new Pipeline();
  await pipeline.init();
  show('starting the camera...');
  video.srcObject = await navigator.mediaDevices.getUserMedia(
      {video: {facingMode: 'user', width: {ideal: 1280}, height: {ideal: 720}}, audio: false});
  await video.play();
  const history = [];
  let lastFrame = null;
  // ?smooth=0 turns smoothing off; ?min_cutoff=&beta= tune it (see mobile_demo/README.md).
  const tracker = params.get('smooth') === '0' ? null : new FaceTracker({
    ...DEFAULTS, minCutoff: Number(params.get('min_cutoff') || DEFAULTS.minCutoff),
    beta: Number(params.get('beta') || DEFAULTS.beta)});
  state.capture = () => {  // the exact RGB pixels of the last processed frame, as a lossless PNG
    const c = document.createElement('canvas');
    c.width = lastFrame.width; c.height = lastFrame.height;
    c.getContext('2d').putImageData(lastFrame, 0, 0);
    return c.toDataURL('image/png');
  };
  state.ready = true;
  const step = async () => {
    try {
      await processFrame();
      requestAnimationFrame(step);
    } catch (e) {
      state.error = String(e && e.stack || e); show(`error: ${e}`); console.error(e);
    }
  };
  const processFrame = async () => {
    const w = video.videoWidth, h = video.videoHeight;
    if (w && h) {
      if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
      ctx.drawImage(video, 0, 0, w, h);
      const frame = ctx.getImageData(0, 0, w, h);
      const r = await pipeline.process(frame.data, w, h);
      lastFrame = frame;
      history.push(r.ms);
      if (history.length > 30) history.shift();
      state.frames += 1;
      state.ms = history.reduce((a, b) => a + b, 0) / history.length;
      state.stages = {detect: r.detectMs, model: r.modelMs};
      state.last = {frame: state.frames, width: w, height: h, faces: r.faces.map((f) => ({
        box: f.box, score: f.score, roi_box: f.roi, landmarks_2d: f.landmarks.map((p) => [p[0], p[1]]),
        pose: f.pose, ...(f.mesh ? {mesh_2d: f.mesh.map((p) => [p[0], p[1]])} : {})}))};
      // Raw landmarks above (for checks against Python); the drawing shows the smoothed ones.
      const shown = tracker ? tracker.update(performance.now() / 1000, r.faces.map((f) => f.landmarks.concat(f.mesh || [])))
                                  .map((pts, i) => ({...r.faces[i], landmarks: pts.slice(0, 68),
                                                     mesh: r.faces[i].mesh ? pts.slice(68) : null})) : r.faces;
      draw(ctx, shown, Math.max(1, Math.round(Math.max(w, h) / 600)), pipeline.mesh && pipeline.mesh.triangles);
      show(`${state.ms.toFixed(1)} ms/frame (detect ${r.detectMs.toFixed(1)} + model ${r.modelMs.toFixed(1)}), ` +
           `${r.faces.length} face(s), LiteRT.js wasm${tracker ? ', One-Euro smoothing' : ''}`);
    }
  };
  requestAnimationFrame(step);
}

main().catch((e) => { state.error = String(e && e.stack || e); show(`error: ${e}`); console.error(e); });
