"""Who may call and what they see: authentication of calls (auth), clients and their API
keys (clients), OAuth2 client credentials (oauth), field grants (fields), rate limits
(ratelimit) and the throttling of verifications (verification)."""
