"""The audit trail: the hash-chained, signed record of every disclosure (trail), and its
search and the citizen's access report (search)."""
