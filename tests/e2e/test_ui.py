"""The web page in headless Chromium, against the real pipeline: search, explanations on hover,
interactions that change the next ranking, user switching, the weight slider, side by side."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from tests.support.e2e import E2E, SHOTS, http, wait_until

pytestmark = pytest.mark.e2e
QUERY = "a round circle"


def searches(driver: WebDriver) -> int:
    return int(driver.execute_script("return Number(document.body.dataset.searches || 0)"))


def idle(driver: WebDriver) -> bool:
    return bool(driver.execute_script("return Number(document.body.dataset.inflight || 0) === 0"))


def run_search(driver: WebDriver) -> None:
    """Press Search (once no other search is under way) and wait for its results to be rendered."""
    wait_until(lambda: idle(driver), 20, "the page's searches to finish", interval=0.1)
    before = searches(driver)
    driver.find_element(By.ID, "go").click()
    wait_until(lambda: searches(driver) > before and idle(driver), 20, "the search to render", interval=0.1)


def column_users(driver: WebDriver) -> list[str]:
    return list(
        driver.execute_script("return [...document.querySelectorAll('#results .column')].map(c => c.dataset.user)")
    )


def column(driver: WebDriver, user: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, f'#results .column[data-user="{user}"]')


def ranking(col: WebElement) -> list[tuple[str, int]]:
    return [
        (c.get_attribute("data-image-id") or "", int(c.get_attribute("data-cluster") or -1))
        for c in col.find_elements(By.CSS_SELECTOR, ".card")
    ]


def set_value(driver: WebDriver, element_id: str, value: str, *events: str) -> None:
    driver.execute_script(
        "const el = document.getElementById(arguments[0]); el.value = arguments[1];"
        "for (const e of arguments[2]) el.dispatchEvent(new Event(e, {bubbles: true}));",
        element_id,
        value,
        list(events),
    )


def wait_images_loaded(driver: WebDriver) -> None:
    wait_until(
        lambda: driver.execute_script(
            "return [...document.querySelectorAll('#results img.thumb')].every(i => i.complete && i.naturalWidth > 0)"
        ),
        20,
        "every thumbnail to load",
    )


def status_text(driver: WebDriver) -> str:
    return str(driver.execute_script("return document.getElementById('status').textContent"))


def favorite_cluster(driver: WebDriver, user: str, cluster: int, n: int, skip: Sequence[str] = ()) -> list[str]:
    """Click Fav on up to ``n`` results of one cluster in ``user``'s column, the lowest ranked first."""
    done: list[str] = []
    while len(done) < n:
        col = column(driver, user)
        todo = [i for i, c in ranking(col) if c == cluster and i not in done and i not in skip]
        if not todo:
            break
        image_id = todo[-1]  # the lowest-ranked first: the change is easy to see
        card = col.find_element(By.CSS_SELECTOR, f'.card[data-image-id="{image_id}"]')
        before = int(driver.execute_script("return Number(document.body.dataset.interactions || 0)"))
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", card)
        card.find_element(By.CSS_SELECTOR, ".act-fav").click()
        wait_until(
            lambda b=before: int(driver.execute_script("return Number(document.body.dataset.interactions || 0)")) > b,
            10,
            f"the favorite of {image_id} to be recorded (status: {status_text(driver)!r})",
            interval=0.1,
        )
        done.append(image_id)
    return done


def top_count(col: WebElement, cluster: int, top: int = 5) -> int:
    return sum(c == cluster for _, c in ranking(col)[:top])


def search_until(driver: WebDriver, check: Any, what: str, timeout: float = 45) -> None:
    def attempt() -> bool:
        run_search(driver)
        return bool(check())

    wait_until(attempt, timeout, what, interval=0.5)


def test_page_serves_and_searches(e2e: E2E, browser: WebDriver) -> None:
    browser.get(e2e.gateway_url + "/")
    wait_until(lambda: browser.execute_script("return document.body.dataset.ready === '1'"), 15, "the page script")
    assert [p.text for p in browser.find_elements(By.CSS_SELECTOR, "#user-pills .pill")] == [
        "alice",
        "bob",
        "new user",
    ]
    wait_until(lambda: "ok" in browser.find_element(By.ID, "health").text, 20, "health badge")
    browser.find_element(By.ID, "q").send_keys(QUERY)
    browser.find_element(By.CSS_SELECTOR, '.pill[data-user="alice"]').click()
    set_value(browser, "weight", "0.8", "input")
    assert browser.find_element(By.ID, "weight-value").text == "0.80"
    run_search(browser)
    col = column(browser, "alice")
    assert len(ranking(col)) == 20
    assert col.get_attribute("data-personalized") == "false"
    assert "relevance only" in col.text
    wait_images_loaded(browser)


def test_favorites_change_the_ranking_and_explanations_show_why(e2e: E2E, browser: WebDriver) -> None:
    col = column(browser, "alice")
    before = ranking(col)
    top5 = [c for _, c in before[:5]]
    # the style least present in alice's top 5 that has enough results further down
    counts = Counter(c for _, c in before)
    liked = min((c for c in counts if counts[c] >= 3), key=lambda c: (top5.count(c), -counts[c]))
    favs = favorite_cluster(browser, "alice", liked, 3)
    assert len(favs) == 3
    stars = [
        column(browser, "alice").find_element(By.CSS_SELECTOR, f'.card[data-image-id="{i}"] .act-fav') for i in favs
    ]
    assert all(
        "★" in (b.get_attribute("textContent") or "") and "done" in (b.get_attribute("class") or "") for b in stars
    ), [(b.get_attribute("textContent"), b.get_attribute("class")) for b in stars]

    search_until(
        browser,
        lambda: (
            column(browser, "alice").get_attribute("data-personalized") == "true"
            and top_count(column(browser, "alice"), liked) > top5.count(liked)
        ),
        "alice's ranking to follow her favorites",
    )
    after = column(browser, "alice")
    assert top_count(after, liked) > top5.count(liked)
    assert "personalized" in after.find_element(By.CSS_SELECTOR, ".badge").text
    # hover: the explanation of the top hit (k-NN, personal, blended, cluster, drivers)
    first = after.find_element(By.CSS_SELECTOR, ".card")
    assert int(first.get_attribute("data-cluster") or -1) == liked
    browser.execute_script("window.scrollTo(0, 0)")
    ActionChains(browser).move_to_element(first.find_element(By.CSS_SELECTOR, ".thumb-wrap")).perform()
    explain = first.find_element(By.CSS_SELECTOR, ".explain")
    wait_until(explain.is_displayed, 5, "the explanation on hover", interval=0.1)
    text = explain.text
    for label in ("k-NN score", "personal score", "blended", "cluster (style)", "because you recently"):
        assert label in text, text
    assert "favorite" in text and any(f in text for f in favs), text
    wait_images_loaded(browser)
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "ui-search.png"))


def test_view_and_download_record_interactions(e2e: E2E, browser: WebDriver) -> None:
    count = int(browser.execute_script("return Number(document.body.dataset.interactions || 0)"))
    card = column(browser, "alice").find_elements(By.CSS_SELECTOR, ".card")[1]
    image_id = card.get_attribute("data-image-id")
    card.find_element(By.CSS_SELECTOR, ".act-view").click()
    box = browser.find_element(By.ID, "lightbox")
    wait_until(box.is_displayed, 5, "the lightbox")
    wait_until(
        lambda: browser.execute_script(
            "const i = document.getElementById('lightbox-img'); return i.complete && i.naturalWidth > 0"
        ),
        10,
        "the full image (/images/...)",
    )
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    wait_until(lambda: not box.is_displayed(), 5, "the lightbox to close")
    card = column(browser, "alice").find_element(By.CSS_SELECTOR, f'.card[data-image-id="{image_id}"]')
    card.find_element(By.CSS_SELECTOR, ".act-dl").click()
    wait_until(
        lambda: int(browser.execute_script("return Number(document.body.dataset.interactions || 0)")) >= count + 2,
        10,
        "view and download recorded",
    )
    assert "done" in (card.find_element(By.CSS_SELECTOR, ".act-view").get_attribute("class") or "")
    assert "done" in (card.find_element(By.CSS_SELECTOR, ".act-dl").get_attribute("class") or "")
    name = image_id.rsplit("/", 1)[-1] + ".png"
    wait_until(lambda: (browser.downloads_dir / name).exists(), 15, "the downloaded file")  # type: ignore[attr-defined]
    assert (browser.downloads_dir / name).read_bytes() == (e2e.image_dir / f"{image_id}.png").read_bytes()  # type: ignore[attr-defined]


def test_switching_user_and_the_weight_slider(e2e: E2E, browser: WebDriver) -> None:
    alice = [i for i, _ in ranking(column(browser, "alice"))]
    before = searches(browser)
    browser.find_element(By.CSS_SELECTOR, '.pill[data-user="bob"]').click()  # switching re-runs the search
    wait_until(lambda: searches(browser) > before and column_users(browser) == ["bob"], 20, "bob's results")
    bob_col = column(browser, "bob")
    assert bob_col.get_attribute("data-personalized") == "false"
    bob = [i for i, _ in ranking(bob_col)]
    assert bob != alice
    before = searches(browser)
    browser.find_element(By.CSS_SELECTOR, '.pill[data-user="__new__"]').click()
    wait_until(lambda: searches(browser) > before and idle(browser), 20, "the new user's results")
    guest = browser.find_element(By.ID, "user").get_attribute("value") or ""
    assert guest.startswith("guest-")
    assert "active" in (
        browser.find_element(By.CSS_SELECTOR, '.pill[data-user="__new__"]').get_attribute("class") or ""
    )
    plain = [i for i, _ in ranking(column(browser, guest))]
    assert plain == bob  # no history: both are the relevance order
    # free text user id; weight 0 gives alice the relevance order too
    set_value(browser, "user", "alice", "input")
    set_value(browser, "weight", "0", "input", "change")
    wait_until(lambda: column_users(browser) == ["alice"] and idle(browser), 20, "alice's results")
    run_search(browser)
    assert [i for i, _ in ranking(column(browser, "alice"))] == plain
    assert "0.00" in browser.find_element(By.ID, "weight-value").text
    set_value(browser, "weight", "0.8", "input")
    run_search(browser)
    assert column(browser, "alice").get_attribute("data-personalized") == "true"
    assert [i for i, _ in ranking(column(browser, "alice"))] != plain


def test_side_by_side(e2e: E2E, browser: WebDriver) -> None:
    browser.find_element(By.ID, "sbs").click()
    set_value(browser, "user2", "bob", "change")
    wait_until(lambda: len(column_users(browser)) == 2 and idle(browser), 20, "two columns")
    run_search(browser)
    assert column_users(browser) == ["alice", "bob"]
    # bob likes another style than alice: favorites from his own column
    alice_top = ranking(column(browser, "alice"))[0][1]
    bob_rank = ranking(column(browser, "bob"))
    counts = Counter(c for _, c in bob_rank)
    bob_likes = max((c for c in counts if c != alice_top), key=lambda c: counts[c])
    first_two = favorite_cluster(browser, "bob", bob_likes, 2)
    # with "re-rank after each interaction", the page searches again by itself
    browser.find_element(By.ID, "live").click()
    before = searches(browser)
    favorite_cluster(browser, "bob", bob_likes, 1, skip=first_two)
    wait_until(lambda: searches(browser) > before, 10, "the automatic re-rank after an interaction")
    browser.find_element(By.ID, "live").click()
    search_until(
        browser,
        lambda: (
            column(browser, "bob").get_attribute("data-personalized") == "true"
            and ranking(column(browser, "bob"))[0][1] == bob_likes
        ),
        "bob's ranking to follow his favorites",
    )
    a, b = ranking(column(browser, "alice")), ranking(column(browser, "bob"))
    assert a[0][1] == alice_top and b[0][1] == bob_likes and a[0][1] != b[0][1]
    assert column(browser, "alice").get_attribute("data-personalized") == "true"
    browser.set_window_size(1600, 1000)
    browser.execute_script("window.scrollTo(0, 0)")
    wait_images_loaded(browser)
    first = column(browser, "bob").find_element(By.CSS_SELECTOR, ".card .thumb-wrap")
    ActionChains(browser).move_to_element(first).perform()
    time.sleep(0.3)
    browser.save_screenshot(str(SHOTS / "ui-side-by-side.png"))
    browser.set_window_size(1440, 1000)


def test_gateway_api_errors_are_clear(e2e: E2E) -> None:
    url = e2e.gateway_url
    status, _, body = http("GET", f"{url}/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, _, body = http("GET", f"{url}/api/search?q=x&user=not%20valid")
    assert status == 400 and json.loads(body)["error"]["code"] == "invalid_request"
    status, _, body = http("GET", f"{url}/api/search?user=alice")
    assert status == 400
    status, _, body = http(
        "POST", f"{url}/api/interactions", {"user_id": "alice", "image_id": "nope", "event_type": "view"}
    )
    assert status == 404 and json.loads(body)["error"]["code"] == "unknown_image"
    status, _, body = http(
        "POST", f"{url}/api/interactions", {"user_id": "alice", "image_id": "x", "event_type": "hug"}
    )
    assert status == 400 and json.loads(body)["error"]["code"] == "invalid_interaction"
    status, headers, body = http("GET", f"{url}/thumbs/neon/circle-0?size=64")
    assert status == 200 and headers["Content-Type"] == "image/png" and body[:4] == b"\x89PNG"
    status, _, _ = http("GET", f"{url}/images/no/such/image")
    assert status == 404
    status, _, body = http("GET", f"{url}/metrics")
    assert status == 200 and b"imgsearch_gateway_requests_total" in body
