"""The page in a real browser: Playwright driving Debian's Chromium against a live uvicorn server.

Without Chromium (or the playwright package) these tests skip with a message, unless
KPR_REQUIRE_BROWSER=1 (set by .ci/run), where they fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from serve_helpers import live_server

from kpr.imaging import read_rgb
from kpr.keypoints.io import read_keypoints_file
from kpr.serve import ServeOptions, create_app

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-gpu",
]


def _chromium() -> str:
    path = (
        os.environ.get("KPR_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )
    problem = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "the playwright package is not installed (pip install playwright)"
    if problem is None and path is None:
        problem = "no Chromium found (apt-get install -y chromium, or set KPR_CHROMIUM)"
    if problem:
        if os.environ.get("KPR_REQUIRE_BROWSER"):
            pytest.fail(f"browser tests required (KPR_REQUIRE_BROWSER is set) but {problem}")
        pytest.skip(f"browser tests skipped: {problem}")
    return path


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server(service):
    with live_server(create_app(service, ServeOptions(queue_capacity=8))) as url:
        yield url


@pytest.fixture()
def page(browser, server):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    # Offline: any request that leaves this server fails the test.
    outside: list[str] = []
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith(server)
            else (outside.append(route.request.url), route.abort())
        ),
    )
    page.goto(server + "/")
    page.wait_for_selector("#meta .dot")
    yield page
    assert outside == [] and problems == []
    context.close()


def _crop(crops_root: Path) -> tuple[Path, Path]:
    for image in sorted((crops_root / "images" / "query").iterdir()):
        kp = crops_root / "keypoints" / "query" / f"{image.stem}.json"
        if kp.is_file() and read_keypoints_file(kp).num_negatives:
            return image, kp
    raise AssertionError("no multi-person query crop")


def _click_crop(page, x: float, y: float, button: str = "left") -> None:
    box = page.locator("#canvas").bounding_box()
    scale = box["width"] / 64  # the synthetic crops are 64 px wide
    page.mouse.click(box["x"] + x * scale, box["y"] + y * scale, button=button)


def _sent_prompt(request) -> dict:
    body = request.post_data_buffer.decode("latin-1")
    part = body.split('name="prompt"')[1]
    return json.loads(part.split("\r\n\r\n", 1)[1].split("\r\n--", 1)[0])


def test_page_loads_with_the_model_and_gallery(page, service, tmp_path):
    assert page.locator("#meta").inner_text().startswith(f"{len(service.index)} gallery crops")
    assert page.locator(".group").count() == 6  # cck8 groups that own a keypoint in the palette
    assert page.locator(".joint").count() == 17
    page.screenshot(path=str(tmp_path / "empty.png"))


def test_upload_click_points_and_matches_appear(page, service, crops_root, tmp_path):
    image, kp = _crop(crops_root)
    with page.expect_response("**/api/query") as first:
        page.set_input_files("#file-input", str(image))
    assert first.value.json()["prompted"] is False
    assert page.locator("#matches-prompt .match").count() == service.top_k
    skeletons = read_keypoints_file(kp)
    target, other = skeletons.target, skeletons.negatives[0]
    placed = [k for k in (5, 6, 11, 12) if target[k, 2] > 0.3]
    page.keyboard.press("4")  # torso: its first point (left hip) becomes the one to place
    assert page.locator(".joint.active").inner_text() == "L hip"
    for k in placed:
        page.locator(f'.joint[data-joint="{k}"]').click()
        with page.expect_response("**/api/query"):
            _click_crop(page, target[k, 0], target[k, 1])
    hip = 11 if other[11, 2] > 0.3 else 12
    page.locator(f'.joint[data-joint="{hip}"]').click()
    with page.expect_request("**/api/query") as sent:
        _click_crop(page, other[hip, 0], other[hip, 1], button="right")
    prompt = _sent_prompt(sent.value)
    for k in placed:
        assert prompt["keypoints"][k][:2] == pytest.approx(target[k, :2].tolist(), abs=0.6)
        assert prompt["keypoints"][k][2] == 1
    assert len(prompt["negatives"]) == 1
    assert prompt["negatives"][0][hip][:2] == pytest.approx(other[hip, :2].tolist(), abs=0.6)
    page.wait_for_function(
        "document.querySelector('#prompt-pill').textContent.includes('negative')"
    )
    assert page.locator("#prompt-pill").inner_text() == f"{len(placed)} target points · 1 negative"
    page.wait_for_selector("#col-prompt:not(.busy)")
    names = page.locator("#matches-prompt .match").evaluate_all(
        "cards => cards.map(c => c.dataset.name)"
    )
    want = service.query(
        read_rgb(image), _as_array(prompt["keypoints"]), _as_array(prompt["negatives"])
    )
    assert names == [m.name for m in want.matches]
    assert page.locator("#maps-prompt .map").count() == 9
    page.screenshot(path=str(tmp_path / "prompted.png"))


def _as_array(value):
    return np.asarray(value, dtype=np.float64) if value else None


def test_drag_moves_and_double_click_deletes_and_undo_restores(page, crops_root, tmp_path):
    image, kp = _crop(crops_root)
    with page.expect_response("**/api/query"):
        page.set_input_files("#file-input", str(image))
    page.locator('.joint[data-joint="0"]').click()
    with page.expect_response("**/api/query"):
        _click_crop(page, 32, 20)
    box = page.locator("#canvas").bounding_box()
    scale = box["width"] / 64
    with page.expect_request("**/api/query") as moved:
        page.mouse.move(box["x"] + 32 * scale, box["y"] + 20 * scale)
        page.mouse.down()
        page.mouse.move(box["x"] + 40 * scale, box["y"] + 30 * scale, steps=5)
        page.mouse.up()
    assert _sent_prompt(moved.value)["keypoints"][0][:2] == pytest.approx([40, 30], abs=0.6)
    with page.expect_request("**/api/query") as deleted:
        page.mouse.dblclick(box["x"] + 40 * scale, box["y"] + 30 * scale)
    assert _sent_prompt(deleted.value)["keypoints"] is None
    with page.expect_request("**/api/query") as undone:
        page.keyboard.press("Control+z")
    assert _sent_prompt(undone.value)["keypoints"][0][:2] == pytest.approx([40, 30], abs=0.6)


def test_pick_from_the_gallery_loads_its_stored_prompt(page, service, tmp_path):
    page.keyboard.press("g")
    page.wait_for_selector("#thumbs button")
    assert page.locator("#thumbs button").count() == len(service.index)
    page.screenshot(path=str(tmp_path / "gallery.png"))
    name = next(n for i, n in enumerate(service.index.names) if service.index.prompt(i) is not None)
    with page.expect_response("**/api/query") as answer:
        page.locator(f'#thumbs button[title="{name}"]').click()
    body = answer.value.json()
    assert body["prompted"] is True
    # The crop with the prompt it was indexed with is its own nearest neighbour.
    assert body["matches"][0]["name"] == name and body["matches"][0]["distance"] < 1e-3
    page.wait_for_selector(f'#matches-prompt .match[data-name="{name}"]')
    page.screenshot(path=str(tmp_path / "from_gallery.png"))
