// Keyboard-only entry of paper forms: one keystroke per answer, automatic advance.
// Digits pick the option with that key in the current question and move on; Backspace goes back
// one question; in multi-choice questions digits toggle and Enter moves on; in text boxes Enter
// moves on. After the last question a summary is shown and Enter saves. Without this script the
// page is an ordinary form.
(function () {
  "use strict";
  var form = document.getElementById("entry");
  if (!form) return;
  var questions = Array.prototype.slice.call(form.querySelectorAll("fieldset.q"));
  var counter = document.getElementById("keystrokes");
  var summary = document.getElementById("summary");
  var save = document.getElementById("save");
  var current = 0;
  var keys = 0;

  function focusQuestion(i) {
    current = Math.max(0, Math.min(i, questions.length));
    questions.forEach(function (q, n) { q.classList.toggle("current", n === current); });
    if (current === questions.length) { showSummary(); return; }
    var q = questions[current];
    var text = q.querySelector("textarea");
    (text || q).focus();
    q.scrollIntoView({ block: "center" });
  }

  function answerOf(q) {
    var checked = Array.prototype.slice.call(q.querySelectorAll("input:checked"));
    if (checked.length) return checked.map(function (c) { return c.getAttribute("data-key"); }).join("+");
    var text = q.querySelector("textarea");
    return text && text.value ? "✎" : "–";
  }

  function showSummary() {
    summary.textContent = questions.map(function (q) { return q.getAttribute("data-code") + "=" + answerOf(q); }).join("  ");
    summary.hidden = false;
    save.focus();
  }

  form.addEventListener("keydown", function (e) {
    keys += 1;
    counter.value = String(keys);
    if (current >= questions.length) {
      if (e.key === "Backspace") { e.preventDefault(); summary.hidden = true; focusQuestion(questions.length - 1); }
      return;
    }
    var q = questions[current];
    var multi = q.getAttribute("data-type") === "multi";
    if (e.target.tagName === "TEXTAREA") {
      if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); focusQuestion(current + 1); }
      return;
    }
    if (/^[0-9]$/.test(e.key)) {
      var input = q.querySelector('input[data-key="' + e.key + '"]');
      if (!input) return;
      e.preventDefault();
      if (multi) { input.checked = !input.checked; } else { input.checked = true; focusQuestion(current + 1); }
    } else if (e.key === "Enter") {
      e.preventDefault();
      focusQuestion(current + 1);
    } else if (e.key === "Backspace") {
      e.preventDefault();
      focusQuestion(current - 1);
    }
  });

  questions.forEach(function (q, n) {
    q.tabIndex = -1;
    q.addEventListener("click", function () { current = n; });
  });
  save.addEventListener("keydown", function (e) { if (e.key === "Enter") { counter.value = String(keys + 1); } });
  var first = questions.findIndex(function (q) { return !q.querySelector("input:checked"); });
  focusQuestion(first < 0 ? 0 : first);
})();
