// node bench_check.mjs URL OUT.json: open bench.html?... in headless Chromium, write window.bench.
import {writeFileSync} from 'node:fs';
import {launch} from './chromium.mjs';

const [url, outJson] = process.argv.slice(2);
const browser = await launch();
try {
  const page = await browser.newPage();
  await page.goto(url);
  await page.waitForFunction(() => window.bench && window.bench.done, null, {timeout: 180000, polling: 200});
  writeFileSync(outJson, JSON.stringify(await page.evaluate(() => window.bench)));
} catch (e) {
  writeFileSync(outJson, JSON.stringify({error: String(e)}));
} finally {
  await browser.close();
}
