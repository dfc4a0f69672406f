// The `Driver` surface of the end-to-end stories, on Playwright + Debian's Chromium (see
// helpers.mjs for the launch flags). webdriver.mjs implements the same surface for Firefox.

import { collectPageErrors, launchBrowser } from "../helpers.mjs";

export async function launchChromium() {
  const browser = await launchBrowser();
  const { page } = browser;
  const errors = collectPageErrors(page);
  return {
    engine: "chromium",
    page,
    errors,
    goto: (url) => page.goto(url),
    reload: () => page.reload(),
    evaluate: (fn, arg) => page.evaluate(fn, arg ?? null),
    waitFor: (selector, { timeout = 15_000 } = {}) => page.waitForSelector(selector, { timeout }),
    fill: (selector, text) => page.fill(selector, text),
    click: (selector) => page.click(selector),
    close: () => browser.close(),
  };
}
