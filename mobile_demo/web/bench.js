// Speed and outputs of one face model file in the browser, on real face crops, for
// benchmarks/mobile_demo_speed.py. Query: ?runtime=litert|ort&model=URL&crops=URL&n=CROPS&repeat=R
// crops: raw uint8 (n, 120, 120, 3). Result in window.bench = {ms: [per run], outputs: [n][values]}.
const q = new URLSearchParams(location.search);
const runtime = q.get('runtime'), n = Number(q.get('n')), repeat = Number(q.get('repeat') || 30);
const size = 120, stride = size * size * 3;
window.bench = {done: false};

async function litert(model, crops) {
  const {loadLiteRt, loadAndCompile, Tensor} = await import('@litertjs/core');
  await loadLiteRt(new URL('./node_modules/@litertjs/core/wasm/', location.href).href);
  const m = await loadAndCompile(model, {accelerator: 'wasm', cpuOptions: {numThreads: 1}});
  return async (i) => {
    const input = new Tensor(crops.subarray(i * stride, (i + 1) * stride), [1, size, size, 3]);
    const outs = await m.run([input]);
    input.delete();
    const values = outs[0].toTypedArray().slice();
    outs.forEach((t) => t.delete());
    return values;  // normalised params (the TFLite contract)
  };
}

async function ort(model, crops) {
  const ortlib = await import('onnxruntime-web');
  ortlib.env.wasm.wasmPaths = new URL('./node_modules/onnxruntime-web/dist/', location.href).href;
  ortlib.env.wasm.numThreads = 1;
  const session = await ortlib.InferenceSession.create(model, {executionProviders: ['wasm']});
  return async (i) => {
    const input = new ortlib.Tensor('uint8', crops.slice(i * stride, (i + 1) * stride), [1, size, size, 3]);
    const out = await session.run({[session.inputNames[0]]: input});
    return out.params.data.slice();  // de-normalised params (the ONNX contract)
  };
}

try {
  const crops = new Uint8Array(await (await fetch(q.get('crops'))).arrayBuffer());
  const run = await (runtime === 'ort' ? ort : litert)(q.get('model'), crops);
  const outputs = [];
  for (let i = 0; i < n; i++) outputs.push(Array.from(await run(i)));
  const ms = [];
  for (let r = 0; r < repeat; r++) {
    const t0 = performance.now();
    await run(r % n);
    ms.push(performance.now() - t0);
  }
  Object.assign(window.bench, {done: true, ms, outputs});
  document.getElementById('status').textContent = `${runtime}: median ${ms.sort((a, b) => a - b)[ms.length >> 1]} ms`;
} catch (e) {
  Object.assign(window.bench, {done: true, error: String(e && e.stack || e)});
}
