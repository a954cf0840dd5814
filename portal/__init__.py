"""The portal: server-rendered pages for company admins, cardholders and program staff.

`portal.app.install` adds its routes to the gateway's application (`pyjit serve`);
`portal.app.build_app` makes a standalone application (`pyjit serve --role portal`).
"""
