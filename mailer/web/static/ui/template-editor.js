/* The template editor: CodeMirror on both sources, a debounced live preview in a sandboxed frame,
   errors marked on their line, and test sends. Without JavaScript the plain textareas still save. */
(function () {
  "use strict";

  var DEBOUNCE_MS = 400;

  function start() {
    var root = document.getElementById("template-editor");
    if (!root) return;
    var form = document.getElementById("template-form");
    var token = form.querySelector("input[name=csrf_token]").value;
    var subject = document.getElementById("subject");
    var frame = document.getElementById("preview-frame");
    var previewText = document.getElementById("preview-text");
    var previewSubject = document.getElementById("preview-subject");
    var status = document.getElementById("preview-status");
    var errorBox = document.getElementById("template-error");
    var problemBox = document.getElementById("preview-problem");

    var editors = {};
    ["html", "text"].forEach(function (name) {
      var area = document.getElementById(name);
      if (typeof CodeMirror === "undefined") {
        editors[name] = { getValue: function () { return area.value; }, on: function (_e, fn) { area.addEventListener("input", fn); } };
        return;
      }
      editors[name] = CodeMirror.fromTextArea(area, {
        mode: name === "html" ? "django" : "django:inner",
        lineNumbers: true, lineWrapping: true, indentUnit: 2, tabSize: 2, viewportMargin: 50
      });
    });

    // Tabs: the HTML and text sources, and the preview's rendered HTML and text.
    root.querySelectorAll("[data-tab]").forEach(function (tab) {
      tab.addEventListener("click", function () { showSource(tab.getAttribute("data-tab")); });
    });
    function showSource(name) {
      root.querySelectorAll("[data-tab]").forEach(function (tab) {
        var on = tab.getAttribute("data-tab") === name;
        tab.classList.toggle("active", on);
        tab.setAttribute("aria-selected", on ? "true" : "false");
      });
      root.querySelectorAll("[data-panel]").forEach(function (panel) {
        panel.hidden = panel.getAttribute("data-panel") !== name;
      });
      if (editors[name].refresh) editors[name].refresh();
    }
    root.querySelectorAll("[data-preview-tab]").forEach(function (tab) {
      tab.addEventListener("click", function () {
        var name = tab.getAttribute("data-preview-tab");
        root.querySelectorAll("[data-preview-tab]").forEach(function (other) {
          var on = other === tab;
          other.classList.toggle("active", on);
          other.setAttribute("aria-selected", on ? "true" : "false");
        });
        frame.hidden = name !== "html";
        previewText.hidden = name !== "text";
      });
    });

    var marked = null;
    function clearMark() {
      if (marked) { marked.editor.removeLineClass(marked.line, "background", "line-error"); marked = null; }
    }
    function showError(error, box) {
      box.textContent = error.message;
      box.hidden = false;
      clearMark();
      var editor = editors[error.field];
      if (error.line && editor && editor.addLineClass) {
        var line = Math.max(0, Math.min(error.line - 1, editor.lineCount() - 1));
        editor.addLineClass(line, "background", "line-error");
        marked = { editor: editor, line: line };
        if (error.field === "text" || error.field === "html") showSource(error.field);
      }
    }

    function payload() {
      return { html: editors.html.getValue(), text: editors.text.getValue(), subject: subject.value };
    }
    function post(url, body) {
      return fetch(url, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": token },
        body: JSON.stringify(body)
      }).then(function (response) {
        return response.json().catch(function () { return { ok: false, error: { message: "The server answered " + response.status + "." } }; });
      });
    }

    var sequence = 0;
    var timer = null;
    function preview() {
      var mine = ++sequence;
      root.setAttribute("data-preview-state", "pending");
      status.textContent = "Rendering…";
      post(root.getAttribute("data-preview-url"), payload()).then(function (data) {
        if (mine !== sequence) return; // an older answer: a newer edit is on its way
        if (data.ok) {
          // "ready" once the frame has shown the new email, not when the answer arrived.
          frame.addEventListener("load", function () {
            if (mine === sequence) root.setAttribute("data-preview-state", "ready");
          }, { once: true });
          frame.srcdoc = data.html;
          previewText.textContent = data.text;
          previewSubject.textContent = data.subject;
          errorBox.hidden = true;
          clearMark();
          if (data.problem) showError(data.problem, problemBox); else problemBox.hidden = true;
          status.textContent = data.problem ? "Renders, but cannot be saved yet" : "Up to date · sample data";
        } else {
          showError(data.error, errorBox);
          problemBox.hidden = true;
          status.textContent = "Does not render: see the error";
        }
        if (!data.ok) root.setAttribute("data-preview-state", "error");
      }, function () {
        if (mine !== sequence) return;
        status.textContent = "Preview unavailable (no connection)";
        root.setAttribute("data-preview-state", "error");
      });
    }
    function schedule() {
      clearTimeout(timer);
      root.setAttribute("data-preview-state", "pending");
      timer = setTimeout(preview, DEBOUNCE_MS);
    }
    editors.html.on("change", schedule);
    editors.text.on("change", schedule);
    subject.addEventListener("input", schedule);

    var saved = document.getElementById("template-error-data");
    if (saved) showError(JSON.parse(saved.textContent), errorBox);
    preview();

    var testForm = document.getElementById("test-send-form");
    var testStatus = document.getElementById("test-send-status");
    var testButton = document.getElementById("test-send-button");
    testForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var body = payload();
      body.to = document.getElementById("test-to").value;
      testButton.disabled = true;
      testStatus.className = "small";
      testStatus.textContent = "Sending…";
      post(root.getAttribute("data-test-url"), body).then(function (data) {
        testStatus.className = "small " + (data.ok ? "ok" : "bad");
        testStatus.textContent = data.ok ? data.message : data.error.message;
      }, function () {
        testStatus.className = "small bad";
        testStatus.textContent = "Could not reach the server.";
      }).then(function () { testButton.disabled = false; });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
