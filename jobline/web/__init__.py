"""The web UI: server-rendered pages behind Django's login, with live updates over SSE.

Templates and assets live in this package and are served by it (its own template engine
and asset view), so the UI needs no TEMPLATES, STATIC or collectstatic set-up in a project.
"""
