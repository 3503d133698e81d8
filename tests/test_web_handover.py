"""The hand-over to a person in the web chat, in a real browser (Debian's chromium via Playwright) at
desktop (1280×800) and phone (390×844) width: the consent text and reply time before contact details,
a typo asked again (not cancelled), the summary with its buttons, "sent" only once stored, and the
staff's reply from the inbox appearing in the chat. Screenshots: docs/screenshots/handover-*.png."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from conftest import STAFF_TOKEN, web_sender
from test_web import ask, browser, url  # noqa: F401 (browser is a fixture)
from test_web_page import ANSWER_TIMEOUT, DESKTOP, PHONE, assert_contrast, watched  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow

SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"handover-{name}.png"))


def write(page, text: str) -> None:
    """Type a message in whatever interface language (the field's label follows it)."""
    page.locator("#message").fill(text)
    page.keyboard.press("Enter")


def wait_text(page, text: str) -> None:
    """Until the last bot message contains ``text``, and the typing dots are gone."""
    page.locator(".msg--bot").filter(has_text=text).last.wait_for(timeout=ANSWER_TIMEOUT)
    page.locator("#typing").wait_for(state="hidden", timeout=10_000)


@pytest.mark.parametrize("viewport, name", [(DESKTOP, "desktop-1280"), (PHONE, "phone-390")])
def test_the_whole_hand_over_in_the_web_chat(watched, stack, viewport, name):
    from assistant.inbox import Inbox

    make, problems = watched
    page = make(viewport=viewport, csp=True)
    page.goto(url(stack))
    ask(page, "Hur blir vädret i Stockholm i helgen?")
    wait_text(page, "vill inte gissa")
    page.locator(".msg--bot").last.get_by_role("button", name="Prata med en person").click()

    wait_text(page, "Hur når vi dig?")
    consent = page.locator(".msg--bot").filter(has_text="Innan du lämnar dina kontaktuppgifter").last
    assert consent.is_visible()
    for part in ("den här konversationen", "personalen på navet", "högst 12 månader", "inom två arbetsdagar"):
        assert part in consent.inner_text(), part
    ask_contact = page.locator(".msg--bot").last
    assert ask_contact.get_by_role("button", name="Avbryt").is_enabled()
    assert_contrast(page, f"{name}: consent")
    consent.scroll_into_view_if_needed()
    shot(page, f"{name}-1-consent")

    ask(page, "jon@")  # a typo: asked again, with what is expected and a cancel button
    wait_text(page, "namn@exempel.se")
    retry = page.locator(".msg--bot").nth(page.locator(".msg--bot").count() - 1)  # this one, not the newest later
    assert retry.get_by_role("button", name="Avbryt").is_enabled()
    assert "avbrutit" not in page.locator("#log").inner_text()
    shot(page, f"{name}-2-typo")

    ask(page, "anna.andersson@example.se")
    wait_text(page, "Det här skickas till personalen")
    summary = page.locator(".msg--bot").last
    assert "Fråga: ”Hur blir vädret i Stockholm i helgen?”" in summary.inner_text()
    assert "Kontakt: anna.andersson@example.se" in summary.inner_text()
    for title in ("Skicka till personalen", "Ändra frågan", "Ändra kontaktuppgiften", "Avbryt"):
        assert summary.get_by_role("button", name=title).is_enabled(), title
    # The earlier prompts' buttons are answered now.
    assert retry.get_by_role("button", name="Avbryt").is_disabled()
    session = web_sender(page.evaluate("localStorage.getItem('procurement-assistant-session')"))
    assert [r for r in Inbox(stack.settings.inbox_db).handoffs() if r.sender_id == session] == []
    assert_contrast(page, f"{name}: summary")
    shot(page, f"{name}-3-summary")

    summary.get_by_role("button", name="Skicka till personalen").click()
    wait_text(page, "Skickat!")
    [request] = [r for r in Inbox(stack.settings.inbox_db).handoffs() if r.sender_id == session]
    assert f"ärende {request.id}" in page.locator(".msg--bot").last.inner_text()
    assert request.contact == "anna.andersson@example.se"

    # Staff answer from the inbox; the person sees it in the chat.
    reply = httpx.post(url(stack, f"/api/inbox/requests/{request.id}/reply"), timeout=30,
                       json={"text": "Hej Anna! Vädret kan jag inte svara på, men hör av dig om upphandlingen.",
                             "author": "Karin"}, headers={"Authorization": f"Bearer {STAFF_TOKEN}"})
    assert reply.status_code == 200 and reply.json()["delivered_to"] is None  # the web chat fetches it itself
    staff = page.locator(".msg--staff").last
    staff.wait_for(timeout=20_000)
    assert "hör av dig om upphandlingen" in staff.inner_text()
    staff.scroll_into_view_if_needed()
    assert_contrast(page, f"{name}: staff reply")
    shot(page, f"{name}-4-sent-and-staff-reply")
    assert problems == []


def test_the_hand_over_follows_the_interface_language(watched, stack):
    """English interface, nothing written yet: the header's "Talk to a person" (a payload with no words)
    gets every hand-over text in English, and the address written after it does not switch to Swedish."""
    make, problems = watched
    page = make(viewport=PHONE, csp=True)
    page.goto(url(stack))
    page.get_by_role("button", name="English").click()
    page.get_by_role("button", name="Talk to a person").first.click()
    wait_text(page, "What is your question?")
    consent = page.locator(".msg--bot").filter(has_text="Before you give your contact details").last
    assert "within two working days" in consent.inner_text() and "this conversation" in consent.inner_text()
    assert page.locator(".msg--bot").last.get_by_role("button", name="Cancel").is_enabled()
    write(page, "Can a non-profit association sign an IOP with a region?")
    wait_text(page, "How can we reach you?")
    write(page, "anna.andersson@exempel.se")
    wait_text(page, "This is what will be sent to the staff")
    summary = page.locator(".msg--bot").last
    for title in ("Send to the staff", "Change the question", "Change the contact", "Cancel"):
        assert summary.get_by_role("button", name=title).is_enabled(), title
    assert_contrast(page, "English summary")
    shot(page, "phone-390-english-summary")
    summary.get_by_role("button", name="Send to the staff").click()
    wait_text(page, "Sent.")
    assert "within two working days" in page.locator(".msg--bot").last.inner_text()
    assert problems == []
