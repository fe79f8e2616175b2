"""The export panel in a real browser (Debian's Chromium, driven by Playwright) against
the real API and its embedded worker, on the demo data of `seed-demo`.

The worker runs `held_export`: each export stops at its first intermediate progress
until the test, having seen that progress on the page, releases it; so the page is
seen passing through intermediate values however fast this machine renders.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, WebSocketRoute, async_playwright, expect

from gql.demo.seed import seed_demo
from tests.support.app_server import RunningApp, make_settings
from tests.support.exports import wait_for_status
from tests.support.graphql import GraphQLHTTP
from tests.support.held_exports import HELD_EXPORT_HANDLER, HeldExports
from tests.support.node import require_chromium
from tests.support.tokens import JWT_SECRET, token_for

# Without the background-networking flags Chromium dials out, and a closed network
# refuses it.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEMO_SECONDS = 4.0  # the panel's presets fit 4-second demo videos
ANNOTATE_SECONDS = 2.5  # its preset's two clips: 1-3 s and 3.5-4 s
TIMEOUT_MS = 60_000
# Where to save the screenshot for docs/ (`PANEL_SCREENSHOT=docs/panel.png`).
SCREENSHOT = os.environ.get("PANEL_SCREENSHOT")

DURATION_JS = """video => new Promise((resolve, reject) => {
  if (video.readyState >= 1) resolve(video.duration);
  video.addEventListener("loadedmetadata", () => resolve(video.duration));
  video.addEventListener("error", () => reject(new Error(`video error ${video.error?.code}`)));
})"""

POSTER_SIZE_JS = """url => new Promise((resolve, reject) => {
  const image = new Image();
  image.onload = () => resolve([image.naturalWidth, image.naturalHeight]);
  image.onerror = () => reject(new Error(`poster did not load: ${url}`));
  image.src = url;
})"""


@pytest.fixture
async def app(tmp_path: Path, held: HeldExports) -> AsyncIterator[RunningApp]:
    settings = make_settings(
        data_dir=tmp_path / "data",
        local_worker_concurrency=2,
        local_worker_handler=HELD_EXPORT_HANDLER,
    )
    await seed_demo(settings, "local", seconds=DEMO_SECONDS)
    with RunningApp(settings) as running:
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    chromium = require_chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield launched
        await launched.close()


async def start_export(page: Page, kind: str) -> str:
    """Clicks the kind's Start button; returns the id of the job it started."""
    form = page.locator(f"form.export[data-kind={kind}]")
    before = await form.get_attribute("data-last-job")
    await form.locator("button[type=submit]").click()
    started = "([form, before]) => form.dataset.lastJob && form.dataset.lastJob !== before"
    await page.wait_for_function(started, arg=[await form.element_handle(), before])
    job_id = await form.get_attribute("data-last-job")
    assert job_id
    return job_id


async def until_held(page: Page, job_id: str) -> int:
    """The intermediate progress the page shows while the export is held."""
    row = page.locator(f"li.job[data-job-id='{job_id}']")
    await expect(row).to_have_attribute("data-status", "PROCESSING")
    bar = row.locator("progress")
    await page.wait_for_function(
        "bar => bar.value > 0 && bar.value < 100", arg=await bar.element_handle()
    )
    progress = int(await bar.evaluate("bar => bar.value"))
    await expect(row.locator(".percent")).to_have_text(f"{progress} %")
    return progress


async def run_to_completion(page: Page, held: HeldExports, job_id: str, seconds: float) -> None:
    """Sees the job's progress bar part-way, then COMPLETE, then its video play."""
    assert 0 < await until_held(page, job_id) < 100
    held.release(job_id)
    row = page.locator(f"li.job[data-job-id='{job_id}']")
    await expect(row).to_have_attribute("data-status", "COMPLETE")
    await expect(row.locator("progress")).to_have_js_property("value", 100)
    duration = await row.locator("video").evaluate(DURATION_JS)
    assert abs(duration - seconds) < 0.1, (job_id, duration)
    # The output line, and the poster frame the worker wrote, decoded by the browser.
    await expect(row.locator(".output")).to_have_text(
        re.compile("^0:0\\d · 640\u00d7360 · [\\d.]+ fps · \\d+ kB$")
    )
    poster = await row.locator("video").get_attribute("poster")
    assert poster
    size = await page.evaluate(POSTER_SIZE_JS, poster)
    assert size == [640, 360], (job_id, size)


async def test_the_panel_runs_exports_live_cancels_retries_and_falls_back_to_sse(
    app: RunningApp, browser: Browser, held: HeldExports, tmp_path: Path
) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    await page.goto(app.url)
    await expect(page.locator("#transport")).to_have_attribute("data-transport", "websocket")

    for kind, seconds in [
        ("FRAMING", DEMO_SECONDS),
        ("OVERLAY", DEMO_SECONDS),
        ("ANNOTATE", ANNOTATE_SECONDS),
    ]:
        await run_to_completion(page, held, await start_export(page, kind), seconds)

    cancelled = await start_export(page, "FRAMING")
    await until_held(page, cancelled)
    row = page.locator(f"li.job[data-job-id='{cancelled}']")
    await row.locator("button[data-action=cancel]").click()
    await expect(row).to_have_attribute("data-status", "CANCELLED")
    await expect(row.locator(".message")).to_have_text("Cancelled")
    await row.locator("button[data-action=retry]").click()
    newest = page.locator("li.job").first
    await expect(newest).not_to_have_attribute("data-job-id", cancelled)
    await run_to_completion(
        page, held, str(await newest.get_attribute("data-job-id")), DEMO_SECONDS
    )
    await page.screenshot(path=SCREENSHOT or tmp_path / "panel.png", full_page=True)

    # A proxy that refuses websockets: the page falls back to SSE.
    await page.route_web_socket("**/graphql", lambda websocket: websocket.close())
    await page.reload()
    await expect(page.locator("#transport")).to_have_attribute("data-transport", "sse")
    await run_to_completion(page, held, await start_export(page, "OVERLAY"), DEMO_SECONDS)


async def test_the_panel_asks_for_a_token_when_the_server_wants_one(
    tmp_path: Path, browser: Browser
) -> None:
    settings = make_settings(data_dir=tmp_path / "data", auth_jwt_secret=JWT_SECRET)
    await seed_demo(settings, "alice", seconds=1)
    with RunningApp(settings) as app:
        page = await browser.new_page()
        await page.goto(app.url)
        form = page.locator("form.token")

        await form.locator("textarea").fill("not-a-token")
        await form.locator("button[type=submit]").click()
        await expect(form.locator(".errors")).to_have_text("The server refused that token.")
        await form.locator("textarea").fill(token_for("alice"))
        await form.locator("button[type=submit]").click()

        await expect(page.locator("#transport")).to_have_attribute("data-transport", "websocket")
        await expect(page.locator("form.export[data-kind=ANNOTATE] select")).to_have_text(
            "Demo game (#1)"
        )


async def test_the_panel_tells_a_waiting_export_its_place_in_line_and_time_left(
    app: RunningApp, browser: Browser, held: HeldExports
) -> None:
    page = await browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    await page.goto(app.url)
    # A history of three framing exports gives estimates their basis.
    for _ in range(3):
        await run_to_completion(page, held, await start_export(page, "FRAMING"), DEMO_SECONDS)

    running = [await start_export(page, "FRAMING") for _ in range(2)]
    for job_id in running:  # both of the local worker's slots are taken
        await until_held(page, job_id)
    waiting = [await start_export(page, "FRAMING") for _ in range(2)]
    for place, job_id in zip(["1st", "2nd"], waiting, strict=True):
        row = page.locator(f"li.job[data-job-id='{job_id}']")
        await expect(row.locator(".place")).to_have_text(f"{place} in line")
        await expect(row.locator(".eta")).to_have_text(re.compile(r"^starts .*(left|now)$"))
        await expect(row.locator(".eta")).to_have_attribute("title", re.compile("^between "))
    for job_id in running:
        row = page.locator(f"li.job[data-job-id='{job_id}']")
        await expect(row.locator(".place")).to_have_text("")
        await expect(row.locator(".eta")).to_have_text(
            re.compile(r"^(about .* left|any moment now)$")
        )

    held.release(running[0])  # the first in line takes its slot; the second moves up
    await until_held(page, waiting[0])
    await expect(page.locator(f"li.job[data-job-id='{waiting[1]}'] .place")).to_have_text(
        "1st in line"
    )
    for job_id in [running[1], *waiting]:
        held.release(job_id)
    for job_id in [running[1], *waiting]:
        row = page.locator(f"li.job[data-job-id='{job_id}']")
        await expect(row).to_have_attribute("data-status", "COMPLETE")
        await expect(row.locator(".eta")).to_have_text("")


async def test_the_panel_resumes_its_stream_after_the_websocket_drops(
    app: RunningApp, browser: Browser, held: HeldExports
) -> None:
    """The export finishes while the panel's websocket is down; the panel learns it
    when the socket comes back, from where its stream left off (a live-only stream
    would leave the job PROCESSING forever)."""
    page = await browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    sockets: list[WebSocketRoute] = []
    passing = True

    async def proxy(websocket: WebSocketRoute) -> None:
        if passing:
            websocket.connect_to_server()
            sockets.append(websocket)
        else:  # the network is down: graphql-ws tries again
            await websocket.close(code=1012, reason="down")

    await page.route_web_socket("**/graphql", proxy)
    await page.goto(app.url)
    await expect(page.locator("#transport")).to_have_attribute("data-transport", "websocket")
    job_id = await start_export(page, "OVERLAY")
    await until_held(page, job_id)

    passing = False
    await sockets[-1].close(code=1012, reason="down")
    held.release(job_id)
    async with GraphQLHTTP(app.graphql_url) as client:
        await wait_for_status(client, job_id, "COMPLETE", timeout=TIMEOUT_MS / 1000)
    passing = True

    row = page.locator(f"li.job[data-job-id='{job_id}']")
    await expect(row).to_have_attribute("data-status", "COMPLETE")
    assert len(sockets) == 2
