"""GraphiQL served by the gateway itself, so the IDE works on a machine without internet access.

The browser bundles (GraphiQL 2, React 17, graphql-ws) come from the PyPI package
``graphene-django-graphiql-static``, which ships them as plain static files; only those files
are read from it (nothing of Django is imported). The page around them is ours:

- HTTP requests carry the headers typed into GraphiQL's Headers editor (the API key);
- subscriptions go over graphql-transport-ws with those headers as the ``connection_init``
  payload, which is where the gateway reads a WebSocket's key;
- when the headers change, the page hands GraphiQL a new fetcher, and GraphiQL introspects
  again with them, so Docs appears as soon as a valid key is pasted, without a reload.
"""

from __future__ import annotations

import json
from importlib.resources import files
from importlib.resources.abc import Traversable

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

ASSET_PATH = "/graphiql"
# The files the page loads, with their media types; nothing else is served from the package.
ASSETS = {
    "graphiql.min.js": "text/javascript",
    "graphiql.min.css": "text/css",
    "react.production.min.js": "text/javascript",
    "react-dom.production.min.js": "text/javascript",
    "graphql-ws.min.js": "text/javascript",
}


def _asset_folder() -> Traversable:
    package = "graphene_django_graphiql_static"
    return files(package) / "static" / package


async def graphiql_asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ASSETS:
        return Response("not found", status_code=404, media_type="text/plain")
    body = (_asset_folder() / name).read_bytes()
    # The files change only with the package version; let browsers keep them for a day.
    return Response(body, media_type=ASSETS[name],
                    headers={"Cache-Control": "public, max-age=86400"})


def graphiql_page(graphql_path: str) -> HTMLResponse:
    settings = json.dumps({"path": graphql_path})
    return HTMLResponse(_PAGE.replace("__ASSETS__", ASSET_PATH).replace("__SETTINGS__", settings))


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>PanelQL · GraphiQL</title>
  <style>html, body, #graphiql { height: 100%; margin: 0; overflow: hidden; }</style>
  <link rel="stylesheet" href="__ASSETS__/graphiql.min.css">
  <script src="__ASSETS__/react.production.min.js"></script>
  <script src="__ASSETS__/react-dom.production.min.js"></script>
  <script src="__ASSETS__/graphiql.min.js"></script>
  <script src="__ASSETS__/graphql-ws.min.js"></script>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script>
(function () {
  var settings = __SETTINGS__;
  var url = location.origin + settings.path;
  var wsUrl = url.replace(/^http/, "ws");
  var hint = '{\\n  "x-api-key": "pql_…"\\n}';

  function parseHeaders(text) {
    try {
      var parsed = JSON.parse(text || "{}");
      return parsed && typeof parsed === "object" ? parsed : null;
    } catch (e) {
      return null;
    }
  }

  // One fetcher per set of headers: GraphiQL introspects again whenever its fetcher changes.
  function makeFetcher(headers) {
    var ws = window.graphqlWs.createClient({
      url: wsUrl, lazy: true, connectionParams: function () { return headers; }
    });
    return GraphiQL.createFetcher({ url: url, headers: headers, wsClient: ws });
  }

  function App() {
    var stored = localStorage.getItem("graphiql:headers");
    var initial = parseHeaders(stored) || {};
    var state = React.useState(function () {
      return { text: JSON.stringify(initial), fetcher: makeFetcher(initial) };
    });
    var current = state[0], setCurrent = state[1];
    var timer = React.useRef(null);
    function onEditHeaders(text) {
      clearTimeout(timer.current);
      timer.current = setTimeout(function () {
        var headers = parseHeaders(text);
        var normal = headers && JSON.stringify(headers);
        if (headers && normal !== current.text) {
          setCurrent({ text: normal, fetcher: makeFetcher(headers) });
        }
      }, 400);
    }
    return React.createElement(GraphiQL, {
      fetcher: current.fetcher,
      onEditHeaders: onEditHeaders,
      shouldPersistHeaders: true,
      isHeadersEditorEnabled: true,
      defaultHeaders: stored ? undefined : hint,
      defaultEditorToolsVisibility: stored ? false : "headers"
    });
  }

  ReactDOM.render(React.createElement(App), document.getElementById("graphiql"));
})();
</script>
</body>
</html>
"""
