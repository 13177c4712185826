"""The explorer page of `gsasrec serve`, driven in a real browser: Debian's chromium through its
chromedriver (Selenium), against a real service on two small trained models. Skipped, with the reason,
where chromium, chromedriver or selenium is missing (.ci/run installs them)."""

from __future__ import annotations

import os
import re
import shutil
import urllib.request
from pathlib import Path

import pytest
from service import call, running_service

from gsasrec.data.folder import NAMES_TABLE_HEADER

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SCREENSHOTS = os.environ.get("GSASREC_SCREENSHOTS_DIR")  # where the ML-1M pictures go (docs for the README)
PAGE_FILES = ("/", "/explorer/explorer.js", "/explorer/explorer.css")


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("the browser tests need Debian's chromium and chromium-driver (apt-get install chromium "
                    "chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="the browser tests need selenium")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def named_models(pattern_run, tmp_path_factory):
    """The pattern run's dataset with item names ("Track 01".."Track 50"), and its best and last weights."""
    root, _, run_dir = pattern_run
    datasets = tmp_path_factory.mktemp("named") / "datasets"
    shutil.copytree(root / "datasets", datasets)
    names = "".join(f"{i}\tTrack {i:02d}\n" for i in range(1, 51))
    (datasets / "cycle" / "item_names.tsv").write_text(NAMES_TABLE_HEADER + names)
    return datasets, run_dir


def wait_for(driver, condition, what: str, timeout: float = 20):
    """Wait until condition(driver); an element re-rendered while it was read only means "not yet"."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: condition(d), message=f"waited for {what}")


def attributes(driver, selector: str, name: str, within: str | None = None) -> list[str]:
    """The attribute `name` of every element matching `selector` (inside each `within`: a list per
    match of it), read in one script: the page re-renders lists while a test reads them."""
    if within is None:
        return driver.execute_script(
            "return [...document.querySelectorAll(arguments[0])].map(e => e.getAttribute(arguments[1]))",
            selector, name)
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[2])].map(c => [...c.querySelectorAll(arguments[0])]"
        ".map(e => e.getAttribute(arguments[1])))", selector, name, within)


def texts(driver, selector: str) -> list[str]:
    return driver.execute_script("return [...document.querySelectorAll(arguments[0])].map(e => e.innerText)",
                                 selector)


def find(driver, selector: str):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def column_items(driver) -> list[list[str]]:
    """The item ids listed in each model's column, in order."""
    return attributes(driver, "tbody tr", "data-item", within=".column")


def add_by_typing(driver, text: str) -> None:
    from selenium.webdriver.common.keys import Keys

    before = len(find(driver, "#history li"))
    box = find(driver, "#search")[0]
    box.clear()
    box.send_keys(text)
    wait_for(driver, lambda d: find(d, "#suggestions li"), f"suggestions for {text!r}")
    box.send_keys(Keys.ENTER)
    wait_for(driver, lambda d: len(find(d, "#history li")) == before + 1, f"{text!r} added")


def status_text(driver) -> str:
    return driver.execute_script("const s = document.getElementById('status'); return s.hidden ? '' : s.innerText")


def shoot(driver, name: str, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(folder / name))
    assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_page_files_load_nothing_from_elsewhere(pattern_run):
    _, _, run_dir = pattern_run
    with running_service("--checkpoint", str(run_dir / "best.pt")) as (base, _):
        for path in PAGE_FILES:
            with urllib.request.urlopen(base + path, timeout=30) as response:
                text = response.read().decode()
            assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", text), path
        assert call(base, "/explorer/nothing.js")[0] == 404


def test_explorer_in_a_browser(browser, named_models, tmp_path):
    datasets, run_dir = named_models
    with running_service("--checkpoint", f"best={run_dir / 'best.pt'}", "--checkpoint", f"last={run_dir / 'last.pt'}",
                         "--datasets-dir", str(datasets)) as (base, process):
        browser.get(base + "/")
        wait_for(browser, lambda d: len(find(d, ".card")) == 2, "the two model cards")
        assert attributes(browser, ".card", "data-model") == ["best", "last"]

        # Build a history: by title, by title, by id; the lists change with each item
        add_by_typing(browser, "Track 10")
        wait_for(browser, lambda d: len(find(d, ".column")) == 2 and column_items(d)[0], "two columns")
        seen = [column_items(browser)]
        for text in ("Track 11", "12"):
            add_by_typing(browser, text)
            wait_for(browser, lambda d: column_items(d) != seen[-1], f"the lists after {text!r}")
            seen.append(column_items(browser))
        assert attributes(browser, "#history li", "data-item") == ["10", "11", "12"]
        wait_for(browser, lambda d: column_items(d)[0][:1] == ["13"], "the planted next item first")
        # the models share items: marked in both columns, with the note
        wait_for(browser, lambda d: attributes(d, "tr.shared", "data-item"), "shared items marked")
        first, second = attributes(browser, "tr.shared", "data-item", within=".column")
        assert first and set(first) == set(second) and find(browser, "#shared-note")[0].is_displayed()
        shoot(browser, "build.png", tmp_path)

        # Remove the middle item with the keyboard: the history and the lists follow
        before = column_items(browser)
        find(browser, "#history li:nth-child(2) .remove")[0].send_keys("\n")
        wait_for(browser, lambda d: len(find(d, "#history li")) == 2, "the item removed")
        assert attributes(browser, "#history li", "data-item") == ["10", "12"]
        wait_for(browser, lambda d: column_items(d) != before, "the lists after the removal")

        # An unknown item: a plain message, the history unchanged
        box = find(browser, "#search")[0]
        box.clear()
        box.send_keys("no such track\n")
        wait_for(browser, lambda d: "Unknown item" in status_text(d), "the unknown-item message")
        assert len(find(browser, "#history li")) == 2

        # A dataset user: history, held-out item and its rank in each model's list
        find(browser, "#tab-user")[0].click()
        number = find(browser, "#user-number")[0]
        number.clear()
        number.send_keys("3\n")
        wait_for(browser, lambda d: "User 3 of test" in "".join(texts(d, "#user-view")), "user 3")
        held_out = call(base, "/users/test/3")[1]["held_out"]
        assert f"Track {held_out['item']:02d}" in texts(browser, ".held-out")[0]
        wait_for(browser, lambda d: len(texts(d, ".target-rank")) == 2 and "rank" in texts(d, ".target-rank")[0],
                 "the held-out item's rank in both columns")
        ranks = [re.search(r"rank (\d+)", text) for text in texts(browser, ".target-rank")]
        expected = call(base, "/recommend", {"history": [i["item"] for i in call(base, "/users/test/3")[1]["history"]],
                                             "target": held_out["item"], "k": 10})[1]["target_rank"]
        assert ranks[0] and int(ranks[0].group(1)) == expected
        assert find(browser, "#user-view .seen")  # the window the model sees is marked
        shoot(browser, "user.png", tmp_path)

        # The service stops: the page says so
        process.terminate()
        process.wait(timeout=30)
        find(browser, "#user-random")[0].click()
        wait_for(browser, lambda d: "not answering" in status_text(d), "the service-down message")


def test_narrow_window_stacks_the_columns(browser, named_models):
    datasets, run_dir = named_models
    with running_service("--checkpoint", f"best={run_dir / 'best.pt'}", "--checkpoint", f"last={run_dir / 'last.pt'}",
                         "--datasets-dir", str(datasets)) as (base, _):
        browser.set_window_size(420, 900)
        try:
            browser.get(base + "/")
            wait_for(browser, lambda d: len(find(d, ".card")) == 2, "the cards")
            add_by_typing(browser, "Track 20")
            wait_for(browser, lambda d: len(find(d, ".column")) == 2, "two columns")
            first, second = find(browser, ".column")
            assert second.location["y"] > first.location["y"]  # one under the other
            assert browser.execute_script("return document.documentElement.scrollWidth") <= 420
        finally:
            browser.set_window_size(1280, 1000)


def test_ml1m_screenshots(browser, shared_datasets, tmp_path):
    """The pictures of the README, on the shipped ML-1M models (into $GSASREC_SCREENSHOTS_DIR when set)."""
    from selenium.webdriver.common.keys import Keys

    pretrained = Path(__file__).resolve().parents[1] / "pretrained"
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    with running_service("--checkpoint", f"gSASRec t=0.75={pretrained / 'ml1m_gsasrec_t0.75.pt'}",
                         "--checkpoint", f"SASRec={pretrained / 'ml1m_sasrec.pt'}",
                         "--datasets-dir", str(shared_datasets)) as (base, _):
        browser.set_window_size(1280, 1400)
        try:
            browser.get(base + "/")
            wait_for(browser, lambda d: len(find(d, ".card")) == 2, "the cards")
            for title in ("A New Hope", "Empire Strikes Back", "Raiders of the Lost Ark"):
                add_by_typing(browser, title)
            wait_for(browser, lambda d: len(find(d, ".column")) == 2 and all(column_items(d)), "two lists")
            shoot(browser, "explorer-compare.png", folder)
            box = find(browser, "#search")[0]
            box.send_keys("matrix")
            wait_for(browser, lambda d: find(d, "#suggestions li"), "suggestions")
            box.send_keys(Keys.ARROW_DOWN)
            shoot(browser, "explorer-search.png", folder)
            box.send_keys(Keys.ESCAPE)
            find(browser, "#tab-user")[0].click()
            number = find(browser, "#user-number")[0]
            number.clear()
            number.send_keys("42\n")
            wait_for(browser, lambda d: len(find(d, ".target-rank")) == 2, "the held-out ranks")
            shoot(browser, "explorer-user.png", folder)
        finally:
            browser.set_window_size(1280, 1000)
