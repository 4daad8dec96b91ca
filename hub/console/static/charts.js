// Traffic charts: uPlot (vendored) over the figures the page carries as JSON. Without
// JavaScript the tables below the charts give the same numbers.
(function () {
  "use strict";
  var COLOURS = ["#0b3d63", "#137333", "#b3261e", "#9a6700", "#6f42c1", "#1f6feb", "#bf3989"];
  function draw(element, minutes, named) {
    var names = Object.keys(named);
    if (!names.length || typeof uPlot === "undefined") return;
    var series = [{}].concat(names.map(function (name, i) {
      return { label: name, stroke: COLOURS[i % COLOURS.length], width: 2, spanGaps: true };
    }));
    var data = [minutes].concat(names.map(function (name) { return named[name]; }));
    var width = Math.max(320, element.clientWidth || 900);
    new uPlot({ width: width, height: 220, series: series }, data, element);
    element.setAttribute("data-drawn", "yes");
  }
  document.addEventListener("DOMContentLoaded", function () {
    var source = document.getElementById("traffic-data");
    if (!source) return;
    var figures = JSON.parse(source.textContent);
    document.querySelectorAll("[data-chart]").forEach(function (element) {
      var key = element.getAttribute("data-chart");
      draw(element, figures.minutes, figures[key]);
    });
  });
})();
