// One-tap kiosk: after a tap, the page goes back to the faces for the next person after a
// while. The "more time" button gives the person another minute (WCAG 2.2.1); without script a
// <noscript> refresh does the reset.
(function () {
  "use strict";
  var body = document.body;
  var to = body.getAttribute("data-reset-to");
  var seconds = parseInt(body.getAttribute("data-reset-seconds"), 10);
  if (!to || !(seconds > 0)) { return; }
  var timer = window.setTimeout(function () { window.location.href = to; }, seconds * 1000);
  var more = document.getElementById("more-time");
  if (more) {
    more.hidden = false;
    more.addEventListener("click", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(function () { window.location.href = to; }, 60000);
    });
  }
})();
