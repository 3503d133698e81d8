/* Website chat for the procurement assistant. Talks to Rasa's socket.io channel.
   Every text from the user, the bot or staff is inserted with textContent: never as HTML. */
(function () {
  "use strict";

  var UI = {
    sv: {
      title: "Upphandlingsassistenten", human: "Prata med en person", send: "Skicka", label: "Din fråga",
      placeholder: "Skriv din fråga …", you: "Du", bot: "Assistenten",
      staff: "Handläggare", sources: "Källor", context: "Visa stycket i sitt sammanhang", section: "avsnitt",
      page: "s.", good: "Bra svar", bad: "Dåligt svar", feedbackGroup: "Återkoppling på svaret",
      why: "Vad var fel?", why_wrong_source: "Fel källa", why_not_answered: "Svarade inte på frågan",
      why_outdated: "Inaktuell information",
      offline: "Ingen kontakt med assistenten just nu. Försöker igen …", online: "",
      restarting: "Assistenten startar om … ditt meddelande skickas när den är tillbaka.",
      chip_iop: "Vad är IOP?", chip_reserved: "Reserverad upphandling", chip_framework: "Ramavtal",
      chip_threshold: "Tröskelvärden", humanMessage: "Jag vill prata med en person", suggestions: "Förslag",
      coverage_partial: "Delvis i dokumenten", coverage_none: "Finns inte i dokumenten",
      working: "Assistenten letar i dokumenten …", slow: "Det tar lite längre tid än vanligt – svaret kommer …",
      failTimeout: "Inget svar kom från assistenten.",
      retry: "Försök igen", conversation: "Konversation",
      welcome: "Hej! Jag svarar på frågor om idéburet offentligt partnerskap (IOP), reserverad upphandling, " +
        "ramavtal och tröskelvärden – och visar citatet ur källan till varje svar.",
      welcomeDocs: "Svaren kommer ur {n} dokument från {years}.", welcomeDocsOne: "Svaren kommer ur ett dokument från {years}.",
      welcomeDocsUnknown: "Svaren kommer ur dokumenten i assistentens kunskapsbank.",
      showDocs: "Visa dokumenten",
      legal: "Svaren är inte juridisk rådgivning. Kontrollera med en jurist eller er upphandlare innan ni fattar beslut.",
      privacy: "Konversationen sparas hos oss så att du kan fortsätta den och få hjälp av en handläggare. " +
        "Skriv inte personnummer eller känsliga uppgifter."
    },
    en: {
      title: "Procurement assistant", human: "Talk to a person", send: "Send", label: "Your question",
      placeholder: "Type your question …", you: "You", bot: "Assistant",
      staff: "Adviser", sources: "Sources", context: "Show the paragraph in context", section: "section",
      page: "p.", good: "Good answer", bad: "Bad answer", feedbackGroup: "Feedback on this answer",
      why: "What was wrong?", why_wrong_source: "Wrong source", why_not_answered: "Didn't answer the question",
      why_outdated: "Outdated information",
      offline: "No connection to the assistant right now. Retrying …", online: "",
      restarting: "The assistant is restarting … your message will be sent when it is back.",
      chip_iop: "What is an IOP?", chip_reserved: "Reserved contracts", chip_framework: "Framework agreements",
      chip_threshold: "Thresholds", humanMessage: "I want to talk to a person", suggestions: "Suggestions",
      coverage_partial: "Partly covered by the documents", coverage_none: "Not in the documents",
      working: "The assistant is searching the documents …", slow: "This is taking longer than usual – the answer is on its way …",
      failTimeout: "No answer came from the assistant.",
      retry: "Try again", conversation: "Conversation",
      welcome: "Hi! I answer questions about idea-driven public partnerships (IOP), reserved contracts, " +
        "framework agreements and thresholds – and show the quote from the source for every answer.",
      welcomeDocs: "The answers come from {n} documents from {years}.", welcomeDocsOne: "The answers come from one document from {years}.",
      welcomeDocsUnknown: "The answers come from the documents in the assistant's knowledge base.",
      showDocs: "Show the documents",
      legal: "The answers are not legal advice. Check with a lawyer or your procurement officer before you decide.",
      privacy: "We keep the conversation so that you can continue it and get help from an adviser. " +
        "Do not write personal identity numbers or sensitive information."
    }
  };

  var WORKING_AFTER_MS = 1000;   /* "still working" shows after about a second */
  var SLOW_AFTER_MS = 10000;
  var REPLY_TIMEOUT_MS = 60000;  /* replies take 7–29 s under load; after this a retry is offered */
  var TOKEN_KEY = "procurement-assistant-session";
  var LANG_KEY = "procurement-assistant-lang";

  var socketUrl = (document.querySelector('meta[name="rasa-socket-url"]') || {}).content || "";
  var log = document.getElementById("log");
  var form = document.getElementById("form");
  var input = document.getElementById("message");
  var typing = document.getElementById("typing");
  var working = document.getElementById("working");
  var failure = document.getElementById("failure");
  var failureText = document.getElementById("failure-text");
  var chips = document.getElementById("chips");
  var status = document.getElementById("status");

  function stored(key) {
    try { return localStorage.getItem(key); } catch (e) { return null; /* storage blocked */ }
  }
  function store(key, value) {
    try { localStorage.setItem(key, value); } catch (e) { /* storage blocked */ }
  }

  var asked = new URLSearchParams(location.search).get("lang") || stored(LANG_KEY) || "";
  var lang = /^en\b/i.test(asked) ? "en" : "sv";
  var lastQuestion = null;
  var staffSeen = 0;
  var documents = null;   /* from /api/documents, for the welcome message */
  var pending = null;     /* the message waiting for its reply: {text, options, timers} */
  var lastSent = null;    /* what "retry" sends again */
  var turnStart = null;   /* the first bot message after the user's last message */

  function t(key) {
    var table = UI[lang] || UI.sv;
    if (Object.prototype.hasOwnProperty.call(table, key)) return table[key];
    return Object.prototype.hasOwnProperty.call(UI.sv, key) ? UI.sv[key] : key;
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  /* An element whose text follows the interface language. */
  function label(tag, cls, key) {
    var node = el(tag, cls, t(key));
    node.setAttribute("data-i18n", key);
    return node;
  }

  function setLanguage(next, remember) {
    if (next !== "sv" && next !== "en") return;
    lang = next;
    if (remember !== false) store(LANG_KEY, lang);
    document.documentElement.lang = lang;
    document.title = t("title");
    document.querySelectorAll("[data-i18n]").forEach(function (node) { node.textContent = t(node.getAttribute("data-i18n")); });
    document.querySelectorAll("[data-i18n-label]").forEach(function (node) {
      node.setAttribute("aria-label", t(node.getAttribute("data-i18n-label")));
    });
    input.placeholder = t("placeholder");
    log.setAttribute("aria-label", t("conversation"));
    document.getElementById("lang-sv").setAttribute("aria-pressed", lang === "sv" ? "true" : "false");
    document.getElementById("lang-en").setAttribute("aria-pressed", lang === "en" ? "true" : "false");
    document.querySelectorAll("a[data-paragraph]").forEach(function (a) { a.href = paragraphHref(a.getAttribute("data-paragraph")); });
    renderWelcome();
  }

  /* The server issues the session: a signed token ("<id>.<expiry>.<signature>") that the page keeps
     and sends back on every connect. A missing, forged or expired token gets a new session. */
  var token = stored(TOKEN_KEY);
  var session = null;  /* the session id, known once the server confirms it */
  /* Only a page that had a token can have a past to show. Until that past is shown, messages wait in the
     outbox: a history fetched after they reached the server would show them twice. */
  var restoring = !!token;
  var historyLoaded = false;

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  /* Show the start of this turn's answer (its verdict) rather than its end: on a phone a long answer is
     taller than the log, and scrolling to the bottom would show only the caveats. */
  function revealTurn() {
    if (!turnStart) { scrollDown(); return; }
    var offset = turnStart.getBoundingClientRect().top - log.getBoundingClientRect().top + log.scrollTop - 8;
    log.scrollTop = Math.min(offset, log.scrollHeight - log.clientHeight);
  }

  function addBubble(kind, text, key) {
    var bubble = el("div", "msg msg--" + kind);
    bubble.appendChild(label("span", "msg__who", kind === "user" ? "you" : kind === "staff" ? "staff" : "bot"));
    bubble.appendChild(key ? label("span", "msg__text", key) : el("span", "msg__text", text));
    log.appendChild(bubble);
    return bubble;
  }

  /* -- the welcome message: what the assistant answers, from which documents, and that it is not legal advice */
  var welcome = el("div", "msg msg--welcome");  /* not .msg--bot: it is no reply */
  log.appendChild(welcome);

  function renderWelcome() {
    while (welcome.firstChild) welcome.removeChild(welcome.firstChild);
    welcome.appendChild(label("span", "msg__who", "bot"));
    welcome.appendChild(el("p", "welcome__text", t("welcome")));
    if (documents && documents.length) {
      var years = documents.map(function (d) { return d.year; }).filter(Boolean).sort();
      var span = years.length ? (years[0] === years[years.length - 1] ? String(years[0]) : years[0] + "–" + years[years.length - 1]) : "";
      var docs = el("details", "welcome__docs");
      var summary = el("summary", null, t(documents.length === 1 ? "welcomeDocsOne" : "welcomeDocs")
        .replace("{n}", String(documents.length)).replace("{years}", span));
      summary.appendChild(el("span", "welcome__show", " " + t("showDocs")));
      docs.appendChild(summary);
      var list = el("ul");
      documents.forEach(function (d) {
        list.appendChild(el("li", null, d.title + (d.publisher ? ", " + d.publisher : "") + (d.year ? " (" + d.year + ")" : "")));
      });
      docs.appendChild(list);
      welcome.appendChild(docs);
    } else {
      welcome.appendChild(el("p", "welcome__text", t("welcomeDocsUnknown")));
    }
    welcome.appendChild(el("p", "welcome__legal", t("legal")));
  }

  function loadDocuments() {
    fetch("/api/documents", { cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) { if (Array.isArray(body)) { documents = body; renderWelcome(); } })
      .catch(function () { /* the welcome keeps its general wording */ });
  }

  function paragraphHref(id) {
    return "/p/" + encodeURIComponent(id) + (lang === "en" ? "?lang=en" : "");
  }

  function citationCard(c) {
    var item = el("li");
    var details = el("details", "cite");
    var summary = el("summary");
    summary.appendChild(el("span", "cite__num", "[" + c.number + "]"));
    summary.appendChild(document.createTextNode(c.title + (c.year ? " (" + c.year + ")" : "")));
    var meta = [];
    if (c.section) meta.push(t("section") + " ”" + c.section + "”");
    if (c.page) meta.push(t("page") + " " + c.page);
    if (meta.length) summary.appendChild(el("span", "cite__meta", meta.join(", ")));
    details.appendChild(summary);
    var body = el("div", "cite__body");
    body.appendChild(el("blockquote", "cite__quote", c.text));
    var link = label("a", null, "context");
    link.setAttribute("data-paragraph", c.paragraph_id);
    link.href = paragraphHref(c.paragraph_id);
    link.target = "_blank";
    link.rel = "noopener";
    body.appendChild(link);
    details.appendChild(body);
    item.appendChild(details);
    return item;
  }

  /* Thumb icons drawn as SVG (no emoji font needed); the button's text says what it means. */
  var SVG = "http://www.w3.org/2000/svg";
  var THUMB = "M2 21h4V9H2v12zm20-11c0-1.1-.9-2-2-2h-6.3l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L13.17 1 " +
              "6.59 7.59C6.22 7.95 6 8.45 6 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z";
  function thumb(down) {
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "18");
    svg.setAttribute("height", "18");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", "icon");
    var path = document.createElementNS(SVG, "path");
    path.setAttribute("d", THUMB);
    path.setAttribute("fill", "currentColor");
    if (down) path.setAttribute("transform", "rotate(180 12 12)");
    svg.appendChild(path);
    return svg;
  }

  function feedbackButtons(custom) {
    var wrap = el("div", "feedback-wrap");
    var box = el("div", "actions");
    box.setAttribute("role", "group");
    box.setAttribute("data-i18n-label", "feedbackGroup");
    box.setAttribute("aria-label", t("feedbackGroup"));
    var ids = (custom.citations || []).map(function (c) { return c.paragraph_id; });
    var question = lastQuestion;
    function target(reason) {
      var out = { question: question, paragraph_ids: ids };
      if (reason) out.reason = reason;
      return { feedback_for: out };
    }
    function press(b) {
      box.querySelectorAll("button").forEach(function (x) { x.disabled = true; });
      b.setAttribute("aria-pressed", "true");
    }
    var good = el("button", "feedback feedback--good");
    good.type = "button";
    good.setAttribute("aria-pressed", "false");
    good.appendChild(thumb(false));
    good.appendChild(label("span", null, "good"));
    good.addEventListener("click", function () {
      press(good);
      send("/feedback_good", { show: false, metadata: target(null) });
    });
    var bad = el("button", "feedback feedback--bad");
    bad.type = "button";
    bad.setAttribute("aria-pressed", "false");
    bad.appendChild(thumb(true));
    bad.appendChild(label("span", null, "bad"));
    bad.addEventListener("click", function () {
      press(bad);
      wrap.appendChild(whyPanel(target));
      revealElement(wrap);
    });
    box.appendChild(good);
    box.appendChild(bad);
    wrap.appendChild(box);
    return wrap;
  }

  /* 👎 asks what was wrong (stored with the feedback) and offers a person right away. */
  function whyPanel(target) {
    var panel = el("div", "why");
    var heading = label("p", "why__q", "why");
    heading.id = "why-" + Math.random().toString(36).slice(2);
    panel.appendChild(heading);
    var reasons = el("div", "actions");
    reasons.setAttribute("role", "group");
    reasons.setAttribute("aria-labelledby", heading.id);
    ["wrong_source", "not_answered", "outdated"].forEach(function (reason) {
      var b = label("button", "why__reason", "why_" + reason);
      b.type = "button";
      b.setAttribute("aria-pressed", "false");
      b.addEventListener("click", function () {
        reasons.querySelectorAll("button").forEach(function (x) { x.disabled = true; });
        b.setAttribute("aria-pressed", "true");
        send("/feedback_bad", { show: false, metadata: target(reason) });
      });
      reasons.appendChild(b);
    });
    panel.appendChild(reasons);
    var person = label("button", "why__human", "human");
    person.type = "button";
    person.addEventListener("click", function () {
      person.disabled = true;
      send("/request_human", { displayKey: "humanMessage" });
    });
    panel.appendChild(person);
    return panel;
  }

  function revealElement(node) {
    var bottom = node.getBoundingClientRect().bottom - log.getBoundingClientRect().bottom;
    if (bottom > 0) log.scrollTop += bottom + 8;
  }

  function renderBot(event, restored) {
    var custom = event.custom || null;
    var text = event.text || (custom && custom.text) || "";
    if (custom && custom.language && !restored) setLanguage(custom.language);
    /* With citations, show the answer without its plain-text source list (`body`): the cards show the sources. */
    var bubble = addBubble("bot", custom && custom.citations && custom.citations.length ? (custom.body || text) : text);
    /* Partial and "not in the documents" answers are marked, so nobody reads them as a full answer. */
    var coverage = custom && (custom.coverage === "partial" || custom.coverage === "none") ? custom.coverage : null;
    if (coverage) {
      bubble.classList.add("msg--" + coverage);
      bubble.insertBefore(label("span", "coverage coverage--" + coverage, "coverage_" + coverage), bubble.querySelector(".msg__text"));
    }
    if (custom && custom.citations && custom.citations.length) {
      bubble.classList.add("msg--answer");
      bubble.appendChild(label("span", "msg__who", "sources"));
      var list = el("ol", "cites");
      custom.citations.forEach(function (c) { list.appendChild(citationCard(c)); });
      bubble.appendChild(list);
    }
    if (custom && custom.answered) bubble.appendChild(feedbackButtons(custom));
    if (event.buttons && event.buttons.length) {
      var box = el("div", "actions actions--form");
      event.buttons.forEach(function (spec) {
        var b = el("button", null, spec.title);
        b.type = "button";
        b.disabled = !!restored;  /* a restored conversation's buttons have been answered already */
        b.addEventListener("click", function () {
          box.querySelectorAll("button").forEach(function (x) { x.disabled = true; });
          b.classList.add("is-chosen");
          send(spec.payload, { display: spec.title });
        });
        box.appendChild(b);
      });
      bubble.appendChild(box);
    }
    return bubble;
  }

  /* -- waiting for a reply: dots at once, "still working" after a second, a retry on failure */
  /* A reply from hub staff: signed with the staff member's name, with the citation cards staff attached
     (the answer payload of assistant/payload.py, as for the bot's answers). */
  /* A staff reply's text lists its sources for channels without cards ("[1] Titel (2019) – https://…/p/…").
     Where the cards show them, those lines (and a "Källor:" heading left empty) are not repeated;
     any other link in the text becomes clickable. */
  var SOURCE_LINE = /^\[(\d{1,2})\] .{1,400} – https?:\/\/\S{1,300}\/p\/\S{1,200}$/;
  var SOURCES_HEADING = /^(Källor|Sources):$/;

  function staffText(text, citations) {
    var numbers = (citations || []).map(function (c) { return String(c.number); });
    var lines = String(text || "").split(/\r?\n/).filter(function (line) {  /* a form posts CRLF */
      var found = numbers.length ? SOURCE_LINE.exec(line) : null;
      return !(found && numbers.indexOf(found[1]) >= 0);
    });
    return lines.filter(function (line, i) {
      return !(SOURCES_HEADING.test(line) && (i + 1 >= lines.length || !lines[i + 1].trim()));
    }).join("\n").replace(/\n{3,}/g, "\n\n");  /* no gap where the list was */
  }

  function linkified(text) {
    var span = el("span", "msg__text");
    String(text).split(/(https?:\/\/[^\s<>"]{1,400})/).forEach(function (part, i) {
      if (i % 2) {
        var a = el("a", null, part);
        a.href = part;
        a.target = "_blank";
        a.rel = "noopener";
        span.appendChild(a);
      } else if (part) {
        span.appendChild(document.createTextNode(part));
      }
    });
    return span;
  }

  function renderStaff(m) {
    var bubble = addBubble("staff", "");
    bubble.replaceChild(linkified(staffText(m.text, m.custom && m.custom.citations)),
                        bubble.querySelector(".msg__text"));
    if (m.author) {
      var who = bubble.querySelector(".msg__who");
      who.removeAttribute("data-i18n");  /* the role inside carries the translation; the name stays */
      who.textContent = "";
      who.appendChild(el("span", "msg__author", m.author));
      who.appendChild(document.createTextNode(" · "));
      who.appendChild(label("span", null, "staff"));
    }
    var custom = m.custom;
    if (custom && custom.citations && custom.citations.length) {
      bubble.appendChild(label("span", "msg__who", "sources"));
      var list = el("ol", "cites");
      custom.citations.forEach(function (c) { list.appendChild(citationCard(c)); });
      bubble.appendChild(list);
    }
    return bubble;
  }

  /* The dots and the status line sit below the log and take its height: a log that was scrolled to the
     bottom stays there, so the message just sent is not cut in half behind them. */
  function keepBottom(change) {
    var atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
    change();
    if (atBottom) scrollDown();
  }

  function showTyping(on) {
    keepBottom(function () {
      typing.hidden = !on;
      if (!on) working.hidden = true;
    });
  }

  function clearPending() {
    if (pending) pending.timers.forEach(clearTimeout);
    pending = null;
    showTyping(false);
  }

  function startPending(text, options) {
    clearPending();
    failure.hidden = true;
    working.setAttribute("data-i18n", "working");
    working.textContent = t("working");
    showTyping(true);
    pending = { text: text, options: options, timers: [
      setTimeout(function () { keepBottom(function () { working.hidden = false; }); }, WORKING_AFTER_MS),
      setTimeout(function () { working.setAttribute("data-i18n", "slow"); working.textContent = t("slow"); }, SLOW_AFTER_MS),
      setTimeout(function () { fail("failTimeout"); }, REPLY_TIMEOUT_MS)
    ] };
  }

  function fail(key) {
    clearPending();
    /* The person decides: "retry" sends again what had not gone out (every message, in order), or the last one. */
    retryList = outbox.length ? outbox : [];
    outbox = [];
    failureText.setAttribute("data-i18n", key);
    failureText.textContent = t(key);
    failure.hidden = false;
  }

  function send(message, options) {
    options = options || {};
    var text = (message || "").trim();
    if (!text) return;
    /* Form buttons of earlier messages are answered (or passed by) now. */
    log.querySelectorAll(".actions--form button").forEach(function (b) { b.disabled = true; });
    if (options.show !== false) {
      addBubble("user", options.display || text, options.displayKey);
      scrollDown();
    }
    if (text.charAt(0) !== "/") lastQuestion = text;
    chips.hidden = true;
    turnStart = null;
    emit(text, options);
  }

  /* Messages written before the socket has its session (just after the page loads, while the past
     loads, or while it reconnects) wait here, in the order they were written, and go out together when
     the server confirms the session. */
  var outbox = [];
  var retryList = [];

  function emit(text, options) {
    lastSent = { text: text, options: options };
    startPending(text, options);
    if (socket.connected && session && historyLoaded && !outbox.length) deliver(lastSent);
    else outbox.push(lastSent);
  }

  function deliver(message) {
    /* The interface language goes along: a button click ("/request_human") has no words to tell it by. */
    var data = Object.assign({ lang: lang }, message.options.metadata || {});
    socket.emit("user_uttered", { message: message.text, customData: data });
  }

  document.getElementById("retry").addEventListener("click", function () {
    var again = retryList.length ? retryList : (lastSent ? [lastSent] : []);
    retryList = [];
    again.forEach(function (m) { emit(m.text, m.options); });
  });

  var socket = io(socketUrl, { transports: ["polling"], upgrade: false, reconnectionDelayMax: 5000 });

  socket.on("connect", function () {
    status.textContent = t("online");
    socket.emit("session_request", { token: token, lang: lang });
  });
  socket.on("session_confirm", function (confirmed) {
    if (!confirmed || !confirmed.token || !confirmed.session_id) return;
    if (confirmed.session_id !== session) staffSeen = 0;
    var first = session === null;
    session = confirmed.session_id;
    token = confirmed.token;
    store(TOKEN_KEY, token);
    if (first && restoring) loadHistory();  /* the outbox goes out once the past is shown */
    else if (first) historyLoaded = true;  /* a new conversation has no past */
    if (historyLoaded) deliverOutbox();
  });
  function deliverOutbox() {
    if (!outbox.length || !socket.connected || !session) return;  /* offline: the next session_confirm sends them */
    var waiting = outbox;
    outbox = [];
    if (pending && !pending.timers.length) startPending(lastSent.text, lastSent.options);  /* fresh timers */
    waiting.forEach(deliver);
  }
  socket.on("session_required", function () { socket.emit("session_request", { token: token, lang: lang }); });
  /* The line dropped (Rasa restarting, or the network): the message waiting for its reply is kept and
     goes out again once the server confirms the session on reconnect. A message that reached Rasa
     just before it died has no reply coming, so it is sent again rather than lost. The page says so. */
  function waitForServer() {
    status.textContent = t("offline");
    if (!pending) return;
    /* The message waiting for its reply goes out again first, then what was written after it. */
    if (outbox.indexOf(lastSent) < 0) outbox.unshift(lastSent);
    pending.timers.forEach(clearTimeout);
    pending.timers = [];
    keepBottom(function () {
      working.setAttribute("data-i18n", "restarting");
      working.textContent = t("restarting");
      working.hidden = false;
    });
  }
  socket.on("connect_error", waitForServer);
  socket.on("disconnect", waitForServer);
  socket.on("bot_uttered", function (event) {
    clearPending();
    failure.hidden = true;
    var bubble = renderBot(event || {});
    if (!turnStart) turnStart = bubble;
    revealTurn();
  });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    send(input.value);
    input.value = "";
    input.focus();
  });
  document.getElementById("human").addEventListener("click", function () {
    send("/request_human", { displayKey: "humanMessage" });
  });
  document.getElementById("lang-sv").addEventListener("click", function () { setLanguage("sv"); });
  document.getElementById("lang-en").addEventListener("click", function () { setLanguage("en"); });
  chips.querySelectorAll(".chip").forEach(function (chip) {
    chip.addEventListener("click", function () {
      send(chip.getAttribute(lang === "en" ? "data-question-en" : "data-question-sv"));
    });
  });

  /* After a reload: the conversation so far, as the server recorded it for this signed session. */
  function loadHistory() {
    fetch("/api/webchat/" + encodeURIComponent(session) + "/history",
          { headers: { "Authorization": "Bearer " + token }, cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : { messages: [], staff_after: 0 }; })
      .then(function (body) {
        var messages = body.messages || [];
        var before = log.lastElementChild;  /* what the page shows already: the welcome, and messages typed since */
        var typedMeanwhile = before !== welcome;  /* they, not the past, hold the last question and the open form */
        messages.forEach(function (m) {
          if (m.who === "user") {
            addBubble("user", m.text, m.kind === "human" ? "humanMessage" : null);
            if (m.text && !m.kind && !typedMeanwhile) lastQuestion = m.text;
          } else if (m.who === "staff") {
            renderStaff(m);
          } else {
            renderBot({ text: m.text, custom: m.custom, buttons: m.buttons }, true);
          }
        });
        var last = messages[messages.length - 1];
        if (!typedMeanwhile && last && last.who === "bot" && last.buttons && last.buttons.length) {
          /* the conversation still waits for one of these */
          log.lastElementChild.querySelectorAll(".actions--form button").forEach(function (b) { b.disabled = false; });
        }
        /* The past goes above anything typed while it loaded (those wait in the outbox, not yet sent). */
        var live = welcome.nextSibling;
        if (typedMeanwhile && live) {
          var past = [];
          for (var node = before.nextSibling; node; node = node.nextSibling) past.push(node);
          past.forEach(function (n) { log.insertBefore(n, live); });
        }
        if (messages.length) { chips.hidden = true; scrollDown(); }
        staffSeen = Math.max(staffSeen, body.staff_after || 0);
      })
      .catch(function () { /* the conversation goes on without its past */ })
      .then(function () { historyLoaded = true; deliverOutbox(); });
  }

  /* Replies from hub staff (the inbox) arrive through the web service. */
  function pollStaff() {
    if (!session || !token || !historyLoaded) { setTimeout(pollStaff, 1000); return; }
    fetch("/api/webchat/" + encodeURIComponent(session) + "/staff-messages?after=" + staffSeen,
          { headers: { "Authorization": "Bearer " + token }, cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : { messages: [] }; })
      .then(function (body) {
        (body.messages || []).forEach(function (m) {
          if (m.id <= staffSeen) return;
          staffSeen = Math.max(staffSeen, m.id);
          renderStaff(m);
          scrollDown();
        });
      })
      .catch(function () { /* try again later */ })
      .then(function () { setTimeout(pollStaff, 4000); });
  }
  setLanguage(lang, false);
  loadDocuments();
  pollStaff();
})();
