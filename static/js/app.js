// Keyboard helpers shared by the queues: "/" focuses search; j/k move between rows marked
// data-row; Enter opens the selected row (or the first one when none is selected); shortcut keys
// declared with data-key click a button or focus a field. A button marked data-confirm (a decision
// with warnings) asks for one confirming key: the same key again (or y) goes ahead, Esc cancels.
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
  function openRow(row) { var link = row && (row.querySelector("a[data-open]") || row.querySelector("a")); if (link) link.click(); }
  var armed = null;
  function disarm() {
    armed = null;
    var box = document.querySelector("[data-confirm-box]"); if (box) box.hidden = true;
  }
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (typing(document.activeElement)) { if (e.key === "Escape") document.activeElement.blur(); return; }
    if (e.key === "Escape" && armed) { disarm(); return; }
    if (armed && (e.key === armed.getAttribute("data-key") || e.key === "y")) {
      e.preventDefault(); var go = armed; armed = null; go.click(); return;
    }
    if (armed) disarm();
    if (e.key === "/") { var q = document.getElementById("quick-q") || document.getElementById("queue-q"); if (q) { e.preventDefault(); q.focus(); } return; }
    if (e.key === "j") { select(current() + 1); return; }
    if (e.key === "k") { select(current() - 1); return; }
    if (e.key === "Enter") {
      var active = document.activeElement;
      if (!active || active === document.body || active.id === "main") {
        var all = rows(); var index = current();
        if (all.length) { e.preventDefault(); openRow(all[index >= 0 ? index : 0]); }
      }
      return;
    }
    var target = document.querySelector('[data-key="' + e.key + '"]');
    if (!target) return;
    e.preventDefault();
    if (target.tagName === "INPUT" || target.tagName === "TEXTAREA") { target.focus(); return; }
    if (target.hasAttribute("data-confirm")) {
      armed = target;
      var box = document.querySelector("[data-confirm-box]");
      if (box) { box.hidden = false; }
      return;
    }
    target.click();
  });
  // Filter forms marked data-autosubmit apply a toggle or a choice as soon as it changes.
  document.addEventListener("change", function (e) {
    var form = e.target.form;
    if (form && form.hasAttribute("data-autosubmit") && (e.target.type === "checkbox" || e.target.tagName === "SELECT")) form.submit();
  });
  // Links marked data-back go to the previous page (error pages offer it next to the dashboard).
  document.addEventListener("click", function (e) {
    var link = e.target.closest && e.target.closest("a[data-back]");
    if (link && window.history.length > 1) { e.preventDefault(); window.history.back(); }
  });
})();
