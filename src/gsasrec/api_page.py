"""The service's /docs page: the endpoints, read from /openapi.json, each with a request to edit and send.

FastAPI's own /docs loads Swagger UI from a CDN and is blank without a network; this page is one
self-contained HTML document (no external script, style or font), so it works on an offline server.
"""

from __future__ import annotations

import html
import json

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__ API</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1 { margin-bottom: 0.2rem; }
section { border: 1px solid #ccc; border-radius: 6px; padding: 0.6rem 1rem; margin: 1rem 0; }
.method { font-weight: bold; color: #fff; border-radius: 4px; padding: 0.1rem 0.5rem; margin-right: 0.4rem; }
.get { background: #2f7d4f; } .post { background: #2f5f9d; }
textarea, input { font: 13px monospace; width: 100%; box-sizing: border-box; }
pre { background: #f4f4f4; padding: 0.5rem; overflow: auto; max-height: 24rem; }
button { margin: 0.4rem 0; padding: 0.2rem 1rem; }
</style></head>
<body>
<h1>__TITLE__</h1>
<p>__DESCRIPTION__ The full schema is at <a href="openapi.json">/openapi.json</a>.</p>
<div id="operations">Reading /openapi.json ...</div>
<script>
const EXAMPLES = __EXAMPLES__;

function operationSection(path, method, operation) {
  const section = document.createElement("section");
  const title = document.createElement("h3");
  title.innerHTML = `<span class="method ${method}">${method.toUpperCase()}</span>`;
  title.appendChild(document.createTextNode(path));
  section.appendChild(title);
  const summary = document.createElement("p");
  summary.textContent = operation.description || operation.summary || "";
  section.appendChild(summary);
  const input = document.createElement(method === "post" ? "textarea" : "input");
  if (method === "post") { input.rows = 5; }
  input.value = EXAMPLES[method + " " + path] || (method === "post" ? "{}" : path);
  section.appendChild(input);
  const send = document.createElement("button");
  send.textContent = "Send";
  const output = document.createElement("pre");
  send.onclick = async () => {
    const request = method === "post"
      ? fetch(path, {method: "POST", headers: {"Content-Type": "application/json"}, body: input.value})
      : fetch(input.value);
    try {
      const response = await request;
      const text = await response.text();
      let shown = text;
      try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) {}
      output.textContent = response.status + " " + response.statusText + "\\n" + shown;
    } catch (error) { output.textContent = String(error); }
  };
  section.appendChild(send);
  section.appendChild(output);
  return section;
}

fetch("openapi.json").then(r => r.json()).then(schema => {
  const list = document.getElementById("operations");
  list.textContent = "";
  for (const [path, operations] of Object.entries(schema.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      list.appendChild(operationSection(path, method, operation));
    }
  }
}).catch(error => { document.getElementById("operations").textContent = "cannot read /openapi.json: " + error; });
</script>
</body></html>
"""


def api_page(title: str, description: str, examples: dict[str, str]) -> str:
    """The page's HTML. examples: "post /recommend" -> request body, "get /health" -> URL to fetch."""
    # json.dumps, then '<' escaped, so that no example can close the <script> element.
    embedded = json.dumps(examples).replace("<", "\\u003c")
    return (PAGE.replace("__TITLE__", html.escape(title)).replace("__DESCRIPTION__", html.escape(description))
            .replace("__EXAMPLES__", embedded))
