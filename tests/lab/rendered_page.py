"""The executed notebook as a student's browser shows it: rendered by nbconvert, opened in headless Chromium.

:func:`render_html` turns an executed notebook into the HTML page nbconvert
writes; :class:`Browser` opens it in Debian's Chromium through
chromedriver (Selenium), offline (every host name fails to resolve, so the
page's CDN scripts fail at once instead of hanging); :meth:`Browser.problems`
lists what a student would see as broken: an image that does not load, a
figure panel with no spread of pixel values (a flat panel), error output
(tracebacks and stderr are drawn on red) or a script error. The figures'
PNGs list their panels (``warblr.lab.notebook.PANELS_KEY``); each panel's
pixels are checked on their own, inside its frame.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np

CHROMIUM = os.environ.get("WARBLR_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("WARBLR_CHROMEDRIVER", "/usr/bin/chromedriver")
#: As root in a container Chromium needs --no-sandbox; the rest keep it quiet and offline.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                  "--host-resolver-rules=MAP * ~NOTFOUND")
#: A panel whose grey levels (0-255) spread less than this is flat: one colour, or nearly.
MIN_PANEL_STD = 3.0
#: Pixels left out at each edge of a panel: its frame (spines) is drawn there.
_FRAME_PX = 3
#: Console messages of resources the offline page cannot fetch (nbconvert's CDN scripts): not the page's fault.
_OFFLINE_NOISE = ("net::ERR_NAME_NOT_RESOLVED", "net::ERR_NAME_RESOLUTION_FAILED", "net::ERR_INTERNET_DISCONNECTED",
                  "require is not defined", "MathJax")


def browser_available():
    """Why the browser check cannot run here, or None when Chromium, chromedriver and Selenium are all present."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if missing:
        return f"{' and '.join(missing)} not found (Debian: apt-get install -y chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (the test extra installs it)"
    return None


def render_html(notebook):
    """The page nbconvert's HTML exporter (JupyterLab template) makes of an executed notebook."""
    from nbconvert import HTMLExporter

    html, _ = HTMLExporter(template_name="lab").from_notebook_node(notebook)
    return html


def panel_problems(png, *, name, panels_key):
    """The flat panels of one figure (a PNG), as lines naming the figure and the panel.

    Parameters
    ----------
    png : bytes
    name : str
        How to name the figure in a message.
    panels_key : str
        The PNG text chunk listing the panels; a PNG without it is checked as one panel.

    Returns
    -------
    list of str
    """
    from PIL import Image

    image = Image.open(io.BytesIO(png))
    grey = np.asarray(image.convert("L"), dtype=np.float64)
    panels = json.loads(image.info[panels_key]) if panels_key in image.info else [
        {"kind": "image", "title": "(whole image)", "box": [0, 0, grey.shape[1], grey.shape[0]]}]
    problems = []
    for panel in panels:
        left, top, right, bottom = panel["box"]
        inside = grey[top + _FRAME_PX:bottom - _FRAME_PX, left + _FRAME_PX:right - _FRAME_PX]
        spread = float(inside.std()) if inside.size else 0.0
        if spread < MIN_PANEL_STD:
            title = panel["title"].replace("\n", " ") or panel["kind"]
            problems.append(f"{name}: panel {title!r} is flat (grey-level spread {spread:.2f} < {MIN_PANEL_STD})")
    return problems


class Browser:
    """Headless Chromium driven by chromedriver, with a fresh profile folder.

    Parameters
    ----------
    profile : pathlib.Path
        An empty folder for ``--user-data-dir``.
    """

    def __init__(self, profile):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        options.add_argument("--window-size=1600,1200")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        self.driver.set_page_load_timeout(120)

    def close(self):
        self.driver.quit()

    def problems(self, html_path, *, panels_key):
        """Open ``html_path`` and list what a student would see as broken; ``(images seen, problems)``."""
        driver = self.driver
        driver.get_log("browser")  # drained on read: what is left is from an earlier page
        driver.get(Path(html_path).resolve().as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => ({complete: i.complete, width: i.naturalWidth, "
            "height: i.naturalHeight, src: i.getAttribute('src') || ''}))")
        problems = []
        for number, image in enumerate(images, 1):
            name = f"image {number} of {len(images)}"
            if not image["complete"] or image["width"] == 0 or image["height"] == 0:
                problems.append(f"{name} did not load ({image['src'][:40]!r})")
                continue
            if image["src"].startswith("data:image/png;base64,"):
                problems += panel_problems(base64.b64decode(image["src"].split(",", 1)[1]), name=name,
                                           panels_key=panels_key)
        errors = driver.execute_script(
            "return Array.from(document.querySelectorAll(\"[data-mime-type='application/vnd.jupyter.stderr']\"))"
            ".map(e => e.innerText.slice(0, 200))")
        problems += [f"error output on the page: {text!r}" for text in errors]
        console = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        problems += [f"script error: {message}" for message in console
                     if not any(noise in message for noise in _OFFLINE_NOISE)]
        return images, problems
