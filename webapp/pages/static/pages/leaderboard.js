/*
 * Leaderboard column picker. The server renders every column and a <style> that hides the ones not
 * chosen (?cols=key,key in the address: the optional columns shown; without it, every default column
 * that has a value on the page). Ticking a box here rewrites that style at once, puts the choice in the
 * address (history.replaceState, so a shared link or a reload shows the same columns, and the live
 * refresh in common.js, which fetches the address, renders it too), into the links of the page (sort,
 * pages, sizes, the filter form; not the suite tabs) and into localStorage per suite, from which a later visit
 * without ?cols= restores it. ?cols=- shows none of the optional columns.
 */
(function () {
  "use strict";

  const PARAM = "cols";
  const picker = document.getElementById("column-picker");
  const form = document.getElementById("leaderboard-filters");
  if (!picker || !form) return;
  const suite = form.querySelector("input[name=suite]").value;
  const storageKey = `frontier.leaderboard.columns.${suite}`;

  const boxes = () => Array.from(picker.querySelectorAll("input[name=column]"));
  const region = () => document.getElementById("leaderboard-region");
  const cssClass = (key) => `c-${key.replace(":", "-")}`;
  const keysOf = (text) => (text || "").split(",").map((key) => key.trim()).filter(Boolean);

  function storage() {
    try {
      return window.localStorage;
    } catch (error) {
      return null; // storage disabled: the address still carries the choice
    }
  }

  /** Hide every optional column not in `shown`, and tick the boxes to match. */
  function apply(shown) {
    const hidden = boxes().map((box) => box.value).filter((key) => !shown.includes(key));
    const style = document.getElementById("leaderboard-column-style");
    if (style) {
      style.textContent = hidden.length
        ? `${hidden.map((key) => `#leaderboard-table .${CSS.escape(cssClass(key))}`).join(", ")} { display: none; }`
        : "";
    }
    boxes().forEach((box) => { box.checked = shown.includes(box.value); });
  }

  function withColumns(search, value) {
    const params = new URLSearchParams(search);
    if (value === null) params.delete(PARAM);
    else params.set(PARAM, value);
    const text = params.toString();
    return text ? `?${text}` : "?";
  }

  /** Carry the choice (null: none, i.e. the defaults) in the address and every link and form of the page. */
  function carry(value) {
    history.replaceState(history.state, "", `${window.location.pathname}${withColumns(window.location.search, value)}`);
    // Not the suite tabs: another suite's columns are other benchmarks, and it has its own saved choice.
    document.querySelectorAll('main a[href^="?"]:not(.tabs a)').forEach((link) => {
      link.setAttribute("href", withColumns(link.getAttribute("href").slice(1), value));
    });
    let input = form.querySelector("input[name=cols]");
    if (value === null) {
      if (input) input.remove();
    } else {
      if (!input) {
        input = document.createElement("input");
        input.type = "hidden";
        input.name = PARAM;
        form.prepend(input);
      }
      input.value = value;
    }
  }

  function choose(shown) {
    apply(shown);
    // "-" when no optional column is chosen: an empty cols= would mean "not given", i.e. the defaults.
    const value = shown.length ? shown.join(",") : "-";
    carry(value);
    const store = storage();
    if (store) store.setItem(storageKey, value);
  }

  picker.addEventListener("change", (event) => {
    if (event.target.matches("input[name=column]")) choose(boxes().filter((box) => box.checked).map((box) => box.value));
  });

  picker.querySelector("[data-columns-default]").addEventListener("click", () => {
    const current = region();
    apply(keysOf(current && current.dataset.defaultColumns));
    carry(null);
    const store = storage();
    if (store) store.removeItem(storageKey);
  });

  // Close the list when clicking elsewhere.
  document.addEventListener("click", (event) => {
    if (picker.open && !picker.contains(event.target)) picker.open = false;
  });

  // A refreshed region renders the address's choice; without one, the defaults may have changed.
  document.addEventListener("frontier:regions-updated", () => {
    const current = region();
    if (current) apply(keysOf(current.dataset.shownColumns));
  });

  // A visit without ?cols= gets the choice last made on this suite in this browser.
  if (new URLSearchParams(window.location.search).get(PARAM) === null) {
    const store = storage();
    const saved = store ? store.getItem(storageKey) : null;
    if (saved !== null) {
      apply(keysOf(saved));
      carry(saved);
    }
  }
})();
