// Shows the PEP 13 verdict while the promotion vote is typed (the server checks it again).
(function () {
  const form = document.getElementById("start-form");
  const out = document.getElementById("pep13");
  if (!form || !out) return;
  const value = (name) => form.elements[name] && form.elements[name].value;
  const plural = (count, noun) => count + " " + noun + (count === 1 ? "" : "s");
  function update() {
    const yes = parseInt(value("votes_for"), 10), no = parseInt(value("votes_against"), 10);
    const opened = value("vote_opened"), closed = value("vote_closed");
    if (isNaN(yes) || isNaN(no) || !opened || !closed) return;
    const problems = [];
    if (yes + no === 0) problems.push("no votes were cast");
    else if (yes * 3 < (yes + no) * 2) problems.push(yes + " of " + (yes + no) + " votes in favour is less than two-thirds");
    const days = Math.round((Date.parse(closed) - Date.parse(opened)) / 86400000);
    // Dates typed the wrong way round are a typo to point at, not a vote open "-9 days".
    if (days < 0) problems.push("the vote cannot close before it opened");
    else if (days < 7) problems.push("the vote was open " + plural(days, "day") + ", PEP 13 asks for 7");
    out.className = "pep13 " + (problems.length ? "bad" : "ok");
    out.textContent = problems.length
      ? "✗ Fails PEP 13: " + problems.join("; ") + ". Give an override reason to promote anyway."
      : "✓ Meets PEP 13: at least two-thirds in favour, open at least a week.";
  }
  form.addEventListener("input", update);
  update();
})();

// A button that changes something from a list asks first (the server checks the CSRF token
// and the commit either way; without JavaScript the press goes straight through).
document.addEventListener("submit", function (event) {
  const question = event.target.getAttribute && event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) event.preventDefault();
});

// "Copy the Markdown": the button shows only where JavaScript can copy, and says it copied.
document.querySelectorAll("button[data-copy]").forEach(function (button) {
  const source = document.getElementById(button.getAttribute("data-copy"));
  const status = button.parentElement.querySelector(".copied");
  if (!source) return;
  button.hidden = false;
  button.addEventListener("click", function () {
    const said = (words) => { if (status) status.textContent = words; };
    function fallback() {
      source.focus();
      source.select();
      said(document.execCommand("copy") ? "Copied." : "Selected: press Ctrl+C (⌘C) to copy.");
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(source.value).then(() => said("Copied."), fallback);
    } else {
      fallback();
    }
  });
});
