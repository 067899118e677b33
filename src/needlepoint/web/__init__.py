"""HTTP entrypoints: the JSON API under /api/v1 and the server-rendered pages.

Routes are thin: parse the request into a command, call one action or query, render.
May import actions, queries, domain and adapters; nothing imports the web package."""
