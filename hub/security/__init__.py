"""Who may call and what they see: API keys and clients (auth), OAuth2 client credentials
(oauth), field grants (fields) and rate limits (ratelimit)."""
