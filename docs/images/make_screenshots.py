"""Make the two screenshots of the docs (tutorial chapter 5; the README shows the first) with
headless Chromium (Selenium): the HTML viewer of a
12-step bidirectional LSTM with one step expanded, and the start of a 1,000-step collapsed SVG.

    apt-get install -y chromium chromium-driver && pip install selenium
    python docs/images/make_screenshots.py      # writes viewer.png and collapsed_1000.png here
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

import tinygrad_rnn as tg
from tinygrad_rnn import viz
from tinygrad_rnn.nn import LSTM

HERE = Path(__file__).resolve().parent


def lstm_loss(steps: int, **kwargs):
    tg.manual_seed(0)
    lstm = LSTM(2, 3, **kwargs)
    out, _ = lstm(tg.Tensor(np.random.default_rng(0).standard_normal((steps, 1, 2)).astype(np.float32)))
    loss = (out[-1] ** 2).sum()
    viz.retain_grads(loss)
    loss.backward(retain_graph=True)
    return lstm, loss


def main() -> None:
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,800",
                 "--hide-scrollbars"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"),
                              options=options)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            lstm, loss = lstm_loss(12, bidirectional=True)
            page = viz.to_html(loss, params=dict(lstm.named_parameters()),
                               title="LSTM, 12 steps, bidirectional").save(Path(tmp) / "viewer.html")
            driver.get(page.as_uri())
            step = driver.find_element(By.CSS_SELECTOR, 'g.step[data-scope="lstm/l0/fwd/t1"]')
            step.find_element(By.CSS_SELECTOR, "g.summary").click()
            driver.execute_script("tinygradViewer.show(arguments[0])",
                                  step.find_elements(By.CSS_SELECTOR, "g.node")[3].get_attribute("id"))
            driver.save_screenshot(str(HERE / "viewer.png"))

            lstm, loss = lstm_loss(1000)
            svg = viz.to_svg(loss, params=dict(lstm.named_parameters()), show_grads=True,
                             collapse_steps=True).save(Path(tmp) / "collapsed.svg")
            driver.get(svg.as_uri())
            driver.save_screenshot(str(HERE / "collapsed_1000.png"))
        finally:
            driver.quit()
    print(f"wrote {HERE / 'viewer.png'} and {HERE / 'collapsed_1000.png'}")


if __name__ == "__main__":
    main()
