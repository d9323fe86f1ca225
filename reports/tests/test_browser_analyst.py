"""The analyst workspace in a real browser: Playwright driving Debian's Chromium (never a downloaded
browser) against the live test server on 127.0.0.1.

One analyst's whole round: two-factor login (password, then the TOTP code), "Next case" claims a case,
the preview is blurred (measured on the pixels of a screenshot against the unblurred rendition),
`r` reveals it unblurred and writes one audit event, it blurs again after HOTLINE_REVEAL_SECONDS,
`3` + Enter classifies it, `n` loads the next case.

Every picture is drawn in code (reports.lib.synthetic plus a checkerboard and noise, for detail whose
loss a blur makes measurable). Every request the browser makes is checked to go to the loopback
server; anything else is aborted and fails the test. Screenshots land in test-artifacts/browser/.

Runs wherever /usr/bin/chromium exists (.ci/run installs Debian's `chromium` package); skipped
elsewhere.
"""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from django.db import connections
from django_otp.plugins.otp_totp.models import TOTPDevice
from PIL import Image

from reports.lib.imaging import laplacian_variance
from reports.lib.synthetic import scene
from reports.models import Assessment, AuditEvent, RevealGrant
from reports.models.choices import CaseStatus, Verdict
from reports.services.staff import staff_create
from reports.tests.analyst_helpers import make_case, make_content, sharp_preview
from reports.tests.factories import totp_now

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium); .ci/run installs it",
    ),
]

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="browser tests need the playwright package (pip install -r requirements-dev.txt)"
)

# Chromium must not reach the internet: no background networking, updates, sync or QUIC.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Screenshots compare pixels with Pillow's decoding of the same JPEG: no colour management.
    "--force-color-profile=srgb",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
# Short, but long enough for a screenshot of the revealed image on a busy CI machine.
REVEAL_SECONDS = 3
# High-frequency energy (Laplacian variance of the luma) of the on-screen image, relative to the
# unblurred preview's: blurred must keep almost none of it, revealed almost all of it.
BLURRED_MAX_RATIO = 0.05
REVEALED_RATIO_RANGE = (0.9, 1.1)
PREVIEW = "[data-preview] img"


def detailed_picture(seed: int) -> Image.Image:
    """Shapes on a gradient (reports.lib.synthetic.scene) under a 4 px checkerboard and noise: plenty
    of fine detail, none of it resembling anything."""
    width, height = 512, 384
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    checker = (((x // 4 + y // 4) % 2) * 2 - 1)[..., None] * 45.0
    pixels = np.asarray(scene(seed, width, height), dtype=np.float64) + checker + rng.normal(0, 12, (height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def energy(image: Image.Image) -> float:
    return laplacian_variance(image)


def on_screen(page, name: str) -> Image.Image:
    """The preview <img> as the analyst sees it: a screenshot of its content box (the border shows
    focus and reveal state), saved for people to look at."""
    box = page.locator(PREVIEW).evaluate(
        """el => { el.scrollIntoView({block: 'center'});
                   const rect = el.getBoundingClientRect(), style = getComputedStyle(el);
                   return {x: rect.left + parseFloat(style.borderLeftWidth),
                           y: rect.top + parseFloat(style.borderTopWidth),
                           width: el.clientWidth, height: el.clientHeight}; }"""
    )
    # Chromium paints the image on whole pixels; the clip is in viewport coordinates.
    clip = {"x": round(box["x"]), "y": round(box["y"]), "width": box["width"], "height": box["height"]}
    png = page.screenshot(clip=clip, path=ARTIFACTS / f"{name}.png", animations="disabled")
    return Image.open(io.BytesIO(png)).convert("RGB")


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b.convert("RGB"), dtype=np.int16)).mean())


def wait_for_preview(page, view: str, timeout: float) -> None:
    """Until the preview <img> shows (loaded, decoded) the `view=…` rendition."""
    page.wait_for_function(
        """([selector, view]) => { const img = document.querySelector(selector);
               return img && img.src.includes('view=' + view) && img.complete && img.naturalWidth > 0; }""",
        arg=[PREVIEW, view],
        timeout=timeout * 1000,
    )


@pytest.fixture
def browser_page(live_server, monkeypatch):
    """A fresh Chromium page. Requests anywhere but the live server are aborted, and fail the test."""
    server = urlsplit(live_server.url)
    assert server.hostname == "127.0.0.1", live_server.url
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    foreign: list[str] = []

    def only_loopback(route):
        if urlsplit(route.request.url).netloc == server.netloc:
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    # Playwright's sync API runs an event loop in this thread. The test's own ORM calls are safe (one
    # thread, nothing concurrent), but Django's guard cannot tell, so it is lifted for this test. With
    # the loop running, Django also gives the test its own database connection (asgiref's Local acts
    # as a context variable): it is closed here, before the loop stops, or it would outlive the test.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            # Under 50rem wide the case page has one column, in which a 512 px preview shows at its
            # own size: screen pixels compare one for one with the preview's (no rescaling).
            context = browser.new_context(
                viewport={"width": 760, "height": 1000}, device_scale_factor=1, service_workers="block"
            )
            context.route("**/*", only_loopback)
            context.set_default_timeout(10_000)
            yield context.new_page()
            context.close()
        finally:
            browser.close()
            connections.close_all()
    assert not foreign, f"the browser tried to leave the loopback server: {foreign}"


def sign_in(page, base: str, username: str, password: str, device: TOTPDevice) -> None:
    """The two-step staff login in the browser: password, then the authenticator's current code."""
    page.goto(f"{base}/account/login/")
    page.fill("input[name=auth-username]", username)
    page.fill("input[name=auth-password]", password)
    with page.expect_navigation():
        page.get_by_role("button", name="Next").click()
    page.fill("input[name=token-otp_token]", totp_now(device))
    with page.expect_navigation():
        page.get_by_role("button", name="Next").click()
    assert urlsplit(page.url).path == "/staff/"


def test_analyst_round_in_chromium(browser_page, live_server, transactional_db, settings):
    settings.HOTLINE_REVEAL_SECONDS = REVEAL_SECONDS
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    page = browser_page
    base = live_server.url
    sharp_requests: list[str] = []
    page.on("request", lambda request: "view=sharp" in request.url and sharp_requests.append(request.url))

    # Two open cases in "New unknown content", the older one first in line.
    first = make_case(contents=[make_content(9101, image=detailed_picture(9101))], age=timedelta(hours=2))
    second = make_case(contents=[make_content(9102, image=detailed_picture(9102))], age=timedelta(hours=1))
    content = first.contents.get()
    sharp = Image.open(io.BytesIO(sharp_preview(content))).convert("RGB")
    sharp_energy = energy(sharp)
    user, password, _uri = staff_create(username="browser-analyst", role="analyst")
    device = TOTPDevice.objects.get(user=user, name="default")

    # Log in: password, then the authenticator's current code.
    sign_in(page, base, user.username, password, device)
    login = AuditEvent.objects.get(action="auth.login", actor=user)
    assert login.details["second_factor"] == "TOTPDevice"

    # The queues page; "Next case" of the queue claims its first case.
    page.get_by_role("link", name="Case queues").click()
    page.wait_for_url(f"{base}/staff/queues/")
    row = page.locator("tr", has=page.get_by_role("rowheader", name="New unknown content"))
    with page.expect_navigation():
        row.get_by_role("button", name="Next case").click()
    assert urlsplit(page.url).path == f"/staff/cases/{first.pk}/"
    first.refresh_from_db()
    assert (first.claimed_by_id, first.status) == (user.pk, CaseStatus.IN_PROGRESS)

    # Styles and script loaded (from the live server's static files): the image has its CSS border,
    # and the script has shown the Reveal button that the page sends hidden.
    wait_for_preview(page, "blur", 5)
    assert page.locator(PREVIEW).evaluate("el => getComputedStyle(el).borderTopWidth") == "3px"
    page.get_by_role("button", name="Reveal (r)").wait_for(state="visible")

    # Blurred: the same size as the preview, with almost none of its fine detail.
    blurred = on_screen(page, "1-claimed-blurred")
    assert blurred.size == sharp.size
    blurred_ratio = energy(blurred) / sharp_energy
    assert blurred_ratio < BLURRED_MAX_RATIO, (energy(blurred), sharp_energy)
    assert not AuditEvent.objects.filter(action="content.revealed").exists()
    assert not sharp_requests

    # Reveal with the keyboard: the unblurred preview, on screen, pixel for pixel.
    page.evaluate(
        """selector => { const img = document.querySelector(selector); window.__srcLog = [];
               new MutationObserver(() => window.__srcLog.push([img.src, performance.now()]))
                   .observe(img, {attributes: true, attributeFilter: ['src']}); }""",
        PREVIEW,
    )
    page.keyboard.press("r")
    wait_for_preview(page, "sharp", 5)
    revealed = on_screen(page, "2-revealed")
    assert "view=sharp" in page.locator(PREVIEW).get_attribute("src"), "blurred again before the screenshot"
    revealed_ratio = energy(revealed) / sharp_energy
    assert REVEALED_RATIO_RANGE[0] < revealed_ratio < REVEALED_RATIO_RANGE[1], (energy(revealed), sharp_energy)
    revealed_diff = mean_abs_diff(revealed, sharp)
    assert revealed_diff < 2.0, revealed_diff
    assert page.locator("[data-preview]").get_attribute("class") == "preview revealed"
    events = list(AuditEvent.objects.filter(action="content.revealed"))
    assert len(events) == 1
    assert (events[0].actor_id, events[0].object_type, events[0].object_id) == (
        user.pk,
        "reports.content",
        str(content.pk),
    )
    assert events[0].details["case"] == first.pk
    assert len(sharp_requests) == 1
    # The unblurred URL was good once: it is spent.
    sharp_src = page.locator(PREVIEW).get_attribute("src")
    assert page.request.get(f"{base}{sharp_src}").status == 403
    assert RevealGrant.objects.filter(user=user, content=content, used_at__isnull=False).count() == 1

    # After HOTLINE_REVEAL_SECONDS, blurred again without anyone touching anything.
    wait_for_preview(page, "blur", REVEAL_SECONDS + 5)
    log = page.evaluate("() => window.__srcLog")
    (sharp_at,) = [at for src, at in log if "view=sharp" in src]
    (blur_at,) = [at for src, at in log if "view=blur" in src]
    shown_ms = blur_at - sharp_at
    assert REVEAL_SECONDS * 1000 <= shown_ms < REVEAL_SECONDS * 1000 + 2500, shown_ms
    reblurred = on_screen(page, "3-blurred-again")
    reblurred_ratio = energy(reblurred) / sharp_energy
    assert reblurred_ratio < BLURRED_MAX_RATIO
    assert mean_abs_diff(reblurred, blurred) < 1.0
    assert page.locator("[data-preview]").get_attribute("class") == "preview"
    assert AuditEvent.objects.filter(action="content.revealed").count() == 1

    # Classify with the keyboard: 3 is "Not illegal"; Enter submits the form.
    page.keyboard.press("3")
    checked = page.locator("[data-assessment-form] input[type=radio]:checked")
    assert checked.get_attribute("value") == Verdict.NOT_ILLEGAL
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert urlsplit(page.url).path == f"/staff/cases/{first.pk}/"
    assessment = Assessment.objects.get(case=first)
    assert (assessment.content_id, assessment.analyst_id, assessment.verdict) == (
        content.pk,
        user.pk,
        Verdict.NOT_ILLEGAL,
    )
    first.refresh_from_db()
    # First-seen content: the case now waits for a senior analyst, and no longer for this analyst.
    assert first.status == CaseStatus.AWAITING_SECOND_OPINION
    page.screenshot(path=ARTIFACTS / "4-assessed.png", full_page=True)

    # n: the next case of the same queue loads, claimed, blurred.
    with page.expect_navigation():
        page.keyboard.press("n")
    assert urlsplit(page.url).path == f"/staff/cases/{second.pk}/"
    second.refresh_from_db()
    assert second.claimed_by_id == user.pk
    wait_for_preview(page, "blur", 5)
    next_sharp = Image.open(io.BytesIO(sharp_preview(second.contents.get()))).convert("RGB")
    next_ratio = energy(on_screen(page, "5-next-case-blurred")) / energy(next_sharp)
    assert next_ratio < BLURRED_MAX_RATIO
    assert AuditEvent.objects.filter(action="content.revealed").count() == 1
    assert len(sharp_requests) == 1

    print(
        f"\nunblurred preview energy {sharp_energy:.0f}; on screen, relative to it: blurred {blurred_ratio:.2e}, "
        f"revealed {revealed_ratio:.2e} (mean |screen - preview| {revealed_diff:.2f}/255), "
        f"blurred again {reblurred_ratio:.2e}, next case {next_ratio:.2e}; unblurred for {shown_ms:.0f} ms"
    )
