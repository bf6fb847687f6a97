// Headless Chromium (the Debian package) through playwright-core, with a fake camera when given a .y4m.
import {chromium} from 'playwright-core';

export function launch(y4m = null) {
  const args = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
                '--disable-component-update', '--disable-sync'];
  if (y4m) {
    args.push('--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
              `--use-file-for-fake-video-capture=${y4m}`);
  }
  return chromium.launch({executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args});
}
