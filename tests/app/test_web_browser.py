"""``fastmf web`` in a real headless browser (Chromium driven by Selenium, driver path given, no
download): search a title, rate a few items, see the recommendations change, open similar items,
save a screenshot. Skips with the reason when Chromium, its driver, Selenium or the web extra is
absent, except under CI (``CI`` set), where it fails instead: CI installs them (.ci/run)."""

import os
import re
import shutil
import subprocess
import sys
import time

import pytest

CHROMIUM = os.environ.get("FASTMF_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("FASTMF_CHROMEDRIVER", "/usr/bin/chromedriver")


def _need(condition, reason):
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the browser test must run; .ci/run installs chromium, "
                    "chromium-driver, selenium and the web extra)")
    pytest.skip(reason)


def test_missing_browser_skips_locally_and_fails_under_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no Chromium"):
        _need(False, "no Chromium at /nowhere")
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="CI is set: the browser test must run"):
        _need(False, "no Chromium at /nowhere")
    _need(True, "present")  # nothing happens


def _have(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


@pytest.fixture(scope="module")
def browser_tools():
    _need(_have("starlette") and _have("uvicorn"), "the web extra (starlette, uvicorn) is not installed")
    _need(_have("selenium"), "selenium is not installed")
    _need(os.path.exists(CHROMIUM) or shutil.which("chromium"), f"no Chromium at {CHROMIUM} "
          "(apt-get install chromium chromium-driver)")
    _need(os.path.exists(CHROMEDRIVER), f"no chromedriver at {CHROMEDRIVER} (apt-get install chromium-driver)")


def _small_model(path):
    """MF on MovieLens 100K when $FASTMF_DATA has it (real titles), else on a synthetic set with
    titles "Item 17"; returns (path, a search text, the title it must find)."""
    import fastmf

    root = os.environ.get("FASTMF_DATA")
    if root and os.path.exists(os.path.join(root, "ml-100k", "u.item")):
        ds = fastmf.load_movielens("ml-100k", path=os.path.join(root, "ml-100k"), download=False)
        query, expect = "star wars", "Star Wars (1977)"
    else:
        ds = fastmf.make_ratings(400, 300, 12_000, seed=1)
        query, expect = "item 12", "Item 12"
    fastmf.MatrixFactorization(n_factors=16, n_epochs=15, random_state=0).fit(ds).save(path)
    return path, query, expect


@pytest.fixture(scope="module")
def server(browser_tools, tmp_path_factory):
    folder = tmp_path_factory.mktemp("web")
    model, query, expect = _small_model(str(folder / "model.npz"))
    env = {k: v for k, v in os.environ.items() if k not in ("FASTMF_DATA",)}
    p = subprocess.Popen([sys.executable, "-m", "fastmf", "web", model, "--port", "0"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    line = p.stdout.readline()
    m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if m is None:
        p.kill()
        raise AssertionError(f"no address in the start-up line {line!r}; stderr: {p.stderr.read()}")
    try:
        yield f"http://127.0.0.1:{m.group(1)}/", query, expect, folder
    finally:
        p.terminate()
        p.wait(timeout=30)


@pytest.fixture(scope="module")
def driver(browser_tools):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1500,1100", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    d = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    d.set_page_load_timeout(60)
    try:
        yield d
    finally:
        d.quit()


def _wait(predicate, what, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            value = predicate()
        except Exception:  # the DOM is being redrawn: try again
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _items(driver, list_id):
    from selenium.webdriver.common.by import By

    return [li.get_attribute("data-item") for li in driver.find_elements(By.CSS_SELECTOR, f"#{list_id} > li[data-item]")]


def _n_rated(driver):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, "recs-status").get_attribute("data-n-rated")


def _rate(driver, list_id, row, stars):
    from selenium.webdriver.common.by import By

    li = driver.find_elements(By.CSS_SELECTOR, f"#{list_id} > li[data-item]")[row]
    item = li.get_attribute("data-item")
    li.find_element(By.CSS_SELECTOR, f'.stars button[data-value="{stars}"]').click()
    return item


def test_search_rate_recommend_similar_screenshot(server, driver):
    from selenium.webdriver.common.by import By

    url, query, expect, folder = server
    driver.get(url)
    _wait(lambda: driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1", "the page to load")
    assert "trained on" in driver.find_element(By.ID, "model-line").text
    assert _n_rated(driver) == "0", (driver.find_element(By.ID, "error").text, driver.get_log("browser"))
    before = _items(driver, "recommendations")
    assert len(before) == 10
    assert not driver.find_element(By.ID, "clear").is_displayed()  # nothing to clear yet
    assert not driver.find_element(By.ID, "details").is_displayed()
    first_page = _items(driver, "onboarding")
    assert len(first_page) == 10
    driver.find_element(By.ID, "more").click()  # "show others": the next ten of the onboarding order
    _wait(lambda: _items(driver, "onboarding") and _items(driver, "onboarding") != first_page, "other movies")
    assert not set(_items(driver, "onboarding")) & set(first_page)

    # search a title and rate the first match 5 stars
    driver.find_element(By.ID, "search").send_keys(query)
    _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#search-results > li[data-item] .title"), "search results")
    first = driver.find_element(By.CSS_SELECTOR, "#search-results > li[data-item] .title").text
    assert first == expect
    rated = [_rate(driver, "search-results", 0, 5)]
    _wait(lambda: _n_rated(driver) == "1", "the recommendations after the first rating")
    after_one = _items(driver, "recommendations")

    # two of the onboarding items, one liked and one not
    rated.append(_rate(driver, "onboarding", 0, 4))
    _wait(lambda: _n_rated(driver) == "2", "the recommendations after the second rating")
    rated.append(_rate(driver, "onboarding", 1, 1))
    _wait(lambda: _n_rated(driver) == "3", "the recommendations after the third rating")
    after = _items(driver, "recommendations")
    assert len(after) == 10
    assert after != before and after_one != before, "the recommendations did not change with the ratings"
    assert not set(rated) & set(after), "a rated item was recommended"
    assert sorted(_items(driver, "my-ratings")) == sorted(rated)
    assert driver.find_element(By.ID, "clear").is_displayed()
    # every explanation names an item the user liked (rated 4 or 5)
    liked_titles = {driver.find_element(By.CSS_SELECTOR, f'#my-ratings > li[data-item="{i}"] .title').text
                    for i in rated[:2]}
    for line in driver.find_elements(By.CSS_SELECTOR, "#recommendations .because"):
        assert line.text.removeprefix("because you liked ") in liked_titles, line.text
    assert "updated in" in driver.find_element(By.ID, "recs-status").text

    # similar items of the first recommendation
    row = driver.find_element(By.CSS_SELECTOR, "#recommendations > li[data-item]")
    title = row.find_element(By.CSS_SELECTOR, ".title").text
    row.find_element(By.CSS_SELECTOR, ".open-similar").click()
    _wait(lambda: driver.find_element(By.ID, "details").is_displayed() and len(_items(driver, "similar")) == 10,
          "the similar-items view")
    assert driver.find_element(By.ID, "details-title").text == f"Similar to {title}"
    assert row.get_attribute("data-item") not in _items(driver, "similar")
    assert not driver.find_element(By.ID, "error").is_displayed()

    shots = [folder / "fastmf-web.png"]
    if os.environ.get("FASTMF_SCREENSHOT_DIR"):
        os.makedirs(os.environ["FASTMF_SCREENSHOT_DIR"], exist_ok=True)
        shots.append(os.path.join(os.environ["FASTMF_SCREENSHOT_DIR"], "fastmf-web.png"))
    for shot in shots:
        assert driver.save_screenshot(str(shot))
        assert os.path.getsize(shot) > 10_000
        print(f"screenshot: {shot}")
