/*
 * Upload page: the REST API's resumable chunked protocol, driven from the browser.
 *
 *   POST /api/v1/uploads/ {filename, size, sha256}  → {id, offset}
 *   PUT  /api/v1/uploads/<id>/  raw bytes, Content-Range: bytes START-END/TOTAL (START = offset)
 *   GET  /api/v1/uploads/<id>/  → {offset}: where to resume after a dropped connection
 *   POST /api/v1/uploads/<id>/complete/ {name, visibility, suites} → 201 new, 200 existing checkpoint
 *
 * Session cookie + X-CSRFToken authenticate every call. The upload id is remembered in
 * localStorage per file (name, size, last modified), so a reloaded page resumes too.
 * The SHA-256 is computed incrementally with js-sha256 (WebCrypto has no incremental digest).
 */
(function () {
  "use strict";

  const form = document.getElementById("upload-form");
  if (!form) return;

  const input = document.getElementById("archive-input");
  const dropZone = document.getElementById("drop-zone");
  const selectedLabel = document.getElementById("selected-file");
  const button = document.getElementById("upload-button");
  const errorBox = document.getElementById("upload-errors");
  const phase = document.getElementById("upload-phase");
  const progress = document.getElementById("upload-progress");
  const progressText = document.getElementById("upload-progress-text");
  const resultBox = document.getElementById("upload-result");
  const csrfToken = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const uploadsUrl = form.dataset.uploadsUrl;

  const HASH_SLICE_BYTES = 4 * 1024 * 1024;
  const MAX_CONSECUTIVE_FAILURES = 8;
  const POLL_MS = 1000;
  const FINAL_STATUSES = ["ready", "rejected"];
  const STORAGE_PREFIX = "frontier-upload:";

  let selectedFile = null;
  let pollGeneration = 0;

  // --- helpers ---------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function formatBytes(bytes) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
  }

  /** The API's own words: "detail", or every field error as "field: message". */
  function errorMessage(status, data, text) {
    if (data && typeof data === "object") {
      if (data.detail) return String(data.detail);
      const parts = Object.entries(data).map(([field, messages]) => `${field}: ${[].concat(messages).join(" ")}`);
      if (parts.length) return parts.join("; ");
    }
    const plain = (text || "").trim();
    // An HTML error page (a 5xx from the server or a proxy) says nothing useful in this box.
    return plain && !plain.startsWith("<") ? `HTTP ${status}: ${plain.slice(0, 300)}` : `The server answered HTTP ${status}.`;
  }

  function parseJson(text) {
    try {
      return text ? JSON.parse(text) : null;
    } catch (error) {
      return null;
    }
  }

  async function api(method, url, body) {
    const headers = { Accept: "application/json", "X-CSRFToken": csrfToken };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(url, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    const data = parseJson(text);
    if (!response.ok) throw new ApiError(errorMessage(response.status, data, text), response.status);
    return { status: response.status, data };
  }

  const uploadUrl = (id) => `${uploadsUrl}${id}/`;
  const fetchUpload = async (id) => (await api("GET", uploadUrl(id))).data;

  // --- page state --------------------------------------------------------------------------------

  function showErrors(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function clearErrors() {
    errorBox.textContent = "";
    errorBox.hidden = true;
  }

  function setPhase(text) {
    phase.textContent = text;
  }

  function showProgress(loaded, total) {
    progress.max = total;
    progress.value = loaded;
    const percent = total ? Math.floor((loaded * 100) / total) : 0;
    progressText.textContent = `${formatBytes(loaded)} of ${formatBytes(total)} (${percent} %)`;
    progress.dispatchEvent(new CustomEvent("upload:progress", { detail: { loaded, total } }));
  }

  function setBusy(busy) {
    button.disabled = busy;
    input.disabled = busy;
    dropZone.classList.toggle("busy", busy);
  }

  function chooseFile(file) {
    selectedFile = file;
    selectedLabel.textContent = file ? `${file.name} (${formatBytes(file.size)})` : "No file chosen.";
  }

  function submission() {
    return {
      name: form.elements.namedItem("name").value.trim(),
      visibility: form.querySelector("input[name=visibility]:checked").value,
      suites: Array.from(form.querySelectorAll("input[name=suites]:checked"), (box) => box.value),
    };
  }

  // --- remembered uploads (resume after a reload) ------------------------------------------------

  const storageKey = (file) => `${STORAGE_PREFIX}${file.name}:${file.size}:${file.lastModified}`;

  function rememberedUploadId(file) {
    const id = Number(window.localStorage.getItem(storageKey(file)));
    return Number.isInteger(id) && id > 0 ? id : null;
  }

  const rememberUpload = (file, id) => window.localStorage.setItem(storageKey(file), String(id));
  const forgetUpload = (file) => window.localStorage.removeItem(storageKey(file));

  // --- the protocol ------------------------------------------------------------------------------

  async function sha256Of(file) {
    const hasher = sha256.create();
    for (let start = 0; start < file.size; start += HASH_SLICE_BYTES) {
      const end = Math.min(start + HASH_SLICE_BYTES, file.size);
      hasher.update(await file.slice(start, end).arrayBuffer());
      setPhase(`Computing the SHA-256… ${Math.floor((end * 100) / file.size)} %`);
    }
    return hasher.hex();
  }

  /** PUT one chunk with XHR (fetch has no upload progress). Resolves with any HTTP answer,
   * rejects only when no answer came (dropped connection, abort, timeout). */
  function putChunk(id, blob, start, total, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("PUT", uploadUrl(id));
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.setRequestHeader("Content-Range", `bytes ${start}-${start + blob.size - 1}/${total}`);
      xhr.setRequestHeader("X-CSRFToken", csrfToken);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.onprogress = (event) => onProgress(event.loaded);
      xhr.onload = () => resolve({ status: xhr.status, data: parseJson(xhr.responseText), text: xhr.responseText });
      xhr.onerror = () => reject(new Error("the connection dropped"));
      xhr.onabort = () => reject(new Error("the request was aborted"));
      xhr.ontimeout = () => reject(new Error("the request timed out"));
      xhr.send(blob);
    });
  }

  async function sendChunks(upload, file, chunkBytes) {
    let offset = upload.offset;
    let failures = 0;
    showProgress(offset, file.size);
    while (offset < file.size) {
      const start = offset;
      const end = Math.min(start + chunkBytes, file.size);
      setPhase(`Uploading… byte ${start} of ${file.size}`);
      let answer = null;
      try {
        answer = await putChunk(upload.id, file.slice(start, end), start, file.size, (loaded) =>
          showProgress(start + loaded, file.size)
        );
      } catch (error) {
        answer = null;
      }
      if (answer && answer.status === 200 && answer.data) {
        offset = answer.data.offset;
        failures = 0;
        showProgress(offset, file.size);
        continue;
      }
      const retryable = !answer || answer.status >= 500 || answer.status === 429;
      if (!retryable) {
        // A 4xx can mean we were out of step with the server (it kept a chunk whose reply was lost).
        const server = await fetchUpload(upload.id);
        if (server.offset !== start) {
          offset = server.offset;
          continue;
        }
        throw new ApiError(errorMessage(answer.status, answer.data, answer.text), answer.status);
      }
      failures += 1;
      if (failures > MAX_CONSECUTIVE_FAILURES) {
        throw new Error(`The upload keeps failing at byte ${start}; press Upload again to resume from there.`);
      }
      const delay = Math.min(500 * 2 ** (failures - 1), 30000);
      const reason = answer ? `the server answered ${answer.status}` : "the connection dropped";
      setPhase(`At byte ${start} ${reason}; asking the server where to resume in ${delay / 1000} s…`);
      await sleep(delay);
      try {
        offset = (await fetchUpload(upload.id)).offset;
      } catch (error) {
        if (error instanceof ApiError && error.status < 500) throw error;
        offset = start; // still unreachable: try the same chunk again
      }
      showProgress(offset, file.size);
    }
  }

  /** Find the remembered upload of this file, or start one; returns the API's upload object. */
  async function openUpload(file) {
    const rememberedId = rememberedUploadId(file);
    if (rememberedId) {
      try {
        const upload = await fetchUpload(rememberedId);
        setPhase(`Resuming the earlier upload of ${file.name} at byte ${upload.offset}…`);
        return upload;
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 404)) throw error;
        forgetUpload(file); // expired or discarded on the server: start again
      }
    }
    const sha256 = await sha256Of(file);
    setPhase("Starting the upload…");
    const upload = (await api("POST", uploadsUrl, { filename: file.name, size: file.size, sha256 })).data;
    rememberUpload(file, upload.id);
    return upload;
  }

  async function completeUpload(upload, file, details) {
    setPhase("Storing the checkpoint…");
    try {
      const answer = await api("POST", `${uploadUrl(upload.id)}complete/`, details);
      forgetUpload(file);
      return answer;
    } catch (error) {
      // A part file that lost bytes on the server is discarded there; other refusals keep it for a retry.
      try {
        await fetchUpload(upload.id);
      } catch (lookup) {
        if (lookup instanceof ApiError && lookup.status === 404) forgetUpload(file);
      }
      throw error;
    }
  }

  // --- the resulting checkpoint ------------------------------------------------------------------

  function element(tag, attributes, text) {
    const node = document.createElement(tag);
    Object.entries(attributes || {}).forEach(([key, value]) => node.setAttribute(key, value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function showCheckpoint(checkpoint, created) {
    resultBox.replaceChildren();
    const message = created
      ? "Checkpoint stored; it is being validated."
      : `An identical archive was already uploaded as checkpoint #${checkpoint.id}; it was not stored twice.`;
    resultBox.append(element("p", { id: "upload-outcome", class: created ? "ok" : "notice" }, message));
    const line = element("p");
    line.append(element("a", { id: "checkpoint-link", href: `/checkpoints/${checkpoint.id}/` }, `#${checkpoint.id} ${checkpoint.name}`));
    line.append(" — status ");
    line.append(element("span", { id: "checkpoint-status" }));
    resultBox.append(line, element("p", { id: "checkpoint-reason", class: "errors", hidden: "" }));
    resultBox.hidden = false;
    updateCheckpoint(checkpoint);
  }

  function updateCheckpoint(checkpoint) {
    const status = document.getElementById("checkpoint-status");
    status.textContent = checkpoint.status;
    status.className = `status status-${checkpoint.status}`;
    const reason = document.getElementById("checkpoint-reason");
    reason.textContent = checkpoint.rejection_reason || "";
    reason.hidden = !checkpoint.rejection_reason;
  }

  async function followCheckpoint(url) {
    const generation = ++pollGeneration;
    for (;;) {
      let checkpoint;
      try {
        checkpoint = (await api("GET", url)).data;
      } catch (error) {
        if (error instanceof ApiError && error.status < 500) {
          showErrors(error.message);
          return;
        }
        await sleep(POLL_MS * 3);
        continue;
      }
      if (generation !== pollGeneration) return; // a newer upload owns the result box
      updateCheckpoint(checkpoint);
      if (FINAL_STATUSES.includes(checkpoint.status)) {
        setPhase(checkpoint.status === "ready" ? "Validated: the checkpoint is ready." : "Validation rejected the checkpoint.");
        return;
      }
      await sleep(POLL_MS);
    }
  }

  // --- events ------------------------------------------------------------------------------------

  input.addEventListener("change", () => chooseFile(input.files[0] || null));

  dropZone.addEventListener("click", (event) => {
    if (event.target !== input) input.click();
  });
  dropZone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      input.click();
    }
  });
  ["dragenter", "dragover"].forEach((type) =>
    dropZone.addEventListener(type, (event) => {
      event.preventDefault();
      dropZone.classList.add("dragging");
    })
  );
  dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
  dropZone.addEventListener("drop", (event) => {
    event.preventDefault();
    dropZone.classList.remove("dragging");
    const files = event.dataTransfer && event.dataTransfer.files;
    if (!files || !files.length || input.disabled) return;
    input.files = files;
    chooseFile(files[0]);
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    if (!selectedFile) {
      showErrors("Choose a checkpoint archive (.tar, .tar.gz or .zip) first.");
      return;
    }
    const file = selectedFile;
    const details = submission();
    const chunkBytes = Math.max(1, Number(form.dataset.chunkBytes) || 8 * 1024 * 1024);
    setBusy(true);
    resultBox.hidden = true;
    pollGeneration += 1;
    let answer;
    try {
      const upload = await openUpload(file);
      await sendChunks(upload, file, chunkBytes);
      answer = await completeUpload(upload, file, details);
    } catch (error) {
      showErrors(error.message);
      setPhase("The upload stopped.");
      return;
    } finally {
      setBusy(false);
    }
    showCheckpoint(answer.data, answer.status === 201);
    await followCheckpoint(answer.data.url);
  });
})();
