/* The report's chart: emails sent, opened and clicked per day (bars) and the revenue they earned (line). */
(function () {
  "use strict";

  function draw() {
    var canvas = document.getElementById("report-chart");
    var source = document.getElementById("report-chart-data");
    if (!canvas || !source || typeof Chart === "undefined") return;
    var data = JSON.parse(source.textContent);
    var money = new Intl.NumberFormat(undefined, { style: "currency", currency: data.currency, maximumFractionDigits: 0 });
    var days = data.labels.map(function (iso) {
      var parts = iso.split("-");
      return new Date(Number(parts[0]), Number(parts[1]) - 1, Number(parts[2]))
        .toLocaleDateString(undefined, { month: "short", day: "numeric" });
    });
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.color = "#78716c";
    new Chart(canvas, {
      data: {
        labels: days,
        datasets: [
          { type: "bar", label: "Sent", data: data.sent, backgroundColor: "#d6d3d1", borderRadius: 3, yAxisID: "emails", order: 3 },
          { type: "bar", label: "Opened", data: data.opened, backgroundColor: "#5eead4", borderRadius: 3, yAxisID: "emails", order: 2 },
          { type: "bar", label: "Clicked", data: data.clicked, backgroundColor: "#0f766e", borderRadius: 3, yAxisID: "emails", order: 1 },
          { type: "line", label: "Revenue", data: data.revenue, borderColor: "#d97706", backgroundColor: "#d97706", yAxisID: "revenue",
            cubicInterpolationMode: "monotone", pointRadius: data.labels.length > 60 ? 0 : 2.5, borderWidth: 2, order: 0 }
        ]
      },
      options: {
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: { position: "top", align: "end", labels: { boxWidth: 12, boxHeight: 12, useBorderRadius: true, borderRadius: 3,
            sort: function (a, b) { return a.datasetIndex - b.datasetIndex; } } },
          tooltip: { callbacks: { label: function (item) {
            return item.dataset.yAxisID === "revenue" ? " Revenue: " + money.format(item.parsed.y) : " " + item.dataset.label + ": " + item.parsed.y;
          } } }
        },
        scales: {
          x: { grid: { display: false }, ticks: { maxRotation: 0, autoSkipPadding: 12 } },
          emails: { position: "left", beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "emails" }, grid: { color: "#f5f5f4" } },
          revenue: { position: "right", beginAtZero: true, grid: { display: false }, title: { display: true, text: "revenue" },
            ticks: { callback: function (value) { return money.format(value); } } }
        }
      }
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
