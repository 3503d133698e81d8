"""The chat page as a person uses it, in a real browser (Debian's chromium via Playwright) against the
running assistant: nothing animates on the empty page, suggestion chips and the typing indicator show
only when they should, every visible text meets WCAG AA on its computed colours, a welcome that names
the documents and years, a language switch, the start of a long answer in view on a phone, used form
buttons disabled, 👍/👎 with labels and 👎 asking why, the conversation restored after a reload, a
"still working" state and a retry, and the paragraph page. Screenshots at 1280×800 and 390×844 go to
ASSISTANT_SCREENSHOT_DIR (default var/screenshots)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from conftest import web_sender
from test_web import ask, browser, url  # noqa: F401 (browser is a fixture)

pytestmark = pytest.mark.slow

SHOTS = Path(os.environ.get("ASSISTANT_SCREENSHOT_DIR") or Path(__file__).resolve().parent.parent / "var" / "screenshots")
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
ANSWER_TIMEOUT = 90_000  # replies take 7–29 s on a loaded machine

# Every visible text element: its computed colour (with opacity) against its effective background (the
# ancestors' background colours composed), WCAG 2 contrast, 4.5:1 (3:1 for large text).
CONTRAST_JS = """() => {
  const parse = c => { const m = /rgba?\\(([^)]+)\\)/.exec(c); if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const over = (top, bottom) => [0, 1, 2].map(i => top[i] * top[3] + bottom[i] * (1 - top[3])).concat([1]);
  const chain = el => { const out = []; for (let n = el; n; n = n.parentElement) out.unshift(n); return out; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
  const bad = [], seen = new Set();
  let checked = 0;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, el = node.parentElement;
    if (!node.textContent.trim() || !el || seen.has(el) || el.closest('script,style,noscript')) continue;
    seen.add(el);
    const box = el.getBoundingClientRect(), cs = getComputedStyle(el);
    if (box.width <= 1 || box.height <= 1 || cs.visibility !== 'visible') continue;  // hidden or sr-only
    let bg = [255, 255, 255, 1], opacity = 1;
    for (const n of chain(el)) {
      opacity *= parseFloat(getComputedStyle(n).opacity);
      const c = parse(getComputedStyle(n).backgroundColor);
      if (c && c[3] > 0) bg = over([c[0], c[1], c[2], c[3] * opacity], bg);
    }
    const fg = parse(cs.color);
    const seenFg = over([fg[0], fg[1], fg[2], fg[3] * opacity], bg);
    const size = parseFloat(cs.fontSize), bold = parseInt(cs.fontWeight, 10) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    const r = ratio(seenFg, bg);
    checked++;
    if (r < need) bad.push({text: node.textContent.trim().slice(0, 40), ratio: Math.round(r * 100) / 100, need,
                            color: cs.color, background: 'rgb(' + bg.slice(0, 3).map(Math.round).join(',') + ')'});
  }
  return {checked, bad};
}"""


def assert_contrast(page, where: str) -> None:
    result = page.evaluate(CONTRAST_JS)
    assert result["checked"] > 3, where
    assert result["bad"] == [], f"{where}: texts below WCAG AA: {result['bad']}"


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


@pytest.fixture
def watched(browser, stack):  # noqa: F811
    """A page factory that records console errors, failed requests and requests to other hosts."""
    contexts, problems = [], []

    def make(viewport=DESKTOP, csp=False, **kwargs):
        # Without csp the pages' Content-Security-Policy is bypassed: the tests' string predicates
        # (wait_for_function) run through eval. Tests that need no eval keep it on (csp=True), so a
        # violation shows up as a console error.
        context = browser.new_context(viewport=viewport, bypass_csp=not csp, **kwargs)
        contexts.append(context)
        page = context.new_page()
        page.on("dialog", lambda d: problems.append(f"dialog: {d.message}"))
        page.on("pageerror", lambda exc: problems.append(f"uncaught: {exc}"))  # not reported as console errors
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("request", lambda r: problems.append(f"other host: {r.url}")
                if urlparse(r.url).hostname not in ("127.0.0.1", None) and not r.url.startswith("data:") else None)
        page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
        return page

    yield make, problems
    for context in contexts:
        context.close()


def assert_last_message_in_view(page) -> None:
    """The last bubble ends inside the log's visible area (not hidden below its bottom edge)."""
    page.wait_for_timeout(200)
    box = page.locator("#log > *").last.bounding_box()
    log = page.locator("#log").bounding_box()
    assert box["y"] + box["height"] <= log["y"] + log["height"] + 1, (box, log)


def wait_answer(page, n: int = 1):
    page.wait_for_function(f"document.querySelectorAll('.msg--answer').length >= {n}", timeout=ANSWER_TIMEOUT)
    page.locator("#typing").wait_for(state="hidden", timeout=5_000)
    return page.locator(".msg--answer").nth(n - 1)


def years_of(stack) -> tuple[int, str]:
    docs = httpx.get(url(stack, "/api/documents"), timeout=30).json()
    years = sorted(d["year"] for d in docs if d["year"])
    return len(docs), f"{years[0]}–{years[-1]}"


def test_empty_page_welcome_chips_typing_feedback_and_contrast(watched, stack):
    make, problems = watched
    page = make()
    page.goto(url(stack))
    count, years = years_of(stack)
    welcome = page.locator(".msg--welcome")
    welcome.get_by_text(f"Svaren kommer ur {count} dokument från {years}.").wait_for()
    assert "inte juridisk rådgivning" in welcome.inner_text()
    assert page.locator("#privacy").is_visible() and "personnummer" in page.locator("#privacy").inner_text()
    # The empty page: no typing dots (not rendered, so not animating), the suggestion chips shown.
    assert page.evaluate("getComputedStyle(document.getElementById('typing')).display") == "none"
    assert page.locator(".dots span").first.is_hidden()
    assert page.get_by_role("button", name="Vad är IOP?").is_visible()
    welcome.locator("summary").click()  # the list of documents
    assert welcome.locator("li").count() == count
    assert_contrast(page, "empty page")
    shot(page, "desktop-1280-welcome")

    ask(page, "Vad är ett ramavtal?")
    assert page.locator("#typing").is_visible()
    assert page.locator("#chips").is_hidden()
    answer = wait_answer(page)
    assert page.evaluate("getComputedStyle(document.getElementById('typing')).display") == "none"
    assert page.locator("#chips").is_hidden()
    answer.locator("details.cite summary").first.click()
    assert_contrast(page, "answer with an open citation")  # includes the "Du" label on the user's bubble

    # 👍/👎 are icons with text labels; 👎 asks what was wrong and offers a person.
    good = answer.get_by_role("button", name="Bra svar")
    bad = answer.get_by_role("button", name="Dåligt svar")
    assert good.inner_text().strip() == "Bra svar" and good.locator("svg").count() == 1
    assert "👍" not in answer.inner_text() and "👎" not in answer.inner_text()
    bad.click()
    assert good.is_disabled() and bad.is_disabled()
    why = answer.locator(".why")
    assert why.get_by_text("Vad var fel?").is_visible()
    for reason in ("Fel källa", "Svarade inte på frågan", "Inaktuell information"):
        assert why.get_by_role("button", name=reason).is_visible()
    assert why.get_by_role("button", name="Prata med en person").is_visible()
    assert_contrast(page, "👎 asks why (disabled buttons)")
    shot(page, "desktop-1280-answer-feedback")
    bots = page.locator(".msg--bot").count()
    why.get_by_role("button", name="Fel källa").click()
    page.wait_for_function(f"document.querySelectorAll('.msg--bot').length > {bots}", timeout=ANSWER_TIMEOUT)
    from assistant.inbox import Inbox

    session = web_sender(page.evaluate("localStorage.getItem('procurement-assistant-session')"))
    rows = [f for f in Inbox(stack.settings.inbox_db).feedback() if f.sender_id == session]
    assert rows and rows[-1].rating == "bad" and rows[-1].question == "Vad är ett ramavtal?"
    assert rows[-1].reason == "wrong_source"
    why.get_by_role("button", name="Prata med en person").click()
    page.wait_for_function("document.querySelector('#log').innerText.includes('e-post')", timeout=ANSWER_TIMEOUT)
    assert httpx.get(url(stack, "/favicon.ico"), timeout=10).status_code == 200
    assert problems == []


def test_language_switch_changes_the_interface_and_is_kept(watched, stack):
    make, problems = watched
    page = make(csp=True)
    page.goto(url(stack))
    page.get_by_role("button", name="English").click()
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.get_by_role("button", name="English").get_attribute("aria-pressed") == "true"
    assert page.get_by_role("heading", name="Procurement assistant").is_visible()
    assert page.get_by_role("button", name="Talk to a person").is_visible()
    assert page.get_by_label("Your question").is_visible()
    count, years = years_of(stack)
    page.locator(".msg--welcome").get_by_text(f"The answers come from {count} documents from {years}.").wait_for()
    assert "not legal advice" in page.locator(".msg--welcome").inner_text()
    assert "personal identity numbers" in page.locator("#privacy").inner_text()
    assert page.get_by_role("button", name="What is an IOP?").is_visible()
    assert_contrast(page, "English")
    shot(page, "desktop-1280-english")
    page.reload()
    page.get_by_role("button", name="Talk to a person").wait_for()  # the choice is kept
    page.get_by_role("button", name="Svenska").click()
    assert page.get_by_role("button", name="Prata med en person").is_visible()
    assert page.evaluate("document.documentElement.lang") == "sv"
    assert problems == []


def test_phone_shows_the_start_of_a_long_answer(watched, stack):
    make, problems = watched
    page = make(PHONE, is_mobile=True, has_touch=True)
    page.goto(url(stack))
    page.locator(".msg--welcome summary").wait_for()
    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
    assert_contrast(page, "phone, empty")
    shot(page, "phone-390-welcome")
    ask(page, "Vad är reserverad upphandling och vilka företag får delta?")
    answer = wait_answer(page)
    page.wait_for_timeout(800)  # follow-up messages of the same turn arrive right after
    box = page.evaluate("""() => { const log = document.getElementById('log').getBoundingClientRect();
        const a = document.querySelectorAll('.msg--answer'); const b = a[a.length - 1].getBoundingClientRect();
        return {logTop: log.top, logBottom: log.bottom, top: b.top, height: b.height}; }""")
    # The answer is taller than the log, so showing its end would hide its first lines.
    assert box["height"] > box["logBottom"] - box["logTop"], box
    assert box["logTop"] - 1 <= box["top"] <= box["logTop"] + 40, box  # its start (the verdict) in view
    assert answer.locator(".msg__text").evaluate(
        "el => el.getBoundingClientRect().top < document.getElementById('log').getBoundingClientRect().bottom - 40")
    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
    assert_contrast(page, "phone, answer")
    shot(page, "phone-390-answer")
    assert problems == []


def test_used_form_buttons_are_disabled(watched, stack):
    make, problems = watched
    page = make()
    page.goto(url(stack))
    ask(page, "Hej")
    page.wait_for_function("document.querySelectorAll('.actions--form button').length >= 2", timeout=ANSWER_TIMEOUT)
    form = page.locator(".actions--form").last
    choice = form.get_by_role("button", name="Ramavtal")
    choice.click()
    for button in form.get_by_role("button").all():
        assert button.is_disabled()
    wait_answer(page)
    assert page.locator(".msg--user").last.inner_text().endswith("Ramavtal")
    assert_contrast(page, "disabled form buttons")
    assert problems == []


def test_reload_restores_the_conversation(watched, stack):
    from assistant.inbox import Inbox

    make, problems = watched
    page = make()
    page.goto(url(stack))
    ask(page, "Vad är ett ramavtal?")
    answer = wait_answer(page)
    text = answer.locator(".msg__text").inner_text()
    cards = answer.locator("details.cite").count()
    session = web_sender(page.evaluate("localStorage.getItem('procurement-assistant-session')"))
    Inbox(stack.settings.inbox_db).add_staff_message(session, "Lisa", "Hej! Jag hör av mig i morgon.")
    page.locator(".msg--staff").wait_for(timeout=15_000)

    page.reload()
    restored = page.locator(".msg--answer").first
    restored.wait_for(timeout=15_000)
    assert page.locator(".msg--user").first.inner_text().endswith("Vad är ett ramavtal?")
    assert restored.locator(".msg__text").inner_text() == text
    assert restored.locator("details.cite").count() == cards
    page.locator(".msg--staff").wait_for()
    assert page.locator(".msg--staff").count() == 1  # not shown twice (history, then the poller)
    assert page.locator("#log > .msg").last.get_attribute("class") == "msg msg--staff"  # in its place: last
    assert "Jag hör av mig i morgon." in page.locator(".msg--staff").inner_text()
    assert page.locator("#chips").is_hidden()
    page.wait_for_timeout(4500)  # a staff poll later: still once
    assert page.locator(".msg--staff").count() == 1
    assert web_sender(page.evaluate("localStorage.getItem('procurement-assistant-session')")) == session
    shot(page, "desktop-1280-restored")

    # Someone else's browser (no token) starts empty.
    other = make()
    other.goto(url(stack))
    other.locator(".msg--welcome summary").wait_for()
    other.wait_for_timeout(1500)
    assert other.locator(".msg--user").count() == 0
    assert other.get_by_role("button", name="Vad är IOP?").is_visible()
    assert problems == []


def test_a_slow_history_never_shows_a_message_twice(watched, stack):
    """On a loaded server the page's history request can come back after the first message was answered.
    A new conversation fetched it anyway and appended what was already on screen: "Hej" and its reply
    twice (test_used_form_buttons_are_disabled failed once that way, its click landing above them)."""
    make, problems = watched
    page = make()
    histories = []
    page.on("request", lambda r: histories.append(r.url) if r.url.endswith("/history") else None)
    page.goto(url(stack))
    ask(page, "Hej")
    page.wait_for_function("document.querySelectorAll('.actions--form button').length >= 2", timeout=ANSWER_TIMEOUT)
    page.wait_for_timeout(1000)
    assert histories == []  # a new conversation has no past to fetch
    assert page.locator(".msg--user").count() == 1

    # A reload whose history is held back: the question typed meanwhile waits, then shows below the past.
    held = []
    again = page.context.new_page()
    again.route("**/history", lambda route: held.append(route))
    again.goto(url(stack))
    again.wait_for_function("document.querySelector('.msg--welcome') !== null")
    for _ in range(100):
        if held:
            break
        again.wait_for_timeout(100)
    assert held, "the reloaded page never asked for its history"
    # Two questions typed meanwhile: both wait, and both go out in order (the page kept only the last one
    # until session 26, so the first was never sent).
    ask(again, "Vad är IOP?")
    ask(again, "Vad är ett ramavtal?")
    again.wait_for_timeout(1500)
    assert again.locator(".msg--answer").count() == 0  # not sent before the past is shown
    held[0].continue_()
    wait_answer(again, 2)
    users = [b.inner_text().split("\n")[-1] for b in again.locator(".msg--user").all()]
    assert users == ["Hej", "Vad är IOP?", "Vad är ett ramavtal?"]
    again.wait_for_timeout(1000)
    assert again.locator(".msg--answer").count() == 2
    # The restored past does not take over the question just asked: its 👍 rates that question.
    from assistant.inbox import Inbox

    again.locator(".msg--answer").last.get_by_role("button", name="Bra svar").click()
    session = web_sender(again.evaluate("localStorage.getItem('procurement-assistant-session')"))
    rows = []
    for _ in range(100):
        rows = [f for f in Inbox(stack.settings.inbox_db).feedback() if f.sender_id == session]
        if rows:
            break
        again.wait_for_timeout(200)
    assert rows and rows[-1].question == "Vad är ett ramavtal?"
    assert problems == []


def test_still_working_after_a_second_and_retry_on_failure(watched, stack):
    make, problems = watched
    page = make()
    page.goto(url(stack))
    page.locator(".msg--welcome summary").wait_for()
    page.wait_for_function("localStorage.getItem('procurement-assistant-session') !== null")
    held = []

    def hold(route):
        if route.request.method == "POST":
            held.append(route)
        else:
            route.continue_()

    # Hold the message on its way to the server: the page shows dots at once and words after a second.
    page.route("**/socket.io/**", hold)
    ask(page, "Vad är ett ramavtal?")
    working = page.locator("#working")
    assert page.locator("#typing").is_visible() and working.is_hidden()
    page.wait_for_timeout(1300)
    assert working.is_visible() and "letar i dokumenten" in working.inner_text()
    assert_last_message_in_view(page)
    shot(page, "desktop-1280-working")
    for route in held:
        route.continue_()
    page.unroute("**/socket.io/**")
    wait_answer(page)
    assert working.is_hidden() and page.locator("#failure").is_hidden()

    # A message that cannot reach the server: the page says the assistant is restarting and sends the
    # message by itself once the line is back (nothing lost, nothing for the person to do).
    # A second message written while the line is down waits too, and goes out after the first.
    page.route("**/socket.io/**", lambda route: route.abort() if route.request.method == "POST" else route.continue_())
    ask(page, "Vad är reserverad upphandling?")
    page.wait_for_function("document.getElementById('working').textContent.includes('startar om')", timeout=15_000)
    assert working.is_visible() and "skickas när den är tillbaka" in working.inner_text()
    assert page.locator("#failure").is_hidden()
    assert_last_message_in_view(page)  # it was cut in half behind the dots and the status line
    assert_contrast(page, "waiting for the assistant to come back")
    shot(page, "desktop-1280-restarting")
    ask(page, "Vad är IOP?")
    page.unroute("**/socket.io/**")
    wait_answer(page, 3)
    assert page.locator("#failure").is_hidden()
    page.wait_for_timeout(1000)
    assert page.locator(".msg--user").count() == 3  # the resent question is not shown twice
    assert page.locator(".msg--answer").count() == 3

    # No reply at all (the server took the message and went quiet): after the reply timeout an error with
    # a retry, which sends the question again.
    page.evaluate("() => { window.__realSetTimeout = window.setTimeout; window.setTimeout = (f, ms, ...a) => "
                  "window.__realSetTimeout(f, ms >= 60000 ? 1500 : ms, ...a); }")
    page.route("**/socket.io/**", hold)
    held.clear()
    ask(page, "Vad är ett ramavtal?")
    failure = page.locator("#failure")
    failure.wait_for(timeout=15_000)
    assert "Inget svar kom" in failure.inner_text() and page.locator("#typing").is_hidden()
    assert_contrast(page, "failure with retry")
    page.unroute("**/socket.io/**")
    for route in held:
        try:
            route.abort()
        except Exception:  # noqa: BLE001 - playwright.Error: the browser already gave this request up
            pass
    page.evaluate("() => { window.setTimeout = window.__realSetTimeout; }")
    page.wait_for_function("document.getElementById('status').textContent === ''", timeout=20_000)
    failure.get_by_role("button", name="Försök igen").click()
    wait_answer(page, 4)
    assert failure.is_hidden()
    assert page.locator(".msg--user").count() == 4  # the retried question is not shown twice
    problems[:] = [p for p in problems if "socket.io" not in p and "ERR_FAILED" not in p]  # the aborted requests
    assert problems == []


def test_paragraph_page_scrolled_to_the_quote_with_links(watched, stack):
    make, problems = watched
    # A paragraph that has long text before it in its document, so the quote starts below the fold.
    hits = httpx.post(url(stack, "/api/search"), json={"query": "ramavtal", "k": 20}, timeout=60).json()["hits"]

    def before_length(hit):
        ctx = httpx.get(url(stack, f"/api/paragraphs/{hit['paragraph_id']}?neighbours=2"), timeout=30).json()
        return sum(len(h["text"]) for h in ctx["before"])

    hit = max(hits, key=before_length)
    page = make(PHONE, csp=True, is_mobile=True, has_touch=True)
    page.goto(url(stack, f"/p/{hit['paragraph_id']}"))
    mark = page.locator("mark")
    top = mark.evaluate("el => el.getBoundingClientRect().top + window.scrollY")
    assert top > 844, "the quote should start below the first screen for this test to mean anything"
    assert page.evaluate("window.scrollY") > 0
    assert mark.evaluate("el => { const r = el.getBoundingClientRect(); return r.top < innerHeight && r.bottom > 0; }")
    assert page.evaluate("document.activeElement.classList.contains('cited')")
    back = page.get_by_role("link", name="Tillbaka till chatten")
    assert back.get_attribute("href") == "/"
    doc = page.get_by_role("link", name="Öppna dokumentet")
    response = httpx.get(url(stack, doc.get_attribute("href")), timeout=30)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert hit["text"][:60] in " ".join(response.text.split())
    assert_contrast(page, "paragraph page")
    shot(page, "phone-390-paragraph")
    back.click()
    page.get_by_label("Din fråga").wait_for()
    assert problems == []
