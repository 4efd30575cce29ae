"""The HTML viewer in a real headless Chromium (Selenium): it loads without console errors, shows
one box per time step, a click expands a step, and a click on a node shows its facts.

Not part of the default run (it needs Chromium, chromedriver and Selenium; ``testpaths`` is
``tests`` but this folder is skipped by ``norecursedirs`` in pyproject.toml); ``.ci/run`` installs them and runs
``python -m pytest tests/browser``."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import viz
from tinygrad_rnn.nn import LSTM

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

STEPS = 4


@pytest.fixture(scope="module")
def driver():
    chromedriver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(chromedriver), options=options)
    yield drv
    drv.quit()


def test_viewer_loads_shows_steps_and_expands_on_click(tmp_path, driver):
    tg.manual_seed(0)
    lstm = LSTM(2, 3, bidirectional=True)
    out, _ = lstm(tg.Tensor(np.random.default_rng(0).standard_normal((STEPS, 1, 2)).astype(np.float32)))
    loss = (out[-1] ** 2).sum()
    viz.retain_grads(loss)
    loss.backward(retain_graph=True)
    page = viz.to_html(loss, params=dict(lstm.named_parameters()), title="test").save(tmp_path / "v.html")
    driver.get(page.as_uri())
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert errors == []

    steps = driver.find_elements(By.CSS_SELECTOR, "g.step")
    assert len(steps) == 2 * STEPS
    summaries = [s for s in driver.find_elements(By.CSS_SELECTOR, "g.step > g.summary") if s.is_displayed()]
    assert len(summaries) == 2 * STEPS                      # one visible box per step
    assert not any(d.is_displayed() for d in driver.find_elements(By.CSS_SELECTOR, "g.step > g.detail"))

    target = driver.find_element(By.CSS_SELECTOR, 'g.step[data-scope="lstm/l0/fwd/t2"]')
    target.find_element(By.CSS_SELECTOR, "g.summary").click()
    assert "open" in target.get_attribute("class")
    assert target.find_element(By.CSS_SELECTOR, "g.detail").is_displayed()
    others = driver.find_elements(By.CSS_SELECTOR, "g.step.open")
    assert len(others) == 1

    # A node of the expanded step: its facts appear in the side panel.
    gate = [n for n in target.find_elements(By.CSS_SELECTOR, "g.node")
            if n.find_element(By.TAG_NAME, "title").get_attribute("textContent").startswith("f = chunk")]
    assert len(gate) == 1
    driver.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))",
                          gate[0].find_element(By.CSS_SELECTOR, "text"))
    info = driver.find_element(By.ID, "info").text
    assert "chunk" in info and "(1, 3)" in info and "float32" in info and "|grad|" in info
    assert driver.find_elements(By.CSS_SELECTOR, "svg.strip-chart polyline.series")
    driver.save_screenshot(str(tmp_path / "viewer.png"))
    assert (tmp_path / "viewer.png").read_bytes()[:4] == b"\x89PNG"
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
