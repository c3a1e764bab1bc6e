/* Compressors page: for each fit scope, residuals (measured − predicted error) against the
 * prediction, one trace per law; the data is embedded in the page (the compressor table's). */
(function () {
  "use strict";

  const source = document.getElementById("residual-data");
  if (!source || !window.Plotly) return;
  const scopes = JSON.parse(source.textContent);

  document.querySelectorAll(".residual-plot").forEach((node) => {
    const scope = scopes[Number(node.dataset.scopeIndex)];
    const traces = scope.laws.map((entry) => ({
      name: entry.law,
      type: "scatter",
      mode: "markers",
      x: entry.residuals.map((r) => r.predicted),
      y: entry.residuals.map((r) => r.residual),
      customdata: entry.residuals.map((r) => [r.llm_params_b, r.visual_tokens, r.error]),
      hovertemplate: `${entry.law}: N = %{customdata[0]} B, V = %{customdata[1]}<br>`
        + "measured %{customdata[2]:.4f}, predicted %{x:.4f}, residual %{y:.4f}<extra></extra>",
    }));
    window.Plotly.newPlot(node, traces, {
      margin: { t: 10, r: 10 },
      height: 260,
      xaxis: { title: { text: "predicted error" } },
      yaxis: { title: { text: "residual" }, zeroline: true },
      legend: { orientation: "h" },
    }, { responsive: true, displaylogo: false });
  });
})();
