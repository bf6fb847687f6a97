// One-Euro smoothing per tracked face, as tfface/inference/smoothing.py: one cutoff per face and frame
// from the mean speed of the 68 landmarks (face sizes / s), applied to them and to any points after them
// (a mesh), as the Python tracker smooths its extra arrays alike.
export const DEFAULTS = {minCutoff: 0.5, beta: 20, dCutoff: 1};

const alpha = (cutoff, dt) => 1 / (1 + 1 / (2 * Math.PI * cutoff) / dt);

export function faceSize(points) {
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  return (Math.max(...xs) - Math.min(...xs) + Math.max(...ys) - Math.min(...ys)) / 2;
}

const centre = (points) => [0, 1].map((c) => points.reduce((s, p) => s + p[c], 0) / points.length);

class OneEuro {
  constructor(cfg) { this.cfg = cfg; this.t = null; this.state = null; this.speed = 0; }

  filter(t, points, scale) {
    if (this.t === null || t <= this.t) {
      this.t = t; this.state = points.map((p) => p.slice()); this.speed = 0;
      return points;
    }
    const dt = t - this.t;
    const lm = points.slice(0, 68);
    const raw = lm.reduce((s, p, i) => s + Math.hypot(p[0] - this.state[i][0], p[1] - this.state[i][1]), 0)
                / lm.length / Math.max(scale, 1e-6) / dt;
    this.speed += alpha(this.cfg.dCutoff, dt) * (raw - this.speed);
    const a = alpha(this.cfg.minCutoff + this.cfg.beta * this.speed, dt);
    this.state = this.state.map((s, i) => s.map((v, c) => v + a * (points[i][c] - v)));
    this.t = t;
    return this.state.map((p) => p.slice());
  }
}

export class FaceTracker {
  constructor(cfg = DEFAULTS, maxMissing = 5) { this.cfg = cfg; this.maxMissing = maxMissing; this.tracks = []; }

  // landmarksList: one array per face, 68 x [x, y, z] landmarks first (then optional mesh points) ->
  // the smoothed arrays, same order.
  update(t, landmarksList) {
    const free = this.tracks.map((_, i) => i);
    const out = landmarksList.map((points) => {
      const c = centre(points.slice(0, 68)), size = faceSize(points.slice(0, 68));
      let best = -1, bestD = Infinity;
      free.forEach((i, j) => {
        const d = Math.hypot(this.tracks[i].centre[0] - c[0], this.tracks[i].centre[1] - c[1]);
        if (d < bestD) { bestD = d; best = j; }
      });
      let track;
      if (best >= 0 && bestD < 0.5 * Math.max(size, this.tracks[free[best]].size)) {
        track = this.tracks[free.splice(best, 1)[0]];
      } else {
        track = {filter: new OneEuro(this.cfg)};
        this.tracks.push(track);
      }
      Object.assign(track, {centre: c, size, missing: 0});
      return track.filter.filter(t, points, size);
    });
    free.forEach((i) => { this.tracks[i].missing += 1; });
    this.tracks = this.tracks.filter((tr) => tr.missing <= this.maxMissing);
    return out;
  }
}
