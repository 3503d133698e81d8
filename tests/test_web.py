"""The website chat in a real browser (Debian's chromium driven by Playwright) against the running
assistant: question → answer with citation cards → expand → 👍 stored; HTML typed by the user is
shown as text; staff replies appear; phone width; the one-tag embed."""

from __future__ import annotations

import shutil

import pytest
from conftest import web_sender

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not shutil.which("chromium") and not __import__("os").path.exists(CHROMIUM):
        pytest.fail("chromium is not installed: run `make chromium` (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, stack):
    # bypass_csp: the tests' string predicates (wait_for_function) run through eval, which the pages'
    # Content-Security-Policy forbids; test_the_chat_works_under_its_content_security_policy keeps it on.
    context = browser.new_context(viewport={"width": 1100, "height": 900}, bypass_csp=True)
    pg = context.new_page()
    pg.on("dialog", lambda d: pytest.fail(f"a dialog opened: {d.message}"))
    yield pg
    context.close()


def url(stack, path: str = "/") -> str:
    return f"http://{stack.settings.host}:{stack.settings.port}{path}"


def ask(page, text: str) -> None:
    page.get_by_label("Din fråga").fill(text)
    page.keyboard.press("Enter")


def test_question_answer_citation_card_and_feedback(page, stack):
    from assistant.inbox import Inbox

    page.goto(url(stack))
    assert page.get_by_role("button", name="Vad är IOP?").is_visible()  # suggestion chips at the start
    page.evaluate("""() => { window.__typingSeen = false;
        new MutationObserver(() => { if (!document.getElementById('typing').hidden) window.__typingSeen = true; })
          .observe(document.getElementById('typing'), {attributes: true}); }""")
    ask(page, "Vad är ett ramavtal?")
    answer = page.locator(".msg--answer").first
    answer.wait_for(timeout=30_000)
    assert page.evaluate("window.__typingSeen") is True
    assert page.locator(".msg--user").first.inner_text().endswith("Vad är ett ramavtal?")
    assert "Källor:" not in answer.locator(".msg__text").inner_text()  # sources are cards, not a text list
    cards = answer.locator("details.cite")
    assert 1 <= cards.count() <= 3
    first = cards.first
    summary = first.locator("summary")
    assert summary.inner_text().startswith("[1]")
    quote = first.locator(".cite__quote")
    assert not quote.is_visible()
    summary.focus()
    page.keyboard.press("Enter")  # keyboard only
    quote.wait_for(state="visible")
    quoted = quote.inner_text().strip()
    assert len(quoted) > 40
    link = first.get_by_role("link", name="Visa stycket i sitt sammanhang")
    href = link.get_attribute("href")
    assert href.startswith("/p/")

    answer.get_by_role("button", name="Bra svar").click()
    page.wait_for_function("document.querySelectorAll('.msg--bot').length >= 2", timeout=30_000)
    session = web_sender(page.evaluate("localStorage.getItem('procurement-assistant-session')"))
    rows = [f for f in Inbox(stack.settings.inbox_db).feedback() if f.sender_id == session]
    assert rows and rows[-1].rating == "good" and rows[-1].question == "Vad är ett ramavtal?"
    assert rows[-1].paragraph_ids and rows[-1].paragraph_ids[0] == href.split("/p/")[1]

    page.goto(url(stack, href))
    assert page.locator("mark").inner_text().strip() == quoted


def test_html_typed_by_the_user_is_shown_as_text(page, stack):
    page.goto(url(stack))
    attack = "<img src=x onerror=alert(1)>"
    ask(page, attack)
    page.wait_for_function("document.querySelectorAll('.msg--bot').length >= 1", timeout=30_000)
    assert page.locator(".msg--user .msg__text").first.inner_text() == attack
    assert page.locator("#log img").count() == 0
    page.wait_for_timeout(500)  # an onerror handler would have fired by now (and failed the test)


def test_staff_reply_appears_in_the_chat(page, stack):
    from assistant.inbox import Inbox

    page.goto(url(stack))
    ask(page, "Hej")
    page.wait_for_function("document.querySelectorAll('.msg--bot').length >= 1", timeout=30_000)
    session = web_sender(page.evaluate("localStorage.getItem('procurement-assistant-session')"))
    Inbox(stack.settings.inbox_db).add_staff_message(session, "Lisa, Coompanion", "Hej! Jag ringer dig i eftermiddag.")
    staff = page.locator(".msg--staff")
    staff.wait_for(timeout=15_000)
    assert "Jag ringer dig i eftermiddag." in staff.inner_text()


def test_phone_width_and_labelled_controls(browser, stack):
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    page = context.new_page()
    page.goto(url(stack))
    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
    for button in page.locator("button").all():
        assert (button.get_attribute("aria-label") or button.inner_text()).strip()
    assert page.get_by_label("Din fråga").is_visible()
    assert page.get_by_role("button", name="Prata med en person").is_visible()
    context.close()


def test_english_question_switches_the_interface(page, stack):
    page.goto(url(stack))
    ask(page, "What is a reserved contract?")
    page.locator(".msg--answer").first.wait_for(timeout=30_000)
    assert page.get_by_role("button", name="Talk to a person").is_visible()
    assert page.evaluate("document.documentElement.lang") == "en"


def test_embed_with_one_script_tag(page, stack):
    page.set_content(f'<!doctype html><html><body><h1>Kommunens sida</h1>'
                     f'<script src="{url(stack, "/embed.js")}"></script></body></html>')
    launcher = page.get_by_role("button", name="Fråga upphandlingsassistenten")
    launcher.wait_for()
    frame_el = page.locator("iframe[title='Upphandlingsassistenten']")
    assert frame_el.is_hidden()
    launcher.click()
    assert frame_el.is_visible()
    frame = page.frame_locator("iframe[title='Upphandlingsassistenten']")
    frame.get_by_label("Din fråga").wait_for()


def test_staff_inbox_transcript_reply_and_refusal(browser, stack):
    import httpx
    from conftest import STAFF_TOKEN

    # The inbox refuses requests without (or with wrong) credentials.
    assert httpx.get(url(stack, "/api/inbox/requests"), timeout=10).status_code == 401
    assert httpx.get(url(stack, "/api/inbox/requests"), headers={"Authorization": "Bearer wrong"},
                     timeout=10).status_code == 401
    assert httpx.get(url(stack, "/api/inbox/gaps.csv"), timeout=10).status_code == 401

    # A user asks for a person in the web chat.
    user_context = browser.new_context(bypass_csp=True)
    user = user_context.new_page()
    user.goto(url(stack))
    ask(user, "Hur gör jag avdrag för mina resor till jobbet i deklarationen?")
    user.wait_for_function("document.querySelectorAll('.msg--bot').length >= 1", timeout=30_000)
    user.get_by_role("button", name="Prata med en person").first.click()
    user.wait_for_function("document.querySelector('#log').innerText.includes('e-postadress')", timeout=30_000)
    ask(user, "kim@example.se")
    # The summary of what will be sent; the request is stored once it is confirmed ("Skickat!").
    user.get_by_role("button", name="Skicka till personalen").click(timeout=30_000)
    user.wait_for_function("[...document.querySelectorAll('.msg--bot')].some(m => m.innerText.includes('Skickat!'))",
                           timeout=30_000)
    session = web_sender(user.evaluate("localStorage.getItem('procurement-assistant-session')"))

    # Staff log in, see the request with its transcript, and reply.
    staff_context = browser.new_context(bypass_csp=True)
    staff = staff_context.new_page()
    response = staff.goto(url(stack, "/inbox"))
    assert response.status == 401 and staff.get_by_label("Inloggningsnyckel").is_visible()
    staff.get_by_label("Inloggningsnyckel").fill(STAFF_TOKEN)
    staff.get_by_role("button", name="Logga in").click()
    staff.get_by_role("heading", name="Vill prata med en person").wait_for()
    requests = httpx.get(url(stack, "/api/inbox/requests"), headers={"Authorization": f"Bearer {STAFF_TOKEN}"},
                         timeout=30).json()
    mine = next((r for r in requests if r["sender_id"] == session), None)
    assert mine, (session, requests)
    assert mine["contact"] == "kim@example.se" and "deklarationen" in mine["question"]
    assert any(t["who"] == "user" and "deklarationen" in t["text"] for t in mine["transcript"])
    section = staff.locator("section.request", has_text=f"Ärende {mine['id']} ")
    assert section.locator(".transcript").is_visible()  # an open request shows its conversation at once
    assert "deklarationen" in section.locator(".transcript").inner_text()
    section.get_by_label("Svar till användaren").fill("Hej Kim! Deklarationen står inte i våra dokument – jag mejlar dig.")
    section.get_by_role("button", name="Skicka svar").click()
    staff.get_by_role("heading", name="Frågor som dokumenten inte täcker").wait_for()

    # The reply appears in the user's chat.
    user.locator(".msg--staff").wait_for(timeout=15_000)
    assert "jag mejlar dig" in user.locator(".msg--staff").inner_text()

    # The unanswered question is listed with a count and exported as CSV.
    csv_text = httpx.get(url(stack, "/api/inbox/gaps.csv"), headers={"Authorization": f"Bearer {STAFF_TOKEN}"},
                         timeout=10).text
    assert csv_text.startswith("kind,question,count,last_seen")
    assert "unanswered" in csv_text and "deklarationen" in csv_text
    user_context.close()
    staff_context.close()


def test_the_chat_and_the_inbox_work_under_their_content_security_policy(browser, stack):
    from conftest import STAFF_TOKEN

    context = browser.new_context()  # the policy enforced, as in a user's browser
    violations = []
    page = context.new_page()
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    response = page.goto(url(stack))
    assert "script-src 'self'" in response.headers["content-security-policy"]
    ask(page, "Vad är ett ramavtal?")
    answer = page.locator(".msg--answer").first
    answer.wait_for(timeout=60_000)
    assert "ramavtal" in answer.inner_text().lower() and answer.locator("details.cite").count() >= 1
    staff = context.new_page()
    staff.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    staff.goto(url(stack, "/inbox"))
    staff.get_by_label("Inloggningsnyckel").fill(STAFF_TOKEN)
    staff.get_by_role("button", name="Logga in").click()
    staff.get_by_role("heading", name="Vill prata med en person").wait_for()
    assert violations == []
    context.close()
