"""The ops console in headless Chromium: sign in, see dead letters, filter, requeue, see the
dead count drop — on a laptop and on a phone-sized screen."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from sqlalchemy import Engine

from tests.conftest import count, unavailable
from tests.support.harness import RunningEngine, wait_until
from tests.support.ops import DONE, FAILING, OPS_TOKEN, QUEUE, add_dead_letter, ops_job

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
LIVE = "SELECT count(*) FROM dead_letters WHERE requeued_at IS NULL"


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument("--window-size=1280,900")
    try:
        driver = webdriver.Chrome(
            options=options, service=Service(shutil.which("chromedriver") or CHROMEDRIVER)
        )
    except (WebDriverException, OSError) as exc:
        unavailable("Chromium with chromedriver", exc)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


def _dead_cell(browser: WebDriver) -> str:
    """The queue's dead count; read again if the page refreshed itself mid-read."""
    for _ in range(5):
        try:
            row = browser.find_element(By.CSS_SELECTOR, f'#queues tr[data-queue="{QUEUE}"]')
            return str(row.find_element(By.CSS_SELECTOR, "td.dead").text)
        except StaleElementReferenceException:
            continue
    raise AssertionError("the queues page kept changing while being read")


def _rows(browser: WebDriver) -> list[str]:
    """The listed dead letters' ids; read again if the page was replaced mid-read (a form
    submission or the auto-refresh landing while the rows are read)."""
    for _ in range(5):
        try:
            return [
                str(r.get_attribute("data-id"))
                for r in browser.find_elements(By.CSS_SELECTOR, "#dead-letters tbody tr[data-id]")
            ]
        except StaleElementReferenceException:
            continue
    raise AssertionError("the dead-letter list kept changing while being read")


def test_operator_filters_requeues_and_watches_the_dead_count_drop(
    ops_engine: RunningEngine, clean_db: Engine, browser: WebDriver
) -> None:
    FAILING.update({"k-1", "k-2", "k-3"})
    for key in sorted(FAILING):
        ops_job.send(key)
    wait_until(lambda: count(clean_db, LIVE) == 3, what="three dead letters")
    odd_one = add_dead_letter(clean_db, error_class="InvalidPayloadError", key="k-4")
    FAILING.clear()  # the cause is fixed: requeued jobs will now succeed

    base = ops_engine.base_url
    browser.get(f"{base}/ops/console")
    assert browser.current_url.endswith("/ops/console/login")
    browser.find_element(By.NAME, "token").send_keys(OPS_TOKEN)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_until(lambda: browser.current_url == f"{base}/ops/console", 10, "the queues page")
    assert _dead_cell(browser) == "4"

    browser.get(f"{base}/ops/console/dead-letters")
    assert len(_rows(browser)) == 4
    browser.find_element(By.NAME, "error_class").send_keys("PermanentError")
    browser.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    wait_until(lambda: len(_rows(browser)) == 3, 10, "the filtered list")
    assert str(odd_one) not in _rows(browser)

    browser.find_element(By.ID, "requeue-matching").click()
    wait_until(lambda: "Requeued 3 dead letter(s)." in browser.page_source, 10, "the notice")
    assert _rows(browser) == []
    assert "1 live in all queues" in browser.find_element(By.ID, "live-total").text
    wait_until(lambda: sorted(DONE) == ["k-1", "k-2", "k-3"], what="the requeued jobs to run")

    browser.get(f"{base}/ops/console/dead-letters/{odd_one}")
    assert '"k-4"' in browser.find_element(By.ID, "payload").text
    assert "PermanentError: job refused" in browser.find_element(By.ID, "traceback").text
    browser.find_element(By.ID, "requeue").click()
    wait_until(lambda: "Requeued 1 dead letter(s)." in browser.page_source, 10, "the notice")
    assert browser.find_element(By.ID, "requeued").text != "no"
    wait_until(lambda: "k-4" in DONE, what="the last job")

    browser.get(f"{base}/ops/console")
    assert _dead_cell(browser) == "0"
    assert count(clean_db, LIVE) == 0


def test_the_console_fits_a_phone_screen(
    ops_engine: RunningEngine, clean_db: Engine, browser: WebDriver
) -> None:
    add_dead_letter(clean_db)
    browser.delete_all_cookies()
    browser.set_window_size(375, 812)
    try:
        base = ops_engine.base_url
        browser.get(f"{base}/ops/console/login")
        browser.find_element(By.NAME, "token").send_keys(OPS_TOKEN)
        browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        # Signed in before moving on: a page asked for while the form posts finds no session.
        wait_until(lambda: browser.current_url == f"{base}/ops/console", 10, "the queues page")
        for path in ("/ops/console", "/ops/console/dead-letters", "/ops/console/inbox"):
            browser.get(f"{base}{path}")
            width = browser.execute_script("return window.innerWidth")
            page_width = browser.execute_script("return document.documentElement.scrollWidth")
            assert page_width <= width, f"{path} scrolls sideways on a phone"
        assert (
            browser.find_element(By.LINK_TEXT, "Statistics")
            .get_attribute("href")
            .endswith("/ops/console/stats")
        )
    finally:
        browser.set_window_size(1280, 900)
