// Operations page behaviour. No library, nothing fetched from outside Airflow.
(function () {
  "use strict";
  var airflowBase = document.body.getAttribute("data-airflow-base") || "";

  // Links into the Airflow UI: the page runs in the UI's sandboxed frame, which may not navigate the
  // top window; the frame is same-origin, so move the UI's router instead (fallback: open in frame).
  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a[data-airflow-link]") : null;
    if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) {
      return;
    }
    if (window.top === window) {
      return;
    }
    try {
      var url = new URL(link.href, window.location.href);
      if (url.origin !== window.top.location.origin) {
        return;
      }
      window.top.history.pushState(null, "", url.pathname + url.search + url.hash);
      window.top.dispatchEvent(new PopStateEvent("popstate", { state: null }));
      event.preventDefault();
    } catch (error) {
      // Not allowed here: the link opens inside the frame.
    }
  });

  // Release a held snapshot through Airflow's REST API, with the user's own session (cookie).
  // Two clicks (the frame's sandbox has no modal dialogs): "Release", then "Confirm release".
  Array.prototype.forEach.call(document.querySelectorAll("button.release"), function (button) {
    var output = button.parentElement.querySelector("output.release-result");
    var armed = false;
    button.addEventListener("click", function () {
      if (!armed) {
        armed = true;
        button.classList.add("confirm");
        button.textContent = "Confirm release";
        output.textContent = "Applies " + button.getAttribute("data-what") + " to its business day. Click again to confirm.";
        return;
      }
      armed = false;
      button.disabled = true;
      button.classList.remove("confirm");
      button.textContent = "Release";
      output.textContent = "Triggering the release...";
      var dag = button.getAttribute("data-dag");
      fetch(airflowBase + "/api/v2/dags/" + encodeURIComponent(dag) + "/dagRuns", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({
          logical_date: null,
          conf: { sha256: button.getAttribute("data-sha256") },
          note: "Released from the operations page",
        }),
      })
        .then(function (response) {
          return response.json().catch(function () { return {}; }).then(function (body) {
            if (!response.ok) {
              var detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail || body);
              throw new Error(response.status + " " + detail);
            }
            return body;
          });
        })
        .then(function (run) {
          var link = document.createElement("a");
          link.href = airflowBase + "/dags/" + encodeURIComponent(dag) + "/runs/" + encodeURIComponent(run.dag_run_id);
          link.setAttribute("data-airflow-link", "");
          link.textContent = run.dag_run_id;
          output.textContent = "Triggered: release run ";
          output.appendChild(link);
          output.appendChild(document.createTextNode(" (" + run.state + ")"));
          output.setAttribute("data-run-id", run.dag_run_id);
        })
        .catch(function (error) {
          button.disabled = false;
          output.textContent = "Could not trigger the release: " + error.message + ". Use the command below.";
        });
    });
  });
})();
