/* reportgen report: matrix selector, cell-text switch, model filter, sortable tables.
   Vanilla JS, no dependencies, no network; everything degrades to the full static page. */
(function () {
  "use strict";

  var select = document.getElementById("mx-select");
  if (select) {
    select.addEventListener("change", function () {
      var v = select.value;
      document.querySelectorAll("section.mx").forEach(function (s) {
        s.hidden = v !== "all" && s.id !== v;
      });
    });
  }

  var text = document.getElementById("mx-text");
  if (text) {
    text.addEventListener("change", function () {
      document.body.classList.toggle("show-head", text.value === "head");
    });
  }

  // GPU columns: hide every column under an unticked GPU header (colspans give the ranges)
  function applyGpuFilter() {
    var off = {};
    document.querySelectorAll("input.gpu-toggle").forEach(function (box) { off[box.value] = !box.checked; });
    document.querySelectorAll("table.matrix").forEach(function (table) {
      var head = table.tHead.querySelector("tr.mx-gpu");
      var hidden = [], col = 1;
      Array.prototype.forEach.call(head.cells, function (th, i) {
        if (i === 0) { return; }
        var span = th.colSpan, hide = !!off[th.getAttribute("data-gpu")];
        th.hidden = hide;
        for (var k = 0; k < span; k++) { hidden[col + k] = hide; }
        col += span;
      });
      Array.prototype.forEach.call(table.rows, function (row) {
        if (row === head || row.cells.length < 2) { return; }
        for (var c = 1; c < row.cells.length; c++) { row.cells[c].hidden = !!hidden[c]; }
      });
    });
  }
  document.querySelectorAll("input.gpu-toggle").forEach(function (box) {
    box.addEventListener("change", applyGpuFilter);
  });

  var filter = document.getElementById("model-filter");
  if (filter) {
    filter.addEventListener("input", function () {
      var q = filter.value.trim().toLowerCase();
      document.querySelectorAll("[data-model]").forEach(function (el) {
        el.hidden = q !== "" && el.getAttribute("data-model").toLowerCase().indexOf(q) < 0;
      });
    });
  }

  function cellValue(row, i, numeric) {
    var cell = row.cells[i];
    if (!cell) { return numeric ? -Infinity : ""; }
    var raw = cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : cell.textContent.trim();
    if (!numeric) { return raw.toLowerCase(); }
    var n = parseFloat(raw);
    return isNaN(n) ? -Infinity : n;
  }

  document.querySelectorAll("table.sortable").forEach(function (table) {
    var headers = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(headers, function (th, i) {
      if (!th.hasAttribute("data-sort")) { return; }
      th.tabIndex = 0;
      th.setAttribute("aria-sort", "none");
      var sort = function () {
        var numeric = th.getAttribute("data-sort") === "n";
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(headers, function (h) { if (h.hasAttribute("data-sort")) { h.setAttribute("aria-sort", "none"); } });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = cellValue(a, i, numeric), y = cellValue(b, i, numeric);
          return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
    });
  });
})();
