// Reconciliation task page: on the row chosen with j/k (app.js), "a" accepts, "r" rejects and
// "n" focuses the note; a row is chosen automatically when none is.
(function () {
  function typing(el) { return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT"); }
  function chosen() {
    var row = document.querySelector("tr[data-discrepancy].selected");
    if (row && row.querySelector("[data-accept]")) return row;
    var open = Array.prototype.filter.call(document.querySelectorAll("tr[data-discrepancy]"), function (r) { return r.querySelector("[data-accept]"); });
    return open[0] || null;
  }
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var active = document.activeElement;
    if (typing(active)) {
      if (e.key === "Enter" && active.hasAttribute("data-note")) { return; } // Enter in a note accepts (form default)
      return;
    }
    var row = chosen(); if (!row) return;
    if (e.key === "a") { e.preventDefault(); row.querySelector("[data-accept]").click(); }
    else if (e.key === "r") { e.preventDefault(); row.querySelector("[data-reject]").click(); }
    else if (e.key === "n") { e.preventDefault(); row.querySelector("[data-note]").focus(); }
  });
})();
