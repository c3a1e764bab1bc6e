/*
 * Training pages.
 *
 * Forms (#training-form, #sweep-form) become the JSON of POST /api/v1/trainings/ or /api/v1/sweeps/:
 * fields left empty are left out (the server's defaults apply), values are sent as typed, so the
 * API's own messages ("hyperparameters.batch_size: A valid integer is required.", or the trainer's
 * check "compressor 'quecc' does not support V=5 …") are shown verbatim. On 201 the page opens the
 * new run or sweep.
 *
 * The run page (#training-detail) draws the loss curve from GET /api/v1/trainings/<id>/?since=STEP,
 * first the whole stored curve (since=0), then every two seconds only the steps after the last one
 * drawn, with the progress, ETA and state; the cancel button POSTs /cancel/.
 */
(function () {
  "use strict";

  const { api, ApiError, sleep } = window.Frontier;
  const POLL_MS = 2000;
  const TERMINAL = ["succeeded", "failed", "cancelled"];
  const CHECKPOINT_SETTLED = ["ready", "rejected"];
  const HYPERPARAMETERS = [
    "learning_rate", "batch_size", "gradient_accumulation", "max_steps", "epochs", "warmup_steps", "lr_schedule",
    "weight_decay", "max_grad_norm", "seed", "precision", "save_every",
  ];

  // --- forms -------------------------------------------------------------------------------------------

  const field = (form, name) => {
    const element = form.elements.namedItem(name);
    return element && element.value !== undefined ? element.value.trim() : "";
  };

  const listOf = (text) => text.split(",").map((part) => part.trim()).filter(Boolean);

  function putIfGiven(target, key, value) {
    if (value !== "" && value !== undefined) target[key] = value;
  }

  function tinyModel(form, hidden) {
    const tiny = {};
    putIfGiven(tiny, "llm_hidden", hidden);
    putIfGiven(tiny, "llm_layers", field(form, "llm_layers"));
    putIfGiven(tiny, "llm_family", field(form, "llm_family"));
    putIfGiven(tiny, "seed", field(form, "tiny_seed"));
    return tiny;
  }

  /** Stage, dataset, hyper-parameters, suites, evaluation limit and visibility. */
  function sharedSpec(form) {
    const spec = { name: field(form, "name"), stage: field(form, "stage") };
    const kind = field(form, "dataset_kind");
    spec.dataset = { kind };
    if (kind === "llava") {
      putIfGiven(spec.dataset, "json", field(form, "dataset_json"));
      putIfGiven(spec.dataset, "images", field(form, "dataset_images"));
    } else {
      putIfGiven(spec.dataset, "count", field(form, "dataset_count"));
    }
    spec.hyperparameters = {};
    HYPERPARAMETERS.forEach((name) => putIfGiven(spec.hyperparameters, name, field(form, name)));
    spec.suites = Array.from(form.querySelectorAll("input[name=suites]:checked"), (box) => box.value);
    putIfGiven(spec, "eval_limit", field(form, "eval_limit"));
    spec.visibility = form.querySelector("input[name=visibility]:checked").value;
    return spec;
  }

  function trainingSpec(form) {
    const spec = sharedSpec(form);
    const baseKind = form.querySelector("input[name=base_kind]:checked").value;
    spec.base = baseKind === "checkpoint"
      ? { checkpoint: field(form, "base_checkpoint") }
      : { tiny: tinyModel(form, field(form, "llm_hidden")) };
    spec.compressor = field(form, "compressor");
    spec.tokens = field(form, "tokens");
    putIfGiven(spec, "compressor_from", field(form, "compressor_from"));
    return spec;
  }

  function sweepSpec(form) {
    const spec = sharedSpec(form);
    const checkpoints = form.querySelector("select[name=base_checkpoints]");
    spec.bases = [
      ...listOf(field(form, "tiny_hidden_sizes")).map((hidden) => ({ tiny: tinyModel(form, hidden) })),
      ...(checkpoints ? Array.from(checkpoints.selectedOptions, (option) => ({ checkpoint: option.value })) : []),
    ];
    spec.compressors = Array.from(form.querySelectorAll("input[name=compressors]:checked"), (box) => box.value);
    spec.tokens = listOf(field(form, "tokens"));
    return spec;
  }

  function showBaseFields(form) {
    const chosen = form.querySelector("input[name=base_kind]:checked");
    if (!chosen) return;
    form.querySelectorAll("[data-base]").forEach((node) => {
      node.hidden = node.dataset.base !== chosen.value;
    });
  }

  function setUpForm(form, buildSpec, pageOf) {
    const errors = document.getElementById("form-errors");
    const phase = document.getElementById("form-phase");
    const button = form.querySelector("button[type=submit]");
    showBaseFields(form);
    form.addEventListener("change", () => showBaseFields(form));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      errors.hidden = true;
      button.disabled = true;
      phase.textContent = "Checking the configuration (the trainer's own checks take a few seconds)…";
      try {
        const { data } = await api("POST", form.dataset.apiUrl, buildSpec(form));
        phase.textContent = "Queued.";
        window.location.assign(pageOf(data));
      } catch (error) {
        errors.textContent = error.message;
        errors.hidden = false;
        phase.textContent = "Nothing was queued.";
        button.disabled = false;
      }
    });
  }

  const trainingForm = document.getElementById("training-form");
  if (trainingForm) setUpForm(trainingForm, trainingSpec, (run) => `/trainings/${run.id}/`);
  const sweepForm = document.getElementById("sweep-form");
  if (sweepForm) setUpForm(sweepForm, sweepSpec, (sweep) => `/sweeps/${sweep.id}/`);

  // --- the run page -------------------------------------------------------------------------------------

  const detail = document.getElementById("training-detail");
  if (!detail || !window.Plotly) return;
  const plot = document.getElementById("loss-plot");
  const lossStatus = document.getElementById("loss-status");
  const cancelButton = document.getElementById("cancel-training");
  const errorBox = document.getElementById("training-error");
  let lastStep = 0;
  let resumedFrom = null;
  let drawn = false;

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    const total = Math.round(seconds);
    if (total < 60) return `${total} s`;
    if (total < 3600) return `${Math.floor(total / 60)} min ${total % 60} s`;
    return `${Math.floor(total / 3600)} h ${Math.floor((total % 3600) / 60)} min`;
  }

  function showRun(run) {
    const state = document.getElementById("training-state");
    state.textContent = run.state;
    state.className = `state state-${run.state}`;
    const progress = document.getElementById("training-progress");
    progress.max = run.steps_total || 1;
    progress.value = run.steps_done;
    document.getElementById("training-progress-text").textContent = run.steps_total
      ? `${run.steps_done} / ${run.steps_total} steps (${Math.floor((run.progress || 0) * 100)} %)`
      : `${run.steps_done} steps`;
    document.getElementById("training-eta").textContent = duration(run.eta_seconds);
    document.getElementById("training-last-loss").textContent = run.last_loss === null ? "—" : run.last_loss.toPrecision(4);
    document.getElementById("training-resumed").textContent = String(run.resumed_from_step);
    const checkpointCell = document.getElementById("training-checkpoint");
    if (run.checkpoint) {
      const link = document.createElement("a");
      link.href = `/checkpoints/${run.checkpoint.id}/`;
      link.textContent = `#${run.checkpoint.id}`;
      checkpointCell.replaceChildren(link, ` (${run.checkpoint.status})`);
    }
    errorBox.textContent = run.error || "";
    errorBox.className = run.state === "failed" ? "errors" : "notice"; // a cancelled run's reason is no failure
    errorBox.hidden = !run.error;
    if (cancelButton) cancelButton.hidden = TERMINAL.includes(run.state); // only its owner has the button
    if (TERMINAL.includes(run.state)) document.getElementById("training-message").hidden = true;
  }

  async function drawLosses(losses) {
    if (!drawn) {
      await window.Plotly.newPlot(plot, [{
        name: "training loss", type: "scatter", mode: "lines", x: losses.steps, y: losses.loss,
        hovertemplate: "step %{x}: loss %{y:.4f}<extra></extra>",
      }], {
        margin: { t: 10, r: 10 }, xaxis: { title: { text: "optimizer step" } }, yaxis: { title: { text: "loss" } },
      }, { responsive: true, displaylogo: false });
      drawn = true;
    } else if (losses.steps.length) {
      await window.Plotly.extendTraces(plot, { x: [losses.steps], y: [losses.loss] }, [0]);
    }
    const points = plot.data[0].x.length;
    lossStatus.textContent = points
      ? `${points} point${points === 1 ? "" : "s"} up to step ${losses.last_step}${losses.downsampled ? " (long stretches averaged)" : ""}.`
      : "No loss recorded yet: the curve appears once training starts.";
  }

  async function poll() {
    for (;;) {
      let run;
      try {
        run = (await api("GET", `${detail.dataset.apiUrl}?since=${lastStep}`)).data;
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) {
          lossStatus.textContent = error.message;
          return;
        }
        await sleep(error instanceof ApiError && error.retryAfterMs ? error.retryAfterMs : POLL_MS * 2);
        continue;
      }
      if (resumedFrom !== null && run.resumed_from_step !== resumedFrom) {
        // A new attempt resumed from its last save and recomputes the steps after it: redraw from scratch.
        resumedFrom = run.resumed_from_step;
        lastStep = 0;
        drawn = false;
        continue;
      }
      resumedFrom = run.resumed_from_step;
      showRun(run);
      await drawLosses(run.losses);
      lastStep = run.losses.last_step;
      const settled = TERMINAL.includes(run.state)
        && (run.state !== "succeeded" || (run.checkpoint && CHECKPOINT_SETTLED.includes(run.checkpoint.status)));
      if (settled) return;
      await sleep(POLL_MS);
    }
  }

  if (cancelButton) cancelButton.addEventListener("click", async () => {
    cancelButton.disabled = true;
    try {
      const { data } = await api("POST", detail.dataset.cancelUrl);
      showRun(data);
      const message = document.getElementById("training-message");
      message.textContent = data.state === "cancelled"
        ? "Cancelled before it started."
        : "Cancel requested: the run saves its state and stops within seconds.";
      message.hidden = false;
    } catch (error) {
      errorBox.textContent = error.message;
      errorBox.hidden = false;
    } finally {
      cancelButton.disabled = false;
    }
  });

  poll();
})();
