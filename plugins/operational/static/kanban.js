// The deals kanban: drag a card onto another stage to move the deal. The move posts to the
// same URL as the form beside each card (which works without JavaScript), with the CSRF
// header, and swaps in the board and forecast the server answers. No inline script (CSP).
(function () {
  "use strict";
  var dragged = null;

  function columnOf(node) {
    return node && node.closest ? node.closest(".kanban-column") : null;
  }

  function clearTargets() {
    document.querySelectorAll(".kanban-column.drop-target").forEach(function (column) {
      column.classList.remove("drop-target");
    });
  }

  document.addEventListener("dragstart", function (event) {
    var card = event.target.closest ? event.target.closest(".kanban-card[data-move-url]") : null;
    if (!card) { return; }
    dragged = card;
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.getAttribute("data-deal-id"));
    card.classList.add("dragging");
  });

  document.addEventListener("dragend", function () {
    if (dragged) { dragged.classList.remove("dragging"); }
    dragged = null;
    clearTargets();
  });

  document.addEventListener("dragover", function (event) {
    var column = columnOf(event.target);
    if (!column || !dragged) { return; }
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    if (!column.classList.contains("drop-target")) {
      clearTargets();
      column.classList.add("drop-target");
    }
  });

  document.addEventListener("drop", function (event) {
    var column = columnOf(event.target);
    var card = dragged;
    if (!column || !card) { return; }
    event.preventDefault();
    clearTargets();
    if (column.contains(card)) { return; }
    var body = new FormData();
    body.append("stage_id", column.getAttribute("data-stage-id"));
    if (column.getAttribute("data-stage-kind") === "lost") {
      var reason = window.prompt(column.getAttribute("data-reason-prompt") || "");
      if (reason === null) { return; }
      body.append("reason", reason);
    }
    var area = document.getElementById("board-area");
    if (area) { area.setAttribute("aria-busy", "true"); }
    fetch(card.getAttribute("data-move-url"), {
      method: "POST", body: body, credentials: "same-origin",
      headers: {"X-CSRF-Token": window.clientelaCsrfToken ? window.clientelaCsrfToken() : "",
                "HX-Request": "true"}
    }).then(function (response) {
      return response.text().then(function (html) {
        return {usable: response.ok || response.status === 422, html: html};
      });
    }).then(function (answer) {
      var fresh = null;
      if (answer.usable) {
        var holder = document.createElement("div");
        holder.innerHTML = answer.html;
        fresh = holder.querySelector("#board-area");
      }
      if (!fresh || !area) { window.location.reload(); return; }
      area.replaceWith(fresh);
      if (window.htmx) { window.htmx.process(fresh); }
    }).catch(function () { window.location.reload(); });
  });
})();
