"""The built book in headless Chromium at 1280 px and at a phone's 390 px: pages load, images decode,
MathJax renders, figures have captions, no table, figure or formula runs past the page (a long formula
scrolls inside its box; on a phone a wide table or multi-panel figure scrolls inside its box, its caption
in view), tables are not cut at 1280 px, every page links to the repository and every chapter offers its
notebook, glued numbers are not bold; a screenshot of every page (and of its first figure) at each width
goes to _build/screenshots/; the search page shows formulas as text, not LaTeX.

Needs Debian's `chromium` and `chromium-driver` (`make browser-deps`) and the `selenium` package.
Without them the test skips locally and fails in CI (CI=true).
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
import yaml

from ogc_lab import book

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)
WINDOW_WIDTH = 1280
PHONE_WIDTH = 390  # below headless Chromium's smallest window (500 px), so set by device emulation
WIDTHS = (WINDOW_WIDTH, PHONE_WIDTH)
SCREENSHOTS = book.REPO_ROOT / "_build" / "screenshots"
# Console errors that are not the book's: Chromium asks every server for /favicon.ico, the theme
# complains once about a fresh profile's empty light/dark setting, and jupyter-book 1.0.4 emits
# sphinx-thebe's `const THEBE_JS_URL` script twice on every page.
KNOWN_CONSOLE_ERRORS = (
    "favicon.ico",
    "Got invalid theme mode",
    "Identifier 'THEBE_JS_URL' has already been declared",
)
CHAPTERS = book.chapters()
PAGES = [
    "book/intro", "book/algorithm", *[f"build/chapters/{book.page_name(nb)}" for nb in CHAPTERS], "book/references"
]


def _unavailable(reason: str) -> None:
    """Fail in CI (the browser is part of the test setup there), skip elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: run `make browser-deps` before the tests", pytrace=False)
    pytest.skip(reason)


def _staged_toc(executed: set[str]) -> dict:
    """The repository's _toc.yml without the chapters that were not executed (still being written)."""
    toc = yaml.safe_load((book.REPO_ROOT / "_toc.yml").read_text())
    for part in toc["parts"]:
        part["chapters"] = [
            entry
            for entry in part["chapters"]
            if not entry["file"].startswith("build/chapters/") or Path(entry["file"]).name in executed
        ]
    return toc


@pytest.fixture(scope="module")
def html_dir(executed_book, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The book built from the session's executed chapters in a staged copy of the repository layout."""
    if executed_book.failures:
        pytest.fail(f"chapters failed to execute: {sorted(executed_book.failures)}")
    root = tmp_path_factory.mktemp("book_root")
    shutil.copy(book.REPO_ROOT / "_config.yml", root / "_config.yml")
    shutil.copytree(book.REPO_ROOT / "book", root / "book")
    shutil.copytree(book.REPO_ROOT / "_static", root / "_static")
    shutil.copytree(executed_book.out_dir / book.CHAPTERS_SUBDIR, root / "build" / book.CHAPTERS_SUBDIR)
    (root / "_toc.yml").write_text(yaml.safe_dump(_staged_toc({book.page_name(nb) for nb in CHAPTERS})))
    return book.build(root)


@pytest.fixture(scope="module")
def base_url(html_dir: Path) -> Iterator[str]:
    """Serve the HTML on a loopback port for the duration of the module."""
    handler = functools.partial(QuietHandler, directory=str(html_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Chromium driven through Debian's chromedriver (no download, no network)."""
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        _unavailable("chromium or chromedriver is not installed")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("the selenium package is not installed")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(driver_path))
        driver.set_page_load_timeout(60)
        driver.set_script_timeout(60)
        try:
            yield driver
        finally:
            driver.quit()


# Resolves once MathJax has typeset the page (or at once when the page has no math).
WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
if (!document.querySelector('.math')) { done('no math'); return; }
const started = Date.now();
(function poll() {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    MathJax.startup.promise.then(() => done('typeset'), (e) => done('error: ' + e));
  } else if (Date.now() - started > 30000) {
    done('MathJax never started');
  } else {
    setTimeout(poll, 100);
  }
})();
"""

PAGE_FACTS = """
const article = document.querySelector('article') || document.body;
const maths = [...article.querySelectorAll('.math')];
// the nearest box between e and the article that scrolls or clips what is wider than it; inline math starts
// above its own span.math wrapper, which clips the formula but moves with the text (or table) around it
const scroller = (e) => {
  const start = (e.matches('mjx-container:not([display="true"])') && e.closest('span.math')) || e;
  for (let p = start.parentElement; p && p !== article; p = p.parentElement) {
    if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(p).overflowX)) return p;
  }
  return null;
};
const pastWindow = (e) => {
  const r = e.getBoundingClientRect();
  return r.width > 0 && (r.right > innerWidth + 1 || r.left < -1);
};
const displayMath = [...article.querySelectorAll('mjx-container[display="true"]')];
return {
  title: (article.querySelector('h1') || {}).textContent || '',
  math: maths.length,
  unrendered: maths.filter((m) => !m.querySelector('mjx-container')).map((m) => m.textContent.slice(0, 80)),
  tex_errors: [...document.querySelectorAll('mjx-merror')].map((m) => m.textContent),
  broken_images: [...document.images].filter((i) => !i.complete || i.naturalWidth === 0).map((i) => i.src),
  images: article.querySelectorAll('img').length,
  uncaptioned_images: [...article.querySelectorAll('img')]
    .filter((i) => !((i.closest('figure') || {}).querySelector?.('figcaption')?.textContent.trim()))
    .map((i) => i.src.slice(-60)),
  empty_captions: [...article.querySelectorAll('figure')]
    .filter((f) => !f.querySelector('figcaption')?.textContent.trim()).length,
  // past the window's right edge (or its left), at the window's width, unless it scrolls inside a box
  // that itself stays in the window
  overflowing: [...article.querySelectorAll('table, figure, img, div.cell_output, mjx-container')]
    .filter((e) => pastWindow(e) && (!scroller(e) || pastWindow(scroller(e))))
    .map((e) => e.tagName + ' ' + (e.id || e.className || (e.src || '').slice(-40))),
  // a display formula wider than its box must scroll there, not be cut or spill over
  cut_math: displayMath
    .filter((m) => m.scrollWidth > m.clientWidth + 1 && getComputedStyle(m).overflowX === 'visible')
    .map((m) => m.textContent.slice(0, 60)),
  // a table's caption stays in view inside the box its table scrolls in
  hidden_captions: [...article.querySelectorAll('table > caption')]
    .filter((c) => {
      const box = (scroller(c) || article).getBoundingClientRect(), r = c.getBoundingClientRect();
      return r.left < box.left - 1 || r.right > box.right + 1;
    })
    .map((c) => c.textContent.slice(0, 60)),
  repository_link: !!document.querySelector('a[href^="https://github.com/"]'),
  notebook_download: !!document.querySelector('a[href$=".ipynb"]'),
  // wider than the column that holds it: the theme then scrolls it, and the reader sees it cut
  cut_tables: [...article.querySelectorAll('table')]
    .filter((t) => t.parentElement && t.scrollWidth > t.parentElement.clientWidth + 1)
    .map((t) => (t.querySelector('caption') || t.querySelector('th') || {}).textContent?.slice(0, 60)),
  bold_numbers: [...article.querySelectorAll('span.pasted-text')]
    .filter((s) => Number(getComputedStyle(s).fontWeight) >= 600 && !s.closest('strong, b, th'))
    .map((s) => s.textContent).slice(0, 10),
};
"""


def _source_has_math(page: str) -> bool:
    """Whether the page's source (a notebook's markdown cells or a .md page) contains $ math."""
    source = book.REPO_ROOT / page
    if page.startswith("build/chapters/"):
        nb = nbformat.read(book.NOTEBOOKS_DIR / f"{Path(page).name.replace('-', '_')}.ipynb", as_version=4)
        return any("$" in cell.source for cell in nb.cells if cell.cell_type == "markdown")
    return "$" in source.with_suffix(".md").read_text()


def _screenshots(browser, page: str, width: int) -> list[Path]:
    """The page's top and its first figure (if any) as PNGs in _build/screenshots, named after the page
    and the width."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = f"{Path(page).name}-{width}"
    shots = [SCREENSHOTS / f"{name}.png"]
    browser.get_screenshot_as_file(str(shots[0]))
    first_figure = "const f = document.querySelector('article figure'); if (f) f.scrollIntoView(); return !!f;"
    if browser.execute_script(first_figure):
        shots.append(SCREENSHOTS / f"{name}-figure.png")
        browser.get_screenshot_as_file(str(shots[1]))
    return shots


def _set_width(browser, width: int) -> None:
    """Lay pages out at ``width`` CSS pixels: the window itself at 1280, device emulation below."""
    if width == WINDOW_WIDTH:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    else:
        metrics = {"width": width, "height": 844, "deviceScaleFactor": 1, "mobile": False}
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("page", PAGES)
def test_page_renders_in_chromium(page: str, width: int, base_url: str, browser) -> None:
    _set_width(browser, width)
    browser.get(f"{base_url}/{page}.html")
    assert browser.execute_script("return document.readyState") == "complete"
    assert browser.execute_script("return window.innerWidth") == width
    mathjax = browser.execute_async_script(WAIT_FOR_MATHJAX)
    facts = browser.execute_script(PAGE_FACTS)
    assert all(shot.stat().st_size > 0 for shot in _screenshots(browser, page, width))
    assert facts["title"].strip(), "the page has no heading: did it load?"
    assert not facts["broken_images"]
    if _source_has_math(page):
        assert mathjax == "typeset" and facts["math"] > 0
    assert not facts["unrendered"], "MathJax left math untypeset"
    assert not facts["tex_errors"]
    assert not facts["uncaptioned_images"], "every figure needs a caption"
    assert facts["empty_captions"] == 0
    assert not facts["overflowing"], f"wider than the {width} px window"
    assert not facts["cut_math"], "a display formula is cut at its box (see _static/book.css)"
    assert not facts["hidden_captions"], "a table's caption scrolls out of view with its table"
    if width == WINDOW_WIDTH:  # on a phone a wide table scrolls in its box, caption in view
        assert not facts["cut_tables"], "tables cut at the column's edge: fewer or narrower columns"
    assert facts["repository_link"], "every page links to the repository (_config.yml: repository)"
    if page.startswith("build/chapters/"):
        assert facts["notebook_download"], "every chapter offers its notebook for download"
    assert not facts["bold_numbers"], "glued numbers render bold (see _static/book.css)"
    severe = [
        entry["message"]
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE" and not any(known in entry["message"] for known in KNOWN_CONSOLE_ERRORS)
    ]
    assert not severe, "the page logged errors (a resource that did not load?)"


SEARCH_QUERY = "gradient"
# Resolves, once the search page has finished and shown each result's snippet (or after 30 s), with each
# result's title and snippet (null where none came).
SEARCH_RESULTS = """
const done = arguments[arguments.length - 1];
const started = Date.now();
const results = () => [...document.querySelectorAll('#search-results li')]
  .map((li) => [li.querySelector('a').textContent, (li.querySelector('p.context') || {}).textContent || null]);
(function poll() {
  const shown = results();
  const finished = /Search finished/.test(document.body.textContent);
  if ((finished && shown.length && shown.every(([, snippet]) => snippet)) || Date.now() - started > 30000) {
    done(shown);
  } else {
    setTimeout(poll, 200);
  }
})();
"""


def test_search_shows_formulas_as_text_not_latex(base_url: str, browser) -> None:
    """The search page's titles and snippets read a formula as text (ogc_lab.search_text), never as TeX."""
    _set_width(browser, WINDOW_WIDTH)
    browser.get(f"{base_url}/search.html?q={SEARCH_QUERY}")
    results = browser.execute_async_script(SEARCH_RESULTS)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.get_screenshot_as_file(str(SCREENSHOTS / f"search-{SEARCH_QUERY}-{WINDOW_WIDTH}.png"))
    assert len(results) >= 5 and all(snippet for _, snippet in results), results
    text = " ".join(f"{title} {snippet}" for title, snippet in results)
    assert not re.search(r"\\[A-Za-z()\[\]]|\$", text), "raw LaTeX in the search results"
    assert re.search(r"[τεηℓ∂]", text), "no formula in the snippets: is the query still one that finds some?"
