// Keyboard helpers shared by the queues: "/" focuses search; j/k move between rows marked
// data-row; Enter opens the selected row; shortcut keys declared with data-key click a button.
(function () {
  function typing(el) { return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable); }
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("[data-row]")); }
  function select(index) {
    var all = rows(); if (!all.length) return;
    index = Math.max(0, Math.min(all.length - 1, index));
    all.forEach(function (r) { r.classList.remove("selected"); r.removeAttribute("aria-selected"); });
    all[index].classList.add("selected"); all[index].setAttribute("aria-selected", "true");
    var link = all[index].querySelector("a"); if (link) link.focus();
  }
  function current() { return rows().findIndex(function (r) { return r.classList.contains("selected"); }); }
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (typing(document.activeElement)) { if (e.key === "Escape") document.activeElement.blur(); return; }
    if (e.key === "/") { var q = document.getElementById("quick-q"); if (q) { e.preventDefault(); q.focus(); } return; }
    if (e.key === "j") { select(current() + 1); return; }
    if (e.key === "k") { select(current() - 1); return; }
    var target = document.querySelector('[data-key="' + e.key + '"]');
    if (target) { e.preventDefault(); if (target.tagName === "INPUT" || target.tagName === "TEXTAREA") target.focus(); else target.click(); }
  });
})();
