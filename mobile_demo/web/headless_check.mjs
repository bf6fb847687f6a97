// Open the demo page in headless Chromium with a fake camera fed from a .y4m file, wait for processed
// frames, and write what the page computed (landmarks, ms/frame, the processed frame as PNG) plus a
// screenshot. Driven by mobile_demo/web_check.py:
//   node headless_check.mjs URL VIDEO.y4m OUT.json SCREENSHOT.png [FRAMES]
import {writeFileSync} from 'node:fs';
import {launch} from './chromium.mjs';

const [url, y4m, outJson, screenshot, frames = '20'] = process.argv.slice(2);
const browser = await launch(y4m);
const log = [], requests = [];
try {
  const page = await browser.newPage({viewport: {width: 960, height: 520}});
  page.on('request', (r) => requests.push(r.url()));
  page.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log.push(`pageerror: ${e}`));
  await page.goto(url);
  await page.waitForFunction((n) => window.tfface && (window.tfface.error || window.tfface.frames >= n),
                             Number(frames), {timeout: 90000, polling: 200});
  const result = await page.evaluate(() => ({
    error: window.tfface.error, frames: window.tfface.frames, ms: window.tfface.ms, stages: window.tfface.stages,
    last: window.tfface.last, png: window.tfface.error ? null : window.tfface.capture(),
    status: document.getElementById('status').textContent}));
  await page.screenshot({path: screenshot});
  writeFileSync(outJson, JSON.stringify({...result, log, requests}));
} catch (e) {
  writeFileSync(outJson, JSON.stringify({error: String(e), log, requests}));
} finally {
  await browser.close();
}
