// The import page: send the file as the request body (as the API takes it) with XHR and
// ask for a streamed answer. The server imports the rows as the body arrives and, after
// each batch, writes "progress <bytes read> <rows>"; the bar shows the share of the file
// the import has read and checked, the label the rows. Then "report" and the report's HTML.
// Without script the form posts normally and the page comes back with the report.
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.id !== "import-form" || !window.XMLHttpRequest || !window.URLSearchParams) { return; }
    var input = form.querySelector("input[type=file]");
    var file = input && input.files && input.files[0];
    if (!file) { return; }  // the browser's own "required" check, or the server's message
    event.preventDefault();
    var params = new URLSearchParams();
    params.set("filename", file.name);
    params.set("match", form.querySelector("[name=match]").value);
    ["dry_run", "all_or_nothing"].forEach(function (name) {
      if (form.querySelector("[name=" + name + "]").checked) { params.set(name, "1"); }
    });
    var box = document.getElementById("import-progress");
    var bar = document.getElementById("import-progress-bar");
    var label = document.getElementById("import-progress-label");
    var report = document.getElementById("import-report");
    var button = form.querySelector("button[type=submit]");
    var rowsText = form.getAttribute("data-rows");
    box.hidden = false;
    bar.removeAttribute("value");  // indeterminate until the first batch is done
    label.textContent = form.getAttribute("data-uploading");
    button.disabled = true;
    report.innerHTML = "";

    function parse(text) {
      var marker = text.indexOf("report\n");
      var head = marker < 0 ? text : text.slice(0, marker);
      var lines = head.split("\n");
      for (var i = lines.length - 1; i >= 0; i--) {
        var parts = lines[i].split(" ");
        if (parts[0] === "progress" && parts.length === 3) {
          return {read: Number(parts[1]), rows: Number(parts[2]),
                  html: marker < 0 ? null : text.slice(marker + 7)};
        }
      }
      return {read: null, rows: null, html: marker < 0 ? null : text.slice(marker + 7)};
    }

    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action + "?" + params.toString());
    xhr.setRequestHeader("X-CSRF-Token", window.clientelaCsrfToken());
    xhr.setRequestHeader("X-Clientela-Progress", "stream");
    xhr.setRequestHeader("Content-Type", "text/csv");
    xhr.addEventListener("progress", function () {
      var state = parse(xhr.responseText);
      if (state.read !== null && file.size > 0) {
        bar.value = Math.min(100, Math.round(100 * state.read / file.size));
        label.textContent = rowsText.replace("%(rows)s", state.rows.toLocaleString());
      }
    });
    xhr.addEventListener("loadend", function () {
      button.disabled = false;
      box.hidden = true;
      var state = parse(xhr.responseText || "");
      if (xhr.status === 200 && state.html !== null) {
        report.innerHTML = state.html;  // our own server-rendered fragment
        var heading = report.querySelector("h2");
        if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus(); }
      } else if (xhr.status === 422) {
        report.innerHTML = xhr.responseText;
      } else {
        var p = document.createElement("p");
        p.className = "form-errors";
        p.setAttribute("role", "alert");
        p.textContent = form.getAttribute("data-failed") + " (" + xhr.status + ")";
        report.appendChild(p);
      }
    });
    xhr.send(file);
  });
})();
