"""`facegan serve` in a real browser: headless Chromium (Debian's chromium and
chromium-driver, driven by selenium) loads the page against a tiny conditional
run, pages through seeds, sets a label, enlarges a face and plays an interpolation.

Skipped, with the reason, only where the browser or its driver is not installed
(`.ci/run` installs them with apt-get where it can).
"""

from __future__ import annotations

import shutil
import threading

import pytest

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (pip install '.[test]')"
)

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

# Trains, starts processes or drives a browser: not in the fast tier.
pytestmark = pytest.mark.integration


def _which(*names: str) -> str | None:
    return next((path for path in map(shutil.which, names) if path), None)


CHROMIUM = _which("chromium", "chromium-browser", "google-chrome")
CHROMEDRIVER = _which("chromedriver")
if CHROMIUM is None or CHROMEDRIVER is None:
    missing = " and ".join(
        name for name, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if not path
    )
    pytest.skip(
        f"no {missing} on PATH: install Debian's packages with `apt-get install "
        f"chromium chromium-driver` to run the browser test",
        allow_module_level=True,
    )

# Headless, and nothing that would reach out to the network (there is none here).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
)

GRID_READY = """
    const grid = document.getElementById('grid');
    const ready = grid.querySelectorAll('.face:not([hidden]) img[src^="data:image/png"]');
    return ready.length === 16 && !grid.classList.contains('loading');
"""


@pytest.fixture(scope="module")
def page_url(tiny_conditional_run):
    import facegan
    from facegan.serve import FaceApp, make_server

    server = make_server("127.0.0.1", 0, FaceApp(facegan.load(tiny_conditional_run)))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield server.url
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: selenium then never tries to download one.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _wait(driver, script: str, timeout: float = 60):
    return WebDriverWait(driver, timeout).until(lambda d: d.execute_script(script))


def _first_tile(driver) -> tuple[str, str]:
    return tuple(
        driver.execute_script(
            "const tile = document.querySelector('#grid .face');"
            "return [tile.querySelector('img').src, tile.querySelector('.seed').textContent];"
        )
    )


def test_the_grid_loads_and_a_new_seed_shows_new_faces(browser, page_url):
    browser.get(page_url)
    _wait(browser, GRID_READY)
    first_src, first_seed = _first_tile(browser)
    assert first_seed == "seed 0"
    assert "facegan" in browser.find_element(By.CLASS_NAME, "brand").text

    seed = browser.find_element(By.ID, "seed")
    seed.clear()
    seed.send_keys("1000", Keys.ENTER)
    _wait(
        browser,
        "return document.querySelector('#grid .face .seed').textContent === "
        "'seed 1000';" + GRID_READY,
    )
    new_src, _ = _first_tile(browser)
    assert new_src != first_src and new_src.startswith("data:image/png;base64,")
    assert "seed=1000" in browser.current_url  # the address keeps the view

    browser.find_element(By.ID, "next").click()
    _wait(
        browser,
        "return document.querySelector('#grid .face .seed').textContent === "
        "'seed 1016';" + GRID_READY,
    )
    assert _first_tile(browser)[0] not in (first_src, new_src)


def test_a_label_select_fixes_that_attribute(browser, page_url):
    browser.get(page_url)
    _wait(browser, GRID_READY)
    gender = Select(browser.find_element(By.ID, "label-gender"))
    assert [option.text for option in gender.options] == ["random", "0", "1"]
    age = Select(browser.find_element(By.ID, "label-age"))
    assert [option.text for option in age.options] == ["random", "0–30", "30–120"]
    gender.select_by_value("1")
    _wait(
        browser,
        "return [...document.querySelectorAll('#grid .face .tags')]"
        ".every(tag => tag.textContent.includes('gender 1'));" + GRID_READY,
    )


def test_a_face_enlarges_with_a_download_and_the_interpolation_plays(browser, page_url):
    browser.get(page_url)
    _wait(browser, GRID_READY)
    browser.find_elements(By.CSS_SELECTOR, "#grid .face")[2].click()
    _wait(
        browser,
        "const image = document.getElementById('viewer-image');"
        "return !document.getElementById('viewer').hidden && image.complete && "
        "image.naturalWidth === 512;",
    )
    assert browser.find_element(By.ID, "viewer-title").text == "Seed 2"
    download = browser.find_element(By.ID, "viewer-download")
    assert "/api/face.png?" in download.get_attribute("href")
    assert "seed=2" in download.get_attribute("href")
    assert download.get_attribute("download").endswith("-seed0002.png")
    ActionChains(browser).send_keys(Keys.ESCAPE).perform()
    _wait(browser, "return document.getElementById('viewer').hidden;")

    # The page plays seed 0 -> 1 on load; 32 frames by default.
    _wait(browser, "return document.getElementById('interp-canvas').dataset.frames === '32';")
    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []
