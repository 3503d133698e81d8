"""Staff who get help answering (fast, tiny index and fake embedder): drafts made of the assistant's
cited paragraphs, replies that carry citation cards and the staff member's name into the user's chat,
names checked, example questions saved from a request or a gap and used by the running search at
once, and every new route closed without a login."""

from __future__ import annotations

import json

import pytest

from assistant.staffhelp import StaffNameError, staff_name

STAFF = "staffhelp-test-token-0123456789"
QUESTION = "Får vi böter om vi slarvar?"  # shares no word with the paragraph about sanctions


@pytest.fixture
def inbox_app(tiny_index, fake_embedder, tmp_path):
    from fastapi.testclient import TestClient

    from assistant.inbox import Inbox
    from index.search import SearchEngine
    from service.app import create_app
    from service.settings import ServiceSettings

    settings = ServiceSettings(**{**tiny_index.model_dump(), "inbox_db": tmp_path / "inbox.sqlite3",
                                  "inbox_token": STAFF, "rasa_url": "http://127.0.0.1:9"})
    app = create_app(settings, engine_factory=lambda: SearchEngine.load(settings, fake_embedder))
    with TestClient(app) as client:
        yield client, settings, Inbox(settings.inbox_db), app


def bearer() -> dict:
    return {"Authorization": f"Bearer {STAFF}"}


def login(client, name: str = "") -> str:
    r = client.post("/inbox/login", data={"token": STAFF, "name": name}, follow_redirects=False)
    assert r.status_code == 303
    return r.cookies["inbox_session"]


def sanctions_id(app) -> str:
    engine = app.state.engine_holder.get()
    return next(p.paragraph_id for p in engine.index.paragraphs if "sanktioner" in p.text)


# -- names ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, shown", [("Lisa", "Lisa"), ("  Anna-Karin   O'Neil ", "Anna-Karin O'Neil"),
                                        ("Åsa Öberg", "Åsa Öberg"), ("Dr. Zoë", "Dr. Zoë")])
def test_good_names_are_kept_tidy(raw, shown):
    assert staff_name(raw) == shown


@pytest.mark.parametrize("raw", ["", "   ", "<b>Lisa</b>", "lisa@example.se", "Agent 007", "L" * 61, "Li\u202esa",
                                 "Lisa\nBob", "...", None, 42])
def test_bad_names_are_refused(raw):
    with pytest.raises(StaffNameError):
        staff_name(raw)


def test_the_name_given_at_login_signs_the_replies_and_can_be_changed(inbox_app):
    client, _, inbox, _ = inbox_app
    request_id = inbox.add_handoff("web:a", "Vad är IOP?", "a@example.se", "sv")
    cookie = login(client, "Lisa Berg")
    page = client.get("/inbox", cookies={"inbox_session": cookie}).text
    assert 'value="Lisa Berg"' in page and "Du svarar som" in page
    client.post(f"/inbox/requests/{request_id}/reply", data={"text": "Hej!", "author": "Lisa Berg"},
                cookies={"inbox_session": cookie}, follow_redirects=False)
    assert [m.author for m in inbox.staff_messages("web:a")] == ["Lisa Berg"]
    # a new name in the inbox is kept in the session; a bad one is refused with a message and not kept
    client.post("/inbox/name", data={"name": "Lisa B. Holm"}, cookies={"inbox_session": cookie}, follow_redirects=False)
    assert 'value="Lisa B. Holm"' in client.get("/inbox", cookies={"inbox_session": cookie}).text
    r = client.post("/inbox/name", data={"name": "<script>"}, cookies={"inbox_session": cookie}, follow_redirects=False)
    assert r.headers["location"] == "/inbox?namnfel=1"
    page = client.get("/inbox?namnfel=1", cookies={"inbox_session": cookie}).text
    assert "Namnet kunde inte sparas" in page and 'value="Lisa B. Holm"' in page and "<script>" not in page


def test_a_bad_name_in_a_reply_is_refused_and_nothing_is_sent(inbox_app):
    client, _, inbox, _ = inbox_app
    request_id = inbox.add_handoff("web:a", "Vad är IOP?", "a@example.se", "sv")
    r = client.post(f"/api/inbox/requests/{request_id}/reply", json={"text": "Hej!", "author": "<img src=x>"},
                    headers=bearer())
    assert r.status_code == 422
    cookie = login(client)
    r = client.post(f"/inbox/requests/{request_id}/reply", data={"text": "Hej!", "author": "x@y"},
                    cookies={"inbox_session": cookie}, follow_redirects=False)
    assert r.status_code == 422 and "Namnet" in r.json()["detail"]
    assert inbox.staff_messages("web:a") == []


# -- drafts and replies with citation cards ------------------------------------------------------------
def test_the_draft_quotes_the_cited_paragraphs_with_their_sources_in_the_conversation_s_language(inbox_app):
    client, _, inbox, _ = inbox_app
    sv = inbox.add_handoff("web:a", "Vad är ett ramavtal?", "a@example.se", "sv")
    en = inbox.add_handoff("web:b", "What is a framework agreement?", "b@example.se", "en")
    draft = client.get(f"/api/inbox/requests/{sv}/draft", headers=bearer()).json()
    assert draft["language"] == "sv" and draft["citations"]
    first = draft["citations"][0]
    assert "ramavtal" in first["text"].lower()
    text = draft["text"]
    assert text.startswith("Hej!") and "Källor:" in text
    assert f"”{first['quote']}” [1]" in text
    assert f"[1] {first['title']} ({first['year']})" in text and f"/p/{first['paragraph_id']}" in text
    english = client.get(f"/api/inbox/requests/{en}/draft", headers=bearer()).json()
    assert english["language"] == "en" and english["text"].startswith("Hello!") and "Sources:" in english["text"]
    assert client.get("/api/inbox/requests/999/draft", headers=bearer()).status_code == 404


def test_a_reply_carries_the_chosen_citations_as_cards_into_the_user_s_chat(inbox_app):
    client, settings, inbox, app = inbox_app
    request_id = inbox.add_handoff("web:a", "Vad är ett ramavtal?", "a@example.se", "sv")
    draft = client.get(f"/api/inbox/requests/{request_id}/draft", headers=bearer()).json()
    chosen = [draft["citations"][0]["paragraph_id"], "no-such-paragraph", sanctions_id(app)]
    r = client.post(f"/api/inbox/requests/{request_id}/reply", headers=bearer(),
                    json={"text": draft["text"], "author": "Lisa", "citations": chosen})
    assert r.status_code == 200
    [message] = inbox.staff_messages("web:a")
    assert message.author == "Lisa" and message.language == "sv"
    assert [c["paragraph_id"] for c in message.citations] == [chosen[0], chosen[2]]  # unknown ids left out
    # the draft's own number (its text says [1]); another paragraph after the draft's numbers
    assert [c["number"] for c in message.citations] == [1, len(draft["citations"]) + 1]
    assert message.citations[0]["quote"] == draft["citations"][0]["quote"]  # the draft's quote
    assert "sanktioner" in message.citations[1]["text"]  # another paragraph: its own text
    assert inbox.handoff(request_id).status == "answered"


def test_the_web_chat_reads_the_reply_s_name_and_cards_through_the_payload_contract(inbox_app):
    from assistant.payload import is_answer
    from service.web import staff_custom

    client, _, inbox, app = inbox_app
    inbox.add_staff_message("web:a", "Lisa", "Se källan.", [{"number": 1, "paragraph_id": "x", "doc_id": "d",
                                                              "title": "T", "year": 2024, "section": None, "page": 3,
                                                              "text": "Stycket.", "quote": "Stycket.", "score": 0.0}], "sv")
    inbox.add_staff_message("web:a", "Bo", "Utan källor.")
    with_cards, without = inbox.staff_messages("web:a")
    custom = staff_custom(with_cards)
    assert is_answer(custom) and custom["citations"][0]["page"] == 3 and custom["body"] == "Se källan."
    assert staff_custom(without) is None


def test_the_chat_s_staff_messages_and_history_carry_the_name_and_the_cards(tiny_index, fake_embedder, tmp_path):
    """What the web chat page reads (a session's signed token): the staff reply's author and its citations as
    an answer payload, from the poll route and from the history a reload shows."""
    from fastapi.testclient import TestClient

    from assistant import guard
    from assistant.inbox import Inbox
    from assistant.payload import is_answer
    from index.search import SearchEngine
    from service.app import create_app
    from service.settings import ServiceSettings

    secret = "staffhelp-webchat-secret-0123456789"
    settings = ServiceSettings(**tiny_index.model_dump(), inbox_db=tmp_path / "inbox.sqlite3", webchat_secret=secret,
                               rasa_url="http://127.0.0.1:9")
    app = create_app(settings, engine_factory=lambda: SearchEngine.load(settings, fake_embedder))
    session = guard.issue_session(secret)
    card = {"number": 1, "paragraph_id": "p1", "doc_id": "d", "title": "Handbok", "year": 2024, "section": None,
            "page": 3, "text": "Stycket.", "quote": "Stycket.", "score": 0.0}
    Inbox(settings.inbox_db).add_staff_message(session.sender_id, "Lisa Berg", "Se källan.", [card], "sv")
    auth = {"Authorization": f"Bearer {session.token}"}
    with TestClient(app) as client:
        [polled] = client.get(f"/api/webchat/{session.session_id}/staff-messages", headers=auth).json()["messages"]
        history = client.get(f"/api/webchat/{session.session_id}/history", headers=auth).json()["messages"]
    assert polled["author"] == "Lisa Berg" and is_answer(polled["custom"])
    assert polled["custom"]["citations"] == [card] and polled["custom"]["language"] == "sv"
    [restored] = [m for m in history if m["who"] == "staff"]
    assert restored["author"] == "Lisa Berg" and restored["custom"]["citations"] == [card]


def test_cards_keep_the_numbers_the_draft_s_text_uses(inbox_app):
    client, _, inbox, _ = inbox_app
    request_id = inbox.add_handoff("web:a", "Vad är ett ramavtal och en direktupphandling?", "a@example.se", "sv")
    draft = client.get(f"/api/inbox/requests/{request_id}/draft", headers=bearer()).json()
    assert len(draft["citations"]) >= 2
    last = draft["citations"][-1]
    client.post(f"/api/inbox/requests/{request_id}/reply", headers=bearer(),
                json={"text": draft["text"], "citations": [last["paragraph_id"]]})  # only the last one ticked
    [message] = inbox.staff_messages("web:a")
    assert [c["number"] for c in message.citations] == [last["number"]]
    assert f"[{last['number']}]" in message.text


def test_a_citation_the_page_posts_that_is_not_a_paragraph_id_is_refused(inbox_app):
    client, _, inbox, _ = inbox_app
    request_id = inbox.add_handoff("web:a", "Vad är ett ramavtal?", "a@example.se", "sv")
    for bad in (["x" * 101], [""], ["a"] * 6):
        r = client.post(f"/api/inbox/requests/{request_id}/reply", headers=bearer(),
                        json={"text": "Hej", "citations": bad})
        assert r.status_code == 422, bad
    assert inbox.staff_messages("web:a") == []


def test_the_inbox_page_shows_question_conversation_paragraphs_and_a_draft_to_edit(inbox_app):
    client, _, inbox, _ = inbox_app
    request_id = inbox.add_handoff("web:a", "Vad är ett ramavtal? <b>", "a@example.se", "sv")
    cookie = login(client, "Lisa")
    page = client.get("/inbox", cookies={"inbox_session": cookie}).text
    assert "Assistentens bästa stycken" in page and "Vad är ett ramavtal? &lt;b&gt;" in page
    assert f'action="/inbox/requests/{request_id}/example"' in page and "Spara frågan som exempelfråga för [1]" in page
    assert 'name="cite"' in page and "Hej!\nTack för din fråga" not in page  # the draft, as the textarea's text
    textarea = page[page.index(f'id="reply{request_id}"'):]
    assert "Tack för din fråga" in textarea[:textarea.index("</textarea>")]


# -- example questions ---------------------------------------------------------------------------------
def test_saving_a_request_s_question_as_an_example_answers_the_next_person_without_a_rebuild(inbox_app):
    client, settings, inbox, app = inbox_app
    engine = app.state.engine_holder.get()
    pid = sanctions_id(app)
    assert engine.search(QUESTION, 3).hits[0].paragraph_id != pid
    request_id = inbox.add_handoff("web:a", QUESTION, "a@example.se", "sv")
    cookie = login(client, "Lisa")
    r = client.post(f"/inbox/requests/{request_id}/example", data={"paragraph_id": pid},
                    cookies={"inbox_session": cookie}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith(f"/inbox?sparad={request_id}")
    lines = (settings.knowledge_dir / "questions" / "staff.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [{"paragraph_id": pid, "question": QUESTION, "lang": "sv"}]
    assert engine.search(QUESTION, 3).hits[0].paragraph_id == pid  # live
    assert "sparades som exempelfråga" in client.get(f"/inbox?sparad={request_id}", cookies={"inbox_session": cookie}).text
    # again: not stored twice
    again = client.post("/api/inbox/examples", headers=bearer(), json={"paragraph_id": pid, "request_id": request_id})
    assert again.json() == {"paragraph_id": pid, "question": QUESTION, "lang": "sv", "saved": False, "live": True}
    assert len((settings.knowledge_dir / "questions" / "staff.jsonl").read_text(encoding="utf-8").splitlines()) == 1


def test_an_example_needs_a_real_paragraph_and_a_real_request_or_gap(inbox_app):
    client, settings, inbox, app = inbox_app
    request_id = inbox.add_handoff("web:a", QUESTION, "a@example.se", "sv")
    pid = sanctions_id(app)
    cases = [({"paragraph_id": "../../etc/passwd", "request_id": request_id}, 422),
             ({"paragraph_id": pid, "request_id": 999}, 404),
             ({"paragraph_id": pid, "gap": "A question nobody asked"}, 404),
             ({"paragraph_id": pid}, 422),
             ({"paragraph_id": pid, "request_id": request_id, "gap": QUESTION}, 422),
             ({"paragraph_id": "x" * 101, "request_id": request_id}, 422)]
    for body, status in cases:
        r = client.post("/api/inbox/examples", headers=bearer(), json=body)
        assert r.status_code == status, (body, r.text)
        assert isinstance(r.json()["detail"], (str, list))
    assert not (settings.knowledge_dir / "questions" / "staff.jsonl").exists()


def test_a_gap_is_answered_from_its_draft_saved_as_an_example_and_sent_to_whoever_asked(inbox_app):
    client, settings, inbox, app = inbox_app
    pid = sanctions_id(app)
    inbox.add_unanswered("web:a", QUESTION, "sv", None, None)
    inbox.add_unanswered("web:b", QUESTION + "  ", "sv", None, None)
    inbox.add_feedback("web:c", "bad", QUESTION, [])
    inbox.add_unanswered("web:d", "En annan fråga", "sv", None, None)
    cookie = login(client, "Lisa")
    main = client.get("/inbox", cookies={"inbox_session": cookie}).text
    assert "/inbox/gap?q=F%C3%A5r%20vi%20b%C3%B6ter" in main and "Besvara" in main
    page = client.get("/inbox/gap", params={"q": QUESTION}, cookies={"inbox_session": cookie}).text
    assert "Assistentens bästa stycken" in page and "Skicka svaret till 3 konversationer" in page
    assert 'action="/inbox/gaps/example"' in page
    r = client.post("/inbox/gaps/example", data={"question": QUESTION, "paragraph_id": pid},
                    cookies={"inbox_session": cookie}, follow_redirects=False)
    assert r.status_code == 303 and "sparad=1" in r.headers["location"]
    assert app.state.engine_holder.get().search(QUESTION, 3).hits[0].paragraph_id == pid
    r = client.post("/inbox/gaps/reply", data={"question": QUESTION, "text": "Så här är det.", "author": "Lisa",
                                               "cite": [pid]}, cookies={"inbox_session": cookie}, follow_redirects=False)
    assert r.status_code == 303 and "skickat=3" in r.headers["location"]
    for sender in ("web:a", "web:b", "web:c"):
        [m] = inbox.staff_messages(sender)
        assert m.author == "Lisa" and [c["paragraph_id"] for c in m.citations] == [pid]
    assert inbox.staff_messages("web:d") == []  # only those who asked it
    assert client.get("/inbox/gap", params={"q": "Ingen har frågat"}, cookies={"inbox_session": cookie}).status_code == 404


NEW_ROUTES = [("GET", "/api/inbox/requests/1/draft", {}), ("GET", "/api/inbox/gaps/draft?question=x", {}),
              ("POST", "/api/inbox/gaps/reply", {"json": {"question": "x", "text": "y"}}),
              ("POST", "/api/inbox/examples", {"json": {"paragraph_id": "x", "request_id": 1}}),
              ("GET", "/inbox/gap?q=x", {}), ("POST", "/inbox/name", {"data": {"name": "Eve"}}),
              ("POST", "/inbox/requests/1/example", {"data": {"paragraph_id": "x"}}),
              ("POST", "/inbox/gaps/example", {"data": {"question": "x", "paragraph_id": "x"}}),
              ("POST", "/inbox/gaps/reply", {"data": {"question": "x", "text": "y"}})]


def test_every_new_route_needs_a_login(inbox_app):
    client, settings, inbox, _ = inbox_app
    inbox.add_handoff("web:victim", "Min hemliga fråga", "v@example.se", "sv")
    inbox.add_unanswered("web:victim", "x", "sv", None, None)
    for method, path, body in NEW_ROUTES:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Cookie": "inbox_session=forged"}):
            client.cookies.clear()
            r = client.request(method, path, headers=headers, **body)
            assert r.status_code in (401, 429), (method, path, headers, r.status_code)
            assert "hemlig" not in r.text
    assert inbox.staff_messages("web:victim") == []
    assert not (settings.knowledge_dir / "questions" / "staff.jsonl").exists()


def test_page_posts_from_another_site_are_refused(inbox_app):
    client, _, inbox, app = inbox_app
    request_id = inbox.add_handoff("web:a", QUESTION, "a@example.se", "sv")
    cookie = login(client, "Lisa")
    r = client.post(f"/inbox/requests/{request_id}/example", data={"paragraph_id": sanctions_id(app)},
                    cookies={"inbox_session": cookie}, headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert r.status_code == 403


def test_api_posts_with_the_session_cookie_from_another_site_are_refused(inbox_app):
    """The JSON routes the inbox page calls refuse a foreign Origin too (not only SameSite)."""
    client, _, inbox, app = inbox_app
    request_id = inbox.add_handoff("web:a", QUESTION, "a@example.se", "sv")
    cookie = login(client, "Lisa")
    evil = {"Origin": "https://evil.example"}
    for path, body in ((f"/api/inbox/requests/{request_id}/reply", {"text": "Hej", "author": "Lisa"}),
                       ("/api/inbox/gaps/reply", {"question": QUESTION, "text": "Hej", "author": "Lisa"}),
                       ("/api/inbox/examples", {"request_id": request_id, "paragraph_id": sanctions_id(app)})):
        r = client.post(path, json=body, cookies={"inbox_session": cookie}, headers=evil)
        assert r.status_code == 403, (path, r.status_code, r.text)
    assert inbox.staff_messages("web:a") == []
    ok = client.post(f"/api/inbox/requests/{request_id}/reply", json={"text": "Hej", "author": "Lisa"},
                     headers=bearer())  # a server-to-server call without Origin still works
    assert ok.status_code == 200


def test_draft_links_use_the_public_address_behind_a_proxy(tiny_index, fake_embedder, tmp_path):
    from fastapi.testclient import TestClient

    from assistant.inbox import Inbox
    from index.search import SearchEngine
    from service.app import create_app
    from service.settings import ServiceSettings

    settings = ServiceSettings(**{**tiny_index.model_dump(), "inbox_db": tmp_path / "inbox.sqlite3",
                                  "inbox_token": STAFF, "public_url": "https://chat.example.se"})
    request_id = Inbox(settings.inbox_db).add_handoff("web:a", "Vad är ett ramavtal?", "a@example.se", "sv")
    app = create_app(settings, engine_factory=lambda: SearchEngine.load(settings, fake_embedder))
    with TestClient(app) as client:  # the request arrives at http://testserver, as from the proxy
        draft = client.get(f"/api/inbox/requests/{request_id}/draft", headers=bearer()).json()
    pid = draft["citations"][0]["paragraph_id"]
    assert f"https://chat.example.se/p/{pid}" in draft["text"] and "testserver" not in draft["text"]
