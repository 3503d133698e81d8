/* Put the assistant on any website with one tag:
     <script src="https://assistant.example.se/embed.js" defer></script>
   Optional attributes: data-lang="en", data-title="…". The chat runs in an iframe from the
   assistant's own origin, so the host page's styles and scripts cannot touch it. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) return;
  var origin = new URL(script.src, location.href).origin;
  var lang = script.getAttribute("data-lang") === "en" ? "en" : "sv";
  var title = script.getAttribute("data-title") || (lang === "en" ? "Procurement assistant" : "Upphandlingsassistenten");

  var button = document.createElement("button");
  button.type = "button";
  button.textContent = lang === "en" ? "Ask the procurement assistant" : "Fråga upphandlingsassistenten";
  button.setAttribute("aria-expanded", "false");
  button.style.cssText = "position:fixed;right:16px;bottom:16px;z-index:2147483000;padding:12px 16px;border-radius:24px;" +
    "border:0;background:#0b5cad;color:#fff;font:16px system-ui,sans-serif;cursor:pointer;box-shadow:0 2px 8px rgba(0,0,0,.3)";

  var frame = document.createElement("iframe");
  frame.src = origin + "/?embed=1&lang=" + lang;
  frame.title = title;
  frame.hidden = true;
  frame.style.cssText = "position:fixed;right:16px;bottom:72px;z-index:2147483000;width:min(400px,calc(100vw - 32px));" +
    "height:min(640px,calc(100vh - 96px));border:1px solid #c9d1dc;border-radius:12px;background:#fff;box-shadow:0 4px 16px rgba(0,0,0,.25)";

  button.addEventListener("click", function () {
    frame.hidden = !frame.hidden;
    button.setAttribute("aria-expanded", String(!frame.hidden));
    if (!frame.hidden) frame.focus();
  });
  document.body.appendChild(frame);
  document.body.appendChild(button);
})();
