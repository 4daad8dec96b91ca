"""Mock of the National Business Registration Database (DKKD) behind the LGSP gateway.

`app.create_app(**options)` builds the ASGI app (docs/mock-business-registration.md);
`data.load_register()` is its synthetic register, consistent with the population data set.
"""
