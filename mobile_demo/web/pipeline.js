// The edge pipeline of mobile_demo/edge in plain JavaScript (no dependencies): BlazeFace anchors,
// box decoding and weighted NMS, 3DDFA_V2 crop rules, bilinear crops, and params -> 68 landmarks + pose.
// Every function mirrors the NumPy one of the same name in mobile_demo/edge (see that code's comments).

export const STRIDES = [8, 16, 16, 16];
const ANCHORS_PER_LAYER = 2;
// By input size: short-range (128 px) and full-range (192 px), as ANCHOR_CONFIGS in edge/blazeface.py.
export const ANCHOR_CONFIGS = {128: [STRIDES, ANCHORS_PER_LAYER], 192: [[4], 1]};
const NUM_KEYPOINTS = 6;

export function ssdAnchors(inputSize, strides = STRIDES, perLayer = ANCHORS_PER_LAYER) {
  const out = [];
  for (let i = 0; i < strides.length;) {
    const stride = strides[i];
    let repeats = 0;
    while (i < strides.length && strides[i] === stride) { repeats++; i++; }
    const grid = Math.ceil(inputSize / stride);
    for (let y = 0; y < grid; y++) {
      for (let x = 0; x < grid; x++) {
        for (let k = 0; k < repeats * perLayer; k++) out.push([(x + 0.5) / grid, (y + 0.5) / grid]);
      }
    }
  }
  return out;
}

// Affine bilinear sampling like cv2.warpAffine(..., WARP_INVERSE_MAP, BORDER_CONSTANT 0): output pixel
// (x, y) reads source (a*x + b, c*y + d). rgba: Uint8ClampedArray (W*H*4) -> Uint8Array (size*size*3).
export function sampleAffine(rgba, width, height, size, a, b, c, d) {
  const out = new Uint8Array(size * size * 3);
  const idx = [0, 0, 0, 0], wts = [0, 0, 0, 0];
  for (let y = 0; y < size; y++) {
    const sy = c * y + d, y0 = Math.floor(sy), fy = sy - y0;
    for (let x = 0; x < size; x++) {
      const sx = a * x + b, x0 = Math.floor(sx), fx = sx - x0;
      // The four neighbours; one outside the photo reads 0 (index -1).
      for (let k = 0; k < 4; k++) {
        const xi = x0 + (k & 1), yi = y0 + (k >> 1);
        idx[k] = (xi < 0 || yi < 0 || xi >= width || yi >= height) ? -1 : (yi * width + xi) * 4;
        wts[k] = ((k & 1) ? fx : 1 - fx) * ((k >> 1) ? fy : 1 - fy);
      }
      const o = (y * size + x) * 3;
      for (let ch = 0; ch < 3; ch++) {
        let v = 0;
        for (let k = 0; k < 4; k++) if (idx[k] >= 0) v += wts[k] * rgba[idx[k] + ch];
        out[o + ch] = Math.min(255, Math.max(0, Math.round(v)));
      }
    }
  }
  return out;
}

export function letterbox(rgba, width, height, size) {
  const scale = size / Math.max(width, height);
  const ox = (size - width * scale) / 2, oy = (size - height * scale) / 2;
  // MediaPipe maps corners to corners (no half-pixel shift): input pixel = (x - ox) / scale.
  const pixels = sampleAffine(rgba, width, height, size, 1 / scale, -ox / scale, 1 / scale, -oy / scale);
  return {pixels, scale, ox, oy};
}

function iou(a, b) {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = w * h;
  const area = (r) => Math.max(0, r[2] - r[0]) * Math.max(0, r[3] - r[1]);
  const union = area(a) + area(b) - inter;
  return union > 0 ? inter / union : 0;
}

// raw: Float32Array (A*16), logits: Float32Array (A) -> detections in input-pixel fractions [0, 1].
export function decodeDetections(raw, logits, anchors, inputSize, minScore = 0.5, nmsIou = 0.3) {
  const cands = [];
  for (let i = 0; i < anchors.length; i++) {
    const score = 1 / (1 + Math.exp(-Math.max(-100, Math.min(100, logits[i]))));
    if (score < minScore) continue;
    const r = raw.subarray(i * 16, i * 16 + 16), [ax, ay] = anchors[i];
    const cx = r[0] / inputSize + ax, cy = r[1] / inputSize + ay, w = r[2] / inputSize, h = r[3] / inputSize;
    const kps = [];
    for (let k = 0; k < NUM_KEYPOINTS; k++) kps.push([r[4 + 2 * k] / inputSize + ax, r[5 + 2 * k] / inputSize + ay]);
    cands.push({box: [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], kps, score});
  }
  cands.sort((p, q) => q.score - p.score);
  const out = [];
  let rest = cands;
  while (rest.length) {
    const best = rest[0];
    const merge = rest.map((c, j) => j === 0 || iou(best.box, c.box) > nmsIou);
    const group = rest.filter((_, j) => merge[j]);
    const wsum = group.reduce((s, c) => s + c.score, 0);
    const box = [0, 1, 2, 3].map((j) => group.reduce((s, c) => s + c.box[j] * c.score, 0) / wsum);
    const kps = best.kps.map((_, k) => [0, 1].map((j) => group.reduce((s, c) => s + c.kps[k][j] * c.score, 0) / wsum));
    out.push({box, kps, score: best.score});
    rest = rest.filter((_, j) => !merge[j]);
  }
  return out;
}

function square(cx, cy, side) {
  const x0 = Math.floor(cx - side / 2 + 0.5), y0 = Math.floor(cy - side / 2 + 0.5);
  return [x0, y0, x0 + side, y0 + side];
}

export function roiFromBox(box) {
  const [x0, y0, x1, y1] = box;
  const old = (x1 - x0 + y1 - y0) / 2;
  // Math.trunc = Python's int() of a positive float.
  return square((x0 + x1) / 2, (y0 + y1) / 2 + 0.14 * old, Math.trunc(old * 1.58));
}

export function roiFromLandmarks(points) {
  let lox = Infinity, loy = Infinity, hix = -Infinity, hiy = -Infinity;
  for (const [x, y] of points) { lox = Math.min(lox, x); loy = Math.min(loy, y); hix = Math.max(hix, x); hiy = Math.max(hiy, y); }
  // Python's round() rounds halves to even; ties are measure-zero for real landmarks.
  return square((lox + hix) / 2, (loy + hiy) / 2, Math.round(Math.SQRT2 * Math.max(hix - lox, hiy - loy)));
}

export function cropFace(rgba, width, height, roi, size) {
  const sx = (roi[2] - roi[0]) / size, sy = (roi[3] - roi[1]) / size;
  return sampleAffine(rgba, width, height, size, sx, roi[0] + 0.5 * sx - 0.5, sy, roi[1] + 0.5 * sy - 0.5);
}

// De-normalised params (62) + crop box -> {landmarks: N x [x, y, z] photo pixels, pose: [yaw, pitch, roll]};
// N = 68 with landmark_basis.json, the mesh's vertex count with meshBasis(mesh_basis.json).
export function decodeParams(params, roi, basis, size) {
  const cam = params.slice(0, 12);
  const nId = basis.id_basis.length, nExp = basis.exp_basis.length;
  const sx = (roi[2] - roi[0]) / size, sy = (roi[3] - roi[1]) / size;
  const landmarks = [];
  for (let n = 0; n < basis.mean.length; n++) {
    const v = basis.mean[n].slice();
    for (let k = 0; k < nId; k++) for (let c = 0; c < 3; c++) v[c] += params[12 + k] * basis.id_basis[k][n][c];
    for (let k = 0; k < nExp; k++) for (let c = 0; c < 3; c++) v[c] += params[12 + nId + k] * basis.exp_basis[k][n][c];
    const p = [0, 1, 2].map((r) => cam[4 * r] * v[0] + cam[4 * r + 1] * v[1] + cam[4 * r + 2] * v[2] + cam[4 * r + 3]);
    landmarks.push([(p[0] - 1) * sx + roi[0], (size - p[1]) * sy + roi[1], (p[2] - 1) * (sx + sy) / 2]);
  }
  const norm = (r) => Math.hypot(r[0], r[1], r[2]);
  const r1 = cam.slice(0, 3).map((x, _, a) => x / norm(a)), r2 = cam.slice(4, 7).map((x, _, a) => x / norm(a));
  const r3 = [r1[1] * r2[2] - r1[2] * r2[1], r1[2] * r2[0] - r1[0] * r2[2], r1[0] * r2[1] - r1[1] * r2[0]];
  const deg = 180 / Math.PI;
  const pose = [Math.asin(Math.max(-1, Math.min(1, -r1[2]))) * deg, Math.atan2(r2[2], r3[2]) * deg,
                Math.atan2(r1[1], r1[0]) * deg];
  return {landmarks, pose, rotation: [r1, r2, r3]};
}

function float16(h) {
  const sign = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
  if (e === 0) return sign * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : sign * Infinity;
  return sign * 2 ** (e - 15) * (1 + f / 1024);
}

// mesh_basis.json (base64 float16 x scale, as MeshBasis.from_json) -> {mean, id_basis, exp_basis, triangles}
// in landmark_basis.json's nested layout, so decodeParams decodes the mesh as it decodes the landmarks.
export function meshBasis(json) {
  const nested = (key) => {
    const bytes = Uint8Array.from(atob(json[key]), (c) => c.charCodeAt(0));
    const half = new Uint16Array(bytes.buffer), scale = json.scales[key], shape = json.shapes[key];
    const at = (i) => float16(half[i]) * scale;
    const points = (offset, n) => Array.from({length: n}, (_, i) => [0, 1, 2].map((c) => at(offset + 3 * i + c)));
    return shape.length === 2 ? points(0, shape[0])
        : Array.from({length: shape[0]}, (_, k) => points(k * shape[1] * 3, shape[1]));
  };
  return {mean: nested('mean'), id_basis: nested('id_basis'), exp_basis: nested('exp_basis'),
          triangles: json.triangles};
}

// The camera-facing triangles (clockwise in image coordinates, y down), as the edge app's draw_mesh.
export function frontTriangles(points, triangles) {
  return triangles.filter(([a, b, c]) => {
    const [pa, pb, pc] = [points[a], points[b], points[c]];
    return (pb[0] - pa[0]) * (pc[1] - pa[1]) - (pb[1] - pa[1]) * (pc[0] - pa[0]) < 0;
  });
}
