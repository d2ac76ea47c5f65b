"""Issue 15 on the web page, in headless Chromium against the real pipeline: the "More" button pages
through one ranking, "Hide" and "Not my style" change the next ranking, "Similar" searches by an
indexed image. Each test uses its own user, so the order of the tests in test_ui.py does not matter."""

from __future__ import annotations

import json
from collections import Counter
from urllib.parse import urlencode

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.e2e.test_ui import QUERY, column, ranking, run_search, search_until, set_value, status_text
from tests.support.e2e import E2E, http, wait_until

pytestmark = pytest.mark.e2e


def open_page(e2e: E2E, browser: WebDriver, user: str) -> None:
    browser.get(e2e.gateway_url + "/")
    wait_until(lambda: browser.execute_script("return document.body.dataset.ready === '1'"), 15, "the page script")
    if browser.find_element(By.ID, "sbs").is_selected():
        browser.find_element(By.ID, "sbs").click()
    set_value(browser, "user", user, "input")
    set_value(browser, "weight", "0.8", "input")
    q = browser.find_element(By.ID, "q")
    q.clear()
    q.send_keys(QUERY)
    run_search(browser)


def api_search(e2e: E2E, **params: str) -> dict:
    status, _, body = http("GET", f"{e2e.gateway_url}/api/search?{urlencode(params)}")
    assert status == 200, body
    return dict(json.loads(body))


def interactions(browser: WebDriver) -> int:
    return int(browser.execute_script("return Number(document.body.dataset.interactions || 0)"))


def press(browser: WebDriver, user: str, image_id: str, button: str) -> None:
    """Click one action button on one card and wait until the gateway took the interaction."""
    card = column(browser, user).find_element(By.CSS_SELECTOR, f'.card[data-image-id="{image_id}"]')
    before = interactions(browser)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", card)
    card.find_element(By.CSS_SELECTOR, button).click()
    wait_until(
        lambda: interactions(browser) > before,
        10,
        f"{button} on {image_id} to be recorded (status: {status_text(browser)!r})",
        interval=0.1,
    )


def test_more_pages_through_the_same_ranking(e2e: E2E, browser: WebDriver) -> None:
    user = "u-pager"
    open_page(e2e, browser, user)
    first = ranking(column(browser, user))
    assert len(first) == 20
    more = column(browser, user).find_element(By.CSS_SELECTOR, ".next-page")
    assert more.text == "More (page 2)"
    # this user has no history: the relevance order, the same as one page of 40 (other tests may have
    # indexed more images than the synthetic folder's, inline ones)
    deep = [h["image_id"] for h in api_search(e2e, q=QUERY, user=user, k="40", weight="0.8")["hits"]]
    assert len(deep) > 20
    more.click()
    wait_until(lambda: len(ranking(column(browser, user))) == len(deep), 20, f"page 2 appended ({len(deep)} cards)")
    col = column(browser, user)
    cards = col.find_elements(By.CSS_SELECTOR, ".card")
    ids = [i for i, _ in ranking(col)]
    assert ids[:20] == [i for i, _ in first]  # page 1 is kept, page 2 is appended below it
    assert ids == deep and len(set(ids)) == len(ids)
    assert [int(c.get_attribute("data-rank") or 0) for c in cards] == list(range(1, len(ids) + 1))
    if len(ids) < 40:  # the last page: no more button
        assert not col.find_elements(By.CSS_SELECTOR, ".next-page")


def test_hide_and_not_my_style_buttons_change_the_next_ranking(e2e: E2E, browser: WebDriver) -> None:
    user = "u-picky"
    open_page(e2e, browser, user)
    before = ranking(column(browser, user))
    hidden = before[0][0]
    press(browser, user, hidden, ".act-hide")
    card = column(browser, user).find_element(By.CSS_SELECTOR, f'.card[data-image-id="{hidden}"]')
    assert "hidden-by-user" in (card.get_attribute("class") or "")
    assert "done" in (card.find_element(By.CSS_SELECTOR, ".act-hide").get_attribute("class") or "")
    search_until(
        browser,
        lambda: hidden not in [i for i, _ in ranking(column(browser, user))],
        "the hidden image to leave the results",
    )
    # "not my style" on three images of the style (cluster) most present in the top 10
    top10 = ranking(column(browser, user))[:10]
    disliked, had = Counter(c for _, c in top10).most_common(1)[0]
    assert had >= 3, top10
    targets = [i for i, c in top10 if c == disliked][:3]
    for image_id in targets:
        press(browser, user, image_id, ".act-nms")
    search_until(
        browser,
        lambda: 2 * sum(c == disliked for _, c in ranking(column(browser, user))[:10]) <= had,
        "the disliked style to lose at least half of its places in the top 10",
    )
    after = ranking(column(browser, user))
    left = sum(c == disliked for _, c in after[:10])
    print(f"cluster {disliked} in the top 10: {had} -> {left}; top 10 {after[:10]}")
    assert after[0][1] != disliked
    # a demoted image ranks below where it was (the search text and the catalog did not change)
    where = {i: r for r, (i, _) in enumerate(after)}
    assert all(where[i] > r for r, (i, _) in enumerate(before) if i in targets), (targets, after)
    assert hidden not in [i for i, _ in after]
    assert column(browser, user).get_attribute("data-personalized") == "true"


def test_similar_searches_by_an_indexed_image(e2e: E2E, browser: WebDriver) -> None:
    user = "u-similar"
    open_page(e2e, browser, user)
    source = ranking(column(browser, user))[4][0]
    card = column(browser, user).find_element(By.CSS_SELECTOR, f'.card[data-image-id="{source}"]')
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", card)
    card.find_element(By.CSS_SELECTOR, ".act-similar").click()
    wait_until(lambda: status_text(browser) == f"Images like {source}.", 20, f"the images like {source}")
    ids = [i for i, _ in ranking(column(browser, user))]
    reply = api_search(e2e, similar_to=source, user=user, k="20", weight="0.8")
    assert ids == [h["image_id"] for h in reply["hits"]]
    assert source not in ids  # the query image itself is not an answer
    # its nearest neighbours share its subject (the file name before the variant) more than chance
    subject = source.split("/")[1].rsplit("-", 1)[0]
    same = sum(i.split("/")[1].rsplit("-", 1)[0] == subject for i in ids[:5])
    assert same >= 2, (source, ids[:5])
