/*
 * Frontier page: GET /api/v1/frontier/?suite=…&q=… drawn with Plotly (served from our own static
 * files): the checkpoints (colour = N, size = V, symbol = compressor), the measured Pareto frontier, the
 * chosen law's curve per N and its law-optimal curve (of the chosen compressor, or of all together).
 * Changing Q, the compressor, the FLOPs formula or the law refetches and redraws without a reload, and so does a change of
 * the data version (a result landed, a fit changed).
 */
(function () {
  "use strict";

  const plot = document.getElementById("frontier-plot");
  if (!plot || !window.Plotly) return;
  const form = document.getElementById("frontier-controls");
  const status = document.getElementById("frontier-status");
  const decision = document.getElementById("frontier-decision");
  const apiUrl = plot.dataset.apiUrl;
  const query = new URLSearchParams(plot.dataset.query);
  let law = plot.dataset.law;
  let clickBound = false;
  let loading = null;

  // Plotly's Viridis, so the law's curves get the colour of their N's points.
  const VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"];

  function colourOf(n, low, high) {
    const t = high > low ? (Math.log(n) - Math.log(low)) / (Math.log(high) - Math.log(low)) : 0.5;
    return VIRIDIS[Math.min(VIRIDIS.length - 1, Math.max(0, Math.round(t * (VIRIDIS.length - 1))))];
  }

  const markerSize = (tokens) => 7 + 2.5 * Math.log2(Math.max(1, tokens));
  const SYMBOLS = ["circle", "diamond", "square", "triangle-up", "cross", "x", "star", "pentagon"];
  const symbolOf = (methods, method) => SYMBOLS[Math.max(0, methods.indexOf(method)) % SYMBOLS.length];
  const sci = (value) => (value === null || value === undefined ? "—" : Number(value).toPrecision(3).replace("e+", "e"));

  function traces(data) {
    const points = data.points;
    const sizes = points.map((p) => p.n_params_b);
    const low = Math.min(...sizes);
    const high = Math.max(...sizes);
    const methods = [...new Set(points.map((p) => p.compressor))].sort();
    const shown = [
      {
        name: "checkpoints",
        type: "scatter",
        mode: "markers",
        x: points.map((p) => p.flops),
        y: points.map((p) => p.error),
        text: points.map((p) => p.name),
        customdata: points.map((p) => [p.id, p.n_params_b, p.visual_tokens, `${p.compressor}/${p.compressor_version}`]),
        hovertemplate: "<b>%{text}</b><br>N = %{customdata[1]} B, V = %{customdata[2]}, %{customdata[3]}"
          + "<br>FLOPs %{x:.3s}, error %{y:.4f}<extra></extra>",
        marker: {
          color: points.map((p) => Math.log10(p.n_params_b)),
          colorscale: "Viridis",
          cmin: Math.log10(low),
          cmax: Math.log10(high) + (high > low ? 0 : 1),
          size: points.map((p) => markerSize(p.visual_tokens)),
          symbol: points.map((p) => symbolOf(methods, p.compressor)),
          line: { width: points.map((p) => (p.on_frontier ? 2 : 0.5)), color: "#1f2328" },
          colorbar: {
            title: { text: "N (B)" },
            tickvals: [...new Set(sizes)].map(Math.log10),
            ticktext: [...new Set(sizes)].map((n) => String(n)),
          },
        },
      },
      {
        name: "measured Pareto frontier",
        type: "scatter",
        mode: "lines",
        line: { shape: "hv", color: "#b3261e", width: 2 },
        x: data.frontier.map((f) => f.flops),
        y: data.frontier.map((f) => f.error),
        hoverinfo: "skip",
      },
    ];
    const fit = data.laws.find((entry) => entry.law === law) || data.laws[0];
    if (fit) {
      fit.per_n.forEach((curve) =>
        shown.push({
          name: `${fit.law} law, N = ${Number(curve.n_params_b.toPrecision(3))} B`,
          legendgroup: "law",
          type: "scatter",
          mode: "lines",
          line: { dash: "dot", color: colourOf(curve.n_params_b, low, high) },
          x: curve.flops,
          y: curve.error,
          customdata: curve.visual_tokens,
          hovertemplate: `law, N = ${Number(curve.n_params_b.toPrecision(3))} B, V = %{customdata:.3g}<br>FLOPs %{x:.3s}, error %{y:.4f}<extra></extra>`,
        })
      );
      shown.push({
        name: `${fit.law} law-optimal`,
        type: "scatter",
        mode: "lines",
        line: { color: "#0b57d0", width: 3 },
        x: fit.optimal.map((o) => o.flops),
        y: fit.optimal.map((o) => o.predicted_error),
        customdata: fit.optimal.map((o) => [o.n_params_b, o.visual_tokens]),
        hovertemplate: "law-optimal: N = %{customdata[0]:.3g} B, V = %{customdata[1]:.3g}<br>FLOPs %{x:.3s}, "
          + "error %{y:.4f}<extra></extra>",
      });
    }
    return { shown, fit };
  }

  function describe(data) {
    if (!data.points.length) {
      const compressor = query.get("compressor");
      const none = `No checkpoint with N and V${compressor ? ` and compressor ${compressor}` : ""} has a score on this suite yet.`;
      return data.note ? `${none} ${data.note}` : none;
    }
    const counted = `${data.points.length} checkpoints, ${data.frontier.length} on the measured frontier at Q = ${data.query_tokens}.`;
    return data.note ? `${counted} ${data.note}` : counted;
  }

  function decisionText(fit, q) {
    if (!fit) return "";
    const interval = fit.v_star_interval ? ` (95 % interval ${sci(fit.v_star_interval[0])} to ${sci(fit.v_star_interval[1])})` : "";
    const vStar = fit.v_star === null || fit.v_star === undefined ? "" : ` Law-optimal visual tokens V*(Q = ${q}) ≈ ${sci(fit.v_star)}${interval}.`;
    const scope = fit.scope === "all" ? "all compressors together" : fit.scope;
    const exponents = ["alpha", "beta"].filter((name) => name in fit.params).map((name) => {
      const range = fit.intervals && fit.intervals[name];
      return `${name === "alpha" ? "α" : "β"} = ${sci(fit.params[name])}${range ? ` [${sci(range[0])}, ${sci(range[1])}]` : ""}`;
    });
    return `${fit.law}: ${fit.formula} fitted on ${fit.n_points} points (${scope}); ${exponents.join(", ")}.${vStar}`;
  }

  async function load() {
    const params = new URLSearchParams(query);
    const { data } = await window.Frontier.api("GET", `${apiUrl}?${params}`);
    const { shown, fit } = traces(data);
    const layout = {
      margin: { t: 20, r: 20 },
      xaxis: { type: "log", title: { text: `inference FLOPs (formula ${data.flops_formula_version}), at Q = ${data.query_tokens}` } },
      yaxis: { title: { text: "error (1 − normalised score)" } },
      legend: { orientation: "h", y: -0.2 },
      hovermode: "closest",
    };
    await window.Plotly.react(plot, shown, layout, { responsive: true, displaylogo: false });
    status.textContent = describe(data);
    decision.textContent = decisionText(fit, data.query_tokens);
    const formula = document.getElementById("frontier-formula");
    if (formula) {
      formula.dataset.version = data.flops_formula_version;
      formula.textContent = `FLOPs formula ${data.flops_formula}. The compressor's own FLOPs are not counted.`;
    }
    plot.dataset.loadedVersion = data.version;
    if (!clickBound) {
      plot.on("plotly_click", (event) => {
        const point = event.points && event.points[0];
        if (point && point.data.name === "checkpoints") window.location.href = `/checkpoints/${point.customdata[0]}/`;
      });
      clickBound = true;
    }
  }

  /** One load at a time; a request made meanwhile runs once the current one ends. */
  async function reload() {
    const previous = loading;
    loading = (async () => {
      if (previous) await previous.catch(() => {});
      try {
        await load();
      } catch (error) {
        status.textContent = error.message;
        status.className = "errors";
        return;
      }
      status.className = "hint";
    })();
    return loading;
  }

  function chosenQ() {
    const choice = form.querySelector("input[name=q]:checked");
    if (!choice) return "50";
    return choice.value === "custom" ? document.getElementById("q-custom").value.trim() : choice.value;
  }

  function onControlsChange(event) {
    if (event.target.id === "q-custom") form.querySelector("input[name=q][value=custom]").checked = true;
    const q = chosenQ();
    if (!q) return; // "custom" with nothing typed yet
    query.set("q", q);
    const compressor = form.elements.namedItem("compressor").value;
    if (compressor) query.set("compressor", compressor);
    else query.delete("compressor");
    const flops = form.elements.namedItem("flops").value;
    if (flops && flops !== "v1") query.set("flops", flops);
    else query.delete("flops");
    law = form.elements.namedItem("law").value;
    const pageQuery = new URLSearchParams(query);
    pageQuery.set("law", law);
    window.history.replaceState(null, "", `?${pageQuery}`);
    reload();
  }

  form.addEventListener("change", onControlsChange);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    onControlsChange(event);
  });
  reload();
  window.Frontier.watchVersion(plot.dataset.version, reload);
})();
