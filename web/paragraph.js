/* The paragraph page: bring the cited paragraph into view (it can be screens down on a phone). */
(function () {
  "use strict";
  var cited = document.querySelector(".cited");
  if (!cited) return;
  cited.scrollIntoView({ block: "center" });  /* the back link stays on top (sticky) */
  cited.focus({ preventScroll: true });
})();
