// Times in the reader's own time zone. The server writes every <time datetime> in UTC and
// says so ("Dec 21, 2026, 14:05 UTC"); where the browser knows its zone, this rewrites the
// exact time (and a date's day) into it. Without JavaScript the UTC stays, still labelled.
(function () {
  let day, clock;
  try {
    day = new Intl.DateTimeFormat("en-US", { month: "short", day: "numeric", year: "numeric" });
    clock = new Intl.DateTimeFormat("en-US", {
      hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short",
    });
  } catch (error) {
    return;
  }
  for (const element of document.querySelectorAll("time[datetime]")) {
    const value = element.getAttribute("datetime");
    // A calendar day (a vote's dates) is the same day everywhere: nothing to convert.
    if (value.length <= 10) continue;
    const moment = new Date(value);
    if (isNaN(moment.getTime())) continue;
    const exact = day.format(moment) + ", " + clock.format(moment);
    if (element.classList.contains("exact-time")) {
      element.textContent = exact;
      continue;
    }
    const detail = element.querySelector(".exact");
    if (detail) detail.textContent = " (" + exact + ")";
    if (element.title) element.title = exact;
    if (element.classList.contains("day") && element.firstChild.nodeType === Node.TEXT_NODE) {
      element.firstChild.textContent = day.format(moment);
    }
  }
})();
