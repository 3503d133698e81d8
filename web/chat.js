/* Website chat for the procurement assistant. Talks to Rasa's socket.io channel.
   Every text from the user, the bot or staff is inserted with textContent: never as HTML. */
(function () {
  "use strict";

  var UI = {
    sv: {
      title: "Upphandlingsassistenten", human: "Prata med en person", send: "Skicka", label: "Din fråga",
      placeholder: "Skriv din fråga …", typing: "Assistenten skriver …", you: "Du", bot: "Assistenten",
      staff: "Handläggare", sources: "Källor", context: "Visa stycket i sitt sammanhang", section: "avsnitt",
      page: "s.", good: "Bra svar", bad: "Dåligt svar", thanksFeedback: "Tack för din återkoppling.",
      offline: "Ingen kontakt med assistenten just nu. Försöker igen …", online: "",
      intro: "Frågor om IOP, reserverad upphandling, ramavtal och tröskelvärden – varje svar citerar källan.",
      chip_iop: "Vad är IOP?", chip_reserved: "Reserverad upphandling", chip_framework: "Ramavtal",
      chip_threshold: "Tröskelvärden", humanMessage: "Jag vill prata med en person",
      coverage_partial: "Delvis i dokumenten", coverage_none: "Finns inte i dokumenten"
    },
    en: {
      title: "Procurement assistant", human: "Talk to a person", send: "Send", label: "Your question",
      placeholder: "Type your question …", typing: "The assistant is typing …", you: "You", bot: "Assistant",
      staff: "Adviser", sources: "Sources", context: "Show the paragraph in context", section: "section",
      page: "p.", good: "Good answer", bad: "Bad answer", thanksFeedback: "Thank you for your feedback.",
      offline: "No connection to the assistant right now. Retrying …", online: "",
      intro: "Questions on IOP, reserved contracts, framework agreements and thresholds – every answer cites its source.",
      chip_iop: "What is an IOP?", chip_reserved: "Reserved contracts", chip_framework: "Framework agreements",
      chip_threshold: "Thresholds", humanMessage: "I want to talk to a person",
      coverage_partial: "Partly covered by the documents", coverage_none: "Not in the documents"
    }
  };

  var socketUrl = (document.querySelector('meta[name="rasa-socket-url"]') || {}).content || "";
  var log = document.getElementById("log");
  var form = document.getElementById("form");
  var input = document.getElementById("message");
  var typing = document.getElementById("typing");
  var chips = document.getElementById("chips");
  var status = document.getElementById("status");
  var lang = /^en\b/i.test(new URLSearchParams(location.search).get("lang") || "") ? "en" : "sv";
  var lastQuestion = null;
  var typingTimer = null;
  var staffSeen = 0;

  function t(key) {
    var table = UI[lang] || UI.sv;
    if (Object.prototype.hasOwnProperty.call(table, key)) return table[key];
    return Object.prototype.hasOwnProperty.call(UI.sv, key) ? UI.sv[key] : key;
  }

  function setLanguage(next) {
    if (next !== "sv" && next !== "en") return;
    lang = next;
    document.documentElement.lang = lang;
    document.querySelectorAll("[data-i18n]").forEach(function (el) { el.textContent = t(el.getAttribute("data-i18n")); });
    input.placeholder = t("placeholder");
    log.setAttribute("aria-label", lang === "en" ? "Conversation" : "Konversation");
  }

  /* The server issues the session: a signed token ("<id>.<expiry>.<signature>") that the page keeps
     and sends back on every connect. A missing, forged or expired token gets a new session. */
  var TOKEN_KEY = "procurement-assistant-session";
  function storedToken() {
    try { return localStorage.getItem(TOKEN_KEY); } catch (e) { return null; /* storage blocked */ }
  }
  var token = storedToken();
  var session = null;  /* the session id, known once the server confirms it */

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function addBubble(kind, text) {
    var bubble = el("div", "msg msg--" + kind);
    bubble.appendChild(el("span", "msg__who", t(kind === "user" ? "you" : kind === "staff" ? "staff" : "bot")));
    bubble.appendChild(el("span", "msg__text", text));
    log.appendChild(bubble);
    scrollDown();
    return bubble;
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
    var link = el("a", null, t("context"));
    link.href = "/p/" + encodeURIComponent(c.paragraph_id);
    link.target = "_blank";
    link.rel = "noopener";
    body.appendChild(link);
    details.appendChild(body);
    item.appendChild(details);
    return item;
  }

  function feedbackButtons(custom) {
    var box = el("div", "actions");
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", lang === "en" ? "Feedback on this answer" : "Återkoppling på svaret");
    var ids = (custom.citations || []).map(function (c) { return c.paragraph_id; });
    var question = lastQuestion;
    [["good", "👍", "/feedback_good"], ["bad", "👎", "/feedback_bad"]].forEach(function (spec) {
      var b = el("button", "feedback feedback--" + spec[0], spec[1]);
      b.type = "button";
      b.setAttribute("aria-label", t(spec[0]));
      b.setAttribute("aria-pressed", "false");
      b.addEventListener("click", function () {
        box.querySelectorAll("button").forEach(function (x) { x.disabled = true; });
        b.setAttribute("aria-pressed", "true");
        send(spec[2], { show: false, metadata: { feedback_for: { question: question, paragraph_ids: ids } } });
      });
      box.appendChild(b);
    });
    return box;
  }

  function renderBot(event) {
    var custom = event.custom || null;
    var text = event.text || (custom && custom.text) || "";
    if (custom && custom.language) setLanguage(custom.language);
    /* With citations, show the answer without its plain-text source list (`body`): the cards show the sources. */
    var bubble = addBubble("bot", custom && custom.citations && custom.citations.length ? (custom.body || text) : text);
    /* Partial and "not in the documents" answers are marked, so nobody reads them as a full answer. */
    var coverage = custom && (custom.coverage === "partial" || custom.coverage === "none") ? custom.coverage : null;
    if (coverage) {
      bubble.classList.add("msg--" + coverage);
      bubble.insertBefore(el("span", "coverage coverage--" + coverage, t("coverage_" + coverage)), bubble.querySelector(".msg__text"));
    }
    if (custom && custom.citations && custom.citations.length) {
      bubble.classList.add("msg--answer");
      var heading = el("span", "msg__who", t("sources"));
      bubble.appendChild(heading);
      var list = el("ol", "cites");
      custom.citations.forEach(function (c) { list.appendChild(citationCard(c)); });
      bubble.appendChild(list);
    }
    if (custom && custom.answered) bubble.appendChild(feedbackButtons(custom));
    if (event.buttons && event.buttons.length) {
      var box = el("div", "actions");
      event.buttons.forEach(function (spec) {
        var b = el("button", null, spec.title);
        b.type = "button";
        b.addEventListener("click", function () { send(spec.payload, { display: spec.title }); });
        box.appendChild(b);
      });
      bubble.appendChild(box);
    }
    scrollDown();
  }

  function showTyping(on) {
    typing.hidden = !on;
    typing.setAttribute("aria-hidden", on ? "false" : "true");
    if (typingTimer) clearTimeout(typingTimer);
    if (on) typingTimer = setTimeout(function () { showTyping(false); }, 20000);
  }

  var socket = io(socketUrl, { transports: ["polling"], upgrade: false, reconnectionDelayMax: 5000 });

  socket.on("connect", function () {
    status.textContent = t("online");
    socket.emit("session_request", { token: token });
  });
  socket.on("session_confirm", function (confirmed) {
    if (!confirmed || !confirmed.token || !confirmed.session_id) return;
    if (confirmed.session_id !== session) staffSeen = 0;
    session = confirmed.session_id;
    token = confirmed.token;
    try { localStorage.setItem(TOKEN_KEY, token); } catch (e) { /* ignore */ }
  });
  socket.on("session_required", function () { socket.emit("session_request", { token: token }); });
  socket.on("connect_error", function () { status.textContent = t("offline"); });
  socket.on("disconnect", function () { status.textContent = t("offline"); });
  socket.on("bot_uttered", function (event) {
    renderBot(event || {});
    // More messages may follow right away; keep "typing" briefly, then stop.
    showTyping(true);
    if (typingTimer) clearTimeout(typingTimer);
    typingTimer = setTimeout(function () { showTyping(false); }, 400);
  });

  function send(message, options) {
    options = options || {};
    var text = (message || "").trim();
    if (!text) return;
    if (options.show !== false) addBubble("user", options.display || text);
    if (text.charAt(0) !== "/") lastQuestion = text;
    chips.hidden = true;
    showTyping(true);
    socket.emit("user_uttered", { message: text, customData: options.metadata || {} });
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    send(input.value);
    input.value = "";
    input.focus();
  });
  document.getElementById("human").addEventListener("click", function () {
    send("/request_human", { display: t("humanMessage") });
  });
  chips.querySelectorAll(".chip").forEach(function (chip) {
    chip.addEventListener("click", function () {
      send(chip.getAttribute(lang === "en" ? "data-question-en" : "data-question-sv"));
    });
  });

  /* Replies from hub staff (the inbox) arrive through the web service. */
  function pollStaff() {
    if (!session || !token) { setTimeout(pollStaff, 1000); return; }
    fetch("/api/webchat/" + encodeURIComponent(session) + "/staff-messages?after=" + staffSeen,
          { headers: { "Authorization": "Bearer " + token }, cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : { messages: [] }; })
      .then(function (body) {
        (body.messages || []).forEach(function (m) {
          staffSeen = Math.max(staffSeen, m.id);
          addBubble("staff", m.text);
        });
      })
      .catch(function () { /* try again later */ })
      .then(function () { setTimeout(pollStaff, 4000); });
  }
  setLanguage(lang);
  pollStaff();
})();
