/*
 * Shared by the pages (window.Frontier): REST API calls with the session cookie (X-CSRFToken on
 * writes), the API's error messages in its own words, the data version, live regions and buttons
 * that POST to the API.
 *
 * Live regions are elements with data-live-region, an id and data-version (the data version they
 * were rendered at). The page polls GET /api/v1/version/ every second (If-None-Match: 304 while
 * nothing changed); when the version moves it fetches the page again and swaps in every region that
 * changed. A region marked data-live-active="true" (jobs queued or running) is refreshed every two
 * seconds as well, since job progress and heartbeats do not move the data version.
 */
(function () {
  "use strict";

  const VERSION_URL = "/api/v1/version/";
  const VERSION_POLL_MS = 1000;
  const HIDDEN_POLL_MS = 5000;
  const ACTIVE_REFRESH_MS = 2000;
  const RETRY_MS = 5000;

  class ApiError extends Error {
    constructor(message, status, retryAfterMs) {
      super(message);
      this.status = status;
      this.retryAfterMs = retryAfterMs;
    }
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  /** "field: message" for every (nested) field error, "detail" as it is. */
  function fieldMessages(data, prefix) {
    if (Array.isArray(data)) return data.flatMap((item) => fieldMessages(item, prefix));
    if (data && typeof data === "object") {
      return Object.entries(data).flatMap(([key, value]) =>
        fieldMessages(value, key === "detail" || key === "non_field_errors" ? prefix : prefix ? `${prefix}.${key}` : key)
      );
    }
    return [prefix ? `${prefix}: ${data}` : String(data)];
  }

  function errorMessage(status, data, text) {
    if (data && typeof data === "object") {
      const parts = fieldMessages(data, "");
      if (parts.length) return parts.join("; ");
    }
    const plain = (text || "").trim();
    // An HTML error page (a 5xx from the server or a proxy) says nothing useful in a message box.
    return plain && !plain.startsWith("<") ? `HTTP ${status}: ${plain.slice(0, 300)}` : `The server answered HTTP ${status}.`;
  }

  function retryAfterMs(response) {
    const seconds = Number(response.headers.get("Retry-After"));
    return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : RETRY_MS;
  }

  async function api(method, url, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(url, {
      method,
      headers,
      credentials: "same-origin",
      cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (error) {
      data = null;
    }
    if (!response.ok) throw new ApiError(errorMessage(response.status, data, text), response.status, retryAfterMs(response));
    return { status: response.status, data };
  }

  // --- the data version ------------------------------------------------------------------------------

  const watchers = [];
  let knownVersion = null;
  let polling = false;

  async function pollVersion() {
    for (;;) {
      await sleep(document.hidden ? HIDDEN_POLL_MS : VERSION_POLL_MS);
      let response;
      try {
        response = await fetch(VERSION_URL, {
          headers: { Accept: "application/json", "If-None-Match": `"${knownVersion}"` },
          credentials: "same-origin",
          cache: "no-store",
        });
      } catch (error) {
        await sleep(RETRY_MS); // the server is restarting or the network dropped: try again later
        continue;
      }
      if (response.status === 429) {
        await sleep(retryAfterMs(response));
        continue;
      }
      if (response.status !== 200) continue;
      const { version } = await response.json();
      if (version === knownVersion) continue;
      knownVersion = version;
      for (const watcher of watchers) {
        try {
          await watcher(version);
        } catch (error) {
          console.warn("refresh after a data change failed:", error);
        }
      }
    }
  }

  /** Call onChange(version) whenever the data version moves away from `version`. */
  function watchVersion(version, onChange) {
    if (knownVersion === null) knownVersion = version;
    watchers.push(onChange);
    if (!polling) {
      polling = true;
      pollVersion();
    }
  }

  // --- live regions ------------------------------------------------------------------------------------

  let refreshing = null;
  let refreshAgain = false;

  async function fetchRegions() {
    const response = await fetch(window.location.href, {
      headers: { Accept: "text/html" }, credentials: "same-origin", cache: "no-store",
    });
    if (!response.ok) return; // e.g. the checkpoint was deleted: keep what is shown
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    const replaced = [];
    document.querySelectorAll("[data-live-region]").forEach((region) => {
      const update = fresh.getElementById(region.id);
      if (update && update.outerHTML !== region.outerHTML) {
        const node = document.importNode(update, true);
        region.replaceWith(node);
        replaced.push(node);
      }
    });
    if (replaced.length) document.dispatchEvent(new CustomEvent("frontier:regions-updated", { detail: { regions: replaced } }));
  }

  /** Re-render the live regions from the server (one request at a time, none lost). */
  async function refreshRegions() {
    if (refreshing) {
      refreshAgain = true;
      return refreshing;
    }
    refreshing = (async () => {
      do {
        refreshAgain = false;
        try {
          await fetchRegions();
        } catch (error) {
          console.warn("live refresh failed:", error);
        }
      } while (refreshAgain);
      refreshing = null;
    })();
    return refreshing;
  }

  async function refreshWhileActive() {
    for (;;) {
      await sleep(ACTIVE_REFRESH_MS);
      if (!document.hidden && document.querySelector("[data-live-region][data-live-active=true]")) await refreshRegions();
    }
  }

  function startLiveRegions() {
    const regions = document.querySelectorAll("[data-live-region]");
    if (!regions.length) return;
    watchVersion(regions[0].dataset.version, refreshRegions);
    refreshWhileActive();
  }

  // --- buttons that POST to the API: <button data-api-post="URL" data-message="#box"> -------------

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-api-post]");
    if (!button) return;
    event.preventDefault();
    const box = document.querySelector(button.dataset.message || "#action-message");
    button.disabled = true;
    try {
      await api("POST", button.dataset.apiPost);
      if (box) {
        box.textContent = button.dataset.done || "Done.";
        box.className = "ok";
        box.hidden = false;
      }
      await refreshRegions();
    } catch (error) {
      if (box) {
        box.textContent = error.message;
        box.className = "errors";
        box.hidden = false;
      }
    } finally {
      button.disabled = false;
    }
  });

  // --- copy buttons: <button data-copy="SELECTOR"> copies the text of SELECTOR in its block ---------

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-copy]");
    if (!button) return;
    const source = button.parentElement.querySelector(button.dataset.copy);
    try {
      await navigator.clipboard.writeText(source.textContent);
      button.textContent = "Copied";
    } catch (error) {
      window.getSelection().selectAllChildren(source); // no clipboard access: select it for Ctrl-C
    }
  });

  window.Frontier = { api, ApiError, errorMessage, sleep, watchVersion, refreshRegions };
  startLiveRegions();
})();
