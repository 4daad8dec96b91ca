"""Mock of the Ministry of Justice's electronic civil-status registry (REST/JSON, OAuth2).

`mocks.civil_status.app:create_app` builds it; docs/mock-civil-status.md is its contract.
"""
