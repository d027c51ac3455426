// Desk screen: replaces the QR when the server says the desk's survey changed (server-sent
// events). Without script the page reloads itself every two seconds instead.
(function () {
  "use strict";
  var body = document.body;
  var source = body.getAttribute("data-events");
  if (!source || !window.EventSource) {
    window.setTimeout(function () { window.location.reload(); }, 2000);
    return;
  }
  var events = new EventSource(source);
  events.addEventListener("screen", function (e) {
    var data = JSON.parse(e.data);
    if (data.key === body.getAttribute("data-key")) { return; }
    document.getElementById("screen").innerHTML = data.html;
    body.setAttribute("data-key", data.key);
  });
  // Revoked, or the server could not answer: the page itself says what is wrong.
  events.addEventListener("gone", function () {
    events.close();
    window.setTimeout(function () { window.location.reload(); }, 1000);
  });
})();
